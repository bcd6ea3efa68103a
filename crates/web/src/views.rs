//! Page templates (askama, compiled and auto-escaped) and the values they show.

use app::domain::StaffRole;
use app::{FieldError, Patient, Practice, PracticeSummary, SignedIn, StaffMember};
use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// Renders a template, or a plain 500 if rendering fails.
pub(crate) fn render<T: Template>(t: &T) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal error").into_response()
        }
    }
}

/// The signed-in header.
pub(crate) struct Nav {
    pub(crate) home: String,
    pub(crate) name: String,
    pub(crate) csrf: String,
    /// Ask, on every page, for a second factor the patient's practice requires.
    pub(crate) mfa_prompt: bool,
    /// A person's inbox (patients: every notice Tiaki gives them), and its unread count.
    pub(crate) inbox: Option<i64>,
    /// Whose record is open, when the person acts for someone: (their name, who the person
    /// is to them).
    pub(crate) acting: Option<(String, &'static str)>,
    /// Whether the person acts for anyone (the switcher is offered).
    pub(crate) can_switch: bool,
}

impl Nav {
    pub(crate) fn new(who: &SignedIn, csrf: &str) -> Self {
        Self {
            home: home_of(who),
            name: who.name.clone(),
            csrf: csrf.to_owned(),
            mfa_prompt: who.mfa_prompt,
            inbox: who.is_a_persons_own().then_some(who.unread_notices),
            acting: who.acting_for.as_ref().map(|a| (a.name.clone(), a.relationship)),
            can_switch: who.is_a_persons_own(),
        }
    }
}

/// Where each kind of account starts.
pub(crate) fn home_of(who: &SignedIn) -> String {
    if who.needs_second_factor || who.must_change_password {
        return "/account/security".into();
    }
    match (&who.patient, &who.staff) {
        (Some(p), _) => format!("/patients/{p}"),
        (_, Some((practice, _))) => format!("/practices/{practice}"),
        // Someone who acts for patients and has no record of their own here.
        _ if who.kind == app::domain::AccountKind::Patient => "/acting-for".into(),
        _ => "/operator".into(),
    }
}

fn find<'a>(errors: &'a [FieldError], field: &str) -> Option<&'a str> {
    errors.iter().find(|e| e.field == field).map(|e| e.message.as_str())
}

#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct MessagePage<'a> {
    pub(crate) nav: Option<Nav>,
    pub(crate) title: &'a str,
    pub(crate) message: &'a str,
    pub(crate) action: Option<(&'a str, &'a str)>,
}

#[derive(Template)]
#[template(path = "signin.html")]
pub(crate) struct SignInPage<'a> {
    pub(crate) nav: Option<Nav>,
    pub(crate) csrf: &'a str,
    pub(crate) email: &'a str,
    pub(crate) message: Option<&'a str>,
    /// Whether passkeys work at this portal's address.
    pub(crate) passkeys: bool,
}

#[derive(Template)]
#[template(path = "activate.html")]
pub(crate) struct ActivatePage<'a> {
    pub(crate) nav: Option<Nav>,
    pub(crate) csrf: &'a str,
    pub(crate) code: &'a str,
    pub(crate) heading: &'a str,
    pub(crate) name: Option<String>,
    pub(crate) email: String,
    pub(crate) first_operator: bool,
    pub(crate) form_name: &'a str,
    pub(crate) form_email: &'a str,
    pub(crate) errors: Vec<FieldError>,
}

impl ActivatePage<'_> {
    fn err(&self, field: &str) -> Option<&str> {
        find(&self.errors, field)
    }
}

#[derive(Template)]
#[template(path = "patient.html")]
#[expect(clippy::struct_excessive_bools, reason = "what the viewer may do: one flag per link or button the page shows")]
pub(crate) struct PatientPage {
    pub(crate) nav: Option<Nav>,
    pub(crate) csrf: String,
    pub(crate) notice: Option<String>,
    pub(crate) own: bool,
    /// The viewer acts for the patient (a parent, a carer): the patient's side, within scope.
    pub(crate) proxy: bool,
    /// The link to who may act for the patient (the patient; the practice's reception and
    /// clinicians).
    pub(crate) can_see_proxies: bool,
    /// Whether the viewer is an admin of the patient's practice (who may end the enrolment).
    pub(crate) can_unenrol: bool,
    pub(crate) can_read_records: bool,
    pub(crate) can_list_documents: bool,
    pub(crate) can_book: bool,
    pub(crate) can_repeats: bool,
    /// The patient's side of messaging (the patient, or a proxy with the scope).
    pub(crate) can_message: bool,
    pub(crate) can_view_access: bool,
    pub(crate) patient: Patient,
    pub(crate) practices: Vec<Practice>,
    /// Practices asking to enrol the patient (shown only to the patient themself).
    pub(crate) requests: Vec<RequestLine>,
    /// The patient's impact status for each open incident (shown only to the patient themself).
    pub(crate) impacts: Vec<ImpactBanner>,
}

impl PatientPage {
    fn date_of_birth(&self) -> String {
        crate::present::calendar_date(&self.patient.date_of_birth)
    }
}

pub(crate) struct SessionLine {
    pub(crate) id: String,
    pub(crate) device: String,
    pub(crate) ip: String,
    pub(crate) created: crate::present::Moment,
    pub(crate) last_seen: crate::present::Moment,
    pub(crate) current: bool,
}

#[derive(Template)]
#[template(path = "sessions.html")]
pub(crate) struct SessionsPage<'a> {
    pub(crate) nav: Option<Nav>,
    pub(crate) csrf: &'a str,
    pub(crate) notice: Option<String>,
    pub(crate) sessions: Vec<SessionLine>,
}

/// The values of the enrol form, kept when it is shown again with errors.
#[derive(Default)]
pub(crate) struct EnrolValues {
    pub(crate) nhi: String,
    pub(crate) name: String,
    pub(crate) date_of_birth: String,
    pub(crate) email: String,
}

/// The values of the invite form.
#[derive(Default)]
pub(crate) struct InviteValues {
    pub(crate) name: String,
    pub(crate) email: String,
    pub(crate) role: String,
}

#[derive(Template)]
#[expect(clippy::struct_excessive_bools, reason = "what the reader's role may do, one flag each")]
#[template(path = "practice.html")]
pub(crate) struct PracticePage<'a> {
    pub(crate) nav: Option<Nav>,
    pub(crate) csrf: &'a str,
    pub(crate) notice: Option<String>,
    pub(crate) practice: Practice,
    pub(crate) can_enrol: bool,
    /// Clinical staff release results; admins set what patients see.
    pub(crate) can_release: bool,
    pub(crate) can_set_rules: bool,
    pub(crate) can_run_book: bool,
    pub(crate) can_repeats: bool,
    pub(crate) patients: app::PatientList,
    /// Enrolments the practice asked for that the person has not accepted.
    pub(crate) awaiting: Vec<AwaitingLine>,
    pub(crate) staff: Option<Vec<StaffMember>>,
    /// The signed-in person's account (their own row in the staff list has no buttons).
    pub(crate) me: app::domain::AccountId,
    /// Whether the practice requires its patients to use a second factor (shown to admins).
    pub(crate) patients_need_mfa: bool,
    pub(crate) roles: [StaffRole; 4],
    pub(crate) enrol: EnrolValues,
    pub(crate) enrol_errors: Vec<FieldError>,
    pub(crate) invite: InviteValues,
    pub(crate) invite_errors: Vec<FieldError>,
}

impl PracticePage<'_> {
    fn enrol_err(&self, field: &str) -> Option<&str> {
        find(&self.enrol_errors, field)
    }
    fn invite_err(&self, field: &str) -> Option<&str> {
        find(&self.invite_errors, field)
    }
}

#[derive(Template)]
#[template(path = "operator.html")]
pub(crate) struct OperatorPage<'a> {
    pub(crate) nav: Option<Nav>,
    pub(crate) csrf: &'a str,
    pub(crate) notice: Option<String>,
    pub(crate) practices: Vec<PracticeSummary>,
    pub(crate) regions: &'static [&'static str],
    pub(crate) form: app::PracticeForm,
    pub(crate) errors: Vec<FieldError>,
    pub(crate) operator_name: String,
    pub(crate) operator_email: String,
    pub(crate) operator_errors: Vec<FieldError>,
    pub(crate) account_email: String,
    pub(crate) account_reason: String,
    pub(crate) account_errors: Vec<FieldError>,
    /// Patients' resets waiting for a second operator.
    pub(crate) resets: Vec<ResetLine>,
    pub(crate) reset_email: String,
    pub(crate) reset_checked: String,
    pub(crate) reset_errors: Vec<FieldError>,
    /// Whether operators and practice admins must sign in with a passkey.
    pub(crate) passkeys_required: bool,
}

/// A patient's reset waiting for a second operator, as the operators' page shows it.
pub(crate) struct ResetLine {
    pub(crate) id: String,
    pub(crate) email: String,
    pub(crate) requested_by: String,
    pub(crate) own: bool,
    pub(crate) checked: String,
    pub(crate) asked: String,
}

impl From<app::PatientResetView> for ResetLine {
    fn from(r: app::PatientResetView) -> Self {
        Self {
            id: r.id.to_string(),
            email: r.email,
            requested_by: r.requested_by,
            own: r.own,
            checked: r.checked,
            asked: crate::present::moment(r.requested_at).text,
        }
    }
}

impl OperatorPage<'_> {
    fn err(&self, field: &str) -> Option<&str> {
        find(&self.errors, field)
    }
    fn operator_err(&self, field: &str) -> Option<&str> {
        find(&self.operator_errors, field)
    }
    fn account_err(&self, field: &str) -> Option<&str> {
        find(&self.account_errors, field)
    }
    fn reset_err(&self, field: &str) -> Option<&str> {
        find(&self.reset_errors, field)
    }
}

/// One line of the access history, formatted.
pub(crate) struct AccessLine {
    pub(crate) when: crate::present::Moment,
    pub(crate) who: String,
    pub(crate) role: String,
    pub(crate) practice: Option<String>,
    pub(crate) what: String,
    pub(crate) module: &'static str,
    pub(crate) refused: bool,
    pub(crate) on_behalf: Option<String>,
}

#[derive(Template)]
#[template(path = "access.html")]
pub(crate) struct AccessPage {
    pub(crate) nav: Option<Nav>,
    pub(crate) own: bool,
    pub(crate) patient_id: String,
    pub(crate) patient_name: String,
    pub(crate) query: app::audit::history::HistoryQuery,
    pub(crate) modules: &'static [(&'static str, &'static str, &'static [app::domain::Module])],
    pub(crate) lines: Vec<AccessLine>,
    pub(crate) errors: Vec<FieldError>,
}

impl AccessPage {
    fn err(&self, field: &str) -> Option<&str> {
        find(&self.errors, field)
    }
}

/// One document in a list.
#[expect(clippy::struct_excessive_bools, reason = "independent yes/no facts the template shows, not a state machine")]
pub(crate) struct DocLine {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) category: String,
    pub(crate) clinical: bool,
    pub(crate) clinical_date: Option<String>,
    pub(crate) author: Option<String>,
    pub(crate) from: String,
    pub(crate) controller: String,
    pub(crate) size: String,
    pub(crate) added: String,
    pub(crate) hidden: bool,
    pub(crate) can_read: bool,
    pub(crate) can_withdraw: bool,
}

#[derive(Template)]
#[template(path = "documents.html")]
pub(crate) struct DocumentsPage {
    pub(crate) nav: Option<Nav>,
    pub(crate) csrf: String,
    pub(crate) own: bool,
    pub(crate) patient_id: String,
    pub(crate) show_hidden: bool,
    pub(crate) notice: Option<&'static str>,
    pub(crate) error: Option<String>,
    pub(crate) docs: Vec<DocLine>,
    /// This page of the list, and how many there are.
    pub(crate) page: i64,
    pub(crate) pages: i64,
    pub(crate) max_mb: i64,
}

#[derive(Template)]
#[template(path = "signin_verify.html")]
pub(crate) struct VerifyPage<'a> {
    pub(crate) nav: Option<Nav>,
    pub(crate) csrf: &'a str,
    pub(crate) message: Option<&'a str>,
    pub(crate) error: Option<&'a str>,
    /// Whether the account has a passkey to offer.
    pub(crate) passkey: bool,
}

#[derive(Template)]
#[template(path = "security.html")]
#[expect(clippy::struct_excessive_bools, reason = "independent facts the page shows")]
pub(crate) struct SecurityPage<'a> {
    pub(crate) nav: Option<Nav>,
    pub(crate) csrf: &'a str,
    pub(crate) notice: Option<&'a str>,
    pub(crate) status: app::MfaStatus,
    pub(crate) may_add_factor: bool,
    pub(crate) has_factor: bool,
    pub(crate) passkeys: Vec<app::identity::passkeys::PasskeyView>,
    pub(crate) passkeys_available: bool,
    /// Whether the session confirmed a factor in the last ten minutes (may change factors).
    pub(crate) confirmed: bool,
    pub(crate) setup: Option<app::TotpSetup>,
    pub(crate) codes: Option<Vec<String>>,
    pub(crate) errors: Vec<FieldError>,
    /// The password is on the breached/common list: only a new one is offered.
    pub(crate) must_change_password: bool,
    /// The account's email.
    pub(crate) email: String,
}

impl SecurityPage<'_> {
    fn err(&self, field: &str) -> Option<&str> {
        find(&self.errors, field)
    }
}

#[derive(Template)]
#[template(path = "forgot.html")]
pub(crate) struct ForgotPage<'a> {
    pub(crate) nav: Option<Nav>,
    pub(crate) csrf: &'a str,
    pub(crate) email: &'a str,
    pub(crate) message: Option<&'a str>,
    pub(crate) sent: bool,
}

#[derive(Template)]
#[template(path = "reset.html")]
pub(crate) struct ResetPage<'a> {
    pub(crate) nav: Option<Nav>,
    pub(crate) csrf: &'a str,
    pub(crate) code: &'a str,
    pub(crate) email: String,
    pub(crate) errors: Vec<FieldError>,
}

impl ResetPage<'_> {
    fn err(&self, field: &str) -> Option<&str> {
        find(&self.errors, field)
    }
}

/// The page where a code from an email is typed (emails carry codes, never links).
#[derive(Template)]
#[template(path = "enter_code.html")]
pub(crate) struct EnterCodePage<'a> {
    pub(crate) nav: Option<Nav>,
    pub(crate) csrf: &'a str,
    pub(crate) form: &'a CodeSpec,
    /// What was typed, when it is shown again with an error.
    pub(crate) code: &'a str,
    pub(crate) error: Option<&'a str>,
    pub(crate) notice: Option<&'a str>,
}

/// One of the pages where a code is typed: its words and where it goes.
pub(crate) struct CodeSpec {
    pub(crate) title: &'static str,
    pub(crate) intro: &'static str,
    /// Where the form goes.
    pub(crate) action: &'static str,
    pub(crate) button: &'static str,
    /// The way back: its address and words.
    pub(crate) back: (&'static str, &'static str),
}

/// An enrolment the practice asked for, waiting for the person: the NHI and the day asked.
pub(crate) struct AwaitingLine {
    pub(crate) nhi: String,
    pub(crate) asked: String,
}

impl From<app::AwaitingPatient> for AwaitingLine {
    fn from(a: app::AwaitingPatient) -> Self {
        Self { nhi: a.nhi, asked: crate::present::date_of(a.requested_at) }
    }
}

/// A practice asking to enrol the patient: which, and the day it asked.
pub(crate) struct RequestLine {
    pub(crate) practice: app::domain::PracticeId,
    pub(crate) practice_name: String,
    pub(crate) asked: String,
}

impl From<app::EnrolmentRequest> for RequestLine {
    fn from(r: app::EnrolmentRequest) -> Self {
        Self { practice: r.practice, practice_name: r.practice_name, asked: crate::present::date_of(r.requested_at) }
    }
}

/// One item of a health record, as a page shows it: plain words only.
#[derive(Debug, Clone)]
#[expect(clippy::struct_excessive_bools, reason = "independent marks on one item")]
pub(crate) struct RecordLine {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) date: Option<String>,
    /// (label, value) pairs: "Result" 48 mmol/mol, "Usual range" …
    pub(crate) details: Vec<(String, String)>,
    /// "Higher than the usual range", and its style.
    pub(crate) flag: Option<String>,
    pub(crate) flag_class: String,
    /// A result or a report: it has a page of its own.
    pub(crate) link: bool,
    pub(crate) held: bool,
    pub(crate) releases_on: Option<String>,
    pub(crate) hidden: bool,
    pub(crate) hidden_reason: Option<String>,
    pub(crate) removed: bool,
    /// The clinician's note to the patient.
    pub(crate) note: Option<String>,
    /// A medication that may be asked for again.
    pub(crate) repeats: bool,
}

#[derive(Template)]
#[template(path = "records.html")]
pub(crate) struct RecordsPage {
    pub(crate) nav: Option<Nav>,
    pub(crate) csrf: String,
    pub(crate) patient_id: String,
    pub(crate) own: bool,
    pub(crate) staff: bool,
    pub(crate) notice: Option<&'static str>,
    pub(crate) error: Option<String>,
    /// One category's page (its label), or the summary (`None`).
    pub(crate) category: Option<String>,
    /// (slug, label, how many) per category shown.
    pub(crate) counts: Vec<(String, String, usize)>,
    pub(crate) allergies_shown: bool,
    pub(crate) allergies: Vec<RecordLine>,
    pub(crate) conditions: Vec<RecordLine>,
    pub(crate) medications: Vec<RecordLine>,
    pub(crate) results: Vec<RecordLine>,
    pub(crate) recalls: Vec<RecordLine>,
    /// A category page's items.
    pub(crate) items: Vec<RecordLine>,
}

#[derive(Template)]
#[template(path = "record_item.html")]
pub(crate) struct RecordItemPage {
    pub(crate) nav: Option<Nav>,
    pub(crate) csrf: String,
    pub(crate) patient_id: String,
    pub(crate) staff: bool,
    pub(crate) notice: Option<&'static str>,
    pub(crate) item: RecordLine,
    /// The trend chart (SVG made from numbers and escaped text).
    pub(crate) chart: Option<String>,
    /// (date, value, flag, is this one) per result of the same test.
    pub(crate) table: Vec<(String, String, String, bool)>,
    pub(crate) members: Vec<RecordLine>,
    pub(crate) may_release: bool,
    pub(crate) updated: crate::present::Moment,
}

#[derive(Template)]
#[template(path = "results_queue.html")]
pub(crate) struct ResultsQueuePage {
    pub(crate) nav: Option<Nav>,
    pub(crate) csrf: String,
    pub(crate) practice_id: String,
    pub(crate) notice: Option<&'static str>,
    /// (item, patient's name, NHI, patient id, arrived).
    pub(crate) items: Vec<(RecordLine, String, String, String, String)>,
}

#[derive(Template)]
#[template(path = "record_rules.html")]
pub(crate) struct RecordRulesPage {
    pub(crate) nav: Option<Nav>,
    pub(crate) csrf: String,
    pub(crate) practice_id: String,
    pub(crate) notice: Option<&'static str>,
    pub(crate) error: Option<String>,
    /// (slug, label, released).
    pub(crate) categories: Vec<(String, String, bool)>,
    pub(crate) auto_release_days: String,
}

#[derive(Template)]
#[template(path = "security_console.html")]
pub(crate) struct SecurityConsolePage<'a> {
    pub(crate) nav: Option<Nav>,
    pub(crate) csrf: &'a str,
    pub(crate) notice: Option<String>,
    /// Alerts nobody has acknowledged.
    pub(crate) open: usize,
    pub(crate) alerts: Vec<crate::pages::security::AlertLine>,
    pub(crate) switches: Vec<crate::pages::security::SwitchLine>,
    /// Practices (id, name), for the kill switch's scope.
    pub(crate) practices: Vec<(String, String)>,
    /// Modules that can be switched off (code, label).
    pub(crate) modules: Vec<(&'static str, &'static str)>,
    pub(crate) actions: Vec<crate::pages::security::ActionLine>,
    pub(crate) rules: Vec<crate::pages::security::RuleLine>,
    pub(crate) form: crate::pages::security::SwitchInput,
    pub(crate) errors: Vec<FieldError>,
}

impl SecurityConsolePage<'_> {
    fn err(&self, field: &str) -> Option<&str> {
        find(&self.errors, field)
    }
}

#[derive(Template)]
#[template(path = "alert.html")]
pub(crate) struct AlertPage<'a> {
    pub(crate) nav: Option<Nav>,
    pub(crate) csrf: &'a str,
    pub(crate) notice: Option<String>,
    pub(crate) line: crate::pages::security::AlertLine,
    pub(crate) acknowledged: bool,
    /// Whether its response can be lifted (a suspension or lock not yet lifted).
    pub(crate) lift: bool,
    pub(crate) chart: crate::pages::security::Chart,
    pub(crate) events: Vec<crate::pages::security::EventLine>,
    pub(crate) truncated: bool,
    pub(crate) patients: Vec<String>,
    pub(crate) documents: Vec<String>,
    pub(crate) reason: String,
    pub(crate) errors: Vec<FieldError>,
}

impl AlertPage<'_> {
    fn err(&self, field: &str) -> Option<&str> {
        find(&self.errors, field)
    }
}

#[derive(Template)]
#[template(path = "genuine.html")]
pub(crate) struct GenuinePage<'a> {
    pub(crate) nav: Option<Nav>,
    pub(crate) csrf: &'a str,
    pub(crate) code: String,
    /// A code was checked (and the answer is below).
    pub(crate) checked: bool,
    /// What a genuine code stands for; none for anything else.
    pub(crate) genuine: Option<crate::pages::genuine::GenuineView>,
    /// Too many checks from this address.
    pub(crate) limited: bool,
}

#[derive(Template)]
#[template(path = "incidents.html")]
pub(crate) struct IncidentsPage<'a> {
    pub(crate) nav: Option<Nav>,
    pub(crate) csrf: &'a str,
    pub(crate) incidents: Vec<crate::pages::incidents::IncidentLine>,
    pub(crate) form: crate::pages::incidents::DeclareForm,
    pub(crate) errors: Vec<FieldError>,
}

impl IncidentsPage<'_> {
    fn err(&self, field: &str) -> Option<&str> {
        find(&self.errors, field)
    }
}

/// (from, to, indicators added, removed, who moved).
pub(crate) type DiffView = (i64, i64, Vec<String>, Vec<String>, Vec<crate::pages::incidents::MovedLine>);

#[derive(Template)]
#[template(path = "incident.html")]
pub(crate) struct IncidentPage<'a> {
    pub(crate) nav: Option<Nav>,
    pub(crate) csrf: &'a str,
    pub(crate) notice: Option<String>,
    pub(crate) incident: app::incidents::Incident,
    pub(crate) declared: crate::present::Moment,
    pub(crate) discovered: crate::present::Moment,
    pub(crate) told: Option<crate::present::Moment>,
    pub(crate) latest: Option<app::incidents::Revision>,
    /// (number, when, note, confirmed, possible), newest first.
    pub(crate) revisions: Vec<(i64, crate::present::Moment, String, i64, i64)>,
    pub(crate) moved: Option<DiffView>,
    /// (id, name, confirmed, possible).
    pub(crate) controllers: Vec<(String, String, usize, usize)>,
    pub(crate) campaigns: Vec<crate::pages::incidents::CampaignLine>,
    /// (recipient, state, the server's answer).
    pub(crate) failed: Vec<(String, String, String)>,
    /// (when, action, set, how many, why), newest first.
    pub(crate) actions: Vec<(crate::present::Moment, String, String, i64, String)>,
    pub(crate) forms: crate::pages::incidents::IncidentForms,
    pub(crate) errors: Vec<FieldError>,
}

impl IncidentPage<'_> {
    fn err(&self, field: &str) -> Option<&str> {
        find(&self.errors, field)
    }
}

#[derive(Template)]
#[template(path = "incident_report.html")]
pub(crate) struct ControllerReportPage {
    pub(crate) nav: Option<Nav>,
    pub(crate) incident_id: String,
    pub(crate) report: app::incidents::ControllerReport,
}

#[derive(Template)]
#[template(path = "regulator_report.html")]
pub(crate) struct RegulatorReportPage {
    pub(crate) nav: Option<Nav>,
    pub(crate) incident_id: String,
    pub(crate) report: app::incidents::RegulatorReport,
}

/// A patient's impact status for one incident (the banner).
#[derive(Debug, Clone)]
pub(crate) struct ImpactBanner {
    pub(crate) title: String,
    /// `none`, `possible` or `affected` (the banner's look).
    pub(crate) tone: &'static str,
    pub(crate) heading: &'static str,
    pub(crate) items: Vec<String>,
    pub(crate) found: String,
    pub(crate) steps_taken: String,
}

impl From<app::incidents::Impact> for ImpactBanner {
    fn from(i: app::incidents::Impact) -> Self {
        use app::domain::incidents::Class;
        let (tone, heading) = match i.class {
            Class::Confirmed => ("affected", "Affected: some of your information was seen"),
            Class::Possible => ("possible", "Possibly affected"),
            Class::NotAffected => ("none", "No impact on you"),
        };
        Self {
            title: i.title,
            tone,
            heading,
            items: i.items,
            found: app::incidents::nz_date(i.discovered_at),
            steps_taken: i.steps_taken,
        }
    }
}
