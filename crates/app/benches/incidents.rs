//! Incident scope at scale (issue 18, P5; a load tool, not a timed test): a log of N events from a
//! busy portal's staff, with an attacker's session reading R documents of P patients spread
//! evenly through it, and the time to compute the incident's scope from the log (find the
//! attacker's events, classify them, look up what each touched and who controls it) and to keep
//! it as a revision. Beside it, the baseline: the database engine alone reading the same R events
//! (an aggregate over them, nothing sent back), so the ratio says what the scope adds.
//!
//! The log is bulk-generated inside the database, already sequenced and filed as the tree builder
//! files it (like the verify benchmark's `--bulk`; the tree's hashes are not computed, as the
//! scope does not read them): 100 million events through the append path would take hours.
//!
//! Run: `cargo bench -p app --features bench --bench incidents -- [--events N] [--reads R]
//! [--patients P] [--postgres URL] [--no-sqlite]` (defaults: 2,000,000 events, 43,000 reads of
//! 10,000 patients; MMH's incident is 430,000 reads of 100,000 patients).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    clippy::doc_markdown,
    clippy::too_many_lines,
    missing_docs
)]

/// The allocator the portal's binary runs with (`crates/tiaki/src/main.rs`), where a scope is
/// computed (`tiaki incident revise`, the console).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use app::domain::incidents::Indicators;
use app::{App, AuditSettings, Settings};
use sqlx::Connection;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

const BASE_MS: i64 = 1_700_000_000_000;
/// Events written per statement.
const CHUNK: u64 = 1_000_000;
/// The tree builder's batch: it files each batch's events in key order.
const BATCH: u64 = 500;

struct Plan {
    events: u64,
    reads: u64,
    patients: u64,
    pg: bool,
}

impl Plan {
    /// Every `every`-th event is one of the attacker's reads.
    fn every(&self) -> u64 {
        (self.events / self.reads.max(1)).max(1)
    }

    /// SQL for a UUID-shaped id, the same text on both engines: `kind` says what it is (1 staff,
    /// 2 session, 3 practice, 4 patient, 5 document, 6 the attacker's documents, 9 the attacker),
    /// `k` which one; the first group is a hash of `k`, so ids spread over the key space.
    fn uid(&self, kind: u32, k: &str) -> String {
        if self.pg {
            format!(
                "(lpad(to_hex((({k}) * 2654435761) % 4294967296), 8, '0') || '-' || lpad(to_hex({kind}), 4, '0') \
                 || '-4' || lpad(to_hex(({k}) % 4096), 3, '0') || '-a' || lpad(to_hex((({k}) / 4096) % 4096), 3, '0') \
                 || '-' || lpad(to_hex({k}), 12, '0'))"
            )
        } else {
            format!(
                "printf('%08x-%04x-4%03x-a%03x-%012x', (({k}) * 2654435761) % 4294967296, {kind}, ({k}) % 4096, \
                 (({k}) / 4096) % 4096, {k})"
            )
        }
    }

    fn hex_id(&self, k: &str) -> String {
        if self.pg {
            format!("('01900000-0000-7000-8000-' || lpad(to_hex({k}), 12, '0'))")
        } else {
            format!("printf('01900000-0000-7000-8000-%012x', {k})")
        }
    }

    /// The numbers `from..to` as rows of `i`, with `atk` (an attacker's read) and `k` (which).
    fn numbers(&self, from: u64, to: u64) -> String {
        let (every, reads) = (self.every(), self.reads);
        if self.pg {
            format!(
                "(SELECT i, (i % {every} = 0 AND i / {every} < {reads}) AS atk, i / {every} AS k \
                 FROM generate_series({from}::bigint, {to}::bigint - 1) AS g(i)) e"
            )
        } else {
            format!(
                "(WITH RECURSIVE n(i) AS (SELECT {from} UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {to}) \
                 SELECT i, (i % {every} = 0 AND i / {every} < {reads}) AS atk, i / {every} AS k FROM n) e"
            )
        }
    }

    /// Events `from..to` of the log: staff reading patients' documents across 200 practices and
    /// 100,000 patients (each member of staff a new session every 2 million events), and among
    /// them the attacker's reads, from its own address.
    fn events_sql(&self, from: u64, to: u64) -> String {
        let patients = self.patients;
        format!(
            "INSERT INTO audit_events (seq, id, at_ms, actor_account, actor_role, actor_practice, session_id, ip, \
             user_agent, on_behalf, action, object_type, object_id, patient_id, practice_id, outcome, request_id, \
             module, format) \
             SELECT i, {id}, {BASE_MS} + i, CASE WHEN atk THEN {attacker} ELSE {staff} END, 'staff:gp', {practice}, \
             CASE WHEN atk THEN {stolen} ELSE {session} END, \
             CASE WHEN atk THEN '203.0.113.66' ELSE '192.0.2.10' END, \
             'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36', \
             NULL, 'read', 'document', CASE WHEN atk THEN {taken} ELSE {document} END, \
             CASE WHEN atk THEN {victim} ELSE {patient} END, {practice}, 'allowed', {request}, 'documents', 2 \
             FROM {numbers}",
            id = self.hex_id("i"),
            attacker = self.uid(9, "0"),
            staff = self.uid(1, "i % 2000"),
            practice = self.uid(3, "i % 200"),
            stolen = self.uid(9, "1"),
            session = self.uid(2, "(i % 2000) + 2000 * (i / 2000000)"),
            taken = self.uid(6, "k"),
            document = self.uid(5, "i"),
            victim = self.uid(4, &format!("k % {patients}")),
            patient = self.uid(4, "(i * 104729) % 100000"),
            request = self.hex_id("i + 1000000000000"),
            numbers = self.numbers(from, to),
        )
    }

    /// Files events `from..to` as the tree builder does (migration 0024), batch by batch.
    fn filing_sql(from: u64, to: u64) -> [String; 2] {
        let wanted = format!(
            "FROM audit_events WHERE seq >= {from} AND seq < {to} AND outcome = 'allowed' AND patient_id IS NOT NULL \
             AND COALESCE(session_id, actor_account) IS NOT NULL"
        );
        [
            format!(
                "INSERT INTO audit_by_actor (actor, seq, account, at_ms, module, action, object_type, object_id, \
                 patient_id, practice_id) \
                 SELECT COALESCE(session_id, actor_account), seq, actor_account, at_ms, module, action, object_type, \
                 object_id, patient_id, practice_id {wanted} ORDER BY seq / {BATCH}, 1, 2"
            ),
            format!(
                "INSERT INTO audit_actor_keys (account, actor) \
                 SELECT DISTINCT actor_account, COALESCE(session_id, actor_account) {wanted} \
                 AND actor_account IS NOT NULL ON CONFLICT (account, actor) DO NOTHING"
            ),
        ]
    }

    /// The attacker's documents as the documents module keeps them: discharge letters controlled
    /// by the hospital.
    fn documents_sql(&self) -> String {
        let as_id = |e: String| if self.pg { format!("({e})::uuid") } else { format!("unhex(replace({e}, '-', ''))") };
        let numbers = if self.pg {
            format!("(SELECT i AS k FROM generate_series(0::bigint, {}::bigint - 1) AS g(i)) e", self.reads)
        } else {
            format!(
                "(WITH RECURSIVE n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k + 1 < {}) SELECT k FROM n) e",
                self.reads
            )
        };
        format!(
            "INSERT INTO documents (id, patient_id, version, category, title, filename, media_type, size, blob_key, \
             wrapped_key, key_version, aad_practice, clinical_date, source_org_id, source_org_name, controller_id, \
             controller_name, source_ref, created_at) \
             SELECT {id}, {patient}, 1, 'discharge_summary', 'Discharge summary', 'discharge.pdf', 'application/pdf', \
             120000, 'bench/' || k, {key}, 1, 'bench', '2025-11-0' || (k % 9 + 1), 'G00001-H', \
             'Te Whatu Ora Te Tai Tokerau', 'G00001-H', 'Te Whatu Ora Te Tai Tokerau', 'ref-' || k, 1700000000 \
             FROM {numbers}",
            id = as_id(self.uid(6, "k")),
            patient = as_id(self.uid(4, &format!("k % {}", self.patients))),
            key = if self.pg { "'\\x00'::bytea" } else { "x'00'" },
        )
    }
}

/// Runs bulk statements on one connection of either engine, foreign keys off (the documents'
/// patients are not made).
enum Bulk {
    Sqlite(sqlx::SqliteConnection),
    Pg(sqlx::PgConnection),
}

impl Bulk {
    async fn open(url: &str) -> Self {
        if url.starts_with("sqlite:") {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::raw_sql("PRAGMA foreign_keys = OFF; PRAGMA cache_size = -1048576").execute(&mut c).await.unwrap();
            Self::Sqlite(c)
        } else {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql("SET session_replication_role = replica; SET work_mem = '256MB'")
                .execute(&mut c)
                .await
                .unwrap();
            Self::Pg(c)
        }
    }

    async fn run(&mut self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self {
            Self::Sqlite(c) => {
                sqlx::raw_sql(sql).execute(c).await.unwrap();
            }
            Self::Pg(c) => {
                sqlx::raw_sql(sql).execute(c).await.unwrap();
            }
        }
    }

    async fn number(&mut self, sql: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self {
            Self::Sqlite(c) => sqlx::query_scalar(sql).fetch_one(c).await.unwrap(),
            Self::Pg(c) => sqlx::query_scalar(sql).fetch_one(c).await.unwrap(),
        }
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

async fn run(pg: Option<&str>, events: u64, reads: u64, patients: u64) {
    // `--reuse URL` times a log an earlier run kept (`TIAKI_BENCH_KEEP=1`) with the same sizes.
    let reuse = arg("--reuse").filter(|u| u.starts_with("postgres") == pg.is_some());
    let dir = testkit::db::TempDir::new("bench-incidents").unwrap();
    let db = match (&reuse, pg) {
        (Some(_), _) => None,
        (None, Some(admin)) => Some(testkit::db::Database::postgres(admin).await.unwrap()),
        (None, None) => Some(testkit::db::Database::sqlite(&dir.0).await.unwrap()),
    };
    let url = reuse.clone().unwrap_or_else(|| db.as_ref().map(|d| d.url.clone()).unwrap_or_default());
    let plan = Plan { events, reads, patients, pg: pg.is_some() };
    let engine = if pg.is_some() { "PostgreSQL" } else { "SQLite" };
    let mut bulk = Bulk::open(&url).await;
    let start = Instant::now();
    if reuse.is_none() {
        write_log(&mut bulk, &plan).await;
    }
    let written = start.elapsed();
    let size: i64 = if plan.pg {
        bulk.number("SELECT pg_database_size(current_database())").await
    } else {
        bulk.number("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()").await
    };
    let attacker = testkit_uid(&mut bulk, &plan, 9, 0).await;
    let session = testkit_uid(&mut bulk, &plan, 9, 1).await;
    drop(bulk);

    let store = store::connect(&url).await.unwrap();
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
    let lead = authz::console::lead_incidents();
    // The baseline: the engine alone over the same rows, nothing sent back.
    let mut raw = Bulk::open(&url).await;
    let start = Instant::now();
    let counted = raw
        .number(&format!(
            "SELECT COUNT(*) FROM audit_by_actor WHERE actor = '{session}' AND seq < {events} \
             AND LENGTH(object_id) + LENGTH(patient_id) + LENGTH(action) > 0"
        ))
        .await;
    let baseline = start.elapsed();
    let join = if plan.pg {
        "d.id = (f.object_id)::uuid AND d.patient_id = (f.patient_id)::uuid"
    } else {
        "d.id = unhex(replace(f.object_id, '-', '')) AND d.patient_id = unhex(replace(f.patient_id, '-', ''))"
    };
    let start = Instant::now();
    let joined = raw
        .number(&format!(
            "SELECT COUNT(d.controller_name) FROM audit_by_actor f LEFT JOIN documents d ON {join} \
             WHERE f.actor = '{session}' AND f.seq < {events}"
        ))
        .await;
    let baseline_joined = start.elapsed();
    drop(raw);
    let by_session = Indicators { sessions: vec![session.clone()], ..Indicators::default() };
    let by_account = Indicators { accounts: vec![attacker.clone()], ..Indicators::default() };
    let start = Instant::now();
    let found = store.indicator_events(&lead, u64::MAX, &[], std::slice::from_ref(&session), &[], false).await.unwrap();
    let find = start.elapsed();
    let mut timings = Vec::new();
    let mut scope = None;
    for indicators in [&by_session, &by_session, &by_account] {
        let start = Instant::now();
        let s = app.incidents().scope_below(indicators, u64::MAX).await.unwrap();
        timings.push(start.elapsed());
        assert_eq!(s.events as u64, reads);
        assert_eq!(s.patients.len() as u64, patients.min(reads));
        assert!(s.objects.iter().all(|o| o.controller_id == "G00001-H" && o.category == "discharge_summary"));
        scope = Some(s);
    }
    let scope = scope.unwrap();
    let incident = uuid::Uuid::new_v4().to_string();
    let row = store::incidents::RevisionRow {
        incident_id: incident.clone(),
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
                id: incident.clone(),
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
    assert_eq!(u64::try_from(counted).unwrap(), reads);
    assert_eq!(found.len() as u64, reads);
    assert!(found.iter().all(|e| e.document.is_some()), "each read comes with its document's facts");
    println!(
        "incident scope ({engine}): a log of {events} events ({:.1} GB on disk), the attacker's {reads} reads of \
         {patients} patients",
        size as f64 / 1e9
    );
    println!("  write and file the log (bulk, in the database) {:.0} s", secs(written));
    println!("  baseline: the engine alone over the attacker's {counted} filed events {:.2} s", secs(baseline));
    println!(
        "  baseline: the engine alone over them and their {joined} documents' facts {:.2} s",
        secs(baseline_joined)
    );
    println!("  find them (the store's read, by session) {:.2} s", secs(find));
    for (what, t) in ["first, by session", "again, by session", "by account"].iter().zip(&timings) {
        println!(
            "  compute the scope ({what}: find, classify, look up each document and its controller) {:.2} s  \
             ({:.1}x the baseline)",
            secs(*t),
            secs(*t) / secs(baseline).max(1e-9)
        );
    }
    println!(
        "  keep it as a revision ({} patients, {} objects) {:.2} s",
        scope.patients.len(),
        scope.objects.len(),
        secs(kept)
    );
    drop(app);
    if std::env::var_os("TIAKI_BENCH_KEEP").is_some() {
        println!("  kept: {url}");
        std::mem::forget((store, db, dir));
    } else {
        drop((store, db, dir));
    }
}

/// Writes the log, files it and adds the attacker's documents, with progress and an ETA.
async fn write_log(bulk: &mut Bulk, plan: &Plan) {
    let events = plan.events;
    let bar = indicatif::ProgressBar::new(events);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} events written and filed ({per_sec}, ETA {eta})",
        )
        .unwrap(),
    );
    let mut i = 0;
    while i < events {
        let to = (i + CHUNK).min(events);
        bulk.run(&format!(
            "BEGIN; {}; {}; {}; COMMIT",
            plan.events_sql(i, to),
            Plan::filing_sql(i, to)[0],
            Plan::filing_sql(i, to)[1]
        ))
        .await;
        i = to;
        bar.set_position(i);
    }
    bar.finish_and_clear();
    bulk.run(&format!("UPDATE audit_filed SET below = {events}")).await;
    bulk.run(&plan.documents_sql()).await;
    if plan.pg {
        bulk.run("ANALYZE").await;
    }
}

/// The text of an id as the bulk SQL writes it.
async fn testkit_uid(bulk: &mut Bulk, plan: &Plan, kind: u32, k: u64) -> String {
    let sql = format!("SELECT {}", plan.uid(kind, &k.to_string()));
    let sql = sqlx::AssertSqlSafe(sql);
    match bulk {
        Bulk::Sqlite(c) => sqlx::query_scalar(sql).fetch_one(c).await.unwrap(),
        Bulk::Pg(c) => sqlx::query_scalar(sql).fetch_one(c).await.unwrap(),
    }
}

#[tokio::main]
async fn main() {
    let events: u64 = arg("--events").and_then(|s| s.parse().ok()).unwrap_or(2_000_000);
    let reads: u64 = arg("--reads").and_then(|s| s.parse().ok()).unwrap_or(43_000);
    let patients: u64 = arg("--patients").and_then(|s| s.parse().ok()).unwrap_or(10_000);
    if !std::env::args().any(|a| a == "--no-sqlite") {
        run(None, events, reads, patients).await;
    }
    if let Some(pg) = arg("--postgres") {
        run(Some(&pg), events, reads, patients).await;
    }
}
