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
    if app.console().practice_by_hpi(DEMO_HPI).await?.is_some() {
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
    let bar = ProgressBar::new(u64::try_from(3 + staff.len() + 4 * patients.len())?);
    bar.set_style(ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg} (ETA {eta})",
    )?);
    let mut logins = Vec::new();
    let err = |e: app::AppError| anyhow!(crate::show(&e));

    bar.set_message("practice");
    let (practice, admin_link) = app
        .console()
        .create_practice(&app::PracticeForm {
            name: "Kōwhai Health Centre (demo)".into(),
            hpi_facility_id: DEMO_HPI.into(),
            region: "Northland".into(),
            admin_name: staff[0].0.into(),
            admin_email: staff[0].1.into(),
        })
        .await
        .map_err(err)?;
    let mut set = async |who: &str, email: &str, token: &str| -> Result<()> {
        let password = passphrase();
        app.console().set_password_by_link(token, &password, &password, None, None).await.map_err(err)?;
        logins.push(Login { who: who.into(), email: email.into(), password });
        Ok(())
    };
    set(&format!("{} (practice admin)", staff[0].0), staff[0].1, &admin_link).await?;
    bar.inc(1);
    for (name, email, role) in &staff[1..] {
        bar.set_message("staff");
        let link = app
            .console()
            .invite_staff(
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
    let mut patient_ids = Vec::new();
    for (nhi, name, dob, email) in patients {
        bar.set_message("patients");
        let (outcome, link) = app
            .console()
            .enrol_with_link(
                &app::Caller::console(enroller.clone()),
                practice,
                &EnrolForm { nhi: nhi.into(), name: name.into(), date_of_birth: dob.into(), email: email.into() },
            )
            .await
            .map_err(err)?;
        if let app::Enrolled::New(id) = outcome {
            patient_ids.push(id);
        }
        set(&format!("{name} (patient, NHI {nhi})"), email, &link).await?;
        bar.inc(1);
    }
    let client = demo_documents(&app, &patients, &bar).await?;
    demo_records(&app, practice, &client, &patients, &bar).await?;
    crate::demo_care::demo_care(&app, practice, &patient_ids, &bar).await?;
    bar.set_message("proxy access");
    // The child's activation link is used here, like everyone's (no live link stays on disk).
    let child_link = demo_child(&app, practice, &enroller, patients[0].3).await?;
    set("Mia Walker (8; Hemi Walker acts for her)", "mia.walker@example.nz", &child_link).await?;
    bar.inc(1);
    bar.finish_with_message("done");
    eprintln!(
        "\nDemo data is ready in {}. Start the portal with `tiaki serve`, open {}/signin and sign in as:\n",
        config.data_dir.display(),
        config.public_url
    );
    for l in &logins {
        eprintln!("  {:<44} {:<28} {}", l.who, l.email, l.password);
    }
    eprintln!("\n{} is Mia Walker's parent: signed in as {0}, choose \"Switch person\" to act for her.", patients[0].1);
    eprintln!("\nStaff and operators set up an authenticator app (any TOTP app) at their first sign-in; patients may.");
    eprintln!("These are demo accounts with test NHIs; do not use them for real patients.");
    Ok(())
}

/// A child of the first demo patient's, enrolled at the practice, whom that parent may act
/// for until the practice's cut-off age. Returns the child's activation link.
async fn demo_child(
    app: &app::App,
    practice: app::domain::PracticeId,
    enroller: &Principal,
    parent: &str,
) -> Result<String> {
    let err = |e: app::AppError| anyhow!(crate::show(&e));
    let (outcome, child_link) = app
        .console()
        .enrol_with_link(
            &app::Caller::console(enroller.clone()),
            practice,
            &EnrolForm {
                nhi: "ZAA0113".into(),
                name: "Mia Walker".into(),
                date_of_birth: "2018-09-14".into(),
                email: "mia.walker@example.nz".into(),
            },
        )
        .await
        .map_err(err)?;
    if let app::Enrolled::New(child) = outcome {
        let form = app::proxies::ProxyForm {
            email: parent.into(),
            relationship: "parent".into(),
            scopes: ["appointments", "prescriptions", "messages", "records", "documents"].map(str::to_owned).to_vec(),
            starts: String::new(),
            expires: String::new(),
            identity_check: "Birth certificate and driver licence sighted (demo)".into(),
            ..app::proxies::ProxyForm::default()
        };
        // A GP: sharing records and documents is a clinician's decision.
        let gp = staff_principal(app, practice, app::domain::StaffRole::Gp).await?;
        app.proxies().set_up(&app::Caller::console(gp), child, &form).await.map_err(err)?;
    }
    Ok(child_link)
}

/// Sample documents for each demo patient: a hospital's discharge summary and clinic letter
/// (through a hospital's API client, under an agreement with the practice), and the practice's
/// referral letter and a result chart image (through the practice's own client).
async fn demo_documents(
    app: &app::App,
    patients: &[(&str, &str, &str, &str)],
    bar: &ProgressBar,
) -> Result<store::ApiClientRow> {
    let err = |e: app::AppError| anyhow!(crate::show(&e));
    let (practice_client, _) = app
        .console()
        .create_client("Kōwhai PMS (demo)", "", "Kōwhai Health Centre (demo)", Some(DEMO_HPI))
        .await
        .map_err(err)?;
    let (hospital_client, _) = app
        .console()
        .create_client("Whangārei Hospital discharges (demo)", "G00042-K", "Te Whatu Ora Te Tai Tokerau (demo)", None)
        .await
        .map_err(err)?;
    app.console().add_agreement(DEMO_HPI, "G00042-K").await.map_err(err)?;
    let as_client = |c: &store::ApiClientRow| {
        app::Caller::console(Principal::Client {
            client: c.id,
            org_id: c.org_id.clone(),
            practice: c.practice,
            scopes: c.scopes,
        })
    };
    let (hospital, practice) = (as_client(&hospital_client), as_client(&practice_client));
    for (n, (nhi, name, _, _)) in patients.iter().enumerate() {
        bar.set_message("documents");
        let docs: [(&app::Caller, &str, &str, &str, Vec<u8>); 4] = [
            (
                &hospital,
                "discharge_summary",
                "Discharge summary, Whangārei Hospital",
                "Dr Rangi Parata",
                pdf(
                    "Discharge summary",
                    &[
                        &format!("Patient: {name} (NHI {nhi})"),
                        "Admitted with community-acquired pneumonia.",
                        "Treated with IV antibiotics; discharged well on day 4.",
                        "GP to review in one week. (Demo document: not a real patient.)",
                    ],
                ),
            ),
            (
                &hospital,
                "clinic_letter",
                "Respiratory clinic letter",
                "Dr Lena Fischer",
                pdf(
                    "Respiratory outpatient clinic",
                    &[
                        &format!("Re: {name} (NHI {nhi})"),
                        "Chest X-ray clear at follow-up. No further clinic review needed.",
                        "(Demo document: not a real patient.)",
                    ],
                ),
            ),
            (
                &practice,
                "referral",
                "Referral to physiotherapy",
                "Dr Aroha Ngata",
                pdf(
                    "Referral",
                    &[
                        &format!("Please see {name} (NHI {nhi}) for pulmonary rehabilitation."),
                        "(Demo document: not a real patient.)",
                    ],
                ),
            ),
            (&practice, "result", "Peak flow chart", "Sam Patel", chart_png(u8::try_from(n % 4).unwrap_or(0))),
        ];
        for (i, (caller, category, title, author, bytes)) in docs.into_iter().enumerate() {
            let meta = app::PushMeta {
                nhi: (*nhi).into(),
                category: category.into(),
                title: title.into(),
                filename: None,
                clinical_date: format!("2025-1{}-{:02}", i % 2, 10 + i),
                author: author.into(),
                source_document_id: format!("demo-{nhi}-{i}"),
                controller_id: None,
                controller_name: None,
            };
            let body = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(bytes))]);
            app.documents().push(caller, &meta, body).await.map_err(err)?;
        }
        bar.inc(1);
    }
    Ok(practice_client)
}

/// Each demo patient's health record, as the practice's system sends it; then the GP releases
/// every result but the latest blood tests (left awaiting review) and hides one item from the
/// patient, as a practice would.
async fn demo_records(
    app: &app::App,
    practice: PracticeId,
    client: &store::ApiClientRow,
    patients: &[(&str, &str, &str, &str)],
    bar: &ProgressBar,
) -> Result<()> {
    let err = |e: app::AppError| anyhow!(crate::show(&e));
    app.console().set_client_records(client.id, true).await.map_err(err)?;
    let system = app::Caller::console(Principal::Client {
        client: client.id,
        org_id: client.org_id.clone(),
        practice: client.practice,
        scopes: app::domain::ClientScopes { records: true, appointments: true },
    });
    let gp = app::Caller::console(staff_principal(app, practice, StaffRole::Gp).await?);
    for (n, (nhi, ..)) in patients.iter().enumerate() {
        bar.set_message("health records");
        let bundle = app::records::demo::record_bundle(nhi, u32::try_from(n).unwrap_or(0));
        app.records()
            .ingest(&system, bundle.as_bytes())
            .await
            .map_err(|r| anyhow!("the demo record of {nhi} was refused: {:?}", r.outcome))?;
        bar.inc(1);
    }
    for (item, ..) in app.records().held_results(&gp, practice).await.map_err(err)? {
        if !matches!(item.resource, app::records::fhir::Resource::DiagnosticReport(_)) {
            app.records().release(&gp, item.id, "").await.map_err(err)?;
        }
    }
    let mut patients_seen = std::collections::BTreeSet::new();
    for (item, ..) in app.records().held_results(&gp, practice).await.map_err(err)? {
        if patients_seen.insert(item.patient) {
            let record = app.records().record(&gp, item.patient, Some(app::domain::RecordCategory::Conditions)).await;
            let low_mood = record.map_err(err)?.items.into_iter().find(|i| {
                matches!(&i.resource, app::records::fhir::Resource::Condition(c)
                    if c.code.as_ref().and_then(|c| c.text.as_deref()) == Some("Low mood"))
            });
            if let Some(i) = low_mood {
                app.records()
                    .set_hidden(&gp, i.id, true, "The patient asked that this not show in the portal for now.")
                    .await
                    .map_err(err)?;
            }
        }
    }
    Ok(())
}

/// A one-page PDF with a heading and lines of text (Helvetica; ASCII only).
fn pdf(heading: &str, lines: &[&str]) -> Vec<u8> {
    let clean = |t: &str| -> String {
        t.chars()
            .map(|c| match c {
                'ā' => 'a',
                'ē' => 'e',
                'ī' => 'i',
                'ō' => 'o',
                'ū' => 'u',
                'Ā' => 'A',
                'Ō' => 'O',
                c if c.is_ascii() && !c.is_ascii_control() => c,
                _ => '?',
            })
            .collect::<String>()
            .replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)")
    };
    let mut content = format!("BT /F1 18 Tf 56 780 Td ({}) Tj /F1 11 Tf 0 -32 Td 16 TL", clean(heading));
    for l in lines {
        content.push_str(" (");
        content.push_str(&clean(l));
        content.push_str(") Tj T*");
    }
    content.push_str(" ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A small greyscale PNG: bars of a chart (uncompressed deflate blocks, so no codec is needed).
fn chart_png(variant: u8) -> Vec<u8> {
    const W: usize = 120;
    const H: usize = 80;
    let mut raw = Vec::with_capacity((W + 1) * H);
    for y in 0..H {
        raw.push(0); // filter: none
        for x in 0..W {
            let bar = x / 12;
            let height = 20 + (bar * 7 + usize::from(variant) * 11) % 55;
            raw.push(if x % 12 < 9 && H - y <= height { 40 } else { 235 });
        }
    }
    // zlib: header, stored blocks of at most 65,535 bytes, Adler-32.
    let mut z = vec![0x78, 0x01];
    let mut chunks = raw.chunks(65_535).peekable();
    while let Some(c) = chunks.next() {
        z.push(u8::from(chunks.peek().is_none()));
        let len = u16::try_from(c.len()).unwrap_or(u16::MAX);
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(c);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        png.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        png.extend_from_slice(&body);
        png.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&u32::try_from(W).unwrap_or(0).to_be_bytes());
    ihdr.extend_from_slice(&u32::try_from(H).unwrap_or(0).to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &z);
    chunk(b"IEND", &[]);
    png
}

/// The demo practice's admin, as a principal, to enrol the demo patients with.
async fn admin_principal(app: &app::App, practice: PracticeId) -> Result<Principal> {
    staff_principal(app, practice, StaffRole::Admin).await
}

/// The demo practice's member of staff in `role`, as the principal the console acts as.
pub(crate) async fn staff_principal(app: &app::App, practice: PracticeId, role: StaffRole) -> Result<Principal> {
    let staff = app
        .practices()
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
    let member = staff.iter().find(|s| s.role == role).ok_or_else(|| anyhow!("the demo practice has no {role:?}"))?;
    Ok(Principal::Staff { account: member.account, session: SessionId::random(), practice, role })
}
