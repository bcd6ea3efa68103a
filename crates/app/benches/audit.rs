//! Audit-log benchmarks (a load tool, not a timed test): prints figures, each beside its
//! baseline measured in the same run on the same machine.
//!
//! 1. Append: events written through the group-commit writer by many concurrent requests, vs a
//!    plain batched INSERT of the same number of rows into the same kind of database.
//! 2. Verify: `tiaki audit verify`'s work (recompute every leaf and root, check checkpoints) over
//!    N sequenced events.
//!
//! Run: `cargo bench -p app --bench audit -- [--events N] [--verify-events N] [--bulk] [--postgres URL]`
//! (`--bulk` writes the verify run's events already sequenced, straight into SQLite, so that 10
//! million can be verified without first running the sequencer for an hour.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    clippy::many_single_char_names,
    clippy::doc_markdown,
    missing_docs
)]

use app::{App, AuditSettings, Settings};
use std::sync::Arc;
use std::time::Instant;
use store::AuditEvent;

/// The ids a busy portal's events point at: patients, staff, sessions and documents that exist
/// already (made once, as a real server's are), so that making an event costs what it costs in
/// a request handler.
struct Ids {
    patients: Vec<String>,
    staff: Vec<String>,
    practices: Vec<String>,
    documents: Vec<String>,
}

impl Ids {
    fn new() -> Self {
        let some = |n: usize| (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect::<Vec<_>>();
        Self { patients: some(100_000), staff: some(2_000), practices: some(200), documents: some(50_000) }
    }
}

/// Event `i`, made now: a time-ordered id and the current time, as `App::event` makes them.
fn event(ids: &Ids, i: u64) -> AuditEvent {
    let pick = |v: &Vec<String>, k: u64| v[usize::try_from(k).unwrap() % v.len()].clone();
    let staff = i % 2_000;
    AuditEvent {
        id: uuid::Uuid::now_v7().to_string(),
        at_ms: app::domain::Clock::now_ms(&app::domain::SystemClock),
        actor_account: Some(pick(&ids.staff, staff)),
        actor_role: "staff:gp".into(),
        actor_practice: Some(pick(&ids.practices, staff)),
        session: Some(pick(&ids.staff, staff + 1)),
        ip: "192.0.2.10".into(),
        user_agent: "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36".into(),
        on_behalf: None,
        action: "read".into(),
        object_type: "document".into(),
        object_id: pick(&ids.documents, i.wrapping_mul(7_919)),
        patient: Some(pick(&ids.patients, i.wrapping_mul(104_729))),
        practice: Some(pick(&ids.practices, staff)),
        outcome: "allowed".into(),
        request_id: uuid::Uuid::now_v7().to_string(),
        module: "documents".into(),
        format: 2,
    }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

/// A fresh database from the test kit (on PostgreSQL, cloned from the migrated template), and
/// its folder; both go when the run ends.
async fn fresh_store(
    pg: Option<&str>,
    tag: &str,
) -> (Arc<dyn store::Store>, testkit::db::Database, testkit::db::TempDir) {
    let dir = testkit::db::TempDir::new(&format!("bench-{tag}")).unwrap();
    let db = match pg {
        Some(admin) => testkit::db::Database::postgres(admin).await.unwrap(),
        None => testkit::db::Database::sqlite(&dir.0).await.unwrap(),
    };
    (db.store().await.unwrap(), db, dir)
}

async fn app_on(store: Arc<dyn store::Store>, signer: bool) -> Arc<App> {
    let settings = Settings {
        public_url: "http://bench".into(),
        session_idle_secs: 1800,
        session_absolute_secs: 3600,
        invitation_secs: 86_400,
        staff_mfa_required: true,
    };
    let signer = signer.then(|| {
        let key = audit::note::Signer::generate_pkcs8().unwrap();
        Arc::new(audit::note::Signer::from_pkcs8("bench/audit", &key).unwrap()) as Arc<dyn audit::note::NoteSigner>
    });
    let audit = AuditSettings {
        origin: "bench/audit".into(),
        signer,
        witnesses: vec![],
        checkpoint_every_secs: 60,
        retention_years: 10,
    };
    let app = Arc::new(App::new(store, Arc::new(app::domain::SystemClock), settings, audit).await.unwrap());
    // The log alone: the detectors' counting (and 256 tasks reading as fast as they can would
    // be stopped as a bulk read) is measured in the documents and detection benchmarks.
    app.set_detection_thresholds(app::domain::detection::Thresholds::off());
    app
}

async fn append(pg: Option<&str>, n: u64, concurrency: u64) {
    // Baseline: the same rows, inserted in plain batches of 1,000 per transaction by one writer.
    let (store, db, dir) = fresh_store(pg, "baseline").await;
    let ids = Arc::new(Ids::new());
    let rows: Vec<AuditEvent> = (0..n).map(|i| event(&ids, i)).collect();
    let start = Instant::now();
    let plain_batch: usize = arg("--plain-batch").and_then(|s| s.parse().ok()).unwrap_or(1000);
    for chunk in rows.chunks(plain_batch) {
        store.append_audit_events(chunk).await.unwrap();
    }
    let baseline = n as f64 / start.elapsed().as_secs_f64();
    drop(store);
    drop((db, dir));

    // Group commit: `concurrency` tasks, each recording one event per request and waiting for it
    // to be durable, as request handlers do.
    let (store, db, dir) = fresh_store(pg, "group").await;
    let app = app_on(store, false).await;
    let per_task = n / concurrency;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let (app, ids) = (app.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(usize::try_from(per_task).unwrap());
            for i in 0..per_task {
                let s = Instant::now();
                app.console().record_events(vec![event(&ids, t * per_task + i)]).await.unwrap();
                latencies.push(s.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    let group = (per_task * concurrency) as f64 / elapsed;
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    let engine = if pg.is_some() { "PostgreSQL" } else { "SQLite" };
    println!("append ({engine}, {n} events)");
    println!("  plain batched INSERT (1,000 rows/transaction, 1 writer): {baseline:>10.0} events/s");
    println!(
        "  group commit ({concurrency} concurrent requests, 1 event each, durable ack):  {group:>10.0} events/s   p99 ack {:.2} ms",
        p99.as_secs_f64() * 1000.0
    );
    println!("  ratio group/plain: {:.2}", group / baseline);
    drop((db, dir));
}

/// Writes `n` events already sequenced — leaf index, leaf hash and every completed subtree node,
/// patient index entries, exactly what the tree builder stores — straight into a SQLite file, so that a 10-million-event
/// log can be verified without first spending an hour in the (separately measured) sequencer.
async fn bulk_sequenced(db: &std::path::Path, n: u64, ids: &Ids) {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    sqlx::raw_sql("PRAGMA synchronous = OFF; PRAGMA journal_mode = WAL; PRAGMA cache_size = -262144")
        .execute(&mut c)
        .await
        .unwrap();
    let mut acc = audit::merkle::Accumulator::new();
    let mut i = 0u64;
    let bar = indicatif::ProgressBar::new(n);
    while i < n {
        let k = (n - i).min(20_000);
        let events: Vec<AuditEvent> = (i..i + k).map(|j| event(ids, j)).collect();
        let mut nodes: Vec<(i64, i64, Vec<u8>)> = Vec::with_capacity(events.len() * 2);
        let mut leaves = Vec::with_capacity(events.len());
        for e in &events {
            let leaf = e.leaf_hash();
            let seq = acc.size();
            nodes.push((0, i64::try_from(seq).unwrap(), leaf.to_vec()));
            for (level, idx, hash) in acc.push(leaf) {
                nodes.push((i64::from(level), i64::try_from(idx).unwrap(), hash.to_vec()));
            }
            leaves.push(i64::try_from(seq).unwrap());
        }
        let mut tx = c.begin().await.unwrap();
        for (chunk, seqs) in events.chunks(50).zip(leaves.chunks(50)) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO audit_events (id, seq, at_ms, actor_account, actor_role, actor_practice, session_id, ip, \
                 user_agent, on_behalf, action, object_type, object_id, patient_id, practice_id, outcome, request_id) ",
            );
            q.push_values(chunk.iter().zip(seqs), |mut b, (e, seq)| {
                b.push_bind(e.id.clone())
                    .push_bind(*seq)
                    .push_bind(e.at_ms)
                    .push_bind(e.actor_account.clone())
                    .push_bind(e.actor_role.clone())
                    .push_bind(e.actor_practice.clone())
                    .push_bind(e.session.clone())
                    .push_bind(e.ip.clone())
                    .push_bind(e.user_agent.clone())
                    .push_bind(e.on_behalf.clone())
                    .push_bind(e.action.clone())
                    .push_bind(e.object_type.clone())
                    .push_bind(e.object_id.clone())
                    .push_bind(e.patient.clone())
                    .push_bind(e.practice.clone())
                    .push_bind(e.outcome.clone())
                    .push_bind(e.request_id.clone());
            });
            q.build().execute(&mut *tx).await.unwrap();
        }
        let mut filed: Vec<(String, i64, i64)> =
            events.iter().zip(&leaves).filter_map(|(e, seq)| Some((e.patient.clone()?, e.at_ms, *seq))).collect();
        filed.sort_unstable();
        for chunk in filed.chunks(300) {
            let mut q =
                sqlx::QueryBuilder::<sqlx::Sqlite>::new("INSERT INTO audit_by_patient (patient_id, at_ms, seq) ");
            q.push_values(chunk, |mut b, (p, at, seq)| {
                b.push_bind(p.clone()).push_bind(*at).push_bind(*seq);
            });
            q.build().execute(&mut *tx).await.unwrap();
        }
        for chunk in nodes.chunks(300) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new("INSERT INTO audit_nodes (level, idx, hash) ");
            q.push_values(chunk, |mut b, (level, idx, hash)| {
                b.push_bind(*level).push_bind(*idx).push_bind(hash.clone());
            });
            q.build().execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
        i += k;
        bar.set_position(i);
    }
    bar.finish_and_clear();
}

async fn verify(pg: Option<&str>, n: u64, bulk: bool) {
    let (store, db, dir) = fresh_store(pg, "verify").await;
    let app = app_on(store.clone(), true).await;
    let ids = Ids::new();
    let start = Instant::now();
    if bulk && pg.is_none() {
        bulk_sequenced(&dir.0.join("tiaki.db"), n, &ids).await;
    } else {
        let mut i = 0;
        while i < n {
            let k = (n - i).min(10_000);
            let batch: Vec<AuditEvent> = (i..i + k).map(|j| event(&ids, j)).collect();
            store.append_audit_events(&batch).await.unwrap();
            i += k;
            if i % 1_000_000 == 0 {
                eprintln!("  … {i} events written");
            }
        }
    }
    let written = start.elapsed();
    let start = Instant::now();
    app.access_log().tick(true).await.unwrap();
    let sequenced = start.elapsed();
    let start = Instant::now();
    let report = app.access_log().verify(None, false, |_, _| {}).await.unwrap();
    let verified = start.elapsed();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.events, n);
    let engine = if pg.is_some() { "PostgreSQL" } else { "SQLite" };
    println!("verify ({engine}, {n} events)");
    if bulk {
        println!(
            "  write (already sequenced, bulk) {:.1} s, sign the checkpoint {:.1} s",
            written.as_secs_f64(),
            sequenced.as_secs_f64()
        );
    } else {
        println!("  write {:.1} s, sequence into the tree {:.1} s", written.as_secs_f64(), sequenced.as_secs_f64());
    }
    println!(
        "  tiaki audit verify: {:.1} s  ({:.0} events/s)",
        verified.as_secs_f64(),
        n as f64 / verified.as_secs_f64()
    );
    drop(app);
    drop((db, dir));
}

#[tokio::main]
async fn main() {
    let n: u64 = arg("--events").and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let v: u64 = arg("--verify-events").and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let concurrency: u64 = arg("--concurrency").and_then(|s| s.parse().ok()).unwrap_or(256);
    let pg = arg("--postgres");
    append(None, n, concurrency).await;
    if let Some(pg) = pg.as_deref() {
        append(Some(pg), n, concurrency).await;
    }
    let bulk = std::env::args().any(|a| a == "--bulk");
    verify(None, v, bulk).await;
}
