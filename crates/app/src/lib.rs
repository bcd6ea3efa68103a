//! Tiaki's use cases. Each public function of [`App`] is one thing a person can do: it works out
//! who is asking (a [`authz::Principal`] from a verified session), asks the policy for a grant,
//! and acts through the storage contract with that grant. The web layer calls only these.

mod access;
pub mod appointments;
pub mod audit;
mod caller;
pub mod config;
pub mod console;
pub mod detection;
pub mod documents;
mod error;
mod group;
pub mod identity;
pub mod incidents;
pub mod jobs;
pub mod messages;
/// The key files on disk (the master key and the log's signing key), from `crypto`.
pub use crypto::keyfile;
pub mod notify;
mod practices;
pub mod prescriptions;
pub mod proxies;
pub mod records;
pub use audit::{AuditSettings, Caller, MIN_AUDIT_RETENTION_YEARS, Tick, VerifyReport};
pub use authz::{Principal, capabilities};
pub use config::Config;
pub use documents::{Download, KeyRing, PushMeta, SweepReport, Vault};
pub use domain;
pub use error::{AppError, FieldError};
pub use identity::credentials::password_checks;
pub use identity::disable::DisabledAccount;
pub use identity::mfa::{MfaStatus, SignInStep, TotpSetup};
pub use identity::recovery::PatientResetView;
pub use identity::{Acting, CodeFor, InvitationPage, Session, SignInOutcome, SignedIn};
pub use practices::{AwaitingPatient, EnrolmentRequest, Patient, Practice, PracticeSummary, StaffMember};
pub use practices::{EnrolForm, Enrolled, InviteStaffForm, PATIENTS_PER_PAGE, PatientList, PracticeForm};
pub use store::{Backend, InvitationPurpose};

use domain::Clock;
use std::sync::Arc;
use store::Store;

/// Settings the use cases need, taken from [`Config`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// The address links in mail start with.
    pub public_url: String,
    /// Idle session lifetime, seconds.
    pub session_idle_secs: i64,
    /// Absolute session lifetime, seconds.
    pub session_absolute_secs: i64,
    /// Invitation lifetime, seconds.
    pub invitation_secs: i64,
    /// Whether staff and operators must prove a second factor before anything else (the
    /// default; only a first set-up without a phone at hand would ever turn it off).
    pub staff_mfa_required: bool,
}

impl From<&Config> for Settings {
    fn from(c: &Config) -> Self {
        Self {
            public_url: c.public_url.clone(),
            session_idle_secs: c.session_idle_secs,
            session_absolute_secs: c.session_absolute_secs,
            invitation_secs: c.invitation_secs,
            staff_mfa_required: true,
        }
    }
}

/// The application: storage, clock, settings and the per-process state of the sign-in limits.
pub struct App {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    csrf_key: aws_lc_rs::hmac::Key,
    watch: identity::ratelimit::AttackWatch,
    failures: identity::ratelimit::FailureBuffer,
    unknown_browsers: identity::ratelimit::NodeWindow,
    /// The operator's breached-password list, if one is configured.
    breached: Option<Arc<identity::breached::BreachedList>>,
    auditor: audit::Auditor,
    audit_settings: AuditSettings,
    /// This process's name in leases.
    node_id: String,
    /// The documents module: blob store, master keys, limits.
    vault: Option<Arc<documents::Vault>>,
    /// Woken whenever mail is queued, so the sender need not poll hard.
    pub mail_waker: Arc<tokio::sync::Notify>,
    /// The passkey relying party (none when the public URL's host is an IP address).
    webauthn: Option<Arc<webauthn_rs::prelude::Webauthn>>,
    /// The uploads arriving now, per sender and in all.
    uploads: documents::upload::UploadSlots,
    /// The recovery-code pepper, opened once (`identity::sealed`).
    pepper: tokio::sync::OnceCell<Vec<u8>>,
    /// The detectors' thresholds (`detection`).
    detection: std::sync::RwLock<domain::detection::Thresholds>,
    /// What this node has marked lately (`rule|subject|window|object`): marked again, it could
    /// not change a count.
    marked: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The canaries' ids (`detection::honeytokens`).
    honeytokens: detection::Honeytokens,
    /// Who is told of alerts beyond the console.
    alert_settings: std::sync::RwLock<config::AlertSettings>,
    /// Woken when a job is queued that should run now (an alert for the webhook).
    pub jobs_waker: Arc<tokio::sync::Notify>,
    /// The kill switches as this node last read them, and when.
    /// (module, scope) of each switched off.
    switches: std::sync::RwLock<detection::SwitchCache>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("backend", &self.store.backend())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Builds the application over a migrated store.
    ///
    /// # Errors
    /// When the shared secrets cannot be read from storage.
    pub async fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        settings: Settings,
        audit_settings: AuditSettings,
    ) -> Result<Self, AppError> {
        let fresh = identity::credentials::random_bytes::<32>()?;
        let secret = store.secret("csrf_hmac_key", &fresh).await?;
        let webauthn = identity::passkeys::relying_party(&settings.public_url).map(Arc::new);
        Ok(Self {
            auditor: audit::Auditor::start(store.clone()),
            marked: std::sync::Mutex::new(std::collections::HashSet::new()),
            audit_settings,
            node_id: uuid::Uuid::new_v4().to_string(),
            store,
            clock,
            settings,
            csrf_key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret),
            watch: identity::ratelimit::AttackWatch::default(),
            failures: identity::ratelimit::FailureBuffer::default(),
            unknown_browsers: identity::ratelimit::NodeWindow::default(),
            uploads: documents::upload::UploadSlots::default(),
            pepper: tokio::sync::OnceCell::new(),
            detection: std::sync::RwLock::new(domain::detection::Thresholds::default()),
            honeytokens: detection::Honeytokens::default(),
            alert_settings: std::sync::RwLock::new(config::AlertSettings::default()),
            jobs_waker: Arc::new(tokio::sync::Notify::new()),
            switches: std::sync::RwLock::new((None, Vec::new())),
            breached: None,
            vault: None,
            mail_waker: Arc::new(tokio::sync::Notify::new()),
            webauthn,
        })
    }

    /// Tells these security contacts and this webhook of every warning and critical alert
    /// (the configuration at start; the drills set their own).
    pub fn set_alert_settings(&self, settings: config::AlertSettings) {
        *self.alert_settings.write().unwrap_or_else(std::sync::PoisonError::into_inner) = settings;
    }

    fn alert_settings(&self) -> config::AlertSettings {
        self.alert_settings.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Checks new passwords, and passwords at sign-in, against this breached-password list too.
    #[must_use]
    pub fn with_breached_passwords(mut self, list: identity::breached::BreachedList) -> Self {
        self.breached = Some(Arc::new(list));
        self
    }

    /// The storage engine in use.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.store.backend()
    }

    /// The settings in force.
    #[must_use]
    pub const fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether the database answers (for `/readyz`).
    ///
    /// # Errors
    /// When it does not.
    pub async fn ping(&self) -> Result<(), AppError> {
        Ok(self.store.ping().await?)
    }

    /// Messages waiting to be delivered.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn pending_mail(&self) -> Result<i64, AppError> {
        Ok(self.store.pending_mail_count().await?)
    }

    fn now(&self) -> domain::UnixTime {
        self.clock.now()
    }
}
