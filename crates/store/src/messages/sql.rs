// The SQL of the messaging aggregate, one text for both engines: included by `mod.rs` once for
// `SQLite` and once for `PostgreSQL`. Format with `rustfmt --edition 2024 messages/sql.rs`.

use crate::messages::{
    CLINICIAN_OFF, MESSAGING_OFF, MessageRow, MessageStore, MessagingClinician, MessagingSettings, NewMessage,
    NewThread, ThreadChange, ThreadGrant, ThreadRow,
};
use crate::portable::corrupt;
use crate::{NewMail, Result, StoreError};
use authz::{Grant, ListThreads, ManageThread, ReadPracticeInbox, ReadThread, SetUpMessaging, StartThread};
use domain::messages::{Team, ThreadStatus};
use domain::{AccountId, BoxFuture, DocumentId, MessageId, PatientId, PracticeId, ThreadId, UnixTime};
use sqlx::Row;
use uuid::Uuid;

type DbRow = <Db as sqlx::Database>::Row;

const THREAD_COLUMNS: &str = "t.id, t.practice_id, pr.name AS practice_name, t.patient_id, p.name AS patient_name, \
    t.team, t.clinician_id, c.display_name AS clinician_name, t.subject, t.status, t.assigned_to, \
    s.display_name AS assigned_name, t.created_at, t.last_message_at, t.patient_read_at, t.practice_read_at \
    FROM message_threads t JOIN practices pr ON pr.id = t.practice_id JOIN patients p ON p.id = t.patient_id \
    LEFT JOIN accounts c ON c.id = t.clinician_id LEFT JOIN accounts s ON s.id = t.assigned_to";

/// The patient's conversations (`$2` nil), or for staff (`$2` their practice) only their
/// practice's while the patient is enrolled there. `$1` the patient, `$3` nil.
const SCOPE: &str = "t.patient_id = $1 AND ($2 = $3 OR (t.practice_id = $2 AND EXISTS \
    (SELECT 1 FROM enrolments e WHERE e.patient_id = t.patient_id AND e.practice_id = $2)))";

fn thread_row(r: &DbRow) -> Result<ThreadRow> {
    let named = |id: &str, name: &str| -> Result<Option<(AccountId, String)>> {
        Ok(match (r.try_get::<Option<Uuid>, _>(id)?, r.try_get::<Option<String>, _>(name)?) {
            (Some(id), Some(name)) => Some((AccountId::from_uuid(id), name)),
            _ => None,
        })
    };
    Ok(ThreadRow {
        id: ThreadId::from_uuid(r.try_get("id")?),
        practice: PracticeId::from_uuid(r.try_get("practice_id")?),
        practice_name: r.try_get("practice_name")?,
        patient: PatientId::from_uuid(r.try_get("patient_id")?),
        patient_name: r.try_get("patient_name")?,
        team: r
            .try_get::<Option<String>, _>("team")?
            .as_deref()
            .map(|t| Team::parse(t).ok_or_else(|| corrupt("team")))
            .transpose()?,
        clinician: named("clinician_id", "clinician_name")?,
        subject: r.try_get("subject")?,
        status: ThreadStatus::parse(&r.try_get::<String, _>("status")?).ok_or_else(|| corrupt("thread status"))?,
        assigned_to: named("assigned_to", "assigned_name")?,
        created_at: r.try_get("created_at")?,
        last_message_at: r.try_get("last_message_at")?,
        patient_read_at: r.try_get("patient_read_at")?,
        practice_read_at: r.try_get("practice_read_at")?,
    })
}

fn nil(v: Option<PracticeId>) -> Uuid {
    v.map_or(Uuid::nil(), |p| p.as_uuid())
}

async fn scoped_thread(
    conn: &mut <Db as sqlx::Database>::Connection,
    id: ThreadId,
    patient: PatientId,
    practice: Option<PracticeId>,
) -> Result<ThreadRow> {
    let sql = format!("SELECT {THREAD_COLUMNS} WHERE t.id = $4 AND {SCOPE}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(patient.as_uuid())
        .bind(nil(practice))
        .bind(Uuid::nil())
        .bind(id.as_uuid())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    thread_row(&row)
}

async fn insert_message(
    conn: &mut <Db as sqlx::Database>::Connection,
    thread: ThreadId,
    m: &NewMessage,
    now: UnixTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO messages (id, thread_id, author_id, from_practice, internal, body, document_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(m.id.as_uuid())
    .bind(thread.as_uuid())
    .bind(m.author.map(|a| a.as_uuid()))
    .bind(m.from_practice)
    .bind(m.internal)
    .bind(&m.body)
    .bind(m.document.map(|d| d.as_uuid()))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl MessageStore for This {
    fn messaging_settings(&self, practice: PracticeId) -> BoxFuture<'_, Result<MessagingSettings>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT messaging_on, after_hours, fee_notice, reply_days FROM messaging_settings WHERE practice_id = $1",
            )
            .bind(practice.as_uuid())
            .fetch_optional(&self.pool)
            .await?;
            let clinicians: Vec<Uuid> = sqlx::query_scalar(
                "SELECT account_id FROM messaging_clinicians WHERE practice_id = $1 ORDER BY account_id",
            )
            .bind(practice.as_uuid())
            .fetch_all(&self.pool)
            .await?;
            let clinicians = clinicians.into_iter().map(AccountId::from_uuid).collect();
            Ok(match row {
                Some(r) => MessagingSettings {
                    on: r.try_get("messaging_on")?,
                    after_hours: r.try_get("after_hours")?,
                    fee_notice: r.try_get("fee_notice")?,
                    reply_days: r.try_get("reply_days")?,
                    clinicians,
                },
                None => MessagingSettings { reply_days: 2, clinicians, ..MessagingSettings::default() },
            })
        })
    }

    fn messaging_clinicians(&self, practice: PracticeId) -> BoxFuture<'_, Result<Vec<MessagingClinician>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT a.id, a.display_name, EXISTS (SELECT 1 FROM messaging_clinicians m \
                 WHERE m.practice_id = st.practice_id AND m.account_id = a.id) AS on_ \
                 FROM staff st JOIN accounts a ON a.id = st.account_id \
                 WHERE st.practice_id = $1 AND st.removed_at IS NULL AND st.role IN ('gp', 'nurse') \
                 AND a.disabled_at IS NULL ORDER BY a.display_name, a.id",
            )
            .bind(practice.as_uuid())
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(MessagingClinician {
                        account: AccountId::from_uuid(r.try_get("id")?),
                        name: r.try_get("display_name")?,
                        on: r.try_get("on_")?,
                    })
                })
                .collect()
        })
    }

    fn set_messaging<'a>(
        &'a self,
        grant: &'a Grant<SetUpMessaging>,
        settings: &'a MessagingSettings,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let practice = grant.object();
            let mut tx = self.begin().await?;
            sqlx::query(
                "INSERT INTO messaging_settings (practice_id, messaging_on, after_hours, fee_notice, reply_days, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (practice_id) DO UPDATE SET \
                 messaging_on = excluded.messaging_on, after_hours = excluded.after_hours, \
                 fee_notice = excluded.fee_notice, reply_days = excluded.reply_days, updated_at = excluded.updated_at",
            )
            .bind(practice.as_uuid())
            .bind(settings.on)
            .bind(&settings.after_hours)
            .bind(&settings.fee_notice)
            .bind(settings.reply_days)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM messaging_clinicians WHERE practice_id = $1")
                .bind(practice.as_uuid())
                .execute(&mut *tx)
                .await?;
            for c in &settings.clinicians {
                // Only the practice's own GPs and nurses.
                sqlx::query(
                    "INSERT INTO messaging_clinicians (practice_id, account_id) SELECT st.practice_id, st.account_id \
                     FROM staff st WHERE st.practice_id = $1 AND st.account_id = $2 AND st.removed_at IS NULL \
                     AND st.role IN ('gp', 'nurse')",
                )
                .bind(practice.as_uuid())
                .bind(c.as_uuid())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn start_thread<'a>(
        &'a self,
        grant: &'a Grant<StartThread>,
        new: &'a NewThread,
        mail: &'a [NewMail],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<(ThreadRow, bool)>> {
        Box::pin(async move {
            let patient = grant.patient().ok_or(StoreError::NotFound)?;
            let mut tx = self.begin().await?;
            let existing: Option<Uuid> =
                sqlx::query_scalar("SELECT id FROM message_threads WHERE patient_id = $1 AND request_key = $2")
                    .bind(patient.as_uuid())
                    .bind(&new.request_key)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(id) = existing {
                let row = scoped_thread(&mut tx, ThreadId::from_uuid(id), patient, None).await?;
                tx.commit().await?;
                return Ok((row, false));
            }
            // The patient writes only to a practice they are enrolled at.
            let enrolled = sqlx::query("SELECT 1 FROM enrolments WHERE patient_id = $1 AND practice_id = $2")
                .bind(patient.as_uuid())
                .bind(new.practice.as_uuid())
                .fetch_optional(&mut *tx)
                .await?;
            if enrolled.is_none() {
                return Err(StoreError::NotFound);
            }
            let on: Option<bool> =
                sqlx::query_scalar("SELECT messaging_on FROM messaging_settings WHERE practice_id = $1")
                    .bind(new.practice.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await?;
            if on != Some(true) {
                return Err(StoreError::Conflict(MESSAGING_OFF));
            }
            if let Some(c) = new.clinician {
                let takes = sqlx::query(
                    "SELECT 1 FROM messaging_clinicians m JOIN staff st ON st.account_id = m.account_id \
                     AND st.practice_id = m.practice_id AND st.removed_at IS NULL AND st.role IN ('gp', 'nurse') \
                     JOIN accounts a ON a.id = m.account_id AND a.disabled_at IS NULL \
                     WHERE m.practice_id = $1 AND m.account_id = $2",
                )
                .bind(new.practice.as_uuid())
                .bind(c.as_uuid())
                .fetch_optional(&mut *tx)
                .await?;
                if takes.is_none() {
                    return Err(StoreError::Conflict(CLINICIAN_OFF));
                }
            }
            let inserted = sqlx::query(
                "INSERT INTO message_threads (id, practice_id, patient_id, team, clinician_id, subject, status, \
                 started_by, request_key, created_at, last_message_at, patient_read_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8, $9, $9, $9)",
            )
            .bind(new.id.as_uuid())
            .bind(new.practice.as_uuid())
            .bind(patient.as_uuid())
            .bind(new.team.map(Team::as_str))
            .bind(new.clinician.map(|c| c.as_uuid()))
            .bind(&new.subject)
            .bind(new.first.author.map(|a| a.as_uuid()))
            .bind(&new.request_key)
            .bind(now)
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {}
                // The same form, sent twice at once (PostgreSQL runs both): the first one stands.
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                    drop(tx);
                    let id: Uuid =
                        sqlx::query_scalar("SELECT id FROM message_threads WHERE patient_id = $1 AND request_key = $2")
                            .bind(patient.as_uuid())
                            .bind(&new.request_key)
                            .fetch_one(&self.pool)
                            .await?;
                    let mut conn = self.pool.acquire().await?;
                    let row = scoped_thread(&mut conn, ThreadId::from_uuid(id), patient, None).await?;
                    return Ok((row, false));
                }
                Err(e) => return Err(e.into()),
            }
            insert_message(&mut tx, new.id, &new.first, now).await?;
            for m in mail {
                shared::insert_mail(&mut tx, m).await?;
            }
            let row = scoped_thread(&mut tx, new.id, patient, None).await?;
            tx.commit().await?;
            Ok((row, true))
        })
    }

    fn patient_threads<'a>(&'a self, grant: &'a Grant<ListThreads>) -> BoxFuture<'a, Result<Vec<ThreadRow>>> {
        Box::pin(async move {
            let patient = grant.patient().ok_or(StoreError::NotFound)?;
            // Someone acting for the patient sees only conversations with a practice the patient
            // is enrolled at now (their link's), never a former practice's.
            let sql = format!(
                "SELECT {THREAD_COLUMNS} WHERE {SCOPE} AND ($4 = FALSE OR EXISTS (SELECT 1 FROM enrolments e \
                 WHERE e.patient_id = t.patient_id AND e.practice_id = t.practice_id)) \
                 ORDER BY t.last_message_at DESC, t.id LIMIT 500"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(patient.as_uuid())
                .bind(nil(grant.via_practice()))
                .bind(Uuid::nil())
                .bind(grant.by_proxy())
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(thread_row).collect()
        })
    }

    fn thread<'a>(&'a self, grant: ThreadGrant<'a>) -> BoxFuture<'a, Result<(ThreadRow, Vec<MessageRow>)>> {
        Box::pin(async move {
            let (id, patient, practice) = grant.scope();
            let patient = patient.ok_or(StoreError::NotFound)?;
            let mut conn = self.pool.acquire().await?;
            let thread = scoped_thread(&mut conn, id, patient, practice).await?;
            // Internal notes are the practice's alone.
            let rows = sqlx::query(
                "SELECT m.id, m.author_id, COALESCE(a.display_name, '') AS author_name, m.from_practice, m.internal, \
                 m.body, m.document_id, m.created_at FROM messages m LEFT JOIN accounts a ON a.id = m.author_id \
                 WHERE m.thread_id = $1 AND (m.internal = FALSE OR $2) ORDER BY m.created_at, m.id",
            )
            .bind(id.as_uuid())
            .bind(practice.is_some())
            .fetch_all(&mut *conn)
            .await?;
            let messages = rows
                .iter()
                .map(|r| {
                    Ok(MessageRow {
                        id: MessageId::from_uuid(r.try_get("id")?),
                        author: r.try_get::<Option<Uuid>, _>("author_id")?.map(AccountId::from_uuid),
                        author_name: r.try_get("author_name")?,
                        from_practice: r.try_get("from_practice")?,
                        internal: r.try_get("internal")?,
                        body: r.try_get("body")?,
                        document: r.try_get::<Option<Uuid>, _>("document_id")?.map(DocumentId::from_uuid),
                        created_at: r.try_get("created_at")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((thread, messages))
        })
    }

    fn add_message<'a>(
        &'a self,
        grant: ThreadGrant<'a>,
        message: &'a NewMessage,
        mail: &'a [NewMail],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let (id, patient, practice) = grant.scope();
            let patient = patient.ok_or(StoreError::NotFound)?;
            // Only the practice writes notes; only its side writes as the practice.
            if (message.internal || message.from_practice) && practice.is_none() {
                return Err(StoreError::NotFound);
            }
            let mut tx = self.begin().await?;
            let thread = scoped_thread(&mut tx, id, patient, practice).await?;
            if !message.from_practice {
                // The patient's side writes only to a practice they are still enrolled at, and
                // while it takes messages: anything else would reach nobody.
                let open = sqlx::query(
                    "SELECT 1 FROM enrolments e JOIN messaging_settings s ON s.practice_id = e.practice_id \
                     WHERE e.patient_id = $1 AND e.practice_id = $2 AND s.messaging_on",
                )
                .bind(patient.as_uuid())
                .bind(thread.practice.as_uuid())
                .fetch_optional(&mut *tx)
                .await?;
                if open.is_none() {
                    return Err(StoreError::Conflict(MESSAGING_OFF));
                }
            }
            insert_message(&mut tx, id, message, now).await?;
            let sql = if message.internal {
                "UPDATE message_threads SET practice_read_at = $2 WHERE id = $1"
            } else if message.from_practice {
                "UPDATE message_threads SET last_message_at = $2, practice_read_at = $2 WHERE id = $1"
            } else {
                "UPDATE message_threads SET last_message_at = $2, patient_read_at = $2, status = 'open' WHERE id = $1"
            };
            sqlx::query(sql).bind(id.as_uuid()).bind(now).execute(&mut *tx).await?;
            for m in mail {
                shared::insert_mail(&mut tx, m).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn practice_threads<'a>(
        &'a self,
        grant: &'a Grant<ReadPracticeInbox>,
        status: ThreadStatus,
    ) -> BoxFuture<'a, Result<Vec<ThreadRow>>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {THREAD_COLUMNS} WHERE t.practice_id = $1 AND t.status = $2 AND EXISTS \
                 (SELECT 1 FROM enrolments e WHERE e.patient_id = t.patient_id AND e.practice_id = t.practice_id) \
                 ORDER BY t.last_message_at DESC, t.id LIMIT 500"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(grant.object().as_uuid())
                .bind(status.as_str())
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(thread_row).collect()
        })
    }

    fn manage_thread<'a>(
        &'a self,
        grant: &'a Grant<ManageThread>,
        change: ThreadChange,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let patient = grant.patient().ok_or(StoreError::NotFound)?;
            let practice = grant.via_practice().ok_or(StoreError::NotFound)?;
            let mut tx = self.begin().await?;
            scoped_thread(&mut tx, grant.object(), patient, Some(practice)).await?;
            match change {
                ThreadChange::Assign(Some(to)) => {
                    let staff = sqlx::query(
                        "SELECT 1 FROM staff WHERE practice_id = $1 AND account_id = $2 AND removed_at IS NULL \
                         AND role IN ('admin', 'gp', 'nurse')",
                    )
                    .bind(practice.as_uuid())
                    .bind(to.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await?;
                    if staff.is_none() {
                        return Err(StoreError::NotFound);
                    }
                    sqlx::query("UPDATE message_threads SET assigned_to = $2 WHERE id = $1")
                        .bind(grant.object().as_uuid())
                        .bind(to.as_uuid())
                        .execute(&mut *tx)
                        .await?;
                }
                ThreadChange::Assign(None) => {
                    sqlx::query("UPDATE message_threads SET assigned_to = NULL WHERE id = $1")
                        .bind(grant.object().as_uuid())
                        .execute(&mut *tx)
                        .await?;
                }
                ThreadChange::Status(s) => {
                    sqlx::query("UPDATE message_threads SET status = $2, practice_read_at = $3 WHERE id = $1")
                        .bind(grant.object().as_uuid())
                        .bind(s.as_str())
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn mark_thread_read<'a>(&'a self, grant: &'a Grant<ReadThread>, now: UnixTime) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let patient = grant.patient().ok_or(StoreError::NotFound)?;
            let sql = if grant.via_practice().is_some() {
                "UPDATE message_threads SET practice_read_at = $3 WHERE id = $1 AND patient_id = $2"
            } else {
                "UPDATE message_threads SET patient_read_at = $3 WHERE id = $1 AND patient_id = $2"
            };
            sqlx::query(sql)
                .bind(grant.object().as_uuid())
                .bind(patient.as_uuid())
                .bind(now)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }
}
