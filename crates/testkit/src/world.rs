//! The world a test starts from: practices, staff, patients, an operator and organisations'
//! systems (every role of `ROLES`), and the mail sink (the outbox) tests read links from.

use crate::*;
use anyhow::{Result, anyhow};
use app::domain::{PatientId, PracticeId, SessionId, StaffRole};
use app::{EnrolForm, InviteStaffForm, PracticeForm, Principal};
use axum::http::StatusCode;
use sqlx::Connection;

/// Two practices, staff at each, a patient at each, and an operator, all with passwords.
pub struct World {
    pub t: TestApp,
    pub practice_a: PracticeId,
    pub practice_b: PracticeId,
    pub patient1: PatientId,
    pub patient2: PatientId,
    /// Practice A's system's API token (records and appointments scopes).
    pub client_a: String,
    /// A discharge summary practice A pushed for patient 1.
    pub letter1: app::domain::DocumentId,
}

pub async fn practice(t: &TestApp, name: &str, hpi: &str, admin_email: &str) -> Result<PracticeId> {
    let (id, link) = t
        .app
        .console()
        .create_practice(&PracticeForm {
            name: name.into(),
            hpi_facility_id: hpi.into(),
            region: "Northland".into(),
            admin_name: "Admin Person".into(),
            admin_email: admin_email.into(),
        })
        .await
        .map_err(|e| anyhow!("{e:?}"))?;
    t.app.console().set_password_by_link(&link, PASSWORD, PASSWORD, None, None).await.map_err(|e| anyhow!("{e:?}"))?;
    fixture_totp(t, admin_email).await?;
    Ok(id)
}

pub async fn staff(t: &TestApp, practice: PracticeId, email: &str, role: StaffRole) -> Result<()> {
    let link = t
        .app
        .console()
        .invite_staff(
            practice,
            &InviteStaffForm { name: "Staff Person".into(), email: email.into(), role: role.as_str().into() },
        )
        .await
        .map_err(|e| anyhow!("{e:?}"))?;
    t.app.console().set_password_by_link(&link, PASSWORD, PASSWORD, None, None).await.map_err(|e| anyhow!("{e:?}"))?;
    fixture_totp(t, email).await?;
    Ok(())
}

/// The practice's (first) admin, as a caller.
pub(crate) async fn as_admin(t: &TestApp, practice: PracticeId) -> Result<app::Caller> {
    let account = admin_of(t, practice).await?;
    Ok(app::Caller::console(Principal::Staff {
        account,
        session: SessionId::random(),
        practice,
        role: StaffRole::Admin,
    }))
}

/// The details every fixture patient is enrolled with.
fn fixture_patient(nhi: &str, email: &str) -> EnrolForm {
    EnrolForm { nhi: nhi.into(), name: "Pat Ient".into(), date_of_birth: "1980-05-06".into(), email: email.into() }
}

/// Enrols a patient as the practice's (first) admin; returns their id and activation link.
pub async fn enrol(t: &TestApp, practice: PracticeId, nhi: &str, email: &str) -> Result<(PatientId, String)> {
    enrol_born(t, practice, nhi, email, "1980-05-06").await
}

/// Enrols a patient born on `dob` (`YYYY-MM-DD`), as [`enrol`] does.
pub async fn enrol_born(
    t: &TestApp,
    practice: PracticeId,
    nhi: &str,
    email: &str,
    dob: &str,
) -> Result<(PatientId, String)> {
    let form = EnrolForm { date_of_birth: dob.into(), ..fixture_patient(nhi, email) };
    let (outcome, link) = t
        .app
        .console()
        .enrol_with_link(&as_admin(t, practice).await?, practice, &form)
        .await
        .map_err(|e| anyhow!("{e:?}"))?;
    let id = match outcome {
        app::Enrolled::New(id) | app::Enrolled::AlreadyEnrolled(id) => id,
        app::Enrolled::AwaitingConfirmation => {
            return Err(anyhow!("{nhi} already has an account: use `rejoin`, which has the patient accept"));
        }
    };
    Ok((id, link))
}

/// Enrols an existing patient at a practice as its admin (a request), and has the patient
/// accept it, as they would on their page (nothing when they are enrolled there already).
pub async fn rejoin(t: &TestApp, practice: PracticeId, patient: PatientId, nhi: &str) -> Result<()> {
    rejoin_born(t, practice, patient, nhi, "1980-05-06").await
}

/// As [`rejoin`], for a patient born on `dob`.
pub async fn rejoin_born(t: &TestApp, practice: PracticeId, patient: PatientId, nhi: &str, dob: &str) -> Result<()> {
    let form = EnrolForm { date_of_birth: dob.into(), ..fixture_patient(nhi, "ignored@example.nz") };
    let outcome =
        t.app.practices().enrol(&as_admin(t, practice).await?, practice, &form).await.map_err(|e| anyhow!("{e:?}"))?;
    match outcome {
        app::Enrolled::AwaitingConfirmation => {}
        app::Enrolled::AlreadyEnrolled(_) => return Ok(()),
        app::Enrolled::New(_) => return Err(anyhow!("{nhi} was not registered")),
    }
    let sql = "SELECT account_id FROM patients WHERE id = $1";
    let account: uuid::Uuid = if t.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&t.url).await?;
        sqlx::query_scalar(sql).bind(patient.as_uuid()).fetch_one(&mut c).await?
    } else {
        let mut c = sqlx::PgConnection::connect(&t.url).await?;
        sqlx::query_scalar(sql).bind(patient.as_uuid()).fetch_one(&mut c).await?
    };
    let account = app::domain::AccountId::from_uuid(account);
    let me = Principal::Patient { account, session: SessionId::random(), patient };
    t.app
        .practices()
        .answer_enrolment_request(&app::Caller::console(me), practice, "accept")
        .await
        .map(|_| ())
        .map_err(|e| anyhow!("{e:?}"))
}

pub async fn admin_of(t: &TestApp, practice: PracticeId) -> Result<app::domain::AccountId> {
    let probe = Principal::Staff {
        account: app::domain::AccountId::random(),
        session: SessionId::random(),
        practice,
        role: StaffRole::Admin,
    };
    let staff =
        t.app.practices().list_staff(&app::Caller::console(probe), practice).await.map_err(|e| anyhow!("{e:?}"))?;
    staff.iter().find(|s| s.role == StaffRole::Admin).map(|s| s.account).ok_or_else(|| anyhow!("no admin"))
}

impl World {
    pub async fn new() -> Result<Self> {
        Self::with_limits(16 * 1024 * 1024, 200 * 1024 * 1024).await
    }

    pub async fn with_limits(max_document_bytes: i64, patient_quota_bytes: i64) -> Result<Self> {
        Self::on(TestApp::with_limits(max_document_bytes, patient_quota_bytes).await?).await
    }

    /// The world on a portal built as the test needs (`TestApp::builder()…build()`).
    pub async fn on(t: TestApp) -> Result<Self> {
        let practice_a = practice(&t, "Practice A", "FAA111-A", "admin-a@example.nz").await?;
        let practice_b = practice(&t, "Practice B", "FBB222-B", "admin-b@example.nz").await?;
        staff(&t, practice_a, "gp-a@example.nz", StaffRole::Gp).await?;
        let (patient1, l1) = enrol(&t, practice_a, "ZZZ0016", "p1@example.nz").await?;
        let (patient2, l2) = enrol(&t, practice_b, "ZBN77VL", "p2@example.nz").await?;
        for l in [l1, l2] {
            t.app
                .console()
                .set_password_by_link(&l, PASSWORD, PASSWORD, None, None)
                .await
                .map_err(|e| anyhow!("{e:?}"))?;
        }
        let op = t.app.console().create_operator("Op Erator", "op@example.nz").await.map_err(|e| anyhow!("{e:?}"))?;
        t.app
            .console()
            .set_password_by_link(&op, PASSWORD, PASSWORD, None, None)
            .await
            .map_err(|e| anyhow!("{e:?}"))?;
        fixture_totp(&t, "op@example.nz").await?;
        let (row_a, client_a) = t
            .app
            .console()
            .create_client("Practice A PMS", "", "Practice A", Some("FAA111-A"))
            .await
            .map_err(|e| anyhow!("{e:?}"))?;
        // Practice A's system also sends its health records.
        t.app.console().set_client_records(row_a.id, true).await.map_err(|e| anyhow!("{e:?}"))?;
        t.app.console().set_client_appointments(row_a.id, true).await.map_err(|e| anyhow!("{e:?}"))?;
        let r = push(&t, &client_a, &push_meta("ZZZ0016", "letter-1"), &pdf("letter one", 3000)).await?;
        if r.status != StatusCode::CREATED {
            return Err(anyhow!("the fixture letter was not pushed: {} {}", r.status, r.body));
        }
        let letter1 = r
            .body
            .split("\"id\":\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("no id in {}", r.body))?;
        Ok(Self { t, practice_a, practice_b, patient1, patient2, client_a, letter1 })
    }

    pub async fn operator(&self) -> Result<Browser> {
        self.signed_in("op@example.nz", [127, 0, 0, 9]).await
    }

    /// Signs in with the password and, when asked, the fixture authenticator's code (the clock
    /// moves on a step first: each step is accepted once).
    pub async fn signed_in(&self, email: &str, ip: [u8; 4]) -> Result<Browser> {
        let mut b = self.t.browser(ip);
        let r = b.sign_in(email, PASSWORD).await?;
        if r.status != StatusCode::SEE_OTHER {
            return Err(anyhow!("{email} could not sign in: {}", r.status));
        }
        if r.location() == "/signin/verify" {
            self.t.clock.advance(30);
            let code = totp_code(FIXTURE_TOTP, app::domain::Clock::now(&self.t.clock));
            let r = b.post("/signin/verify", &[("code", &code)]).await?;
            if r.status != StatusCode::SEE_OTHER {
                return Err(anyhow!("{email} could not pass the second factor: {} {}", r.status, r.body));
            }
            let home = r.location().to_owned();
            b.get(&home).await?;
        }
        Ok(b)
    }
}

/// The code in an email body (`ABCD-EFGH-JKMN-PQRS`, on a line of its own), if it has one.
pub fn code_in(body: &str) -> Option<String> {
    body.lines()
        .map(str::trim)
        .find(|l| {
            l.len() == 19
                && l.char_indices()
                    .all(|(i, c)| if i % 5 == 4 { c == '-' } else { c.is_ascii_digit() || c.is_ascii_uppercase() })
        })
        .map(str::to_owned)
}

/// The code in the newest email whose subject is `subject`.
pub async fn latest_code(t: &TestApp, subject: &str) -> Result<String> {
    let rows = outbox_rows(t).await?;
    rows.iter()
        .filter(|(_, s, _)| s == subject)
        .find_map(|(_, _, b)| code_in(b))
        .ok_or_else(|| anyhow!("no email \"{subject}\" with a code was sent"))
}

/// The code in the newest email to `to` that carries one.
pub async fn latest_code_to(t: &TestApp, to: &str) -> Result<String> {
    let rows = outbox_rows(t).await?;
    rows.iter()
        .filter(|(r, _, _)| r.eq_ignore_ascii_case(to))
        .find_map(|(_, _, b)| code_in(b))
        .ok_or_else(|| anyhow!("no code was emailed to {to}"))
}

/// Every email in the outbox, newest first: recipient, subject and body.
pub async fn outbox_rows(t: &TestApp) -> Result<Vec<(String, String, String)>> {
    let sql = "SELECT recipient, subject, body FROM outbox ORDER BY created_at DESC";
    Ok(if t.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&t.url).await?;
        sqlx::query_as(sql).fetch_all(&mut c).await?
    } else {
        let mut c = sqlx::PgConnection::connect(&t.url).await?;
        sqlx::query_as(sql).fetch_all(&mut c).await?
    })
}

pub async fn subjects(t: &TestApp) -> Result<Vec<String>> {
    if t.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&t.url).await?;
        Ok(sqlx::query_scalar("SELECT subject FROM outbox").fetch_all(&mut c).await?)
    } else {
        let mut c = sqlx::PgConnection::connect(&t.url).await?;
        Ok(sqlx::query_scalar("SELECT subject FROM outbox").fetch_all(&mut c).await?)
    }
}

/// Lists a password on the test app's breached-password list (as an operator's HIBP file would).
pub fn list_as_breached(t: &TestApp, password: &str) -> Result<()> {
    use std::io::Write;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes());
    let hash = hex::encode_upper(digest.as_ref());
    let path = t.data_dir.join("breached.txt");
    let mut lines: Vec<String> = std::fs::read_to_string(&path)?.lines().map(str::to_owned).collect();
    lines.push(format!("{hash}:42"));
    lines.sort();
    let mut f = std::fs::File::create(&path)?;
    for l in lines {
        writeln!(f, "{l}")?;
    }
    Ok(())
}

/// Every role the portal knows, in the order the cells are tried (state-changing routes act on
/// one shared object, so the order matters: reception and the privacy officer try to withdraw
/// the letter before the nurse does). Proxies and break-glass join this list with their issues.
pub const ROLES: [&str; 20] = [
    "anonymous",
    "patient",
    "other_patient",
    "reception",
    "privacy_officer",
    "unverified_staff",
    "other_practice_staff",
    "operator",
    "practice_client",
    "other_practice_client",
    "hospital_client",
    "nurse",
    "gp",
    // The patient's practice's admin is reception (role `admin`); listed above.
    "other_practice_admin",
    // People acting for patient 1, each with the session switched to patient 1's record: a
    // carer whose live link has the appointments and prescriptions scopes; one whose live link
    // has only the messages scope; one whose link has expired; one whose link set up for a
    // child has passed the practice's cut-off age; one whose link patient 1 revoked.
    "proxy",
    "proxy_without_scope",
    "expired_proxy",
    "aged_out_proxy",
    "revoked_proxy",
    // Someone practice A invited by email to act for patient 1 (a live link), with no record
    // of their own here, whose session is on nobody: until they switch, no one's patient.
    "invited_carer",
];

/// The invited carer's email.
pub const INVITED_CARER: &str = "carer-invited@example.nz";

/// The proxy roles: (role, email, NHI of their own patient record, scopes).
pub const PROXIES: [(&str, &str, &str, &str); 5] = [
    ("proxy", "proxy@example.nz", "ZPX1059", "appointments,prescriptions"),
    ("proxy_without_scope", "proxy-noscope@example.nz", "ZPX1067", "messages"),
    ("expired_proxy", "proxy-expired@example.nz", "ZPX1075", "appointments,prescriptions,messages"),
    ("aged_out_proxy", "proxy-aged@example.nz", "ZPX1083", "appointments,prescriptions,messages"),
    ("revoked_proxy", "proxy-revoked@example.nz", "ZPX1091", "appointments,prescriptions,messages"),
];

/// Runs one statement on the test's database (a fixture moving a row through time).
///
/// # Errors
/// When the statement fails.
pub async fn execute(t: &TestApp, sql: &str) -> Result<()> {
    if t.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&t.url).await?;
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await?;
    } else {
        let mut c = sqlx::PgConnection::connect(&t.url).await?;
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await?;
    }
    Ok(())
}

/// The account of a patient record.
///
/// # Errors
/// When there is no such patient.
pub async fn account_of_patient(t: &TestApp, patient: PatientId) -> Result<app::domain::AccountId> {
    let sql = "SELECT account_id FROM patients WHERE id = $1";
    let account: uuid::Uuid = if t.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&t.url).await?;
        sqlx::query_scalar(sql).bind(patient.as_uuid()).fetch_one(&mut c).await?
    } else {
        let mut c = sqlx::PgConnection::connect(&t.url).await?;
        sqlx::query_scalar(sql).bind(patient.as_uuid()).fetch_one(&mut c).await?
    };
    Ok(app::domain::AccountId::from_uuid(account))
}

/// Practice A's reception sets up a proxy for patient 1, and patient 1 accepts it; returns the
/// link's id.
///
/// # Errors
/// When it is refused.
pub async fn proxy_for_patient1(w: &World, email: &str, scopes: &str) -> Result<app::domain::ProxyId> {
    proxy_named_for_patient1(w, email, "", scopes).await
}

/// As [`proxy_for_patient1`], for someone who may have no Tiaki account yet (`name`: theirs,
/// and they are invited by email).
///
/// # Errors
/// When it is refused.
pub async fn proxy_named_for_patient1(
    w: &World,
    email: &str,
    name: &str,
    scopes: &str,
) -> Result<app::domain::ProxyId> {
    let form = app::proxies::ProxyForm {
        email: email.into(),
        name: name.into(),
        relationship: "carer".into(),
        scopes: scopes.split(',').map(str::to_owned).collect(),
        starts: String::new(),
        expires: app::domain::calendar::local_day(app::domain::Clock::now(&w.t.clock) + 90 * 86_400).to_string(),
        identity_check: "Passport sighted".into(),
        ..app::proxies::ProxyForm::default()
    };
    let id =
        w.t.app
            .proxies()
            .set_up(&as_admin(&w.t, w.practice_a).await?, w.patient1, &form)
            .await
            .map_err(|e| anyhow!("{e:?}"))?;
    let me = Principal::Patient {
        account: account_of_patient(&w.t, w.patient1).await?,
        session: SessionId::random(),
        patient: w.patient1,
    };
    w.t.app.proxies().accept(&app::Caller::console(me), id).await.map_err(|e| anyhow!("{e:?}"))?;
    Ok(id)
}

/// The email each signed-in role uses.
pub fn email_of(role: &str) -> Option<&'static str> {
    Some(match role {
        "patient" => "p1@example.nz",
        "other_patient" => "p2@example.nz",
        "reception" => "admin-a@example.nz",
        "privacy_officer" => "po-a@example.nz",
        "unverified_staff" => "new-a@example.nz",
        "other_practice_staff" => "gp-b@example.nz",
        "other_practice_admin" => "admin-b@example.nz",
        "operator" => "op@example.nz",
        "nurse" => "nurse-a@example.nz",
        "gp" => "gp-a@example.nz",
        "invited_carer" => INVITED_CARER,
        other => return PROXIES.iter().find(|(r, ..)| *r == other).map(|(_, e, ..)| *e),
    })
}

/// What [`World::with_every_role`] adds: the other practice's system and a hospital's system
/// (which agreed practice A receives from), by their API tokens.
#[derive(Debug, Clone)]
pub struct Everyone {
    /// Practice B's own system.
    pub client_b: String,
    /// A hospital's system (Te Whatu Ora Te Tai Tokerau, HPI G00001-A), whose letters practice A
    /// has agreed to receive.
    pub hospital: String,
    /// The proxy roles' links to patient 1.
    pub proxies: Vec<(&'static str, app::domain::ProxyId)>,
}

impl World {
    /// The world with every role of [`ROLES`]: besides [`World::new`]'s, a nurse and a privacy
    /// officer at practice A, a GP at practice B, a member of staff who has set a password but
    /// not yet a second factor, practice B's system and a hospital's system.
    pub async fn with_every_role() -> Result<(Self, Everyone)> {
        let w = Self::new().await?;
        // Every role is driven through every route, most of them refused: the detectors would
        // (rightly) suspend each session long before the end. Detection has its own drills.
        w.t.app.set_detection_thresholds(app::domain::detection::Thresholds {
            on: false,
            ..app::domain::detection::Thresholds::default()
        });
        staff(&w.t, w.practice_a, "nurse-a@example.nz", StaffRole::Nurse).await?;
        staff(&w.t, w.practice_a, "po-a@example.nz", StaffRole::PrivacyOfficer).await?;
        staff(&w.t, w.practice_b, "gp-b@example.nz", StaffRole::Gp).await?;
        // A member of staff who has signed in with a password but not yet proved a second factor.
        let link = w
            .t
            .app
            .console()
            .invite_staff(
                w.practice_a,
                &InviteStaffForm { name: "New Nurse".into(), email: "new-a@example.nz".into(), role: "nurse".into() },
            )
            .await
            .map_err(|e| anyhow!("{e:?}"))?;
        w.t.app
            .console()
            .set_password_by_link(&link, PASSWORD, PASSWORD, None, None)
            .await
            .map_err(|e| anyhow!("{e:?}"))?;
        let client_b = w.practice_b_client().await?;
        let (_, hospital) =
            w.t.app
                .console()
                .create_client("Hospital system", "G00001-A", "Te Whatu Ora Te Tai Tokerau", None)
                .await
                .map_err(|e| anyhow!("{e:?}"))?;
        w.t.app.console().add_agreement("FAA111-A", "G00001-A").await.map_err(|e| anyhow!("{e:?}"))?;
        // The people who act for patient 1, each with a Tiaki account of their own.
        let mut proxies = Vec::new();
        for (role, email, nhi, scopes) in PROXIES {
            let (_, link) = enrol(&w.t, w.practice_a, nhi, email).await?;
            w.t.app
                .console()
                .set_password_by_link(&link, PASSWORD, PASSWORD, None, None)
                .await
                .map_err(|e| anyhow!("{e:?}"))?;
            proxies.push((role, proxy_for_patient1(&w, email, scopes).await?));
        }
        // Someone with no Tiaki account, invited by practice A to act for patient 1.
        let link =
            proxy_named_for_patient1(&w, INVITED_CARER, "Carer Invited", "appointments,prescriptions,messages").await?;
        proxies.push(("invited_carer", link));
        let code = latest_code_to(&w.t, INVITED_CARER).await?;
        w.t.app
            .console()
            .set_password_by_link(&code, PASSWORD, PASSWORD, None, None)
            .await
            .map_err(|e| anyhow!("{e:?}"))?;
        Ok((w, Everyone { client_b, hospital, proxies }))
    }

    /// Practice B's own system (health records and the appointment book too); its API token.
    ///
    /// # Errors
    /// When the console refuses it.
    pub async fn practice_b_client(&self) -> Result<String> {
        let console = self.t.app.console();
        let (row, token) = console
            .create_client("Practice B PMS", "", "Practice B", Some("FBB222-B"))
            .await
            .map_err(|e| anyhow!("{e:?}"))?;
        console.set_client_records(row.id, true).await.map_err(|e| anyhow!("{e:?}"))?;
        console.set_client_appointments(row.id, true).await.map_err(|e| anyhow!("{e:?}"))?;
        Ok(token)
    }

    /// A browser (or an organisation's system) acting as `role`, from `ip`: signed in, with a
    /// second factor where the role needs one, except the unverified member of staff.
    pub async fn as_role(&self, everyone: &Everyone, role: &str, ip: [u8; 4]) -> Result<Browser> {
        Ok(match (role, email_of(role)) {
            ("practice_client", _) => self.t.client(&self.client_a),
            ("other_practice_client", _) => self.t.client(&everyone.client_b),
            ("hospital_client", _) => self.t.client(&everyone.hospital),
            ("unverified_staff", Some(email)) => {
                let mut b = self.t.browser(ip);
                let r = b.sign_in(email, PASSWORD).await?;
                if r.location() != "/account/security" {
                    return Err(anyhow!("staff without a second factor should be confined to /account/security"));
                }
                b
            }
            (role, Some(email)) if PROXIES.iter().any(|(r, ..)| *r == role) => {
                let mut b = self.signed_in(email, ip).await?;
                b.get("/acting-for").await?;
                let r = b.post("/acting-for", &[("to", &self.patient1.to_string())]).await?;
                if r.status != StatusCode::SEE_OTHER {
                    return Err(anyhow!("{role} could not switch to patient 1: {} {}", r.status, r.body));
                }
                let link = everyone.proxies.iter().find(|(r, _)| *r == role).map(|(_, id)| *id);
                let link = link.ok_or_else(|| anyhow!("no link for {role}"))?;
                let now = app::domain::Clock::now(&self.t.clock);
                let id = format!("'{}'", link.as_uuid());
                let id = if self.t.url.starts_with("sqlite:") { format!("X'{}'", link.as_uuid().simple()) } else { id };
                match role {
                    // Time has passed its end date.
                    "expired_proxy" => {
                        execute(&self.t, &format!("UPDATE proxies SET expires_at = {} WHERE id = {id}", now - 1))
                            .await?;
                    }
                    // A link set up for a child whose birthday at the cut-off has come (patient 1
                    // was born in 1980: as a child's link, it ended long ago).
                    "aged_out_proxy" => {
                        execute(&self.t, &format!("UPDATE proxies SET needs_acceptance = FALSE WHERE id = {id}"))
                            .await?;
                    }
                    "revoked_proxy" => {
                        let me = Principal::Patient {
                            account: account_of_patient(&self.t, self.patient1).await?,
                            session: SessionId::random(),
                            patient: self.patient1,
                        };
                        self.t
                            .app
                            .proxies()
                            .revoke(&app::Caller::console(me), link)
                            .await
                            .map_err(|e| anyhow!("{e:?}"))?;
                    }
                    _ => {}
                }
                b
            }
            (_, Some(email)) => self.signed_in(email, ip).await?,
            _ => self.t.browser(ip),
        })
    }
}

/// Every message in the outbox, oldest first: (recipient, subject, body).
pub async fn mails(t: &TestApp) -> Result<Vec<(String, String, String)>> {
    let sql = "SELECT recipient, subject, body FROM outbox ORDER BY created_at, id";
    if t.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&t.url).await?;
        Ok(sqlx::query_as(sql).fetch_all(&mut c).await?)
    } else {
        let mut c = sqlx::PgConnection::connect(&t.url).await?;
        Ok(sqlx::query_as(sql).fetch_all(&mut c).await?)
    }
}
