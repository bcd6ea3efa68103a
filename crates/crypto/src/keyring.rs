//! The master keys a node holds: the one new patient keys are wrapped with, and any others still
//! needed during a rotation, re-read from the data folder when an unknown key id is met.

use crate::keyfile::{self, KeyFileError};
use crate::{KeyError, KeyProvider, PatientKey};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// The master keys: the one new patient keys are wrapped with, and any others still needed to
/// unwrap (during a rotation). Key files are re-read when a key id is met that is not loaded, so
/// a node keeps working after `tiaki keys rotate-master` has run beside it.
#[derive(Debug)]
pub struct KeyRing {
    providers: RwLock<Vec<Arc<dyn KeyProvider>>>,
    data_dir: Option<PathBuf>,
}

impl KeyRing {
    /// A ring of one provider (a token, or a key file that is never rotated underneath).
    #[must_use]
    pub fn single(provider: Arc<dyn KeyProvider>) -> Self {
        Self { providers: RwLock::new(vec![provider]), data_dir: None }
    }

    /// The key files in a data folder: `master.key`, and `master.key.next` while a rotation is
    /// under way.
    ///
    /// # Errors
    /// When `master.key` is missing or not a key.
    pub fn files(data_dir: &std::path::Path) -> Result<Self, KeyError> {
        let providers = keyfile::load_master_files(data_dir).map_err(file_error)?;
        Ok(Self { providers: RwLock::new(providers), data_dir: Some(data_dir.to_owned()) })
    }

    fn primary(&self) -> Result<Arc<dyn KeyProvider>, KeyError> {
        self.providers
            .read()
            .map_err(|_| KeyError::Provider("the key ring's lock is poisoned".into()))?
            .first()
            .cloned()
            .ok_or_else(|| KeyError::Provider("no master key is loaded".into()))
    }

    /// Re-reads the key files (a rotation may have begun or ended since they were loaded).
    ///
    /// # Errors
    /// When the files cannot be read.
    pub fn reload(&self) -> Result<(), KeyError> {
        if let Some(dir) = &self.data_dir {
            let fresh = keyfile::load_master_files(dir).map_err(file_error)?;
            let mut held =
                self.providers.write().map_err(|_| KeyError::Provider("the key ring's lock is poisoned".into()))?;
            // The files' first key becomes primary; no key once loaded is dropped (a rotation
            // may have retired a key that some patient key is still wrapped under).
            let mut merged = fresh;
            for p in held.iter() {
                if !merged.iter().any(|m| m.id() == p.id()) {
                    merged.push(p.clone());
                }
            }
            *held = merged;
        }
        Ok(())
    }

    fn find(&self, id: &str) -> Result<Option<Arc<dyn KeyProvider>>, KeyError> {
        Ok(self
            .providers
            .read()
            .map_err(|_| KeyError::Provider("the key ring's lock is poisoned".into()))?
            .iter()
            .find(|p| p.id() == id)
            .cloned())
    }

    /// Wraps a patient key with the primary master key; returns its id and the wrapped key.
    ///
    /// # Errors
    /// When the provider fails.
    pub fn wrap(&self, key: &PatientKey) -> Result<(String, Vec<u8>), KeyError> {
        // New patient keys are rare; re-reading the key files first means one is never wrapped
        // under a master key that a rotation has just retired.
        self.reload()?;
        let p = self.primary()?;
        Ok((p.id().to_owned(), p.wrap_patient_key(key)?))
    }

    /// Unwraps a patient key wrapped by master key `id`.
    ///
    /// # Errors
    /// When that master key is not available or the wrapped key does not unwrap.
    pub fn unwrap(&self, id: &str, wrapped: &[u8]) -> Result<PatientKey, KeyError> {
        let provider = if let Some(p) = self.find(id)? {
            p
        } else {
            self.reload()?;
            self.find(id)?.ok_or_else(|| {
                KeyError::Provider(format!(
                    "a patient key is wrapped by master key {id}, which is not loaded; restore that key file or token"
                ))
            })?
        };
        provider.unwrap_patient_key(wrapped)
    }

    /// The ids of the loaded master keys, primary first.
    #[must_use]
    pub fn ids(&self) -> Vec<String> {
        self.providers.read().map(|v| v.iter().map(|p| p.id().to_owned()).collect()).unwrap_or_default()
    }
}

#[expect(clippy::needless_pass_by_value, reason = "called through map_err")]
fn file_error(e: KeyFileError) -> KeyError {
    KeyError::Provider(e.to_string())
}
