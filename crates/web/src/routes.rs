//! Every route, declared once. The router is built from this table, and the
//! authorisation-matrix and `OpenAPI` tests walk it, so a route cannot be added without them
//! noticing.

use crate::pages::{
    access, account, appointments, documents, genuine, inbox, incidents, messages, mfa, operator, passkeys, password,
    patients, practices, prescriptions, proxies, records, security, signin,
};
use crate::{WebState, api, openapi, ops, pages};
use axum::routing::{MethodRouter, get, post};

/// What a route serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An HTML page or form post.
    Page,
    /// A JSON endpoint (in the `OpenAPI` document).
    Api,
    /// Operations: health, metrics, static files, the API description.
    Ops,
}

/// One route.
#[derive(Debug)]
pub struct Route {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The axum path pattern.
    pub path: &'static str,
    /// What it serves.
    pub kind: Kind,
    /// Builds its handler.
    pub handler: fn() -> MethodRouter<WebState>,
}

macro_rules! routes {
    ($($method:ident $path:literal $kind:ident => $handler:path),* $(,)?) => {
        /// The route table.
        pub static ROUTES: &[Route] = &[
            $(Route {
                method: routes!(@name $method),
                path: $path,
                kind: Kind::$kind,
                handler: || $method($handler),
            }),*
        ];
    };
    (@name get) => { "GET" };
    (@name post) => { "POST" };
}

routes! {
    get  "/"                                     Page => pages::root,
    get  "/signin"                               Page => signin::signin_page,
    post "/signin"                               Page => signin::signin,
    get  "/signin/verify"                        Page => mfa::verify_page,
    post "/signin/verify"                        Page => mfa::verify,
    post "/signin/passkey/options"               Page => passkeys::sign_in_options,
    post "/signin/passkey"                       Page => passkeys::sign_in,
    post "/signin/verify/passkey/options"        Page => passkeys::second_factor_options,
    post "/signin/verify/passkey"                Page => passkeys::second_factor,
    get  "/signin/forgot"                        Page => password::forgot_page,
    post "/signin/forgot"                        Page => password::forgot,
    get  "/reset-password"                       Page => password::reset_page,
    post "/reset-password"                       Page => password::reset,
    post "/signout"                              Page => signin::signout,
    get  "/activate"                             Page => signin::activate_page,
    post "/activate"                             Page => signin::activate,
    get  "/home"                                 Page => pages::home,
    get  "/patients/{patient_id}"                Page => patients::patient_page,
    post "/patients/{patient_id}/unenrol"        Page => patients::unenrol,
    get  "/patients/{patient_id}/access"         Page => access::access_page,
    get  "/patients/{patient_id}/documents"      Page => documents::documents_page,
    post "/patients/{patient_id}/documents"      Page => documents::upload,
    get  "/documents/{document_id}/download"     Page => documents::download,
    post "/documents/{document_id}/rename"       Page => documents::rename,
    post "/documents/{document_id}/hide"         Page => documents::hide,
    post "/documents/{document_id}/delete"       Page => documents::delete,
    get  "/account/sessions"                     Page => account::sessions_page,
    get  "/account/security"                     Page => mfa::security_page,
    post "/account/security/totp"                Page => mfa::begin_totp,
    post "/account/security/totp/confirm"        Page => mfa::confirm_totp,
    post "/account/security/recovery-codes"      Page => mfa::regenerate_codes,
    post "/account/security/totp/remove"         Page => mfa::remove_totp,
    post "/account/security/passkeys/options"    Page => passkeys::register_options,
    post "/account/security/passkeys"            Page => passkeys::register,
    post "/account/security/passkeys/{passkey_id}/remove" Page => passkeys::remove,
    post "/account/security/confirm/options"     Page => passkeys::confirm_options,
    post "/account/security/confirm"             Page => passkeys::confirm,
    post "/account/security/password"            Page => password::change_password,
    post "/account/security/email"               Page => password::change_email,
    get  "/account/email/confirm"                Page => password::email_confirm_page,
    post "/account/email/confirm"                Page => password::email_confirm,
    post "/account/security/link"                Page => mfa::send_link,
    get  "/account/security/link"                Page => mfa::open_link,
    post "/account/sessions/{session_id}/end"    Page => account::end_session,
    post "/account/sessions/end-others"          Page => account::end_other_sessions,
    get  "/practices/{practice_id}"              Page => practices::practice_page,
    post "/practices/{practice_id}/patients"     Page => practices::enrol,
    post "/practices/{practice_id}/staff"        Page => practices::invite_staff,
    post "/practices/{practice_id}/patient-mfa"  Page => practices::set_patient_mfa,
    post "/practices/{practice_id}/reset-factors" Page => practices::reset_factors,
    post "/practices/{practice_id}/staff/remove" Page => practices::remove_staff,
    post "/practices/{practice_id}/leave"        Page => patients::leave_practice,
    post "/practices/{practice_id}/enrolment-request" Page => patients::answer_enrolment_request,
    post "/practices/{practice_id}/staff/role"   Page => practices::change_staff_role,
    get  "/operator"                             Page => operator::operator_page,
    post "/operator/practices"                   Page => operator::create_practice,
    post "/operator/operators"                   Page => operator::invite_operator,
    post "/operator/passkey-policy"              Page => operator::set_passkey_policy,
    post "/operator/accounts"                    Page => operator::account_action,
    post "/operator/patient-resets"              Page => operator::request_patient_reset,
    post "/operator/patient-resets/approve"      Page => operator::approve_patient_reset,
    get  "/operator/security"                    Page => security::console_page,
    get  "/operator/security/alerts/{alert_id}"  Page => security::alert_page,
    post "/operator/security/alerts/{alert_id}"  Page => security::settle,
    post "/operator/security/switches"           Page => security::switch,
    get  "/operator/incidents"                   Page => incidents::incidents_page,
    post "/operator/incidents"                   Page => incidents::declare,
    get  "/operator/incidents/{incident_id}"     Page => incidents::incident_page,
    post "/operator/incidents/{incident_id}/{incident_action}" Page => incidents::incident_action,
    get  "/operator/incidents/{incident_id}/report" Page => incidents::controller_report,
    get  "/operator/incidents/{incident_id}/regulator" Page => incidents::regulator_report,
    get  "/genuine"                              Page => genuine::genuine_page,
    post "/genuine"                              Page => genuine::check,
    get  "/api/v1/me"                            Api  => api::me,
    get  "/api/v1/patients/{patient_id}"         Api  => api::patient,
    post "/api/v1/practices/{practice_id}/patients" Api => api::enrol,
    get  "/api/v1/patients/{patient_id}/audit-events" Api => api::patient_audit_events,
    get  "/api/v1/audit-events"                  Api  => api::audit_events,
    get  "/api/v1/patients/{patient_id}/documents" Api => api::documents::api_list,
    post "/api/v1/patients/{patient_id}/documents" Api => api::documents::api_upload,
    get  "/api/v1/documents/{document_id}/content" Api => api::documents::api_download,
    post "/api/v1/documents"                     Api  => api::documents::push,
    get  "/api/v1/audit/proof/inclusion"         Api  => api::inclusion_proof,
    get  "/api/v1/audit/proof/consistency"       Api  => api::consistency_proof,
    get  "/api/openapi.json"                     Ops  => openapi::openapi,
    get  "/healthz"                              Ops  => ops::healthz,
    get  "/readyz"                               Ops  => ops::readyz,
    get  "/metrics"                              Ops  => ops::metrics,
    get  "/static/tiaki.css"                     Ops  => ops::stylesheet,
    get  "/static/passkey.js"                    Ops  => ops::passkey_script,
    get  "/robots.txt"                           Ops  => security::robots,
    get  "/audit/checkpoint"                     Ops  => ops::checkpoint,
    get  "/audit/key"                            Ops  => ops::log_key,
    post "/audit/cosignature"                    Ops  => ops::cosignature,
    // Last: the authorisation matrix withdraws its document here.
    post "/documents/{document_id}/withdraw"     Page => documents::withdraw,
    get  "/patients/{patient_id}/records"        Page => records::summary_page,
    get  "/patients/{patient_id}/records/{category}" Page => records::category_page,
    post "/patients/{patient_id}/export"         Page => records::export,
    get  "/records/{record_id}"                  Page => records::item_page,
    post "/records/{record_id}/release"          Page => records::release,
    post "/records/{record_id}/hide"             Page => records::hide,
    get  "/practices/{practice_id}/results"      Page => records::queue_page,
    get  "/practices/{practice_id}/record-rules" Page => records::rules,
    post "/practices/{practice_id}/record-rules" Page => records::set_rules,
    get  "/api/v1/patients/{patient_id}/records" Api  => api::records::api_record,
    get  "/api/v1/records/{record_id}"           Api  => api::records::api_item,
    post "/fhir/R4"                              Api  => api::records::ingest,
    get  "/patients/{patient_id}/appointments"   Page => appointments::list_page,
    post "/patients/{patient_id}/appointments"   Page => appointments::book,
    get  "/patients/{patient_id}/appointments/book" Page => appointments::book_page,
    get  "/appointments/{appointment_id}"        Page => appointments::appointment_page,
    post "/appointments/{appointment_id}/cancel" Page => appointments::cancel,
    post "/appointments/{appointment_id}/mark"   Page => appointments::mark,
    get  "/practices/{practice_id}/day"          Page => appointments::day_page,
    post "/practices/{practice_id}/block"        Page => appointments::block,
    get  "/practices/{practice_id}/book-setup"   Page => appointments::setup::setup_page,
    post "/practices/{practice_id}/book-setup"   Page => appointments::setup::change_setup,
    get  "/patients/{patient_id}/repeats"        Page => prescriptions::repeats_page,
    post "/patients/{patient_id}/repeats"        Page => prescriptions::request,
    post "/patients/{patient_id}/repeats/list"   Page => prescriptions::keep_list,
    get  "/repeats/{repeat_request_id}"          Page => prescriptions::request_page,
    post "/repeats/{repeat_request_id}"          Page => prescriptions::decide,
    get  "/practices/{practice_id}/repeats"      Page => prescriptions::queue_page,
    get  "/practices/{practice_id}/repeat-rules" Page => prescriptions::rules,
    post "/practices/{practice_id}/repeat-rules" Page => prescriptions::set_rules,
    post "/fhir/R4/appointments"                 Api  => api::appointments::sync,
    get  "/fhir/R4/Slot"                         Api  => api::appointments::slots,
    get  "/fhir/R4/Appointment"                  Api  => api::appointments::appointments,
    get  "/patients/{patient_id}/proxies"        Page => proxies::proxies_page,
    post "/patients/{patient_id}/proxies"        Page => proxies::set_up,
    post "/proxies/{proxy_id}/accept"            Page => proxies::accept,
    post "/proxies/{proxy_id}/revoke"            Page => proxies::revoke,
    get  "/acting-for"                           Page => proxies::acting_page,
    post "/acting-for"                           Page => proxies::switch,
    get  "/practices/{practice_id}/proxy-rules"  Page => proxies::rules_page,
    post "/practices/{practice_id}/proxy-rules"  Page => proxies::set_rules,
    get  "/inbox"                                Page => inbox::inbox_page,
    post "/inbox/read"                           Page => inbox::read_all,
    post "/inbox/settings"                       Page => inbox::set_prefs,
    post "/inbox/{notice_id}/open"               Page => inbox::open,
    get  "/patients/{patient_id}/messages"       Page => messages::list_page,
    post "/patients/{patient_id}/messages"       Page => messages::start,
    get  "/messages/{thread_id}"                 Page => messages::thread_page,
    post "/messages/{thread_id}"                 Page => messages::act,
    post "/messages/{thread_id}/attachments"     Page => messages::attach,
    get  "/practices/{practice_id}/messages"     Page => messages::inbox_page,
    get  "/practices/{practice_id}/messaging"    Page => messages::settings_page,
    post "/practices/{practice_id}/messaging"    Page => messages::set_settings,
}

/// Routes whose request bodies are documents: streamed, with the application's size limits
/// and a long timeout instead of the small-body limit and 30 seconds every other route has.
pub const STREAMING_UPLOADS: &[(&str, &str)] = &[
    ("POST", "/patients/{patient_id}/documents"),
    ("POST", "/api/v1/patients/{patient_id}/documents"),
    ("POST", "/api/v1/documents"),
    // Bundles up to 8 MiB: the handler reads at most that much and answers an OperationOutcome.
    ("POST", "/fhir/R4"),
    ("POST", "/fhir/R4/appointments"),
    // A document sent with a message: a health document of the patient's, like an upload.
    ("POST", "/messages/{thread_id}/attachments"),
];
