//! Incident scope at scale (issue 18, P5; a load tool, not a timed test): a log of N events from a
//! busy portal's staff, with an attacker's session reading R documents of P patients spread
//! evenly through it, and the time to compute the incident's scope from the log (find the
//! attacker's events by its session, classify them, look up what each touched and who controls
//! it) and to keep it as a revision. Beside it, the baseline: reading the same R events back by
//! the same index with nothing else done, so the ratio says what the scope adds.
//!
//! Run: `cargo bench -p app --features bench --bench incidents -- [--events N] [--reads R]
//! [--patients P] [--postgres URL]` (defaults: 2,000,000 events, 43,000 reads of 10,000
//! patients; MMH's incident is 430,000 reads of 100,000 patients).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    clippy::doc_markdown,
    clippy::too_many_lines,
    missing_docs
)]

use app::domain::incidents::Indicators;
use app::{App, AuditSettings, Settings};
use std::sync::Arc;
use std::time::Instant;
use store::AuditEvent;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

struct Plan {
    events: u64,
    reads: u64,
    patients: u64,
    attacker: String,
    staff: Vec<String>,
    practices: Vec<String>,
    patient_ids: Vec<String>,
}

/// Event `i`: every (events / reads)-th is the attacker's read of a document of one of its P
/// patients; the rest are staff reads across 100,000 patients.
fn event(p: &Plan, i: u64, at_ms: i64) -> AuditEvent {
    let every = (p.events / p.reads.max(1)).max(1);
    let attack = i.is_multiple_of(every) && i / every < p.reads;
    let pick = |v: &Vec<String>, k: u64| v[usize::try_from(k % v.len() as u64).unwrap()].clone();
    let (account, session, ip, patient) = if attack {
        let n = i / every;
        (p.attacker.clone(), p.attacker.clone(), "203.0.113.66".to_owned(), pick(&p.patient_ids, n % p.patients))
    } else {
        let s = i % p.staff.len() as u64;
        (
            pick(&p.staff, s),
            pick(&p.staff, s + 1),
            "192.0.2.10".to_owned(),
            pick(&p.patient_ids, i.wrapping_mul(104_729)),
        )
    };
    AuditEvent {
        id: uuid::Uuid::now_v7().to_string(),
        at_ms,
        actor_account: Some(account),
        actor_role: "staff:gp".into(),
        actor_practice: Some(pick(&p.practices, i)),
        session: Some(session),
        ip,
        user_agent: "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36".into(),
        on_behalf: None,
        action: "read".into(),
        object_type: "document".into(),
        object_id: uuid::Uuid::new_v4().to_string(),
        patient: Some(patient),
        practice: Some(pick(&p.practices, i)),
        outcome: "allowed".into(),
        request_id: uuid::Uuid::now_v7().to_string(),
        module: "documents".into(),
        format: 2,
    }
}

async fn run(pg: Option<&str>, events: u64, reads: u64, patients: u64) {
    let dir = testkit::db::TempDir::new("bench-incidents").unwrap();
    let db = match pg {
        Some(admin) => testkit::db::Database::postgres(admin).await.unwrap(),
        None => testkit::db::Database::sqlite(&dir.0).await.unwrap(),
    };
    let store = db.store().await.unwrap();
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
    let app = Arc::new(App::new(store.clone(), Arc::new(app::domain::SystemClock), settings, audit).await.unwrap());
    let some = |n: u64| (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect::<Vec<_>>();
    let plan = Plan {
        events,
        reads,
        patients,
        attacker: uuid::Uuid::new_v4().to_string(),
        staff: some(2_000),
        practices: some(200),
        patient_ids: some(100_000.max(patients)),
    };
    let engine = if pg.is_some() { "PostgreSQL" } else { "SQLite" };
    let bar = indicatif::ProgressBar::new(events);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} events ({per_sec}, ETA {eta})",
        )
        .unwrap(),
    );
    let start = Instant::now();
    let base_ms = 1_700_000_000_000_i64;
    let mut i = 0;
    while i < events {
        let k = (events - i).min(10_000);
        let batch: Vec<AuditEvent> = (i..i + k).map(|j| event(&plan, j, base_ms + i64::try_from(j).unwrap())).collect();
        store.append_audit_events(&batch).await.unwrap();
        i += k;
        bar.set_position(i);
    }
    bar.finish_and_clear();
    let written = start.elapsed();
    let lead = authz::console::lead_incidents();
    // The baseline: the attacker's events read back by the same index, nothing else.
    let start = Instant::now();
    let raw =
        store.indicator_events(&lead, u64::MAX, &[], std::slice::from_ref(&plan.attacker), &[], false).await.unwrap();
    let baseline = start.elapsed();
    let indicators = Indicators { sessions: vec![plan.attacker.clone()], ..Indicators::default() };
    let start = Instant::now();
    let scope = app.incidents().scope_below(&indicators, u64::MAX).await.unwrap();
    let computed = start.elapsed();
    let row = store::incidents::RevisionRow {
        incident_id: "bench".into(),
        revision: 0,
        indicators: "{}".into(),
        note: "bench".into(),
        tree_size: 0,
        root: String::new(),
        checkpoint: String::new(),
        digest: scope.digest(),
        confirmed: 0,
        possible: 0,
        objects: 0,
        events: 0,
        created_at: 0,
        created_by: "bench".into(),
    };
    store
        .create_incident(
            &lead,
            &store::incidents::NewIncident {
                id: "bench".into(),
                title: "bench".into(),
                description: "bench".into(),
                discovered_at: 1,
                declared_at: 1,
                declared_by: "bench".into(),
                from_alert: None,
            },
        )
        .await
        .unwrap();
    let start = Instant::now();
    store.add_revision(&lead, &row, &scope.patients, &scope.objects).await.unwrap();
    let kept = start.elapsed();
    assert_eq!(raw.len() as u64, reads);
    assert_eq!(scope.events as u64, reads);
    assert_eq!(scope.patients.len() as u64, patients.min(reads));
    println!(
        "incident scope ({engine}): a log of {events} events, the attacker's {reads} reads of {patients} patients"
    );
    println!("  write the log {:.1} s", written.as_secs_f64());
    println!("  baseline: read the attacker's {} events by index {:.2} s", raw.len(), baseline.as_secs_f64());
    println!(
        "  compute the scope (find, classify, look up each object and its controller) {:.2} s  ({:.1}x the baseline)",
        computed.as_secs_f64(),
        computed.as_secs_f64() / baseline.as_secs_f64().max(1e-9)
    );
    println!(
        "  keep it as a revision ({} patients, {} objects) {:.2} s",
        scope.patients.len(),
        scope.objects.len(),
        kept.as_secs_f64()
    );
    drop(app);
    drop((store, db, dir));
}

#[tokio::main]
async fn main() {
    let events: u64 = arg("--events").and_then(|s| s.parse().ok()).unwrap_or(2_000_000);
    let reads: u64 = arg("--reads").and_then(|s| s.parse().ok()).unwrap_or(43_000);
    let patients: u64 = arg("--patients").and_then(|s| s.parse().ok()).unwrap_or(10_000);
    run(None, events, reads, patients).await;
    if let Some(pg) = arg("--postgres") {
        run(Some(&pg), events, reads, patients).await;
    }
}
