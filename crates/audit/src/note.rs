//! C2SP signed notes: checkpoints (tlog-checkpoint) signed with Ed25519, and witness
//! cosignatures (tlog-cosignature v1).

use crate::merkle::Hash;
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

/// Signature type byte of an Ed25519 note signature.
const ED25519_NOTE: u8 = 0x01;
/// Signature type byte of an Ed25519 cosignature (tlog-cosignature v1).
const ED25519_COSIGNATURE: u8 = 0x04;

/// Why a note, key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// Not a well-formed note or checkpoint.
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// Not a usable key.
    #[error("bad key: {0}")]
    Key(&'static str),
}

fn key_id(name: &str, kind: u8, public: &[u8]) -> [u8; 4] {
    let mut m = Vec::with_capacity(name.len() + 2 + public.len());
    m.extend_from_slice(name.as_bytes());
    m.push(b'\n');
    m.push(kind);
    m.extend_from_slice(public);
    let d = digest(&SHA256, &m);
    let mut id = [0u8; 4];
    id.copy_from_slice(&d.as_ref()[..4]);
    id
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['+', ' ', '\n', '\u{2014}']) && !name.chars().any(char::is_control)
}

/// The checkpoint body: origin, tree size and base64 root hash, one per line.
#[must_use]
pub fn checkpoint_body(origin: &str, size: u64, root: &Hash) -> String {
    format!("{origin}\n{size}\n{}\n", B64.encode(root))
}

/// Something that signs notes as the log: a key file ([`Signer`]) or a key in a PKCS#11
/// token (the `crypto` crate's `Pkcs11NoteSigner`).
pub trait NoteSigner: Send + Sync + std::fmt::Debug {
    /// The key's name (the log's origin).
    fn name(&self) -> &str;
    /// The verifier key, `name+keyid+base64(0x01 || public key)`, to publish.
    fn vkey(&self) -> String;
    /// Signs a note body (each line ending in a newline), returning the whole signed note.
    fn sign(&self, body: &str) -> String;
}

/// The vkey and signature line of an Ed25519 note key, given its public key and a signature
/// over the body: what any [`NoteSigner`] produces.
#[must_use]
pub fn ed25519_vkey(name: &str, public: &[u8]) -> String {
    let mut material = vec![ED25519_NOTE];
    material.extend_from_slice(public);
    format!("{}+{}+{}", name, hex(&key_id(name, ED25519_NOTE, public)), B64.encode(material))
}

/// The signed note for `body`, given the signer's name, public key and Ed25519 signature of it.
#[must_use]
pub fn ed25519_signed_note(name: &str, public: &[u8], body: &str, signature: &[u8]) -> String {
    let mut line = key_id(name, ED25519_NOTE, public).to_vec();
    line.extend_from_slice(signature);
    format!("{body}\n\u{2014} {name} {}\n", B64.encode(line))
}

/// Whether `name` can be a key name (no spaces, plus signs or newlines).
#[must_use]
pub fn valid_key_name(name: &str) -> bool {
    valid_name(name)
}

/// A log's signing key, from a key file.
pub struct Signer {
    name: String,
    key: Ed25519KeyPair,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Signer {
    /// A fresh Ed25519 key in PKCS#8, to be kept in a key file.
    ///
    /// # Errors
    /// When the system RNG fails.
    pub fn generate_pkcs8() -> Result<Vec<u8>, NoteError> {
        Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| NoteError::Key("could not generate a key"))
    }

    /// Loads a key for the log called `name`.
    ///
    /// # Errors
    /// When the name or key is not usable.
    pub fn from_pkcs8(name: &str, pkcs8: &[u8]) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::Key("a key name has no spaces, plus signs or newlines"));
        }
        let key = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| NoteError::Key("not an Ed25519 PKCS#8 key"))?;
        Ok(Self { name: name.to_owned(), key })
    }

    /// The key's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key, `name+keyid+base64(0x01 || public key)`, to publish.
    #[must_use]
    pub fn vkey(&self) -> String {
        ed25519_vkey(&self.name, self.key.public_key().as_ref())
    }

    /// Signs a note body (each line ending in a newline), returning the whole signed note.
    #[must_use]
    pub fn sign(&self, body: &str) -> String {
        let sig = self.key.sign(body.as_bytes());
        ed25519_signed_note(&self.name, self.key.public_key().as_ref(), body, sig.as_ref())
    }

    /// Cosigns a checkpoint body as a witness would (tlog-cosignature v1), returning the
    /// signature line.
    #[must_use]
    pub fn cosign(&self, body: &str, timestamp: u64) -> String {
        let id = key_id(&self.name, ED25519_COSIGNATURE, self.key.public_key().as_ref());
        let message = format!("cosignature/v1\ntime {timestamp}\n{body}");
        let sig = self.key.sign(message.as_bytes());
        let mut bytes = id.to_vec();
        bytes.extend_from_slice(&timestamp.to_be_bytes());
        bytes.extend_from_slice(sig.as_ref());
        format!("\u{2014} {} {}\n", self.name, B64.encode(bytes))
    }

    /// The witness-style verifier for this key (for tests and tooling).
    #[must_use]
    pub fn cosigner_vkey(&self) -> String {
        let mut material = vec![ED25519_COSIGNATURE];
        material.extend_from_slice(self.key.public_key().as_ref());
        let id = key_id(&self.name, ED25519_COSIGNATURE, self.key.public_key().as_ref());
        format!("{}+{}+{}", self.name, hex(&id), B64.encode(material))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().concat()
}

impl NoteSigner for Signer {
    fn name(&self) -> &str {
        &self.name
    }
    fn vkey(&self) -> String {
        Self::vkey(self)
    }
    fn sign(&self, body: &str) -> String {
        Self::sign(self, body)
    }
}

/// A public key that verifies note signatures or cosignatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    /// The key's name.
    pub name: String,
    kind: u8,
    public: Vec<u8>,
    id: [u8; 4],
}

impl Verifier {
    /// Parses a vkey (`name+keyid+base64(type || public key)`), type 0x01 (log) or 0x04
    /// (cosigner).
    ///
    /// # Errors
    /// When it is not a valid Ed25519 vkey.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id_hex), Some(material)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::Key("a vkey is name+keyid+key"));
        };
        let material = B64.decode(material).map_err(|_| NoteError::Key("the key is not base64"))?;
        let Some((&kind, public)) = material.split_first() else { return Err(NoteError::Key("empty key")) };
        if !(kind == ED25519_NOTE || kind == ED25519_COSIGNATURE) || public.len() != 32 || !valid_name(name) {
            return Err(NoteError::Key("only Ed25519 note and cosignature keys are supported"));
        }
        let id = key_id(name, kind, public);
        if hex(&id) != id_hex.to_ascii_lowercase() {
            return Err(NoteError::Key("the key id does not match the key"));
        }
        Ok(Self { name: name.to_owned(), kind, public: public.to_vec(), id })
    }

    /// Whether this is a witness (cosigner) key.
    #[must_use]
    pub const fn is_cosigner(&self) -> bool {
        self.kind == ED25519_COSIGNATURE
    }

    /// Checks one signature of a note body. For a cosigner key, returns the cosignature's
    /// timestamp; for a log key, 0.
    #[must_use]
    pub fn verify(&self, body: &str, sig: &Signature) -> Option<u64> {
        if sig.name != self.name || sig.bytes.len() < 4 || sig.bytes[..4] != self.id {
            return None;
        }
        let key = UnparsedPublicKey::new(&ED25519, &self.public);
        if self.kind == ED25519_NOTE {
            key.verify(body.as_bytes(), &sig.bytes[4..]).ok().map(|()| 0)
        } else {
            let rest = &sig.bytes[4..];
            if rest.len() != 8 + 64 {
                return None;
            }
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&rest[..8]);
            let timestamp = u64::from_be_bytes(ts);
            let message = format!("cosignature/v1\ntime {timestamp}\n{body}");
            key.verify(message.as_bytes(), &rest[8..]).ok().map(|()| timestamp)
        }
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The signer's key name.
    pub name: String,
    /// Key id followed by the signature.
    pub bytes: Vec<u8>,
}

impl Signature {
    /// Parses one `— name base64` line.
    ///
    /// # Errors
    /// When it is not one.
    pub fn parse_line(line: &str) -> Result<Self, NoteError> {
        let rest =
            line.strip_prefix("\u{2014} ").ok_or(NoteError::Malformed("a signature line starts with an em dash"))?;
        let (name, b64) = rest.trim_end_matches('\n').split_once(' ').ok_or(NoteError::Malformed("signature line"))?;
        let bytes = B64.decode(b64).map_err(|_| NoteError::Malformed("signature is not base64"))?;
        if bytes.len() < 5 || !valid_name(name) {
            return Err(NoteError::Malformed("signature line"));
        }
        Ok(Self { name: name.to_owned(), bytes })
    }
}

/// A parsed signed note: its body and signatures.
#[derive(Debug, Clone)]
pub struct Note {
    /// The text that was signed (each line ending with a newline).
    pub body: String,
    /// The signature lines.
    pub signatures: Vec<Signature>,
}

impl Note {
    /// Splits a signed note into body and signatures.
    ///
    /// # Errors
    /// When it is not a signed note.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        if text.len() > 1_000_000 {
            return Err(NoteError::Malformed("too long"));
        }
        let i = text.rfind("\n\n").ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let body = text[..=i].to_owned();
        let signatures =
            text[i + 2..].split_inclusive('\n').map(Signature::parse_line).collect::<Result<Vec<_>, _>>()?;
        if signatures.is_empty() || !text.ends_with('\n') {
            return Err(NoteError::Malformed("no signatures"));
        }
        Ok(Self { body, signatures })
    }
}

/// A checkpoint's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: Hash,
}

impl Checkpoint {
    /// Reads the first three lines of a checkpoint body.
    ///
    /// # Errors
    /// When they are not a checkpoint.
    pub fn parse_body(body: &str) -> Result<Self, NoteError> {
        let mut lines = body.split('\n');
        let origin = lines.next().filter(|s| !s.is_empty()).ok_or(NoteError::Malformed("origin"))?;
        let size = lines
            .next()
            .filter(|s| *s == "0" || (!s.starts_with('0') && !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())))
            .and_then(|s| s.parse().ok())
            .ok_or(NoteError::Malformed("size"))?;
        let root = lines.next().and_then(|s| B64.decode(s).ok()).ok_or(NoteError::Malformed("root"))?;
        let root: Hash = root.try_into().map_err(|_| NoteError::Malformed("root is not 32 bytes"))?;
        Ok(Self { origin: origin.to_owned(), size, root })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn checkpoints_are_signed_verified_and_cosigned() {
        let log = Signer::from_pkcs8("tiaki.test/audit", &Signer::generate_pkcs8().unwrap()).unwrap();
        let body = checkpoint_body("tiaki.test/audit", 42, &[7; 32]);
        let signed = log.sign(&body);
        let note = Note::parse(&signed).unwrap();
        assert_eq!(note.body, body);
        let v = Verifier::parse(&log.vkey()).unwrap();
        assert_eq!(v.verify(&note.body, &note.signatures[0]), Some(0));
        assert_eq!(v.verify(&body.replace("42", "43"), &note.signatures[0]), None);
        assert_eq!(Checkpoint::parse_body(&note.body).unwrap().size, 42);

        let witness = Signer::from_pkcs8("witness.test/w1", &Signer::generate_pkcs8().unwrap()).unwrap();
        let line = witness.cosign(&body, 1_700_000_000);
        let w = Verifier::parse(&witness.cosigner_vkey()).unwrap();
        assert!(w.is_cosigner());
        let sig = Signature::parse_line(&line).unwrap();
        assert_eq!(w.verify(&body, &sig), Some(1_700_000_000));
        assert_eq!(w.verify(&body.replace("42", "41"), &sig), None);
        // A log signature is not a cosignature, and keys are bound to names.
        assert_eq!(w.verify(&body, &note.signatures[0]), None);
        assert!(Verifier::parse(&log.vkey().replacen("tiaki.test", "evil.test", 1)).is_err());
    }

    #[test]
    fn go_sumdb_style_vkey_is_understood() {
        // The example verifier key from the signed-note specification's Go implementation.
        let v = Verifier::parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").unwrap();
        assert_eq!(v.name, "PeterNeumann");
        let note = Note::parse("If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n").unwrap();
        assert_eq!(v.verify(&note.body, &note.signatures[0]), Some(0));
    }
}
