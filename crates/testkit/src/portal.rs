//! The test app: a real store (`SQLite`, or `PostgreSQL` when `TIAKI_TEST_DATABASE=postgres`), a fake
//! clock, the real router driven in-process, and browsers that keep cookies and CSRF tokens.

use crate::*;
use anyhow::{Result, anyhow};
use app::domain::FakeClock;
use app::{App, Settings};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

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
    /// Installs this process's metrics recorder (nextest runs each test in a process of its own)
    /// and serves `/metrics` from it from now on.
    ///
    /// # Errors
    /// When a recorder is already installed.
    pub fn with_metrics(&mut self) -> Result<()> {
        let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .map_err(|e| anyhow!("cannot install the metrics recorder: {e}"))?;
        let state = web::WebState {
            app: self.app.clone(),
            secure: false,
            trusted_proxies: Arc::new(Vec::new()),
            data_dir: self.data_dir.clone(),
            metrics: Some(handle),
            metrics_token: None,
        };
        self.router = web::router(state);
        Ok(())
    }

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

impl TestApp {
    /// A browser talking to another node (its own `App` and router) on the same database,
    /// data folder, clock and keys: what one node changes, the other must see at once.
    pub async fn browser_on_another_node(&self, ip: [u8; 4]) -> Result<Browser> {
        let node = Arc::try_unwrap(self.another_node().await?).map_err(|_| anyhow!("a new node is not shared"))?;
        let vault = app::Vault {
            blobs: test_blobs(&self.data_dir)?,
            keys: test_keys(&self.data_dir)?,
            max_document_bytes: 10 * 1024 * 1024,
            patient_quota_bytes: 100 * 1024 * 1024,
            max_own_documents: app::documents::MAX_OWN_DOCUMENTS,
        };
        let breached =
            app::identity::breached::BreachedList::open(&self.data_dir.join("breached.txt")).map_err(|e| anyhow!(e))?;
        let state = web::WebState {
            app: Arc::new(node.with_documents(vault).with_breached_passwords(breached)),
            secure: false,
            trusted_proxies: Arc::new(Vec::new()),
            data_dir: self.data_dir.clone(),
            metrics: None,
            metrics_token: None,
        };
        Ok(Browser {
            router: web::router(state),
            cookies: HashMap::new(),
            ip: SocketAddr::from((ip, 40000)),
            csrf: None,
            bearer: None,
        })
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
    max_own_documents: i64,
}

impl Builder {
    /// The largest document and each patient's quota, in bytes.
    #[must_use]
    pub const fn limits(mut self, max_document_bytes: i64, patient_quota_bytes: i64) -> Self {
        self.max_document_bytes = max_document_bytes;
        self.patient_quota_bytes = patient_quota_bytes;
        self
    }

    /// The most documents of their own a patient may keep.
    #[must_use]
    pub const fn document_cap(mut self, max_own_documents: i64) -> Self {
        self.max_own_documents = max_own_documents;
        self
    }

    /// The portal: application, router, fresh database, blob store and keys.
    ///
    /// # Errors
    /// When any part cannot be set up.
    pub async fn build(self) -> Result<TestApp> {
        TestApp::from_builder(self).await
    }
}

impl TestApp {
    /// A builder with the defaults (16 MiB documents, 200 MiB per patient).
    #[must_use]
    pub const fn builder() -> Builder {
        Builder {
            max_document_bytes: 16 * 1024 * 1024,
            patient_quota_bytes: 200 * 1024 * 1024,
            max_own_documents: app::documents::MAX_OWN_DOCUMENTS,
        }
    }

    pub async fn new() -> Result<Self> {
        Self::builder().build().await
    }

    pub async fn with_limits(max_document_bytes: i64, patient_quota_bytes: i64) -> Result<Self> {
        Self::from_builder(Self::builder().limits(max_document_bytes, patient_quota_bytes)).await
    }

    async fn from_builder(b: Builder) -> Result<Self> {
        let Builder { max_document_bytes, patient_quota_bytes, max_own_documents } = b;
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
        let vault = app::Vault {
            blobs,
            keys: test_keys(&data_dir)?,
            max_document_bytes,
            patient_quota_bytes,
            max_own_documents,
        };
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
            metrics_token: None,
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
