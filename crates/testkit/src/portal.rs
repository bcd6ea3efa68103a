//! The test app: a real store (`SQLite`, or `PostgreSQL` when `TIAKI_TEST_DATABASE=postgres`), a fake
//! clock, the real router driven in-process, and browsers that keep cookies and CSRF tokens.

use anyhow::{Result, anyhow};
use app::domain::{FakeClock, PatientId, PracticeId, SessionId, StaffRole};
use app::{App, EnrolForm, InviteStaffForm, PracticeForm, Principal, Settings};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use sqlx::Connection;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tower::ServiceExt;

pub const START: i64 = 1_800_000_000;

pub struct TestApp {
    pub app: Arc<App>,
    pub clock: FakeClock,
    pub router: axum::Router,
    pub data_dir: std::path::PathBuf,
    /// The test's own database (a `PostgreSQL` one is dropped with it).
    _db: crate::db::Database,
    /// The database URL, for tests that reach past the application (fault and tamper tests).
    pub url: String,
    /// A witness whose cosignatures the app accepts.
    pub witness: Arc<audit::note::Signer>,
    /// The log's signing key (PKCS#8), shared by every node.
    pub signing_key: Vec<u8>,
}

impl TestApp {
    /// Another application node on the same database, clock and signing key.
    pub async fn another_node(&self) -> Result<Arc<App>> {
        let store = store::connect(&self.url).await?;
        let settings = Settings {
            public_url: "http://portal.test".into(),
            session_idle_secs: 1800,
            session_absolute_secs: 12 * 3600,
            invitation_secs: 7 * 86_400,
            staff_mfa_required: true,
        };
        let audit_settings = app::AuditSettings {
            origin: "portal.test/audit".into(),
            signer: Some(Arc::new(audit::note::Signer::from_pkcs8("portal.test/audit", &self.signing_key)?)),
            witnesses: Vec::new(),
            checkpoint_every_secs: 60,
            retention_years: 10,
        };
        Ok(Arc::new(App::new(store, Arc::new(self.clock.clone()), settings, audit_settings).await?))
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
/// Which blob store the suite uses: a folder in the test's data folder (default) or the
/// S3-compatible server at `TIAKI_TEST_S3_URL` when `TIAKI_TEST_BLOBS=s3` (bucket
/// `tiaki-test`, each test under its own prefix).
pub fn blob_backend() -> String {
    std::env::var("TIAKI_TEST_BLOBS").unwrap_or_else(|_| "folder".into())
}

pub const S3_BUCKET: &str = "tiaki-test";

/// Which master key provider the suite uses: the key file (default) or, with
/// `TIAKI_TEST_KEYS=pkcs11`, an AES key in a `PKCS#11` token (`SoftHSM2`; `scripts/test` makes the
/// token `TIAKI_TEST_PKCS11_TOKEN` and its key `tiaki-master`, PIN `TIAKI_TEST_PKCS11_PIN`).
pub fn key_backend() -> String {
    std::env::var("TIAKI_TEST_KEYS").unwrap_or_else(|_| "file".into())
}

pub fn test_keys(data_dir: &std::path::Path) -> Result<app::KeyRing> {
    if key_backend() == "pkcs11" {
        let provider = crypto::Pkcs11KeyProvider::open(&crypto::Pkcs11Config {
            module: std::env::var("TIAKI_TEST_PKCS11_MODULE")
                .unwrap_or_else(|_| "/usr/lib/softhsm/libsofthsm2.so".into()),
            token_label: std::env::var("TIAKI_TEST_PKCS11_TOKEN").unwrap_or_else(|_| "tiaki-test".into()),
            pin: std::env::var("TIAKI_TEST_PKCS11_PIN").unwrap_or_else(|_| "1234".into()).into(),
            key_label: "tiaki-master".into(),
            create_if_missing: false,
        })
        .map_err(|e| anyhow!("the test token (SOFTHSM2_CONF, TIAKI_TEST_PKCS11_*): {e}"))?;
        Ok(app::KeyRing::single(Arc::new(provider)))
    } else {
        app::KeyRing::files(data_dir).map_err(|e| anyhow!("{e:?}"))
    }
}

pub fn test_blobs(data_dir: &std::path::Path) -> Result<app::documents::blobs::Blobs> {
    if blob_backend() == "s3" {
        let settings = app::config::BlobSettings::S3 {
            bucket: S3_BUCKET.into(),
            endpoint: std::env::var("TIAKI_TEST_S3_URL").unwrap_or_else(|_| "http://127.0.0.1:9000".into()),
            region: "us-east-1".into(),
            access_key_id: std::env::var("TIAKI_TEST_S3_ACCESS_KEY").unwrap_or_else(|_| "AKIATESTPORTAL".into()),
            secret_access_key: std::env::var("TIAKI_TEST_S3_SECRET_KEY")
                .unwrap_or_else(|_| "testsecretkey1234567890".into())
                .into(),
        };
        let prefix = data_dir.file_name().and_then(|n| n.to_str()).unwrap_or("t").to_owned();
        Ok(app::documents::blobs::Blobs::from_settings(&settings).map_err(|e| anyhow!("{e}"))?.with_prefix(&prefix))
    } else {
        Ok(app::documents::blobs::Blobs::folder(&data_dir.join("blobs")).map_err(|e| anyhow!("{e}"))?)
    }
}

/// Where the blobs of this test lie on disk: the folder store's folder, or (for S3) the
/// s3s-fs data folder's bucket directory under this test's prefix (`TIAKI_TEST_S3_DIR`).
pub fn blob_dir(data_dir: &std::path::Path) -> std::path::PathBuf {
    if blob_backend() == "s3" {
        let root = std::env::var("TIAKI_TEST_S3_DIR").unwrap_or_else(|_| "/tmp/tiaki-s3".into());
        let prefix = data_dir.file_name().and_then(|n| n.to_str()).unwrap_or("t").to_owned();
        std::path::PathBuf::from(root).join(S3_BUCKET).join(prefix)
    } else {
        data_dir.join("blobs")
    }
}

pub use crate::db::backend;

/// How to build a [`TestApp`]: `TestApp::builder().limits(..).build()`. The engine, blob store
/// and key provider come from `TIAKI_TEST_DATABASE`, `TIAKI_TEST_BLOBS` and `TIAKI_TEST_KEYS`, so
/// one suite runs on every combination.
#[derive(Debug, Clone, Copy)]
pub struct Builder {
    max_document_bytes: i64,
    patient_quota_bytes: i64,
}

impl Builder {
    /// The largest document and each patient's quota, in bytes.
    #[must_use]
    pub const fn limits(mut self, max_document_bytes: i64, patient_quota_bytes: i64) -> Self {
        self.max_document_bytes = max_document_bytes;
        self.patient_quota_bytes = patient_quota_bytes;
        self
    }

    /// The portal: application, router, fresh database, blob store and keys.
    ///
    /// # Errors
    /// When any part cannot be set up.
    pub async fn build(self) -> Result<TestApp> {
        TestApp::with_limits(self.max_document_bytes, self.patient_quota_bytes).await
    }
}

impl TestApp {
    /// A builder with the defaults (16 MiB documents, 200 MiB per patient).
    #[must_use]
    pub const fn builder() -> Builder {
        Builder { max_document_bytes: 16 * 1024 * 1024, patient_quota_bytes: 200 * 1024 * 1024 }
    }

    pub async fn new() -> Result<Self> {
        Self::builder().build().await
    }

    pub async fn with_limits(max_document_bytes: i64, patient_quota_bytes: i64) -> Result<Self> {
        let data_dir = std::env::temp_dir().join(format!("tiaki-web-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&data_dir)?;
        let db = crate::db::Database::fresh(&data_dir).await?;
        let url = db.url.clone();
        let store = db.store().await?;
        let clock = FakeClock::at(START);
        let settings = Settings {
            public_url: "http://portal.test".into(),
            session_idle_secs: 1800,
            session_absolute_secs: 12 * 3600,
            invitation_secs: 7 * 86_400,
            staff_mfa_required: true,
        };
        let signing_key = audit::note::Signer::generate_pkcs8()?;
        let signer = audit::note::Signer::from_pkcs8("portal.test/audit", &signing_key)?;
        let witness = audit::note::Signer::from_pkcs8("witness.test/w1", &audit::note::Signer::generate_pkcs8()?)?;
        let audit_settings = app::AuditSettings {
            origin: "portal.test/audit".into(),
            signer: Some(Arc::new(signer)),
            witnesses: vec![audit::note::Verifier::parse(&witness.cosigner_vkey())?],
            checkpoint_every_secs: 60,
            retention_years: 10,
        };
        app::keyfile::ensure_key_file(&data_dir)?;
        let blobs = test_blobs(&data_dir)?;
        let vault = app::Vault { blobs, keys: test_keys(&data_dir)?, max_document_bytes, patient_quota_bytes };
        // An operator's breached-password list, empty until a test adds to it.
        std::fs::write(data_dir.join("breached.txt"), "")?;
        let breached =
            app::identity::breached::BreachedList::open(&data_dir.join("breached.txt")).map_err(|e| anyhow!(e))?;
        let app = Arc::new(
            App::new(store, Arc::new(clock.clone()), settings, audit_settings)
                .await?
                .with_documents(vault)
                .with_breached_passwords(breached),
        );
        let state = web::WebState {
            app: app.clone(),
            secure: false,
            trusted_proxies: Arc::new(Vec::new()),
            data_dir: data_dir.clone(),
            metrics: None,
        };
        Ok(Self {
            app,
            clock,
            router: web::router(state),
            data_dir,
            _db: db,
            url,
            witness: Arc::new(witness),
            signing_key,
        })
    }

    pub fn browser(&self, ip: [u8; 4]) -> Browser {
        Browser {
            router: self.router.clone(),
            cookies: HashMap::new(),
            ip: SocketAddr::from((ip, 40000)),
            csrf: None,
            bearer: None,
        }
    }

    /// An organisation's system: every request carries its API client token.
    pub fn client(&self, token: &str) -> Browser {
        let mut b = self.browser([10, 1, 1, 1]);
        b.bearer = Some(token.to_owned());
        b
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn location(&self) -> &str {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// A browser: keeps cookies, remembers the CSRF token of the last page it loaded.
#[derive(Clone)]
pub struct Browser {
    router: axum::Router,
    pub cookies: HashMap<String, String>,
    ip: SocketAddr,
    pub csrf: Option<String>,
    /// An API client's token, sent as `Authorization: Bearer` with every request.
    pub bearer: Option<String>,
}

/// What a download delivered: the bytes that arrived before the body ended or broke, and the
/// error that broke it, if one did (a stream that fails half-way is not a short document).
pub struct Download {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
    pub stream_error: Option<String>,
}

impl Browser {
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Reply> {
        self.send_full(method, path, content_type, None, body).await
    }

    pub async fn send_with_header(
        &mut self,
        method: Method,
        path: &str,
        name: &str,
        value: &str,
        body: Vec<u8>,
    ) -> Result<Reply> {
        self.send_full(method, path, Some("application/x-www-form-urlencoded"), Some((name, value)), body).await
    }

    async fn send_full(
        &mut self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        extra: Option<(&str, &str)>,
        body: Vec<u8>,
    ) -> Result<Reply> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::USER_AGENT, "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36");
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        if let Some((k, v)) = extra {
            req = req.header(k, v);
        }
        if let Some(token) = &self.bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if !self.cookies.is_empty() {
            let c: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header(header::COOKIE, c.join("; "));
        }
        let mut req = req.body(Body::from(body))?;
        req.extensions_mut().insert(ConnectInfo(self.ip));
        let res = self.router.clone().oneshot(req).await?;
        let status = res.status();
        let headers = res.headers().clone();
        for sc in headers.get_all(header::SET_COOKIE) {
            let sc = sc.to_str()?;
            let pair = sc.split(';').next().unwrap_or_default();
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() || sc.contains("Max-Age=0") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        let bytes = res.into_body().collect().await?.to_bytes();
        let body = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(t) = extract_csrf(&body) {
            self.csrf = Some(t);
        }
        Ok(Reply { status, headers, body })
    }

    pub async fn get(&mut self, path: &str) -> Result<Reply> {
        self.send(Method::GET, path, None, Vec::new()).await
    }

    /// Posts a form, adding this browser's CSRF token (loading `/signin` first if it has none).
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Result<Reply> {
        if self.csrf.is_none() {
            self.get("/signin").await?;
        }
        let csrf = self.csrf.clone().unwrap_or_default();
        let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Result<Reply> {
        let body = serde_urlencoded::to_string(fields)?;
        self.send(Method::POST, path, Some("application/x-www-form-urlencoded"), body.into_bytes()).await
    }

    /// Uploads a file from the documents page (multipart, with this browser's CSRF token).
    pub async fn upload(&mut self, path: &str, filename: &str, bytes: &[u8]) -> Result<Reply> {
        if self.csrf.is_none() {
            self.get("/signin").await?;
        }
        let csrf = self.csrf.clone().unwrap_or_default();
        let (ct, body) = multipart(&[("csrf", None, csrf.as_bytes()), ("file", Some(filename), bytes)]);
        self.send(Method::POST, path, Some(&ct), body).await
    }

    /// Downloads raw bytes (bodies of binary documents are not text). A body that breaks off
    /// with an error is an error here; [`Browser::download`] shows what arrived before it.
    pub async fn get_bytes(&mut self, path: &str, range: Option<&str>) -> Result<(StatusCode, HeaderMap, Vec<u8>)> {
        let d = self.download(path, range).await?;
        if let Some(e) = d.stream_error {
            return Err(anyhow!("the body of {path} broke off after {} bytes: {e}", d.bytes.len()));
        }
        Ok((d.status, d.headers, d.bytes))
    }

    /// Downloads, keeping the bytes that arrived before any error in the body stream.
    pub async fn download(&mut self, path: &str, range: Option<&str>) -> Result<Download> {
        let mut req = Request::builder().method(Method::GET).uri(path);
        if let Some(r) = range {
            req = req.header(header::RANGE, r);
        }
        if !self.cookies.is_empty() {
            let c: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header(header::COOKIE, c.join("; "));
        }
        if let Some(token) = &self.bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let mut req = req.body(Body::empty())?;
        req.extensions_mut().insert(ConnectInfo(self.ip));
        let res = self.router.clone().oneshot(req).await?;
        let status = res.status();
        let headers = res.headers().clone();
        let mut body = res.into_body();
        let mut bytes = Vec::new();
        let mut stream_error = None;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Some(data) = f.data_ref() {
                        bytes.extend_from_slice(data);
                    }
                }
                Err(e) => {
                    stream_error = Some(e.to_string());
                    break;
                }
            }
        }
        Ok(Download { status, headers, bytes, stream_error })
    }

    pub async fn post_json(&mut self, path: &str, json: &str) -> Result<Reply> {
        self.send(Method::POST, path, Some("application/json"), json.as_bytes().to_vec()).await
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> Result<Reply> {
        self.get("/signin").await?;
        let r = self.post("/signin", &[("email", email), ("password", password)]).await?;
        // Load the home page so the CSRF token is the session's.
        if r.status == StatusCode::SEE_OTHER {
            let home = r.location().to_owned();
            self.get(&home).await?;
        }
        Ok(r)
    }
}

/// A `multipart/form-data` body: (name, filename, content) parts. Returns the content type.
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = format!("tiaki{}", uuid::Uuid::new_v4().simple());
    let mut body = Vec::new();
    for (name, filename, content) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Pushes a document as an organisation's system.
pub async fn push(t: &TestApp, token: &str, meta: &str, bytes: &[u8]) -> Result<Reply> {
    let (ct, body) = multipart(&[("metadata", None, meta.as_bytes()), ("file", Some("letter.pdf"), bytes)]);
    let mut req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/documents")
        .header(header::CONTENT_TYPE, ct)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(body))?;
    req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([10, 1, 1, 1], 50000))));
    let res = t.router.clone().oneshot(req).await?;
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await?.to_bytes();
    Ok(Reply { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() })
}

/// A small PDF-looking document (the content check reads the magic bytes).
pub fn pdf(marker: &str, len: usize) -> Vec<u8> {
    let mut v = b"%PDF-1.7\n".to_vec();
    while v.len() < len {
        v.extend_from_slice(marker.as_bytes());
        v.push(b'\n');
    }
    v.truncate(len.max(9));
    v
}

pub fn push_meta(nhi: &str, source_id: &str) -> String {
    format!(
        r#"{{"nhi":"{nhi}","category":"discharge_summary","title":"Discharge summary","clinical_date":"2025-11-30","author":"Dr Hospital Person","source_document_id":"{source_id}"}}"#
    )
}

pub fn extract_csrf(body: &str) -> Option<String> {
    let i = body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(body[i..].split('"').next()?.to_owned())
}

pub fn token_of(link: &str) -> String {
    link.rsplit_once("token=").map(|(_, t)| t.to_owned()).unwrap_or_default()
}

pub const PASSWORD: &str = "correct horse battery staple";

/// The authenticator key every fixture staff member and operator has (they must have one).
pub const FIXTURE_TOTP: &[u8; 20] = b"tiaki fixture secret";

/// The TOTP code for a key at a time.
pub fn totp_code(secret: &[u8], time: i64) -> String {
    let t = totp_rs::Builder::new().with_secret(secret.to_vec()).build().unwrap();
    t.generate(u64::try_from(time).unwrap()).to_string()
}

/// Sets up an authenticator through the pages, as a person would; returns its key.
pub async fn set_up_authenticator(b: &mut Browser, t: &TestApp) -> Result<Vec<u8>> {
    let setup = b.post("/account/security/totp", &[]).await?;
    let i = setup.body.find("id=\"totp-secret\">").ok_or_else(|| anyhow!("no key shown: {}", setup.body))?
        + "id=\"totp-secret\">".len();
    let text: String =
        setup.body[i..].split('<').next().unwrap_or_default().chars().filter(|c| !c.is_whitespace()).collect();
    let secret = totp_rs::Secret::try_from_base32(&text).map_err(|e| anyhow!("{e:?}"))?.as_ref().to_vec();
    let code = totp_code(&secret, app::domain::Clock::now(&t.clock));
    let done = b.post("/account/security/totp/confirm", &[("code", &code)]).await?;
    if done.status != StatusCode::OK || !done.body.contains("Save these now") {
        return Err(anyhow!("the authenticator was not turned on: {} {}", done.status, done.body));
    }
    Ok(secret)
}

/// Gives an account the fixture authenticator (as if it had been set up through the pages).
pub async fn fixture_totp(t: &TestApp, email: &str) -> Result<()> {
    let sql = "INSERT INTO totp_factors (account_id, secret, confirmed_at, last_step, created_at) \
               SELECT id, $1, 0, 0, 0 FROM accounts WHERE email = $2";
    let n = if t.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&t.url).await?;
        sqlx::query(sql).bind(FIXTURE_TOTP.to_vec()).bind(email).execute(&mut c).await?.rows_affected()
    } else {
        let mut c = sqlx::PgConnection::connect(&t.url).await?;
        sqlx::query(sql).bind(FIXTURE_TOTP.to_vec()).bind(email).execute(&mut c).await?.rows_affected()
    };
    if n != 1 {
        return Err(anyhow!("no account {email} for the fixture authenticator"));
    }
    Ok(())
}

/// Two practices, staff at each, a patient at each, and an operator, all with passwords.
pub struct World {
    pub t: TestApp,
    pub practice_a: PracticeId,
    pub practice_b: PracticeId,
    pub patient1: PatientId,
    pub patient2: PatientId,
    /// Practice A's system's API token.
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
    t.app
        .console()
        .set_password_by_link(&token_of(&link), PASSWORD, PASSWORD, None, None)
        .await
        .map_err(|e| anyhow!("{e:?}"))?;
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
    t.app
        .console()
        .set_password_by_link(&token_of(&link), PASSWORD, PASSWORD, None, None)
        .await
        .map_err(|e| anyhow!("{e:?}"))?;
    fixture_totp(t, email).await?;
    Ok(())
}

/// Enrols a patient as the practice's (first) admin; returns their id and activation link.
pub async fn enrol(t: &TestApp, practice: PracticeId, nhi: &str, email: &str) -> Result<(PatientId, String)> {
    let admin = Principal::Staff {
        account: admin_of(t, practice).await?,
        session: SessionId::random(),
        practice,
        role: StaffRole::Admin,
    };
    let (outcome, link) = t
        .app
        .console()
        .enrol_with_link(
            &app::Caller::console(admin),
            practice,
            &EnrolForm {
                nhi: nhi.into(),
                name: "Pat Ient".into(),
                date_of_birth: "1980-05-06".into(),
                email: email.into(),
            },
        )
        .await
        .map_err(|e| anyhow!("{e:?}"))?;
    let id = match outcome {
        app::Enrolled::New(id) | app::Enrolled::Existing(id) | app::Enrolled::AlreadyEnrolled(id) => id,
    };
    Ok((id, link))
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
        let t = TestApp::with_limits(max_document_bytes, patient_quota_bytes).await?;
        let practice_a = practice(&t, "Practice A", "FAA111-A", "admin-a@example.nz").await?;
        let practice_b = practice(&t, "Practice B", "FBB222-B", "admin-b@example.nz").await?;
        staff(&t, practice_a, "gp-a@example.nz", StaffRole::Gp).await?;
        let (patient1, l1) = enrol(&t, practice_a, "ZZZ0016", "p1@example.nz").await?;
        let (patient2, l2) = enrol(&t, practice_b, "ZBN77VL", "p2@example.nz").await?;
        for l in [l1, l2] {
            t.app
                .console()
                .set_password_by_link(&token_of(&l), PASSWORD, PASSWORD, None, None)
                .await
                .map_err(|e| anyhow!("{e:?}"))?;
        }
        let op = t.app.console().create_operator("Op Erator", "op@example.nz").await.map_err(|e| anyhow!("{e:?}"))?;
        t.app
            .console()
            .set_password_by_link(&token_of(&op), PASSWORD, PASSWORD, None, None)
            .await
            .map_err(|e| anyhow!("{e:?}"))?;
        fixture_totp(&t, "op@example.nz").await?;
        let (_, client_a) = t
            .app
            .console()
            .create_client("Practice A PMS", "", "Practice A", Some("FAA111-A"))
            .await
            .map_err(|e| anyhow!("{e:?}"))?;
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

/// The path and query of the newest link in the outbox that contains `marker`.
pub async fn latest_link(t: &TestApp, marker: &str) -> Result<String> {
    let bodies: Vec<String> = if t.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&t.url).await?;
        sqlx::query_scalar("SELECT body FROM outbox ORDER BY created_at DESC").fetch_all(&mut c).await?
    } else {
        let mut c = sqlx::PgConnection::connect(&t.url).await?;
        sqlx::query_scalar("SELECT body FROM outbox ORDER BY created_at DESC").fetch_all(&mut c).await?
    };
    let body = bodies.iter().find(|b| b.contains(marker)).ok_or_else(|| anyhow!("no such link was emailed"))?;
    let i = body.find(marker).unwrap_or(0);
    Ok(body[i..].split_whitespace().next().unwrap_or_default().to_owned())
}

/// The path and query of the newest emailed link to `to` (any link with a token).
pub async fn latest_link_to(t: &TestApp, to: &str) -> Result<String> {
    let rows: Vec<(String, String)> = if t.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&t.url).await?;
        sqlx::query_as("SELECT recipient, body FROM outbox ORDER BY created_at DESC").fetch_all(&mut c).await?
    } else {
        let mut c = sqlx::PgConnection::connect(&t.url).await?;
        sqlx::query_as("SELECT recipient, body FROM outbox ORDER BY created_at DESC").fetch_all(&mut c).await?
    };
    let body = rows
        .iter()
        .filter(|(r, _)| r.eq_ignore_ascii_case(to))
        .map(|(_, b)| b)
        .find(|b| b.contains("token="))
        .ok_or_else(|| anyhow!("no link was emailed to {to}"))?;
    let i = body.find("http://portal.test").ok_or_else(|| anyhow!("no portal link in the mail to {to}"))?;
    let url = body[i..].split_whitespace().next().unwrap_or_default();
    Ok(url.trim_start_matches("http://portal.test").to_owned())
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
pub const ROLES: [&str; 14] = [
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
];

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
        _ => return None,
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
}

impl World {
    /// The world with every role of [`ROLES`]: besides [`World::new`]'s, a nurse and a privacy
    /// officer at practice A, a GP at practice B, a member of staff who has set a password but
    /// not yet a second factor, practice B's system and a hospital's system.
    pub async fn with_every_role() -> Result<(Self, Everyone)> {
        let w = Self::new().await?;
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
            .set_password_by_link(&token_of(&link), PASSWORD, PASSWORD, None, None)
            .await
            .map_err(|e| anyhow!("{e:?}"))?;
        let (_, client_b) =
            w.t.app
                .console()
                .create_client("Practice B PMS", "", "Practice B", Some("FBB222-B"))
                .await
                .map_err(|e| anyhow!("{e:?}"))?;
        let (_, hospital) =
            w.t.app
                .console()
                .create_client("Hospital system", "G00001-A", "Te Whatu Ora Te Tai Tokerau", None)
                .await
                .map_err(|e| anyhow!("{e:?}"))?;
        w.t.app.console().add_agreement("FAA111-A", "G00001-A").await.map_err(|e| anyhow!("{e:?}"))?;
        Ok((w, Everyone { client_b, hospital }))
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
            (_, Some(email)) => self.signed_in(email, ip).await?,
            _ => self.t.browser(ip),
        })
    }
}
