//! Envelope encryption for health documents (DESIGN §5):
//!
//! ```text
//! master key (KeyProvider: key file | PKCS#11 token)
//!   └─ wraps patient key (one per patient, versioned)        AES-256-KWP (RFC 5649)
//!        └─ wraps document data key (one per version)         AES-256-KWP
//!             └─ encrypts the document in 64 KiB chunks       AES-256-GCM, STREAM construction
//! ```
//!
//! Primitives come from aws-lc-rs; the only code of our own is the chunk framing in [`stream`].

pub mod fields;
pub mod keyfile;
pub mod keyring;
pub mod keys;
pub mod pkcs11;
pub mod sealed;
pub mod stream;

pub use keyring::KeyRing;
pub use keys::{DataKey, FileKeyProvider, KeyError, KeyProvider, PatientKey};
pub use pkcs11::{Pkcs11Config, Pkcs11KeyProvider, Pkcs11NoteSigner};
pub use stream::{CHUNK, Opener, Sealer, StreamError};
