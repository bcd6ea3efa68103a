//! A practice's page for its staff: its patients, enrolling new ones, its staff (admins), its
//! rule on patients' second factors, and resetting a member's factors.

use super::{Notice, PageResult, notice_text, yes_or_no};
use crate::WebState;
use crate::error::WebError;
use crate::extract::PageId;
use crate::extract::{Auth, CsrfForm, Ctx};
use crate::views::{EnrolValues, InviteValues, Nav, PracticePage, render};
use app::domain::{PracticeId, StaffRole};
use app::{AppError, Enrolled, FieldError, SignedIn};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

/// Which page of the patient list, and its search (`?q=…&page=…`; anything unreadable is the
/// first page of everyone).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: String,
}

async fn practice_view(
    state: &WebState,
    ctx: &Ctx,
    who: &SignedIn,
    practice: PracticeId,
    (notice, list): (Option<String>, &ListQuery),
    enrol: (EnrolValues, Vec<FieldError>),
    invite: (InviteValues, Vec<FieldError>),
) -> Result<Response, WebError> {
    // Listing patients is the access check for the page as a whole.
    let patients = state
        .app
        .practices()
        .list_patients(&ctx.caller_as(who), practice, &list.q, list.page.trim().parse().unwrap_or(1))
        .await
        .map_err(WebError::page)?;
    let awaiting: Vec<crate::views::AwaitingLine> = state
        .app
        .practices()
        .awaiting_patients(&ctx.caller_as(who), practice)
        .await
        .map_err(WebError::page)?
        .into_iter()
        .map(Into::into)
        .collect();
    let row = state
        .app
        .practices()
        .practice(practice)
        .await
        .map_err(WebError::page)?
        .ok_or(WebError::page(AppError::NotFound))?;
    let is_admin = who.staff.is_some_and(|(_, r)| app::capabilities::may(r, app::capabilities::MANAGE_PRACTICE));
    let staff = if is_admin {
        Some(state.app.practices().list_staff(&ctx.caller_as(who), practice).await.map_err(WebError::page)?)
    } else {
        None
    };
    let patients_need_mfa = if is_admin {
        state.app.practices().patients_need_mfa(&ctx.caller_as(who), practice).await.map_err(WebError::page)?
    } else {
        false
    };
    let can_enrol = who.staff.is_some_and(|(_, r)| app::capabilities::may(r, app::capabilities::ENROL_PATIENTS));
    let status =
        if enrol.1.is_empty() && invite.1.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = PracticePage {
        nav: Some(Nav::new(who, ctx.csrf())),
        csrf: ctx.csrf(),
        notice,
        practice: row,
        can_enrol,
        can_release: who.staff.is_some_and(|(_, r)| app::capabilities::may(r, app::capabilities::RELEASE_RECORDS)),
        can_set_rules: who.staff.is_some_and(|(_, r)| app::capabilities::may(r, app::capabilities::MANAGE_PRACTICE)),
        can_run_book: who.staff.is_some_and(|(_, r)| app::capabilities::may(r, app::capabilities::RUN_BOOK)),
        can_repeats: who.staff.is_some_and(|(_, r)| app::capabilities::may(r, app::capabilities::PREPARE_REPEATS)),
        patients,
        awaiting,
        staff,
        me: who.account,
        patients_need_mfa,
        roles: StaffRole::ALL,
        enrol: enrol.0,
        enrol_errors: enrol.1,
        invite: invite.0,
        invite_errors: invite.1,
    };
    Ok((status, render(&page)).into_response())
}

/// The practice's page again, with a form's values and what was wrong with them.
async fn form_again(
    state: &WebState,
    ctx: &Ctx,
    who: &SignedIn,
    practice: PracticeId,
    enrol: (EnrolValues, Vec<FieldError>),
    invite: (InviteValues, Vec<FieldError>),
) -> Result<Response, WebError> {
    practice_view(state, ctx, who, practice, (None, &ListQuery::default()), enrol, invite).await
}

pub(crate) async fn practice_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(practice): PageId<PracticeId>,
    Query(n): Query<Notice>,
    Query(list): Query<ListQuery>,
) -> PageResult {
    let invite = InviteValues { role: "nurse".into(), ..InviteValues::default() };
    practice_view(
        &state,
        &ctx,
        &who,
        practice,
        (notice_text(&n), &list),
        (EnrolValues::default(), Vec::new()),
        (invite, Vec::new()),
    )
    .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct PolicyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    pub(crate) on: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ResetForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reset_email: String,
    #[serde(default)]
    checked: String,
}

/// Resets a patient's or staff member's second factors after an identity check (the
/// practice's admins, and operators).
pub(crate) async fn reset_factors(
    State(state): State<WebState>,
    PageId(practice): PageId<PracticeId>,
    CsrfForm(ctx, form): CsrfForm<ResetForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let caller = ctx.caller_as(&who);
    let result =
        state.app.identity().reset_factors_at_practice(&caller, practice, &form.reset_email, &form.checked).await;
    staff_change_answer(&state, &ctx, &who, practice, result, "factors-reset").await
}

/// Turns on or off the practice's requirement that its patients use a second factor.
pub(crate) async fn set_patient_mfa(
    State(state): State<WebState>,
    PageId(practice): PageId<PracticeId>,
    CsrfForm(ctx, form): CsrfForm<PolicyForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let on = yes_or_no(&form.on);
    state.app.practices().set_patients_need_mfa(&ctx.caller_as(&who), practice, on).await.map_err(WebError::page)?;
    let done = if on == Some(true) { "patient-mfa-on" } else { "patient-mfa-off" };
    Ok(Redirect::to(&format!("/practices/{practice}?done={done}")).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct EnrolPageForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    nhi: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    date_of_birth: String,
    #[serde(default)]
    email: String,
}

pub(crate) async fn enrol(
    State(state): State<WebState>,
    PageId(practice): PageId<PracticeId>,
    CsrfForm(ctx, form): CsrfForm<EnrolPageForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let input = app::EnrolForm { nhi: form.nhi, name: form.name, date_of_birth: form.date_of_birth, email: form.email };
    match state.app.practices().enrol(&ctx.caller_as(&who), practice, &input).await {
        Ok(outcome) => {
            let done = match outcome {
                Enrolled::New(_) => "enrolled",
                Enrolled::AwaitingConfirmation => "awaiting-confirmation",
                Enrolled::AlreadyEnrolled(_) => "already-enrolled",
            };
            Ok(Redirect::to(&format!("/practices/{practice}?done={done}")).into_response())
        }
        Err(AppError::Invalid(errors)) => {
            let values = EnrolValues {
                nhi: input.nhi,
                name: input.name,
                date_of_birth: input.date_of_birth,
                email: input.email,
            };
            form_again(&state, &ctx, &who, practice, (values, errors), (InviteValues::default(), Vec::new())).await
        }
        Err(e) => Err(WebError::page(e)),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct InvitePageForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    staff_name: String,
    #[serde(default)]
    staff_email: String,
    #[serde(default)]
    role: String,
}

pub(crate) async fn invite_staff(
    State(state): State<WebState>,
    PageId(practice): PageId<PracticeId>,
    CsrfForm(ctx, form): CsrfForm<InvitePageForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let input = app::InviteStaffForm { name: form.staff_name, email: form.staff_email, role: form.role };
    match state.app.practices().invite_staff(&ctx.caller_as(&who), practice, &input).await {
        Ok(()) => Ok(Redirect::to(&format!("/practices/{practice}?done=invited")).into_response()),
        Err(AppError::Invalid(errors)) => {
            let errors = super::form_fields(errors, &[("name", "staff_name"), ("email", "staff_email")]);
            let values = InviteValues { name: input.name, email: input.email, role: input.role };
            form_again(&state, &ctx, &who, practice, (EnrolValues::default(), Vec::new()), (values, errors)).await
        }
        Err(e) => Err(WebError::page(e)),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct StaffChangeForm {
    #[serde(default)]
    csrf: String,
    /// The staff member's account id.
    #[serde(default)]
    account: String,
    /// The new role (changing a role).
    #[serde(default)]
    role: String,
}

/// The answer to an admin's change on the practice page: back to the page with `done`, or the
/// page again with the refusal's message at the top (422).
async fn staff_change_answer<T>(
    state: &WebState,
    ctx: &crate::extract::Ctx,
    who: &app::SignedIn,
    practice: PracticeId,
    result: Result<T, AppError>,
    done: &str,
) -> PageResult {
    let errors = match result {
        Ok(_) => return Ok(Redirect::to(&format!("/practices/{practice}?done={done}")).into_response()),
        Err(AppError::Invalid(errors)) => errors,
        Err(e) => return Err(WebError::page(e)),
    };
    let message = errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join(" ");
    let invite = InviteValues { role: "nurse".into(), ..InviteValues::default() };
    let page = practice_view(
        state,
        ctx,
        who,
        practice,
        (Some(message), &ListQuery::default()),
        (EnrolValues::default(), Vec::new()),
        (invite, Vec::new()),
    )
    .await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// Removes a member of staff (the practice's admins).
pub(crate) async fn remove_staff(
    State(state): State<WebState>,
    PageId(practice): PageId<PracticeId>,
    CsrfForm(ctx, form): CsrfForm<StaffChangeForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let caller = ctx.caller_as(&who);
    let result = state.app.practices().remove_staff(&caller, practice, &form.account).await;
    staff_change_answer(&state, &ctx, &who, practice, result, "staff-removed").await
}

/// Changes a member of staff's role (the practice's admins).
pub(crate) async fn change_staff_role(
    State(state): State<WebState>,
    PageId(practice): PageId<PracticeId>,
    CsrfForm(ctx, form): CsrfForm<StaffChangeForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let caller = ctx.caller_as(&who);
    let result = state.app.practices().change_staff_role(&caller, practice, &form.account, &form.role).await;
    staff_change_answer(&state, &ctx, &who, practice, result, "staff-role").await
}

crate::extract::impl_has_csrf!(PolicyForm, ResetForm, EnrolPageForm, InvitePageForm, StaffChangeForm);
