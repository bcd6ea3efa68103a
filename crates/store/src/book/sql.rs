// The SQL of a practice's book — its switches and rules, clinicians' books, appointment types,
// weekly templates, closures and the slots made from them (and the practice system's slots) —
// one text for both engines: included by `mod.rs` once for `SQLite` and once for `PostgreSQL`
// (`This` is the engine's store, `Db` its database). Format with
// `rustfmt --edition 2024 book/sql.rs` (CI checks it).

use crate::appointments::{
    AppointmentTypeRow, BookingRules, ClosureRow, PracticeServices, RepeatRules, SLOT_TAKEN, ScheduleRow, SlotGrant,
    SlotRow, TemplateRow,
};
use crate::book::BookStore;
use crate::portable::corrupt;
use crate::{Result, StoreError};
use authz::Grant;
use domain::appointments::{ClinicianKind, Modality, SlotStatus};
use domain::{AppointmentTypeId, BoxFuture, PracticeId, ScheduleId, SlotId, UnixTime};
use sqlx::Row;
use uuid::Uuid;

type DbRow = <Db as sqlx::Database>::Row;

pub(crate) const SLOT_COLUMNS: &str =
    "s.id, s.practice_id, s.schedule_id, s.type_id, s.starts_at, s.ends_at, s.status, s.from_template, s.source_id";

pub(crate) fn uuid_or_nil<T>(v: Option<T>, f: impl Fn(T) -> Uuid) -> Uuid {
    v.map_or(Uuid::nil(), f)
}

pub(crate) fn slot_row(r: &DbRow) -> Result<SlotRow> {
    Ok(SlotRow {
        id: SlotId::from_uuid(r.try_get("id")?),
        practice: PracticeId::from_uuid(r.try_get("practice_id")?),
        schedule: ScheduleId::from_uuid(r.try_get("schedule_id")?),
        type_id: AppointmentTypeId::from_uuid(r.try_get("type_id")?),
        starts_at: r.try_get("starts_at")?,
        ends_at: r.try_get("ends_at")?,
        status: SlotStatus::parse(&r.try_get::<String, _>("status")?).ok_or_else(|| corrupt("slot status"))?,
        from_template: r.try_get("from_template")?,
        source_id: r.try_get("source_id")?,
    })
}

pub(crate) fn schedule_row(r: &DbRow) -> Result<ScheduleRow> {
    Ok(ScheduleRow {
        id: ScheduleId::from_uuid(r.try_get("id")?),
        practice: PracticeId::from_uuid(r.try_get("practice_id")?),
        clinician: r.try_get("clinician")?,
        kind: ClinicianKind::parse(&r.try_get::<String, _>("kind")?).ok_or_else(|| corrupt("clinician kind"))?,
        location: r.try_get("location")?,
        online: r.try_get("online")?,
        active: r.try_get("active")?,
        source_id: r.try_get("source_id")?,
    })
}

pub(crate) fn type_row(r: &DbRow) -> Result<AppointmentTypeRow> {
    Ok(AppointmentTypeRow {
        id: AppointmentTypeId::from_uuid(r.try_get("id")?),
        practice: PracticeId::from_uuid(r.try_get("practice_id")?),
        name: r.try_get("name")?,
        minutes: r.try_get("minutes")?,
        modality: Modality::parse(&r.try_get::<String, _>("modality")?).ok_or_else(|| corrupt("modality"))?,
        online: r.try_get("online")?,
        active: r.try_get("active")?,
    })
}

impl BookStore for This {
    fn practice_services(&self, practice: PracticeId) -> BoxFuture<'_, Result<PracticeServices>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT booking_on, window_days, cancel_cutoff_mins, max_future, ask_reason, repeats_on, \
                 repeat_fee_cents, repeat_working_days, pharmacies FROM practice_services WHERE practice_id = $1",
            )
            .bind(practice.as_uuid())
            .fetch_optional(&self.pool)
            .await?;
            let Some(r) = row else { return Ok(PracticeServices::default()) };
            let pharmacies: String = r.try_get("pharmacies")?;
            Ok(PracticeServices {
                booking: BookingRules {
                    booking_on: r.try_get("booking_on")?,
                    window_days: r.try_get("window_days")?,
                    cancel_cutoff_mins: r.try_get("cancel_cutoff_mins")?,
                    max_future: r.try_get("max_future")?,
                    ask_reason: r.try_get("ask_reason")?,
                },
                repeats: RepeatRules {
                    repeats_on: r.try_get("repeats_on")?,
                    fee_cents: r.try_get("repeat_fee_cents")?,
                    working_days: r.try_get("repeat_working_days")?,
                    pharmacies: pharmacies.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect(),
                },
            })
        })
    }

    fn set_booking_rules<'a>(
        &'a self,
        grant: &'a Grant<authz::SetUpBook>,
        rules: &'a BookingRules,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let d = RepeatRules::default();
            sqlx::query(
                "INSERT INTO practice_services (practice_id, booking_on, window_days, cancel_cutoff_mins, max_future, \
                 ask_reason, repeats_on, repeat_fee_cents, repeat_working_days, pharmacies, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, '', $10) ON CONFLICT (practice_id) DO UPDATE \
                 SET booking_on = $2, window_days = $3, cancel_cutoff_mins = $4, max_future = $5, ask_reason = $6, \
                 updated_at = $10",
            )
            .bind(grant.object().as_uuid())
            .bind(rules.booking_on)
            .bind(rules.window_days)
            .bind(rules.cancel_cutoff_mins)
            .bind(rules.max_future)
            .bind(rules.ask_reason)
            .bind(d.repeats_on)
            .bind(d.fee_cents)
            .bind(d.working_days)
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn set_repeat_rules<'a>(
        &'a self,
        grant: &'a Grant<authz::SetUpRepeats>,
        rules: &'a RepeatRules,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let d = BookingRules::default();
            sqlx::query(
                "INSERT INTO practice_services (practice_id, booking_on, window_days, cancel_cutoff_mins, max_future, \
                 ask_reason, repeats_on, repeat_fee_cents, repeat_working_days, pharmacies, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (practice_id) DO UPDATE \
                 SET repeats_on = $7, repeat_fee_cents = $8, repeat_working_days = $9, pharmacies = $10, \
                 updated_at = $11",
            )
            .bind(grant.object().as_uuid())
            .bind(d.booking_on)
            .bind(d.window_days)
            .bind(d.cancel_cutoff_mins)
            .bind(d.max_future)
            .bind(d.ask_reason)
            .bind(rules.repeats_on)
            .bind(rules.fee_cents)
            .bind(rules.working_days)
            .bind(rules.pharmacies.join("\n"))
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn schedules(&self, practice: PracticeId) -> BoxFuture<'_, Result<Vec<ScheduleRow>>> {
        Box::pin(async move {
            sqlx::query(
                "SELECT id, practice_id, clinician, kind, location, online, active, source_id FROM schedules \
                 WHERE practice_id = $1 ORDER BY clinician, location, id",
            )
            .bind(practice.as_uuid())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(schedule_row)
            .collect()
        })
    }

    fn save_schedule<'a>(
        &'a self,
        grant: SlotGrant<'a>,
        row: &'a ScheduleRow,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<ScheduleId>> {
        Box::pin(async move {
            let (practice, _) = grant.scope();
            if row.practice != practice {
                return Err(StoreError::NotFound);
            }
            let conflict = if row.source_id.is_some() { "(practice_id, source_id)" } else { "(id)" };
            let sql = format!(
                "INSERT INTO schedules (id, practice_id, clinician, kind, location, online, active, source_id, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT {conflict} \
                 DO UPDATE SET clinician = $3, kind = $4, location = $5, active = $7, updated_at = $9, \
                 online = CASE WHEN $8 IS NULL THEN $6 ELSE schedules.online END \
                 WHERE schedules.practice_id = $2 RETURNING id"
            );
            let id: Option<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(row.id.as_uuid())
                .bind(practice.as_uuid())
                .bind(&row.clinician)
                .bind(row.kind.as_str())
                .bind(&row.location)
                .bind(row.online)
                .bind(row.active)
                .bind(&row.source_id)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
            id.map(ScheduleId::from_uuid).ok_or(StoreError::NotFound)
        })
    }

    fn appointment_types(&self, practice: PracticeId) -> BoxFuture<'_, Result<Vec<AppointmentTypeRow>>> {
        Box::pin(async move {
            sqlx::query(
                "SELECT id, practice_id, name, minutes, modality, online, active FROM appointment_types \
                 WHERE practice_id = $1 ORDER BY name",
            )
            .bind(practice.as_uuid())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(type_row)
            .collect()
        })
    }

    fn save_appointment_type<'a>(
        &'a self,
        grant: SlotGrant<'a>,
        row: &'a AppointmentTypeRow,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<AppointmentTypeId>> {
        Box::pin(async move {
            let (practice, _) = grant.scope();
            if row.practice != practice {
                return Err(StoreError::NotFound);
            }
            let id: Option<Uuid> = sqlx::query_scalar(
                "INSERT INTO appointment_types (id, practice_id, name, minutes, modality, online, active, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT (practice_id, name) DO UPDATE \
                 SET minutes = $4, modality = $5, online = $6, active = $7, updated_at = $8 \
                 WHERE appointment_types.practice_id = $2 RETURNING id",
            )
            .bind(row.id.as_uuid())
            .bind(practice.as_uuid())
            .bind(&row.name)
            .bind(row.minutes)
            .bind(row.modality.as_str())
            .bind(row.online)
            .bind(row.active)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
            id.map(AppointmentTypeId::from_uuid).ok_or(StoreError::NotFound)
        })
    }

    fn templates(&self, practice: PracticeId) -> BoxFuture<'_, Result<Vec<TemplateRow>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT id, practice_id, schedule_id, type_id, weekday, start_minute, end_minute \
                 FROM schedule_templates WHERE practice_id = $1 ORDER BY schedule_id, weekday, start_minute",
            )
            .bind(practice.as_uuid())
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(TemplateRow {
                        id: r.try_get("id")?,
                        practice: PracticeId::from_uuid(r.try_get("practice_id")?),
                        schedule: ScheduleId::from_uuid(r.try_get("schedule_id")?),
                        type_id: AppointmentTypeId::from_uuid(r.try_get("type_id")?),
                        weekday: r.try_get("weekday")?,
                        start_minute: r.try_get("start_minute")?,
                        end_minute: r.try_get("end_minute")?,
                    })
                })
                .collect()
        })
    }

    fn add_template<'a>(
        &'a self,
        grant: &'a Grant<authz::SetUpBook>,
        row: &'a TemplateRow,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let done = sqlx::query(
                "INSERT INTO schedule_templates (id, practice_id, schedule_id, type_id, weekday, start_minute, \
                 end_minute, created_at) SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
                 WHERE EXISTS (SELECT 1 FROM schedules WHERE id = $3 AND practice_id = $2) \
                 AND EXISTS (SELECT 1 FROM appointment_types WHERE id = $4 AND practice_id = $2)",
            )
            .bind(row.id)
            .bind(grant.object().as_uuid())
            .bind(row.schedule.as_uuid())
            .bind(row.type_id.as_uuid())
            .bind(row.weekday)
            .bind(row.start_minute)
            .bind(row.end_minute)
            .bind(now)
            .execute(&self.pool)
            .await?;
            if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::NotFound) }
        })
    }

    fn remove_template<'a>(&'a self, grant: &'a Grant<authz::SetUpBook>, id: Uuid) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let done = sqlx::query("DELETE FROM schedule_templates WHERE id = $1 AND practice_id = $2")
                .bind(id)
                .bind(grant.object().as_uuid())
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn closures(&self, practice: PracticeId) -> BoxFuture<'_, Result<Vec<ClosureRow>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT id, practice_id, schedule_id, first_day, last_day, reason FROM closures \
                 WHERE practice_id = $1 ORDER BY first_day, id",
            )
            .bind(practice.as_uuid())
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(ClosureRow {
                        id: r.try_get("id")?,
                        practice: PracticeId::from_uuid(r.try_get("practice_id")?),
                        schedule: r.try_get::<Option<Uuid>, _>("schedule_id")?.map(ScheduleId::from_uuid),
                        first_day: r.try_get("first_day")?,
                        last_day: r.try_get("last_day")?,
                        reason: r.try_get("reason")?,
                    })
                })
                .collect()
        })
    }

    fn add_closure<'a>(
        &'a self,
        grant: &'a Grant<authz::SetUpBook>,
        row: &'a ClosureRow,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let done = sqlx::query(
                "INSERT INTO closures (id, practice_id, schedule_id, first_day, last_day, reason, created_at) \
                 SELECT $1, $2, $3, $4, $5, $6, $7 WHERE $3 IS NULL \
                 OR EXISTS (SELECT 1 FROM schedules WHERE id = $3 AND practice_id = $2)",
            )
            .bind(row.id)
            .bind(grant.object().as_uuid())
            .bind(row.schedule.map(|s| s.as_uuid()))
            .bind(&row.first_day)
            .bind(&row.last_day)
            .bind(&row.reason)
            .bind(now)
            .execute(&self.pool)
            .await?;
            if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::NotFound) }
        })
    }

    fn remove_closure<'a>(&'a self, grant: &'a Grant<authz::SetUpBook>, id: Uuid) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let done = sqlx::query("DELETE FROM closures WHERE id = $1 AND practice_id = $2")
                .bind(id)
                .bind(grant.object().as_uuid())
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn sync_template_slots<'a>(
        &'a self,
        grant: &'a Grant<authz::SetUpBook>,
        from: UnixTime,
        to: UnixTime,
        wanted: &'a [SlotRow],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<(u64, u64)>> {
        Box::pin(async move {
            let practice = grant.object();
            let mut tx = self.begin().await?;
            let existing: Vec<(Uuid, i64, Uuid, i64)> = sqlx::query_as(
                "SELECT schedule_id, starts_at, type_id, ends_at FROM slots WHERE practice_id = $1 AND starts_at >= $2 \
                 AND starts_at < $3 AND from_template = TRUE AND status = 'free'",
            )
            .bind(practice.as_uuid())
            .bind(from)
            .bind(to)
            .fetch_all(&mut *tx)
            .await?;
            let mut removed = 0;
            for (schedule, starts, type_id, ends) in &existing {
                let keep = wanted.iter().any(|w| {
                    w.schedule.as_uuid() == *schedule
                        && w.starts_at == *starts
                        && w.ends_at == *ends
                        && w.type_id.as_uuid() == *type_id
                });
                if !keep {
                    removed += sqlx::query(
                        "DELETE FROM slots WHERE practice_id = $1 AND schedule_id = $2 AND starts_at = $3 \
                         AND status = 'free' AND from_template = TRUE \
                         AND NOT EXISTS (SELECT 1 FROM appointments a WHERE a.slot_id = slots.id)",
                    )
                    .bind(practice.as_uuid())
                    .bind(schedule)
                    .bind(starts)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
            }
            let mut added = 0;
            for w in wanted.iter().filter(|w| w.practice == practice && w.starts_at >= from && w.starts_at < to) {
                added += sqlx::query(
                    "INSERT INTO slots (id, practice_id, schedule_id, type_id, starts_at, ends_at, status, \
                     from_template, source_id, updated_at) SELECT $1, $2, $3, $4, $5, $6, 'free', TRUE, NULL, $7 \
                     WHERE EXISTS (SELECT 1 FROM schedules WHERE id = $3 AND practice_id = $2) \
                     AND NOT EXISTS (SELECT 1 FROM slots o WHERE o.schedule_id = $3 AND o.starts_at < $6 \
                     AND o.ends_at > $5) \
                     ON CONFLICT (schedule_id, starts_at) DO NOTHING",
                )
                .bind(w.id.as_uuid())
                .bind(practice.as_uuid())
                .bind(w.schedule.as_uuid())
                .bind(w.type_id.as_uuid())
                .bind(w.starts_at)
                .bind(w.ends_at)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            tx.commit().await?;
            Ok((added, removed))
        })
    }

    fn slots<'a>(
        &'a self,
        grant: SlotGrant<'a>,
        from: UnixTime,
        to: UnixTime,
        schedule: Option<ScheduleId>,
        status: Option<SlotStatus>,
    ) -> BoxFuture<'a, Result<Vec<SlotRow>>> {
        Box::pin(async move {
            let (practice, patient) = grant.scope();
            let sql = format!(
                "SELECT {SLOT_COLUMNS} FROM slots s WHERE s.practice_id = $1 AND s.starts_at >= $2 AND s.starts_at < $3 \
                 AND ($4 = $6 OR s.schedule_id = $4) AND ($5 = '' OR s.status = $5) \
                 AND ($7 = $6 OR EXISTS (SELECT 1 FROM enrolments e WHERE e.patient_id = $7 AND e.practice_id = $1)) \
                 ORDER BY s.starts_at, s.schedule_id"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(practice.as_uuid())
                .bind(from)
                .bind(to)
                .bind(uuid_or_nil(schedule, |s| s.as_uuid()))
                .bind(status.map_or("", SlotStatus::as_str))
                .bind(Uuid::nil())
                .bind(uuid_or_nil(patient, |p| p.as_uuid()))
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(slot_row)
                .collect()
        })
    }

    fn slot<'a>(&'a self, grant: SlotGrant<'a>, id: SlotId) -> BoxFuture<'a, Result<Option<SlotRow>>> {
        Box::pin(async move {
            let (practice, patient) = grant.scope();
            let sql = format!(
                "SELECT {SLOT_COLUMNS} FROM slots s WHERE s.id = $1 AND ($2 = $4 OR s.practice_id = $2) \
                 AND ($3 = $4 OR EXISTS (SELECT 1 FROM enrolments e WHERE e.patient_id = $3 \
                 AND e.practice_id = s.practice_id)) AND ($2 <> $4 OR $3 <> $4)"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id.as_uuid())
                .bind(practice.as_uuid())
                .bind(uuid_or_nil(patient, |p| p.as_uuid()))
                .bind(Uuid::nil())
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(slot_row)
                .transpose()
        })
    }

    fn sync_slot<'a>(
        &'a self,
        grant: &'a Grant<authz::SyncBook>,
        row: &'a SlotRow,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<SlotId>> {
        Box::pin(async move {
            let practice = grant.object();
            let mut tx = self.begin().await?;
            // A template slot at the same time becomes the system's slot.
            sqlx::query(
                "UPDATE slots SET source_id = $3, updated_at = $4 WHERE schedule_id = $1 AND starts_at = $2 \
                 AND source_id IS NULL AND practice_id = $5 \
                 AND NOT EXISTS (SELECT 1 FROM slots o WHERE o.practice_id = $5 AND o.source_id = $3)",
            )
            .bind(row.schedule.as_uuid())
            .bind(row.starts_at)
            .bind(&row.source_id)
            .bind(now)
            .bind(practice.as_uuid())
            .execute(&mut *tx)
            .await?;
            // Free template slots it overlaps give way to it (the system is the source of truth).
            sqlx::query(
                "DELETE FROM slots WHERE practice_id = $1 AND schedule_id = $2 AND from_template = TRUE \
                 AND source_id IS NULL AND status = 'free' AND starts_at < $4 AND ends_at > $3 \
                 AND NOT EXISTS (SELECT 1 FROM appointments a WHERE a.slot_id = slots.id)",
            )
            .bind(practice.as_uuid())
            .bind(row.schedule.as_uuid())
            .bind(row.starts_at)
            .bind(row.ends_at)
            .execute(&mut *tx)
            .await?;
            // Busy or free from the system; a slot booked here stays booked.
            let id: Option<Uuid> = sqlx::query_scalar(
                "INSERT INTO slots (id, practice_id, schedule_id, type_id, starts_at, ends_at, status, from_template, \
                 source_id, updated_at) SELECT $1, $2, $3, $4, $5, $6, $7, FALSE, $8, $9 \
                 WHERE EXISTS (SELECT 1 FROM schedules WHERE id = $3 AND practice_id = $2) \
                 AND EXISTS (SELECT 1 FROM appointment_types WHERE id = $4 AND practice_id = $2) \
                 AND NOT EXISTS (SELECT 1 FROM slots o WHERE o.schedule_id = $3 AND o.starts_at < $6 \
                 AND o.ends_at > $5 AND (o.source_id IS NULL OR o.source_id <> $8)) \
                 ON CONFLICT (practice_id, source_id) DO UPDATE SET schedule_id = $3, type_id = $4, starts_at = $5, \
                 ends_at = $6, updated_at = $9, from_template = FALSE, \
                 status = CASE WHEN slots.status = 'booked' THEN 'booked' ELSE $7 END \
                 WHERE slots.status <> 'booked' \
                 OR (slots.schedule_id = $3 AND slots.starts_at = $5 AND slots.ends_at = $6) RETURNING id",
            )
            .bind(row.id.as_uuid())
            .bind(practice.as_uuid())
            .bind(row.schedule.as_uuid())
            .bind(row.type_id.as_uuid())
            .bind(row.starts_at)
            .bind(row.ends_at)
            .bind(row.status.as_str())
            .bind(&row.source_id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(crate::portable::map_unique)?;
            let Some(id) = id else {
                // A slot booked here is not moved under its patient (the practice moves the
                // appointment: cancel and book again, so the patient is told); nor may a slot
                // overlap another of the book (booked, blocked, or the system's own).
                return Err(StoreError::Conflict(SLOT_TAKEN));
            };
            tx.commit().await?;
            Ok(SlotId::from_uuid(id))
        })
    }

    fn slot_by_source<'a>(
        &'a self,
        grant: &'a Grant<authz::SyncBook>,
        source_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<SlotRow>>> {
        Box::pin(async move {
            let sql = format!("SELECT {SLOT_COLUMNS} FROM slots s WHERE s.practice_id = $1 AND s.source_id = $2");
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(grant.object().as_uuid())
                .bind(source_id)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(slot_row)
                .transpose()
        })
    }

    fn practices_with_books(&self) -> BoxFuture<'_, Result<Vec<PracticeId>>> {
        Box::pin(async move {
            let ids: Vec<Uuid> = sqlx::query_scalar(
                "SELECT DISTINCT practice_id FROM schedules WHERE active = TRUE ORDER BY practice_id",
            )
            .fetch_all(&self.pool)
            .await?;
            Ok(ids.into_iter().map(PracticeId::from_uuid).collect())
        })
    }
}
