//! Reading a document: the grant, the document and its patient key in one read, the read and
//! key-unwrap events on the record before the first byte, and the chunks authenticated and
//! decrypted as they stream (a byte range reads only the chunks it needs).

use super::{Documents, Download, StreamExt, aad};
use crate::audit::{Caller, Outcome, Target};
use crate::{App, AppError};
use authz::ReadDocument;
use crypto::sealed::{DocumentReader, ReadPlan, sealed_len};
use crypto::stream::{HEADER, Opener};
use domain::DocumentId;

/// Parses a single `bytes=` range against a size; `None` for no (or an unusable multi-) range.
///
/// # Errors
/// [`AppError::RangeNotSatisfiable`] when the range lies outside the document.
pub fn parse_range(header: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, AppError> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // several ranges: serve the whole document (RFC 9110 allows it)
    }
    let (a, b) = spec.split_once('-').ok_or(AppError::RangeNotSatisfiable(size))?;
    let (a, b) = (a.trim(), b.trim());
    let bad = AppError::RangeNotSatisfiable(size);
    let range = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| bad)?;
        if n == 0 || size == 0 {
            return Err(AppError::RangeNotSatisfiable(size));
        }
        (size.saturating_sub(n), size - 1)
    } else {
        let start: u64 = a.parse().map_err(|_| AppError::RangeNotSatisfiable(size))?;
        let end = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            b.parse().map_err(|_| AppError::RangeNotSatisfiable(size))?
        };
        if start >= size || end < start {
            return Err(AppError::RangeNotSatisfiable(size));
        }
        (start, end.min(size - 1))
    };
    Ok(Some(range))
}

impl App {
    pub(crate) async fn open_document_inner(
        &self,
        caller: &Caller,
        doc: DocumentId,
        range: Option<&str>,
        audited: bool,
    ) -> Result<Download, AppError> {
        let vault = self.vault()?;
        let grant = if audited {
            self.decide::<ReadDocument>(caller, doc).await?
        } else {
            authz::authorize::<ReadDocument, _>(&caller.principal, doc, &*self.store).await?
        };
        // The row and the patient key it is under, in one read behind the grant.
        let (row, key_row) = self.store.document_for_read(&grant).await?;
        self.guard_module(domain::detection::Switchable::Documents, Some(row.patient), None).await?;
        let size = u64::try_from(row.size).map_err(|_| AppError::Internal("negative document size".into()))?;
        let range = parse_range(range, size)?;
        let wrapped = key_row.as_ref().and_then(|k| k.wrapped.clone()).ok_or_else(|| {
            AppError::Gone(
                "This document can no longer be opened: its key has been destroyed (the record was erased).".into(),
            )
        })?;
        if audited {
            self.audit(vec![
                self.event(caller, &Target::of(&grant), Outcome::Allowed),
                self.unwrap_event(caller, row.patient, row.key_version),
            ])
            .await?;
        }
        let master = key_row.map(|k| k.master_key_id).unwrap_or_default();
        let patient_key = vault.keys.unwrap(&master, &wrapped)?;
        let data_key = patient_key
            .unwrap(&row.wrapped_key)
            .map_err(|_| AppError::Internal(format!("document {} has a data key that does not unwrap", row.id)))?;
        let aad = aad(row.id, row.version, row.patient, &row.aad_practice);
        let plan = ReadPlan::new(size, range);
        let read = vault.blobs.read_after_header(&row.blob_key, HEADER as u64, plan.blob_from..plan.blob_to).await;
        let (blob_size, header, source) =
            read.map_err(|e| AppError::Internal(format!("document {}: its blob cannot be read: {e}", row.id)))?;
        if blob_size != sealed_len(size) {
            tracing::error!(document = %row.id, "a document's blob has the wrong length: damaged or replaced");
            return Err(AppError::Internal(format!("document {} is damaged (blob length)", row.id)));
        }
        let opener = Opener::new(data_key.bytes(), &aad, &header)
            .map_err(|_| AppError::Internal(format!("document {} is damaged (header)", row.id)))?;
        let length = plan.length;
        let mut state = DocumentReader::new(source, opener, plan, size)
            .map_err(|e| AppError::Internal(format!("document {}: {e}", row.id)))?;
        // The first chunk is opened now, so a damaged or swapped blob fails before any header
        // goes out (for an empty document, the one empty chunk is still authenticated).
        let first = if size == 0 { state.check_empty().await.map(|()| None) } else { state.next_chunk().await };
        let first = first.map_err(|e| {
            tracing::error!(document = %row.id, error = %e, "a document failed authentication");
            AppError::Internal(format!("document {} failed authentication", row.id))
        })?;
        let rest = futures_util::stream::try_unfold(state, |mut s| async move {
            s.next_chunk().await.map(|c| c.map(|b| (b, s))).map_err(std::io::Error::other)
        });
        let body = futures_util::stream::iter(first.map(Ok)).chain(rest).boxed();
        let doc = super::open_details(row, Some(&data_key))?;
        Ok(Download { doc, range: range.filter(|_| size > 0), length, body })
    }
}

impl Documents<'_> {
    /// Opens a document to read it (optionally a byte range, as in an HTTP `Range` header). The
    /// read and the key unwrap are on the record before the first byte is served; the first
    /// chunk is authenticated before this returns, so a damaged or swapped blob is an error, not
    /// a download.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone who may not read it; [`AppError::Gone`] when the
    /// patient's key has been destroyed; [`AppError::RangeNotSatisfiable`]; [`AppError::Internal`]
    /// when the blob is missing, damaged or not this document's.
    pub async fn open(&self, caller: &Caller, doc: DocumentId, range: Option<&str>) -> Result<Download, AppError> {
        self.app.open_document_inner(caller, doc, range, true).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ranges_are_parsed_against_the_size() {
        assert_eq!(parse_range(None, 100).unwrap(), None);
        assert_eq!(parse_range(Some("bytes=0-9"), 100).unwrap(), Some((0, 9)));
        assert_eq!(parse_range(Some("bytes=90-"), 100).unwrap(), Some((90, 99)));
        assert_eq!(parse_range(Some("bytes=-10"), 100).unwrap(), Some((90, 99)));
        assert_eq!(parse_range(Some("bytes=-1000"), 100).unwrap(), Some((0, 99)));
        assert_eq!(parse_range(Some("bytes=50-5000"), 100).unwrap(), Some((50, 99)));
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100).unwrap(), None);
        for bad in ["bytes=100-", "bytes=9-3", "bytes=x-1", "bytes=-0", "bytes=5"] {
            assert!(matches!(parse_range(Some(bad), 100), Err(AppError::RangeNotSatisfiable(100))), "{bad}");
        }
        assert!(parse_range(Some("bytes=0-0"), 0).is_err());
    }
}
