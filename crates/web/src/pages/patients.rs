//! A patient's record page, for the patient and the staff of their practices.

use super::{Notice, PageResult, notice_text};
use crate::WebState;
use crate::error::WebError;
use crate::extract::{Auth, CsrfForm, CsrfOnly, PageId};
use crate::views::{Nav, PatientPage, render};
use app::domain::{PatientId, PracticeId};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect};

pub(crate) async fn patient_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(patient): PageId<PatientId>,
    Query(n): Query<Notice>,
) -> PageResult {
    let (row, practices) =
        state.app.practices().view_patient(&ctx.caller_as(&who), patient).await.map_err(WebError::page)?;
    // Someone acting for the patient sees the patient's side, with the links their scopes open.
    let proxy = who.acting_for.as_ref().filter(|a| a.patient == patient).map(|a| a.scopes);
    let requests = if who.patient == Some(patient) && proxy.is_none() {
        state
            .app
            .practices()
            .enrolment_requests(&ctx.caller_as(&who), patient)
            .await
            .map_err(WebError::page)?
            .into_iter()
            .map(Into::into)
            .collect()
    } else {
        Vec::new()
    };
    let impacts = if who.patient == Some(patient) && proxy.is_none() {
        state
            .app
            .incidents()
            .impact(&ctx.caller_as(&who), patient)
            .await
            .map_err(WebError::page)?
            .into_iter()
            .map(crate::views::ImpactBanner::from)
            .collect()
    } else {
        Vec::new()
    };
    Ok(render(&PatientPage {
        impacts,
        nav: Some(Nav::new(&who, ctx.csrf())),
        csrf: ctx.csrf().to_owned(),
        notice: notice_text(&n),
        own: who.patient == Some(patient),
        proxy: proxy.is_some(),
        can_see_proxies: proxy.is_none()
            && who.staff.is_none_or(|(_, r)| app::capabilities::may(r, app::capabilities::SET_UP_PROXIES)),
        can_unenrol: who.staff.is_some_and(|(_, r)| app::capabilities::may(r, app::capabilities::MANAGE_PRACTICE)),
        // Staff see the links their role opens (the policy's own lists), no dead ends.
        can_read_records: proxy.is_none_or(|s| s.records)
            && who.staff.is_none_or(|(_, r)| app::capabilities::may(r, app::capabilities::READ_RECORDS)),
        can_list_documents: proxy.is_none_or(|s| s.documents)
            && who.staff.is_none_or(|(_, r)| app::capabilities::may(r, app::capabilities::LIST_DOCUMENTS)),
        can_book: proxy.is_none_or(|s| s.appointments)
            && who.staff.is_none_or(|(_, r)| app::capabilities::may(r, app::capabilities::RUN_BOOK)),
        can_repeats: proxy.is_none_or(|s| s.prescriptions)
            && who.staff.is_none_or(|(_, r)| app::capabilities::may(r, app::capabilities::PREPARE_REPEATS)),
        can_message: who.staff.is_none() && proxy.is_none_or(|s| s.messages),
        can_view_access: proxy.is_none()
            && who.staff.is_none_or(|(_, r)| app::capabilities::may(r, app::capabilities::VIEW_ACCESS_HISTORY)),
        patient: row,
        practices,
        requests,
    }))
}

/// A practice's admin ends the patient's enrolment there; back to the practice's page.
pub(crate) async fn unenrol(
    State(state): State<WebState>,
    PageId(patient): PageId<PatientId>,
    CsrfForm(ctx, _): CsrfForm<CsrfOnly>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    state.app.practices().unenrol(&ctx.caller_as(&who), patient).await.map_err(WebError::page)?;
    let to = who.staff.map_or_else(|| "/home".to_owned(), |(p, _)| format!("/practices/{p}?done=unenrolled"));
    Ok(Redirect::to(&to).into_response())
}

/// The patient leaves a practice; back to their page.
pub(crate) async fn leave_practice(
    State(state): State<WebState>,
    PageId(practice): PageId<PracticeId>,
    CsrfForm(ctx, _): CsrfForm<CsrfOnly>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    state.app.practices().leave(&ctx.caller_as(&who), practice).await.map_err(WebError::page)?;
    let to = who.patient.map_or_else(|| "/home".to_owned(), |p| format!("/patients/{p}?done=left-practice"));
    Ok(Redirect::to(&to).into_response())
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct AnswerForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    answer: String,
}

impl crate::extract::HasCsrf for AnswerForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The patient accepts or declines a practice's request to enrol them; back to their page.
pub(crate) async fn answer_enrolment_request(
    State(state): State<WebState>,
    PageId(practice): PageId<PracticeId>,
    CsrfForm(ctx, form): CsrfForm<AnswerForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let accept = state
        .app
        .practices()
        .answer_enrolment_request(&ctx.caller_as(&who), practice, &form.answer)
        .await
        .map_err(WebError::page)?;
    let done = if accept { "request-accepted" } else { "request-declined" };
    let to = who.patient.map_or_else(|| "/home".to_owned(), |p| format!("/patients/{p}?done={done}"));
    Ok(Redirect::to(&to).into_response())
}
