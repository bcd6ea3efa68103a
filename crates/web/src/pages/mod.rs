//! Page handlers: extract, call one application function, render.

pub(crate) mod access;
pub(crate) mod account;
pub(crate) mod appointments;
pub(crate) mod documents;
pub(crate) mod genuine;
pub(crate) mod inbox;
pub(crate) mod incidents;
pub(crate) mod messages;
pub(crate) mod mfa;
pub(crate) mod operator;
pub(crate) mod passkeys;
pub(crate) mod password;
pub(crate) mod patients;
pub(crate) mod practices;
pub(crate) mod prescriptions;
pub(crate) mod proxies;
pub(crate) mod records;
pub(crate) mod security;
pub(crate) mod signin;

use crate::error::WebError;
use crate::extract::{Auth, Ctx};
use crate::views::{MessagePage, Nav, home_of, render};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

pub(crate) type PageResult = Result<Response, WebError>;

/// The `?done=` a page is sent back with after a form (which notice to show).
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct Done {
    #[serde(default)]
    pub(crate) done: Option<String>,
}

/// A one-off notice carried across a redirect in the query string (only fixed codes, never text).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Notice {
    #[serde(default)]
    done: Option<String>,
}

pub(crate) fn notice_text(n: &Notice) -> Option<String> {
    Some(
        match n.done.as_deref()? {
            "enrolled" => "The patient is enrolled and has been emailed a code to activate their account.",
            "awaiting-confirmation" => {
                "This NHI number is already registered with Tiaki. The person will be asked to confirm; your practice sees \
                 their record once they accept. It is listed under \"Waiting for the patient\" until then."
            }
            "request-accepted" => "Done: that practice is now one of your practices and can see your record.",
            "request-declined" => "Declined: that practice cannot see anything in your account.",
            "already-enrolled" => "This patient is already enrolled here; nothing was changed.",
            "invited" => "The invitation has been emailed.",
            "practice" => "The practice was added and its admin has been emailed an invitation.",
            "ended" => "That session has been ended.",
            "ended-others" => "You have been signed out everywhere else.",
            "patient-mfa-on" => {
                "Patients must now use a second step. Until they have one, signing in with a password alone shows them only \
                 where to set one up, none of their records."
            }
            "patient-mfa-off" => "Patients may now choose whether to use a second step.",
            "factors-reset" => "Their sign-in was reset: their passkeys, authenticator app and recovery codes are gone, they are signed out everywhere, and they have been emailed.",
            "passkeys-on" => "Operators and practice admins must now sign in with a passkey.",
            "passkeys-off" => "Operators and practice admins may again sign in with a code.",
            "unenrolled" => "The patient's enrolment here has ended: the practice's staff no longer see their record. They have been emailed.",
            "left-practice" => "You have left the practice: its staff can no longer see your record. Documents it sent you stay here.",
            "staff-removed" => "They have been removed: signed out everywhere, and they can no longer sign in. They have been emailed.",
            "staff-role" => "Their role has changed; it applies from their next click.",
            "account-disabled" => "The account is disabled: signed out everywhere and unable to sign in. They have been emailed.",
            "account-enabled" => "The account is enabled again: they can sign in with their password.",
            "reset-requested" => "Asked. Another operator must approve it within a day; nothing has changed yet.",
            "proxy-set-up" => "Done. They have been told in Tiaki; the patient has been told too.",
            "proxy-accepted" => "Accepted: they can now act for you within what your practice set up.",
            "proxy-revoked" => "Ended: they can no longer act for you, from their next click.",
            "proxy-rules" => "Saved. The age applies to every parent's access from now on.",
            "message-sent" => "Sent. The practice will reply here; you will see it in your inbox.",
            "document-sent" => "The document is sent, and kept in your health documents.",
            "note-added" => "The note is added. The patient does not see it.",
            "thread-updated" => "Done.",
            "inbox-read" => "Everything is marked as read.",
            "inbox-prefs" | "messaging-saved" => "Saved.",
            "inbox-no-access" => "That notice is about someone you can no longer act for.",
            "reset-approved" => "Approved: their sign-in was reset, they are signed out everywhere, and they have been emailed.",
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

pub(crate) async fn home(Auth(_, who): Auth) -> Response {
    Redirect::to(&home_of(&who)).into_response()
}

/// A form's yes/no choice; none for anything else (refused after the access check).
/// A use case's field errors named as the page's form names its fields (`renames`: use case's
/// name, form's name), where one page holds several forms.
pub(crate) fn form_fields(errors: Vec<app::FieldError>, renames: &[(&str, &'static str)]) -> Vec<app::FieldError> {
    errors
        .into_iter()
        .map(|e| app::FieldError {
            field: renames.iter().find(|(from, _)| *from == e.field).map_or(e.field, |(_, to)| *to),
            message: e.message,
        })
        .collect()
}

pub(crate) fn yes_or_no(v: &str) -> Option<bool> {
    match v {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}
