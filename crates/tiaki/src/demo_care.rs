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
    Ok(())
}
