//! Document download benchmark (a load tool, not a timed test): what auditing costs a download.
//! Concurrent readers download documents through `App::open_document` (authorise, write the read
//! and key-unwrap events through the group-commit writer, decrypt and stream) and, as the
//! baseline in the same run on the same data, through the same path without the audit events
//! (`open_document_unaudited`, compiled only for this benchmark). Runs alternate, best of three.
//!
//! With `--detection`, the baseline is the audited download with the detectors off, against the
//! same with them on (issue 17: the detectors cost a download at most 5 %), for a patient reading
//! their own documents and for a GP reading the practice's letters (every one counted by the
//! read-rate, bulk-read, patients-touched and key-unwrap rules; limits set out of reach, so the
//! run measures the counting, not a suspension).
//!
//! Run: `cargo bench -p app --features bench --bench documents -- [--docs N] [--size BYTES]
//!       [--concurrency C] [--seconds S] [--postgres URL] [--detection]`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    clippy::too_many_lines,
    missing_docs
)]

use app::domain::detection::Thresholds;
use app::domain::{AccountId, DocumentId, PatientId, SessionId, StaffRole};
use app::{App, AuditSettings, Caller, Principal, Settings};
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

/// The database and folder a run uses; both go when it is dropped.
type Fresh = (testkit::db::Database, testkit::db::TempDir);

async fn setup(pg: Option<&str>, docs: usize, size: usize) -> (Arc<App>, [Caller; 2], Vec<DocumentId>, Fresh) {
    // A fresh database from the test kit (on PostgreSQL, cloned from the migrated template).
    let tmp = testkit::db::TempDir::new("bench-docs").unwrap();
    let dir = tmp.0.clone();
    let db = match pg {
        Some(admin) => testkit::db::Database::postgres(admin).await.unwrap(),
        None => testkit::db::Database::sqlite(&dir).await.unwrap(),
    };
    let store = db.store().await.unwrap();
    app::keyfile::ensure_key_file(&dir).unwrap();
    let vault = app::Vault {
        blobs: app::documents::blobs::Blobs::folder(&dir.join("blobs")).unwrap(),
        keys: app::KeyRing::files(&dir).unwrap(),
        max_document_bytes: 1 << 30,
        patient_quota_bytes: 1 << 40,
        max_own_documents: app::documents::MAX_OWN_DOCUMENTS,
    };
    let settings = Settings {
        public_url: "http://bench".into(),
        session_idle_secs: 1800,
        session_absolute_secs: 3600,
        invitation_secs: 86_400,
        staff_mfa_required: true,
    };
    let audit = AuditSettings {
        origin: "bench/audit".into(),
        signer: None,
        witnesses: vec![],
        checkpoint_every_secs: 60,
        retention_years: 10,
    };
    let app = Arc::new(
        App::new(store, Arc::new(app::domain::SystemClock), settings, audit).await.unwrap().with_documents(vault),
    );
    let (practice, _) = app
        .console()
        .create_practice(&app::PracticeForm {
            name: "Bench Practice".into(),
            hpi_facility_id: "FBE001-A".into(),
            region: "Northland".into(),
            admin_name: "Bench Admin".into(),
            admin_email: "admin@bench.test".into(),
        })
        .await
        .unwrap();
    let probe = Principal::Staff {
        account: AccountId::random(),
        session: SessionId::random(),
        practice,
        role: StaffRole::Admin,
    };
    let admin = app.practices().list_staff(&Caller::console(probe), practice).await.unwrap()[0].account;
    let admin = Principal::Staff { account: admin, session: SessionId::random(), practice, role: StaffRole::Admin };
    let (outcome, _) = app
        .console()
        .enrol_with_link(
            &Caller::console(admin),
            practice,
            &app::EnrolForm {
                nhi: "ZZZ0016".into(),
                name: "Bench Patient".into(),
                date_of_birth: "1980-01-01".into(),
                email: "patient@bench.test".into(),
            },
        )
        .await
        .unwrap();
    let patient: PatientId = match outcome {
        app::Enrolled::New(p) | app::Enrolled::AlreadyEnrolled(p) => Some(p),
        app::Enrolled::AwaitingConfirmation => None,
    }
    .expect("the bench patient is new");
    let (client, _) = app.console().create_client("Bench PMS", "", "Bench Practice", Some("FBE001-A")).await.unwrap();
    let pusher = Caller::console(Principal::Client {
        client: client.id,
        org_id: client.org_id.clone(),
        practice: client.practice,
        scopes: client.scopes,
    });
    let mut ids = Vec::new();
    for i in 0..docs {
        let mut bytes = b"%PDF-1.7\n".to_vec();
        bytes.resize(size, u8::try_from(i % 200).unwrap());
        let meta = app::PushMeta {
            nhi: "ZZZ0016".into(),
            category: "discharge_summary".into(),
            title: format!("Letter {i}"),
            filename: None,
            clinical_date: "2025-12-01".into(),
            author: "Dr Bench".into(),
            source_document_id: format!("bench-{i}"),
            controller_id: None,
            controller_name: None,
        };
        let body = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(bytes))]);
        ids.push(app.documents().push(&pusher, &meta, body).await.unwrap().0.id);
    }
    let reader = Caller::new(
        Principal::Patient { account: AccountId::random(), session: SessionId::random(), patient },
        "192.0.2.7".parse().unwrap(),
        "bench",
        "",
    );
    let gp = Caller::new(
        Principal::Staff { account: AccountId::random(), session: SessionId::random(), practice, role: StaffRole::Gp },
        "192.0.2.8".parse().unwrap(),
        "bench",
        "",
    );
    (app, [reader, gp], ids, (db, tmp))
}

/// Downloads for `seconds` with `concurrency` readers; returns (downloads/s, MB/s).
async fn run(
    app: &Arc<App>,
    reader: &Caller,
    ids: &Arc<Vec<DocumentId>>,
    concurrency: usize,
    seconds: f64,
    mode: Mode,
) -> (f64, f64) {
    let audited = mode != Mode::Unaudited;
    app.set_detection_thresholds(if mode == Mode::Detected { Thresholds::counting_only() } else { Thresholds::off() });
    let count = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let (app, reader, ids, count, bytes) = (app.clone(), reader.clone(), ids.clone(), count.clone(), bytes.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = t;
            while Instant::now() < until {
                let id = ids[i % ids.len()];
                i += concurrency;
                let d = if audited {
                    app.documents().open(&reader, id, None).await
                } else {
                    app.console().open_document_unaudited(&reader, id, None).await
                }
                .unwrap();
                let mut body = d.body;
                let mut n = 0u64;
                while let Some(chunk) = body.next().await {
                    n += chunk.unwrap().len() as u64;
                }
                count.fetch_add(1, Ordering::Relaxed);
                bytes.fetch_add(n, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    (count.load(Ordering::Relaxed) as f64 / secs, bytes.load(Ordering::Relaxed) as f64 / secs / 1e6)
}

/// How a run downloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The same authorisation, no events.
    Unaudited,
    /// Audited, detectors off.
    Audited,
    /// Audited, detectors on (counting every event they count; limits out of reach).
    Detected,
}

/// Alternates the two modes three times after a warm-up; the best of each.
async fn compare(
    app: &Arc<App>,
    reader: &Caller,
    ids: &Arc<Vec<DocumentId>>,
    concurrency: usize,
    seconds: f64,
    (base, test): (Mode, Mode),
) -> ((f64, f64), (f64, f64)) {
    run(app, reader, ids, concurrency, 1.0, base).await;
    let (mut off, mut on) = ((0.0f64, 0.0f64), (0.0f64, 0.0f64));
    for _ in 0..3 {
        let r = run(app, reader, ids, concurrency, seconds, base).await;
        if r.0 > off.0 {
            off = r;
        }
        let r = run(app, reader, ids, concurrency, seconds, test).await;
        if r.0 > on.0 {
            on = r;
        }
    }
    (off, on)
}

#[tokio::main]
async fn main() {
    let docs: usize = arg("--docs").and_then(|s| s.parse().ok()).unwrap_or(200);
    let size: usize = arg("--size").and_then(|s| s.parse().ok()).unwrap_or(250_000);
    let concurrency: usize = arg("--concurrency").and_then(|s| s.parse().ok()).unwrap_or(32);
    let seconds: f64 = arg("--seconds").and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let detection = std::env::args().any(|a| a == "--detection");
    let pg = arg("--postgres");
    for pg in [None, pg.as_deref()].into_iter().enumerate().filter_map(|(i, p)| (i == 0 || p.is_some()).then_some(p)) {
        let (app, [patient, gp], ids, dir) = setup(pg, docs, size).await;
        let ids = Arc::new(ids);
        let engine = if pg.is_some() { "PostgreSQL" } else { "SQLite" };
        if detection {
            for (who, reader) in [("a patient, own documents", &patient), ("a GP, the practice's letters", &gp)] {
                let (off, on) =
                    compare(&app, reader, &ids, concurrency, seconds, (Mode::Audited, Mode::Detected)).await;
                println!(
                    "download by {who} ({engine}, {docs} documents of {size} bytes, {concurrency} concurrent readers, best of 3 × {seconds} s)"
                );
                println!("  detection off: {:>8.0} downloads/s  {:>7.1} MB/s", off.0, off.1);
                println!("  detection on:  {:>8.0} downloads/s  {:>7.1} MB/s", on.0, on.1);
                println!("  cost of detection: {:.1} %", (1.0 - on.0 / off.0) * 100.0);
            }
        } else {
            let (off, on) = compare(&app, &patient, &ids, concurrency, seconds, (Mode::Unaudited, Mode::Audited)).await;
            println!(
                "download ({engine}, folder blobs, {docs} documents of {size} bytes, {concurrency} concurrent readers, best of 3 × {seconds} s)"
            );
            println!("  auditing off (same authorisation, no events): {:>8.0} downloads/s  {:>7.1} MB/s", off.0, off.1);
            println!(
                "  auditing on  (read + key-unwrap events, durable before the first byte): {:>8.0} downloads/s  {:>7.1} MB/s",
                on.0, on.1
            );
            println!("  cost of auditing: {:.1} %", (1.0 - on.0 / off.0) * 100.0);
        }
        drop(app);
        drop(dir);
    }
}
