//! A normal clinic day, replayed through the real router at realistic proportions (issue 17's
//! drill (f), and the scale it is tuned on): a hospital pushes letters and the practices'
//! systems send health records in the early morning; through clinic hours each GP and nurse
//! sees a patient every quarter of an hour (their record, their documents, a letter or two);
//! patients sign in through the day to read their own records and documents (a few follow an
//! old link to something gone); parents act for their children; a couple of patients download
//! their whole record. The detectors' shipped defaults must raise nothing above "info" on it.

use crate::{Browser, PASSWORD, World, enrol, enrol_born, pdf, push, push_meta, staff};
use anyhow::{Result, anyhow};
use app::domain::{Clock, PatientId, PracticeId, StaffRole};
use axum::http::StatusCode;

/// How big a day.
#[derive(Debug, Clone, Copy)]
pub struct DayPlan {
    /// Patients enrolled at each of the two practices.
    pub patients_per_practice: usize,
    /// Consultations each clinician holds (one every fifteen minutes).
    pub consultations: usize,
    /// Children at practice A, each with a parent acting for them.
    pub children: usize,
    /// Patients who download their whole record.
    pub exports: usize,
}

impl Default for DayPlan {
    fn default() -> Self {
        Self { patients_per_practice: 24, consultations: 16, children: 3, exports: 2 }
    }
}

/// What the day did.
#[derive(Debug, Clone, Default)]
pub struct DayReport {
    /// Requests made.
    pub requests: usize,
    /// Documents opened (by patients, parents and staff).
    pub documents_read: usize,
    /// Sign-ins.
    pub sign_ins: usize,
    /// Requests refused with 404 (patients following old links).
    pub not_found: usize,
    /// The day's adult patients, practice A's first (for drills that follow the day).
    pub patients: Vec<Patient>,
}

/// One of the day's patients.
#[derive(Debug, Clone)]
pub struct Patient {
    /// Their id.
    pub id: PatientId,
    /// Their practice.
    pub practice: PracticeId,
    /// Their email (their password is [`PASSWORD`]).
    pub email: String,
    /// The hospital's discharge summary (the patient's to read; the practice does not read
    /// what another organisation sent).
    pub letter: String,
    /// The practice's own letter (a referral it sent), which its clinicians read.
    pub practice_letter: String,
}

fn id_in(body: &str) -> String {
    body.split("\"id\":\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or_default().to_owned()
}

async fn get(b: &mut Browser, path: &str, report: &mut DayReport) -> Result<StatusCode> {
    let r = b.get(path).await?;
    report.requests += 1;
    if r.status == StatusCode::NOT_FOUND {
        report.not_found += 1;
    } else if !(r.status.is_success() || r.status.is_redirection()) {
        return Err(anyhow!("a normal day's GET {path} answered {}: {}", r.status, r.body));
    }
    Ok(r.status)
}

async fn read_document(b: &mut Browser, who: &str, id: &str, report: &mut DayReport) -> Result<()> {
    let r = b.get(&format!("/documents/{id}/download")).await?;
    report.requests += 1;
    if r.status != StatusCode::OK {
        return Err(anyhow!("a normal day's document {id} was not served to {who}: {} {}", r.status, r.location()));
    }
    report.documents_read += 1;
    Ok(())
}

/// Practices' patients, each with their letters.
type Practices = Vec<(PracticeId, String, Vec<Patient>)>;

/// Early morning (6 am New Zealand time): the other clinicians' accounts, the patients, the
/// hospital's overnight letters, the practices' referral letters and records, and children
/// with a parent acting for each.
async fn morning(
    world: &World,
    plan: DayPlan,
    report: &mut DayReport,
) -> Result<(Practices, Vec<(String, PatientId)>)> {
    let t = &world.t;
    let now = Clock::now(&t.clock);
    t.clock.advance(86_400 - now.rem_euclid(86_400) + 17 * 3600);
    staff(t, world.practice_a, "nurse-a@example.nz", StaffRole::Nurse).await?;
    staff(t, world.practice_b, "gp-b@example.nz", StaffRole::Gp).await?;
    staff(t, world.practice_b, "nurse-b@example.nz", StaffRole::Nurse).await?;
    let console = t.app.console();
    let (_, hospital) = console
        .create_client("Hospital discharge feed", "G00001-A", "Te Whatu Ora Te Tai Tokerau", None)
        .await
        .map_err(|e| anyhow!("{e:?}"))?;
    for hpi in ["FAA111-A", "FBB222-B"] {
        console.add_agreement(hpi, "G00001-A").await.map_err(|e| anyhow!("{e:?}"))?;
    }
    let client_b = world.practice_b_client().await?;
    let mut practices: Practices =
        vec![(world.practice_a, world.client_a.clone(), Vec::new()), (world.practice_b, client_b, Vec::new())];
    for (p, (practice, system, patients)) in practices.iter_mut().enumerate() {
        let nhis = crate::appointments::test_nhis(if p == 0 { "ZNA" } else { "ZNB" }, plan.patients_per_practice);
        for (n, nhi) in nhis.iter().enumerate() {
            let email = format!("day{p}-{n}@example.nz");
            let (id, link) = enrol(t, *practice, nhi, &email).await?;
            console.set_password_by_link(&link, PASSWORD, PASSWORD, None, None).await.map_err(|e| anyhow!("{e:?}"))?;
            // The hospital's overnight letters arrive, a few seconds apart.
            t.clock.advance(7);
            let letter = sent(
                report,
                &push(t, &hospital, &push_meta(nhi, &format!("day-{p}-{n}")), &pdf("discharge", 1500)).await?,
            )?;
            // The practice's system files its referral letter and sends the record: a
            // condition and a medication.
            let practice_letter = sent(
                report,
                &push(t, system, &push_meta(nhi, &format!("ref-{p}-{n}")), &pdf("referral", 1200)).await?,
            )?;
            let body = crate::records::bundle(
                "transaction",
                [
                    crate::records::patient_entry("urn:uuid:p", nhi),
                    crate::records::put(
                        crate::records::condition(&format!("c-{p}-{n}"), "urn:uuid:p", "Asthma", "2015-03-01"),
                        1,
                    ),
                    crate::records::put(
                        crate::records::medication(
                            &format!("m-{p}-{n}"),
                            "urn:uuid:p",
                            "Salbutamol inhaler",
                            "2 puffs as needed",
                        ),
                        1,
                    ),
                ],
            );
            sent(report, &crate::records::ingest(t, system, &body).await?)?;
            patients.push(Patient { id, practice: *practice, email, letter, practice_letter });
        }
    }
    // Children at practice A, each with a parent (an adult patient there) acting for them.
    let mut parents = Vec::new();
    for (n, nhi) in crate::appointments::test_nhis("ZNC", plan.children).iter().enumerate() {
        let (child, _) = enrol_born(t, world.practice_a, nhi, &format!("child{n}@example.nz"), "2019-02-03").await?;
        let parent = &practices[0].2[n];
        let form = app::proxies::ProxyForm {
            email: parent.email.clone(),
            relationship: "parent".into(),
            scopes: vec!["appointments".into(), "prescriptions".into()],
            identity_check: "Birth certificate sighted".into(),
            ..app::proxies::ProxyForm::default()
        };
        t.app
            .proxies()
            .set_up(&crate::world::as_admin(t, world.practice_a).await?, child, &form)
            .await
            .map_err(|e| anyhow!("{e:?}"))?;
        parents.push((parent.email.clone(), child));
    }
    Ok((practices, parents))
}

/// A system's answer: accepted (its id), or the day stops.
fn sent(report: &mut DayReport, r: &crate::Reply) -> Result<String> {
    report.requests += 1;
    if !r.status.is_success() {
        return Err(anyhow!("a normal day's system request was refused: {} {}", r.status, r.body));
    }
    Ok(id_in(&r.body))
}

/// A patient signs in, reads their record and documents, and perhaps follows an old link or
/// downloads their whole record.
async fn patient_visit(world: &World, p: &Patient, n: usize, plan: DayPlan, report: &mut DayReport) -> Result<()> {
    let mut b = world.signed_in(&p.email, [10, 30, 0, u8::try_from(n % 250).unwrap_or(0) + 1]).await?;
    report.sign_ins += 1;
    get(&mut b, "/home", report).await?;
    get(&mut b, &format!("/patients/{}/records", p.id), report).await?;
    get(&mut b, &format!("/patients/{}/documents", p.id), report).await?;
    read_document(&mut b, &p.email, &p.letter, report).await?;
    read_document(&mut b, &p.email, &p.practice_letter, report).await?;
    if n.is_multiple_of(7) {
        // An old link from an email or a bookmark: the document is not there.
        get(&mut b, &format!("/documents/{}/download", app::domain::DocumentId::random()), report).await?;
    }
    if n < plan.exports {
        let r = b.post(&format!("/patients/{}/export", p.id), &[]).await?;
        report.requests += 1;
        if r.status != StatusCode::OK {
            return Err(anyhow!("a patient's export was refused: {} {}", r.status, r.body));
        }
    }
    Ok(())
}

/// A parent signs in, switches to their child and looks at what they may.
async fn parent_visit(world: &World, email: &str, child: PatientId, report: &mut DayReport) -> Result<()> {
    let mut b = world.signed_in(email, [10, 40, 0, 1]).await?;
    report.sign_ins += 1;
    get(&mut b, "/acting-for", report).await?;
    let r = b.post("/acting-for", &[("to", &child.to_string())]).await?;
    report.requests += 1;
    if r.status != StatusCode::SEE_OTHER {
        return Err(anyhow!("a parent could not switch to their child: {} {}", r.status, r.body));
    }
    get(&mut b, &format!("/patients/{child}/appointments"), report).await?;
    get(&mut b, &format!("/patients/{child}/repeats"), report).await?;
    Ok(())
}

/// Replays a normal day on `world` (whose clock it moves through the day).
///
/// # Errors
/// When any request a normal day makes is refused (everything it does is allowed).
pub async fn normal_day(world: &World, plan: DayPlan) -> Result<DayReport> {
    let mut report = DayReport::default();
    let (practices, parents) = morning(world, plan, &mut report).await?;
    // 8 am: clinic opens. Each clinician signs in once and sees a patient every 15 minutes.
    world.t.clock.advance(2 * 3600);
    let mut clinicians = Vec::new();
    for (n, (email, practice)) in
        [("gp-a@example.nz", 0), ("nurse-a@example.nz", 0), ("gp-b@example.nz", 1), ("nurse-b@example.nz", 1)]
            .into_iter()
            .enumerate()
    {
        let b = world.signed_in(email, [10, 20, 0, u8::try_from(n).unwrap_or(0) + 1]).await?;
        report.sign_ins += 1;
        clinicians.push((b, practice));
    }
    let mut reception = world.signed_in("admin-a@example.nz", [10, 20, 0, 9]).await?;
    report.sign_ins += 1;
    let everyone: Vec<&Patient> = practices.iter().flat_map(|(_, _, ps)| ps.iter()).collect();
    let mut next_patient = 0;
    for slot in 0..plan.consultations {
        for (c, (b, practice)) in clinicians.iter_mut().enumerate() {
            let list = &practices[*practice].2;
            let p = &list[(slot * 2 + c) % list.len()];
            let who = format!("clinician {c}");
            get(b, &format!("/patients/{}", p.id), &mut report).await?;
            get(b, &format!("/patients/{}/records", p.id), &mut report).await?;
            get(b, &format!("/patients/{}/documents", p.id), &mut report).await?;
            read_document(b, &who, &p.practice_letter, &mut report).await?;
            if slot % 3 == 0 {
                // A second look at the letter while writing the notes.
                read_document(b, &who, &p.practice_letter, &mut report).await?;
            }
        }
        if slot % 4 == 0 {
            get(&mut reception, &format!("/practices/{}", world.practice_a), &mut report).await?;
        }
        // Patients sign in through the day: a few each quarter-hour.
        for _ in 0..3 {
            let Some(p) = everyone.get(next_patient) else { break };
            patient_visit(world, p, next_patient, plan, &mut report).await?;
            next_patient += 1;
        }
        // Parents look in on their children now and then.
        if slot % 5 == 2 {
            for (email, child) in &parents {
                parent_visit(world, email, *child, &mut report).await?;
            }
        }
        world.t.clock.advance(15 * 60);
    }
    report.patients = practices.into_iter().flat_map(|(_, _, ps)| ps).collect();
    Ok(report)
}
