//! Short values sealed at rest: a document's title, file name and author, kept in their columns
//! as `sealed:v1:` and base64 of nonce ‖ ciphertext ‖ tag (AES-256-GCM). The key is derived from
//! the document's data key (HMAC-SHA-256 with a fixed label, so it is never the key the content's
//! STREAM uses), and the value is bound to its document and field by the associated data: a
//! sealed title moved to another document, or into the file name's column, does not open.

use crate::keys::{DataKey, KeyError};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;

/// What every sealed value starts with.
pub const SEALED_PREFIX: &str = "sealed:v1:";

fn field_key(data_key: &DataKey) -> Result<LessSafeKey, KeyError> {
    let mac = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, data_key.bytes());
    let derived = aws_lc_rs::hmac::sign(&mac, b"tiaki document details v1");
    let key = UnboundKey::new(&AES_256_GCM, derived.as_ref()).map_err(|_| KeyError::Crypto("field key"))?;
    Ok(LessSafeKey::new(key))
}

/// A data key's field key, derived once for sealing or opening many values (a patient's
/// record items, a list of documents).
pub struct FieldKey(LessSafeKey);

impl std::fmt::Debug for FieldKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FieldKey(…)")
    }
}

impl FieldKey {
    /// Derives the field key of a data key.
    ///
    /// # Errors
    /// When the cipher cannot be set up.
    pub fn new(data_key: &DataKey) -> Result<Self, KeyError> {
        field_key(data_key).map(Self)
    }

    /// Seals `plaintext` for the field named by `context` (for example `"<document id>/title"`).
    ///
    /// # Errors
    /// When the random number generator or the cipher fails.
    pub fn seal(&self, context: &str, plaintext: &str) -> Result<String, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| KeyError::Crypto("random number generator"))?;
        let mut sealed = plaintext.as_bytes().to_vec();
        self.0
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context.as_bytes()), &mut sealed)
            .map_err(|_| KeyError::Crypto("seal"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{SEALED_PREFIX}{}", B64.encode(out)))
    }

    /// Opens a value sealed for the same `context`; a value that is not sealed is returned as
    /// it is (check [`is_sealed`] first where only sealed values are acceptable).
    ///
    /// # Errors
    /// [`KeyError::Unwrap`] for a value that does not open under this key and context.
    pub fn open(&self, context: &str, stored: &str) -> Result<String, KeyError> {
        let Some(encoded) = stored.strip_prefix(SEALED_PREFIX) else { return Ok(stored.to_owned()) };
        let bytes = B64.decode(encoded).map_err(|_| KeyError::Unwrap)?;
        if bytes.len() < NONCE_LEN {
            return Err(KeyError::Unwrap);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::Unwrap)?;
        let mut buf = sealed.to_vec();
        let plain =
            self.0.open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf).map_err(|_| KeyError::Unwrap)?;
        String::from_utf8(plain.to_vec()).map_err(|_| KeyError::Unwrap)
    }
}

/// Seals `plaintext` for the field named by `context` (for example `"<document id>/title"`).
///
/// # Errors
/// When the random number generator or the cipher fails.
pub fn seal_field(data_key: &DataKey, context: &str, plaintext: &str) -> Result<String, KeyError> {
    FieldKey::new(data_key)?.seal(context, plaintext)
}

/// Whether a stored value is sealed (values written before sealing are plain until resealed).
#[must_use]
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

/// Opens a value sealed by [`seal_field`] for the same `context`; a value that is not sealed is
/// returned as it is.
///
/// # Errors
/// [`KeyError::Unwrap`] for a value that does not open under this key and context (another
/// document's, another field's, or altered).
pub fn open_field(data_key: &DataKey, context: &str, stored: &str) -> Result<String, KeyError> {
    FieldKey::new(data_key)?.open(context, stored)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_for_its_own_document_and_field() {
        let key = DataKey::random().unwrap();
        let sealed = seal_field(&key, "doc-1/title", "Discharge summary, Whangārei").unwrap();
        assert!(is_sealed(&sealed) && !sealed.contains("Discharge"));
        assert_eq!(open_field(&key, "doc-1/title", &sealed).unwrap(), "Discharge summary, Whangārei");
        assert!(open_field(&key, "doc-2/title", &sealed).is_err(), "another document's");
        assert!(open_field(&key, "doc-1/filename", &sealed).is_err(), "another field's");
        assert!(open_field(&DataKey::random().unwrap(), "doc-1/title", &sealed).is_err(), "another key");
        let mut altered = sealed.clone();
        altered.pop();
        assert!(open_field(&key, "doc-1/title", &altered).is_err());
        assert_ne!(seal_field(&key, "doc-1/title", "x").unwrap(), seal_field(&key, "doc-1/title", "x").unwrap());
        assert_eq!(open_field(&key, "doc-1/title", "plain, from before").unwrap(), "plain, from before");
    }
}
