//! A sealed document as stored: a header, then 64 KiB chunks each sealed with its tag (see
//! [`crate::stream`]). This module does the arithmetic of reading one — which part of the blob a
//! byte range needs — and the reader that authenticates and decrypts those chunks as they arrive,
//! releasing no byte of a chunk that fails.

use crate::stream::{CHUNK, HEADER, Opener, SEALED_CHUNK, TAG};
use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

/// The sealed size of a document of `size` plaintext bytes.
#[must_use]
pub fn sealed_len(size: u64) -> u64 {
    let chunks = size.div_ceil(CHUNK as u64).max(1);
    HEADER as u64 + size + chunks * TAG as u64
}

/// What reading a byte range of a document takes: which chunks, which bytes of the blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadPlan {
    /// The first chunk read.
    pub first_index: u64,
    /// The last chunk read.
    pub end_index: u64,
    /// The document's last chunk.
    pub last_index: u64,
    /// Plaintext bytes to drop from the start of the first chunk.
    pub skip: u64,
    /// Plaintext bytes to deliver.
    pub length: u64,
    /// The blob's bytes after the header that hold those chunks.
    pub blob_from: u64,
    /// The end (exclusive) of those bytes.
    pub blob_to: u64,
}

impl ReadPlan {
    /// The plan for `range` (inclusive; `None` for all) of a document of `size` bytes.
    #[must_use]
    pub fn new(size: u64, range: Option<(u64, u64)>) -> Self {
        let last_index = size.div_ceil(CHUNK as u64).max(1) - 1;
        let (start, end) = range.unwrap_or((0, size.saturating_sub(1)));
        let (first_index, end_index) = if size == 0 { (0, 0) } else { (start / CHUNK as u64, end / CHUNK as u64) };
        let blob_from = HEADER as u64 + first_index * SEALED_CHUNK as u64;
        let blob_to = (HEADER as u64 + (end_index + 1) * SEALED_CHUNK as u64).min(sealed_len(size));
        let length = if size == 0 { 0 } else { end - start + 1 };
        Self {
            first_index,
            end_index,
            last_index,
            skip: start - first_index * CHUNK as u64,
            length,
            blob_from,
            blob_to,
        }
    }
}

/// Why a read stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A chunk did not authenticate, or the blob ended early: nothing more is released.
    #[error("the document failed authentication ({0}); nothing more is released")]
    Damaged(&'static str),
    /// The blob store failed.
    #[error("the document's blob could not be read: {0}")]
    Source(String),
}

/// Authenticates and decrypts the chunks of one read, in order, from the blob's bytes.
pub struct DocumentReader<S> {
    source: S,
    /// Sealed bytes received and not yet opened. Chunks are split off it without copying, and
    /// a piece from the source that arrives when it is empty is taken over whole.
    buf: BytesMut,
    opener: Opener,
    index: u64,
    plan: ReadPlan,
    size: u64,
    skip: usize,
    remaining: u64,
}

impl<S> std::fmt::Debug for DocumentReader<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentReader").field("index", &self.index).field("plan", &self.plan).finish_non_exhaustive()
    }
}

impl<S, E> DocumentReader<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    /// A reader of `plan` over `source` (the blob's bytes `plan.blob_from..plan.blob_to`), with an
    /// opener made from the blob's header.
    ///
    /// # Errors
    /// When the plan starts past the chunks a stream can number.
    pub fn new(source: S, opener: Opener, plan: ReadPlan, size: u64) -> Result<Self, ReadError> {
        let first = u32::try_from(plan.first_index).map_err(|_| ReadError::Damaged("too many chunks"))?;
        Ok(Self {
            source,
            buf: BytesMut::new(),
            opener: opener.starting_at(first),
            index: plan.first_index,
            plan,
            size,
            skip: usize::try_from(plan.skip).unwrap_or(0),
            remaining: plan.length,
        })
    }

    /// Checks the one (empty) chunk of an empty document.
    ///
    /// # Errors
    /// When it does not authenticate.
    pub async fn check_empty(&mut self) -> Result<(), ReadError> {
        self.remaining = 1;
        let r = self.next_chunk().await;
        self.remaining = 0;
        r.map(|_| ())
    }

    /// The next chunk's plaintext (trimmed to the range), or `None` when the range is done.
    ///
    /// # Errors
    /// When a chunk does not authenticate, the blob ends early or the source fails.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, ReadError> {
        if self.remaining == 0 || self.index > self.plan.end_index {
            return Ok(None);
        }
        let is_last = self.index == self.plan.last_index;
        let want = if is_last {
            usize::try_from(self.size - self.plan.last_index * CHUNK as u64).map_err(|_| ReadError::Damaged("size"))?
                + TAG
        } else {
            SEALED_CHUNK
        };
        while self.buf.len() < want {
            match self.source.next().await {
                Some(Ok(b)) if self.buf.is_empty() => {
                    self.buf = b.try_into_mut().unwrap_or_else(|shared| BytesMut::from(&shared[..]));
                }
                Some(Ok(b)) => self.buf.extend_from_slice(&b),
                Some(Err(e)) => return Err(ReadError::Source(e.to_string())),
                None => return Err(ReadError::Damaged("truncated")),
            }
        }
        let mut chunk = self.buf.split_to(want);
        let plain = self.opener.open_in_place(&mut chunk, is_last).map_err(|_| ReadError::Damaged("chunk"))?;
        chunk.truncate(plain);
        self.index += 1;
        let skip = std::mem::take(&mut self.skip).min(chunk.len());
        chunk.advance(skip);
        let take = usize::try_from(self.remaining).unwrap_or(usize::MAX).min(chunk.len());
        chunk.truncate(take);
        self.remaining -= take as u64;
        Ok(Some(chunk.freeze()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sealed_lengths_match_the_cipher() {
        for n in [0usize, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK] {
            let sealed = crate::stream::seal_all(&[1; 32], b"x", &vec![0; n]).unwrap();
            assert_eq!(sealed.len() as u64, sealed_len(n as u64), "{n}");
        }
    }

    #[test]
    fn sealed_lengths_and_plans_match_the_cipher() {
        assert_eq!(sealed_len(0), HEADER as u64 + TAG as u64);
        assert_eq!(sealed_len(CHUNK as u64), HEADER as u64 + CHUNK as u64 + TAG as u64);
        assert_eq!(sealed_len(CHUNK as u64 + 1), HEADER as u64 + CHUNK as u64 + 1 + 2 * TAG as u64);
        let size = 3 * CHUNK as u64 + 10;
        let all = ReadPlan::new(size, None);
        assert_eq!((all.first_index, all.end_index, all.last_index, all.length), (0, 3, 3, size));
        assert_eq!((all.blob_from, all.blob_to), (HEADER as u64, sealed_len(size)));
        // A range inside the second chunk reads only that chunk and drops what precedes it.
        let mid = ReadPlan::new(size, Some((CHUNK as u64 + 5, CHUNK as u64 + 9)));
        assert_eq!((mid.first_index, mid.end_index, mid.skip, mid.length), (1, 1, 5, 5));
        assert_eq!(mid.blob_to - mid.blob_from, SEALED_CHUNK as u64);
        assert_eq!(ReadPlan::new(0, None).length, 0);
    }
}
