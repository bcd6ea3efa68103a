//! Configuration: defaults, then a TOML file, then `TIAKI_*` environment variables; validated
//! once at start with messages that say what to change. Secrets are `SecretString`s and never
//! printed.

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The validated configuration every subcommand reads.
#[derive(Clone)]
pub struct Config {
    /// Where the server listens.
    pub listen: SocketAddr,
    /// The data folder (`SQLite` database, blobs, key file, mail files).
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…` (may hold a password).
    pub database_url: SecretString,
    /// The address people reach the portal at; links in mail start with it.
    pub public_url: String,
    /// Proxies whose `X-Forwarded-For` is believed. Empty: the peer address is the client.
    pub trusted_proxies: Vec<IpNet>,
    /// Certificate and key files (PEM) to serve HTTPS directly.
    pub tls: Option<TlsFiles>,
    /// SMTP server URL (`smtp://`, `smtps://`; may hold credentials). None: mail is written
    /// as `.eml` files under the data folder.
    pub smtp_url: Option<SecretString>,
    /// The bearer token `/metrics` asks for (`TIAKI_METRICS_TOKEN`); without one, `/metrics`
    /// answers only direct requests from this machine (loopback, no proxy in between).
    pub metrics_token: Option<SecretString>,
    /// The From address of mail.
    pub mail_from: String,
    /// A session ends after this long without use.
    pub session_idle_secs: i64,
    /// A session ends this long after sign-in, however active.
    pub session_absolute_secs: i64,
    /// Activation and invitation links stop working after this long.
    pub invitation_secs: i64,
    /// `json` (default) or `pretty`.
    pub log_format: LogFormat,
    /// The audit log's checkpoint origin line (default: the public URL's host and `/audit`). It
    /// is fixed when the log is created and stored with it; see [`Config::settle_audit_origin`].
    pub audit_origin: String,
    /// Whether the origin was configured (`TIAKI_AUDIT_ORIGIN` or `TIAKI_PUBLIC_URL`), rather
    /// than guessed from the listen address.
    pub audit_origin_configured: bool,
    /// Witness verifier keys (C2SP vkeys) whose cosignatures are accepted.
    pub audit_witnesses: Vec<String>,
    /// Sign a checkpoint at most this often, seconds, when the log has grown.
    pub audit_checkpoint_secs: i64,
    /// Keep access-log events this many years (at least [`crate::MIN_AUDIT_RETENTION_YEARS`]).
    pub audit_retention_years: i64,
    /// A PKCS#11 token holding the keys, when one is configured.
    pub pkcs11: Option<Pkcs11Settings>,
    /// Where encrypted document blobs are kept.
    pub blobs: BlobSettings,
    /// Largest document accepted, bytes.
    pub max_document_bytes: i64,
    /// Most that one patient's documents may take together, bytes.
    pub patient_quota_bytes: i64,
    /// Most documents of their own one patient may keep (`TIAKI_MAX_DOCUMENTS_PER_PATIENT`).
    pub max_own_documents: i64,
    /// The detectors' thresholds (`TIAKI_DETECT_*`).
    pub detection: domain::detection::Thresholds,
    /// Who is told of alerts outside the console (`TIAKI_SECURITY_CONTACTS`,
    /// `TIAKI_ALERT_WEBHOOK_URL`, `TIAKI_ALERT_WEBHOOK_SECRET`).
    pub alerts: AlertSettings,
    /// A breached-password list (SHA-1 hashes, sorted, as Have I Been Pwned publishes them),
    /// checked at sign-in and whenever a password is chosen.
    pub breached_passwords: Option<PathBuf>,
}

/// Who is told of an alert outside the console: security contacts by email, and a signed JSON
/// webhook (a pager or chat tool).
#[derive(Clone, Default)]
pub struct AlertSettings {
    /// Email addresses told of every warning or critical alert.
    pub contacts: Vec<String>,
    /// Where each alert is posted as JSON, signed with HMAC-SHA256 of the body under `secret`
    /// (header `X-Tiaki-Signature: sha256=<hex>`).
    pub webhook: Option<(String, secrecy::SecretString)>,
    /// The support line incident notices give people to call (digits, spaces, `+`).
    pub support_phone: Option<String>,
}

impl std::fmt::Debug for AlertSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertSettings")
            .field("contacts", &self.contacts.len())
            .field("webhook", &self.webhook.as_ref().map(|(u, _)| u))
            .field("support_phone", &self.support_phone)
            .finish()
    }
}

impl AlertSettings {
    /// Checks the settings: real addresses, an http(s) webhook with a secret of at least 16 characters.
    ///
    /// # Errors
    /// [`ConfigError`] saying which setting is wrong and how to fix it.
    pub fn new(
        contacts: Option<Vec<String>>,
        url: Option<String>,
        secret: Option<String>,
    ) -> Result<Self, ConfigError> {
        let contacts = contacts.unwrap_or_default();
        for c in &contacts {
            if domain::Email::parse(c).is_err() {
                return Err(ConfigError(format!(
                    "security_contacts (TIAKI_SECURITY_CONTACTS) must be email addresses separated by commas; {c:?} is not one"
                )));
            }
        }
        let webhook = match (url, secret) {
            (None, None) => None,
            (Some(u), Some(s)) => {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(ConfigError(format!(
                        "alert_webhook_url (TIAKI_ALERT_WEBHOOK_URL) must be an http:// or https:// address, not {u:?}"
                    )));
                }
                if s.chars().count() < 16 {
                    return Err(ConfigError(
                        "alert_webhook_secret (TIAKI_ALERT_WEBHOOK_SECRET) must be at least 16 characters: the receiver checks each alert's signature with it".into(),
                    ));
                }
                Some((u, secrecy::SecretString::from(s)))
            }
            _ => {
                return Err(ConfigError(
                    "alert_webhook_url and alert_webhook_secret (TIAKI_ALERT_WEBHOOK_URL, TIAKI_ALERT_WEBHOOK_SECRET) must be set together".into(),
                ));
            }
        };
        Ok(Self { contacts, webhook, support_phone: None })
    }
}

/// Where encrypted document blobs are kept.
#[derive(Clone)]
pub enum BlobSettings {
    /// A folder (default: `blobs` in the data folder).
    Folder(PathBuf),
    /// An S3-compatible object store.
    S3 {
        /// The bucket.
        bucket: String,
        /// The endpoint, e.g. `https://s3.ap-southeast-2.amazonaws.com` or `http://127.0.0.1:9000`.
        endpoint: String,
        /// The region.
        region: String,
        /// The access key id.
        access_key_id: String,
        /// The secret access key.
        secret_access_key: SecretString,
    },
}

impl fmt::Debug for BlobSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Folder(p) => f.debug_tuple("Folder").field(p).finish(),
            Self::S3 { bucket, endpoint, region, .. } => f
                .debug_struct("S3")
                .field("bucket", bucket)
                .field("endpoint", endpoint)
                .field("region", region)
                .finish_non_exhaustive(),
        }
    }
}

/// Where the PKCS#11 token is and how to log in.
#[derive(Clone)]
pub struct Pkcs11Settings {
    /// The module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: String,
    /// The token's label.
    pub token_label: String,
    /// The user PIN.
    pub pin: SecretString,
    /// The label of the checkpoint-signing Ed25519 key pair.
    pub audit_key_label: String,
    /// The label of the master key (AES-256) that wraps patient keys.
    pub master_key_label: String,
}

impl fmt::Debug for Pkcs11Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Settings")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .finish_non_exhaustive()
    }
}

/// HTTPS certificate and key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable, for a terminal.
    Pretty,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database", &redact_url(self.database_url.expose_secret()))
            .field("public_url", &self.public_url)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("tls", &self.tls)
            .field("smtp", &self.smtp_url.as_ref().map(|u| redact_url(u.expose_secret())))
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "[set]"))
            .field("mail_from", &self.mail_from)
            .field("blobs", &self.blobs)
            .finish_non_exhaustive()
    }
}

/// The file of a `SQLite` database URL (`sqlite://path?mode=rwc`), if it names one.
#[must_use]
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// A URL with any credentials removed, for messages.
#[must_use]
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// Why the configuration was refused; says what to change.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

/// The file's shape. Unknown keys are an error, so a typo is not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    public_url: Option<String>,
    trusted_proxies: Option<Vec<String>>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    smtp_url: Option<String>,
    metrics_token: Option<String>,
    mail_from: Option<String>,
    session_idle_minutes: Option<i64>,
    session_absolute_hours: Option<i64>,
    invitation_days: Option<i64>,
    log_format: Option<String>,
    audit_origin: Option<String>,
    audit_witnesses: Option<Vec<String>>,
    audit_checkpoint_seconds: Option<i64>,
    audit_retention_years: Option<i64>,
    pkcs11_module: Option<String>,
    pkcs11_token: Option<String>,
    pkcs11_pin: Option<String>,
    pkcs11_audit_key_label: Option<String>,
    pkcs11_master_key_label: Option<String>,
    blob_store: Option<String>,
    s3_bucket: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_access_key_id: Option<String>,
    s3_secret_access_key: Option<String>,
    max_document_mb: Option<i64>,
    patient_quota_mb: Option<i64>,
    max_documents_per_patient: Option<i64>,
    breached_passwords: Option<PathBuf>,
    detect_enumeration_misses: Option<i64>,
    detect_enumeration_window_minutes: Option<i64>,
    detect_bulk_patients: Option<i64>,
    detect_bulk_window_minutes: Option<i64>,
    detect_read_rate: Option<i64>,
    detect_read_rate_window_minutes: Option<i64>,
    detect_patients_touched: Option<i64>,
    detect_patients_touched_window_minutes: Option<i64>,
    detect_key_unwraps: Option<i64>,
    detect_key_unwraps_window_minutes: Option<i64>,
    detect_exports: Option<i64>,
    detect_exports_window_minutes: Option<i64>,
    detect_client_patients: Option<i64>,
    detect_client_patients_window_minutes: Option<i64>,
    security_contacts: Option<Vec<String>>,
    alert_webhook_url: Option<String>,
    alert_webhook_secret: Option<String>,
    support_phone: Option<String>,
}

/// The environment variables read, with the file key each overrides.
pub const ENV_KEYS: &[(&str, &str)] = &[
    ("TIAKI_LISTEN", "listen"),
    ("TIAKI_DATA_DIR", "data_dir"),
    ("TIAKI_DATABASE_URL", "database_url"),
    ("TIAKI_PUBLIC_URL", "public_url"),
    ("TIAKI_TRUSTED_PROXIES", "trusted_proxies"),
    ("TIAKI_TLS_CERT", "tls_cert"),
    ("TIAKI_TLS_KEY", "tls_key"),
    ("TIAKI_SMTP_URL", "smtp_url"),
    ("TIAKI_METRICS_TOKEN", "metrics_token"),
    ("TIAKI_MAIL_FROM", "mail_from"),
    ("TIAKI_SESSION_IDLE_MINUTES", "session_idle_minutes"),
    ("TIAKI_SESSION_ABSOLUTE_HOURS", "session_absolute_hours"),
    ("TIAKI_INVITATION_DAYS", "invitation_days"),
    ("TIAKI_LOG_FORMAT", "log_format"),
    ("TIAKI_AUDIT_ORIGIN", "audit_origin"),
    ("TIAKI_AUDIT_WITNESSES", "audit_witnesses"),
    ("TIAKI_AUDIT_CHECKPOINT_SECONDS", "audit_checkpoint_seconds"),
    ("TIAKI_AUDIT_RETENTION_YEARS", "audit_retention_years"),
    ("TIAKI_BREACHED_PASSWORDS", "breached_passwords"),
    ("TIAKI_PKCS11_MODULE", "pkcs11_module"),
    ("TIAKI_PKCS11_TOKEN", "pkcs11_token"),
    ("TIAKI_PKCS11_PIN", "pkcs11_pin"),
    ("TIAKI_PKCS11_AUDIT_KEY_LABEL", "pkcs11_audit_key_label"),
    ("TIAKI_PKCS11_MASTER_KEY_LABEL", "pkcs11_master_key_label"),
    ("TIAKI_BLOB_STORE", "blob_store"),
    ("TIAKI_S3_BUCKET", "s3_bucket"),
    ("TIAKI_S3_ENDPOINT", "s3_endpoint"),
    ("TIAKI_S3_REGION", "s3_region"),
    ("TIAKI_S3_ACCESS_KEY_ID", "s3_access_key_id"),
    ("TIAKI_S3_SECRET_ACCESS_KEY", "s3_secret_access_key"),
    ("TIAKI_MAX_DOCUMENT_MB", "max_document_mb"),
    ("TIAKI_PATIENT_QUOTA_MB", "patient_quota_mb"),
    ("TIAKI_MAX_DOCUMENTS_PER_PATIENT", "max_documents_per_patient"),
    ("TIAKI_DETECT_ENUMERATION_MISSES", "detect_enumeration_misses"),
    ("TIAKI_DETECT_ENUMERATION_WINDOW_MINUTES", "detect_enumeration_window_minutes"),
    ("TIAKI_DETECT_BULK_PATIENTS", "detect_bulk_patients"),
    ("TIAKI_DETECT_BULK_WINDOW_MINUTES", "detect_bulk_window_minutes"),
    ("TIAKI_DETECT_READ_RATE", "detect_read_rate"),
    ("TIAKI_DETECT_READ_RATE_WINDOW_MINUTES", "detect_read_rate_window_minutes"),
    ("TIAKI_DETECT_PATIENTS_TOUCHED", "detect_patients_touched"),
    ("TIAKI_DETECT_PATIENTS_TOUCHED_WINDOW_MINUTES", "detect_patients_touched_window_minutes"),
    ("TIAKI_DETECT_KEY_UNWRAPS", "detect_key_unwraps"),
    ("TIAKI_DETECT_KEY_UNWRAPS_WINDOW_MINUTES", "detect_key_unwraps_window_minutes"),
    ("TIAKI_DETECT_EXPORTS", "detect_exports"),
    ("TIAKI_DETECT_EXPORTS_WINDOW_MINUTES", "detect_exports_window_minutes"),
    ("TIAKI_DETECT_CLIENT_PATIENTS", "detect_client_patients"),
    ("TIAKI_DETECT_CLIENT_PATIENTS_WINDOW_MINUTES", "detect_client_patients_window_minutes"),
    ("TIAKI_SECURITY_CONTACTS", "security_contacts"),
    ("TIAKI_ALERT_WEBHOOK_URL", "alert_webhook_url"),
    ("TIAKI_ALERT_WEBHOOK_SECRET", "alert_webhook_secret"),
    ("TIAKI_SUPPORT_PHONE", "support_phone"),
];

fn number(key: &str, v: &str) -> Result<i64, ConfigError> {
    v.trim().parse().map_err(|_| ConfigError(format!("{key} must be a whole number, not {v:?}")))
}

/// The detectors' thresholds: the defaults that ship, with what the file and environment set.
fn detection_from(c: &FileConfig) -> Result<domain::detection::Thresholds, ConfigError> {
    let positive = |key: &str, v: i64, max: i64| {
        if (1..=max).contains(&v) {
            Ok(v)
        } else {
            Err(ConfigError(format!("{key} must be between 1 and {max}, not {v}")))
        }
    };
    let mut detection = domain::detection::Thresholds::default();
    for (name, at, window, limit) in [
        (
            "detect_enumeration_misses",
            c.detect_enumeration_misses,
            c.detect_enumeration_window_minutes,
            &mut detection.enumeration,
        ),
        ("detect_bulk_patients", c.detect_bulk_patients, c.detect_bulk_window_minutes, &mut detection.bulk_documents),
        ("detect_read_rate", c.detect_read_rate, c.detect_read_rate_window_minutes, &mut detection.read_rate),
        (
            "detect_patients_touched",
            c.detect_patients_touched,
            c.detect_patients_touched_window_minutes,
            &mut detection.patients_touched,
        ),
        ("detect_key_unwraps", c.detect_key_unwraps, c.detect_key_unwraps_window_minutes, &mut detection.key_unwraps),
        ("detect_exports", c.detect_exports, c.detect_exports_window_minutes, &mut detection.exports),
        (
            "detect_client_patients",
            c.detect_client_patients,
            c.detect_client_patients_window_minutes,
            &mut detection.client_patients,
        ),
    ] {
        if let Some(n) = at {
            limit.at = positive(name, n, 1_000_000)?;
        }
        if let Some(m) = window {
            limit.window_secs = 60 * positive(&format!("{name}'s window"), m, 7 * 24 * 60)?;
        }
    }
    Ok(detection)
}

impl Config {
    /// Layers defaults, the TOML text of a config file (if any) and the environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the setting and what is wrong with it.
    pub fn load(file: Option<(&str, &str)>, env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut c = match file {
            Some((path, text)) => {
                toml::from_str::<FileConfig>(text).map_err(|e| ConfigError(format!("{path}: {}", e.message())))?
            }
            None => FileConfig::default(),
        };
        let get = |k: &str| env.get(k).filter(|v| !v.is_empty()).cloned();
        if let Some(v) = get("TIAKI_DATA_DIR") {
            c.data_dir = Some(v.into());
        }
        if let Some(v) = get("TIAKI_TLS_CERT") {
            c.tls_cert = Some(v.into());
        }
        if let Some(v) = get("TIAKI_TLS_KEY") {
            c.tls_key = Some(v.into());
        }
        for (key, list) in [
            ("TIAKI_TRUSTED_PROXIES", &mut c.trusted_proxies),
            ("TIAKI_AUDIT_WITNESSES", &mut c.audit_witnesses),
            ("TIAKI_SECURITY_CONTACTS", &mut c.security_contacts),
        ] {
            if let Some(v) = get(key) {
                *list = Some(v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect());
            }
        }
        if let Some(v) = get("TIAKI_BREACHED_PASSWORDS") {
            c.breached_passwords = Some(PathBuf::from(v));
        }
        for (key, slot) in [
            ("TIAKI_LISTEN", &mut c.listen),
            ("TIAKI_DATABASE_URL", &mut c.database_url),
            ("TIAKI_PUBLIC_URL", &mut c.public_url),
            ("TIAKI_SMTP_URL", &mut c.smtp_url),
            ("TIAKI_METRICS_TOKEN", &mut c.metrics_token),
            ("TIAKI_MAIL_FROM", &mut c.mail_from),
            ("TIAKI_AUDIT_ORIGIN", &mut c.audit_origin),
            ("TIAKI_PKCS11_MODULE", &mut c.pkcs11_module),
            ("TIAKI_PKCS11_TOKEN", &mut c.pkcs11_token),
            ("TIAKI_PKCS11_PIN", &mut c.pkcs11_pin),
            ("TIAKI_PKCS11_AUDIT_KEY_LABEL", &mut c.pkcs11_audit_key_label),
            ("TIAKI_LOG_FORMAT", &mut c.log_format),
            ("TIAKI_PKCS11_MASTER_KEY_LABEL", &mut c.pkcs11_master_key_label),
            ("TIAKI_BLOB_STORE", &mut c.blob_store),
            ("TIAKI_S3_BUCKET", &mut c.s3_bucket),
            ("TIAKI_S3_ENDPOINT", &mut c.s3_endpoint),
            ("TIAKI_S3_REGION", &mut c.s3_region),
            ("TIAKI_S3_ACCESS_KEY_ID", &mut c.s3_access_key_id),
            ("TIAKI_S3_SECRET_ACCESS_KEY", &mut c.s3_secret_access_key),
            ("TIAKI_ALERT_WEBHOOK_URL", &mut c.alert_webhook_url),
            ("TIAKI_ALERT_WEBHOOK_SECRET", &mut c.alert_webhook_secret),
            ("TIAKI_SUPPORT_PHONE", &mut c.support_phone),
        ] {
            if let Some(v) = get(key) {
                *slot = Some(v);
            }
        }
        for (key, field) in [
            ("TIAKI_SESSION_IDLE_MINUTES", &mut c.session_idle_minutes),
            ("TIAKI_SESSION_ABSOLUTE_HOURS", &mut c.session_absolute_hours),
            ("TIAKI_INVITATION_DAYS", &mut c.invitation_days),
            ("TIAKI_AUDIT_CHECKPOINT_SECONDS", &mut c.audit_checkpoint_seconds),
            ("TIAKI_AUDIT_RETENTION_YEARS", &mut c.audit_retention_years),
            ("TIAKI_MAX_DOCUMENT_MB", &mut c.max_document_mb),
            ("TIAKI_PATIENT_QUOTA_MB", &mut c.patient_quota_mb),
            ("TIAKI_MAX_DOCUMENTS_PER_PATIENT", &mut c.max_documents_per_patient),
            ("TIAKI_DETECT_ENUMERATION_MISSES", &mut c.detect_enumeration_misses),
            ("TIAKI_DETECT_ENUMERATION_WINDOW_MINUTES", &mut c.detect_enumeration_window_minutes),
            ("TIAKI_DETECT_BULK_PATIENTS", &mut c.detect_bulk_patients),
            ("TIAKI_DETECT_BULK_WINDOW_MINUTES", &mut c.detect_bulk_window_minutes),
            ("TIAKI_DETECT_READ_RATE", &mut c.detect_read_rate),
            ("TIAKI_DETECT_READ_RATE_WINDOW_MINUTES", &mut c.detect_read_rate_window_minutes),
            ("TIAKI_DETECT_PATIENTS_TOUCHED", &mut c.detect_patients_touched),
            ("TIAKI_DETECT_PATIENTS_TOUCHED_WINDOW_MINUTES", &mut c.detect_patients_touched_window_minutes),
            ("TIAKI_DETECT_KEY_UNWRAPS", &mut c.detect_key_unwraps),
            ("TIAKI_DETECT_KEY_UNWRAPS_WINDOW_MINUTES", &mut c.detect_key_unwraps_window_minutes),
            ("TIAKI_DETECT_EXPORTS", &mut c.detect_exports),
            ("TIAKI_DETECT_EXPORTS_WINDOW_MINUTES", &mut c.detect_exports_window_minutes),
            ("TIAKI_DETECT_CLIENT_PATIENTS", &mut c.detect_client_patients),
            ("TIAKI_DETECT_CLIENT_PATIENTS_WINDOW_MINUTES", &mut c.detect_client_patients_window_minutes),
        ] {
            if let Some(v) = get(key) {
                *field = Some(number(key, &v)?);
            }
        }
        Self::validate(c)
    }

    #[expect(clippy::too_many_lines, reason = "one place validates every setting, in order")]
    fn validate(c: FileConfig) -> Result<Self, ConfigError> {
        let detection = detection_from(&c)?;
        let listen_text = c.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            ConfigError(format!(
                "listen (TIAKI_LISTEN) must be an address and port like 127.0.0.1:8080, not {listen_text:?}"
            ))
        })?;
        let data_dir = c.data_dir.unwrap_or_else(|| PathBuf::from("./tiaki-data"));
        let database_url = c.database_url.unwrap_or_else(|| format!("sqlite://{}/tiaki.db", data_dir.display()));
        if !["sqlite:", "postgres://", "postgresql://"].iter().any(|p| database_url.starts_with(p)) {
            return Err(ConfigError(format!(
                "database_url (TIAKI_DATABASE_URL) must start with sqlite:// or postgres://, not {:?}",
                redact_url(&database_url)
            )));
        }
        let tls = match (c.tls_cert, c.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => {
                return Err(ConfigError(
                    "tls_cert and tls_key (TIAKI_TLS_CERT, TIAKI_TLS_KEY) must be set together".into(),
                ));
            }
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let public_url_given = c.public_url.is_some();
        let public_url =
            c.public_url.unwrap_or_else(|| format!("{scheme}://{listen}")).trim_end_matches('/').to_owned();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://"))
            || public_url.contains(char::is_whitespace)
        {
            return Err(ConfigError(format!(
                "public_url (TIAKI_PUBLIC_URL) must be an http:// or https:// address, not {public_url:?}"
            )));
        }
        let trusted_proxies = c
            .trusted_proxies
            .unwrap_or_default()
            .iter()
            .map(|p| {
                p.parse::<IpNet>().or_else(|_| p.parse::<std::net::IpAddr>().map(IpNet::from)).map_err(|_| {
                    ConfigError(format!(
                        "trusted_proxies (TIAKI_TRUSTED_PROXIES): {p:?} is not an IP address or CIDR range"
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        let smtp_url = c.smtp_url.map(SecretString::from);
        let metrics_token = c.metrics_token.filter(|t| !t.is_empty()).map(SecretString::from);
        if metrics_token.as_ref().is_some_and(|t| t.expose_secret().len() < 16) {
            return Err(ConfigError("metrics_token (TIAKI_METRICS_TOKEN) must be at least 16 characters".into()));
        }
        if let Some(u) = &smtp_url {
            let u = u.expose_secret();
            if !(u.starts_with("smtp://") || u.starts_with("smtps://")) {
                return Err(ConfigError(format!(
                    "smtp_url (TIAKI_SMTP_URL) must start with smtp:// or smtps://, not {:?}",
                    redact_url(u)
                )));
            }
        }
        let mail_from = c.mail_from.unwrap_or_else(|| "Tiaki <no-reply@localhost>".into());
        if mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError(format!(
                "mail_from (TIAKI_MAIL_FROM) must be an address like \"Tiaki <no-reply@example.nz>\", not {mail_from:?}"
            )));
        }
        let positive = |key: &str, v: i64, max: i64| {
            if (1..=max).contains(&v) {
                Ok(v)
            } else {
                Err(ConfigError(format!("{key} must be between 1 and {max}, not {v}")))
            }
        };
        let idle = positive("session_idle_minutes", c.session_idle_minutes.unwrap_or(30), 24 * 60)?;
        let absolute = positive("session_absolute_hours", c.session_absolute_hours.unwrap_or(12), 24 * 30)?;
        let invitation = positive("invitation_days", c.invitation_days.unwrap_or(7), 90)?;
        let log_format = match c.log_format.as_deref().unwrap_or("json") {
            "json" => LogFormat::Json,
            "pretty" => LogFormat::Pretty,
            other => {
                return Err(ConfigError(format!(
                    "log_format (TIAKI_LOG_FORMAT) must be json or pretty, not {other:?}"
                )));
            }
        };
        let audit_origin_configured = c.audit_origin.is_some() || public_url_given;
        let audit_origin = c.audit_origin.unwrap_or_else(|| crate::audit::AuditSettings::origin_for(&public_url));
        if audit_origin.is_empty() || audit_origin.contains(['+', ' ', '\n']) {
            return Err(ConfigError(format!(
                "audit_origin (TIAKI_AUDIT_ORIGIN) must be a name like portal.example.nz/audit without spaces or plus signs, not {audit_origin:?}"
            )));
        }
        let audit_witnesses = c.audit_witnesses.unwrap_or_default();
        for w in &audit_witnesses {
            match audit::note::Verifier::parse(w) {
                Ok(v) if v.is_cosigner() => {}
                _ => {
                    return Err(ConfigError(format!(
                        "audit_witnesses (TIAKI_AUDIT_WITNESSES): {w:?} is not a witness cosignature key (name+keyid+base64, type 0x04)"
                    )));
                }
            }
        }
        let audit_checkpoint_secs =
            positive("audit_checkpoint_seconds", c.audit_checkpoint_seconds.unwrap_or(60), 86_400)?;
        let audit_retention_years = c.audit_retention_years.unwrap_or(crate::MIN_AUDIT_RETENTION_YEARS);
        if !(crate::MIN_AUDIT_RETENTION_YEARS..=200).contains(&audit_retention_years) {
            return Err(ConfigError(format!(
                "audit_retention_years (TIAKI_AUDIT_RETENTION_YEARS) must be between {} and 200, not {audit_retention_years}: \
                 access records are kept at least {} years",
                crate::MIN_AUDIT_RETENTION_YEARS,
                crate::MIN_AUDIT_RETENTION_YEARS
            )));
        }
        let pkcs11 = match (c.pkcs11_module, c.pkcs11_token, c.pkcs11_pin) {
            (None, None, None) => None,
            (Some(module), Some(token_label), Some(pin)) => Some(Pkcs11Settings {
                module,
                token_label,
                pin: pin.into(),
                audit_key_label: c.pkcs11_audit_key_label.unwrap_or_else(|| "tiaki-audit".into()),
                master_key_label: c.pkcs11_master_key_label.unwrap_or_else(|| "tiaki-master".into()),
            }),
            _ => {
                return Err(ConfigError(
                    "pkcs11_module, pkcs11_token and pkcs11_pin (TIAKI_PKCS11_MODULE, TIAKI_PKCS11_TOKEN, TIAKI_PKCS11_PIN) must be set together".into(),
                ));
            }
        };
        let blobs = match c.blob_store.as_deref().unwrap_or("folder") {
            "folder" | "local" => BlobSettings::Folder(data_dir.join("blobs")),
            "s3" => match (c.s3_bucket, c.s3_endpoint, c.s3_access_key_id, c.s3_secret_access_key) {
                (Some(bucket), Some(endpoint), Some(access_key_id), Some(secret)) => {
                    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                        return Err(ConfigError(format!(
                            "s3_endpoint (TIAKI_S3_ENDPOINT) must be an http:// or https:// address, not {endpoint:?}"
                        )));
                    }
                    BlobSettings::S3 {
                        bucket,
                        endpoint,
                        region: c.s3_region.unwrap_or_else(|| "us-east-1".into()),
                        access_key_id,
                        secret_access_key: secret.into(),
                    }
                }
                _ => {
                    return Err(ConfigError(
                        "blob_store = \"s3\" needs s3_bucket, s3_endpoint, s3_access_key_id and s3_secret_access_key (TIAKI_S3_BUCKET, TIAKI_S3_ENDPOINT, TIAKI_S3_ACCESS_KEY_ID, TIAKI_S3_SECRET_ACCESS_KEY)".into(),
                    ));
                }
            },
            other => {
                return Err(ConfigError(format!("blob_store (TIAKI_BLOB_STORE) must be folder or s3, not {other:?}")));
            }
        };
        let max_document_mb = positive("max_document_mb", c.max_document_mb.unwrap_or(50), 4096)?;
        let patient_quota_mb = positive("patient_quota_mb", c.patient_quota_mb.unwrap_or(2048), 1_048_576)?;
        let max_own_documents = positive(
            "max_documents_per_patient",
            c.max_documents_per_patient.unwrap_or(crate::documents::MAX_OWN_DOCUMENTS),
            crate::documents::MAX_DOCUMENTS,
        )?;
        let mut alerts = AlertSettings::new(c.security_contacts, c.alert_webhook_url, c.alert_webhook_secret)?;
        if let Some(phone) = c.support_phone {
            let phone = phone.trim().to_owned();
            if !(6..=20).contains(&phone.chars().filter(char::is_ascii_digit).count())
                || !phone.chars().all(|ch| ch.is_ascii_digit() || ch == ' ' || ch == '+')
            {
                return Err(ConfigError(format!(
                    "support_phone (TIAKI_SUPPORT_PHONE) must be a phone number of digits, spaces and +, like \
                     \"0800 824 254\", not {phone:?}"
                )));
            }
            alerts.support_phone = Some(phone);
        }
        Ok(Self {
            detection,
            alerts,
            breached_passwords: c.breached_passwords,
            pkcs11,
            blobs,
            max_document_bytes: max_document_mb * 1024 * 1024,
            patient_quota_bytes: patient_quota_mb * 1024 * 1024,
            max_own_documents,
            audit_origin,
            audit_origin_configured,
            audit_witnesses,
            audit_checkpoint_secs,
            audit_retention_years,
            listen,
            data_dir,
            database_url: database_url.into(),
            public_url,
            trusted_proxies,
            tls,
            smtp_url,
            metrics_token,
            mail_from,
            session_idle_secs: idle * 60,
            session_absolute_secs: absolute * 3600,
            invitation_secs: invitation * 86_400,
            log_format,
        })
    }

    /// Whether cookies must be `Secure` (the portal is reached over HTTPS).
    #[must_use]
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_are_the_embedded_portal() {
        let c = Config::load(None, &env(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url.expose_secret(), "sqlite://./tiaki-data/tiaki.db");
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
        assert!(c.smtp_url.is_none() && !c.secure_cookies());
        assert_eq!(c.audit_retention_years, 10);
    }

    #[test]
    fn access_records_are_kept_at_least_ten_years() {
        let c = Config::load(Some(("t.toml", "audit_retention_years = 25")), &env(&[])).unwrap();
        assert_eq!(c.audit_retention_years, 25);
        for short in ["9", "0", "-10"] {
            let e = Config::load(None, &env(&[("TIAKI_AUDIT_RETENTION_YEARS", short)])).unwrap_err().to_string();
            assert!(e.contains("TIAKI_AUDIT_RETENTION_YEARS") && e.contains("at least 10 years"), "{e}");
        }
    }

    #[test]
    fn environment_overrides_file_overrides_defaults() {
        let file = "listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/a\"\npublic_url = \"https://portal.example.nz/\"\n";
        let c = Config::load(Some(("t.toml", file)), &env(&[("TIAKI_DATA_DIR", "/srv/b")])).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.data_dir, PathBuf::from("/srv/b"));
        assert_eq!(c.database_url.expose_secret(), "sqlite:///srv/b/tiaki.db");
        assert_eq!(c.public_url, "https://portal.example.nz");
        assert!(c.secure_cookies());
    }

    #[test]
    fn bad_values_are_explained_and_secrets_hidden() {
        let e = Config::load(Some(("t.toml", "lisen = \"x\"")), &env(&[])).unwrap_err().to_string();
        assert!(e.contains("t.toml") && e.contains("lisen"), "{e}");
        let e = Config::load(None, &env(&[("TIAKI_LISTEN", "nowhere")])).unwrap_err().to_string();
        assert!(e.contains("TIAKI_LISTEN"), "{e}");
        let e = Config::load(None, &env(&[("TIAKI_DATABASE_URL", "mysql://u:hunter2@h/db")])).unwrap_err().to_string();
        assert!(e.contains("TIAKI_DATABASE_URL") && !e.contains("hunter2"), "{e}");
        let e = Config::load(None, &env(&[("TIAKI_TRUSTED_PROXIES", "10.0.0.0/8, bogus")])).unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");
        let c = Config::load(
            None,
            &env(&[("TIAKI_DATABASE_URL", "postgres://u:hunter2@h/db"), ("TIAKI_SMTP_URL", "smtp://u:pw99@mail:25")]),
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("pw99"), "{shown}");
        let e = Config::load(None, &env(&[("TIAKI_BLOB_STORE", "s3")])).unwrap_err().to_string();
        assert!(e.contains("TIAKI_S3_BUCKET"), "{e}");
        let c = Config::load(
            None,
            &env(&[
                ("TIAKI_BLOB_STORE", "s3"),
                ("TIAKI_S3_BUCKET", "docs"),
                ("TIAKI_S3_ENDPOINT", "http://127.0.0.1:9000"),
                ("TIAKI_S3_ACCESS_KEY_ID", "AK"),
                ("TIAKI_S3_SECRET_ACCESS_KEY", "sk-hunter3"),
                ("TIAKI_MAX_DOCUMENT_MB", "10"),
            ]),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter3"));
        assert_eq!(c.max_document_bytes, 10 * 1024 * 1024);
        let e = Config::load(None, &env(&[("TIAKI_MAX_DOCUMENT_MB", "0")])).unwrap_err().to_string();
        assert!(e.contains("max_document_mb"), "{e}");
    }
}
