//! `tiaki demo`: a demo practice with staff and patients (test NHIs, starting with Z), so a
//! newcomer can click through the portal in a minute.

use anyhow::{Result, anyhow, bail};
use app::domain::{PracticeId, SessionId, StaffRole};
use app::{Config, EnrolForm, InviteStaffForm, Principal};
use indicatif::{ProgressBar, ProgressStyle};

const DEMO_HPI: &str = "FZZ999-B";

/// A memorable random passphrase: four words from a fixed list, chosen by the system RNG.
fn passphrase() -> String {
    const WORDS: &[&str] = &[
        "kowhai",
        "harbour",
        "lantern",
        "pebble",
        "tui",
        "kauri",
        "meadow",
        "copper",
        "ribbon",
        "glacier",
        "orchard",
        "pohutukawa",
        "violet",
        "anchor",
        "thistle",
        "marble",
        "kereru",
        "tussock",
        "cobalt",
        "ember",
        "fern",
        "saddle",
        "quartz",
        "willow",
        "harakeke",
        "puddle",
        "saffron",
        "beacon",
        "kumara",
        "drift",
        "zephyr",
        "tide",
    ];
    let bytes = uuid_bytes();
    (0..4).map(|i| WORDS[usize::from(bytes[i]) % WORDS.len()]).collect::<Vec<_>>().join("-")
}

fn uuid_bytes() -> [u8; 16] {
    // UUIDv4 comes from the operating system's CSPRNG.
    *app::domain::AccountId::random().as_uuid().as_bytes()
}

struct Login {
    who: String,
    email: String,
    password: String,
}

pub(crate) async fn run(config: &Config) -> Result<()> {
    let app = crate::open(config).await?;
    if app.console_practice_by_hpi(DEMO_HPI).await?.is_some() {
        bail!(
            "the demo practice ({DEMO_HPI}) is already in {}; use a fresh TIAKI_DATA_DIR for a new demo",
            config.data_dir.display()
        );
    }
    let staff = [
        ("Mere Tawhiri", "admin@kowhai.example.nz", StaffRole::Admin),
        ("Dr Aroha Ngata", "gp@kowhai.example.nz", StaffRole::Gp),
        ("Sam Patel", "nurse@kowhai.example.nz", StaffRole::Nurse),
    ];
    let patients = [
        ("ZZZ0016", "Hemi Walker", "1984-03-12", "hemi@example.nz"),
        ("ZAA0105", "Ana Lealaiauloto", "1991-07-30", "ana@example.nz"),
        ("ZBN77VL", "Grace Thompson", "1957-11-02", "grace@example.nz"),
    ];
    let bar = ProgressBar::new(u64::try_from(1 + staff.len() + patients.len())?);
    bar.set_style(ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg} (ETA {eta})",
    )?);
    let mut logins = Vec::new();
    let err = |e: app::AppError| anyhow!(crate::show(&e));

    bar.set_message("practice");
    let (practice, admin_link) = app
        .console_create_practice(&app::PracticeForm {
            name: "Kōwhai Health Centre (demo)".into(),
            hpi_facility_id: DEMO_HPI.into(),
            region: "Northland".into(),
            admin_name: staff[0].0.into(),
            admin_email: staff[0].1.into(),
        })
        .await
        .map_err(err)?;
    let mut set = async |who: &str, email: &str, link: &str| -> Result<()> {
        let token = link.rsplit_once("token=").map(|(_, t)| t).unwrap_or_default();
        let password = passphrase();
        app.set_password_by_link(token, &password, &password, None, None).await.map_err(err)?;
        logins.push(Login { who: who.into(), email: email.into(), password });
        Ok(())
    };
    set(&format!("{} (practice admin)", staff[0].0), staff[0].1, &admin_link).await?;
    bar.inc(1);
    for (name, email, role) in &staff[1..] {
        bar.set_message("staff");
        let link = app
            .console_invite_staff(
                practice,
                &InviteStaffForm { name: (*name).into(), email: (*email).into(), role: role.as_str().into() },
            )
            .await
            .map_err(err)?;
        set(&format!("{name} ({})", role.label()), email, &link).await?;
        bar.inc(1);
    }
    bar.inc(1);
    let enroller = admin_principal(&app, practice).await?;
    for (nhi, name, dob, email) in patients {
        bar.set_message("patients");
        let (_, link) = app
            .enrol_with_link(
                &app::Caller::console(enroller.clone()),
                practice,
                &EnrolForm { nhi: nhi.into(), name: name.into(), date_of_birth: dob.into(), email: email.into() },
            )
            .await
            .map_err(err)?;
        set(&format!("{name} (patient, NHI {nhi})"), email, &link).await?;
        bar.inc(1);
    }
    bar.finish_with_message("done");
    eprintln!(
        "\nDemo data is ready in {}. Start the portal with `tiaki serve`, open {}/signin and sign in as:\n",
        config.data_dir.display(),
        config.public_url
    );
    for l in &logins {
        eprintln!("  {:<44} {:<28} {}", l.who, l.email, l.password);
    }
    eprintln!("\nThese are demo accounts with test NHIs; do not use them for real patients.");
    Ok(())
}

/// The demo practice's admin, as a principal, to enrol the demo patients with.
async fn admin_principal(app: &app::App, practice: PracticeId) -> Result<Principal> {
    let staff = app
        .list_staff(
            &app::Caller::console(Principal::Staff {
                account: app::domain::AccountId::random(),
                session: SessionId::random(),
                practice,
                role: StaffRole::Admin,
            }),
            practice,
        )
        .await
        .map_err(|e| anyhow!(crate::show(&e)))?;
    let admin =
        staff.iter().find(|s| s.role == StaffRole::Admin).ok_or_else(|| anyhow!("the demo practice has no admin"))?;
    Ok(Principal::Staff { account: admin.account, session: SessionId::random(), practice, role: StaffRole::Admin })
}
