//! The master key file: 32 random bytes in the data folder, mode 0600, made at first start.
//! The documents module wraps per-patient keys with it; a PKCS#11 provider comes with that work.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Could not read or write it.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Others can read it.
    #[error("{0}: the master key file must be readable by its owner only; run `chmod 600 {0}`")]
    TooOpen(PathBuf),
    /// Wrong size or content.
    #[error("{0}: the key file is damaged; restore it from backup")]
    Corrupt(PathBuf),
}

/// Where the key file lives in a data folder.
#[must_use]
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("master.key")
}

/// Creates the key file if it is missing (mode 0600) and checks it otherwise. Returns whether
/// it was created.
///
/// # Errors
/// [`KeyFileError`] saying what to do.
pub fn ensure_key_file(data_dir: &Path) -> Result<bool, KeyFileError> {
    let path = key_path(data_dir);
    let io = |source| KeyFileError::Io { path: path.clone(), source };
    match std::fs::metadata(&path) {
        Ok(meta) => {
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(KeyFileError::TooOpen(path));
            }
            if meta.len() != 32 {
                return Err(KeyFileError::Corrupt(path));
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = crate::security::random_bytes::<32>();
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(io)?;
            f.write_all(&key).map_err(io)?;
            f.sync_all().map_err(io)?;
            Ok(true)
        }
        Err(e) => Err(io(e)),
    }
}

/// Where the audit log's checkpoint-signing key lives in a data folder.
#[must_use]
pub fn signing_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("audit-signing.key")
}

/// Reads the audit log's Ed25519 signing key (PKCS#8), creating it (mode 0600) if missing.
///
/// # Errors
/// [`KeyFileError`] saying what to do.
pub fn ensure_signing_key(data_dir: &Path) -> Result<Vec<u8>, KeyFileError> {
    let path = signing_key_path(data_dir);
    let io = |source| KeyFileError::Io { path: path.clone(), source };
    match std::fs::metadata(&path) {
        Ok(meta) => {
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(KeyFileError::TooOpen(path));
            }
            std::fs::read(&path).map_err(io)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = audit::note::Signer::generate_pkcs8().map_err(|_| KeyFileError::Corrupt(path.clone()))?;
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(io)?;
            f.write_all(&key).map_err(io)?;
            f.sync_all().map_err(io)?;
            Ok(key)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn key_file_is_private_and_checked() {
        let dir = std::env::temp_dir().join(format!("tiaki-key-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(ensure_key_file(&dir).unwrap());
        let meta = std::fs::metadata(key_path(&dir)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), 32);
        assert!(!ensure_key_file(&dir).unwrap());
        std::fs::set_permissions(key_path(&dir), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(ensure_key_file(&dir), Err(KeyFileError::TooOpen(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
