//! Secrets that must work but must not sit in the database in the clear: each authenticator
//! app's TOTP secret is sealed (AES-256-GCM) under a fresh key of its own, and that key is
//! wrapped by the master key, as patients' keys are. Someone holding only the database (a
//! backup, a dump) cannot compute anyone's codes. The master key's rotation re-wraps them
//! ([`crate::console::Console::reseal_secrets`]).
//!
//! Stored as: `tiaki-sealed-v1:` ‖ master key id (length-prefixed) ‖ wrapped key (length-
//! prefixed) ‖ nonce ‖ ciphertext ‖ tag. A value without the prefix was stored before sealing;
//! it is read as it is, and sealed at the next start.

use crate::{App, AppError};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use crypto::PatientKey;

/// What every sealed secret starts with.
const MAGIC: &[u8] = b"tiaki-sealed-v1:";
/// What a sealed TOTP secret is bound to (its associated data).
const TOTP: &[u8] = b"tiaki totp secret";
/// What the sealed recovery-code pepper is bound to.
const PEPPER: &[u8] = b"tiaki recovery pepper";
/// The name the sealed recovery-code pepper is kept under (`settings`).
pub(crate) const PEPPER_NAME: &str = "recovery_pepper_sealed";

fn cipher(key: &PatientKey) -> Result<LessSafeKey, AppError> {
    let key = UnboundKey::new(&AES_256_GCM, key.bytes()).map_err(|_| AppError::Internal("secret key".into()))?;
    Ok(LessSafeKey::new(key))
}

/// What a TOTP secret is bound to: its purpose and its account.
fn totp_aad(account: domain::AccountId) -> Vec<u8> {
    let mut aad = TOTP.to_vec();
    aad.extend_from_slice(account.as_uuid().as_bytes());
    aad
}

/// Whether a stored secret is sealed.
pub(crate) fn is_sealed(stored: &[u8]) -> bool {
    stored.starts_with(MAGIC)
}

/// The master key id a sealed secret's key is wrapped under.
pub(crate) fn sealed_under(stored: &[u8]) -> Option<&str> {
    let rest = stored.strip_prefix(MAGIC)?;
    let (&len, rest) = rest.split_first()?;
    std::str::from_utf8(rest.get(..usize::from(len))?).ok()
}

impl App {
    /// Seals a TOTP secret for storing. Without a master key (a node set up without the
    /// documents module: tests of other parts only) it is stored as it is.
    /// Bound to its account: a sealed secret copied into another account's row does not open.
    pub(crate) fn seal_totp_secret(&self, account: domain::AccountId, plain: &[u8]) -> Result<Vec<u8>, AppError> {
        self.seal_secret(&totp_aad(account), plain)
    }

    /// Opens a stored TOTP secret of `account` (one stored before sealing is returned as it is).
    pub(crate) fn open_totp_secret(&self, account: domain::AccountId, stored: &[u8]) -> Result<Vec<u8>, AppError> {
        self.open_secret(&totp_aad(account), stored)
    }

    /// The key recovery codes are hashed with (HMAC-SHA-256): 32 random bytes made once and kept
    /// in the database sealed under a key the master key wraps, so the database alone cannot be
    /// used to guess codes. `None` without a master key (codes are then bare SHA-256, as before).
    pub(crate) async fn recovery_pepper(&self) -> Result<Option<Vec<u8>>, AppError> {
        if self.vault().is_err() {
            return Ok(None);
        }
        let pepper = self
            .pepper
            .get_or_try_init(|| async {
                let fresh = crate::identity::credentials::random_bytes::<32>()?;
                let sealed = self.seal_secret(PEPPER, &fresh)?;
                let stored = self.store.secret(PEPPER_NAME, &sealed).await?;
                self.open_secret(PEPPER, &stored)
            })
            .await?;
        Ok(Some(pepper.clone()))
    }

    /// Re-seals the stored recovery-code pepper under the current master key (after a
    /// rotation); true if it changed.
    pub(crate) async fn reseal_pepper(&self, grant: &authz::Grant<authz::MasterKeyCustody>) -> Result<bool, AppError> {
        let Some(pepper) = self.recovery_pepper().await? else { return Ok(false) };
        let stored = self.store.secret(PEPPER_NAME, &[]).await?;
        let fresh = self.seal_secret(PEPPER, &pepper)?;
        if sealed_under(&stored) == sealed_under(&fresh) {
            return Ok(false);
        }
        Ok(self.store.replace_secret(grant, PEPPER_NAME, &stored, &fresh).await?)
    }

    fn seal_secret(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, AppError> {
        let Ok(vault) = self.vault() else { return Ok(plain.to_vec()) };
        let key = PatientKey::random().map_err(crate::documents::key_error)?;
        let (master, wrapped) = vault.keys.wrap(&key)?;
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| AppError::Internal("random number generator".into()))?;
        let mut sealed = plain.to_vec();
        cipher(&key)?
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut sealed)
            .map_err(|_| AppError::Internal("sealing a secret".into()))?;
        let (id_len, wrapped_len) = (u8::try_from(master.len()), u8::try_from(wrapped.len()));
        let (Ok(id_len), Ok(wrapped_len)) = (id_len, wrapped_len) else {
            return Err(AppError::Internal("master key id or wrapped key too long".into()));
        };
        let mut out = MAGIC.to_vec();
        out.push(id_len);
        out.extend_from_slice(master.as_bytes());
        out.push(wrapped_len);
        out.extend_from_slice(&wrapped);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn open_secret(&self, aad: &[u8], stored: &[u8]) -> Result<Vec<u8>, AppError> {
        let Some(rest) = stored.strip_prefix(MAGIC) else { return Ok(stored.to_vec()) };
        let damaged = || AppError::Internal("a sealed secret is damaged".into());
        let (&id_len, rest) = rest.split_first().ok_or_else(damaged)?;
        let (id, rest) = rest.split_at_checked(usize::from(id_len)).ok_or_else(damaged)?;
        let (&wrapped_len, rest) = rest.split_first().ok_or_else(damaged)?;
        let (wrapped, rest) = rest.split_at_checked(usize::from(wrapped_len)).ok_or_else(damaged)?;
        let (nonce, sealed) = rest.split_at_checked(NONCE_LEN).ok_or_else(damaged)?;
        let master = std::str::from_utf8(id).map_err(|_| damaged())?;
        let key = self.vault()?.keys.unwrap(master, wrapped)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| damaged())?;
        let mut buf = sealed.to_vec();
        let plain = cipher(&key)?.open_in_place(nonce, Aad::from(aad), &mut buf).map_err(|_| damaged())?;
        Ok(plain.to_vec())
    }
}
