//! The patient's right of access (HIPC rule 6): one zip, streamed in bounded memory, with a FHIR
//! R4 `Bundle` (type `collection`) of their released records, a `DocumentReference` per document
//! and their access history as `AuditEvent`s, plus the documents' files. It needs a second factor
//! proved in the last ten minutes when the account has one, is limited to a few an hour, and is
//! one `export` event naming the patient and what was included.

use super::Records;
use super::fhir::NHI_SYSTEM;
use crate::AppError;
use crate::audit::{Caller, Outcome, Target};
use crate::identity::SignedIn;
use async_zip::base::write::ZipFileWriter;
use async_zip::{Compression, ZipEntryBuilder};
use authz::{ExportRecords, ListDocuments, ViewAccessHistory, ViewPatient};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{AsyncWriteExt, StreamExt};
use serde_json::json;
use store::HistoryFilter;

/// Exports a patient may make in an hour.
pub const EXPORTS_PER_HOUR: usize = 3;
/// Access-history events read at a time for the export.
const HISTORY_PAGE: i64 = 1000;

/// A started export: its file name and its bytes, as they are made.
pub struct Export {
    /// `tiaki-record-YYYY-MM-DD.zip`.
    pub filename: String,
    /// The zip.
    pub body: BoxStream<'static, std::io::Result<Bytes>>,
}

impl std::fmt::Debug for Export {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Export").field("filename", &self.filename).finish_non_exhaustive()
    }
}

fn doc_name(n: usize, d: &crate::documents::Document) -> String {
    let clean: String = d
        .filename
        .chars()
        .map(|c| if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .take(80)
        .collect();
    format!("documents/{:03}-{clean}", n + 1)
}

fn document_reference(d: &crate::documents::Document, path: &str, patient: &str) -> serde_json::Value {
    json!({
        "resourceType": "DocumentReference",
        "id": d.id.to_string(),
        "status": "current",
        "type": { "text": d.category.label() },
        "subject": { "reference": format!("Patient/{patient}") },
        "date": time::OffsetDateTime::from_unix_timestamp(d.created_at).ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
        "author": [{ "display": d.author.clone().unwrap_or_else(|| d.source_org_name.clone()) }],
        "custodian": { "display": d.controller_name },
        "description": d.title,
        "content": [{ "attachment": {
            "contentType": d.media_type,
            "url": path,
            "size": d.size,
            "title": d.filename,
        }}],
    })
}

impl Records<'_> {
    /// Starts the patient's export.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient; [`AppError::Conflict`] when their
    /// account has a second factor not proved in the last ten minutes (confirm it first);
    /// [`AppError::RateLimited`] past [`EXPORTS_PER_HOUR`].
    #[expect(clippy::too_many_lines, reason = "gathering, then the stream, in order")]
    pub async fn export(
        &self,
        caller: &Caller,
        patient: domain::PatientId,
        who: &SignedIn,
        app_arc: std::sync::Arc<crate::App>,
    ) -> Result<Export, AppError> {
        let app = self.app;
        let grant = app.decide::<ExportRecords>(caller, patient).await?;
        // The whole record holds both: either switched off, and the export waits.
        for module in [domain::detection::Switchable::Records, domain::detection::Switchable::Documents] {
            app.guard_module(module, Some(patient), None).await?;
        }
        if app.has_second_factor(who.account).await? && !app.identity().recently_confirmed(who) {
            return Err(AppError::Conflict(
                "Confirm it's you first: downloading your whole record needs your second factor within the last ten minutes."
                    .into(),
            ));
        }
        let history_grant = authz::authorize::<ViewAccessHistory, _>(&caller.principal, patient, &*app.store).await?;
        let now_ms = app.clock.now_ms();
        let recent = app
            .store
            .patient_history(
                &history_grant,
                &HistoryFilter {
                    from_ms: now_ms - 3_600_000,
                    to_ms: i64::MAX,
                    modules: vec!["records".into()],
                    limit: 100_000,
                },
            )
            .await?;
        let exports = recent.iter().filter(|r| r.event.action == "export" && r.event.outcome == "allowed").count();
        if exports >= EXPORTS_PER_HOUR {
            return Err(AppError::RateLimited(3600));
        }
        // The record: what the patient may see, exactly as their pages show it.
        let records = self.record(caller, patient, None).await?.items;
        let vg = app.decide::<ViewPatient>(caller, patient).await?;
        let me = app.store.patient(&vg).await?;
        let list = app.decide::<ListDocuments>(caller, patient).await?;
        // Documents whose key was destroyed (erased) have nothing left to give: they are left out.
        let rows: Vec<_> = app
            .store
            .list_documents(&list, true)
            .await?
            .into_iter()
            .filter(|(_, key)| key.as_ref().is_some_and(|k| k.wrapped.is_some()))
            .collect();
        let (documents, versions) = app.open_document_rows(rows)?;
        let summary =
            format!("{patient}: {} records, {} documents and the access history", records.len(), documents.len());
        let mut events =
            vec![app.event(caller, &Target::of(&grant).about(&summary).with_patient(patient), Outcome::Allowed)];
        events.extend(versions.into_iter().map(|version| app.unwrap_event(caller, patient, version)));
        app.audit(events).await?;
        let pid = patient.to_string();
        let patient_resource = json!({
            "resourceType": "Patient",
            "id": pid,
            "identifier": [{ "use": "official", "system": NHI_SYSTEM, "value": me.nhi }],
            "name": [{ "text": me.name }],
            "birthDate": me.date_of_birth,
        });
        let mut entries: Vec<serde_json::Value> =
            vec![json!({ "fullUrl": format!("urn:uuid:{pid}"), "resource": patient_resource })];
        for item in &records {
            entries.push(json!({ "fullUrl": format!("urn:uuid:{}", item.id), "resource": item.as_fhir() }));
        }
        let names: Vec<String> = documents.iter().enumerate().map(|(n, d)| doc_name(n, d)).collect();
        for (d, path) in documents.iter().zip(&names) {
            entries.push(
                json!({ "fullUrl": format!("urn:uuid:{}", d.id), "resource": document_reference(d, path, &pid) }),
            );
        }
        let (reader, writer) = tokio::io::duplex(256 * 1024);
        let app2 = app_arc;
        let caller2 = caller.clone();
        let date =
            time::OffsetDateTime::from_unix_timestamp(app.now()).map(|t| t.date().to_string()).unwrap_or_default();
        let readme = format!(
            "Your Tiaki record, downloaded on {date}.\n\n\
             record.json is a FHIR R4 Bundle (type collection): you ({}), the health records your practice has \
             released to you, one DocumentReference for each of your documents, and every access to your \
             information that Tiaki recorded (as AuditEvents).\n\
             The documents folder holds the documents themselves.\n\n\
             Keep this file safe: it is your health information.\n",
            me.name
        );
        tokio::spawn(async move {
            let mut zip = ZipFileWriter::with_tokio(writer);
            let result: Result<(), String> = async {
                zip.write_entry_whole(
                    ZipEntryBuilder::new("README.txt".into(), Compression::Stored),
                    readme.as_bytes(),
                )
                .await
                .map_err(|e| e.to_string())?;
                let mut w = zip
                    .write_entry_stream(ZipEntryBuilder::new("record.json".into(), Compression::Stored))
                    .await
                    .map_err(|e| e.to_string())?;
                let head = format!(
                    "{{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"timestamp\":{},\"entry\":[",
                    serde_json::to_string(&crate::audit::history::rfc3339(now_ms)).unwrap_or_else(|_| "null".into()),
                );
                w.write_all(head.as_bytes()).await.map_err(|e| e.to_string())?;
                for (n, e) in entries.iter().enumerate() {
                    if n > 0 {
                        w.write_all(b",").await.map_err(|e| e.to_string())?;
                    }
                    let s = serde_json::to_vec(e).map_err(|e| e.to_string())?;
                    w.write_all(&s).await.map_err(|e| e.to_string())?;
                }
                // The access history, a page at a time (newest first), so memory stays bounded
                // however long it is. A page ends at a whole millisecond: one request's events
                // stay together for the patient's copy (`patients_copy`).
                let mut to_ms = i64::MAX;
                loop {
                    let filter = HistoryFilter { from_ms: 0, to_ms, modules: Vec::new(), limit: HISTORY_PAGE };
                    let mut page: Vec<store::AuditEvent> = app2
                        .store
                        .patient_history(&history_grant, &filter)
                        .await
                        .map_err(|e| e.to_string())?
                        .into_iter()
                        .map(|r| r.event)
                        .collect();
                    let full = page.len() == usize::try_from(HISTORY_PAGE).unwrap_or(usize::MAX);
                    let Some(oldest) = page.last().map(|e| e.at_ms) else { break };
                    if full && page.iter().any(|e| e.at_ms != oldest) {
                        page.retain(|e| e.at_ms != oldest);
                        to_ms = oldest + 1;
                    } else if full {
                        to_ms = oldest; // a whole page in one millisecond: take it and go on
                    }
                    for e in crate::audit::history::patients_copy(page) {
                        let entry = json!({
                            "fullUrl": format!("urn:uuid:{}", e.id),
                            "resource": crate::audit::history::fhir_audit_event(&e),
                        });
                        w.write_all(b",").await.map_err(|e| e.to_string())?;
                        w.write_all(&serde_json::to_vec(&entry).map_err(|e| e.to_string())?)
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    if !full {
                        break;
                    }
                }
                w.write_all(b"]}").await.map_err(|e| e.to_string())?;
                w.close().await.map_err(|e| e.to_string())?;
                for (d, path) in documents.iter().zip(&names) {
                    let dl = app2.open_document_inner(&caller2, d.id, None, false).await.map_err(|e| e.to_string())?;
                    let mut w = zip
                        .write_entry_stream(ZipEntryBuilder::new(path.clone().into(), Compression::Stored))
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut body = dl.body;
                    while let Some(chunk) = body.next().await {
                        let chunk = chunk.map_err(|e| e.to_string())?;
                        w.write_all(&chunk).await.map_err(|e| e.to_string())?;
                    }
                    w.close().await.map_err(|e| e.to_string())?;
                }
                zip.close().await.map_err(|e| e.to_string())?;
                Ok(())
            }
            .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "an export failed part-way; the download is cut short");
            }
        });
        let body = futures_util::stream::unfold(reader, |mut r| async move {
            use tokio::io::AsyncReadExt;
            let mut buf = vec![0u8; 64 * 1024];
            match r.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), r))
                }
                Err(e) => Some((Err(e), r)),
            }
        })
        .boxed();
        Ok(Export { filename: format!("tiaki-record-{date}.zip"), body })
    }
}
