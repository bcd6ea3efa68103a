//! Appointment-book and repeat-prescription fixtures: a practice's book set up through its
//! admin's pages, the rows the tests count, and FHIR Bundles as a practice's system sends them.

use crate::{Browser, Reply, TestApp};
use anyhow::{Result, anyhow};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;
use uuid::Uuid;

/// Runs one query on the test's database and returns its rows.
async fn rows<T>(t: &TestApp, sql: &str) -> Result<Vec<T>>
where
    T: Send
        + Unpin
        + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    if t.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&t.url).await?;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&mut c).await?)
    } else {
        let mut c = sqlx::PgConnection::connect(&t.url).await?;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&mut c).await?)
    }
}

/// How many rows a table has (`appointments`, `repeat_requests`…), optionally filtered.
///
/// # Errors
/// When the database cannot be read.
pub async fn count(t: &TestApp, table_and_filter: &str) -> Result<i64> {
    let r: Vec<(i64,)> = rows(t, &format!("SELECT COUNT(*) FROM {table_and_filter}")).await?;
    Ok(r.first().map_or(0, |r| r.0))
}

/// The practice's slots of one state, by time: `(id, starts_at)`.
///
/// # Errors
/// When the database cannot be read.
pub async fn slots(t: &TestApp, practice: Uuid, status: &str) -> Result<Vec<(Uuid, i64)>> {
    let all: Vec<(Uuid, Uuid, i64, String)> =
        rows(t, "SELECT id, practice_id, starts_at, status FROM slots ORDER BY starts_at, id").await?;
    Ok(all.into_iter().filter(|(_, p, _, s)| *p == practice && s == status).map(|(id, _, at, _)| (id, at)).collect())
}

/// Each appointment: `(id, patient, slot, status, reason as stored)`.
///
/// # Errors
/// When the database cannot be read.
pub async fn appointments(t: &TestApp) -> Result<Vec<(Uuid, Uuid, Uuid, String, Option<String>)>> {
    rows(t, "SELECT id, patient_id, slot_id, status, reason FROM appointments ORDER BY created_at, id").await
}

/// A practice's books and types by name: `(schedule or type id, name)`.
///
/// # Errors
/// When the database cannot be read.
pub async fn ids_of(t: &TestApp, table: &str, column: &str, practice: Uuid) -> Result<Vec<(Uuid, String)>> {
    let all: Vec<(Uuid, Uuid, String)> =
        rows(t, &format!("SELECT id, practice_id, {column} FROM {table} ORDER BY {column}")).await?;
    Ok(all.into_iter().filter(|(_, p, _)| *p == practice).map(|(id, _, n)| (id, n)).collect())
}

/// What the set-up made: the GP's and nurse's books and the two types.
#[derive(Debug, Clone, Copy)]
pub struct Book {
    /// The GP's book.
    pub gp: Uuid,
    /// The nurse's book.
    pub nurse: Uuid,
    /// "Standard", 15 minutes, bookable online.
    pub standard: Uuid,
    /// "Long", 30 minutes, by phone only.
    pub long: Uuid,
}

/// Posts one set-up form as the practice's admin; fails unless it is saved.
///
/// # Errors
/// When the form is not saved.
pub async fn set_up(admin: &mut Browser, practice: Uuid, fields: &[(&str, &str)]) -> Result<Reply> {
    let path = format!("/practices/{practice}/book-setup");
    admin.get(&path).await?;
    let r = admin.post(&path, fields).await?;
    if r.status != StatusCode::SEE_OTHER {
        return Err(anyhow!("set-up {fields:?} was not saved: {} {}", r.status, r.body));
    }
    Ok(r)
}

/// Sets up a practice's book through its admin's pages: a GP and a nurse at "Main clinic", a
/// standard 15-minute type (online) and a long 30-minute one (phone only), and weekday
/// mornings 09:00–12:00 for both.
///
/// # Errors
/// When a form is not saved.
pub async fn book(t: &TestApp, admin: &mut Browser, practice: Uuid) -> Result<Book> {
    for (name, kind) in [("Dr Aroha Ngata", "gp"), ("Nurse Mere Tane", "nurse")] {
        set_up(
            admin,
            practice,
            &[("action", "add_clinician"), ("name", name), ("kind", kind), ("location", "Main clinic")],
        )
        .await?;
    }
    set_up(
        admin,
        practice,
        &[("action", "type"), ("name", "Standard"), ("minutes", "15"), ("modality", "in_person"), ("online", "1")],
    )
    .await?;
    set_up(admin, practice, &[("action", "type"), ("name", "Long"), ("minutes", "30"), ("modality", "phone")]).await?;
    let books = ids_of(t, "schedules", "clinician", practice).await?;
    let types = ids_of(t, "appointment_types", "name", practice).await?;
    let find = |v: &[(Uuid, String)], n: &str| {
        v.iter().find(|(_, x)| x == n).map(|(id, _)| *id).ok_or_else(|| anyhow!("no {n}"))
    };
    let book = Book {
        gp: find(&books, "Dr Aroha Ngata")?,
        nurse: find(&books, "Nurse Mere Tane")?,
        standard: find(&types, "Standard")?,
        long: find(&types, "Long")?,
    };
    for schedule in [book.gp, book.nurse] {
        for day in 1..=5 {
            let (s, k, d) = (schedule.to_string(), book.standard.to_string(), day.to_string());
            set_up(
                admin,
                practice,
                &[
                    ("action", "add_template"),
                    ("clinician", &s),
                    ("type_id", &k),
                    ("weekday", &d),
                    ("start", "09:00"),
                    ("end", "12:00"),
                ],
            )
            .await?;
        }
    }
    Ok(book)
}

/// A batch Bundle of these resources.
#[must_use]
pub fn batch(resources: impl IntoIterator<Item = Value>) -> String {
    let entry: Vec<Value> = resources.into_iter().map(|r| json!({ "resource": r })).collect();
    json!({ "resourceType": "Bundle", "type": "batch", "entry": entry }).to_string()
}

/// Sends a Bundle to `POST /fhir/R4/appointments` with a client's token.
///
/// # Errors
/// When the request cannot be made.
pub async fn sync(t: &TestApp, token: &str, body: &str) -> Result<Reply> {
    t.client(token)
        .send(Method::POST, "/fhir/R4/appointments", Some("application/fhir+json"), body.as_bytes().to_vec())
        .await
}

/// The statuses of a batch-response's entries, in order.
#[must_use]
pub fn statuses(reply: &Reply) -> Vec<String> {
    serde_json::from_str::<Value>(&reply.body)
        .ok()
        .and_then(|v| v.get("entry").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .map(|e| e.pointer("/response/status").and_then(Value::as_str).unwrap_or("").to_owned())
        .collect()
}

/// `n` valid test NHIs (they start with Z) beginning with `prefix` (three letters), each with
/// its right check digit.
#[must_use]
pub fn test_nhis(prefix: &str, n: usize) -> Vec<String> {
    (0..1000)
        .filter_map(|k| (0..10).map(|d| format!("{prefix}{k:03}{d}")).find(|s| app::domain::Nhi::parse(s).is_ok()))
        .take(n)
        .collect()
}

/// The id of the slot the practice's system knows by `source`.
///
/// # Errors
/// When there is none.
pub async fn slot_by_source(t: &TestApp, source: &str) -> Result<Uuid> {
    let all: Vec<(Uuid, Option<String>)> = rows(t, "SELECT id, source_id FROM slots").await?;
    all.into_iter()
        .find(|(_, s)| s.as_deref() == Some(source))
        .map(|(id, _)| id)
        .ok_or_else(|| anyhow!("no slot {source}"))
}

/// The New Zealand day (YYYY-MM-DD) of the slot the practice's system knows by `source`.
///
/// # Errors
/// When there is none.
pub async fn rows_day(t: &TestApp, source: &str) -> Result<String> {
    let all: Vec<(Option<String>, i64)> = rows(t, "SELECT source_id, starts_at FROM slots").await?;
    let at = all
        .into_iter()
        .find(|(s, _)| s.as_deref() == Some(source))
        .map(|(_, at)| at)
        .ok_or_else(|| anyhow!("no slot {source}"))?;
    Ok(app::domain::calendar::local_day(at).to_string())
}

/// The slot of a book starting at an instant (RFC 3339 with offset).
///
/// # Errors
/// When there is none.
pub async fn slot_at(t: &TestApp, schedule: Uuid, instant: &str) -> Result<Uuid> {
    let at = instant.parse::<jiff::Timestamp>()?.as_second();
    let all: Vec<(Uuid, Uuid, i64)> = rows(t, "SELECT id, schedule_id, starts_at FROM slots").await?;
    all.into_iter()
        .find(|(_, s, a)| *s == schedule && *a == at)
        .map(|(id, ..)| id)
        .ok_or_else(|| anyhow!("no slot at {instant}"))
}

/// A patient's account id.
///
/// # Errors
/// When there is no such patient.
pub async fn account_of(t: &TestApp, patient: Uuid) -> Result<Uuid> {
    let all: Vec<(Uuid, Uuid)> = rows(t, "SELECT id, account_id FROM patients").await?;
    all.into_iter().find(|(p, _)| *p == patient).map(|(_, a)| a).ok_or_else(|| anyhow!("no patient {patient}"))
}

/// A patient's long-term list: `(id, excluded)`, oldest first.
///
/// # Errors
/// When the database cannot be read.
pub async fn medications(t: &TestApp, patient: Uuid) -> Result<Vec<(Uuid, bool)>> {
    let all: Vec<(Uuid, Uuid, bool)> =
        rows(t, "SELECT id, patient_id, excluded FROM repeat_medications ORDER BY created_at, id").await?;
    Ok(all.into_iter().filter(|(_, p, _)| *p == patient).map(|(id, _, e)| (id, e)).collect())
}

/// Every slot of a practice: `(book, starts_at, ends_at)`, by book and time.
///
/// # Errors
/// When the database cannot be read.
pub async fn slot_spans(t: &TestApp, practice: Uuid) -> Result<Vec<(Uuid, i64, i64)>> {
    let all: Vec<(Uuid, Uuid, i64, i64)> =
        rows(t, "SELECT practice_id, schedule_id, starts_at, ends_at FROM slots ORDER BY schedule_id, starts_at")
            .await?;
    Ok(all.into_iter().filter(|(p, ..)| *p == practice).map(|(_, s, a, b)| (s, a, b)).collect())
}
