//! Page handlers: extract, call one application function, render.

use crate::WebState;
use crate::ctx::{Auth, CsrfForm, Ctx, HasCsrf};
use crate::error::WebError;
use crate::views::{
    AccessLine, AccessPage, ActivatePage, EnrolValues, InviteValues, MessagePage, Nav, OperatorPage, PatientPage,
    PracticePage, SessionLine, SessionsPage, SignInPage, home_of, render,
};
use app::domain::{PatientId, PracticeId, SessionId, StaffRole};
use app::{AppError, Enrolled, FieldError, InvitationPurpose, SignedIn};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

type PageResult = Result<Response, WebError>;

/// Parses an id from the path; anything malformed is simply "not found".
pub(crate) fn id<T: std::str::FromStr>(raw: &str) -> Result<T, WebError> {
    raw.parse().map_err(|_| WebError::page(AppError::NotFound))
}

/// A one-off notice carried across a redirect in the query string (only fixed codes, never text).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Notice {
    #[serde(default)]
    done: Option<String>,
}

fn notice_text(n: &Notice) -> Option<String> {
    Some(
        match n.done.as_deref()? {
            "enrolled" => "The patient is enrolled and has been emailed a link to activate their account.",
            "enrolled-existing" => "This patient already has a Tiaki account; they are now also enrolled here.",
            "already-enrolled" => "This patient is already enrolled here; nothing was changed.",
            "invited" => "The invitation has been emailed.",
            "practice" => "The practice was added and its admin has been emailed an invitation.",
            "ended" => "That session has been ended.",
            "ended-others" => "You have been signed out everywhere else.",
            "patient-mfa-on" => {
                "Patients must now use a second step. Those without one are asked to set one up on every page."
            }
            "patient-mfa-off" => "Patients may now choose whether to use a second step.",
            "factors-reset" => "Their sign-in was reset: their passkeys, authenticator app and recovery codes are gone, they are signed out everywhere, and they have been emailed.",
            "passkeys-on" => "Operators and practice admins must now sign in with a passkey.",
            "passkeys-off" => "Operators and practice admins may again sign in with a code.",
            _ => return None,
        }
        .to_owned(),
    )
}

pub(crate) async fn not_found(ctx: Ctx) -> Response {
    let nav = ctx.signed_in.as_ref().map(|s| Nav::new(s, ctx.csrf()));
    let page = MessagePage {
        nav,
        title: "Page not found",
        message: "There is nothing here, or you do not have access to it. Check the address, or go to your home page.",
        action: Some(("/", "Go to your home page")),
    };
    (StatusCode::NOT_FOUND, render(&page)).into_response()
}

pub(crate) async fn root(ctx: Ctx) -> Response {
    match &ctx.signed_in {
        Some(who) => Redirect::to(&home_of(who)).into_response(),
        None => (ctx.jar.clone(), Redirect::to("/signin")).into_response(),
    }
}

pub(crate) async fn signin_page(State(state): State<WebState>, ctx: Ctx) -> Response {
    if let Some(who) = &ctx.signed_in {
        return Redirect::to(&home_of(who)).into_response();
    }
    let page = render(&SignInPage {
        nav: None,
        csrf: ctx.csrf(),
        email: "",
        message: None,
        passkeys: state.app.passkeys_available(),
    });
    (ctx.jar, page).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

impl HasCsrf for SignInForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub(crate) async fn signin(State(state): State<WebState>, CsrfForm(ctx, form): CsrfForm<SignInForm>) -> Response {
    let device = crate::mfa::device_of(&ctx);
    match state.app.sign_in(&ctx.caller(), &form.email, &form.password, device.as_deref()).await {
        Ok(app::SignInStep::Done(outcome)) => {
            let home = home_of(&outcome.signed_in);
            let (secure, caller) = (ctx.secure, ctx.caller());
            let jar = ctx.with_session(outcome.token);
            let jar = crate::mfa::remember_browser(&state, jar, &caller, &outcome.signed_in, secure, false).await;
            (jar, Redirect::to(&home)).into_response()
        }
        // The password was right; no session until the second factor is.
        Ok(app::SignInStep::SecondFactor(challenge)) => {
            let secure = ctx.secure;
            (crate::mfa::with_challenge(ctx.jar, challenge, secure), Redirect::to("/signin/verify")).into_response()
        }
        Err(
            e @ (AppError::BadCredentials
            | AppError::RateLimited(_)
            | AppError::SignInPaused
            | AppError::PasswordMustChange),
        ) => {
            let status = crate::error::status_of(&e);
            let message = match &e {
                AppError::RateLimited(secs) => {
                    format!("Too many sign-in attempts. Please wait {} minute(s) and try again.", secs.div_ceil(60))
                }
                AppError::SignInPaused | AppError::PasswordMustChange => crate::error::words(&e).1,
                _ => "The email or password is not right. Check them and try again.".to_owned(),
            };
            let page = render(&SignInPage {
                nav: None,
                csrf: ctx.csrf(),
                email: &form.email,
                message: Some(&message),
                passkeys: state.app.passkeys_available(),
            });
            let mut response = (status, ctx.jar, page).into_response();
            if let AppError::RateLimited(secs) = e
                && let Ok(v) = secs.to_string().parse()
            {
                response.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
            response
        }
        Err(e) => WebError::page(e).into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

impl HasCsrf for CsrfOnly {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub(crate) async fn signout(State(state): State<WebState>, CsrfForm(ctx, _): CsrfForm<CsrfOnly>) -> PageResult {
    if let Some(who) = &ctx.signed_in {
        state.app.sign_out(&ctx.caller_as(who), who).await.map_err(WebError::page)?;
    }
    let page = render(&MessagePage {
        nav: None,
        title: "You have signed out",
        message: "You have signed out of Tiaki. If you are on a shared device, close the browser too.",
        action: Some(("/signin", "Sign in again")),
    });
    Ok((ctx.without_session(), page).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenQuery {
    #[serde(default)]
    pub(crate) token: String,
}

fn activation_heading(purpose: InvitationPurpose) -> &'static str {
    match purpose {
        InvitationPurpose::ActivatePatient => "Activate your account",
        InvitationPurpose::JoinStaff => "Join your practice on Tiaki",
        InvitationPurpose::JoinOperator => "Set up your operator account",
        InvitationPurpose::FirstOperator => "Set up Tiaki",
    }
}

pub(crate) async fn activate_page(State(state): State<WebState>, ctx: Ctx, Query(q): Query<TokenQuery>) -> PageResult {
    let invitation = state.app.invitation(&q.token).await.map_err(WebError::page)?;
    let page = render(&ActivatePage {
        nav: None,
        csrf: ctx.csrf(),
        token: &q.token,
        heading: activation_heading(invitation.purpose),
        name: invitation.name,
        email: invitation.email.unwrap_or_default(),
        first_operator: invitation.purpose == InvitationPurpose::FirstOperator,
        form_name: "",
        form_email: "",
        errors: Vec::new(),
    });
    Ok((ctx.jar, page).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActivateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

impl HasCsrf for ActivateForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub(crate) async fn activate(State(state): State<WebState>, CsrfForm(ctx, form): CsrfForm<ActivateForm>) -> PageResult {
    let result = state
        .app
        .accept_invitation(
            &ctx.caller(),
            &form.token,
            &form.password,
            &form.confirm,
            form.name.as_deref(),
            form.email.as_deref(),
        )
        .await;
    match result {
        Ok(outcome) => {
            let home = home_of(&outcome.signed_in);
            let (secure, caller) = (ctx.secure, ctx.caller());
            let jar = ctx.with_session(outcome.token);
            // The browser that activated the account is its first: no notice for it.
            let jar = crate::mfa::remember_browser(&state, jar, &caller, &outcome.signed_in, secure, true).await;
            Ok((jar, Redirect::to(&home)).into_response())
        }
        Err(AppError::Invalid(errors)) => {
            let invitation = state.app.invitation(&form.token).await.map_err(WebError::page)?;
            let page = render(&ActivatePage {
                nav: None,
                csrf: ctx.csrf(),
                token: &form.token,
                heading: activation_heading(invitation.purpose),
                name: invitation.name,
                email: invitation.email.unwrap_or_default(),
                first_operator: invitation.purpose == InvitationPurpose::FirstOperator,
                form_name: form.name.as_deref().unwrap_or_default(),
                form_email: form.email.as_deref().unwrap_or_default(),
                errors,
            });
            Ok((StatusCode::UNPROCESSABLE_ENTITY, ctx.jar, page).into_response())
        }
        Err(e) => Err(WebError::page(e)),
    }
}

pub(crate) async fn home(Auth(_, who): Auth) -> Response {
    Redirect::to(&home_of(&who)).into_response()
}

pub(crate) async fn patient_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    Path(raw): Path<String>,
) -> PageResult {
    let patient: PatientId = id(&raw)?;
    let (row, practices) = state.app.view_patient(&ctx.caller_as(&who), patient).await.map_err(WebError::page)?;
    Ok(render(&PatientPage {
        nav: Some(Nav::new(&who, ctx.csrf())),
        own: who.patient == Some(patient),
        // Staff see the links their role opens (the policy's own lists), no dead ends.
        can_list_documents: who.staff.is_none_or(|(_, r)| app::capabilities::may(r, app::capabilities::LIST_DOCUMENTS)),
        can_view_access: who
            .staff
            .is_none_or(|(_, r)| app::capabilities::may(r, app::capabilities::VIEW_ACCESS_HISTORY)),
        patient: row,
        practices,
    }))
}

fn describe_device(user_agent: &str) -> String {
    let browser = ["Edg", "Firefox", "Chrome", "Safari"]
        .into_iter()
        .find(|b| user_agent.contains(b))
        .map(|b| if b == "Edg" { "Edge" } else { b });
    let os = ["Android", "iPhone", "iPad", "Windows", "Mac OS", "Linux"]
        .into_iter()
        .find(|o| user_agent.contains(o))
        .map(|o| if o == "Mac OS" { "macOS" } else { o });
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(o)) => o.to_owned(),
        (None, None) if user_agent.is_empty() => "Unknown device".to_owned(),
        (None, None) => user_agent.chars().take(40).collect(),
    }
}

pub(crate) async fn sessions_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    Query(n): Query<Notice>,
) -> PageResult {
    let sessions = state.app.sessions(&who).await.map_err(WebError::page)?;
    let lines = sessions
        .into_iter()
        .map(|s| SessionLine {
            id: s.id.to_string(),
            device: describe_device(&s.user_agent),
            ip: s.ip,
            created: crate::present::moment(s.created_at),
            last_seen: crate::present::moment(s.last_seen_at),
            current: s.id == who.session,
        })
        .collect();
    Ok(render(&SessionsPage {
        nav: Some(Nav::new(&who, ctx.csrf())),
        csrf: ctx.csrf(),
        notice: notice_text(&n),
        sessions: lines,
    }))
}

pub(crate) async fn end_session(
    State(state): State<WebState>,
    Path(raw): Path<String>,
    CsrfForm(ctx, _): CsrfForm<CsrfOnly>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    if who.needs_second_factor {
        // A password alone (no second factor yet) cannot sign the holder out elsewhere.
        return Ok(Redirect::to("/account/security").into_response());
    }
    let session: SessionId = id(&raw)?;
    state.app.end_session(&ctx.caller_as(&who), &who, session).await.map_err(WebError::page)?;
    Ok(Redirect::to("/account/sessions?done=ended").into_response())
}

pub(crate) async fn end_other_sessions(
    State(state): State<WebState>,
    CsrfForm(ctx, _): CsrfForm<CsrfOnly>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    if who.needs_second_factor {
        return Ok(Redirect::to("/account/security").into_response());
    }
    state.app.end_other_sessions(&ctx.caller_as(&who), &who).await.map_err(WebError::page)?;
    Ok(Redirect::to("/account/sessions?done=ended-others").into_response())
}

async fn practice_view(
    state: &WebState,
    ctx: &Ctx,
    who: &SignedIn,
    practice: PracticeId,
    notice: Option<String>,
    enrol: (EnrolValues, Vec<FieldError>),
    invite: (InviteValues, Vec<FieldError>),
) -> Result<Response, WebError> {
    // Listing patients is the access check for the page as a whole.
    let patients = state.app.list_patients(&ctx.caller_as(who), practice).await.map_err(WebError::page)?;
    let row = state.app.practice(practice).await.map_err(WebError::page)?.ok_or(WebError::page(AppError::NotFound))?;
    let is_admin = who.staff.is_some_and(|(_, r)| app::capabilities::may(r, app::capabilities::MANAGE_PRACTICE));
    let staff = if is_admin {
        Some(state.app.list_staff(&ctx.caller_as(who), practice).await.map_err(WebError::page)?)
    } else {
        None
    };
    let patients_need_mfa = if is_admin {
        state.app.patients_need_mfa(&ctx.caller_as(who), practice).await.map_err(WebError::page)?
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
        patients,
        staff,
        patients_need_mfa,
        roles: StaffRole::ALL,
        enrol: enrol.0,
        enrol_errors: enrol.1,
        invite: invite.0,
        invite_errors: invite.1,
    };
    Ok((status, render(&page)).into_response())
}

pub(crate) async fn practice_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    Path(raw): Path<String>,
    Query(n): Query<Notice>,
) -> PageResult {
    let practice: PracticeId = id(&raw)?;
    let invite = InviteValues { role: "nurse".into(), ..InviteValues::default() };
    practice_view(
        &state,
        &ctx,
        &who,
        practice,
        notice_text(&n),
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
    on: String,
}

impl HasCsrf for PolicyForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
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

impl HasCsrf for ResetForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Resets a patient's or staff member's second factors after an identity check (the
/// practice's admins, and operators).
pub(crate) async fn reset_factors(
    State(state): State<WebState>,
    Path(raw): Path<String>,
    CsrfForm(ctx, form): CsrfForm<ResetForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let practice: PracticeId = id(&raw)?;
    match state.app.reset_factors_at_practice(&ctx.caller_as(&who), practice, &form.reset_email, &form.checked).await {
        Ok(_) => Ok(Redirect::to(&format!("/practices/{practice}?done=factors-reset")).into_response()),
        Err(AppError::Invalid(errors)) => {
            let message = errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join(" ");
            let invite = InviteValues { role: "nurse".into(), ..InviteValues::default() };
            let page = practice_view(
                &state,
                &ctx,
                &who,
                practice,
                Some(message),
                (EnrolValues::default(), Vec::new()),
                (invite, Vec::new()),
            )
            .await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(WebError::page(e)),
    }
}

/// A form's yes/no choice; none for anything else (refused after the access check).
fn yes_or_no(v: &str) -> Option<bool> {
    match v {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// Turns on or off the practice's requirement that its patients use a second factor.
pub(crate) async fn set_patient_mfa(
    State(state): State<WebState>,
    Path(raw): Path<String>,
    CsrfForm(ctx, form): CsrfForm<PolicyForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let practice: PracticeId = id(&raw)?;
    let on = yes_or_no(&form.on);
    state.app.set_patients_need_mfa(&ctx.caller_as(&who), practice, on).await.map_err(WebError::page)?;
    let done = if on == Some(true) { "patient-mfa-on" } else { "patient-mfa-off" };
    Ok(Redirect::to(&format!("/practices/{practice}?done={done}")).into_response())
}

/// Turns on or off the requirement that operators and practice admins sign in with a passkey.
pub(crate) async fn set_passkey_policy(
    State(state): State<WebState>,
    CsrfForm(ctx, form): CsrfForm<PolicyForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let on = yes_or_no(&form.on);
    state.app.set_passkeys_required(&ctx.caller_as(&who), on).await.map_err(WebError::page)?;
    Ok(Redirect::to(if on == Some(true) { "/operator?done=passkeys-on" } else { "/operator?done=passkeys-off" })
        .into_response())
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

impl HasCsrf for EnrolPageForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub(crate) async fn enrol(
    State(state): State<WebState>,
    Path(raw): Path<String>,
    CsrfForm(ctx, form): CsrfForm<EnrolPageForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let practice: PracticeId = id(&raw)?;
    let input = app::EnrolForm { nhi: form.nhi, name: form.name, date_of_birth: form.date_of_birth, email: form.email };
    match state.app.enrol_patient(&ctx.caller_as(&who), practice, &input).await {
        Ok(outcome) => {
            let done = match outcome {
                Enrolled::New(_) => "enrolled",
                Enrolled::Existing(_) => "enrolled-existing",
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
            practice_view(&state, &ctx, &who, practice, None, (values, errors), (InviteValues::default(), Vec::new()))
                .await
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

impl HasCsrf for InvitePageForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub(crate) async fn invite_staff(
    State(state): State<WebState>,
    Path(raw): Path<String>,
    CsrfForm(ctx, form): CsrfForm<InvitePageForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let practice: PracticeId = id(&raw)?;
    let input = app::InviteStaffForm { name: form.staff_name, email: form.staff_email, role: form.role };
    match state.app.invite_staff(&ctx.caller_as(&who), practice, &input).await {
        Ok(()) => Ok(Redirect::to(&format!("/practices/{practice}?done=invited")).into_response()),
        Err(AppError::Invalid(errors)) => {
            let errors = errors
                .into_iter()
                .map(|e| FieldError {
                    field: match e.field {
                        "name" => "staff_name",
                        "email" => "staff_email",
                        f => f,
                    },
                    message: e.message,
                })
                .collect();
            let values = InviteValues { name: input.name, email: input.email, role: input.role };
            practice_view(&state, &ctx, &who, practice, None, (EnrolValues::default(), Vec::new()), (values, errors))
                .await
        }
        Err(e) => Err(WebError::page(e)),
    }
}

#[derive(Default)]
struct OperatorInvite {
    name: String,
    email: String,
    errors: Vec<FieldError>,
}

async fn operator_view(
    state: &WebState,
    ctx: &Ctx,
    who: &SignedIn,
    notice: Option<String>,
    form: app::PracticeForm,
    errors: Vec<FieldError>,
    invite: OperatorInvite,
) -> PageResult {
    let practices = state.app.list_practices(&ctx.caller_as(who)).await.map_err(WebError::page)?;
    let status =
        if errors.is_empty() && invite.errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = OperatorPage {
        nav: Some(Nav::new(who, ctx.csrf())),
        csrf: ctx.csrf(),
        notice,
        practices,
        regions: app::domain::values::REGIONS,
        form,
        errors,
        operator_name: invite.name,
        operator_email: invite.email,
        operator_errors: invite.errors,
        passkeys_required: state.app.passkeys_required().await.map_err(WebError::page)?,
    };
    Ok((status, render(&page)).into_response())
}

pub(crate) async fn operator_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    Query(n): Query<Notice>,
) -> PageResult {
    operator_view(
        &state,
        &ctx,
        &who,
        notice_text(&n),
        app::PracticeForm::default(),
        Vec::new(),
        OperatorInvite::default(),
    )
    .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct PracticePageForm {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    form: app::PracticeForm,
}

impl HasCsrf for PracticePageForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub(crate) async fn create_practice(
    State(state): State<WebState>,
    CsrfForm(ctx, form): CsrfForm<PracticePageForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    match state.app.create_practice(&ctx.caller_as(&who), &form.form).await {
        Ok(_) => Ok(Redirect::to("/operator?done=practice").into_response()),
        Err(AppError::Invalid(errors)) => {
            operator_view(&state, &ctx, &who, None, form.form, errors, OperatorInvite::default()).await
        }
        Err(AppError::Conflict(m)) => {
            let errors = vec![FieldError { field: "hpi_facility_id", message: m }];
            operator_view(&state, &ctx, &who, None, form.form, errors, OperatorInvite::default()).await
        }
        Err(e) => Err(WebError::page(e)),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct OperatorInviteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    operator_name: String,
    #[serde(default)]
    operator_email: String,
}

impl HasCsrf for OperatorInviteForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub(crate) async fn invite_operator(
    State(state): State<WebState>,
    CsrfForm(ctx, form): CsrfForm<OperatorInviteForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    match state.app.invite_operator(&ctx.caller_as(&who), &form.operator_name, &form.operator_email).await {
        Ok(()) => Ok(Redirect::to("/operator?done=invited").into_response()),
        Err(AppError::Invalid(errors)) => {
            let invite = OperatorInvite { name: form.operator_name, email: form.operator_email, errors };
            operator_view(&state, &ctx, &who, None, app::PracticeForm::default(), Vec::new(), invite).await
        }
        Err(e) => Err(WebError::page(e)),
    }
}

pub(crate) async fn access_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    Path(raw): Path<String>,
    Query(query): Query<app::audit::history::HistoryQuery>,
) -> PageResult {
    let patient: PatientId = id(&raw)?;
    let caller = ctx.caller_as(&who);
    let (lines, errors) = match state.app.access_history(&caller, patient, &query).await {
        Ok(lines) => (lines, Vec::new()),
        Err(AppError::Invalid(errors)) => (Vec::new(), errors),
        Err(e) => return Err(WebError::page(e)),
    };
    let own = who.patient == Some(patient);
    // The patient's name for a privacy officer's heading; they may view the record too.
    let patient_name = if own {
        who.name.clone()
    } else {
        state.app.view_patient(&caller, patient).await.map(|(p, _)| p.name).unwrap_or_default()
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
