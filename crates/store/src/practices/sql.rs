// The SQL of the practices aggregate, one text for both engines: included by
// `mod.rs` once for `SQLite` and once for `PostgreSQL` (`This` is the engine's store, `Db` its
// database). Format with `rustfmt --edition 2024 practices/sql.rs` (CI checks it).

use crate::portable::{map_unique, staff_role};
use crate::{
    AccountId, AwaitingPatient, BoxFuture, ENROLMENT_REQUEST_SECS, Enrolled, EnrolmentRequest, NewAccount,
    NewInvitation, NewPatient, NewPractice, PatientId, PatientRow, PracticeId, PracticeRow, PracticeStore,
    PracticeSummary, Result, StaffChange, StaffRole, StaffRow, StoreError, UnixTime,
};
use authz::{EnrolPatient, Grant, Relations, RelationsError};
use domain::AccountKind;
use shared::{insert_account, insert_invitation};
use sqlx::Row;
use uuid::Uuid;

type DbRow = <Db as sqlx::Database>::Row;

fn patient_row(r: &DbRow) -> Result<PatientRow> {
    Ok(PatientRow {
        id: PatientId::from_uuid(r.try_get("id")?),
        account: AccountId::from_uuid(r.try_get("account_id")?),
        nhi: r.try_get("nhi")?,
        name: r.try_get("name")?,
        date_of_birth: r.try_get("date_of_birth")?,
        email: r.try_get("email")?,
        active: r.try_get::<Option<String>, _>("password_hash")?.is_some(),
    })
}

fn practice_row(r: &DbRow) -> Result<PracticeRow> {
    Ok(PracticeRow {
        id: PracticeId::from_uuid(r.try_get("id")?),
        name: r.try_get("name")?,
        hpi_facility_id: r.try_get("hpi_facility_id")?,
        region: r.try_get("region")?,
    })
}

impl PracticeStore for This {
    fn create_practice<'a>(
        &'a self,
        _grant: &'a Grant<authz::ManagePractices>,
        p: &'a NewPractice,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO practices (id, name, hpi_facility_id, region, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(p.id.as_uuid())
            .bind(p.name.as_str())
            .bind(p.hpi_facility_id.as_str())
            .bind(p.region.as_str())
            .bind(p.created_at)
            .execute(&self.pool)
            .await
            .map_err(map_unique)?;
            Ok(())
        })
    }

    fn list_practices<'a>(
        &'a self,
        _grant: &'a Grant<authz::ManagePractices>,
    ) -> BoxFuture<'a, Result<Vec<PracticeSummary>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT p.id, p.name, p.hpi_facility_id, p.region, \
                   (SELECT COUNT(*) FROM staff s WHERE s.practice_id = p.id AND s.removed_at IS NULL) AS staff_count, \
                   (SELECT COUNT(*) FROM enrolments e WHERE e.practice_id = p.id) AS patient_count \
                 FROM practices p ORDER BY p.name, p.hpi_facility_id",
            )
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(PracticeSummary {
                        practice: practice_row(r)?,
                        staff: r.try_get("staff_count")?,
                        patients: r.try_get("patient_count")?,
                    })
                })
                .collect()
        })
    }

    fn practice(&self, id: PracticeId) -> BoxFuture<'_, Result<Option<PracticeRow>>> {
        Box::pin(async move {
            sqlx::query("SELECT id, name, hpi_facility_id, region FROM practices WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(practice_row)
                .transpose()
        })
    }

    fn invite_staff<'a>(
        &'a self,
        grant: &'a Grant<authz::ManageStaff>,
        account: &'a NewAccount,
        role: StaffRole,
        invite: &'a NewInvitation,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            insert_account(&mut tx, account).await?;
            sqlx::query("INSERT INTO staff (account_id, practice_id, role, created_at) VALUES ($1, $2, $3, $4)")
                .bind(account.id.as_uuid())
                .bind(grant.object().as_uuid())
                .bind(role.as_str())
                .bind(account.created_at)
                .execute(&mut *tx)
                .await?;
            insert_invitation(&mut tx, invite, Some(account.id)).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn list_staff<'a>(&'a self, grant: &'a Grant<authz::ManageStaff>) -> BoxFuture<'a, Result<Vec<StaffRow>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT a.id, a.display_name, a.email, a.password_hash, s.role FROM staff s \
                 JOIN accounts a ON a.id = s.account_id WHERE s.practice_id = $1 AND s.removed_at IS NULL ORDER BY a.display_name, a.email",
            )
            .bind(grant.object().as_uuid())
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(StaffRow {
                        account: AccountId::from_uuid(r.try_get("id")?),
                        name: r.try_get("display_name")?,
                        email: r.try_get("email")?,
                        role: staff_role(&r.try_get::<String, _>("role")?)?,
                        active: r.try_get::<Option<String>, _>("password_hash")?.is_some(),
                    })
                })
                .collect()
        })
    }

    fn change_staff<'a>(
        &'a self,
        grant: &'a Grant<authz::ManageStaff>,
        account: AccountId,
        change: StaffChange,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let changed = match change {
                StaffChange::Role(role) => sqlx::query(
                    "UPDATE staff SET role = $3 WHERE account_id = $1 AND practice_id = $2 AND removed_at IS NULL",
                )
                .bind(account.as_uuid())
                .bind(grant.object().as_uuid())
                .bind(role.as_str()),
                StaffChange::Remove => sqlx::query(
                    "UPDATE staff SET removed_at = $3 WHERE account_id = $1 AND practice_id = $2 AND removed_at IS NULL",
                )
                .bind(account.as_uuid())
                .bind(grant.object().as_uuid())
                .bind(now),
            }
            .execute(&mut *tx)
            .await?;
            if changed.rows_affected() != 1 {
                return Err(crate::StoreError::NotFound);
            }
            if change == StaffChange::Remove {
                shared::disable_account(&mut tx, account, "removed from the practice's staff", now).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn end_enrolment(&self, enrolment: crate::EnrolmentGrant) -> BoxFuture<'_, Result<AccountId>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let gone = sqlx::query("DELETE FROM enrolments WHERE patient_id = $1 AND practice_id = $2")
                .bind(enrolment.patient().as_uuid())
                .bind(enrolment.practice().as_uuid())
                .execute(&mut *tx)
                .await?;
            if gone.rows_affected() != 1 {
                return Err(StoreError::NotFound);
            }
            let account: Uuid = sqlx::query_scalar("SELECT account_id FROM patients WHERE id = $1")
                .bind(enrolment.patient().as_uuid())
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(AccountId::from_uuid(account))
        })
    }

    fn staff_membership(&self, account: AccountId) -> BoxFuture<'_, Result<Option<(PracticeId, StaffRole)>>> {
        Box::pin(async move {
            let Some(r) =
                sqlx::query("SELECT practice_id, role FROM staff WHERE account_id = $1 AND removed_at IS NULL")
                    .bind(account.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?
            else {
                return Ok(None);
            };
            Ok(Some((PracticeId::from_uuid(r.try_get("practice_id")?), staff_role(&r.try_get::<String, _>("role")?)?)))
        })
    }

    fn enrol_patient<'a>(
        &'a self,
        grant: &'a Grant<authz::EnrolPatient>,
        p: &'a NewPatient,
        invite: &'a NewInvitation,
    ) -> BoxFuture<'a, Result<Enrolled>> {
        Box::pin(async move {
            let practice = grant.object().as_uuid();
            let mut tx = self.begin().await?;
            let existing = sqlx::query("SELECT id, name, date_of_birth FROM patients WHERE nhi = $1")
                .bind(p.nhi.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            let outcome = if let Some(r) = existing {
                let id: Uuid = r.try_get("id")?;
                let patient = PatientId::from_uuid(id);
                // Does the identity the practice checked match the record? An NHI alone opens
                // nothing, and the practice is not told which way this went.
                let stored_name: String = r.try_get("name")?;
                let stored_dob: String = r.try_get("date_of_birth")?;
                let matched =
                    stored_dob == p.date_of_birth.iso() && stored_name.to_lowercase() == p.name.as_str().to_lowercase();
                let already = sqlx::query("SELECT 1 FROM enrolments WHERE patient_id = $1 AND practice_id = $2")
                    .bind(id)
                    .bind(practice)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
                if already {
                    // Its staff already see this record: nothing to hide from them.
                    if !matched {
                        return Err(StoreError::Conflict("identity"));
                    }
                    Enrolled::AlreadyEnrolled(patient)
                } else {
                    // Only a request: the account holder accepts it (or not). A request still
                    // open (30 days from when it was made), or declined in the last 30 days,
                    // stands as it is: asking again changes nothing and mails nobody — except
                    // that a right guess replaces a wrong one (so a typo, or an attacker's
                    // guess, cannot block the practice), keeping the first one's date so that
                    // nothing the practice sees changes with it.
                    let fresh = sqlx::query(
                        "INSERT INTO enrolment_requests (patient_id, practice_id, requested_by, requested_at, \
                         identity_matched) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (patient_id, practice_id) DO UPDATE SET requested_by = EXCLUDED.requested_by, \
                         requested_at = CASE WHEN enrolment_requests.identity_matched = FALSE \
                           AND enrolment_requests.requested_at >= $6 THEN enrolment_requests.requested_at \
                           ELSE EXCLUDED.requested_at END, \
                         identity_matched = EXCLUDED.identity_matched, answered_at = NULL, accepted = NULL \
                         WHERE COALESCE(enrolment_requests.answered_at, enrolment_requests.requested_at) < $6 \
                         OR enrolment_requests.accepted = TRUE \
                         OR (enrolment_requests.identity_matched = FALSE AND EXCLUDED.identity_matched = TRUE)",
                    )
                    .bind(id)
                    .bind(practice)
                    .bind(p.enrolled_by.map(|a| a.as_uuid()))
                    .bind(p.at)
                    .bind(matched)
                    .bind(p.at - ENROLMENT_REQUEST_SECS)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1;
                    Enrolled::Requested { patient, identity_matched: matched, fresh }
                }
            } else {
                let account = NewAccount {
                    id: p.account,
                    kind: AccountKind::Patient,
                    email: p.email.clone(),
                    display_name: p.name.clone(),
                    created_at: p.at,
                };
                insert_account(&mut tx, &account).await?;
                sqlx::query("INSERT INTO patients (id, account_id, nhi, name, date_of_birth, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(p.id.as_uuid())
                    .bind(p.account.as_uuid())
                    .bind(p.nhi.as_str())
                    .bind(p.name.as_str())
                    .bind(p.date_of_birth.iso())
                    .bind(p.at)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_unique)?;
                sqlx::query("INSERT INTO enrolments (patient_id, practice_id, enrolled_at, enrolled_by) VALUES ($1, $2, $3, $4)")
                    .bind(p.id.as_uuid())
                    .bind(practice)
                    .bind(p.at)
                    .bind(p.enrolled_by.map(|a| a.as_uuid()))
                    .execute(&mut *tx)
                    .await?;
                insert_invitation(&mut tx, invite, Some(p.account)).await?;
                Enrolled::New(p.id)
            };
            tx.commit().await?;
            Ok(outcome)
        })
    }

    fn list_patients<'a>(
        &'a self,
        grant: &'a Grant<authz::ListPracticePatients>,
        query: &'a crate::PatientQuery,
    ) -> BoxFuture<'a, Result<(Vec<PatientRow>, i64)>> {
        Box::pin(async move {
            // Bound, never spliced; LIKE's own characters in the search are matched literally.
            let search = query.search.trim().to_lowercase();
            let like = search.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            let matches = "e.practice_id = $1 AND ($2 = '' OR LOWER(p.name) LIKE $3 ESCAPE '\\' \
                 OR LOWER(p.nhi) LIKE $4 ESCAPE '\\')";
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT p.id, p.account_id, p.nhi, p.name, p.date_of_birth, a.email, a.password_hash \
                 FROM enrolments e JOIN patients p ON p.id = e.patient_id JOIN accounts a ON a.id = p.account_id \
                 WHERE {matches} ORDER BY p.name, p.nhi LIMIT $5 OFFSET $6"
            )))
            .bind(grant.object().as_uuid())
            .bind(&search)
            .bind(format!("%{like}%"))
            .bind(format!("{like}%"))
            .bind(query.limit.clamp(1, 500))
            .bind(query.offset.max(0))
            .fetch_all(&self.pool)
            .await?;
            let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM enrolments e JOIN patients p ON p.id = e.patient_id WHERE {matches}"
            )))
            .bind(grant.object().as_uuid())
            .bind(&search)
            .bind(format!("%{like}%"))
            .bind(format!("{like}%"))
            .fetch_one(&self.pool)
            .await?;
            Ok((rows.iter().map(patient_row).collect::<Result<Vec<_>>>()?, total))
        })
    }

    fn patient<'a>(&'a self, grant: &'a Grant<authz::ViewPatient>) -> BoxFuture<'a, Result<PatientRow>> {
        Box::pin(async move {
            // The grant was made for this patient; for staff, the enrolment at their
            // practice that it rests on is checked again here (defence in depth). The patient
            // themself needs none: someone who left every practice still has their record.
            sqlx::query(
                "SELECT p.id, p.account_id, p.nhi, p.name, p.date_of_birth, a.email, a.password_hash \
                 FROM patients p JOIN accounts a ON a.id = p.account_id \
                 WHERE p.id = $1 AND ($3 OR EXISTS (SELECT 1 FROM enrolments e WHERE e.patient_id = p.id \
                   AND e.practice_id = $2))",
            )
            .bind(grant.object().as_uuid())
            .bind(grant.via_practice().map_or(uuid::Uuid::nil(), |p| p.as_uuid()))
            .bind(grant.via_practice().is_none())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(patient_row)
            .transpose()?
            .ok_or(StoreError::NotFound)
        })
    }

    fn enrolment_requests<'a>(
        &'a self,
        grant: &'a Grant<authz::ReviewEnrolmentRequests>,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Vec<EnrolmentRequest>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT r.practice_id, p.name, r.requested_at FROM enrolment_requests r \
                 JOIN practices p ON p.id = r.practice_id \
                 WHERE r.patient_id = $1 AND r.identity_matched = TRUE AND r.answered_at IS NULL \
                 AND r.requested_at >= $2 ORDER BY r.requested_at, p.name",
            )
            .bind(grant.object().as_uuid())
            .bind(now - ENROLMENT_REQUEST_SECS)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(EnrolmentRequest {
                        practice: PracticeId::from_uuid(r.try_get("practice_id")?),
                        practice_name: r.try_get("name")?,
                        requested_at: r.try_get("requested_at")?,
                    })
                })
                .collect()
        })
    }

    fn answer_enrolment_request<'a>(
        &'a self,
        grant: &'a Grant<authz::AnswerEnrolmentRequest>,
        accept: bool,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<AccountId>>> {
        Box::pin(async move {
            let patient = grant.patient().ok_or(StoreError::NotFound)?.as_uuid();
            let practice = grant.object().as_uuid();
            let mut tx = self.begin().await?;
            let Some(row) = sqlx::query(
                "UPDATE enrolment_requests SET answered_at = $3, accepted = $4 \
                 WHERE patient_id = $1 AND practice_id = $2 AND identity_matched = TRUE AND answered_at IS NULL \
                 AND requested_at >= $5 RETURNING requested_by",
            )
            .bind(patient)
            .bind(practice)
            .bind(now)
            .bind(accept)
            .bind(now - ENROLMENT_REQUEST_SECS)
            .fetch_optional(&mut *tx)
            .await?
            else {
                return Err(StoreError::NotFound);
            };
            let requested_by: Option<Uuid> = row.try_get("requested_by")?;
            if accept {
                sqlx::query(
                    "INSERT INTO enrolments (patient_id, practice_id, enrolled_at, enrolled_by) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (patient_id, practice_id) DO NOTHING",
                )
                .bind(patient)
                .bind(practice)
                .bind(now)
                .bind(requested_by)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(requested_by.map(AccountId::from_uuid))
        })
    }

    fn awaiting_patients<'a>(
        &'a self,
        grant: &'a Grant<authz::ListPracticePatients>,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Vec<AwaitingPatient>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT p.nhi, r.requested_at FROM enrolment_requests r JOIN patients p ON p.id = r.patient_id \
                 WHERE r.practice_id = $1 AND r.requested_at >= $2 AND r.accepted IS NOT TRUE \
                 AND NOT EXISTS (SELECT 1 FROM enrolments e WHERE e.patient_id = r.patient_id \
                   AND e.practice_id = r.practice_id) \
                 ORDER BY p.nhi LIMIT 200",
            )
            .bind(grant.object().as_uuid())
            .bind(now - ENROLMENT_REQUEST_SECS)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| Ok(AwaitingPatient { nhi: r.try_get("nhi")?, requested_at: r.try_get("requested_at")? }))
                .collect()
        })
    }

    fn patient_for_account(&self, account: AccountId) -> BoxFuture<'_, Result<Option<PatientId>>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT id FROM patients WHERE account_id = $1")
                .bind(account.as_uuid())
                .fetch_optional(&self.pool)
                .await?;
            Ok(match row {
                Some(r) => Some(PatientId::from_uuid(r.try_get("id")?)),
                None => None,
            })
        })
    }

    fn patient_account<'a>(
        &'a self,
        grant: &'a Grant<EnrolPatient>,
        patient: PatientId,
    ) -> BoxFuture<'a, Result<AccountId>> {
        Box::pin(async move {
            // Only a patient enrolled at, or asked by, the practice the grant is for.
            let row = sqlx::query(
                "SELECT p.account_id FROM patients p WHERE p.id = $1 AND (\
                 EXISTS (SELECT 1 FROM enrolments e WHERE e.patient_id = p.id AND e.practice_id = $2) OR \
                 EXISTS (SELECT 1 FROM enrolment_requests r WHERE r.patient_id = p.id AND r.practice_id = $2))",
            )
            .bind(patient.as_uuid())
            .bind(grant.object().as_uuid())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
            Ok(AccountId::from_uuid(row.try_get("account_id")?))
        })
    }
}

impl Relations for This {
    fn patient_practices(&self, patient: PatientId) -> BoxFuture<'_, Result<Vec<PracticeId>, RelationsError>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT practice_id FROM enrolments WHERE patient_id = $1")
                .bind(patient.as_uuid())
                .fetch_all(&self.pool)
                .await
                .map_err(|e| RelationsError(e.to_string()))?;
            rows.iter()
                .map(|r| r.try_get::<Uuid, _>(0).map(PracticeId::from_uuid))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| RelationsError(e.to_string()))
        })
    }

    fn practice_exists(&self, practice: PracticeId) -> BoxFuture<'_, Result<bool, RelationsError>> {
        Box::pin(async move {
            sqlx::query("SELECT 1 FROM practices WHERE id = $1")
                .bind(practice.as_uuid())
                .fetch_optional(&self.pool)
                .await
                .map(|r| r.is_some())
                .map_err(|e| RelationsError(e.to_string()))
        })
    }

    fn document_owner(
        &self,
        document: domain::DocumentId,
    ) -> BoxFuture<'_, Result<Option<authz::DocumentOwner>, RelationsError>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT d.patient_id, d.pushed_by_practice, d.hidden_at, \
                 (SELECT t.practice_id FROM messages m JOIN message_threads t ON t.id = m.thread_id \
                  WHERE m.document_id = d.id ORDER BY m.created_at LIMIT 1) AS attached_for FROM documents d \
                 WHERE d.id = $1 AND d.deleted_at IS NULL AND d.withdrawn_at IS NULL",
            )
            .bind(document.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| RelationsError(e.to_string()))?;
            row.map(|r| -> std::result::Result<authz::DocumentOwner, sqlx::Error> {
                Ok(authz::DocumentOwner {
                    patient: PatientId::from_uuid(r.try_get("patient_id")?),
                    pushed_by_practice: r.try_get::<Option<Uuid>, _>("pushed_by_practice")?.map(PracticeId::from_uuid),
                    hidden_by_patient: r.try_get::<Option<i64>, _>("hidden_at")?.is_some(),
                    attached_for: r.try_get::<Option<Uuid>, _>("attached_for")?.map(PracticeId::from_uuid),
                })
            })
            .transpose()
            .map_err(|e| RelationsError(e.to_string()))
        })
    }

    fn record_owner(
        &self,
        record: domain::RecordId,
    ) -> BoxFuture<'_, Result<Option<authz::RecordOwner>, RelationsError>> {
        Box::pin(async move {
            owner(&self.pool, "SELECT patient_id, practice_id FROM health_records WHERE id = $1", record.as_uuid())
                .await
        })
    }

    fn appointment_owner(
        &self,
        id: domain::AppointmentId,
    ) -> BoxFuture<'_, Result<Option<authz::RecordOwner>, RelationsError>> {
        Box::pin(async move {
            owner(&self.pool, "SELECT patient_id, practice_id FROM appointments WHERE id = $1", id.as_uuid()).await
        })
    }

    fn repeat_request_owner(
        &self,
        id: domain::RepeatRequestId,
    ) -> BoxFuture<'_, Result<Option<authz::RecordOwner>, RelationsError>> {
        Box::pin(async move {
            owner(&self.pool, "SELECT patient_id, practice_id FROM repeat_requests WHERE id = $1", id.as_uuid()).await
        })
    }

    fn proxy_terms(
        &self,
        account: AccountId,
        patient: PatientId,
    ) -> BoxFuture<'_, Result<Vec<domain::proxies::ProxyTerms>, RelationsError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT x.practice_id, x.relationship, x.scopes, x.starts_at, x.expires_at, x.needs_acceptance, x.accepted_at, \
                 x.revoked_at, p.date_of_birth, COALESCE(r.cutoff_age, 14) AS cutoff_age \
                 FROM proxies x JOIN patients p ON p.id = x.patient_id \
                 LEFT JOIN proxy_rules r ON r.practice_id = x.practice_id \
                 WHERE x.proxy_account_id = $1 AND x.patient_id = $2 AND x.revoked_at IS NULL \
                 AND EXISTS (SELECT 1 FROM enrolments e WHERE e.patient_id = x.patient_id AND e.practice_id = x.practice_id)",
            )
            .bind(account.as_uuid())
            .bind(patient.as_uuid())
            .fetch_all(&self.pool)
            .await
            .map_err(|e| RelationsError(e.to_string()))?;
            rows.iter()
                .map(|r| -> crate::Result<domain::proxies::ProxyTerms> {
                    crate::proxies::terms(
                        PracticeId::from_uuid(r.try_get("practice_id")?),
                        &r.try_get::<String, _>("relationship")?,
                        &r.try_get::<String, _>("scopes")?,
                        r.try_get("starts_at")?,
                        r.try_get("expires_at")?,
                        r.try_get("needs_acceptance")?,
                        r.try_get("accepted_at")?,
                        r.try_get("revoked_at")?,
                        &r.try_get::<String, _>("date_of_birth")?,
                        r.try_get("cutoff_age")?,
                    )
                })
                .collect::<crate::Result<Vec<_>>>()
                .map_err(|e| RelationsError(e.to_string()))
        })
    }

    fn thread_owner(&self, id: domain::ThreadId) -> BoxFuture<'_, Result<Option<authz::RecordOwner>, RelationsError>> {
        Box::pin(async move {
            owner(&self.pool, "SELECT patient_id, practice_id FROM message_threads WHERE id = $1", id.as_uuid()).await
        })
    }

    fn proxy_owner(&self, id: domain::ProxyId) -> BoxFuture<'_, Result<Option<authz::ProxyOwner>, RelationsError>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT patient_id, practice_id, proxy_account_id FROM proxies WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| RelationsError(e.to_string()))?;
            row.map(|r| -> std::result::Result<authz::ProxyOwner, sqlx::Error> {
                Ok(authz::ProxyOwner {
                    patient: PatientId::from_uuid(r.try_get("patient_id")?),
                    practice: PracticeId::from_uuid(r.try_get("practice_id")?),
                    proxy: AccountId::from_uuid(r.try_get("proxy_account_id")?),
                })
            })
            .transpose()
            .map_err(|e| RelationsError(e.to_string()))
        })
    }

    fn receiving_practices<'a>(&'a self, org_id: &'a str) -> BoxFuture<'a, Result<Vec<PracticeId>, RelationsError>> {
        Box::pin(async move {
            let ids: Vec<Uuid> = sqlx::query_scalar(
                "SELECT practice_id FROM document_agreements WHERE org_id = $1 ORDER BY created_at, practice_id",
            )
            .bind(org_id)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| RelationsError(e.to_string()))?;
            Ok(ids.into_iter().map(PracticeId::from_uuid).collect())
        })
    }
}

/// Whose a row is: its `patient_id` and `practice_id`, read by `sql` with the id as `$1`.
async fn owner(
    pool: &sqlx::Pool<Db>,
    sql: &'static str,
    id: Uuid,
) -> std::result::Result<Option<authz::RecordOwner>, RelationsError> {
    let row = sqlx::query(sql).bind(id).fetch_optional(pool).await.map_err(|e| RelationsError(e.to_string()))?;
    row.map(|r| -> std::result::Result<authz::RecordOwner, sqlx::Error> {
        Ok(authz::RecordOwner {
            patient: PatientId::from_uuid(r.try_get("patient_id")?),
            practice: PracticeId::from_uuid(r.try_get("practice_id")?),
        })
    })
    .transpose()
    .map_err(|e| RelationsError(e.to_string()))
}
