// The SQL of the appointments aggregate (the bookings in a practice's book; the book itself is
// `book/sql.rs`), one text for both engines: included by `mod.rs` once
// for `SQLite` and once for `PostgreSQL` (`This` is the engine's store, `Db` its database).
// Format with `rustfmt --edition 2024 appointments/sql.rs` (CI checks it).

use crate::appointments::{
    AppointmentGrant, AppointmentRow, AppointmentStore, Booked, BookingGrant, DayLine, NOT_BOOKED, NewAppointment,
    SLOT_TAKEN, TOO_MANY_BOOKINGS,
};
use crate::portable::corrupt;
use crate::{NewMail, Result, StoreError};
use authz::Grant;
use book::{SLOT_COLUMNS, slot_row, uuid_or_nil};
use domain::appointments::AppointmentStatus;
use domain::{
    AccountId, AppointmentId, AppointmentTypeId, BoxFuture, PatientId, PracticeId, ScheduleId, SlotId, UnixTime,
};
use sqlx::Row;
use uuid::Uuid;

type DbRow = <Db as sqlx::Database>::Row;

const APPOINTMENT_COLUMNS: &str = "a.id AS a_id, a.practice_id AS a_practice, a.patient_id, a.slot_id, \
    a.schedule_id AS a_schedule, a.type_id AS a_type, a.starts_at AS a_starts, a.ends_at AS a_ends, \
    a.status AS a_status, a.reason, a.booked_by, a.cancelled_by, a.cancel_reason, a.cancelled_at, \
    a.source_id AS a_source, a.created_at AS a_created, a.updated_at AS a_updated, p.name AS patient_name, \
    p.nhi AS patient_nhi";

/// Staff reach an appointment only through their practice, while the patient is enrolled there
/// (`$2` the patient, `$3` the practice, nil for the patient themself).
const APPOINTMENT_SCOPE: &str = "a.patient_id = $2 AND ($3 = $4 OR (a.practice_id = $3 AND EXISTS \
    (SELECT 1 FROM enrolments e WHERE e.patient_id = a.patient_id AND e.practice_id = $3)))";

fn appointment_row(r: &DbRow) -> Result<AppointmentRow> {
    let account = |c: &str| r.try_get::<Option<Uuid>, _>(c).map(|u| u.map(AccountId::from_uuid));
    Ok(AppointmentRow {
        id: AppointmentId::from_uuid(r.try_get("a_id")?),
        practice: PracticeId::from_uuid(r.try_get("a_practice")?),
        patient: PatientId::from_uuid(r.try_get("patient_id")?),
        slot: SlotId::from_uuid(r.try_get("slot_id")?),
        schedule: ScheduleId::from_uuid(r.try_get("a_schedule")?),
        type_id: AppointmentTypeId::from_uuid(r.try_get("a_type")?),
        starts_at: r.try_get("a_starts")?,
        ends_at: r.try_get("a_ends")?,
        status: AppointmentStatus::parse(&r.try_get::<String, _>("a_status")?)
            .ok_or_else(|| corrupt("appointment status"))?,
        reason: r.try_get("reason")?,
        booked_by: account("booked_by")?,
        cancelled_by: account("cancelled_by")?,
        cancel_reason: r.try_get("cancel_reason")?,
        cancelled_at: r.try_get("cancelled_at")?,
        source_id: r.try_get("a_source")?,
        created_at: r.try_get("a_created")?,
        updated_at: r.try_get("a_updated")?,
        patient_name: r.try_get("patient_name")?,
        patient_nhi: r.try_get("patient_nhi")?,
    })
}

/// One appointment by id within a transaction, with its patient.
async fn appointment_in(tx: &mut sqlx::Transaction<'_, Db>, id: AppointmentId) -> Result<AppointmentRow> {
    let sql = format!(
        "SELECT {APPOINTMENT_COLUMNS} FROM appointments a JOIN patients p ON p.id = a.patient_id WHERE a.id = $1"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(id.as_uuid()).fetch_optional(&mut **tx).await?;
    row.as_ref().map(appointment_row).transpose()?.ok_or(StoreError::NotFound)
}

/// Frees the slot of a cancelled appointment if it is still ahead.
async fn free_slot(tx: &mut sqlx::Transaction<'_, Db>, slot: SlotId, now: UnixTime) -> Result<()> {
    sqlx::query(
        "UPDATE slots SET status = 'free', updated_at = $2 WHERE id = $1 AND status = 'booked' AND starts_at > $2 \
         AND NOT EXISTS (SELECT 1 FROM appointments a WHERE a.slot_id = $1 AND a.status <> 'cancelled')",
    )
    .bind(slot.as_uuid())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl AppointmentStore for This {
    fn book<'a>(
        &'a self,
        grant: BookingGrant<'a>,
        practice: PracticeId,
        new: &'a NewAppointment,
        mail: &'a [NewMail],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Booked>> {
        Box::pin(async move {
            let patient = grant.patient().ok_or(StoreError::NotFound)?;
            if grant.via_practice().is_some_and(|p| p != practice) {
                return Err(StoreError::NotFound);
            }
            let _turn = self.write_turn().await;
            let mut tx = self.begin().await?;
            // One booking at a time per patient: the row lock (PostgreSQL) makes a repeated
            // submission wait for the first and then see its booking; SQLite's writes take turns.
            let enrolled = sqlx::query(
                "UPDATE patients SET name = name WHERE id = $1 AND EXISTS \
                 (SELECT 1 FROM enrolments e WHERE e.patient_id = $1 AND e.practice_id = $2)",
            )
            .bind(patient.as_uuid())
            .bind(practice.as_uuid())
            .execute(&mut *tx)
            .await?;
            if enrolled.rows_affected() != 1 {
                return Err(StoreError::NotFound);
            }
            let slot_sql = format!("SELECT {SLOT_COLUMNS} FROM slots s WHERE s.id = $1 AND s.practice_id = $2");
            let slot = sqlx::query(sqlx::AssertSqlSafe(slot_sql.as_str()))
                .bind(new.slot.as_uuid())
                .bind(practice.as_uuid())
                .fetch_optional(&mut *tx)
                .await?
                .as_ref()
                .map(slot_row)
                .transpose()?
                .ok_or(StoreError::NotFound)?;
            let held: Option<(Uuid, Uuid)> =
                sqlx::query_as("SELECT id, patient_id FROM appointments WHERE slot_id = $1 AND status <> 'cancelled'")
                    .bind(slot.id.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some((id, holder)) = held {
                if holder == patient.as_uuid() {
                    let appointment = appointment_in(&mut tx, AppointmentId::from_uuid(id)).await?;
                    return Ok(Booked { appointment, fresh: false });
                }
                return Err(StoreError::Conflict(SLOT_TAKEN));
            }
            if let Some(max) = new.max_future {
                let count: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM appointments WHERE patient_id = $1 AND practice_id = $2 \
                     AND status = 'booked' AND starts_at > $3",
                )
                .bind(patient.as_uuid())
                .bind(practice.as_uuid())
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                if count >= max {
                    return Err(StoreError::Conflict(TOO_MANY_BOOKINGS));
                }
            }
            // The slot as it is when taken (its book, type and times; still ahead), whatever was
            // read before.
            let taken_sql = format!(
                "UPDATE slots SET status = 'booked', updated_at = $2 WHERE id = $1 AND status = 'free' \
                 AND starts_at > $2 RETURNING {}",
                SLOT_COLUMNS.replace("s.", "")
            );
            let taken = sqlx::query(sqlx::AssertSqlSafe(taken_sql.as_str()))
                .bind(slot.id.as_uuid())
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(slot) = taken.as_ref().map(slot_row).transpose()? else {
                return Err(StoreError::Conflict(SLOT_TAKEN));
            };
            sqlx::query(
                "INSERT INTO appointments (id, practice_id, patient_id, slot_id, schedule_id, type_id, starts_at, \
                 ends_at, status, reason, booked_by, source_id, reminded_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'booked', $9, $10, $11, $12, $13, $13)",
            )
            .bind(new.id.as_uuid())
            .bind(practice.as_uuid())
            .bind(patient.as_uuid())
            .bind(slot.id.as_uuid())
            .bind(slot.schedule.as_uuid())
            .bind(slot.type_id.as_uuid())
            .bind(slot.starts_at)
            .bind(slot.ends_at)
            .bind(&new.reason)
            .bind(new.booked_by.map(|a| a.as_uuid()))
            .bind(&new.source_id)
            .bind(new.reminded.then_some(now))
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(SLOT_TAKEN),
                _ => StoreError::Database(e),
            })?;
            for mail in mail {
                shared::insert_mail(&mut tx, mail).await?;
            }
            let appointment = appointment_in(&mut tx, new.id).await?;
            tx.commit().await?;
            Ok(Booked { appointment, fresh: true })
        })
    }

    fn patient_appointments<'a>(
        &'a self,
        grant: &'a Grant<authz::ListAppointments>,
    ) -> BoxFuture<'a, Result<Vec<AppointmentRow>>> {
        Box::pin(async move {
            let patient = grant.patient().ok_or(StoreError::NotFound)?;
            let sql = format!(
                "SELECT {APPOINTMENT_COLUMNS} FROM appointments a JOIN patients p ON p.id = a.patient_id \
                 WHERE a.patient_id = $1 AND ($2 = $3 OR (a.practice_id = $2 AND EXISTS \
                 (SELECT 1 FROM enrolments e WHERE e.patient_id = a.patient_id AND e.practice_id = $2))) \
                 AND ($4 = FALSE OR EXISTS (SELECT 1 FROM enrolments e \
                      WHERE e.patient_id = a.patient_id AND e.practice_id = a.practice_id)) \
                 ORDER BY a.starts_at DESC LIMIT 500"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(patient.as_uuid())
                .bind(uuid_or_nil(grant.via_practice(), |p| p.as_uuid()))
                .bind(Uuid::nil())
                // Someone acting for the patient sees only appointments at a practice the
                // patient is enrolled at now (their link's), never a former practice's.
                .bind(grant.by_proxy())
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(appointment_row)
                .collect()
        })
    }

    fn appointment<'a>(&'a self, grant: AppointmentGrant<'a>) -> BoxFuture<'a, Result<AppointmentRow>> {
        Box::pin(async move {
            let (id, patient, via) = grant.scope();
            let patient = patient.ok_or(StoreError::NotFound)?;
            let sql = format!(
                "SELECT {APPOINTMENT_COLUMNS} FROM appointments a JOIN patients p ON p.id = a.patient_id \
                 WHERE a.id = $1 AND {APPOINTMENT_SCOPE}"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id.as_uuid())
                .bind(patient.as_uuid())
                .bind(uuid_or_nil(via, |p| p.as_uuid()))
                .bind(Uuid::nil())
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(appointment_row)
                .transpose()?
                .ok_or(StoreError::NotFound)
        })
    }

    fn cancel_appointment<'a>(
        &'a self,
        grant: &'a Grant<authz::CancelAppointment>,
        by: Option<AccountId>,
        reason: Option<&'a str>,
        mail: &'a [NewMail],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<AppointmentRow>> {
        Box::pin(async move {
            let patient = grant.patient().ok_or(StoreError::NotFound)?;
            let _turn = self.write_turn().await;
            let mut tx = self.begin().await?;
            let sql = format!(
                "UPDATE appointments SET status = 'cancelled', cancelled_by = $5, cancel_reason = $6, \
                 cancelled_at = $7, updated_at = $7 WHERE id = $1 AND status = 'booked' AND \
                 {APPOINTMENT_SCOPE}"
            )
            .replace("a.", "appointments.");
            let done = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(grant.object().as_uuid())
                .bind(patient.as_uuid())
                .bind(uuid_or_nil(grant.via_practice(), |p| p.as_uuid()))
                .bind(Uuid::nil())
                .bind(by.map(|a| a.as_uuid()))
                .bind(reason)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict(NOT_BOOKED));
            }
            let row = appointment_in(&mut tx, grant.object()).await?;
            free_slot(&mut tx, row.slot, now).await?;
            for mail in mail {
                shared::insert_mail(&mut tx, mail).await?;
            }
            tx.commit().await?;
            Ok(row)
        })
    }

    fn mark_appointment<'a>(
        &'a self,
        grant: &'a Grant<authz::MarkAppointment>,
        status: AppointmentStatus,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let patient = grant.patient().ok_or(StoreError::NotFound)?;
            let practice = grant.via_practice().ok_or(StoreError::NotFound)?;
            let done = sqlx::query(
                "UPDATE appointments SET status = $4, updated_at = $5 WHERE id = $1 AND patient_id = $2 \
                 AND practice_id = $3 AND status IN ('booked', 'attended', 'did_not_attend') AND starts_at <= $5 \
                 AND EXISTS (SELECT 1 FROM enrolments e WHERE e.patient_id = $2 AND e.practice_id = $3)",
            )
            .bind(grant.object().as_uuid())
            .bind(patient.as_uuid())
            .bind(practice.as_uuid())
            .bind(status.as_str())
            .bind(now)
            .execute(&self.pool)
            .await?;
            if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::Conflict(NOT_BOOKED)) }
        })
    }

    fn day_list<'a>(
        &'a self,
        grant: &'a Grant<authz::RunBook>,
        schedule: ScheduleId,
        from: UnixTime,
        to: UnixTime,
    ) -> BoxFuture<'a, Result<Vec<DayLine>>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {SLOT_COLUMNS}, {APPOINTMENT_COLUMNS} FROM slots s \
                 LEFT JOIN appointments a ON a.slot_id = s.id AND a.status <> 'cancelled' \
                   AND EXISTS (SELECT 1 FROM enrolments e WHERE e.patient_id = a.patient_id AND e.practice_id = $1) \
                 LEFT JOIN patients p ON p.id = a.patient_id \
                 WHERE s.practice_id = $1 AND s.schedule_id = $2 AND s.starts_at >= $3 AND s.starts_at < $4 \
                 ORDER BY s.starts_at"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(grant.object().as_uuid())
                .bind(schedule.as_uuid())
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await?;
            rows.iter()
                .map(|r| {
                    let appointment =
                        if r.try_get::<Option<Uuid>, _>("a_id")?.is_some() { Some(appointment_row(r)?) } else { None };
                    Ok((slot_row(r)?, appointment))
                })
                .collect()
        })
    }

    fn block_slot<'a>(
        &'a self,
        grant: &'a Grant<authz::BlockSlots>,
        slot: SlotId,
        block: bool,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let (to, from) = if block { ("blocked", "free") } else { ("free", "blocked") };
            let done = sqlx::query(
                "UPDATE slots SET status = $3, updated_at = $5 WHERE id = $1 AND practice_id = $2 AND status = $4",
            )
            .bind(slot.as_uuid())
            .bind(grant.object().as_uuid())
            .bind(to)
            .bind(from)
            .bind(now)
            .execute(&self.pool)
            .await?;
            if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::Conflict(SLOT_TAKEN)) }
        })
    }

    fn appointment_by_source<'a>(
        &'a self,
        grant: &'a Grant<authz::SyncBook>,
        source_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<AppointmentRow>>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {APPOINTMENT_COLUMNS} FROM appointments a JOIN patients p ON p.id = a.patient_id \
                 WHERE a.practice_id = $1 AND a.source_id = $2"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(grant.object().as_uuid())
                .bind(source_id)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(appointment_row)
                .transpose()
        })
    }

    fn sync_appointment_status<'a>(
        &'a self,
        grant: &'a Grant<authz::SyncBook>,
        id: AppointmentId,
        status: AppointmentStatus,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let done = sqlx::query(
                "UPDATE appointments SET status = $3, updated_at = $4, \
                 cancelled_at = CASE WHEN $3 = 'cancelled' THEN $4 ELSE cancelled_at END \
                 WHERE id = $1 AND practice_id = $2 AND status <> 'cancelled' AND status <> $3 \
                 AND EXISTS (SELECT 1 FROM enrolments e WHERE e.patient_id = appointments.patient_id \
                 AND e.practice_id = $2)",
            )
            .bind(id.as_uuid())
            .bind(grant.object().as_uuid())
            .bind(status.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict(NOT_BOOKED));
            }
            if status == AppointmentStatus::Cancelled {
                let row = appointment_in(&mut tx, id).await?;
                free_slot(&mut tx, row.slot, now).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn practice_appointments<'a>(
        &'a self,
        grant: &'a Grant<authz::SyncBook>,
        from: UnixTime,
        to: UnixTime,
    ) -> BoxFuture<'a, Result<Vec<AppointmentRow>>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {APPOINTMENT_COLUMNS} FROM appointments a JOIN patients p ON p.id = a.patient_id \
                 WHERE a.practice_id = $1 AND a.starts_at >= $2 AND a.starts_at < $3 \
                 AND EXISTS (SELECT 1 FROM enrolments e WHERE e.patient_id = a.patient_id AND e.practice_id = $1) \
                 ORDER BY a.starts_at, a.id \
                 LIMIT 5000"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(grant.object().as_uuid())
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(appointment_row)
                .collect()
        })
    }

    fn due_reminders(
        &self,
        from: UnixTime,
        to: UnixTime,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<(AppointmentId, PatientId, PracticeId)>>> {
        Box::pin(async move {
            let rows: Vec<(Uuid, Uuid, Uuid)> = sqlx::query_as(
                "SELECT id, patient_id, practice_id FROM appointments WHERE status = 'booked' AND reminded_at IS NULL \
                 AND starts_at >= $1 AND starts_at < $2 ORDER BY starts_at, id LIMIT $3",
            )
            .bind(from)
            .bind(to)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(a, p, x)| (AppointmentId::from_uuid(a), PatientId::from_uuid(p), PracticeId::from_uuid(x)))
                .collect())
        })
    }

    fn mark_reminded<'a>(&'a self, ids: &'a [AppointmentId], now: UnixTime) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            for id in ids {
                sqlx::query("UPDATE appointments SET reminded_at = $2 WHERE id = $1")
                    .bind(id.as_uuid())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}
