//! Booking under load (issue 15): a practice's book with 500 free slots, and 200 patients who
//! each book one at the same time (up to `TIAKI_BENCH_BOOKERS` at once: 100, then 200), choosing
//! at random among the times still free and choosing again when someone beats them to it — the
//! use case as a request runs it: the policy, the transaction that takes the slot and queues the
//! confirmation, the access event committed durably. Beside it, in the same run and the same
//! way, the baseline: the same patients opening the free-slot page's use case (a week of free
//! times, no write). Prints bookings/s and p50/p99 for both, and checks that every slot was
//! taken at most once. On `SQLite` by default; `TIAKI_TEST_DATABASE=postgres` (with
//! `TIAKI_TEST_POSTGRES_URL`) for `PostgreSQL`. Run: `cargo bench -p web --bench booking`.

// Fixtures are made through the console shortcuts, as the web suite makes them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::too_many_lines,
    clippy::disallowed_methods,
    clippy::many_single_char_names,
    missing_docs
)]

use app::appointments::BookForm;
use app::appointments::book::BookFilter;
use app::domain::SlotId;
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::appointments::{set_up, slots, test_nhis};
use testkit::{World, enrol};

const PATIENTS: usize = 200;
const FREE: usize = 500;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    // The rank of the p-th percentile, rounded up (nearest-rank).
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

async fn run(bookers: usize) -> anyhow::Result<()> {
    let w = World::new().await?;
    let practice = w.practice_a.as_uuid();
    let mut admin = w.signed_in("admin-a@example.nz", [127, 0, 50, 1]).await?;
    let book = testkit::appointments::book(&w.t, &mut admin, practice).await?;
    // Afternoons too, so that the window holds well over 500 free times.
    for schedule in [book.gp, book.nurse] {
        for day in 1..=5 {
            let (s, k, d) = (schedule.to_string(), book.standard.to_string(), day.to_string());
            let f = [
                ("action", "add_template"),
                ("clinician", s.as_str()),
                ("type_id", k.as_str()),
                ("weekday", d.as_str()),
                ("start", "13:00"),
                ("end", "17:00"),
            ];
            set_up(&mut admin, practice, &f).await?;
        }
    }
    set_up(
        &mut admin,
        practice,
        &[
            ("action", "rules"),
            ("booking_on", "1"),
            ("window_days", "28"),
            ("cancel_cutoff_hours", "2"),
            ("max_future", "5"),
        ],
    )
    .await?;
    let mut free: Vec<SlotId> =
        slots(&w.t, practice, "free").await?.into_iter().map(|(id, _)| SlotId::from_uuid(id)).collect();
    assert!(free.len() >= FREE, "the window holds {} free times", free.len());
    // Only 500 of them are offered: block the rest.
    let blocker = app::Caller::console(app::Principal::Staff {
        account: app::domain::AccountId::random(),
        session: app::domain::SessionId::random(),
        practice: w.practice_a,
        role: app::domain::StaffRole::Admin,
    });
    for slot in free.split_off(FREE) {
        w.t.app
            .appointments()
            .block(&blocker, w.practice_a, Some(slot), Some(true))
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    let mut callers = Vec::new();
    for (n, nhi) in test_nhis("ZBK", PATIENTS).iter().enumerate() {
        let (patient, _) = enrol(&w.t, w.practice_a, nhi, &format!("booker{n}@bench.example.nz")).await?;
        callers.push((patient, w.t.app.console().as_patient(patient).await.map_err(|e| anyhow::anyhow!("{e:?}"))?));
    }
    let free = Arc::new(tokio::sync::Mutex::new(free));
    let app = w.t.app.clone();
    let gate = Arc::new(tokio::sync::Semaphore::new(bookers));

    // Baseline: each patient opens the free-slot page's use case once.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (patient, caller) in callers.clone() {
        let (app, gate) = (app.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let t = Instant::now();
            let page = app.appointments().free_slots(&caller, patient, BookFilter::default()).await.unwrap();
            assert!(!page.practices.is_empty());
            t.elapsed()
        }));
    }
    let mut page_times = Vec::new();
    for t in tasks {
        page_times.push(t.await?);
    }
    let page_secs = started.elapsed().as_secs_f64();
    page_times.sort();

    // Bookings: each patient books one of the times still free.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (n, (patient, caller)) in callers.into_iter().enumerate() {
        let (app, gate, free) = (app.clone(), gate.clone(), free.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let t = Instant::now();
            let mut tries = 0;
            loop {
                tries += 1;
                let slot = {
                    let f = free.lock().await;
                    f[(n * 7919 + tries * 104_729) % f.len()]
                };
                match app.appointments().book(&caller, patient, &BookForm { slot, reason: String::new() }).await {
                    Ok(a) => {
                        free.lock().await.retain(|s| *s != a.slot.id);
                        return (t.elapsed(), tries);
                    }
                    Err(app::AppError::Conflict(_)) => {}
                    Err(e) => panic!("{e:?}"),
                }
            }
        }));
    }
    let mut book_times = Vec::new();
    let mut retries = 0;
    for t in tasks {
        let (d, tries) = t.await?;
        book_times.push(d);
        retries += tries - 1;
    }
    let book_secs = started.elapsed().as_secs_f64();
    book_times.sort();
    let booked = testkit::appointments::count(&w.t, "appointments WHERE status = 'booked'").await?;
    let distinct =
        testkit::appointments::count(&w.t, "(SELECT DISTINCT slot_id FROM appointments WHERE status = 'booked') AS s")
            .await?;
    assert_eq!((booked, distinct), (200, 200), "each patient booked once, each slot at most once");
    #[allow(clippy::cast_precision_loss)]
    let (pages, bookings) = (PATIENTS as f64 / page_secs, PATIENTS as f64 / book_secs);
    let engine = if w.t.url.starts_with("sqlite:") { "SQLite" } else { "PostgreSQL" };
    println!(
        "{engine}, {bookers} at once: bookings {bookings:.0}/s, p50 {:.1} ms, p99 {:.1} ms ({retries} lost races retried) | \
         baseline free-slot page {pages:.0}/s, p50 {:.1} ms, p99 {:.1} ms | booking p99 / page p99 = {:.2}",
        percentile(&book_times, 50.0),
        percentile(&book_times, 99.0),
        percentile(&page_times, 50.0),
        percentile(&page_times, 99.0),
        percentile(&book_times, 99.0) / percentile(&page_times, 99.0).max(0.001),
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let only: Option<usize> = std::env::var("TIAKI_BENCH_BOOKERS").ok().and_then(|v| v.parse().ok());
    for bookers in only.map_or_else(|| vec![100, 200], |b| vec![b]) {
        rt.block_on(run(bookers))?;
    }
    Ok(())
}
