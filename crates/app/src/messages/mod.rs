//! Secure messaging (issue 16): conversations between a patient (or someone acting for them
//! with the messages scope) and a practice they are enrolled at, addressed to a team or to a
//! clinician who takes messages; the practice's inbox (open and closed, assigned or not,
//! internal notes the patient never sees, read state on both sides); and the practice's
//! set-up (on or off, the clinicians who take messages by name, the notices shown before
//! sending, the expected reply time). Subjects, messages and notes are sealed under the
//! patient's records key; a reply tells the patient there is news in their inbox, nothing more.

use crate::audit::{Caller, Outcome, Target};
use crate::documents::key_error;
use crate::notify::{Notice, NoticeKind};
use crate::{App, AppError, FieldError};
use authz::{ListThreads, ManageThread, ReadPracticeInbox, ReadThread, ReplyThread, SetUpMessaging, StartThread};
use crypto::fields::FieldKey;
use domain::messages::{BODY_MAX, REPLY_DAYS_MAX, SUBJECT_MAX, Team, ThreadStatus};
use domain::{AccountId, MessageId, PatientId, PracticeId, ThreadId};
use std::collections::HashMap;
use store::messages::{
    CLINICIAN_OFF, MESSAGING_OFF, MessageRow, MessagingSettings, NewMessage, NewThread, ThreadChange, ThreadGrant,
    ThreadRow,
};
use store::{KeyGrant, RecordKeyGrant, StoreError};

/// The messaging module's use cases: [`App::messages`].
#[derive(Debug, Clone, Copy)]
pub struct Messages<'a> {
    app: &'a App,
}

impl App {
    /// Secure messaging.
    #[must_use]
    pub const fn messages(&self) -> Messages<'_> {
        Messages { app: self }
    }
}

/// A practice the patient can write to, as the form offers it.
#[derive(Debug, Clone)]
pub struct PracticeChoice {
    /// The practice.
    pub id: PracticeId,
    /// Its name.
    pub name: String,
    /// Whether it takes messages online.
    pub on: bool,
    /// Its notice before sending (urgent matters).
    pub after_hours: String,
    /// Its fee notice, if any.
    pub fee_notice: String,
    /// The working days it replies within.
    pub reply_days: i32,
    /// Who a message can be addressed to: (form value, label).
    pub to: Vec<(String, String)>,
}

/// A conversation in a list.
#[derive(Debug, Clone)]
pub struct ThreadSummary {
    /// Its id.
    pub id: ThreadId,
    /// The practice's name.
    pub practice_name: String,
    /// The patient's name.
    pub patient_name: String,
    /// Who it is addressed to.
    pub to: String,
    /// Its subject.
    pub subject: String,
    /// Open or closed.
    pub status: ThreadStatus,
    /// Who it is assigned to.
    pub assigned: Option<String>,
    /// The newest message's time, seconds.
    pub last: i64,
    /// Something new for the reader's side.
    pub unread: bool,
}

/// One message as shown.
#[derive(Debug, Clone)]
pub struct MessageView {
    /// Who wrote it, in words.
    pub who: String,
    /// From the practice's side.
    pub from_practice: bool,
    /// An internal note (practice only).
    pub internal: bool,
    /// The text.
    pub body: String,
    /// When, seconds.
    pub at: i64,
    /// The health document sent with it, if any.
    pub document: Option<domain::DocumentId>,
}

/// A conversation, opened.
#[derive(Debug, Clone)]
pub struct ThreadView {
    /// The conversation.
    pub summary: ThreadSummary,
    /// The patient.
    pub patient: PatientId,
    /// The practice.
    pub practice: PracticeId,
    /// Its messages, oldest first.
    pub messages: Vec<MessageView>,
    /// The practice's view (notes, assignment, closing).
    pub staff: bool,
    /// Who it can be assigned to (practice view).
    pub assignees: Vec<(AccountId, String)>,
}

/// The patient's form to start a conversation.
#[derive(Debug, Clone, Default)]
pub struct StartForm {
    /// The practice's id.
    pub practice: String,
    /// `team:<team>` or `clinician:<account id>`.
    pub to: String,
    /// The subject.
    pub subject: String,
    /// The message.
    pub body: String,
    /// The form's one-time key (a form sent twice starts one conversation).
    pub request_key: String,
}

/// The practice's messaging set-up, as its admin edits it.
#[derive(Debug, Clone, Default)]
pub struct SettingsView {
    /// Messaging on.
    pub on: bool,
    /// The notice shown before sending.
    pub after_hours: String,
    /// The fee notice.
    pub fee_notice: String,
    /// Reply time, working days.
    pub reply_days: i32,
    /// Each GP and nurse: (account, name, takes messages by name).
    pub clinicians: Vec<(AccountId, String, bool)>,
}

/// The practice's messaging set-up, as its admin sends it.
#[derive(Debug, Clone, Default)]
pub struct SettingsForm {
    /// Messaging on.
    pub on: bool,
    /// The notice shown before sending.
    pub after_hours: String,
    /// The fee notice.
    pub fee_notice: String,
    /// Reply time, working days (as typed).
    pub reply_days: String,
    /// The clinicians who take messages by name.
    pub clinicians: Vec<AccountId>,
}

/// The notice a practice shows before sending unless it writes its own.
pub const DEFAULT_AFTER_HOURS: &str =
    "Messages are not for urgent matters. If it is urgent, phone the practice; in an emergency, call 111.";

fn context(kind: &str, id: &impl ToString, field: &str) -> String {
    format!("{kind}/{}/{field}", id.to_string())
}

fn seal(key: &FieldKey, ctx: &str, text: &str) -> Result<String, AppError> {
    key.seal(ctx, text).map_err(key_error)
}

fn open(key: Option<&FieldKey>, ctx: &str, stored: &str) -> String {
    key.filter(|_| crypto::fields::is_sealed(stored))
        .and_then(|k| k.open(ctx, stored).ok())
        .unwrap_or_else(|| "(cannot be shown)".into())
}

fn to_label(t: &ThreadRow) -> String {
    match (&t.team, &t.clinician) {
        (Some(team), _) => team.label().split(" (").next().unwrap_or_default().to_owned(),
        (None, Some((_, name))) => name.clone(),
        (None, None) => String::new(),
    }
}

fn summary(t: &ThreadRow, key: Option<&FieldKey>, staff: bool) -> ThreadSummary {
    let read = if staff { t.practice_read_at } else { t.patient_read_at };
    ThreadSummary {
        id: t.id,
        practice_name: t.practice_name.clone(),
        patient_name: t.patient_name.clone(),
        to: to_label(t),
        subject: open(key, &context("thread", &t.id, "subject"), &t.subject),
        status: t.status,
        assigned: t.assigned_to.as_ref().map(|(_, n)| n.clone()),
        last: t.last_message_at,
        unread: read.is_none_or(|r| r < t.last_message_at),
    }
}

/// A reply to a practice that no longer takes messages from the patient.
fn closed(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict(MESSAGING_OFF) => {
            AppError::field("body", "This practice does not take messages from you online any more. Please phone them.")
        }
        e => e.into(),
    }
}

/// Checks a subject and a message's text.
fn text(field: &'static str, value: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    let v = value.trim();
    if v.is_empty() {
        errors.push(FieldError { field, message: "Write something here.".into() });
    } else if v.chars().count() > max {
        errors.push(FieldError { field, message: format!("Keep it to at most {max} characters.") });
    } else if v.chars().any(|c| {
        (c.is_control() && c != '\n' && c != '\r' && c != '\t')
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    }) {
        errors.push(FieldError { field, message: "Use plain text.".into() });
    }
    v.replace("\r\n", "\n")
}

impl Messages<'_> {
    /// The practices the patient can write to, with their notices and who takes messages.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient (or their proxy with the scope).
    pub async fn compose(&self, caller: &Caller, patient: PatientId) -> Result<Vec<PracticeChoice>, AppError> {
        let app = self.app;
        let _grant = app.decide::<StartThread>(caller, patient).await?;
        let mut out = Vec::new();
        for practice in
            authz::Relations::patient_practices(&*app.store, patient).await.map_err(|e| AppError::Internal(e.0))?
        {
            let Some(row) = app.store.practice(practice).await? else { continue };
            let s = app.store.messaging_settings(practice).await?;
            let mut to: Vec<(String, String)> =
                Team::ALL.iter().map(|t| (format!("team:{}", t.as_str()), t.label().to_owned())).collect();
            for c in app.store.messaging_clinicians(practice).await?.into_iter().filter(|c| c.on) {
                to.push((format!("clinician:{}", c.account), c.name));
            }
            out.push(PracticeChoice {
                id: practice,
                name: row.name,
                on: s.on,
                after_hours: if s.after_hours.trim().is_empty() { DEFAULT_AFTER_HOURS.into() } else { s.after_hours },
                fee_notice: s.fee_notice,
                reply_days: s.reply_days,
                to,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The patient starts a conversation with one of their practices.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient (or their proxy), or a practice they
    /// are not enrolled at; [`AppError::Invalid`] for an empty or oversized subject or message,
    /// or a practice or clinician that does not take messages online.
    pub async fn start(&self, caller: &Caller, patient: PatientId, form: &StartForm) -> Result<ThreadId, AppError> {
        let app = self.app;
        let grant = app.decide::<StartThread>(caller, patient).await?;
        let mut errors = Vec::new();
        let practice: Option<PracticeId> = form.practice.trim().parse().ok();
        if practice.is_none() {
            errors.push(FieldError { field: "practice", message: "Choose your practice.".into() });
        }
        let (team, clinician) = match form.to.trim().split_once(':') {
            Some(("team", t)) => (Team::parse(t), None),
            Some(("clinician", c)) => (None, c.parse::<AccountId>().ok()),
            _ => (None, None),
        };
        if team.is_none() && clinician.is_none() {
            errors.push(FieldError { field: "to", message: "Choose who the message is for.".into() });
        }
        let subject = text("subject", &form.subject, SUBJECT_MAX, &mut errors);
        let body = text("body", &form.body, BODY_MAX, &mut errors);
        let key_ok = !form.request_key.is_empty() && form.request_key.len() <= 64;
        if !errors.is_empty() || !key_ok {
            if !key_ok {
                errors.push(FieldError { field: "body", message: "This form has expired: open it again.".into() });
            }
            return Err(AppError::Invalid(errors));
        }
        let Some(practice) = practice else { return Err(AppError::NotFound) };
        let key = app
            .sealing_key(
                caller,
                RecordKeyGrant::StartThread(&grant),
                KeyGrant::Sealing(RecordKeyGrant::StartThread(&grant)),
            )
            .await?;
        let (id, first) = (ThreadId::random(), MessageId::random());
        let new = NewThread {
            id,
            practice,
            team,
            clinician,
            subject: seal(&key, &context("thread", &id, "subject"), &subject)?,
            request_key: form.request_key.clone(),
            first: NewMessage {
                id: first,
                author: caller.principal.account(),
                from_practice: false,
                internal: false,
                body: seal(&key, &context("message", &first, "body"), &body)?,
                document: None,
            },
        };
        let (row, fresh) = app.store.start_thread(&grant, &new, &[], app.now()).await.map_err(|e| match e {
            StoreError::Conflict(MESSAGING_OFF) => {
                AppError::field("practice", "This practice does not take messages online. Please phone them.")
            }
            StoreError::Conflict(CLINICIAN_OFF) => {
                AppError::field("to", "That clinician does not take messages online. Choose a team instead.")
            }
            e => e.into(),
        })?;
        if fresh {
            app.audit(vec![app.event(caller, &Target::of(&grant).about(&row.id), Outcome::Allowed)]).await?;
        }
        Ok(row.id)
    }

    /// The patient's conversations, newest first.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient (or their proxy).
    pub async fn list(&self, caller: &Caller, patient: PatientId) -> Result<Vec<ThreadSummary>, AppError> {
        let app = self.app;
        let grant = app.decide::<ListThreads>(caller, patient).await?;
        let rows = app.store.patient_threads(&grant).await?;
        let mut events = vec![app.event(caller, &Target::of(&grant), Outcome::Allowed)];
        let stored =
            if rows.is_empty() { None } else { app.store.records_key(RecordKeyGrant::Threads(&grant)).await? };
        if let Some((rk, _)) = &stored {
            events.push(app.unwrap_event(caller, patient, rk.key_version));
        }
        app.audit(events).await?;
        let key = stored.map(|s| app.unwrap_records_key(s)).transpose()?;
        Ok(rows.iter().map(|t| summary(t, key.as_ref(), false)).collect())
    }

    /// One conversation, opened (and marked read for the reader's side).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but its patient (or their proxy) and the practice's
    /// reception and clinicians.
    pub async fn thread(&self, caller: &Caller, id: ThreadId) -> Result<ThreadView, AppError> {
        let app = self.app;
        let grant = app.decide::<ReadThread>(caller, id).await?;
        let staff = grant.via_practice().is_some();
        let (row, messages) = app.store.thread(ThreadGrant::Read(&grant)).await?;
        let mut events = vec![app.event(caller, &Target::of(&grant), Outcome::Allowed)];
        let stored = app.store.records_key(RecordKeyGrant::Thread(&grant)).await?;
        if let Some((rk, _)) = &stored {
            events.push(app.unwrap_event(caller, row.patient, rk.key_version));
        }
        app.audit(events).await?;
        let key = stored.map(|s| app.unwrap_records_key(s)).transpose()?;
        app.store.mark_thread_read(&grant, app.now()).await?;
        let view = |m: &MessageRow| MessageView {
            who: match (m.from_practice, m.author == caller.principal.account()) {
                (_, true) => "You".into(),
                (true, false) if staff => m.author_name.clone(),
                (true, false) => format!("{} ({})", m.author_name, row.practice_name),
                (false, false) => m.author_name.clone(),
            },
            from_practice: m.from_practice,
            internal: m.internal,
            body: open(key.as_ref(), &context("message", &m.id, "body"), &m.body),
            at: m.created_at,
            document: m.document,
        };
        let assignees = if staff {
            app.store.messaging_clinicians(row.practice).await?.into_iter().map(|c| (c.account, c.name)).collect()
        } else {
            Vec::new()
        };
        Ok(ThreadView {
            summary: summary(&row, key.as_ref(), staff),
            patient: row.patient,
            practice: row.practice,
            messages: messages.iter().map(view).collect(),
            staff,
            assignees,
        })
    }

    /// Writes in a conversation: the patient (or their proxy) or the practice; with `note`, an
    /// internal note of the practice's that the patient never sees. A practice's reply tells the
    /// patient (and their proxies with the scope) there is news.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone else (a note: for anyone but the practice);
    /// [`AppError::Invalid`] for an empty or oversized message.
    pub async fn reply(&self, caller: &Caller, id: ThreadId, body: &str, note: bool) -> Result<(), AppError> {
        let app = self.app;
        let mut errors = Vec::new();
        if note {
            let grant = app.decide::<ManageThread>(caller, id).await?;
            let body = text("body", body, BODY_MAX, &mut errors);
            if !errors.is_empty() {
                return Err(AppError::Invalid(errors));
            }
            let read = grant.implied::<ReadThread>();
            let key = app
                .sealing_key(caller, RecordKeyGrant::Thread(&read), KeyGrant::Sealing(RecordKeyGrant::Thread(&read)))
                .await?;
            let mid = MessageId::random();
            let m = NewMessage {
                id: mid,
                author: caller.principal.account(),
                from_practice: true,
                internal: true,
                body: seal(&key, &context("message", &mid, "body"), &body)?,
                document: None,
            };
            app.store.add_message(ThreadGrant::Manage(&grant), &m, &[], app.now()).await?;
            app.audit(vec![app.event(caller, &Target::of(&grant), Outcome::Allowed)]).await?;
            return Ok(());
        }
        let grant = app.decide::<ReplyThread>(caller, id).await?;
        let body = text("body", body, BODY_MAX, &mut errors);
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let from_practice = grant.via_practice().is_some();
        let patient = grant.patient().ok_or(AppError::NotFound)?;
        let key = app
            .sealing_key(caller, RecordKeyGrant::Reply(&grant), KeyGrant::Sealing(RecordKeyGrant::Reply(&grant)))
            .await?;
        let mid = MessageId::random();
        let m = NewMessage {
            id: mid,
            author: caller.principal.account(),
            from_practice,
            internal: false,
            body: seal(&key, &context("message", &mid, "body"), &body)?,
            document: None,
        };
        let mail = if from_practice {
            let notice = Notice {
                kind: NoticeKind::Messages,
                title: "A reply from your practice",
                link: Some(format!("/messages/{id}")),
                practice: grant.via_practice(),
            };
            app.news(patient, &notice).await?
        } else {
            Vec::new()
        };
        app.store.add_message(ThreadGrant::Reply(&grant), &m, &mail, app.now()).await.map_err(closed)?;
        app.audit(vec![app.event(caller, &Target::of(&grant), Outcome::Allowed)]).await?;
        if mail.iter().any(|m| m.deliver) {
            app.mail_waker.notify_one();
        }
        Ok(())
    }

    /// The patient (or their proxy) whose conversation this is, asked before an attachment is
    /// read: the policy first, so a stranger's upload is refused before any of it arrives.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient's side of the conversation.
    pub async fn attachment_patient(&self, caller: &Caller, id: ThreadId) -> Result<PatientId, AppError> {
        let grant = self.app.decide::<ReplyThread>(caller, id).await?;
        if grant.via_practice().is_some() {
            // The practice's staff add no documents to a patient's list.
            return Err(self.app.refuse_seen(caller, &grant).await);
        }
        grant.patient().ok_or(AppError::NotFound)
    }

    /// Sends a health document the patient has just uploaded (it is in their list, content
    /// checked and encrypted) with a message in the conversation; the practice's clinicians can
    /// then open it.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient's side, or a document not theirs.
    pub async fn attach(
        &self,
        caller: &Caller,
        id: ThreadId,
        document: &crate::documents::Document,
    ) -> Result<(), AppError> {
        let app = self.app;
        let grant = app.decide::<ReplyThread>(caller, id).await?;
        let patient = grant.patient().ok_or(AppError::NotFound)?;
        if grant.via_practice().is_some() || document.patient != patient {
            return Err(app.refuse_seen(caller, &grant).await);
        }
        let key = app
            .sealing_key(caller, RecordKeyGrant::Reply(&grant), KeyGrant::Sealing(RecordKeyGrant::Reply(&grant)))
            .await?;
        let mid = MessageId::random();
        let text = format!("Sent a document: {}", document.title);
        let m = NewMessage {
            id: mid,
            author: caller.principal.account(),
            from_practice: false,
            internal: false,
            body: seal(&key, &context("message", &mid, "body"), &text)?,
            document: Some(document.id),
        };
        app.store.add_message(ThreadGrant::Reply(&grant), &m, &[], app.now()).await.map_err(closed)?;
        app.audit(vec![app.event(caller, &Target::of(&grant).about(&document.id), Outcome::Allowed)]).await?;
        Ok(())
    }

    /// The practice assigns (`assign:<account>`, `unassign`), closes or reopens a conversation.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the practice's reception and clinicians, or an
    /// assignee not on its staff; [`AppError::Invalid`] for anything else asked.
    pub async fn manage(&self, caller: &Caller, id: ThreadId, action: &str) -> Result<(), AppError> {
        let app = self.app;
        let grant = app.decide::<ManageThread>(caller, id).await?;
        let change = match action.trim().split_once(':') {
            Some(("assign", who)) => {
                ThreadChange::Assign(Some(who.parse().map_err(|_| AppError::field("assign", "Choose someone."))?))
            }
            _ => match action.trim() {
                "unassign" => ThreadChange::Assign(None),
                "close" => ThreadChange::Status(ThreadStatus::Closed),
                "reopen" => ThreadChange::Status(ThreadStatus::Open),
                _ => return Err(AppError::field("action", "Choose what to do with the conversation.")),
            },
        };
        app.store.manage_thread(&grant, change, app.now()).await?;
        app.audit(vec![app.event(caller, &Target::of(&grant), Outcome::Allowed)]).await?;
        Ok(())
    }

    /// The practice's inbox: its open (or closed) conversations, newest first, subjects opened.
    /// Each conversation shown is an event under its patient.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the practice's reception and clinicians.
    pub async fn inbox(
        &self,
        caller: &Caller,
        practice: PracticeId,
        status: ThreadStatus,
    ) -> Result<Vec<ThreadSummary>, AppError> {
        let app = self.app;
        let grant = app.decide::<ReadPracticeInbox>(caller, practice).await?;
        let rows = app.store.practice_threads(&grant, status).await?;
        let mut events = vec![app.event(caller, &Target::of(&grant), Outcome::Allowed)];
        events
            .extend(rows.iter().map(|t| {
                app.event(caller, &Target::of(&grant).with_patient(t.patient).about(&t.id), Outcome::Allowed)
            }));
        let mut keys: HashMap<PatientId, Option<store::RecordKeyWithPatientKey>> = HashMap::new();
        let patients: std::collections::BTreeSet<PatientId> = rows.iter().map(|t| t.patient).collect();
        for patient in patients {
            let stored = app.store.records_key(RecordKeyGrant::Inbox(&grant, patient)).await?;
            if let Some((rk, _)) = &stored {
                events.push(app.unwrap_event(caller, patient, rk.key_version));
            }
            keys.insert(patient, stored);
        }
        app.audit(events).await?;
        let mut opened: HashMap<PatientId, Option<FieldKey>> = HashMap::new();
        for (p, stored) in keys {
            opened.insert(p, stored.map(|s| app.unwrap_records_key(s)).transpose()?);
        }
        Ok(rows.iter().map(|t| summary(t, opened.get(&t.patient).and_then(Option::as_ref), true)).collect())
    }

    /// The practice's messaging set-up, for its admins.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but its admins.
    pub async fn settings(&self, caller: &Caller, practice: PracticeId) -> Result<SettingsView, AppError> {
        let app = self.app;
        let _grant = app.decide::<SetUpMessaging>(caller, practice).await?;
        let s = app.store.messaging_settings(practice).await?;
        let clinicians = app.store.messaging_clinicians(practice).await?;
        Ok(SettingsView {
            on: s.on,
            after_hours: if s.after_hours.is_empty() { DEFAULT_AFTER_HOURS.into() } else { s.after_hours },
            fee_notice: s.fee_notice,
            reply_days: s.reply_days,
            clinicians: clinicians.into_iter().map(|c| (c.account, c.name, c.on)).collect(),
        })
    }

    /// Saves the practice's messaging set-up.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but its admins; [`AppError::Invalid`] for notices too
    /// long or a reply time outside 1–10 working days.
    pub async fn set_settings(
        &self,
        caller: &Caller,
        practice: PracticeId,
        form: &SettingsForm,
    ) -> Result<(), AppError> {
        let SettingsForm { on, after_hours, fee_notice, reply_days, clinicians } = form;
        let on = *on;
        let app = self.app;
        let grant = app.decide::<SetUpMessaging>(caller, practice).await?;
        let mut errors = Vec::new();
        let after_hours = text("after_hours", after_hours, 500, &mut errors);
        let fee_notice = fee_notice.trim();
        if fee_notice.chars().count() > 300 {
            errors.push(FieldError { field: "fee_notice", message: "Keep it to at most 300 characters.".into() });
        }
        let reply_days = reply_days.trim().parse::<i32>().ok().filter(|d| (1..=REPLY_DAYS_MAX).contains(d));
        if reply_days.is_none() {
            errors.push(FieldError {
                field: "reply_days",
                message: format!("Give the working days you reply within, from 1 to {REPLY_DAYS_MAX}."),
            });
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let settings = MessagingSettings {
            on,
            after_hours,
            fee_notice: fee_notice.to_owned(),
            reply_days: reply_days.unwrap_or(2),
            clinicians: clinicians.clone(),
        };
        app.store.set_messaging(&grant, &settings, app.now()).await?;
        app.audit(vec![app.event(caller, &Target::of(&grant), Outcome::Allowed)]).await?;
        Ok(())
    }
}
