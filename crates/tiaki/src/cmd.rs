//! The operators' subcommands beyond serving: API clients (`tiaki admin client …`), keys
//! (`tiaki keys …`) and the access log (`tiaki audit …`).

use super::{Admin, AuditCmd, KeysCmd, open, show};
use anyhow::{Context, Result, bail};
use app::{App, Config};

fn shown<T>(r: Result<T, app::AppError>) -> Result<T> {
    r.map_err(|e| anyhow::anyhow!(show(&e)))
}

#[expect(clippy::print_stdout, reason = "tokens and listings are these commands' output")]
pub(crate) async fn client_cmd(app: &App, admin: &Admin) -> Result<Option<Result<()>>> {
    let parse_id = |id: &str| {
        id.parse::<app::domain::ClientId>()
            .map_err(|_| anyhow::anyhow!("{id} is not a client id; see `tiaki admin list-clients`"))
    };
    match admin {
        Admin::CreateClient { label, practice, org_id, org_name, records, appointments } => {
            create_client(app, label, practice.as_deref(), org_id.as_deref(), org_name, (*records, *appointments))
                .await?;
        }
        Admin::ClientAppointments { id, off } => {
            shown(app.console().set_client_appointments(parse_id(id)?, !off).await)?;
            eprintln!(
                "The client {} read and write the practice's appointment book.",
                if *off { "can no longer" } else { "can now" }
            );
        }
        Admin::ClientRecords { id, off } => {
            shown(app.console().set_client_records(parse_id(id)?, !off).await)?;
            eprintln!(
                "The client {} send the practice's health records.",
                if *off { "can no longer" } else { "can now" }
            );
        }
        Admin::RotateClient { id } => {
            let token = shown(app.console().rotate_client(parse_id(id)?).await)?;
            eprintln!("New token (the old one no longer works):");
            println!("{token}");
        }
        Admin::RevokeClient { id } => {
            shown(app.console().revoke_client(parse_id(id)?).await)?;
            eprintln!("Revoked.");
        }
        Admin::ListClients => {
            for c in app.console().clients().await? {
                let scope = c
                    .practice
                    .map_or_else(|| "practices that agreed to receive".to_owned(), |p| format!("practice {p}"));
                let state = if c.revoked_at.is_some() { "revoked" } else { "active" };
                let sends = if c.scopes.records { "documents and health records" } else { "documents" };
                println!("{}\t{}\t{} ({})\t{scope}\t{sends}\t{state}", c.id, c.label, c.org_name, c.org_id);
            }
        }
        Admin::AgreeToReceive { practice, org_id } => {
            shown(app.console().add_agreement(practice, org_id).await)?;
            eprintln!("Practice {practice} now receives documents from {org_id} for its enrolled patients.");
        }
        Admin::ResetFactors { email, checked } => {
            let had = shown(app.console().reset_factors(email, checked).await)?;
            eprintln!(
                "{} They are signed out everywhere and have been emailed.",
                if had {
                    "Their authenticator app and recovery codes were removed."
                } else {
                    "They had no authenticator app."
                }
            );
        }
        Admin::Unenrol { practice, nhi } => {
            shown(app.console().unenrol(practice, nhi).await)?;
            eprintln!("{nhi} is no longer enrolled at {practice}: its staff no longer see their record.");
        }
        Admin::RevokeAgreement { practice, org_id } => {
            shown(app.console().remove_agreement(practice, org_id).await)?;
            eprintln!(
                "Practice {practice} no longer receives documents from {org_id}; what it sent stays the patients'."
            );
        }
        Admin::RemoveStaff { practice, email } => {
            let Some(p) = app.console().practice_by_hpi(practice).await? else {
                bail!("no practice has HPI facility id {practice}; list them on the operator page");
            };
            shown(app.console().remove_staff(p.id, email).await)?;
            eprintln!("Removed from {}'s staff: their account is disabled and they are signed out everywhere.", p.name);
        }
        Admin::DisableAccount { email, reason } => {
            shown(app.console().set_account_disabled(email, Some(reason)).await)?;
            eprintln!("Disabled: they are signed out everywhere and can no longer sign in. They have been emailed.");
        }
        Admin::EnableAccount { email } => {
            shown(app.console().set_account_disabled(email, None).await)?;
            eprintln!("Enabled: they can sign in with their password again.");
        }
        _ => return Ok(None),
    }
    Ok(Some(Ok(())))
}

pub(crate) async fn keys_cmd(config: &Config, cmd: KeysCmd) -> Result<()> {
    match cmd {
        KeysCmd::RotateMaster => {
            if config.pkcs11.is_some() {
                bail!(
                    "the master key is in a PKCS#11 token; rotate it in the token (a new key label) — file rotation applies to master.key only"
                );
            }
            let fresh = app::keyfile::begin_master_rotation(&config.data_dir)?;
            eprintln!(
                "{} the new master key {}.",
                if fresh { "Made" } else { "Resuming with" },
                app::keyfile::next_key_path(&config.data_dir).display()
            );
            let app = open(config).await?;
            let total = app.console().keys_left_to_rewrap().await?;
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} patient keys ({per_sec}, ETA {eta})",
            )?);
            let done = app.console().rewrap_patient_keys(|n| bar.set_position(n)).await?;
            bar.finish_and_clear();
            if app.console().keys_left_to_rewrap().await? != 0 {
                bail!("some patient keys are still under the old master key; run `tiaki keys rotate-master` again");
            }
            let retired = app::keyfile::finish_master_rotation(&config.data_dir)?;
            // A portal node may have made a patient key under the old key meanwhile: catch it.
            let stragglers = app.console().rewrap_patient_keys(|_| {}).await?;
            let done = done + stragglers;
            eprintln!("Re-wrapped {done} patient key(s); no document was re-encrypted.");
            let secrets = app.console().reseal_secrets().await.map_err(|e| anyhow::anyhow!(show(&e)))?;
            eprintln!("Re-wrapped {secrets} authenticator secret(s).");
            eprintln!(
                "The old master key is now {}. Keep it only as long as backups made before today, then destroy it. Restart running portal nodes.",
                retired.display()
            );
            Ok(())
        }
        KeysCmd::RotatePatient { nhi } => {
            let app = open(config).await?;
            let n = app.console().rotate_patient_key(&nhi).await.map_err(|e| anyhow::anyhow!(show(&e)))?;
            eprintln!("The patient has a new key; {n} document key(s) re-wrapped, the old key destroyed.");
            Ok(())
        }
        KeysCmd::ErasePatient { nhi, yes_destroy_their_documents } => {
            if !yes_destroy_their_documents {
                bail!(
                    "this destroys every document of this patient for good; add --yes-destroy-their-documents to go ahead"
                );
            }
            let app = open(config).await?;
            let n = app.console().erase_patient_key(&nhi).await.map_err(|e| anyhow::anyhow!(show(&e)))?;
            eprintln!(
                "Destroyed {n} key version(s), and scrubbed them from the database's files: the patient's documents can \
                 no longer be read through Tiaki. Their access-log events are kept.\n\
                 Backups made before now still hold the key, wrapped by the current master key: the erasure is final \
                 for them once you rotate the master key (`tiaki keys rotate-master`) and destroy the retired key file \
                 (keep it no longer than those backups)."
            );
            Ok(())
        }
    }
}

fn day_ms(text: &str, flag: &str) -> Result<i64> {
    let d = time::Date::parse(text.trim(), time::macros::format_description!("[year]-[month]-[day]"))
        .with_context(|| format!("{flag} must be a date like 2026-11-22"))?;
    Ok(d.midnight().assume_utc().unix_timestamp() * 1000)
}

pub(crate) async fn audit_cmd(config: &Config, cmd: AuditCmd) -> Result<()> {
    let app = open(config).await?;
    match cmd {
        AuditCmd::Verify { log_key, require_witness, checkpoint } => {
            let kept = match &checkpoint {
                Some(path) => Some(std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the checkpoint file {}; check the --checkpoint path", path.display())
                })?),
                None => None,
            };
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} events ({per_sec}, ETA {eta})",
            )?);
            if log_key.is_none() {
                eprintln!(
                    "Checking against the signing key in the data folder; pass --log-key with the published key to check against one kept elsewhere."
                );
            }
            let report = app
                .access_log()
                .verify_against(log_key.as_deref(), require_witness, kept.as_deref(), |done, total| {
                    bar.set_length(total);
                    bar.set_position(done);
                })
                .await
                .map_err(|e| anyhow::anyhow!(show(&e)))?;
            bar.finish_and_clear();
            eprintln!(
                "Checked {} events, {} checkpoints and {} cosignatures.",
                report.events, report.checkpoints, report.cosignatures
            );
            for note in [&report.retention_note, &report.unsequenced_note].into_iter().flatten() {
                eprintln!("{note}.");
            }
            if report.ok() {
                eprintln!("The access log is intact.");
                Ok(())
            } else {
                eprintln!("The access log does NOT verify. First divergence first:");
                for p in &report.problems {
                    eprintln!("  - {p}");
                }
                bail!(
                    "{} problem(s) found; keep a copy of the database and the checkpoints for investigation",
                    report.problems.len()
                )
            }
        }
        AuditCmd::Checkpoint => {
            let tick = app.access_log().tick(true).await?;
            if tick.leader {
                eprintln!(
                    "Tree size {}; {}",
                    tick.size,
                    tick.checkpoint.map_or("no new checkpoint was needed".to_owned(), |s| format!(
                        "signed a checkpoint at size {s}"
                    ))
                );
            } else {
                eprintln!("Another node holds the sequencer lease; it will sequence and sign within a minute.");
            }
            Ok(())
        }
        AuditCmd::Export { from, to } => {
            let (from, to) = (day_ms(&from, "--from")?, day_ms(&to, "--to")? + 86_400_000);
            let bundle = app.console().export_audit_range(from, to).await?;
            #[expect(clippy::print_stdout, reason = "the export is this command's output")]
            {
                println!("{}", serde_json::to_string_pretty(&bundle)?);
            }
            Ok(())
        }
    }
}

/// `tiaki admin create-client`: prints the token once.
#[expect(clippy::print_stdout, reason = "the token is this command's output")]
async fn create_client(
    app: &App,
    label: &str,
    practice: Option<&str>,
    org_id: Option<&str>,
    org_name: &str,
    (records, appointments): (bool, bool),
) -> Result<()> {
    if practice.is_none() && org_id.is_none() {
        bail!("give --practice HPI for a practice's own system, or --org-id for another organisation");
    }
    if (records || appointments) && practice.is_none() {
        bail!(
            "--records and --appointments are for a practice's own system (give --practice HPI): nothing was \
             created"
        );
    }
    let (row, token) = shown(app.console().create_client(label, org_id.unwrap_or(""), org_name, practice).await)?;
    if records {
        shown(app.console().set_client_records(row.id, true).await)?;
    }
    if appointments {
        shown(app.console().set_client_appointments(row.id, true).await)?;
    }
    eprintln!(
        "Client {} for {} ({}) created{}. Its token is shown once; store it in the sending system:",
        row.id,
        row.org_name,
        row.org_id,
        match (records, appointments) {
            (true, true) => ", allowed to send health records and keep the appointment book",
            (true, false) => ", allowed to send health records",
            (false, true) => ", allowed to keep the appointment book",
            (false, false) => "",
        }
    );
    println!("{token}");
    Ok(())
}
