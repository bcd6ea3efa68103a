//! Streaming AEAD: the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár) over
//! AES-256-GCM. The plaintext is cut into 64 KiB chunks; chunk `i` is sealed under the nonce
//! `prefix (7 random bytes) ‖ i (u32, big-endian) ‖ last (0x00 or 0x01)`, with the document's
//! AAD (its id, version, patient and practice). So reordering, dropping, duplicating or
//! truncating chunks, splicing chunks from another document, or changing one byte all fail
//! authentication; nothing is released from a chunk until its tag verifies.
//!
//! Ciphertext layout: `MAGIC (6) ‖ prefix (7)`, then each chunk's ciphertext followed by its
//! 16-byte tag. Every chunk but the last holds exactly [`CHUNK`] bytes of plaintext; the last
//! holds 0..=CHUNK (an empty document is one empty final chunk).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
/// Authentication tag bytes per chunk.
pub const TAG: usize = 16;
/// A full chunk of ciphertext.
pub const SEALED_CHUNK: usize = CHUNK + TAG;
/// Identifies the format (and its version) at the start of every blob.
pub const MAGIC: &[u8; 6] = b"TIAKI\x01";
/// Header length: magic and nonce prefix.
pub const HEADER: usize = MAGIC.len() + PREFIX;
const PREFIX: usize = 7;

/// Why a stream could not be sealed or opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// Authentication failed: the ciphertext, its order or its context is not what was sealed.
    #[error("the document failed authentication: it is damaged, truncated, reordered or not this document")]
    Authentication,
    /// Not a Tiaki blob, or a version this build does not read.
    #[error("not an encrypted Tiaki document")]
    Format,
    /// More chunks than the counter allows (256 TiB).
    #[error("the document is too large")]
    TooLarge,
    /// Data was given after the last chunk.
    #[error("the stream was already finished")]
    Finished,
}

fn nonce(prefix: [u8; PREFIX], counter: u32, last: bool) -> Nonce {
    let mut n = [0u8; NONCE_LEN];
    n[..PREFIX].copy_from_slice(&prefix);
    n[PREFIX..PREFIX + 4].copy_from_slice(&counter.to_be_bytes());
    n[NONCE_LEN - 1] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

fn key(dek: &[u8; 32]) -> LessSafeKey {
    // A 32-byte key is always valid for AES-256-GCM.
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, dek).unwrap_or_else(|_| unreachable!("32-byte AES key")))
}

/// Seals a document chunk by chunk.
pub struct Sealer {
    key: LessSafeKey,
    prefix: [u8; PREFIX],
    counter: u32,
    aad: Vec<u8>,
    finished: bool,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("counter", &self.counter).finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer for one document version with a fresh data key; returns it and the header to
    /// write first.
    ///
    /// # Errors
    /// When the system RNG fails.
    pub fn new(dek: &[u8; 32], aad: &[u8]) -> Result<(Self, Vec<u8>), StreamError> {
        let mut prefix = [0u8; PREFIX];
        aws_lc_rs::rand::fill(&mut prefix).map_err(|_| StreamError::Format)?;
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&prefix);
        Ok((Self { key: key(dek), prefix, counter: 0, aad: aad.to_vec(), finished: false }, header))
    }

    /// Seals one chunk in place (`buf` grows by the tag). Every chunk but the last must be
    /// exactly [`CHUNK`] bytes.
    ///
    /// # Errors
    /// [`StreamError::Finished`] after the last chunk, [`StreamError::TooLarge`] past 2^32 chunks.
    pub fn seal(&mut self, buf: &mut Vec<u8>, last: bool) -> Result<(), StreamError> {
        if self.finished || (!last && buf.len() != CHUNK) || buf.len() > CHUNK {
            return Err(StreamError::Finished);
        }
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce(self.prefix, self.counter, last), Aad::from(&self.aad), buf)
            .map_err(|_| StreamError::Authentication)?;
        buf.extend_from_slice(tag.as_ref());
        self.counter = self.counter.checked_add(1).ok_or(StreamError::TooLarge)?;
        self.finished = last;
        Ok(())
    }
}

/// Opens a sealed document chunk by chunk.
pub struct Opener {
    key: LessSafeKey,
    prefix: [u8; PREFIX],
    counter: u32,
    aad: Vec<u8>,
    finished: bool,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener").field("counter", &self.counter).finish_non_exhaustive()
    }
}

impl Opener {
    /// An opener for a blob whose first [`HEADER`] bytes are `header`.
    ///
    /// # Errors
    /// [`StreamError::Format`] if the header is not a Tiaki header.
    pub fn new(dek: &[u8; 32], aad: &[u8], header: &[u8]) -> Result<Self, StreamError> {
        if header.len() != HEADER || &header[..MAGIC.len()] != MAGIC {
            return Err(StreamError::Format);
        }
        let mut prefix = [0u8; PREFIX];
        prefix.copy_from_slice(&header[MAGIC.len()..]);
        Ok(Self { key: key(dek), prefix, counter: 0, aad: aad.to_vec(), finished: false })
    }

    /// Starts at chunk `index` instead of the first (for range reads): the chunk read next must
    /// be the one sealed at that position, or it fails authentication.
    #[must_use]
    pub const fn starting_at(mut self, index: u32) -> Self {
        self.counter = index;
        self
    }

    /// Opens one sealed chunk in place (`buf` shrinks to its plaintext). `last` is whether the
    /// reader found the end of the blob after it.
    ///
    /// # Errors
    /// [`StreamError::Authentication`] for anything but the exact chunk sealed at this position.
    pub fn open(&mut self, buf: &mut Vec<u8>, last: bool) -> Result<(), StreamError> {
        let n = self.open_in_place(buf, last)?;
        buf.truncate(n);
        Ok(())
    }

    /// Opens one sealed chunk in place and returns the length of its plaintext, at the start of
    /// `buf` (what follows it is the spent tag).
    ///
    /// # Errors
    /// As for [`Opener::open`].
    pub fn open_in_place(&mut self, buf: &mut [u8], last: bool) -> Result<usize, StreamError> {
        if self.finished {
            return Err(StreamError::Finished);
        }
        if buf.len() < TAG || buf.len() > SEALED_CHUNK || (!last && buf.len() != SEALED_CHUNK) {
            return Err(StreamError::Authentication);
        }
        let n = self
            .key
            .open_in_place(nonce(self.prefix, self.counter, last), Aad::from(&self.aad), buf)
            .map_err(|_| StreamError::Authentication)?
            .len();
        self.counter = self.counter.checked_add(1).ok_or(StreamError::TooLarge)?;
        self.finished = last;
        Ok(n)
    }

    /// Whether the final chunk has been opened (a stream that ends before it is truncated).
    #[must_use]
    pub const fn finished(&self) -> bool {
        self.finished
    }
}

/// Seals a whole document held in memory (tests and small documents).
///
/// # Errors
/// As for [`Sealer`].
pub fn seal_all(dek: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, StreamError> {
    let (mut sealer, mut out) = Sealer::new(dek, aad)?;
    let mut chunks = plaintext.chunks(CHUNK).peekable();
    if chunks.peek().is_none() {
        let mut empty = Vec::new();
        sealer.seal(&mut empty, true)?;
        out.extend_from_slice(&empty);
    }
    while let Some(c) = chunks.next() {
        let mut buf = c.to_vec();
        sealer.seal(&mut buf, chunks.peek().is_none())?;
        out.extend_from_slice(&buf);
    }
    Ok(out)
}

/// Opens a whole sealed document held in memory.
///
/// # Errors
/// As for [`Opener`]; a blob that ends before its final chunk is [`StreamError::Authentication`].
pub fn open_all(dek: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, StreamError> {
    if sealed.len() < HEADER {
        return Err(StreamError::Format);
    }
    let mut opener = Opener::new(dek, aad, &sealed[..HEADER])?;
    let body = &sealed[HEADER..];
    let mut out = Vec::with_capacity(body.len());
    let mut chunks = body.chunks(SEALED_CHUNK).peekable();
    while let Some(c) = chunks.next() {
        let mut buf = c.to_vec();
        opener.open(&mut buf, chunks.peek().is_none())?;
        out.extend_from_slice(&buf);
    }
    if !opener.finished() {
        return Err(StreamError::Authentication);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    const DEK: [u8; 32] = [7; 32];

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| u8::try_from(i % 251).unwrap()).collect()
    }

    #[test]
    fn round_trips_at_the_chunk_edges() {
        for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 10 * 1024 * 1024] {
            let p = data(n);
            let sealed = seal_all(&DEK, b"doc-1", &p).unwrap();
            assert_eq!(sealed.len(), HEADER + n + TAG * n.div_ceil(CHUNK).max(1), "{n}");
            assert_eq!(open_all(&DEK, b"doc-1", &sealed).unwrap(), p, "{n}");
        }
    }

    #[test]
    fn a_reader_can_start_at_any_chunk_but_only_the_right_one() {
        let p = data(3 * CHUNK + 10);
        let sealed = seal_all(&DEK, b"doc-1", &p).unwrap();
        let chunk =
            |i: usize| sealed[HEADER + i * SEALED_CHUNK..(HEADER + (i + 1) * SEALED_CHUNK).min(sealed.len())].to_vec();
        let mut o = Opener::new(&DEK, b"doc-1", &sealed[..HEADER]).unwrap().starting_at(2);
        let mut c2 = chunk(2);
        o.open(&mut c2, false).unwrap();
        assert_eq!(c2, p[2 * CHUNK..3 * CHUNK]);
        let mut c3 = chunk(3);
        o.open(&mut c3, true).unwrap();
        assert_eq!(c3, p[3 * CHUNK..]);
        // Chunk 1 presented as chunk 2 fails.
        let mut wrong = chunk(1);
        let mut o = Opener::new(&DEK, b"doc-1", &sealed[..HEADER]).unwrap().starting_at(2);
        assert_eq!(o.open(&mut wrong, false), Err(StreamError::Authentication));
    }

    #[test]
    fn every_kind_of_tampering_fails() {
        let p = data(3 * CHUNK + 10);
        let sealed = seal_all(&DEK, b"doc-1", &p).unwrap();
        let body = |s: &[u8]| s[HEADER..].to_vec();
        // A flipped byte anywhere.
        for pos in [HEADER, HEADER + CHUNK, sealed.len() - 1, 8] {
            let mut t = sealed.clone();
            t[pos] ^= 1;
            assert!(open_all(&DEK, b"doc-1", &t).is_err(), "flip at {pos}");
        }
        // Truncated at a chunk boundary (drops the final chunk) and mid-chunk.
        assert!(open_all(&DEK, b"doc-1", &sealed[..HEADER + SEALED_CHUNK]).is_err());
        assert!(open_all(&DEK, b"doc-1", &sealed[..sealed.len() - 5]).is_err());
        // Two chunks swapped.
        let b = body(&sealed);
        let mut swapped = sealed[..HEADER].to_vec();
        swapped.extend_from_slice(&b[SEALED_CHUNK..2 * SEALED_CHUNK]);
        swapped.extend_from_slice(&b[..SEALED_CHUNK]);
        swapped.extend_from_slice(&b[2 * SEALED_CHUNK..]);
        assert!(open_all(&DEK, b"doc-1", &swapped).is_err());
        // Another document's context, or another key.
        assert_eq!(open_all(&DEK, b"doc-2", &sealed), Err(StreamError::Authentication));
        assert!(open_all(&[8; 32], b"doc-1", &sealed).is_err());
        // A chunk spliced in from another sealing of the same plaintext under the same key.
        let other = seal_all(&DEK, b"doc-1", &p).unwrap();
        let mut spliced = sealed[..HEADER + SEALED_CHUNK].to_vec();
        spliced.extend_from_slice(&other[HEADER + SEALED_CHUNK..]);
        assert!(open_all(&DEK, b"doc-1", &spliced).is_err());
        // Not a Tiaki blob at all.
        assert_eq!(open_all(&DEK, b"doc-1", b"%PDF-1.7 plain"), Err(StreamError::Format));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn any_length_round_trips_and_the_ciphertext_hides_the_plaintext(n in 0usize..(3 * CHUNK + 7)) {
            let p = data(n);
            let sealed = seal_all(&DEK, b"aad", &p).unwrap();
            prop_assert_eq!(open_all(&DEK, b"aad", &sealed).unwrap(), p.clone());
            if n >= 32 {
                prop_assert!(!sealed.windows(32).any(|w| w == &p[..32]));
            }
        }
    }
}
