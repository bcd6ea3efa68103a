//! "Who has looked at my records": a patient's access history, for the patient and their
//! practice's privacy officer.

use super::PageResult;
use crate::WebState;
use crate::error::WebError;
use crate::extract::Auth;
use crate::extract::PageId;
use crate::views::{AccessLine, AccessPage, Nav, render};
use app::AppError;
use app::domain::PatientId;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;

pub(crate) async fn access_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(patient): PageId<PatientId>,
    Query(query): Query<app::audit::history::HistoryQuery>,
) -> PageResult {
    let caller = ctx.caller_as(&who);
    let (lines, errors) = match state.app.access_log().access_history(&caller, patient, &query).await {
        Ok(lines) => (lines, Vec::new()),
        Err(AppError::Invalid(errors)) => (Vec::new(), errors),
        Err(e) => return Err(WebError::page(e)),
    };
    let own = who.patient == Some(patient);
    // The patient's name for a privacy officer's heading; they may view the record too.
    let patient_name = if own {
        who.name.clone()
    } else {
        state.app.practices().view_patient(&caller, patient).await.map(|(p, _)| p.name).unwrap_or_default()
    };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = AccessPage {
        nav: Some(Nav::new(&who, ctx.csrf())),
        own,
        patient_id: patient.to_string(),
        patient_name,
        query,
        modules: app::audit::history::MODULES,
        lines: lines
            .into_iter()
            .map(|l| AccessLine {
                when: crate::present::moment_ms(l.at_ms),
                who: l.who,
                role: l.role,
                practice: l.practice,
                what: l.what,
                module: l.module,
                refused: l.outcome != "allowed",
                on_behalf: l.on_behalf,
            })
            .collect(),
        errors,
    };
    Ok((status, render(&page)).into_response())
}
