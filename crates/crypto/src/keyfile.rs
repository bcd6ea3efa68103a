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
            let key = random32();
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(io)?;
            f.write_all(&key).map_err(io)?;
            f.sync_all().map_err(io)?;
            Ok(true)
        }
        Err(e) => Err(io(e)),
    }
}

/// Where the next master key waits while a rotation is under way.
#[must_use]
pub fn next_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("master.key.next")
}

fn read_key(path: &Path) -> Result<crate::FileKeyProvider, KeyFileError> {
    let meta = std::fs::metadata(path).map_err(|source| KeyFileError::Io { path: path.to_owned(), source })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(KeyFileError::TooOpen(path.to_owned()));
    }
    let bytes = zeroize::Zeroizing::new(
        std::fs::read(path).map_err(|source| KeyFileError::Io { path: path.to_owned(), source })?,
    );
    crate::FileKeyProvider::from_bytes(&bytes).map_err(|_| KeyFileError::Corrupt(path.to_owned()))
}

/// The master keys in a data folder, the one to wrap with first: `master.key.next` while a
/// rotation is under way, then `master.key`, then any in `retired-keys/`.
///
/// # Errors
/// When `master.key` is missing, open to others or damaged.
pub fn load_master_files(data_dir: &Path) -> Result<Vec<std::sync::Arc<dyn crate::KeyProvider>>, KeyFileError> {
    let mut out: Vec<std::sync::Arc<dyn crate::KeyProvider>> = Vec::new();
    let next = next_key_path(data_dir);
    if next.exists() {
        out.push(std::sync::Arc::new(read_key(&next)?));
    }
    out.push(std::sync::Arc::new(read_key(&key_path(data_dir))?));
    // Retired keys still unwrap (never wrap) until the operator destroys their files, so no
    // patient key wrapped under one during a rotation is lost.
    if let Ok(entries) = std::fs::read_dir(data_dir.join("retired-keys")) {
        let mut retired: Vec<PathBuf> =
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "key")).collect();
        retired.sort();
        for path in retired {
            out.push(std::sync::Arc::new(read_key(&path)?));
        }
    }
    Ok(out)
}

/// Starts (or resumes) a master key rotation: makes `master.key.next` (0600) unless it exists.
/// Returns whether it was made now.
///
/// # Errors
/// [`KeyFileError`] saying what to do.
pub fn begin_master_rotation(data_dir: &Path) -> Result<bool, KeyFileError> {
    let path = next_key_path(data_dir);
    if path.exists() {
        read_key(&path)?;
        return Ok(false);
    }
    let io = |source| KeyFileError::Io { path: path.clone(), source };
    let key = zeroize::Zeroizing::new(random32());
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(io)?;
    f.write_all(key.as_ref()).map_err(io)?;
    f.sync_all().map_err(io)?;
    sync_dir(data_dir)?;
    Ok(true)
}

/// Ends a rotation once no patient key is under the old master key: the old key file moves to
/// `retired-keys/` (keep it only as long as backups made before the rotation), and the new one
/// becomes `master.key`. Returns where the old key went.
///
/// # Errors
/// [`KeyFileError`] saying what to do.
pub fn finish_master_rotation(data_dir: &Path) -> Result<PathBuf, KeyFileError> {
    let current = key_path(data_dir);
    let old = read_key(&current)?;
    let retired_dir = data_dir.join("retired-keys");
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| KeyFileError::Io { path, source }
    };
    std::fs::create_dir_all(&retired_dir).map_err(io(&retired_dir))?;
    std::fs::set_permissions(&retired_dir, std::fs::Permissions::from_mode(0o700)).map_err(io(&retired_dir))?;
    let id = crate::KeyProvider::id(&old).replace(':', "-");
    let retired = retired_dir.join(format!("master-{id}.key"));
    std::fs::rename(&current, &retired).map_err(io(&current))?;
    std::fs::rename(next_key_path(data_dir), &current).map_err(io(&current))?;
    sync_dir(data_dir)?;
    Ok(retired)
}

fn sync_dir(dir: &Path) -> Result<(), KeyFileError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| KeyFileError::Io { path: dir.to_owned(), source })
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

/// 32 bytes from the operating system's random number generator.
fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    // The system RNG does not fail on supported platforms; if it did, the key file would be
    // refused on reading (all zeros is no key anyone would rely on) rather than guessable.
    let _ = aws_lc_rs::rand::fill(&mut b);
    b
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
