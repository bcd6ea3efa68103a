//! Where encrypted document blobs live: a local folder (the default) or any S3-compatible store,
//! both through `object_store`. Object keys are random and say nothing about what they hold.
//! Writes are durable when `finish` returns (the folder store fsyncs the file and its directory).

use crate::config::BlobSettings;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, WriteMultipart};
use secrecy::ExposeSecret;
use std::ops::Range;
use std::sync::Arc;

/// A blob store failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// There is no blob with this key.
    #[error("no such blob")]
    NotFound,
    /// The store could not be reached or refused the operation.
    #[error("blob store: {0}")]
    Store(String),
}

impl From<object_store::Error> for BlobError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => Self::NotFound,
            other => Self::Store(other.to_string()),
        }
    }
}

/// Parts uploaded to S3 are this big (S3 wants at least 5 MiB for all but the last); memory per
/// upload stays within a few of them whatever the document's size.
const PART: usize = 8 * 1024 * 1024;

/// A local file is read this much per blocking task: memory per download stays at one piece,
/// and a 256 KiB document is one read.
const FILE_PIECE: u64 = 256 * 1024 + 4096;

/// `range` of an open local file, read in pieces of [`FILE_PIECE`] on the blocking pool.
fn file_stream(file: std::fs::File, range: Range<u64>) -> BoxStream<'static, Result<Bytes, BlobError>> {
    futures_util::stream::try_unfold((file, range.start, range.end), |(file, at, end)| async move {
        if at >= end {
            return Ok(None);
        }
        let want = (end - at).min(FILE_PIECE);
        tokio::task::spawn_blocking(move || {
            use std::os::unix::fs::FileExt;
            let len = usize::try_from(want).map_err(|_| BlobError::Store("piece too large".into()))?;
            let mut buf = vec![0; len];
            file.read_exact_at(&mut buf, at).map_err(|e| BlobError::Store(format!("reading a blob: {e}")))?;
            Ok(Some((Bytes::from(buf), (file, at + want, end))))
        })
        .await
        .map_err(|e| BlobError::Store(format!("reading a blob: {e}")))?
    })
    .boxed()
}

/// The blob store in use.
#[derive(Debug, Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    kind: &'static str,
    /// For the folder store, its folder (to find the staging files of interrupted uploads).
    root: Option<std::path::PathBuf>,
}

/// A blob being written.
pub struct BlobWriter {
    inner: WriteMultipart,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlobWriter")
    }
}

impl BlobWriter {
    /// Queues bytes; waits when too many parts are in flight, so memory stays bounded.
    ///
    /// # Errors
    /// When an earlier part failed to upload.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        self.inner.wait_for_capacity(2).await?;
        self.inner.write(bytes);
        Ok(())
    }

    /// Completes the blob; it is durable when this returns.
    ///
    /// # Errors
    /// When the store refuses.
    pub async fn finish(self) -> Result<(), BlobError> {
        self.inner.finish().await?;
        Ok(())
    }

    /// Abandons the blob.
    pub async fn abort(self) {
        let _ = self.inner.abort().await;
    }
}

impl Blobs {
    /// The store the configuration asks for.
    ///
    /// # Errors
    /// When the folder cannot be made or the S3 settings are unusable.
    pub fn from_settings(settings: &BlobSettings) -> Result<Self, BlobError> {
        match settings {
            BlobSettings::Folder(dir) => Self::folder(dir),
            BlobSettings::S3 { bucket, endpoint, region, access_key_id, secret_access_key } => {
                let s3 = object_store::aws::AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_endpoint(endpoint)
                    .with_region(region)
                    .with_access_key_id(access_key_id)
                    .with_secret_access_key(secret_access_key.expose_secret())
                    .with_allow_http(endpoint.starts_with("http://"))
                    .build()
                    .map_err(|e| BlobError::Store(e.to_string()))?;
                Ok(Self { store: Arc::new(s3), kind: "s3", root: None })
            }
        }
    }

    /// A folder store (created 0700 if missing).
    ///
    /// # Errors
    /// When the folder cannot be made.
    pub fn folder(dir: &std::path::Path) -> Result<Self, BlobError> {
        use std::os::unix::fs::DirBuilderExt;
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| BlobError::Store(format!("cannot create {}: {e}", dir.display())))?;
        }
        let fs =
            object_store::local::LocalFileSystem::new_with_prefix(dir)?.with_fsync(true).with_automatic_cleanup(true);
        Ok(Self { store: Arc::new(fs), kind: "folder", root: Some(dir.to_owned()) })
    }

    /// The same store with every key under `prefix` (tests sharing one bucket).
    #[must_use]
    pub fn with_prefix(self, prefix: &str) -> Self {
        Self {
            store: Arc::new(object_store::prefix::PrefixStore::new(self.store, prefix)),
            kind: self.kind,
            root: self.root.map(|r| r.join(prefix)),
        }
    }

    /// `folder` or `s3`.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        self.kind
    }

    /// A fresh random object key: 128 random bits, fanned out by its first byte.
    #[must_use]
    pub fn new_key() -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        format!("d/{}/{id}", &id[..2])
    }

    fn path(key: &str) -> Result<Path, BlobError> {
        Path::parse(key).map_err(|e| BlobError::Store(e.to_string()))
    }

    /// Starts writing a blob.
    ///
    /// # Errors
    /// When the store refuses.
    pub async fn writer(&self, key: &str) -> Result<BlobWriter, BlobError> {
        let upload = self.store.put_multipart(&Self::path(key)?).await?;
        Ok(BlobWriter { inner: WriteMultipart::new_with_chunk_size(upload, PART) })
    }

    /// Writes a whole small blob at once (tests, tamper tools).
    ///
    /// # Errors
    /// When the store refuses.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        self.store.put(&Self::path(key)?, Bytes::from(bytes).into()).await?;
        Ok(())
    }

    /// Reads part (or all) of a blob as a stream, with the blob's total size.
    ///
    /// # Errors
    /// [`BlobError::NotFound`], or when the store fails.
    pub async fn read(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<(u64, BoxStream<'static, Result<Bytes, BlobError>>), BlobError> {
        let options = GetOptions { range: range.map(GetRange::Bounded), ..GetOptions::default() };
        let got = self.store.get_opts(&Self::path(key)?, options).await?;
        let size = got.meta.size;
        let range = got.range.clone();
        let stream = match got.payload {
            // `object_store` would read a local file 8 KiB per blocking task — a hand-off between
            // threads every 8 KiB, which cost more than the decryption; read it in large pieces.
            GetResultPayload::File(file, _) => file_stream(file, range),
            GetResultPayload::Stream(s) => s.map(|r| r.map_err(BlobError::from)).boxed(),
        };
        Ok((size, stream))
    }

    /// Reads a blob's first `header` bytes and `range` of the rest, with the blob's total size:
    /// one request when the range starts right after the header (a whole document), two otherwise.
    ///
    /// # Errors
    /// As for [`Blobs::read`]; [`BlobError::Store`] when the blob is shorter than its header.
    pub async fn read_after_header(
        &self,
        key: &str,
        header: u64,
        range: Range<u64>,
    ) -> Result<(u64, Vec<u8>, BoxStream<'static, Result<Bytes, BlobError>>), BlobError> {
        if range.start != header {
            let (size, head) = self.get_range_bytes(key, 0..header).await?;
            let (_, rest) = self.read(key, Some(range)).await?;
            return Ok((size, head, rest));
        }
        let (size, mut stream) = self.read(key, Some(0..range.end)).await?;
        let want = usize::try_from(header).map_err(|_| BlobError::Store("header too large".into()))?;
        let mut head = Vec::with_capacity(want);
        let mut left = Bytes::new();
        while head.len() < want {
            let Some(piece) = stream.next().await.transpose()? else {
                return Err(BlobError::Store("the blob ends inside its header".into()));
            };
            let take = (want - head.len()).min(piece.len());
            head.extend_from_slice(&piece[..take]);
            left = piece.slice(take..);
        }
        let rest = futures_util::stream::iter((!left.is_empty()).then_some(Ok(left))).chain(stream).boxed();
        Ok((size, head, rest))
    }

    /// Reads a small range into memory, with the blob's total size.
    ///
    /// # Errors
    /// As for [`Blobs::read`].
    pub async fn get_range_bytes(&self, key: &str, range: Range<u64>) -> Result<(u64, Vec<u8>), BlobError> {
        let options = GetOptions { range: Some(GetRange::Bounded(range)), ..GetOptions::default() };
        let got = self.store.get_opts(&Self::path(key)?, options).await?;
        let size = got.meta.size;
        Ok((size, got.bytes().await?.to_vec()))
    }

    /// Reads a whole blob into memory (tests, small reads).
    ///
    /// # Errors
    /// As for [`Blobs::read`].
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, BlobError> {
        Ok(self.store.get(&Self::path(key)?).await?.bytes().await?.to_vec())
    }

    /// Deletes a blob; one that is already gone is not an error.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.store.delete(&Self::path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The folder store's staging files of uploads that never completed (a crash mid-upload):
    /// the key each was for, its path and its last-modified time (seconds). S3 stores keep
    /// incomplete multipart uploads out of sight; a bucket lifecycle rule
    /// (`AbortIncompleteMultipartUpload`) clears them.
    #[must_use]
    pub fn staging_files(&self) -> Vec<(String, std::path::PathBuf, i64)> {
        let Some(root) = &self.root else { return Vec::new() };
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for e in entries.flatten() {
                let path = e.path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let Ok(rel) = path.strip_prefix(root) else { continue };
                let rel = rel.to_string_lossy();
                if let Some((key, _)) = rel.split_once('#') {
                    let modified = e
                        .metadata()
                        .ok()
                        .and_then(|m| m.modified().ok())
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                    out.push((key.to_owned(), path.clone(), modified));
                }
            }
        }
        out
    }

    /// Every blob key of Tiaki's with its last-modified time (seconds): only under Tiaki's own
    /// prefix (`d/`), so that whatever else shares the bucket or folder is never listed, let
    /// alone swept.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn list(&self) -> Result<Vec<(String, i64)>, BlobError> {
        let mut out = Vec::new();
        let prefix = Path::from("d");
        let mut listing = self.store.list(Some(&prefix));
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            out.push((meta.location.to_string(), meta.last_modified.timestamp()));
        }
        Ok(out)
    }
}
