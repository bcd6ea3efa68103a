//! `tiaki incident …`: the incident lead's commands, for the server's console under pressure:
//! declare, try indicators out (scope), revise, diff, remediate, notify (with progress and an
//! ETA), report and verify.

use super::{open, show};
use anyhow::{Context, Result, bail};
use app::domain::incidents::{Class, Indicators, Window};
use app::incidents::{Declaration, Lead, Remedy, Sender, Set};
use app::{App, Config};
use clap::{Args, Subcommand};

/// The indicators, as flags (each may be given many times).
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct IndicatorArgs {
    /// An account id the attacker used.
    #[arg(long = "account")]
    accounts: Vec<String>,
    /// A session id.
    #[arg(long = "session")]
    sessions: Vec<String>,
    /// An organisation's system (API client id).
    #[arg(long = "client")]
    clients: Vec<String>,
    /// An IP address or range (203.0.113.0/24).
    #[arg(long = "ip")]
    ips: Vec<String>,
    /// Part of a user agent.
    #[arg(long = "user-agent")]
    user_agents: Vec<String>,
    /// A time window's start, New Zealand time ("2026-11-27 14:05") or RFC 3339; with --to.
    #[arg(long = "from")]
    from: Vec<String>,
    /// A time window's end.
    #[arg(long = "to")]
    to: Vec<String>,
    /// A module (documents, records, …).
    #[arg(long = "module")]
    modules: Vec<String>,
}

fn when(flag: &str, text: &str) -> Result<i64> {
    let t = text.trim();
    if let Ok(ts) = t.parse::<jiff::Timestamp>() {
        return Ok(ts.as_second());
    }
    let civil: jiff::civil::DateTime = t
        .replace(' ', "T")
        .parse()
        .with_context(|| format!("{flag} must be a time like \"2026-11-27 14:05\" (New Zealand time) or RFC 3339"))?;
    Ok(civil.to_zoned(jiff::tz::TimeZone::get("Pacific/Auckland")?)?.timestamp().as_second())
}

impl IndicatorArgs {
    fn indicators(&self) -> Result<Indicators> {
        if self.from.len() != self.to.len() {
            bail!("give each --from its --to (time windows have two ends)");
        }
        let mut windows = Vec::new();
        for (f, t) in self.from.iter().zip(&self.to) {
            windows.push(Window { from_ms: when("--from", f)? * 1000, to_ms: when("--to", t)? * 1000 });
        }
        Ok(Indicators {
            accounts: self.accounts.clone(),
            sessions: self.sessions.clone(),
            clients: self.clients.clone(),
            ips: self.ips.clone(),
            user_agents: self.user_agents.clone(),
            windows,
            modules: self.modules.clone(),
        })
    }
}

#[derive(Subcommand)]
pub(crate) enum IncidentCmd {
    /// List incidents.
    List,
    /// Declare an incident and compute its first revision; prints its id.
    Declare {
        /// A short title.
        #[arg(long)]
        title: String,
        /// What happened, in the plain words the notices will use.
        #[arg(long)]
        description: String,
        /// When it was found (New Zealand time, or RFC 3339); now if not given.
        #[arg(long)]
        discovered: Option<String>,
        /// The alert it comes from (its indicators are added).
        #[arg(long)]
        alert: Option<String>,
        #[command(flatten)]
        indicators: IndicatorArgs,
    },
    /// Compute the scope these indicators would give now, without keeping it.
    Scope {
        #[command(flatten)]
        indicators: IndicatorArgs,
    },
    /// A new revision with these indicators (give them all, not only the new ones).
    Revise {
        /// The incident.
        id: String,
        /// Why.
        #[arg(long)]
        note: String,
        #[command(flatten)]
        indicators: IndicatorArgs,
    },
    /// Who moved between two revisions (by default the last two), and why.
    Diff {
        /// The incident.
        id: String,
        /// The earlier revision.
        #[arg(long)]
        from: Option<i64>,
        /// The later revision.
        #[arg(long)]
        to: Option<i64>,
    },
    /// Say what is being done and when the Privacy Commissioner was told (both needed before
    /// notices go out); close the incident.
    Update {
        /// The incident.
        id: String,
        /// What is being done (the notices say this).
        #[arg(long)]
        steps: String,
        /// When the Office of the Privacy Commissioner was told.
        #[arg(long)]
        commissioner_told: Option<String>,
        /// Close it (the banner is taken down).
        #[arg(long)]
        close: bool,
    },
    /// End sessions, require new passwords or second factors, suspend systems or switch a module off, for a set.
    Remediate {
        /// The incident.
        id: String,
        /// confirmed, possible, affected (both) or indicators (the attacker's own accounts,
        /// sessions and systems).
        #[arg(long)]
        set: String,
        /// `end_sessions`, `require_new_password`, `require_second_factor`, `suspend_clients`,
        /// `switch_off:documents` or `switch_off:records`.
        #[arg(long)]
        action: String,
        /// Why (kept with the incident).
        #[arg(long)]
        reason: String,
    },
    /// Tell people: resumes the unfinished campaign, or starts one from the latest revision
    /// (notices to those not yet told, corrections to those told something it no longer says),
    /// then sends what is released, with progress and an ETA. Safe to stop (even kill -9) and
    /// run again: nobody is told twice.
    Notify {
        /// The incident.
        id: String,
        /// Release this share of a new campaign (staged: e.g. 50 now, 100 later).
        #[arg(long, default_value_t = 100)]
        percent: i64,
        /// At most this many a minute.
        #[arg(long, default_value_t = 600)]
        per_minute: i64,
        /// Release more of the unfinished campaign (a larger percentage) before sending.
        #[arg(long)]
        release: Option<i64>,
        /// The SMTP relay (host:port); else `TIAKI_SMTP_URL`, else the mail folder.
        #[arg(long)]
        smtp: Option<String>,
        /// Start or release only; send nothing now (the server sends, or run again).
        #[arg(long)]
        no_send: bool,
    },
    /// An organisation's report (--org, CSV with --csv), or the regulator's (--regulator, JSON
    /// with --json); with neither, the organisations and their counts.
    Report {
        /// The incident.
        id: String,
        /// A controlling organisation's id.
        #[arg(long)]
        org: Option<String>,
        /// As CSV.
        #[arg(long)]
        csv: bool,
        /// The regulator's report.
        #[arg(long)]
        regulator: bool,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Compute every revision again from the log and check each against what was kept and
    /// against the log's signed checkpoint.
    Verify {
        /// The incident.
        id: String,
    },
}

fn shown<T>(r: Result<T, app::AppError>) -> Result<T> {
    r.map_err(|e| anyhow::anyhow!(show(&e)))
}

fn bar(len: u64, what: &str) -> Result<indicatif::ProgressBar> {
    let b = indicatif::ProgressBar::new(len);
    b.set_style(indicatif::ProgressStyle::with_template(&format!(
        "{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {what} ({{per_sec}}, ETA {{eta}}) {{msg}}"
    ))?);
    Ok(b)
}

fn print_revision(r: &app::incidents::Revision) {
    eprintln!(
        "Revision {}: {} confirmed, {} possibly affected; {} documents, record items and records; {} matching events.",
        r.number, r.confirmed, r.possible, r.objects, r.events
    );
    eprintln!("Computed from the access log's first {} events (root {}); digest {}.", r.tree_size, r.root, r.digest);
}

#[expect(clippy::print_stdout, reason = "ids, reports and listings are these commands' output")]
pub(crate) async fn incident_cmd(config: &Config, cmd: IncidentCmd) -> Result<()> {
    let app = open(config).await?;
    let lead = app.console().incident_lead();
    let incidents = app.incidents();
    match cmd {
        IncidentCmd::List => {
            for i in shown(incidents.list(&lead).await)? {
                println!(
                    "{}\t{}\t{}",
                    i.id,
                    app::incidents::nz_date(i.declared_at),
                    if i.closed_at.is_some() { format!("{} (closed)", i.title) } else { i.title }
                );
            }
        }
        IncidentCmd::Declare { title, description, discovered, alert, indicators } => {
            let mut i = indicators.indicators()?;
            if let Some(a) = &alert {
                let from = shown(incidents.from_alert(&lead, a).await)?;
                i.accounts.extend(from.indicators.accounts);
                i.sessions.extend(from.indicators.sessions);
                i.clients.extend(from.indicators.clients);
            }
            let discovered_at = match discovered {
                Some(d) => when("--discovered", &d)?,
                None => jiff::Timestamp::now().as_second(),
            };
            let d = Declaration { title, description, discovered_at, indicators: i, from_alert: alert };
            let (id, r) = shown(incidents.declare(&lead, &d).await)?;
            print_revision(&r);
            println!("{id}");
        }
        IncidentCmd::Scope { indicators } => {
            let s = shown(incidents.preview(&lead, &indicators.indicators()?).await)?;
            println!(
                "{} confirmed, {} possibly affected; {} objects; {} matching events (not kept: `tiaki incident declare` or `revise` keeps a revision)",
                s.count(Class::Confirmed),
                s.count(Class::Possible),
                s.objects.len(),
                s.events
            );
        }
        IncidentCmd::Revise { id, note, indicators } => {
            let r = shown(incidents.revise(&lead, &id, &indicators.indicators()?, &note).await)?;
            print_revision(&r);
        }
        IncidentCmd::Diff { id, from, to } => diff(&app, &lead, &id, from, to).await?,
        IncidentCmd::Update { id, steps, commissioner_told, close } => {
            let told = commissioner_told.map(|t| when("--commissioner-told", &t)).transpose()?;
            shown(incidents.set_details(&lead, &id, &steps, told, close).await)?;
            eprintln!("Saved.");
        }
        IncidentCmd::Remediate { id, set, action, reason } => {
            let n = shown(
                incidents
                    .remediate(&lead, &id, shown(Set::parse(&set))?, &shown(Remedy::parse(&action))?, &reason)
                    .await,
            )?;
            eprintln!("Done: {n} touched; recorded against the incident.");
        }
        IncidentCmd::Notify { id, percent, per_minute, release, smtp, no_send } => {
            notify(config, &app, &lead, &id, (percent, per_minute, release), smtp, no_send).await?;
        }
        IncidentCmd::Report { id, org, csv, regulator, json } => {
            report(&app, &lead, &id, org, (csv, regulator, json)).await?;
        }
        IncidentCmd::Verify { id } => {
            let b = bar(0, "revisions")?;
            let v = shown(
                incidents
                    .verify(&lead, &id, |done, total| {
                        b.set_length(total as u64);
                        b.set_position(done as u64);
                    })
                    .await,
            )?;
            b.finish_and_clear();
            if v.problems.is_empty() {
                eprintln!(
                    "All {} revision(s) computed again from the log agree with what was kept and with the log's signed checkpoints.",
                    v.revisions
                );
            } else {
                for p in &v.problems {
                    eprintln!("  - {p}");
                }
                bail!(
                    "{} problem(s): keep a copy of the database and the checkpoints for investigation",
                    v.problems.len()
                );
            }
        }
    }
    Ok(())
}

#[expect(clippy::print_stdout, reason = "the report is this command's output")]
async fn report(
    app: &App,
    lead: &Lead,
    id: &str,
    org: Option<String>,
    (csv, regulator, json): (bool, bool, bool),
) -> Result<()> {
    let incidents = app.incidents();
    if regulator {
        let r = shown(incidents.regulator_report(lead, id).await)?;
        if json {
            println!("{}", serde_json::to_string_pretty(&r)?);
        } else {
            println!("{}\n\n{}\n", r.title, r.what_happened);
            println!("Confirmed affected: {}\nPossibly affected: {}\nObjects: {}", r.confirmed, r.possible, r.objects);
            println!("Notification: {}", r.notification);
            println!("Steps taken: {}", r.steps_taken);
        }
    } else if let Some(org) = org {
        let r = shown(incidents.controller_report(lead, id, &org).await)?;
        if csv {
            print!("{}", r.csv());
        } else {
            println!(
                "{}: {} confirmed, {} possibly affected, {} objects",
                r.controller_name, r.confirmed, r.possible, r.objects
            );
            for row in &r.rows {
                println!("{}\t{}\t{}\t{}\t{}", row.nhi, row.class.label(), row.kind, row.category, row.reached);
            }
        }
    } else {
        for (cid, name, c, p) in shown(incidents.controllers(lead, id).await)? {
            println!("{cid}\t{name}\t{c} confirmed\t{p} possible");
        }
    }
    Ok(())
}

#[expect(clippy::print_stdout, reason = "the diff is this command's output")]
async fn diff(app: &App, lead: &Lead, id: &str, from: Option<i64>, to: Option<i64>) -> Result<()> {
    let d = shown(app.incidents().detail(lead, id).await)?;
    let n = i64::try_from(d.revisions.len())?;
    let (from, to) = (from.unwrap_or(n - 1), to.unwrap_or(n));
    if n < 2 && (from < 1 || to < 1) {
        bail!("the incident has one revision: there is nothing to compare yet");
    }
    let diff = shown(app.incidents().diff(lead, id, from, to).await)?;
    for a in &diff.added {
        println!("+ indicator {a}");
    }
    for r in &diff.removed {
        println!("- indicator {r}");
    }
    for m in &diff.moved {
        println!("{}\t{} -> {}\t{}", m.patient_id, m.from.label(), m.to.label(), m.why);
    }
    eprintln!("{} moved between revision {from} and {to}.", diff.moved.len());
    Ok(())
}

async fn notify(
    config: &Config,
    app: &App,
    lead: &Lead,
    id: &str,
    (percent, per_minute, release): (i64, i64, Option<i64>),
    smtp: Option<String>,
    no_send: bool,
) -> Result<()> {
    let incidents = app.incidents();
    let campaigns = shown(incidents.campaigns(lead, id).await)?;
    let campaign = if let Some(c) = campaigns.iter().rev().find(|c| c.waiting > 0 || c.released_percent < 100) {
        {
            eprintln!(
                "Resuming the campaign started {} (revision {}).",
                app::incidents::nz_date(c.created_at),
                c.revision
            );
            if let Some(p) = release {
                shown(incidents.release(lead, id, &c.id, p, per_minute).await)?;
            }
            c.clone()
        }
    } else {
        let c = shown(incidents.start_campaign(lead, id, percent, per_minute).await)?;
        eprintln!("Started a campaign of {} notices from revision {}; {percent}% released.", c.total, c.revision);
        c
    };
    if no_send {
        return Ok(());
    }
    let to = match smtp {
        Some(addr) => Sender::Smtp(addr),
        None => Sender::from_config(config).map_err(|e| anyhow::anyhow!(e))?,
    };
    let b = bar(0, "notices")?;
    let report = shown(
        incidents
            .send_campaign_journalled(
                &campaign.id,
                &to,
                &config.mail_from,
                Some(&config.data_dir.join("campaigns")),
                |c| {
                    let released = (c.total * c.released_percent + 99) / 100;
                    b.set_length(u64::try_from(released).unwrap_or(0));
                    b.set_position(u64::try_from(c.total - c.waiting).unwrap_or(0));
                    b.set_message(format!("{} refused, {} unconfirmed", c.failed, c.unconfirmed));
                },
            )
            .await,
    )?;
    b.finish_and_clear();
    eprintln!(
        "Sent {}; refused by the mail server {} (listed for the practice on the incident page); {} to try again.",
        report.sent, report.failed, report.retry
    );
    if let Some(c) = shown(incidents.campaigns(lead, id).await)?.into_iter().find(|c| c.id == campaign.id)
        && c.released_percent < 100
    {
        eprintln!("{}% of this campaign is released; release more with --release 100.", c.released_percent);
    }
    Ok(())
}
