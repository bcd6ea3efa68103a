//! `tiaki demo`'s appointment book and repeat prescriptions: the demo practice's GP and nurse
//! have weekday templates (so four weeks of slots), and each demo patient has repeat-eligible
//! medications (from their health record, and one the practice entered) and one past request,
//! approved. Everything is done as the people who would do it, through the use cases.

use anyhow::{Result, anyhow};
use app::appointments::setup::SetupChange;
use app::domain::{PatientId, PracticeId, StaffRole};
use app::prescriptions::RequestForm;
use indicatif::ProgressBar;

pub(crate) async fn demo_care(
    app: &app::App,
    practice: PracticeId,
    patients: &[PatientId],
    bar: &ProgressBar,
) -> Result<()> {
    let err = |e: app::AppError| anyhow!(crate::show(&e));
    bar.set_message("appointment book");
    let admin = app::Caller::console(crate::demo::staff_principal(app, practice, StaffRole::Admin).await?);
    let gp = app::Caller::console(crate::demo::staff_principal(app, practice, StaffRole::Gp).await?);
    let nurse = app::Caller::console(crate::demo::staff_principal(app, practice, StaffRole::Nurse).await?);
    let book = app.appointments();
    for (name, kind) in [("Dr Aroha Ngata", "gp"), ("Sam Patel", "nurse")] {
        let change =
            SetupChange::AddClinician {
                name: name.into(), kind: kind.into(), location: "Kōwhai Health Centre".into()
            };
        book.change_setup(&admin, practice, change).await.map_err(err)?;
    }
    for (name, minutes, modality, online) in
        [("Standard", 15, "in_person", true), ("Long", 30, "in_person", false), ("Phone", 10, "phone", true)]
    {
        let change = SetupChange::Type { name: name.into(), minutes, modality: modality.into(), online };
        book.change_setup(&admin, practice, change).await.map_err(err)?;
    }
    let setup = book.setup(&admin, practice).await.map_err(err)?;
    let kind = |n: &str| setup.types.iter().find(|t| t.name == n).map(|t| t.id).ok_or_else(|| anyhow!("no type {n}"));
    for schedule in &setup.schedules {
        for weekday in 1..=5 {
            for (start, end, k) in
                [("08:30", "12:00", "Standard"), ("13:00", "16:30", "Standard"), ("16:30", "17:30", "Phone")]
            {
                let change = SetupChange::AddTemplate {
                    schedule: schedule.id,
                    type_id: kind(k)?,
                    weekday,
                    start: start.into(),
                    end: end.into(),
                };
                book.change_setup(&admin, practice, change).await.map_err(err)?;
            }
        }
    }
    bar.inc(1);
    for patient in patients {
        bar.set_message("repeat prescriptions");
        let me = app.console().as_patient(*patient).await.map_err(err)?;
        let repeats = app.prescriptions();
        repeats
            .keep_list(&gp, *patient, None, "Paracetamol 500 mg — two tablets up to four times a day", false, true)
            .await
            .map_err(err)?;
        repeats.keep_list(&gp, *patient, None, "Zopiclone 7.5 mg", true, true).await.map_err(err)?;
        // Seeing the list adopts what the health record marks repeat-eligible.
        let page = repeats.page(&me, *patient).await.map_err(err)?;
        let items: Vec<_> = page.items.iter().filter(|m| !m.excluded && m.active).map(|m| m.id).take(2).collect();
        let form = RequestForm {
            items,
            collection: "practice".into(),
            request_key: format!("demo-{patient}"),
            ..RequestForm::default()
        };
        let request = repeats.request(&me, *patient, &form).await.map_err(err)?;
        repeats.decide(&nurse, request.id, "review", "").await.map_err(err)?;
        repeats.decide(&gp, request.id, "ready_to_collect", "").await.map_err(err)?;
        bar.inc(1);
    }
    if let Some(first) = patients.first() {
        bar.set_message("messages");
        demo_messages(app, practice, *first).await?;
    }
    Ok(())
}

/// The demo practice takes messages, and its first demo patient has a conversation with the
/// nurses: their question, a nurse's reply, and a note of the nurse's the patient never sees.
pub(crate) async fn demo_messages(app: &app::App, practice: PracticeId, patient: PatientId) -> Result<()> {
    let err = |e: app::AppError| anyhow!(crate::show(&e));
    let admin = app::Caller::console(crate::demo::staff_principal(app, practice, StaffRole::Admin).await?);
    let nurse = app::Caller::console(crate::demo::staff_principal(app, practice, StaffRole::Nurse).await?);
    let form = app::messages::SettingsForm {
        on: true,
        after_hours: app::messages::DEFAULT_AFTER_HOURS.into(),
        fee_notice: String::new(),
        reply_days: "2".into(),
        clinicians: Vec::new(),
    };
    app.messages().set_settings(&admin, practice, &form).await.map_err(err)?;
    let me = app.console().as_patient(patient).await.map_err(err)?;
    let start = app::messages::StartForm {
        practice: practice.to_string(),
        to: "team:nurses".into(),
        subject: "Flu vaccine this year".into(),
        body: "Kia ora, am I due for the flu vaccine, and can I get it at the practice?".into(),
        request_key: "demo-flu-vaccine".into(),
    };
    let thread = app.messages().start(&me, patient, &start).await.map_err(err)?;
    let reply =
        "Kia ora Hemi, yes: it is free for you this year. Book a nurse appointment online, any weekday morning.";
    app.messages().reply(&nurse, thread, reply, false).await.map_err(err)?;
    app.messages().reply(&nurse, thread, "Offer the COVID booster at the same visit.", true).await.map_err(err)?;
    Ok(())
}
