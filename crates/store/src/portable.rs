//! The SQL both engines run. It is written once, in the subset of SQL that `SQLite` and `PostgreSQL`
//! share, and instantiated for each engine's concrete types by `portable_store!` (sqlx's generic
//! executor bounds make a single generic impl unreadable; a macro keeps one text of each query).

use crate::{InvitationPurpose, StoreError};
use domain::{AccountKind, StaffRole};

/// Maps a unique-constraint violation to a conflict naming what was duplicated.
pub(crate) fn map_unique(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && db.is_unique_violation()
    {
        {
            let text = format!("{} {}", db.constraint().unwrap_or_default(), db.message());
            let what = if text.contains("email") {
                "This email address"
            } else if text.contains("nhi") {
                "This NHI number"
            } else if text.contains("hpi_facility_id") {
                "This HPI facility id"
            } else {
                "This value"
            };
            return StoreError::Conflict(what);
        }
    }
    StoreError::Database(e)
}

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

pub(crate) fn account_kind(s: &str) -> Result<AccountKind, StoreError> {
    AccountKind::from_stored(s).ok_or_else(|| corrupt("account kind"))
}

pub(crate) fn staff_role(s: &str) -> Result<StaffRole, StoreError> {
    StaffRole::parse(s).map_err(|_| corrupt("staff role"))
}

pub(crate) fn purpose(s: &str) -> Result<InvitationPurpose, StoreError> {
    InvitationPurpose::from_stored(s).ok_or_else(|| corrupt("invitation purpose"))
}

/// The Merkle tree's size, as SQL: the number of leaves hashed into `audit_nodes`. A macro, so
/// that the queries which compare with it can take it in with `concat!`.
macro_rules! tree_size {
    () => {
        "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_nodes WHERE level = 0"
    };
}
const TREE_SIZE: &str = tree_size!();

macro_rules! portable_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use crate::portable::*;
            use crate::*;
            use authz::{Grant, Relations, RelationsError};
            use sqlx::Row;
            use uuid::Uuid;

            type DbRow = <$db as sqlx::Database>::Row;

            fn account_row(r: &DbRow) -> Result<AccountRow> {
                Ok(AccountRow {
                    id: AccountId::from_uuid(r.try_get("id")?),
                    kind: account_kind(&r.try_get::<String, _>("kind")?)?,
                    email: r.try_get("email")?,
                    display_name: r.try_get("display_name")?,
                    password_hash: r.try_get("password_hash")?,
                    disabled_at: r.try_get("disabled_at")?,
                    failed_sign_ins: r.try_get("failed_sign_ins")?,
                    last_failed_sign_in_at: r.try_get("last_failed_sign_in_at")?,
                    password_breached_at: r.try_get("password_breached_at")?,
                })
            }

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

            fn session_row(r: &DbRow) -> Result<SessionRow> {
                Ok(SessionRow {
                    id: SessionId::from_uuid(r.try_get("id")?),
                    account: AccountId::from_uuid(r.try_get("account_id")?),
                    created_at: r.try_get("created_at")?,
                    last_seen_at: r.try_get("last_seen_at")?,
                    absolute_expires_at: r.try_get("absolute_expires_at")?,
                    ip: r.try_get("ip")?,
                    user_agent: r.try_get("user_agent")?,
                    mfa_at: r.try_get("mfa_at")?,
                    setup_ok_at: r.try_get("setup_ok_at")?,
                    mfa_passkey: r.try_get("mfa_passkey")?,
                })
            }

            fn event_row(r: &DbRow) -> Result<AuditEvent> {
                Ok(AuditEvent {
                    id: r.try_get("id")?,
                    at_ms: r.try_get("at_ms")?,
                    actor_account: r.try_get("actor_account")?,
                    actor_role: r.try_get("actor_role")?,
                    actor_practice: r.try_get("actor_practice")?,
                    session: r.try_get("session_id")?,
                    ip: r.try_get("ip")?,
                    user_agent: r.try_get("user_agent")?,
                    on_behalf: r.try_get("on_behalf")?,
                    action: r.try_get("action")?,
                    object_type: r.try_get("object_type")?,
                    object_id: r.try_get("object_id")?,
                    patient: r.try_get("patient_id")?,
                    practice: r.try_get("practice_id")?,
                    outcome: r.try_get("outcome")?,
                    request_id: r.try_get("request_id")?,
                    module: r.try_get("module")?,
                    format: u8::try_from(r.try_get::<i16, _>("format")?).map_err(|_| corrupt("event format"))?,
                })
            }

            fn hash32(v: Vec<u8>) -> Result<[u8; 32]> {
                v.try_into().map_err(|_| corrupt("hash is not 32 bytes"))
            }

            fn checkpoint_row(r: &DbRow) -> Result<CheckpointRow> {
                Ok(CheckpointRow {
                    size: u64::try_from(r.try_get::<i64, _>("size")?).map_err(|_| corrupt("checkpoint size"))?,
                    root: r.try_get("root")?,
                    note: r.try_get("note")?,
                    created_at: r.try_get("created_at")?,
                })
            }

            fn to_i64(v: u64) -> Result<i64> {
                i64::try_from(v).map_err(|_| corrupt("number out of range"))
            }

            fn to_u64(v: i64) -> Result<u64> {
                u64::try_from(v).map_err(|_| corrupt("negative sequence number"))
            }

            async fn insert_account(tx: &mut sqlx::Transaction<'_, $db>, a: &NewAccount) -> Result<()> {
                sqlx::query(
                    "INSERT INTO accounts (id, kind, email, display_name, password_hash, created_at) \
                     VALUES ($1, $2, $3, $4, NULL, $5)",
                )
                .bind(a.id.as_uuid())
                .bind(a.kind.as_str())
                .bind(a.email.as_str())
                .bind(a.display_name.as_str())
                .bind(a.created_at)
                .execute(&mut **tx)
                .await
                .map_err(map_unique)?;
                Ok(())
            }

            async fn insert_mail(tx: &mut sqlx::Transaction<'_, $db>, m: &NewMail) -> Result<()> {
                sqlx::query(
                    "INSERT INTO outbox (id, recipient, subject, body, created_at, attempts, next_attempt_at) \
                     VALUES ($1, $2, $3, $4, $5, 0, $5)",
                )
                .bind(m.id)
                .bind(&m.recipient)
                .bind(&m.subject)
                .bind(&m.body)
                .bind(m.created_at)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            async fn insert_invitation(
                tx: &mut sqlx::Transaction<'_, $db>,
                i: &NewInvitation,
                account: Option<AccountId>,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO invitations (id, token_hash, purpose, account_id, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(i.id)
                .bind(&i.token_hash)
                .bind(i.purpose.as_str())
                .bind(account.map(|a| a.as_uuid()))
                .bind(i.created_at)
                .bind(i.expires_at)
                .execute(&mut **tx)
                .await
                .map_err(map_unique)?;
                if let Some(mail) = &i.mail {
                    insert_mail(tx, mail).await?;
                }
                Ok(())
            }

            impl Relations for $store {
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

                fn document_owner(&self, document: domain::DocumentId) -> BoxFuture<'_, Result<Option<authz::DocumentOwner>, RelationsError>> {
                    Box::pin(async move {
                        let row = sqlx::query(
                            "SELECT patient_id, pushed_by_practice FROM documents \
                             WHERE id = $1 AND deleted_at IS NULL AND withdrawn_at IS NULL",
                        )
                        .bind(document.as_uuid())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(|e| RelationsError(e.to_string()))?;
                        row.map(|r| -> std::result::Result<authz::DocumentOwner, sqlx::Error> {
                            Ok(authz::DocumentOwner {
                                patient: PatientId::from_uuid(r.try_get("patient_id")?),
                                pushed_by_practice: r.try_get::<Option<Uuid>, _>("pushed_by_practice")?.map(PracticeId::from_uuid),
                            })
                        })
                        .transpose()
                        .map_err(|e| RelationsError(e.to_string()))
                    })
                }

                fn receiving_practices<'a>(&'a self, org_id: &'a str) -> BoxFuture<'a, Result<Vec<PracticeId>, RelationsError>> {
                    Box::pin(async move {
                        let ids: Vec<Uuid> = sqlx::query_scalar("SELECT practice_id FROM document_agreements WHERE org_id = $1 ORDER BY created_at, practice_id")
                            .bind(org_id)
                            .fetch_all(&self.pool)
                            .await
                            .map_err(|e| RelationsError(e.to_string()))?;
                        Ok(ids.into_iter().map(PracticeId::from_uuid).collect())
                    })
                }
            }

            impl Store for $store {
                fn backend(&self) -> Backend {
                    Self::BACKEND
                }

                fn migrate(&self) -> BoxFuture<'_, Result<()>> {
                    Box::pin(self.run_migrations())
                }

                fn ping(&self) -> BoxFuture<'_, Result<()>> {
                    Box::pin(async move {
                        sqlx::query("SELECT 1").execute(&self.pool).await?;
                        Ok(())
                    })
                }

                fn secret<'a>(&'a self, name: &'a str, fresh: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>>> {
                    Box::pin(async move {
                        sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                            .bind(name)
                            .bind(fresh)
                            .execute(&self.pool)
                            .await?;
                        let row = sqlx::query("SELECT value FROM settings WHERE name = $1")
                            .bind(name)
                            .fetch_one(&self.pool)
                            .await?;
                        Ok(row.try_get("value")?)
                    })
                }

                fn account_by_email<'a>(&'a self, email: &'a str) -> BoxFuture<'a, Result<Option<AccountRow>>> {
                    Box::pin(async move {
                        sqlx::query("SELECT id, kind, email, display_name, password_hash, disabled_at, failed_sign_ins, last_failed_sign_in_at, password_breached_at FROM accounts WHERE email = $1")
                            .bind(email.trim().to_lowercase())
                            .fetch_optional(&self.pool)
                            .await?
                            .as_ref()
                            .map(account_row)
                            .transpose()
                    })
                }

                fn account(&self, id: AccountId) -> BoxFuture<'_, Result<Option<AccountRow>>> {
                    Box::pin(async move {
                        sqlx::query("SELECT id, kind, email, display_name, password_hash, disabled_at, failed_sign_ins, last_failed_sign_in_at, password_breached_at FROM accounts WHERE id = $1")
                            .bind(id.as_uuid())
                            .fetch_optional(&self.pool)
                            .await?
                            .as_ref()
                            .map(account_row)
                            .transpose()
                    })
                }

                fn active_operator_count(&self) -> BoxFuture<'_, Result<i64>> {
                    Box::pin(async move {
                        let row = sqlx::query(
                            "SELECT COUNT(*) FROM accounts WHERE kind = 'operator' AND password_hash IS NOT NULL AND disabled_at IS NULL",
                        )
                        .fetch_one(&self.pool)
                        .await?;
                        Ok(row.try_get(0)?)
                    })
                }

                fn create_operator<'a>(
                    &'a self,
                    _grant: &'a Grant<authz::ManageOperators>,
                    account: &'a NewAccount,
                    invite: &'a NewInvitation,
                ) -> BoxFuture<'a, Result<()>> {
                    Box::pin(async move {
                        let mut tx = self.begin().await?;
                        insert_account(&mut tx, account).await?;
                        insert_invitation(&mut tx, invite, Some(account.id)).await?;
                        tx.commit().await?;
                        Ok(())
                    })
                }

                fn create_practice<'a>(&'a self, _grant: &'a Grant<authz::ManagePractices>, p: &'a NewPractice) -> BoxFuture<'a, Result<()>> {
                    Box::pin(async move {
                        sqlx::query("INSERT INTO practices (id, name, hpi_facility_id, region, created_at) VALUES ($1, $2, $3, $4, $5)")
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

                fn list_practices<'a>(&'a self, _grant: &'a Grant<authz::ManagePractices>) -> BoxFuture<'a, Result<Vec<PracticeSummary>>> {
                    Box::pin(async move {
                        let rows = sqlx::query(
                            "SELECT p.id, p.name, p.hpi_facility_id, p.region, \
                               (SELECT COUNT(*) FROM staff s WHERE s.practice_id = p.id) AS staff_count, \
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
                             JOIN accounts a ON a.id = s.account_id WHERE s.practice_id = $1 ORDER BY a.display_name, a.email",
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

                fn staff_membership(&self, account: AccountId) -> BoxFuture<'_, Result<Option<(PracticeId, StaffRole)>>> {
                    Box::pin(async move {
                        let Some(r) = sqlx::query("SELECT practice_id, role FROM staff WHERE account_id = $1")
                            .bind(account.as_uuid())
                            .fetch_optional(&self.pool)
                            .await?
                        else {
                            return Ok(None);
                        };
                        Ok(Some((
                            PracticeId::from_uuid(r.try_get("practice_id")?),
                            staff_role(&r.try_get::<String, _>("role")?)?,
                        )))
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
                            // A second practice joins an existing record only when the identity it
                            // checked matches the record: an NHI alone opens nothing.
                            let stored_name: String = r.try_get("name")?;
                            let stored_dob: String = r.try_get("date_of_birth")?;
                            if stored_dob != p.date_of_birth.iso() || stored_name.to_lowercase() != p.name.as_str().to_lowercase() {
                                return Err(StoreError::Conflict("identity"));
                            }
                            let already = sqlx::query("SELECT 1 FROM enrolments WHERE patient_id = $1 AND practice_id = $2")
                                .bind(id)
                                .bind(practice)
                                .fetch_optional(&mut *tx)
                                .await?
                                .is_some();
                            if already {
                                Enrolled::AlreadyEnrolled(PatientId::from_uuid(id))
                            } else {
                                sqlx::query("INSERT INTO enrolments (patient_id, practice_id, enrolled_at, enrolled_by) VALUES ($1, $2, $3, $4)")
                                    .bind(id)
                                    .bind(practice)
                                    .bind(p.at)
                                    .bind(p.enrolled_by.map(|a| a.as_uuid()))
                                    .execute(&mut *tx)
                                    .await?;
                                Enrolled::Existing(PatientId::from_uuid(id))
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

                fn list_patients<'a>(&'a self, grant: &'a Grant<authz::ListPracticePatients>) -> BoxFuture<'a, Result<Vec<PatientRow>>> {
                    Box::pin(async move {
                        let rows = sqlx::query(
                            "SELECT p.id, p.account_id, p.nhi, p.name, p.date_of_birth, a.email, a.password_hash \
                             FROM enrolments e JOIN patients p ON p.id = e.patient_id JOIN accounts a ON a.id = p.account_id \
                             WHERE e.practice_id = $1 ORDER BY p.name, p.nhi",
                        )
                        .bind(grant.object().as_uuid())
                        .fetch_all(&self.pool)
                        .await?;
                        rows.iter().map(patient_row).collect()
                    })
                }

                fn patient<'a>(&'a self, grant: &'a Grant<authz::ViewPatient>) -> BoxFuture<'a, Result<PatientRow>> {
                    Box::pin(async move {
                        // The grant was made for this patient; for staff, the enrolment at their
                        // practice that it rests on is checked again here (defence in depth).
                        sqlx::query(
                            "SELECT p.id, p.account_id, p.nhi, p.name, p.date_of_birth, a.email, a.password_hash \
                             FROM patients p JOIN accounts a ON a.id = p.account_id \
                             WHERE p.id = $1 AND EXISTS (SELECT 1 FROM enrolments e WHERE e.patient_id = p.id \
                               AND (e.practice_id = $2 OR $3))",
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

                fn patient_account(&self, patient: PatientId) -> BoxFuture<'_, Result<AccountId>> {
                    Box::pin(async move {
                        let row = sqlx::query("SELECT account_id FROM patients WHERE id = $1")
                            .bind(patient.as_uuid())
                            .fetch_optional(&self.pool)
                            .await?
                            .ok_or(StoreError::NotFound)?;
                        Ok(AccountId::from_uuid(row.try_get("account_id")?))
                    })
                }

                fn replace_first_operator_invitation<'a>(&'a self, invite: &'a NewInvitation) -> BoxFuture<'a, Result<()>> {
                    Box::pin(async move {
                        let mut tx = self.begin().await?;
                        sqlx::query("DELETE FROM invitations WHERE purpose = 'first_operator' AND used_at IS NULL")
                            .execute(&mut *tx)
                            .await?;
                        insert_invitation(&mut tx, invite, None).await?;
                        tx.commit().await?;
                        Ok(())
                    })
                }

                fn invitation<'a>(&'a self, token_hash: &'a [u8], now: UnixTime) -> BoxFuture<'a, Result<InvitationView>> {
                    Box::pin(async move {
                        let Some(r) = sqlx::query("SELECT purpose, account_id, expires_at, used_at FROM invitations WHERE token_hash = $1")
                            .bind(token_hash)
                            .fetch_optional(&self.pool)
                            .await?
                        else {
                            return Err(StoreError::Invitation(InvitationState::Unknown));
                        };
                        if r.try_get::<Option<i64>, _>("used_at")?.is_some() {
                            return Err(StoreError::Invitation(InvitationState::Used));
                        }
                        if r.try_get::<i64, _>("expires_at")? <= now {
                            return Err(StoreError::Invitation(InvitationState::Expired));
                        }
                        let purpose = purpose(&r.try_get::<String, _>("purpose")?)?;
                        let account = match r.try_get::<Option<Uuid>, _>("account_id")? {
                            Some(id) => self.account(AccountId::from_uuid(id)).await?,
                            None => None,
                        };
                        Ok(InvitationView { purpose, account })
                    })
                }

                fn accept_invitation<'a>(&'a self, token_hash: &'a [u8], now: UnixTime, acceptance: &'a Acceptance) -> BoxFuture<'a, Result<AccountId>> {
                    Box::pin(async move {
                        let mut tx = self.begin().await?;
                        // Claim the link first: of two concurrent uses, only one updates a row.
                        let claimed = sqlx::query(
                            "UPDATE invitations SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
                             RETURNING id, purpose, account_id",
                        )
                        .bind(token_hash)
                        .bind(now)
                        .fetch_optional(&mut *tx)
                        .await?;
                        let Some(r) = claimed else {
                            drop(tx);
                            return match self.invitation(token_hash, now).await {
                                Err(e) => Err(e),
                                Ok(_) => Err(StoreError::Invitation(InvitationState::Used)),
                            };
                        };
                        let purpose = purpose(&r.try_get::<String, _>("purpose")?)?;
                        let account = match (purpose, r.try_get::<Option<Uuid>, _>("account_id")?, &acceptance.first_operator) {
                            (InvitationPurpose::FirstOperator, None, Some(new)) => {
                                insert_account(&mut tx, new).await?;
                                sqlx::query("UPDATE invitations SET account_id = $1 WHERE id = $2")
                                    .bind(new.id.as_uuid())
                                    .bind(r.try_get::<Uuid, _>("id")?)
                                    .execute(&mut *tx)
                                    .await?;
                                new.id
                            }
                            (InvitationPurpose::FirstOperator, _, _) => return Err(corrupt("first-operator acceptance")),
                            (_, Some(id), _) => AccountId::from_uuid(id),
                            (_, None, _) => return Err(corrupt("invitation without account")),
                        };
                        let updated = sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2 AND disabled_at IS NULL")
                            .bind(&acceptance.password_hash)
                            .bind(account.as_uuid())
                            .execute(&mut *tx)
                            .await?;
                        if updated.rows_affected() != 1 {
                            return Err(StoreError::NotFound);
                        }
                        // Any other unused link for this account dies with this one.
                        sqlx::query("UPDATE invitations SET used_at = $2 WHERE account_id = $1 AND used_at IS NULL")
                            .bind(account.as_uuid())
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                        tx.commit().await?;
                        Ok(account)
                    })
                }

                fn create_session<'a>(&'a self, s: &'a NewSession) -> BoxFuture<'a, Result<()>> {
                    Box::pin(async move {
                        sqlx::query(
                            "INSERT INTO sessions (id, token_hash, account_id, created_at, last_seen_at, absolute_expires_at, ip, user_agent, mfa_at, setup_ok_at, \
                             mfa_passkey) VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, $10)",
                        )
                        .bind(s.id.as_uuid())
                        .bind(&s.token_hash)
                        .bind(s.account.as_uuid())
                        .bind(s.created_at)
                        .bind(s.absolute_expires_at)
                        .bind(&s.ip)
                        .bind(&s.user_agent)
                        .bind(s.mfa_at)
                        .bind(s.setup_ok_at)
                        .bind(s.mfa_passkey)
                        .execute(&self.pool)
                        .await?;
                        Ok(())
                    })
                }

                fn live_session<'a>(&'a self, token_hash: &'a [u8], now: UnixTime, idle_cutoff: UnixTime) -> BoxFuture<'a, Result<Option<SessionRow>>> {
                    Box::pin(async move {
                        sqlx::query(
                            "SELECT s.id, s.account_id, s.created_at, s.last_seen_at, s.absolute_expires_at, s.ip, s.user_agent, s.mfa_at, s.setup_ok_at, \
                             s.mfa_passkey \
                             FROM sessions s JOIN accounts a ON a.id = s.account_id \
                             WHERE s.token_hash = $1 AND s.ended_at IS NULL AND s.absolute_expires_at > $2 \
                               AND s.last_seen_at > $3 AND a.disabled_at IS NULL",
                        )
                        .bind(token_hash)
                        .bind(now)
                        .bind(idle_cutoff)
                        .fetch_optional(&self.pool)
                        .await?
                        .as_ref()
                        .map(session_row)
                        .transpose()
                    })
                }

                fn session_subject<'a>(
                    &'a self,
                    token_hash: &'a [u8],
                    now: UnixTime,
                    idle_cutoff: UnixTime,
                    passkeys_flag: &'a str,
                ) -> BoxFuture<'a, Result<Option<SessionSubject>>> {
                    Box::pin(async move {
                        let Some(r) = sqlx::query(
                            "SELECT s.id, s.account_id, s.created_at, s.last_seen_at, s.absolute_expires_at, s.ip, s.user_agent, \
                             s.mfa_at, s.setup_ok_at, s.mfa_passkey, a.kind, a.display_name, a.password_breached_at, \
                             pt.id AS patient_id, st.practice_id AS staff_practice, st.role AS staff_role, \
                             EXISTS (SELECT 1 FROM enrolments e JOIN practices p ON p.id = e.practice_id \
                                     WHERE e.patient_id = pt.id AND p.patients_need_mfa) AS patient_must_use_mfa, \
                             (EXISTS (SELECT 1 FROM totp_factors t WHERE t.account_id = a.id AND t.confirmed_at IS NOT NULL) \
                              OR EXISTS (SELECT 1 FROM passkeys k WHERE k.account_id = a.id)) AS has_second_factor, \
                             EXISTS (SELECT 1 FROM settings g WHERE g.name = $4 AND g.value = $5) AS passkeys_required \
                             FROM sessions s JOIN accounts a ON a.id = s.account_id \
                             LEFT JOIN patients pt ON pt.account_id = a.id \
                             LEFT JOIN staff st ON st.account_id = a.id \
                             WHERE s.token_hash = $1 AND s.ended_at IS NULL AND s.absolute_expires_at > $2 \
                               AND s.last_seen_at > $3 AND a.disabled_at IS NULL",
                        )
                        .bind(token_hash)
                        .bind(now)
                        .bind(idle_cutoff)
                        .bind(passkeys_flag)
                        .bind(b"on".as_slice())
                        .fetch_optional(&self.pool)
                        .await?
                        else {
                            return Ok(None);
                        };
                        let staff = match r.try_get::<Option<Uuid>, _>("staff_practice")? {
                            Some(practice) => Some((
                                PracticeId::from_uuid(practice),
                                staff_role(&r.try_get::<String, _>("staff_role")?)?,
                            )),
                            None => None,
                        };
                        Ok(Some(SessionSubject {
                            session: session_row(&r)?,
                            kind: account_kind(&r.try_get::<String, _>("kind")?)?,
                            display_name: r.try_get("display_name")?,
                            password_breached_at: r.try_get("password_breached_at")?,
                            patient: r.try_get::<Option<Uuid>, _>("patient_id")?.map(PatientId::from_uuid),
                            staff,
                            patient_must_use_mfa: r.try_get("patient_must_use_mfa")?,
                            has_second_factor: r.try_get("has_second_factor")?,
                            passkeys_required: r.try_get("passkeys_required")?,
                        }))
                    })
                }

                fn touch_session(&self, id: SessionId, now: UnixTime) -> BoxFuture<'_, Result<()>> {
                    Box::pin(async move {
                        sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND ended_at IS NULL")
                            .bind(id.as_uuid())
                            .bind(now)
                            .execute(&self.pool)
                            .await?;
                        Ok(())
                    })
                }

                fn list_sessions(&self, account: AccountId, now: UnixTime, idle_cutoff: UnixTime) -> BoxFuture<'_, Result<Vec<SessionRow>>> {
                    Box::pin(async move {
                        let rows = sqlx::query(
                            "SELECT id, account_id, created_at, last_seen_at, absolute_expires_at, ip, user_agent, mfa_at, setup_ok_at, mfa_passkey \
                             FROM sessions \
                             WHERE account_id = $1 AND ended_at IS NULL AND absolute_expires_at > $2 AND last_seen_at > $3 \
                             ORDER BY last_seen_at DESC, created_at DESC",
                        )
                        .bind(account.as_uuid())
                        .bind(now)
                        .bind(idle_cutoff)
                        .fetch_all(&self.pool)
                        .await?;
                        rows.iter().map(session_row).collect()
                    })
                }

                fn end_session(&self, account: AccountId, session: SessionId, now: UnixTime) -> BoxFuture<'_, Result<bool>> {
                    Box::pin(async move {
                        let done = sqlx::query("UPDATE sessions SET ended_at = $3 WHERE id = $1 AND account_id = $2 AND ended_at IS NULL")
                            .bind(session.as_uuid())
                            .bind(account.as_uuid())
                            .bind(now)
                            .execute(&self.pool)
                            .await?;
                        Ok(done.rows_affected() == 1)
                    })
                }

                fn end_other_sessions(&self, account: AccountId, keep: Option<SessionId>, now: UnixTime) -> BoxFuture<'_, Result<u64>> {
                    Box::pin(async move {
                        // A nil id matches no session, so `keep = None` ends them all.
                        let keep = keep.map_or(Uuid::nil(), |k| k.as_uuid());
                        let done = sqlx::query("UPDATE sessions SET ended_at = $3 WHERE account_id = $1 AND id <> $2 AND ended_at IS NULL")
                            .bind(account.as_uuid())
                            .bind(keep)
                            .bind(now)
                            .execute(&self.pool)
                            .await?;
                        Ok(done.rows_affected())
                    })
                }

                fn enqueue_mail<'a>(&'a self, mail: &'a NewMail) -> BoxFuture<'a, Result<()>> {
                    Box::pin(async move {
                        let mut tx = self.begin().await?;
                        insert_mail(&mut tx, mail).await?;
                        tx.commit().await?;
                        Ok(())
                    })
                }

                fn claim_mail(&self, now: UnixTime, lease_until: UnixTime, limit: i64) -> BoxFuture<'_, Result<Vec<MailRow>>> {
                    Box::pin(async move {
                        let mut tx = self.begin().await?;
                        let ids: Vec<Uuid> = sqlx::query(
                            "SELECT id FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= $1 \
                             AND (lease_until IS NULL OR lease_until <= $1) ORDER BY next_attempt_at, created_at LIMIT $2",
                        )
                        .bind(now)
                        .bind(limit)
                        .fetch_all(&mut *tx)
                        .await?
                        .iter()
                        .map(|r| r.try_get::<Uuid, _>("id"))
                        .collect::<Result<_, _>>()?;
                        let mut claimed = Vec::with_capacity(ids.len());
                        for id in ids {
                            // The lease condition is re-checked in the UPDATE, so a row claimed by
                            // another node in between is skipped rather than sent twice.
                            let row = sqlx::query(
                                "UPDATE outbox SET lease_until = $2, attempts = attempts + 1 \
                                 WHERE id = $1 AND sent_at IS NULL AND (lease_until IS NULL OR lease_until <= $3) \
                                 RETURNING id, recipient, subject, body, attempts",
                            )
                            .bind(id)
                            .bind(lease_until)
                            .bind(now)
                            .fetch_optional(&mut *tx)
                            .await?;
                            if let Some(r) = row {
                                claimed.push(MailRow {
                                    id: r.try_get("id")?,
                                    recipient: r.try_get("recipient")?,
                                    subject: r.try_get("subject")?,
                                    body: r.try_get("body")?,
                                    attempts: i64::from(r.try_get::<i32, _>("attempts")?),
                                });
                            }
                        }
                        tx.commit().await?;
                        Ok(claimed)
                    })
                }

                fn mail_sent(&self, id: Uuid, now: UnixTime) -> BoxFuture<'_, Result<()>> {
                    Box::pin(async move {
                        sqlx::query("UPDATE outbox SET sent_at = $2, body = '', lease_until = NULL, last_error = NULL WHERE id = $1")
                            .bind(id)
                            .bind(now)
                            .execute(&self.pool)
                            .await?;
                        Ok(())
                    })
                }

                fn mail_failed<'a>(&'a self, id: Uuid, next_attempt_at: UnixTime, error: &'a str) -> BoxFuture<'a, Result<()>> {
                    Box::pin(async move {
                        sqlx::query("UPDATE outbox SET next_attempt_at = $2, lease_until = NULL, last_error = $3 WHERE id = $1")
                            .bind(id)
                            .bind(next_attempt_at)
                            .bind(error)
                            .execute(&self.pool)
                            .await?;
                        Ok(())
                    })
                }

                fn append_audit_events<'a>(&'a self, events: &'a [AuditEvent]) -> BoxFuture<'a, Result<()>> {
                    Box::pin(async move {
                        // Under the append lock (SQLite's write lock; a table lock on PostgreSQL),
                        // so the numbering is gap-free and single across nodes.
                        let (mut tx, mut seq) = self.begin_audit_append().await?;
                        // Multi-row INSERTs: per-statement overhead, not rows, dominates. 19
                        // parameters a row keeps 100 rows well inside both engines' limits.
                        for chunk in events.chunks(100) {
                            let mut q = sqlx::QueryBuilder::<$db>::new(
                                "INSERT INTO audit_events (seq, id, at_ms, actor_account, actor_role, actor_practice, session_id, ip, \
                                 user_agent, on_behalf, action, object_type, object_id, patient_id, practice_id, outcome, request_id, module, format) ",
                            );
                            q.push_values(chunk, |mut b, e| {
                                b.push_bind(seq)
                                    .push_bind(e.id.as_str())
                                    .push_bind(e.at_ms)
                                    .push_bind(e.actor_account.as_deref())
                                    .push_bind(e.actor_role.as_str())
                                    .push_bind(e.actor_practice.as_deref())
                                    .push_bind(e.session.as_deref())
                                    .push_bind(e.ip.as_str())
                                    .push_bind(e.user_agent.as_str())
                                    .push_bind(e.on_behalf.as_deref())
                                    .push_bind(e.action.as_str())
                                    .push_bind(e.object_type.as_str())
                                    .push_bind(e.object_id.as_str())
                                    .push_bind(e.patient.as_deref())
                                    .push_bind(e.practice.as_deref())
                                    .push_bind(e.outcome.as_str())
                                    .push_bind(e.request_id.as_str())
                                    .push_bind(e.module.as_str())
                                    .push_bind(i16::from(if e.format == 0 { audit::event::FORMAT_V2 } else { e.format }));
                                seq += 1;
                            });
                            q.build().execute(&mut *tx).await?;
                        }
                        tx.commit().await?;
                        Ok(())
                    })
                }

                fn take_lease<'a>(&'a self, name: &'a str, holder: &'a str, now: UnixTime, until: UnixTime) -> BoxFuture<'a, Result<bool>> {
                    Box::pin(async move {
                        let done = sqlx::query(
                            "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $4) \
                             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
                             WHERE leases.until < $3 OR leases.holder = excluded.holder",
                        )
                        .bind(name)
                        .bind(holder)
                        .bind(now)
                        .bind(until)
                        .execute(&self.pool)
                        .await?;
                        Ok(done.rows_affected() == 1)
                    })
                }

                fn sequence_audit(&self, limit: i64) -> BoxFuture<'_, Result<(u64, [u8; 32])>> {
                    Box::pin(async move {
                        let mut tx = self.begin().await?;
                        let size: i64 = sqlx::query(TREE_SIZE).fetch_one(&mut *tx).await?.try_get(0)?;
                        let size = to_u64(size)?;
                        let mut frontier = Vec::new();
                        for (level, idx) in audit::merkle::frontier_levels(size) {
                            let row = sqlx::query("SELECT hash FROM audit_nodes WHERE level = $1 AND idx = $2")
                                .bind(i32::try_from(level).map_err(|_| corrupt("level"))?)
                                .bind(to_i64(idx)?)
                                .fetch_optional(&mut *tx)
                                .await?
                                .ok_or_else(|| corrupt("a node of the tree's right edge is missing"))?;
                            frontier.push(hash32(row.try_get("hash")?)?);
                        }
                        let mut acc = audit::merkle::Accumulator::from_frontier(size, &frontier).map_err(corrupt)?;
                        let rows = sqlx::query(
                            "SELECT seq, id, at_ms, actor_account, actor_role, actor_practice, session_id, ip, user_agent, on_behalf, \
                             action, object_type, object_id, patient_id, practice_id, outcome, request_id, module, format \
                             FROM audit_events WHERE seq >= $1 ORDER BY seq LIMIT $2",
                        )
                        .bind(to_i64(size)?)
                        .bind(limit)
                        .fetch_all(&mut *tx)
                        .await?;
                        let mut nodes: Vec<(i32, i64, [u8; 32])> = Vec::with_capacity(rows.len() * 2);
                        let mut filed: Vec<(String, i64, i64)> = Vec::with_capacity(rows.len());
                        for r in &rows {
                            let event = event_row(r)?;
                            let seq = acc.size();
                            if to_u64(r.try_get("seq")?)? != seq {
                                return Err(corrupt("an event is missing before the end of the log"));
                            }
                            let leaf = event.leaf_hash();
                            let completed = acc.push(leaf);
                            for (level, idx, hash) in std::iter::once((0, seq, leaf)).chain(completed) {
                                nodes.push((i32::try_from(level).map_err(|_| corrupt("level"))?, to_i64(idx)?, hash));
                            }
                            if let Some(patient) = event.patient {
                                filed.push((patient, event.at_ms, to_i64(seq)?));
                            }
                        }
                        for chunk in nodes.chunks(300) {
                            let mut q = sqlx::QueryBuilder::<$db>::new("INSERT INTO audit_nodes (level, idx, hash) ");
                            q.push_values(chunk, |mut b, (level, idx, hash)| {
                                b.push_bind(*level).push_bind(*idx).push_bind(hash.to_vec());
                            });
                            q.build().execute(&mut *tx).await?;
                        }
                        // Filed in key order, so neighbouring entries share pages.
                        filed.sort_unstable();
                        for chunk in filed.chunks(300) {
                            let mut q = sqlx::QueryBuilder::<$db>::new("INSERT INTO audit_by_patient (patient_id, at_ms, seq) ");
                            q.push_values(chunk, |mut b, (patient, at_ms, seq)| {
                                b.push_bind(patient.as_str()).push_bind(*at_ms).push_bind(*seq);
                            });
                            q.build().execute(&mut *tx).await?;
                        }
                        tx.commit().await?;
                        Ok((acc.size(), acc.root()))
                    })
                }

                fn audit_tree_size(&self) -> BoxFuture<'_, Result<u64>> {
                    Box::pin(async move {
                        let size: i64 = sqlx::query(TREE_SIZE).fetch_one(&self.pool).await?.try_get(0)?;
                        to_u64(size)
                    })
                }

                fn unsequenced_audit_count(&self) -> BoxFuture<'_, Result<u64>> {
                    Box::pin(async move {
                        let n: i64 = sqlx::query(
                            concat!("SELECT COUNT(*) FROM audit_events WHERE seq >= (", tree_size!(), ")"),
                        )
                            .fetch_one(&self.pool)
                            .await?
                            .try_get(0)?;
                        to_u64(n)
                    })
                }

                fn audit_node_range(&self, level: u32, from: u64, to: u64) -> BoxFuture<'_, Result<Vec<IndexedHash>>> {
                    Box::pin(async move {
                        let rows = sqlx::query("SELECT idx, hash FROM audit_nodes WHERE level = $1 AND idx >= $2 AND idx < $3 ORDER BY idx")
                            .bind(i32::try_from(level).map_err(|_| corrupt("level"))?)
                            .bind(to_i64(from)?)
                            .bind(to_i64(to)?)
                            .fetch_all(&self.pool)
                            .await?;
                        rows.iter().map(|r| Ok((to_u64(r.try_get("idx")?)?, hash32(r.try_get("hash")?)?))).collect()
                    })
                }

                fn audit_nodes<'a>(&'a self, keys: &'a [(u32, u64)]) -> BoxFuture<'a, Result<Vec<[u8; 32]>>> {
                    Box::pin(async move {
                        let mut out = Vec::with_capacity(keys.len());
                        for (level, idx) in keys {
                            let row = sqlx::query("SELECT hash FROM audit_nodes WHERE level = $1 AND idx = $2")
                                .bind(i32::try_from(*level).map_err(|_| corrupt("level"))?)
                                .bind(to_i64(*idx)?)
                                .fetch_optional(&self.pool)
                                .await?
                                .ok_or(StoreError::NotFound)?;
                            out.push(hash32(row.try_get("hash")?)?);
                        }
                        Ok(out)
                    })
                }

                fn add_checkpoint<'a>(&'a self, c: &'a CheckpointRow) -> BoxFuture<'a, Result<()>> {
                    Box::pin(async move {
                        sqlx::query("INSERT INTO audit_checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (size) DO NOTHING")
                            .bind(to_i64(c.size)?)
                            .bind(&c.root)
                            .bind(&c.note)
                            .bind(c.created_at)
                            .execute(&self.pool)
                            .await?;
                        Ok(())
                    })
                }

                fn checkpoints(&self) -> BoxFuture<'_, Result<Vec<CheckpointRow>>> {
                    Box::pin(async move {
                        let rows = sqlx::query("SELECT size, root, note, created_at FROM audit_checkpoints ORDER BY size")
                            .fetch_all(&self.pool)
                            .await?;
                        rows.iter().map(checkpoint_row).collect()
                    })
                }

                fn latest_checkpoint(&self) -> BoxFuture<'_, Result<Option<CheckpointRow>>> {
                    Box::pin(async move {
                        sqlx::query("SELECT size, root, note, created_at FROM audit_checkpoints ORDER BY size DESC LIMIT 1")
                            .fetch_optional(&self.pool)
                            .await?
                            .as_ref()
                            .map(checkpoint_row)
                            .transpose()
                    })
                }

                fn checkpoint_at(&self, size: u64) -> BoxFuture<'_, Result<Option<CheckpointRow>>> {
                    Box::pin(async move {
                        sqlx::query("SELECT size, root, note, created_at FROM audit_checkpoints WHERE size = $1")
                            .bind(to_i64(size)?)
                            .fetch_optional(&self.pool)
                            .await?
                            .as_ref()
                            .map(checkpoint_row)
                            .transpose()
                    })
                }

                fn add_cosignature<'a>(&'a self, c: &'a CosignatureRow, now: UnixTime) -> BoxFuture<'a, Result<()>> {
                    Box::pin(async move {
                        sqlx::query(
                            "INSERT INTO audit_cosignatures (checkpoint_size, witness, signature_line, signed_at, received_at) \
                             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (checkpoint_size, witness) DO UPDATE \
                             SET signature_line = excluded.signature_line, signed_at = excluded.signed_at, received_at = excluded.received_at",
                        )
                        .bind(to_i64(c.checkpoint_size)?)
                        .bind(&c.witness)
                        .bind(&c.signature_line)
                        .bind(c.signed_at)
                        .bind(now)
                        .execute(&self.pool)
                        .await?;
                        Ok(())
                    })
                }

                fn cosignatures(&self) -> BoxFuture<'_, Result<Vec<CosignatureRow>>> {
                    Box::pin(async move {
                        let rows = sqlx::query(
                            "SELECT checkpoint_size, witness, signature_line, signed_at FROM audit_cosignatures ORDER BY checkpoint_size, witness",
                        )
                        .fetch_all(&self.pool)
                        .await?;
                        rows.iter()
                            .map(|r| {
                                Ok(CosignatureRow {
                                    checkpoint_size: to_u64(r.try_get("checkpoint_size")?)?,
                                    witness: r.try_get("witness")?,
                                    signature_line: r.try_get("signature_line")?,
                                    signed_at: r.try_get("signed_at")?,
                                })
                            })
                            .collect()
                    })
                }

                fn sequenced_events(&self, from: u64, limit: i64) -> BoxFuture<'_, Result<Vec<SequencedEvent>>> {
                    Box::pin(async move {
                        let rows = sqlx::query(concat!(
                            "SELECT seq, id, at_ms, actor_account, actor_role, actor_practice, session_id, ip, user_agent, \
                             on_behalf, action, object_type, object_id, patient_id, practice_id, outcome, request_id, module, format FROM audit_events \
                             WHERE seq >= $1 AND seq < (",
                            tree_size!(),
                            ") ORDER BY seq LIMIT $2",
                        ))
                        .bind(to_i64(from)?)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?;
                        rows.iter()
                            .map(|r| {
                                Ok(SequencedEvent {
                                    seq: to_u64(r.try_get("seq")?)?,
                                    event: event_row(r)?,
                                })
                            })
                            .collect()
                    })
                }

                fn audit_seq_of<'a>(&'a self, event_id: &'a str) -> BoxFuture<'a, Result<Option<u64>>> {
                    Box::pin(async move {
                        let row = sqlx::query(
                            "SELECT n.idx AS seq FROM audit_events e LEFT JOIN audit_nodes n ON n.level = 0 AND n.idx = e.seq WHERE e.id = $1",
                        )
                        .bind(event_id)
                        .fetch_optional(&self.pool)
                        .await?;
                        match row {
                            Some(r) => r.try_get::<Option<i64>, _>("seq")?.map(to_u64).transpose(),
                            None => Err(StoreError::NotFound),
                        }
                    })
                }

                fn first_audit_seq_since(&self, at_ms: i64) -> BoxFuture<'_, Result<Option<u64>>> {
                    Box::pin(async move {
                        let row = sqlx::query("SELECT seq FROM audit_events WHERE at_ms >= $1 ORDER BY seq LIMIT 1")
                            .bind(at_ms)
                            .fetch_optional(&self.pool)
                            .await?;
                        row.map(|r| to_u64(r.try_get("seq")?)).transpose()
                    })
                }

                fn prune_audit(&self, below: u64, cutoff_ms: i64, now: UnixTime) -> BoxFuture<'_, Result<u64>> {
                    Box::pin(async move {
                        let below = to_i64(below)?;
                        let mut tx = self.begin().await?;
                        let young: i64 = sqlx::query("SELECT COUNT(*) FROM audit_events WHERE seq < $1 AND at_ms >= $2")
                            .bind(below)
                            .bind(cutoff_ms)
                            .fetch_one(&mut *tx)
                            .await?
                            .try_get(0)?;
                        if young > 0 {
                            return Err(StoreError::Conflict("an event to be removed is younger than the retention period"));
                        }
                        sqlx::query("DELETE FROM audit_by_patient WHERE seq < $1").bind(below).execute(&mut *tx).await?;
                        let gone = sqlx::query("DELETE FROM audit_events WHERE seq < $1").bind(below).execute(&mut *tx).await?;
                        sqlx::query(
                            "INSERT INTO audit_pruned (singleton, below, cutoff_ms, pruned_at) VALUES (1, $1, $2, $3) \
                             ON CONFLICT (singleton) DO UPDATE SET below = excluded.below, cutoff_ms = excluded.cutoff_ms, pruned_at = excluded.pruned_at",
                        )
                        .bind(below)
                        .bind(cutoff_ms)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                        tx.commit().await?;
                        Ok(gone.rows_affected())
                    })
                }

                fn audit_pruned(&self) -> BoxFuture<'_, Result<Option<(u64, i64)>>> {
                    Box::pin(async move {
                        let row = sqlx::query("SELECT below, cutoff_ms FROM audit_pruned WHERE singleton = 1")
                            .fetch_optional(&self.pool)
                            .await?;
                        row.map(|r| Ok((to_u64(r.try_get("below")?)?, r.try_get("cutoff_ms")?))).transpose()
                    })
                }

                fn patient_history<'a>(
                    &'a self,
                    grant: &'a Grant<authz::ViewAccessHistory>,
                    f: &'a HistoryFilter,
                ) -> BoxFuture<'a, Result<Vec<HistoryRow>>> {
                    Box::pin(async move {
                        // Module filters are a short fixed list chosen by the application; they
                        // are bound, never spliced.
                        let types: Vec<String> = f.modules.clone();
                        let all = types.is_empty();
                        let pad = |i: usize| types.get(i).cloned().unwrap_or_default();
                        // Filed events through the patient index; the few newer than the tree
                        // (not filed yet) by a scan of the log's end.
                        let rows = sqlx::query(concat!(
                            "SELECT n.idx AS seq, e.id, e.at_ms, e.actor_account, e.actor_role, e.actor_practice, e.session_id, e.ip, \
                             e.user_agent, e.on_behalf, e.action, e.object_type, e.object_id, e.patient_id, e.practice_id, e.outcome, e.request_id, e.module, e.format \
                             FROM audit_events e LEFT JOIN audit_nodes n ON n.level = 0 AND n.idx = e.seq \
                             WHERE e.seq IN ( \
                                 SELECT p.seq FROM audit_by_patient p WHERE p.patient_id = $1 AND p.at_ms >= $2 AND p.at_ms < $3 \
                                 UNION ALL \
                                 SELECT t.seq FROM audit_events t WHERE t.seq >= (",
                            tree_size!(),
                            ") AND t.patient_id = $1 AND t.at_ms >= $2 AND t.at_ms < $3) \
                             AND ($4 OR e.module IN ($5, $6, $7, $8)) ORDER BY e.at_ms DESC, e.id DESC LIMIT $9",
                        ))
                        .bind(grant.object().to_string())
                        .bind(f.from_ms)
                        .bind(f.to_ms)
                        .bind(all)
                        .bind(pad(0))
                        .bind(pad(1))
                        .bind(pad(2))
                        .bind(pad(3))
                        .bind(f.limit)
                        .fetch_all(&self.pool)
                        .await?;
                        rows.iter()
                            .map(|r| {
                                Ok(HistoryRow {
                                    event: event_row(r)?,
                                    seq: r.try_get::<Option<i64>, _>("seq")?.map(to_u64).transpose()?,
                                    actor_name: None,
                                    practice_name: None,
                                })
                            })
                            .collect()
                    })
                }

                fn audit_range<'a>(&'a self, _grant: &'a Grant<authz::ExportAudit>, from_ms: i64, to_ms: i64, limit: i64) -> BoxFuture<'a, Result<Vec<AuditEvent>>> {
                    Box::pin(async move {
                        let rows = sqlx::query(
                            "SELECT id, at_ms, actor_account, actor_role, actor_practice, session_id, ip, user_agent, on_behalf, \
                             action, object_type, object_id, patient_id, practice_id, outcome, request_id, module, format \
                             FROM audit_events WHERE at_ms >= $1 AND at_ms < $2 ORDER BY at_ms, id LIMIT $3",
                        )
                        .bind(from_ms)
                        .bind(to_ms)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?;
                        rows.iter().map(event_row).collect()
                    })
                }

                fn pending_mail_count(&self) -> BoxFuture<'_, Result<i64>> {
                    Box::pin(async move {
                        let row = sqlx::query("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetch_one(&self.pool).await?;
                        Ok(row.try_get(0)?)
                    })
                }
            }
        };
    };
}

portable_store!(crate::SqliteStore, sqlx::Sqlite);
portable_store!(crate::PgStore, sqlx::Postgres);

impl crate::SqliteStore {
    const BACKEND: crate::Backend = crate::Backend::Sqlite;
}
impl crate::PgStore {
    const BACKEND: crate::Backend = crate::Backend::Postgres;
}
