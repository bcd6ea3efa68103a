//! The breached-password list an operator may supply (`TIAKI_BREACHED_PASSWORDS`): a text file
//! of SHA-1 hashes in upper- or lower-case hex, one a line, sorted, each optionally followed by
//! `:count` — the format of Have I Been Pwned's downloadable "ordered by hash" file. It is
//! searched in place (a binary search over byte offsets), so a file of any size costs a few
//! reads per lookup and no memory, and a file replaced while the portal runs is used at once.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// A sorted file of SHA-1 hashes.
#[derive(Debug, Clone)]
pub struct BreachedList {
    path: PathBuf,
}

impl BreachedList {
    /// Opens the list and checks that it looks like one.
    ///
    /// # Errors
    /// When the file cannot be read or its first line is not a SHA-1 hash.
    pub fn open(path: &Path) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        // The first thousand lines must be hashes in order: HIBP also publishes lists ordered
        // by how often each password was seen, which a binary search would silently miss in.
        let mut previous = String::new();
        for (n, line) in BufReader::new(file).lines().take(1000).enumerate() {
            let line = line.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let Some(hash) = hash_of_line(&line) else {
                return Err(format!(
                    "{} does not look like a breached-password list (line {}): each line should be a SHA-1 hash in hex (40 characters), optionally followed by :count",
                    path.display(),
                    n + 1
                ));
            };
            if hash < previous {
                return Err(format!(
                    "{} is not sorted by hash (line {}); use the list ordered by hash",
                    path.display(),
                    n + 1
                ));
            }
            previous = hash;
        }
        Ok(Self { path: path.to_owned() })
    }

    /// Whether the password's SHA-1 is in the list.
    ///
    /// # Errors
    /// When the file cannot be read.
    pub fn contains(&self, password: &str) -> Result<bool, String> {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes());
        let want = hex::encode_upper(digest.as_ref());
        let file = File::open(&self.path).map_err(|e| format!("cannot open {}: {e}", self.path.display()))?;
        let len = file.metadata().map_err(|e| format!("cannot read {}: {e}", self.path.display()))?.len();
        let mut reader = BufReader::new(file);
        // Find the first line starting at or after `lo` whose hash is >= want.
        let (mut lo, mut hi) = (0u64, len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match line_after(&mut reader, mid).map_err(|e| e.to_string())? {
                Some((start, hash)) if hash.as_str() < want.as_str() => lo = start.max(mid) + 1,
                _ => hi = mid,
            }
        }
        Ok(line_after(&mut reader, lo).map_err(|e| e.to_string())?.is_some_and(|(_, hash)| hash == want))
    }
}

/// The first whole line starting at or after `offset` (offset 0 is a line start), with where it
/// starts.
fn line_after(reader: &mut BufReader<File>, offset: u64) -> std::io::Result<Option<(u64, String)>> {
    let mut pos = offset;
    reader.seek(SeekFrom::Start(offset))?;
    let mut line = String::new();
    if offset > 0 {
        // Are we at a line start? Only if the byte before is a newline.
        reader.seek(SeekFrom::Start(offset - 1))?;
        let n = reader.read_line(&mut line)?;
        pos = offset - 1 + u64::try_from(n).unwrap_or(0);
        line.clear();
    }
    loop {
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(hash) = hash_of_line(&line) {
            return Ok(Some((pos, hash)));
        }
        pos += u64::try_from(n).unwrap_or(0);
        line.clear();
    }
}

/// The upper-case hash a line starts with.
fn hash_of_line(line: &str) -> Option<String> {
    let hash = line.trim().split(':').next()?;
    (hash.len() == 40 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then(|| hash.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sha1(s: &str) -> String {
        hex::encode_upper(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, s.as_bytes()))
    }

    #[test]
    fn finds_every_listed_password_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("tiaki-breached-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let listed: Vec<String> = (0..500).map(|i| format!("listed password {i}")).collect();
        let mut hashes: Vec<String> = listed.iter().map(|p| sha1(p)).collect();
        hashes.sort();
        // HIBP's format, counts of varied width, and a CRLF line ending or two.
        let body: String = hashes
            .iter()
            .enumerate()
            .map(|(i, h)| if i % 7 == 0 { format!("{h}:{}\r\n", i * 1000) } else { format!("{h}:{i}\n") })
            .collect();
        let path = dir.join("pwned.txt");
        std::fs::write(&path, body).unwrap();
        let list = BreachedList::open(&path).unwrap();
        for p in &listed {
            assert!(list.contains(p).unwrap(), "{p}");
        }
        for i in 0..500 {
            assert!(!list.contains(&format!("not listed {i}")).unwrap());
        }
        // Plain lower-case hashes with no counts work too; an empty list holds nothing.
        std::fs::write(&path, format!("{}\n", sha1("kettle").to_lowercase())).unwrap();
        assert!(BreachedList::open(&path).unwrap().contains("kettle").unwrap());
        std::fs::write(&path, "").unwrap();
        assert!(!BreachedList::open(&path).unwrap().contains("kettle").unwrap());
        std::fs::write(&path, "password123\n").unwrap();
        assert!(BreachedList::open(&path).is_err(), "not a hash list");
        std::fs::write(&path, format!("{}:9\n{}:1\n", sha1("b"), sha1("a"))).unwrap();
        let ordered = sha1("b") < sha1("a");
        assert_eq!(BreachedList::open(&path).is_ok(), ordered, "a list out of order is refused");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
