// The SQL of the repeat-prescriptions aggregate, one text for both engines: included by
// `mod.rs` once for `SQLite` and once for `PostgreSQL`. Format with
// `rustfmt --edition 2024 prescriptions/sql.rs` (CI checks it).

use crate::portable::corrupt;
use crate::prescriptions::{
    ALREADY_REQUESTED, ListGrant, MOVED_ON, NOT_REQUESTABLE, NewRepeatRequest, PrescriptionStore, RepeatDecision,
    RepeatMedicationRow, RepeatRequestRow, RequestGrant,
};
use crate::{NewMail, Result, StoreError};
use authz::Grant;
use domain::prescriptions::{Collection, RepeatStatus};
use domain::{AccountId, BoxFuture, PatientId, PracticeId, RecordId, RepeatMedicationId, RepeatRequestId, UnixTime};
use sqlx::Row;
use uuid::Uuid;

type DbRow = <Db as sqlx::Database>::Row;

const REQUEST_COLUMNS: &str = "r.id, r.practice_id, r.patient_id, r.status, r.collection, r.pharmacy, r.note, \
    r.fee_cents, r.ready_by, r.outcome, r.decline_reason, r.reviewed_by, r.decided_by, r.created_at, r.updated_at, \
    p.name AS patient_name FROM repeat_requests r JOIN patients p ON p.id = r.patient_id";

/// The patient's rows (`$1`), and for staff (`$2`, nil for the patient) only their practice's
/// while the patient is enrolled there (`$3` is nil).
const SCOPE: &str = "x.patient_id = $1 AND ($2 = $3 OR (x.practice_id = $2 AND EXISTS \
    (SELECT 1 FROM enrolments e WHERE e.patient_id = x.patient_id AND e.practice_id = $2)))";

fn nil<T>(v: Option<T>, f: impl Fn(T) -> Uuid) -> Uuid {
    v.map_or(Uuid::nil(), f)
}

fn medication_row(r: &DbRow) -> Result<RepeatMedicationRow> {
    Ok(RepeatMedicationRow {
        id: RepeatMedicationId::from_uuid(r.try_get("id")?),
        practice: PracticeId::from_uuid(r.try_get("practice_id")?),
        patient: PatientId::from_uuid(r.try_get("patient_id")?),
        record: r.try_get::<Option<Uuid>, _>("record_id")?.map(RecordId::from_uuid),
        name: r.try_get("name")?,
        excluded: r.try_get("excluded")?,
        last_issued: r.try_get("last_issued")?,
        active: r.try_get("active")?,
    })
}

fn request_row(r: &DbRow) -> Result<RepeatRequestRow> {
    let account = |c: &str| r.try_get::<Option<Uuid>, _>(c).map(|u| u.map(AccountId::from_uuid));
    Ok(RepeatRequestRow {
        id: RepeatRequestId::from_uuid(r.try_get("id")?),
        practice: PracticeId::from_uuid(r.try_get("practice_id")?),
        patient: PatientId::from_uuid(r.try_get("patient_id")?),
        status: RepeatStatus::parse(&r.try_get::<String, _>("status")?).ok_or_else(|| corrupt("request status"))?,
        collection: Collection::parse(&r.try_get::<String, _>("collection")?).ok_or_else(|| corrupt("collection"))?,
        pharmacy: r.try_get("pharmacy")?,
        note: r.try_get("note")?,
        fee_cents: r.try_get("fee_cents")?,
        ready_by: r.try_get("ready_by")?,
        outcome: r.try_get("outcome")?,
        decline_reason: r.try_get("decline_reason")?,
        reviewed_by: account("reviewed_by")?,
        decided_by: account("decided_by")?,
        items: Vec::new(),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        patient_name: r.try_get("patient_name")?,
    })
}

/// Fills in each request's items (one read for all of them).
async fn with_items<'e, E>(exec: E, mut rows: Vec<RepeatRequestRow>) -> Result<Vec<RepeatRequestRow>>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    let Some(first) = rows.first() else { return Ok(rows) };
    let patients: std::collections::BTreeSet<Uuid> = rows.iter().map(|r| r.patient.as_uuid()).collect();
    let items: Vec<(Uuid, Uuid)> = if patients.len() == 1 {
        sqlx::query_as(
            "SELECT request_id, medication_id FROM repeat_request_items WHERE patient_id = $1 \
             ORDER BY request_id, medication_id",
        )
        .bind(first.patient.as_uuid())
        .fetch_all(exec)
        .await?
    } else {
        sqlx::query_as(
            "SELECT i.request_id, i.medication_id FROM repeat_request_items i \
             JOIN repeat_requests r ON r.id = i.request_id WHERE r.practice_id = $1 ORDER BY i.request_id, i.medication_id",
        )
        .bind(first.practice.as_uuid())
        .fetch_all(exec)
        .await?
    };
    for row in &mut rows {
        row.items = items
            .iter()
            .filter(|(r, _)| *r == row.id.as_uuid())
            .map(|(_, m)| RepeatMedicationId::from_uuid(*m))
            .collect();
    }
    Ok(rows)
}

async fn request_by_id(tx: &mut sqlx::Transaction<'_, Db>, id: RepeatRequestId) -> Result<RepeatRequestRow> {
    let sql = format!("SELECT {REQUEST_COLUMNS} WHERE r.id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(id.as_uuid()).fetch_optional(&mut **tx).await?;
    let row = row.as_ref().map(request_row).transpose()?.ok_or(StoreError::NotFound)?;
    let mut rows = with_items(&mut **tx, vec![row]).await?;
    rows.pop().ok_or(StoreError::NotFound)
}

/// Each item must be on the patient's list at the practice, not excluded, and in no open
/// request.
async fn check_items(tx: &mut sqlx::Transaction<'_, Db>, patient: PatientId, new: &NewRepeatRequest) -> Result<()> {
    for item in &new.items {
        let ok: Option<bool> = sqlx::query_scalar(
            "SELECT excluded FROM repeat_medications WHERE id = $1 AND patient_id = $2 AND practice_id = $3 \
             AND active = TRUE",
        )
        .bind(item.as_uuid())
        .bind(patient.as_uuid())
        .bind(new.practice.as_uuid())
        .fetch_optional(&mut **tx)
        .await?;
        if ok != Some(false) {
            return Err(StoreError::Conflict(NOT_REQUESTABLE));
        }
        let open: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM repeat_request_items WHERE medication_id = $1 AND open")
                .bind(item.as_uuid())
                .fetch_one(&mut **tx)
                .await?;
        if open > 0 {
            return Err(StoreError::Conflict(ALREADY_REQUESTED));
        }
    }
    Ok(())
}

async fn insert_request(
    tx: &mut sqlx::Transaction<'_, Db>,
    patient: PatientId,
    new: &NewRepeatRequest,
    now: UnixTime,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO repeat_requests (id, practice_id, patient_id, status, collection, pharmacy, note, \
         fee_cents, ready_by, request_key, requested_by, created_at, updated_at) \
         VALUES ($1, $2, $3, 'requested', $4, $5, $6, $7, $8, $9, $10, $11, $11)",
    )
    .bind(new.id.as_uuid())
    .bind(new.practice.as_uuid())
    .bind(patient.as_uuid())
    .bind(new.collection.as_str())
    .bind(&new.pharmacy)
    .bind(&new.note)
    .bind(new.fee_cents)
    .bind(&new.ready_by)
    .bind(&new.request_key)
    .bind(new.requested_by.map(|a| a.as_uuid()))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    for item in &new.items {
        sqlx::query(
            "INSERT INTO repeat_request_items (request_id, medication_id, patient_id, open) VALUES ($1, $2, $3, TRUE)",
        )
        .bind(new.id.as_uuid())
        .bind(item.as_uuid())
        .bind(patient.as_uuid())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl PrescriptionStore for This {
    fn repeat_list<'a>(&'a self, grant: ListGrant<'a>) -> BoxFuture<'a, Result<Vec<RepeatMedicationRow>>> {
        Box::pin(async move {
            let (patient, via) = grant.scope();
            let patient = patient.ok_or(StoreError::NotFound)?;
            let sql = format!(
                "SELECT x.id, x.practice_id, x.patient_id, x.record_id, x.name, x.excluded, x.last_issued, x.active \
                 FROM repeat_medications x WHERE {SCOPE} AND EXISTS (SELECT 1 FROM enrolments k \
                 WHERE k.patient_id = x.patient_id AND k.practice_id = x.practice_id) \
                 ORDER BY x.active DESC, x.created_at, x.id"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(patient.as_uuid())
                .bind(nil(via, |p| p.as_uuid()))
                .bind(Uuid::nil())
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(medication_row)
                .collect()
        })
    }

    fn repeat_list_for_request<'a>(
        &'a self,
        grant: RequestGrant<'a>,
    ) -> BoxFuture<'a, Result<Vec<RepeatMedicationRow>>> {
        Box::pin(async move {
            let (id, patient, via) = grant.scope();
            let patient = patient.ok_or(StoreError::NotFound)?;
            let sql = format!(
                "SELECT x.id, x.practice_id, x.patient_id, x.record_id, x.name, x.excluded, x.last_issued, x.active \
                 FROM repeat_medications x JOIN repeat_request_items i ON i.medication_id = x.id \
                 WHERE i.request_id = $4 AND {SCOPE} ORDER BY x.created_at, x.id"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(patient.as_uuid())
                .bind(nil(via, |p| p.as_uuid()))
                .bind(Uuid::nil())
                .bind(id.as_uuid())
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(medication_row)
                .collect()
        })
    }

    fn adopt_repeat_medications<'a>(
        &'a self,
        grant: ListGrant<'a>,
        rows: &'a [RepeatMedicationRow],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let (patient, _) = grant.scope();
            let patient = patient.ok_or(StoreError::NotFound)?;
            let mut tx = self.begin().await?;
            for row in rows.iter().filter(|r| r.patient == patient && r.record.is_some()) {
                sqlx::query(
                    "INSERT INTO repeat_medications (id, practice_id, patient_id, record_id, name, excluded, \
                     last_issued, active, created_at, updated_at) SELECT $1, $2, $3, $4, $5, $6, $7, TRUE, $8, $8 \
                     WHERE EXISTS (SELECT 1 FROM health_records h WHERE h.id = $4 AND h.patient_id = $3 \
                     AND h.practice_id = $2) \
                     AND EXISTS (SELECT 1 FROM enrolments e WHERE e.patient_id = $3 AND e.practice_id = $2) \
                     ON CONFLICT (patient_id, record_id) DO NOTHING",
                )
                .bind(row.id.as_uuid())
                .bind(row.practice.as_uuid())
                .bind(patient.as_uuid())
                .bind(row.record.map(|r| r.as_uuid()))
                .bind(&row.name)
                .bind(row.excluded)
                .bind(&row.last_issued)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn save_repeat_medication<'a>(
        &'a self,
        grant: &'a Grant<authz::ManageRepeatList>,
        row: &'a RepeatMedicationRow,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<RepeatMedicationId>> {
        Box::pin(async move {
            let patient = grant.patient().ok_or(StoreError::NotFound)?;
            let practice = grant.via_practice().ok_or(StoreError::NotFound)?;
            if row.patient != patient || row.practice != practice {
                return Err(StoreError::NotFound);
            }
            let conflict = if row.record.is_some() { "(patient_id, record_id)" } else { "(id)" };
            let sql = format!(
                "INSERT INTO repeat_medications (id, practice_id, patient_id, record_id, name, excluded, last_issued, \
                 active, created_at, updated_at) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $9 \
                 WHERE EXISTS (SELECT 1 FROM enrolments e WHERE e.patient_id = $3 AND e.practice_id = $2) \
                 ON CONFLICT {conflict} DO UPDATE SET name = $5, excluded = $6, last_issued = $7, active = $8, \
                 updated_at = $9 WHERE repeat_medications.practice_id = $2 AND repeat_medications.patient_id = $3 \
                 RETURNING id"
            );
            let id: Option<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(row.id.as_uuid())
                .bind(practice.as_uuid())
                .bind(patient.as_uuid())
                .bind(row.record.map(|r| r.as_uuid()))
                .bind(&row.name)
                .bind(row.excluded)
                .bind(&row.last_issued)
                .bind(row.active)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
            id.map(RepeatMedicationId::from_uuid).ok_or(StoreError::NotFound)
        })
    }

    fn request_repeat<'a>(
        &'a self,
        grant: &'a Grant<authz::RequestRepeat>,
        new: &'a NewRepeatRequest,
        mail: &'a [NewMail],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<(RepeatRequestRow, bool)>> {
        Box::pin(async move {
            let patient = grant.patient().ok_or(StoreError::NotFound)?;
            let again = || async {
                let id: Option<Uuid> =
                    sqlx::query_scalar("SELECT id FROM repeat_requests WHERE patient_id = $1 AND request_key = $2")
                        .bind(patient.as_uuid())
                        .bind(&new.request_key)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok::<_, StoreError>(id.map(RepeatRequestId::from_uuid))
            };
            let _turn = self.write_turn().await;
            let mut tx = self.begin().await?;
            // One request at a time per patient (see `book`).
            let enrolled = sqlx::query(
                "UPDATE patients SET name = name WHERE id = $1 AND EXISTS \
                 (SELECT 1 FROM enrolments e WHERE e.patient_id = $1 AND e.practice_id = $2)",
            )
            .bind(patient.as_uuid())
            .bind(new.practice.as_uuid())
            .execute(&mut *tx)
            .await?;
            if enrolled.rows_affected() != 1 {
                return Err(StoreError::NotFound);
            }
            let existing: Option<Uuid> =
                sqlx::query_scalar("SELECT id FROM repeat_requests WHERE patient_id = $1 AND request_key = $2")
                    .bind(patient.as_uuid())
                    .bind(&new.request_key)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(id) = existing {
                return Ok((request_by_id(&mut tx, RepeatRequestId::from_uuid(id)).await?, false));
            }
            check_items(&mut tx, patient, new).await?;
            let inserted = insert_request(&mut tx, patient, new, now).await;
            match inserted {
                Ok(()) => {}
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                    drop(tx);
                    // A concurrent twin with the same key won: that request is this one.
                    return match again().await? {
                        Some(id) => {
                            let mut tx = self.begin().await?;
                            let row = request_by_id(&mut tx, id).await?;
                            tx.commit().await?;
                            Ok((row, false))
                        }
                        None => Err(StoreError::Conflict(ALREADY_REQUESTED)),
                    };
                }
                Err(e) => return Err(e.into()),
            }
            for mail in mail {
                shared::insert_mail(&mut tx, mail).await?;
            }
            let row = request_by_id(&mut tx, new.id).await?;
            tx.commit().await?;
            Ok((row, true))
        })
    }

    fn repeat_requests<'a>(&'a self, grant: ListGrant<'a>) -> BoxFuture<'a, Result<Vec<RepeatRequestRow>>> {
        Box::pin(async move {
            let (patient, via) = grant.scope();
            let patient = patient.ok_or(StoreError::NotFound)?;
            let sql = format!(
                "SELECT {REQUEST_COLUMNS} WHERE {} AND ($4 = FALSE OR EXISTS (SELECT 1 FROM enrolments k \
                 WHERE k.patient_id = r.patient_id AND k.practice_id = r.practice_id)) \
                 ORDER BY r.created_at DESC, r.id LIMIT 200",
                SCOPE.replace("x.", "r.")
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(patient.as_uuid())
                .bind(nil(via, |p| p.as_uuid()))
                .bind(Uuid::nil())
                // Someone acting for the patient sees only requests to a practice the patient
                // is enrolled at now (their link's), never a former practice's.
                .bind(grant.by_proxy())
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(request_row)
                .collect::<Result<Vec<_>>>()?;
            with_items(&self.pool, rows).await
        })
    }

    fn repeat_request<'a>(&'a self, grant: RequestGrant<'a>) -> BoxFuture<'a, Result<RepeatRequestRow>> {
        Box::pin(async move {
            let (id, patient, via) = grant.scope();
            let patient = patient.ok_or(StoreError::NotFound)?;
            let sql = format!("SELECT {REQUEST_COLUMNS} WHERE r.id = $4 AND {}", SCOPE.replace("x.", "r."));
            let row = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(patient.as_uuid())
                .bind(nil(via, |p| p.as_uuid()))
                .bind(Uuid::nil())
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(request_row)
                .transpose()?
                .ok_or(StoreError::NotFound)?;
            let mut rows = with_items(&self.pool, vec![row]).await?;
            rows.pop().ok_or(StoreError::NotFound)
        })
    }

    fn repeat_queue<'a>(
        &'a self,
        grant: &'a Grant<authz::ListRepeatQueue>,
        closed_since: UnixTime,
    ) -> BoxFuture<'a, Result<Vec<RepeatRequestRow>>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {REQUEST_COLUMNS} WHERE r.practice_id = $1 \
                 AND (r.status IN ('requested', 'in_review') OR r.updated_at >= $2) \
                 AND EXISTS (SELECT 1 FROM enrolments e WHERE e.patient_id = r.patient_id AND e.practice_id = $1) \
                 ORDER BY CASE WHEN r.status IN ('requested', 'in_review') THEN 0 ELSE 1 END, r.created_at, r.id \
                 LIMIT 500"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(grant.object().as_uuid())
                .bind(closed_since)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(request_row)
                .collect::<Result<Vec<_>>>()?;
            with_items(&self.pool, rows).await
        })
    }

    fn decide_repeat<'a>(
        &'a self,
        grant: RequestGrant<'a>,
        decision: &'a RepeatDecision<'a>,
        mail: &'a [NewMail],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<RepeatRequestRow>> {
        Box::pin(async move {
            let (id, patient, via) = grant.scope();
            let patient = patient.ok_or(StoreError::NotFound)?;
            let practice = via.ok_or(StoreError::NotFound)?;
            let mut tx = self.begin().await?;
            let current = request_by_id(&mut tx, id).await?;
            let enrolled: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM enrolments WHERE patient_id = $1 AND practice_id = $2")
                    .bind(patient.as_uuid())
                    .bind(practice.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await?;
            if current.patient != patient || current.practice != practice || enrolled.is_none() {
                return Err(StoreError::NotFound);
            }
            if !decision.from.contains(&current.status) {
                return Err(StoreError::Conflict(MOVED_ON));
            }
            let (review_col, decide_col) = match decision.to {
                RepeatStatus::InReview => (decision.by.map(|a| a.as_uuid()), None),
                _ => (None, decision.by.map(|a| a.as_uuid())),
            };
            let done = sqlx::query(
                "UPDATE repeat_requests SET status = $3, reviewed_by = COALESCE($4, reviewed_by), \
                 decided_by = COALESCE($5, decided_by), outcome = COALESCE($6, outcome), \
                 decline_reason = COALESCE($7, decline_reason), updated_at = $8 \
                 WHERE id = $1 AND patient_id = $2 AND status = $9",
            )
            .bind(id.as_uuid())
            .bind(patient.as_uuid())
            .bind(decision.to.as_str())
            .bind(review_col)
            .bind(decide_col)
            .bind(decision.outcome)
            .bind(decision.reason)
            .bind(now)
            .bind(current.status.as_str())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict(MOVED_ON));
            }
            if !decision.to.open() {
                sqlx::query("UPDATE repeat_request_items SET open = FALSE WHERE request_id = $1")
                    .bind(id.as_uuid())
                    .execute(&mut *tx)
                    .await?;
            }
            if decision.to == RepeatStatus::Approved {
                for item in &current.items {
                    sqlx::query(
                        "UPDATE repeat_medications SET last_issued = $2, updated_at = $3 WHERE id = $1 AND patient_id = $4",
                    )
                    .bind(item.as_uuid())
                    .bind(decision.day)
                    .bind(now)
                    .bind(patient.as_uuid())
                        .execute(&mut *tx)
                        .await?;
                }
            }
            for mail in mail {
                shared::insert_mail(&mut tx, mail).await?;
            }
            let row = request_by_id(&mut tx, id).await?;
            tx.commit().await?;
            Ok(row)
        })
    }
}
