//! The key hierarchy: a master key held by a [`KeyProvider`], per-patient keys it wraps, and
//! per-document data keys each patient key wraps. Wrapping is AES-256-KWP (NIST SP 800-38F /
//! RFC 5649). Key bytes are zeroed when dropped and never printed.

use aws_lc_rs::key_wrap::{AES_256, KeyEncryptionKey, KeyWrapPadded};
use zeroize::Zeroizing;

/// Why a key could not be made, wrapped or unwrapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The wrapped key does not unwrap under this key: wrong key, damaged, or destroyed.
    #[error("the key could not be unwrapped (wrong or destroyed key, or damaged data)")]
    Unwrap,
    /// The random number generator or the cipher failed.
    #[error("key operation failed: {0}")]
    Crypto(&'static str),
    /// The key provider could not be reached or used.
    #[error("key provider: {0}")]
    Provider(String),
}

fn random32() -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let mut k = Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(k.as_mut()).map_err(|_| KeyError::Crypto("random number generator"))?;
    Ok(k)
}

fn kwp_wrap(kek: &[u8; 32], key: &[u8; 32]) -> Result<Vec<u8>, KeyError> {
    let kek = KeyEncryptionKey::new(&AES_256, kek).map_err(|_| KeyError::Crypto("key wrap"))?;
    let mut out = vec![0u8; 48];
    let n = kek.wrap_with_padding(key, &mut out).map_err(|_| KeyError::Crypto("key wrap"))?.len();
    out.truncate(n);
    Ok(out)
}

fn kwp_unwrap(kek: &[u8; 32], wrapped: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let kek = KeyEncryptionKey::new(&AES_256, kek).map_err(|_| KeyError::Crypto("key wrap"))?;
    let mut out = Zeroizing::new(vec![0u8; wrapped.len().max(16)]);
    let plain = kek.unwrap_with_padding(wrapped, &mut out).map_err(|_| KeyError::Unwrap)?;
    let mut key = Zeroizing::new([0u8; 32]);
    if plain.len() != 32 {
        return Err(KeyError::Unwrap);
    }
    key.copy_from_slice(plain);
    Ok(key)
}

macro_rules! key_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name(Zeroizing<[u8; 32]>);

        impl $name {
            /// A fresh random key.
            ///
            /// # Errors
            /// When the system RNG fails.
            pub fn random() -> Result<Self, KeyError> {
                random32().map(Self)
            }
            /// The key's bytes, for the cipher.
            #[must_use]
            pub fn bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(***)"))
            }
        }
    };
}

key_type!(
    /// The key one document version is encrypted with.
    DataKey
);
key_type!(
    /// A patient's key: wraps the data keys of all their documents. Destroying every wrapped
    /// copy of it crypto-shreds all of them.
    PatientKey
);

impl PatientKey {
    /// A patient key from its bytes (as a key provider unwraps them).
    ///
    /// # Errors
    /// [`KeyError::Unwrap`] unless there are exactly 32.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let mut k = Zeroizing::new([0u8; 32]);
        if bytes.len() != 32 {
            return Err(KeyError::Unwrap);
        }
        k.copy_from_slice(bytes);
        Ok(Self(k))
    }

    /// Wraps a document's data key for storage beside the document.
    ///
    /// # Errors
    /// When the cipher fails.
    pub fn wrap(&self, dk: &DataKey) -> Result<Vec<u8>, KeyError> {
        kwp_wrap(&self.0, &dk.0)
    }

    /// Unwraps a stored data key.
    ///
    /// # Errors
    /// [`KeyError::Unwrap`] if it was not wrapped by this key or was altered.
    pub fn unwrap(&self, wrapped: &[u8]) -> Result<DataKey, KeyError> {
        kwp_unwrap(&self.0, wrapped).map(DataKey)
    }
}

/// Holds the master key and wraps patient keys with it. Implementations: a key file
/// ([`FileKeyProvider`]) and a PKCS#11 token (documents module).
pub trait KeyProvider: Send + Sync + std::fmt::Debug {
    /// Which master key this is (stored beside each wrapped key, so rotation can find them).
    fn id(&self) -> &str;
    /// Wraps a patient key.
    ///
    /// # Errors
    /// When the provider fails.
    fn wrap_patient_key(&self, key: &PatientKey) -> Result<Vec<u8>, KeyError>;
    /// Unwraps a patient key.
    ///
    /// # Errors
    /// [`KeyError::Unwrap`] if it was not wrapped by this master key or was altered.
    fn unwrap_patient_key(&self, wrapped: &[u8]) -> Result<PatientKey, KeyError>;
}

/// The master key from a 32-byte key file.
pub struct FileKeyProvider {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for FileKeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileKeyProvider").field("id", &self.id).finish_non_exhaustive()
    }
}

impl FileKeyProvider {
    /// Uses `bytes` (exactly 32) as the master key; its id is derived from the key so a wrong
    /// file is recognised rather than silently used.
    ///
    /// # Errors
    /// [`KeyError::Provider`] for the wrong length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let key: [u8; 32] =
            bytes.try_into().map_err(|_| KeyError::Provider("a master key is exactly 32 bytes".into()))?;
        let digest = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &[b"tiaki master key id\n".as_slice(), &key].concat(),
        );
        let hex: Vec<String> = digest.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect();
        let id = format!("file:{}", hex.concat());
        Ok(Self { id, key: Zeroizing::new(key) })
    }
}

impl KeyProvider for FileKeyProvider {
    fn id(&self) -> &str {
        &self.id
    }
    fn wrap_patient_key(&self, key: &PatientKey) -> Result<Vec<u8>, KeyError> {
        kwp_wrap(&self.key, &key.0)
    }
    fn unwrap_patient_key(&self, wrapped: &[u8]) -> Result<PatientKey, KeyError> {
        kwp_unwrap(&self.key, wrapped).map(PatientKey)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_hierarchy_wraps_and_unwraps_and_refuses_the_wrong_key() {
        let master = FileKeyProvider::from_bytes(&[1; 32]).unwrap();
        let other = FileKeyProvider::from_bytes(&[2; 32]).unwrap();
        assert_ne!(master.id(), other.id());
        let pk = PatientKey::random().unwrap();
        let dk = DataKey::random().unwrap();
        let sealed_patient_key = master.wrap_patient_key(&pk).unwrap();
        let wrapped_dk = pk.wrap(&dk).unwrap();
        assert_eq!(wrapped_dk.len(), 40);
        assert!(!wrapped_dk.windows(32).any(|w| w == dk.bytes()), "the data key does not appear in clear");
        let pk2 = master.unwrap_patient_key(&sealed_patient_key).unwrap();
        assert_eq!(pk2.unwrap(&wrapped_dk).unwrap().bytes(), dk.bytes());
        assert_eq!(other.unwrap_patient_key(&sealed_patient_key).unwrap_err(), KeyError::Unwrap);
        let mut damaged = wrapped_dk.clone();
        damaged[3] ^= 1;
        assert_eq!(pk2.unwrap(&damaged).unwrap_err(), KeyError::Unwrap);
        assert_eq!(PatientKey::random().unwrap().unwrap(&wrapped_dk).unwrap_err(), KeyError::Unwrap);
        assert_eq!(format!("{pk:?}"), "PatientKey(***)");
    }

    #[test]
    fn rotation_rewraps_without_touching_data_keys() {
        let old = FileKeyProvider::from_bytes(&[1; 32]).unwrap();
        let new = FileKeyProvider::from_bytes(&[9; 32]).unwrap();
        let pk = PatientKey::random().unwrap();
        let dk = DataKey::random().unwrap();
        let sealed_dk = pk.wrap(&dk).unwrap();
        let rewrapped =
            new.wrap_patient_key(&old.unwrap_patient_key(&old.wrap_patient_key(&pk).unwrap()).unwrap()).unwrap();
        assert_eq!(new.unwrap_patient_key(&rewrapped).unwrap().unwrap(&sealed_dk).unwrap().bytes(), dk.bytes());
    }
}
