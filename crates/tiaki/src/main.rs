//! `tiaki`: the one binary. `serve` runs the portal; `migrate`, `demo` and `admin …` work on the
//! same data through the same configuration.

use anyhow::{Context, Result, bail};

/// mimalloc instead of the system allocator: a request builds and drops many small values
/// (rows, FHIR resources, JSON), and glibc's allocator took about a sixth of the CPU of a
/// records read under load (`scripts/bench-records`; docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use app::{App, Config, Settings};
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "tiaki",
    version,
    about = "Tiaki, a patient portal for New Zealand general practice",
    long_about = "Tiaki, a patient portal for New Zealand general practice.\n\n\
        With no configuration it keeps everything in ./tiaki-data (SQLite, documents, key file) and \
        listens on 127.0.0.1:8080. Settings come from defaults, then --config FILE (TOML), then \
        TIAKI_* environment variables (TIAKI_DATA_DIR, TIAKI_DATABASE_URL, TIAKI_LISTEN, \
        TIAKI_PUBLIC_URL, TIAKI_TRUSTED_PROXIES, TIAKI_TLS_CERT, TIAKI_TLS_KEY, TIAKI_SMTP_URL, \
        TIAKI_MAIL_FROM, TIAKI_SESSION_IDLE_MINUTES, TIAKI_SESSION_ABSOLUTE_HOURS, \
        TIAKI_INVITATION_DAYS, TIAKI_LOG_FORMAT, TIAKI_BLOB_STORE, TIAKI_S3_*, TIAKI_MAX_DOCUMENT_MB, \
        TIAKI_PATIENT_QUOTA_MB, TIAKI_PKCS11_*, TIAKI_AUDIT_*). Every subcommand reads the same settings; \
        the README lists them all."
)]
struct Cli {
    /// A TOML configuration file.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the portal: applies migrations, prints a set-up link on first start, serves HTTP(S)
    /// and delivers mail.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Fill the data folder with a demo practice, staff and patients, and print how to sign in.
    Demo,
    /// Administrative tasks from the server's console.
    #[command(subcommand)]
    Admin(Admin),
    /// The tamper-evident access log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// The master key and patients' keys.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Health documents: housekeeping.
    #[command(subcommand)]
    Documents(DocumentsCmd),
    /// Incidents: declare, scope, revise, diff, remediate, notify, report, verify.
    #[command(subcommand)]
    Incident(incident::IncidentCmd),
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Replace the master key file: make a new one, re-wrap every patient key under it (blobs
    /// are not touched), then retire the old one to retired-keys/. Resumable: run it again if it
    /// was interrupted. Stop the portal first, or restart it afterwards.
    RotateMaster,
    /// Give one patient a new key, re-wrap their documents' data keys under it and destroy the old.
    RotatePatient {
        /// The patient's NHI number.
        #[arg(long)]
        nhi: String,
    },
    /// Destroy every copy of one patient's key: all their documents become unreadable for good,
    /// backups included. Their access-log events are kept.
    ErasePatient {
        /// The patient's NHI number.
        #[arg(long)]
        nhi: String,
        /// Confirms that this cannot be undone.
        #[arg(long)]
        yes_destroy_their_documents: bool,
    },
}

#[derive(Subcommand)]
enum DocumentsCmd {
    /// Patient-key unwraps per account or API client over a recent window, most first (each
    /// document opened or stored is one): who has been reading at an unusual rate.
    UnwrapCounts {
        /// The window, in minutes back from now.
        #[arg(long, default_value_t = 60)]
        since_minutes: i64,
    },
    /// Remove the blobs of abandoned uploads and deleted documents, and blobs no row knows of.
    Sweep {
        /// Leave alone what is younger than this many minutes (uploads may still be running: the
        /// portal gives an upload up to two hours). Use 0 only with every portal node stopped.
        #[arg(long, default_value_t = 180)]
        grace_minutes: i64,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Recompute the Merkle tree from every stored event and check every checkpoint's root and
    /// signature and every witness cosignature; reports the first divergence and exits non-zero
    /// on any problem.
    Verify {
        /// The log's verifier key as published (`/audit/key`), kept somewhere other than this
        /// server. Without it the key in the data folder is trusted, and whoever holds the data
        /// folder could re-sign a rewritten log.
        #[arg(long, value_name = "VKEY")]
        log_key: Option<String>,
        /// Also require that the newest checkpoint carries a valid cosignature from a configured
        /// witness (`TIAKI_AUDIT_WITNESSES`), so a log cut short with its newest checkpoints is caught.
        #[arg(long)]
        require_witness: bool,
        /// A signed checkpoint kept outside the database (a witness's copy, or one saved from
        /// `/audit/checkpoint`): the log must be consistent with it, so a log rewritten behind
        /// its newest checkpoints is caught.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
    },
    /// Sequence waiting events and sign a checkpoint now.
    Checkpoint,
    /// Write the events of a date range as a FHIR Bundle of `AuditEvent` (JSON) to standard output.
    Export {
        /// First day, YYYY-MM-DD (UTC).
        #[arg(long)]
        from: String,
        /// Last day, YYYY-MM-DD (UTC), inclusive.
        #[arg(long)]
        to: String,
    },
}

#[derive(Subcommand)]
enum Admin {
    /// Create an operator account and print its one-time set-up link (also emailed).
    CreateOperator {
        /// Their email address.
        #[arg(long)]
        email: String,
        /// Their name.
        #[arg(long)]
        name: String,
    },
    /// Create a practice and invite its first admin (prints the link; also emailed).
    CreatePractice {
        /// The practice's name.
        #[arg(long)]
        name: String,
        /// Its HPI facility id, e.g. FZZ999-B.
        #[arg(long)]
        hpi: String,
        /// Its region, e.g. Northland.
        #[arg(long)]
        region: String,
        /// The first admin's name.
        #[arg(long)]
        admin_name: String,
        /// The first admin's email.
        #[arg(long)]
        admin_email: String,
    },
    /// Issue API-client credentials to an organisation's system, for pushing documents. Prints
    /// the token once.
    CreateClient {
        /// A label people will recognise, e.g. "Kawakawa PMS" or "Te Whatu Ora Northland discharges".
        #[arg(long)]
        label: String,
        /// For a practice's own system: the practice's HPI facility id.
        #[arg(long, conflicts_with = "org_id")]
        practice: Option<String>,
        /// For another organisation (a hospital): its HPI organisation or facility id.
        #[arg(long)]
        org_id: Option<String>,
        /// The organisation's name.
        #[arg(long)]
        org_name: String,
        /// Let it send the practice's health records too (`POST /fhir/R4`; a practice's own
        /// system only).
        #[arg(long)]
        records: bool,
        /// Let it read and write the practice's appointment book as FHIR `Schedule`, `Slot` and
        /// `Appointment` (a practice's own system only).
        #[arg(long)]
        appointments: bool,
    },
    /// Let a practice's own system read and write its appointment book as FHIR, or stop it.
    ClientAppointments {
        /// The client's id.
        #[arg(long)]
        id: String,
        /// Stop it.
        #[arg(long)]
        off: bool,
    },
    /// Let a practice's own system send its health records (`POST /fhir/R4`), or stop it.
    ClientRecords {
        /// The client's id.
        #[arg(long)]
        id: String,
        /// Stop it sending health records.
        #[arg(long)]
        off: bool,
    },
    /// Replace a client's secret (the old one stops working at once); prints the new token.
    RotateClient {
        /// The client's id.
        #[arg(long)]
        id: String,
    },
    /// Revoke a client's credentials.
    RevokeClient {
        /// The client's id.
        #[arg(long)]
        id: String,
    },
    /// List API clients.
    ListClients,
    /// Record that a practice agrees to receive documents from an organisation.
    AgreeToReceive {
        /// The practice's HPI facility id.
        #[arg(long)]
        practice: String,
        /// The sending organisation's HPI id.
        #[arg(long)]
        org_id: String,
    },
    /// End a patient's enrolment at a practice: its staff lose access to them at once (what it
    /// sent stays theirs). Patients leave from their own page; admins use the patient's page.
    Unenrol {
        /// The practice's HPI facility id.
        #[arg(long)]
        practice: String,
        /// The patient's NHI.
        #[arg(long)]
        nhi: String,
    },
    /// End a practice's agreement to receive documents from an organisation: its next push for
    /// the practice's patients is refused (what it already sent stays the patients').
    RevokeAgreement {
        /// The practice's HPI facility id.
        #[arg(long)]
        practice: String,
        /// The sending organisation's HPI id.
        #[arg(long)]
        org_id: String,
    },
    /// Remove someone from a practice's staff: their account is disabled, they are signed out
    /// everywhere and can no longer sign in or use any link (the practice's admins can do this
    /// on the practice page).
    RemoveStaff {
        /// The practice's HPI facility id.
        #[arg(long)]
        practice: String,
        /// Their email address.
        #[arg(long)]
        email: String,
    },
    /// Make a new one-time code that sets up the first operator account, if none has been set
    /// up yet (the one printed at the first start stops working).
    FirstOperatorLink,
    /// Disable any account (a compromised account, someone who has left): signed out
    /// everywhere, no sign-in, no links. The reason is kept and shown to operators.
    DisableAccount {
        /// Their email address.
        #[arg(long)]
        email: String,
        /// Why, in 5 to 200 characters (e.g. "password stolen").
        #[arg(long)]
        reason: String,
    },
    /// Enable a disabled account again (a practice's removed staff stay removed: the practice
    /// invites them again).
    EnableAccount {
        /// Their email address.
        #[arg(long)]
        email: String,
    },
    /// Remove someone's authenticator app and recovery codes after checking their identity (they
    /// lost their phone and codes): ends all their sessions and emails them.
    ResetFactors {
        /// Their email address.
        #[arg(long)]
        email: String,
        /// Who checked their identity, and how (recorded in the access log).
        #[arg(long)]
        checked: String,
    },
    /// Invite a member of staff to a practice (prints the link; also emailed).
    InviteStaff {
        /// The practice's HPI facility id.
        #[arg(long)]
        practice: String,
        /// Their name.
        #[arg(long)]
        name: String,
        /// Their email.
        #[arg(long)]
        email: String,
        /// gp, nurse, admin or `privacy_officer`.
        #[arg(long)]
        role: String,
    },
}

mod cmd;
use cmd::{audit_cmd, client_cmd, keys_cmd};
mod demo;
mod demo_care;
mod incident;
mod serve;

fn load_config(path: Option<&PathBuf>) -> Result<Config> {
    let text = match path {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the configuration file {}", p.display()))?,
        ),
        None => None,
    };
    let file = path.map(|p| p.display().to_string());
    let env: HashMap<String, String> = std::env::vars().filter(|(k, _)| k.starts_with("TIAKI_")).collect();
    Ok(Config::load(file.as_deref().zip(text.as_deref()), &env)?)
}

/// Opens the data folder (created 0700 if missing), the key file and the database, migrated.
async fn open(config: &Config) -> Result<Arc<App>> {
    use std::os::unix::fs::DirBuilderExt;
    if !config.data_dir.exists() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&config.data_dir).with_context(|| {
            format!("cannot create the data folder {}; check TIAKI_DATA_DIR", config.data_dir.display())
        })?;
    }
    private(&config.data_dir, 0o700, true)?;
    if config.pkcs11.is_none() && app::keyfile::ensure_key_file(&config.data_dir)? {
        eprintln!(
            "Created the master key file {} (mode 0600). Back it up: without it, encrypted documents cannot be read.",
            app::keyfile::key_path(&config.data_dir).display()
        );
    }
    let db_file = app::config::sqlite_path(config.database_url.expose_secret());
    let existed = db_file.as_ref().is_some_and(|p| p.exists());
    let store = store::connect(config.database_url.expose_secret()).await.with_context(|| {
        format!(
            "cannot open the database {}; check TIAKI_DATABASE_URL",
            app::config::redact_url(config.database_url.expose_secret())
        )
    })?;
    store.migrate().await.context("cannot apply database migrations")?;
    // The database holds wrapped keys and the mail queue: only this user may read its files.
    if let Some(path) = db_file {
        for file in [path.clone(), suffixed(&path, "-wal"), suffixed(&path, "-shm")] {
            if file.exists() {
                private(&file, 0o600, existed)?;
            }
        }
    }
    // The log's name is stored with it: the same whichever shell runs `tiaki`.
    let mut config = config.clone();
    app::audit::settle_origin(&mut config, &*store).await.map_err(|e| anyhow::anyhow!(show(&e)))?;
    let config = &config;
    let signer = audit_signer(config)?;
    let audit = app::AuditSettings::from_config(config, Some(signer))?;
    let mut app = App::new(store, Arc::new(app::domain::SystemClock), Settings::from(config), audit)
        .await?
        .with_documents(vault(config)?);
    if let Some(path) = &config.breached_passwords {
        let list = app::identity::breached::BreachedList::open(path).map_err(|e| {
            anyhow::anyhow!("{e}; check TIAKI_BREACHED_PASSWORDS, or unset it to use only the built-in lists")
        })?;
        app = app.with_breached_passwords(list);
    }
    app.set_alert_settings(config.alerts.clone());
    app.set_detection_thresholds(config.detection);
    Ok(Arc::new(app))
}

/// Seals the details (title, file name, author) of documents stored before this version sealed
/// them, with progress on a terminal.
pub(crate) async fn seal_old_details(app: &App) -> Result<()> {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(indicatif::ProgressStyle::with_template("{spinner} sealing document details: {pos} ({per_sec})")?);
    let n = app
        .console()
        .seal_document_details(|done| bar.set_position(done))
        .await
        .map_err(|e| anyhow::anyhow!("sealing the details of older documents: {}", show(&e)))?;
    bar.finish_and_clear();
    if n > 0 {
        eprintln!("Sealed the title, file name and author of {n} older document(s) under their keys.");
    }
    let n = app
        .console()
        .reseal_secrets()
        .await
        .map_err(|e| anyhow::anyhow!("sealing authenticator secrets: {}", show(&e)))?;
    if n > 0 {
        eprintln!("Sealed {n} authenticator secret(s) under the master key.");
    }
    Ok(())
}

/// Makes a file or folder of the portal's private to its own user (review #19): whatever the
/// umask or an earlier `chmod` left, group and others get nothing. `tell`: say so (not for a
/// file just made).
fn private(path: &std::path::Path, mode: u32, tell: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let now = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.permissions().mode();
    if now & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).with_context(|| {
            format!(
                "{} can be read by other users and could not be made private; run: chmod {mode:o} {}",
                path.display(),
                path.display()
            )
        })?;
        if tell {
            eprintln!("Made {} private to this user (it was mode {:o}).", path.display(), now & 0o777);
        }
    }
    Ok(())
}

/// A path with a suffix added to its file name (`tiaki.db` → `tiaki.db-wal`).
fn suffixed(path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    std::path::PathBuf::from(name)
}

/// The documents module: the blob store and the master key (a PKCS#11 token when configured,
/// else the key files in the data folder).
fn vault(config: &Config) -> Result<app::Vault> {
    let keys = if let Some(p) = &config.pkcs11 {
        let provider = crypto::Pkcs11KeyProvider::open(&crypto::Pkcs11Config {
            module: p.module.clone(),
            token_label: p.token_label.clone(),
            pin: p.pin.clone(),
            key_label: p.master_key_label.clone(),
            create_if_missing: true,
        })
        .map_err(|e| {
            anyhow::anyhow!("master key: {e}; check TIAKI_PKCS11_MODULE, TIAKI_PKCS11_TOKEN and TIAKI_PKCS11_PIN")
        })?;
        app::KeyRing::single(Arc::new(provider))
    } else {
        app::KeyRing::files(&config.data_dir).map_err(|e| anyhow::anyhow!("master key: {e}"))?
    };
    let blobs = app::documents::blobs::Blobs::from_settings(&config.blobs)
        .map_err(|e| anyhow::anyhow!("document store: {e}; check TIAKI_BLOB_STORE and the TIAKI_S3_* settings"))?;
    Ok(app::Vault {
        blobs,
        keys,
        max_document_bytes: config.max_document_bytes,
        patient_quota_bytes: config.patient_quota_bytes,
        max_own_documents: config.max_own_documents,
    })
}

/// The checkpoint-signing key: in a PKCS#11 token when `TIAKI_PKCS11_MODULE` is set, else a key
/// file in the data folder (made 0600 at first start).
fn audit_signer(config: &Config) -> Result<Arc<dyn audit::note::NoteSigner>> {
    if let Some(p) = &config.pkcs11 {
        let signer = crypto::Pkcs11NoteSigner::open(
            &crypto::Pkcs11Config {
                module: p.module.clone(),
                token_label: p.token_label.clone(),
                pin: p.pin.clone(),
                key_label: p.audit_key_label.clone(),
                create_if_missing: true,
            },
            &config.audit_origin,
        )
        .map_err(|e| {
            anyhow::anyhow!(
                "audit signing key: {e}; check TIAKI_PKCS11_MODULE, TIAKI_PKCS11_TOKEN and TIAKI_PKCS11_PIN"
            )
        })?;
        return Ok(Arc::new(signer));
    }
    let key = app::keyfile::ensure_signing_key(&config.data_dir)?;
    Ok(Arc::new(
        audit::note::Signer::from_pkcs8(&config.audit_origin, &key)
            .map_err(|e| anyhow::anyhow!("audit signing key: {e}"))?,
    ))
}

fn show(e: &app::AppError) -> String {
    match e {
        app::AppError::Invalid(fields) => fields
            .iter()
            .map(|f| format!("--{}: {}", f.field.trim_start_matches("operator_").replace('_', "-"), f.message))
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let config = load_config(cli.config.as_ref())?;
    match cli.command {
        Command::Serve => serve::run(config).await,
        Command::Migrate => {
            let app = open(&config).await?;
            seal_old_details(&app).await?;
            eprintln!("Migrations applied to {}.", app::config::redact_url(config.database_url.expose_secret()));
            Ok(())
        }
        Command::Demo => demo::run(&config).await,
        Command::Audit(cmd) => audit_cmd(&config, cmd).await,
        Command::Incident(cmd) => incident::incident_cmd(&config, cmd).await,
        Command::Keys(cmd) => keys_cmd(&config, cmd).await,
        Command::Documents(DocumentsCmd::UnwrapCounts { since_minutes }) => {
            let app = open(&config).await?;
            let counts = app.console().unwrap_counts(since_minutes).await?;
            eprintln!("Patient-key unwraps in the last {since_minutes} minute(s), by actor:");
            #[expect(clippy::print_stdout, reason = "the counts are this command's output")]
            for (actor, role, n) in counts {
                println!("{n}\t{actor}\t{role}");
            }
            Ok(())
        }
        Command::Documents(DocumentsCmd::Sweep { grace_minutes }) => {
            let app = open(&config).await?;
            let report = app.console().sweep_blobs(grace_minutes.max(0) * 60).await?;
            eprintln!(
                "Removed {} blob(s) of abandoned uploads or deleted documents and {} stray blob(s).",
                report.intents, report.strays
            );
            Ok(())
        }
        Command::Admin(admin) => {
            let app = open(&config).await?;
            if let Some(done) = client_cmd(&app, &admin).await? {
                return done;
            }
            let link = match admin {
                Admin::CreateClient { .. }
                | Admin::ClientRecords { .. }
                | Admin::ClientAppointments { .. }
                | Admin::RotateClient { .. }
                | Admin::RevokeClient { .. }
                | Admin::ListClients
                | Admin::AgreeToReceive { .. }
                | Admin::ResetFactors { .. }
                | Admin::RemoveStaff { .. }
                | Admin::RevokeAgreement { .. }
                | Admin::Unenrol { .. }
                | Admin::DisableAccount { .. }
                | Admin::EnableAccount { .. } => unreachable!("handled above"),
                Admin::CreateOperator { email, name } => app.console().create_operator(&name, &email).await,
                Admin::FirstOperatorLink => match app.console().first_start_link().await {
                    Ok(Some(link)) => Ok(link),
                    Ok(None) => bail!(
                        "an operator has already been set up: they invite others (`tiaki admin create-operator`)"
                    ),
                    Err(e) => Err(e),
                },
                Admin::CreatePractice { name, hpi, region, admin_name, admin_email } => app
                    .console().create_practice(&app::PracticeForm { name, hpi_facility_id: hpi, region, admin_name, admin_email })
                    .await
                    .map(|(_, link)| link),
                Admin::InviteStaff { practice, name, email, role } => {
                    let Some(p) = app.console().practice_by_hpi(&practice).await? else {
                        bail!("no practice has HPI facility id {practice}; list them on the operator page or create it with `tiaki admin create-practice`");
                    };
                    app.console().invite_staff(p.id, &app::InviteStaffForm { name, email, role }).await
                }
            }
            .map_err(|e| anyhow::anyhow!(show(&e)))?;
            eprintln!("Done. The invitation email is queued and will be sent by `tiaki serve`.");
            eprintln!(
                "One-time code (works once, expires in {} days; it is typed at {}/activate):",
                config.invitation_secs / 86_400,
                config.public_url
            );
            #[expect(clippy::print_stdout, reason = "the code is this command's output")]
            {
                println!("{link}");
            }
            Ok(())
        }
    }
}
