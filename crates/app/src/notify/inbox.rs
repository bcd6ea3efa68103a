//! The in-portal inbox: every notice Tiaki gives a person lands here, with an unread count in
//! the portal's header. Email only says that there is something new in the inbox — no health
//! content, no link, nothing asked — and only for the kinds of notice the person keeps email
//! on for. Security notices always go by email too, and say what happened to the account,
//! still without a link.

use crate::{App, AppError, SignedIn};
use domain::{AccountId, Module, NoticeId, PatientId, proxies::ProxyState};
use store::{NewMail, NewNotice, NoticeRow};

/// The kinds of notice, each with its inbox label and the module whose proxy scope lets a
/// proxy be told of it (`None`: the person's own alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// Replies in a conversation with the practice.
    Messages,
    /// Appointments booked, cancelled, coming up.
    Appointments,
    /// Repeat prescription requests moving on.
    Prescriptions,
    /// Results released in the health record.
    Results,
    /// Health documents received.
    Documents,
    /// Someone was given (or lost) the right to act for the person.
    Proxies,
    /// Something happened to the account's sign-in (always emailed).
    Security,
}

impl NoticeKind {
    /// Every kind, in the order the settings page lists them.
    pub const ALL: &'static [Self] = &[
        Self::Messages,
        Self::Appointments,
        Self::Prescriptions,
        Self::Results,
        Self::Documents,
        Self::Proxies,
        Self::Security,
    ];

    /// The stored name.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::Messages => "messages",
            Self::Appointments => "appointments",
            Self::Prescriptions => "prescriptions",
            Self::Results => "results",
            Self::Documents => "documents",
            Self::Proxies => "proxies",
            Self::Security => "security",
        }
    }

    /// What people read on the settings page.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Messages => "Replies to your messages",
            Self::Appointments => "Appointments: bookings, cancellations, reminders",
            Self::Prescriptions => "Repeat prescription requests",
            Self::Results => "New results in your health record",
            Self::Documents => "New health documents",
            Self::Proxies => "People who can act for you",
            Self::Security => "Sign-in and account security",
        }
    }

    /// The kind a stored name stands for.
    #[must_use]
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.code() == code)
    }

    /// The module a proxy must have in scope to be told (none: only the person).
    const fn module(self) -> Option<Module> {
        match self {
            Self::Messages => Some(Module::Messaging),
            Self::Appointments => Some(Module::Appointments),
            Self::Prescriptions => Some(Module::Prescriptions),
            Self::Results => Some(Module::Records),
            Self::Documents => Some(Module::Documents),
            Self::Proxies | Self::Security => None,
        }
    }

    /// Whether the person may turn email off for it.
    #[must_use]
    pub const fn optional(self) -> bool {
        !matches!(self, Self::Security)
    }
}

/// A notice to give: its kind, its fixed wording (no health content), where it leads.
#[derive(Debug, Clone)]
pub struct Notice {
    /// Its kind.
    pub kind: NoticeKind,
    /// Its wording.
    pub title: &'static str,
    /// A path inside the portal.
    pub link: Option<String>,
    /// The practice it comes from, when it does: a proxy hears only of their link's practice.
    pub practice: Option<domain::PracticeId>,
}

/// The subject of every email that announces a notice.
pub const NEWS_SUBJECT: &str = "There is something new in your Tiaki inbox";

/// The email announcing a notice: that there is one, nothing more.
pub(crate) fn news_body(name: &str) -> String {
    super::texts::Email::News.body(name)
}

/// A notice in the inbox, as the page shows it.
#[derive(Debug, Clone)]
pub struct InboxItem {
    /// Its id.
    pub id: NoticeId,
    /// Who it is about, when it is about someone the person acts for.
    pub about: Option<(PatientId, String)>,
    /// The patient it is about, if any (the person's own record, or someone they act for).
    pub patient: Option<PatientId>,
    /// Its wording.
    pub title: String,
    /// Where it leads.
    pub link: Option<String>,
    /// When, ms since the epoch.
    pub at: i64,
    /// Whether it is unread.
    pub unread: bool,
}

/// One kind of notice and whether it is emailed, for the settings page.
#[derive(Debug, Clone)]
pub struct NoticePref {
    /// The kind's stored name.
    pub kind: &'static str,
    /// What people read.
    pub label: &'static str,
    /// Emailed too.
    pub email: bool,
    /// Whether it can be switched off.
    pub optional: bool,
}

impl App {
    /// The notices (and, for those who keep email on, the mails) that tell everyone who
    /// should know of news about a patient: the patient, and each proxy whose live link has
    /// the notice's module in scope. Queue them with the change they announce.
    ///
    /// # Errors
    /// When storage fails.
    pub(crate) async fn news(&self, patient: PatientId, notice: &Notice) -> Result<Vec<NewMail>, AppError> {
        let now = self.now();
        let recipients = self.store.recipients(patient, notice.kind.code()).await?;
        Ok(recipients
            .into_iter()
            .filter(|r| match (&r.proxy, notice.kind.module()) {
                (None, _) => true,
                (Some(terms), Some(module)) => {
                    terms.state(now) == ProxyState::Live
                        && terms.scopes.allows(module)
                        && notice.practice.is_none_or(|p| p == terms.practice)
                }
                (Some(_), None) => false,
            })
            .map(|r| NewMail {
                id: uuid::Uuid::new_v4(),
                subject: NEWS_SUBJECT.to_owned(),
                body: news_body(&r.name),
                created_at: now,
                deliver: r.active && r.email_on,
                recipient: r.email,
                notice: Some(NewNotice {
                    id: NoticeId::random(),
                    account: r.account,
                    patient: Some(patient),
                    kind: notice.kind.code().to_owned(),
                    title: notice.title.to_owned(),
                    link: notice.link.clone(),
                }),
            })
            .collect())
    }

    /// A security notice: in the account's inbox, and always emailed, saying what happened,
    /// with no link.
    pub(crate) fn security_notice(
        &self,
        account: AccountId,
        email: &str,
        name: &str,
        what: super::texts::Security<'_>,
    ) -> NewMail {
        NewMail {
            notice: Some(NewNotice {
                id: NoticeId::random(),
                account,
                patient: None,
                kind: NoticeKind::Security.code().to_owned(),
                title: what.subject().to_owned(),
                link: Some("/account/security".into()),
            }),
            ..super::texts::mail(email, name, &super::texts::Email::Security(what), self.now())
        }
    }

    /// A notice about the account itself (someone it can now act for): in its inbox, and
    /// announced by email when the account is active.
    pub(crate) fn own_notice(
        &self,
        account: AccountId,
        email: &str,
        name: &str,
        title: &str,
        link: Option<String>,
        active: bool,
    ) -> NewMail {
        NewMail {
            id: uuid::Uuid::new_v4(),
            recipient: email.to_owned(),
            subject: NEWS_SUBJECT.to_owned(),
            body: news_body(name),
            created_at: self.now(),
            deliver: active,
            notice: Some(NewNotice {
                id: NoticeId::random(),
                account,
                patient: None,
                kind: NoticeKind::Proxies.code().to_owned(),
                title: title.to_owned(),
                link,
            }),
        }
    }

    /// Queues news (notices and mails) on its own, waking the sender.
    pub(crate) async fn tell(&self, mails: &[NewMail]) -> Result<(), AppError> {
        self.store.tell(mails).await?;
        if mails.iter().any(|m| m.deliver) {
            self.mail_waker.notify_one();
        }
        Ok(())
    }

    /// The signed-in person's inbox, newest first (at most 200).
    ///
    /// # Errors
    /// When storage fails.
    pub async fn inbox(&self, who: &SignedIn) -> Result<Vec<InboxItem>, AppError> {
        let rows: Vec<NoticeRow> = self.store.notices(who.account, 200).await?;
        Ok(rows
            .into_iter()
            .map(|n| InboxItem {
                id: n.id,
                patient: n.patient.as_ref().map(|(p, _)| *p),
                // Named only when it is about someone else (the person they act for).
                about: n.patient.filter(|(p, _)| Some(*p) != who.own_patient),
                title: n.title,
                link: n.link,
                at: n.created_at * 1000,
                unread: n.read_at.is_none(),
            })
            .collect())
    }

    /// Marks one notice (or all, with `None`) of the signed-in person's read.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn mark_read(&self, who: &SignedIn, notice: Option<NoticeId>) -> Result<(), AppError> {
        self.store.mark_notices_read(who.account, notice, self.now()).await?;
        Ok(())
    }

    /// Which kinds of notice the signed-in person also gets by email.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn notice_prefs(&self, who: &SignedIn) -> Result<Vec<NoticePref>, AppError> {
        let stored = self.store.notice_prefs(who.account).await?;
        Ok(NoticeKind::ALL
            .iter()
            .map(|k| NoticePref {
                kind: k.code(),
                label: k.label(),
                email: !k.optional() || stored.iter().find(|(c, _)| c == k.code()).is_none_or(|(_, on)| *on),
                optional: k.optional(),
            })
            .collect())
    }

    /// Sets, for each optional kind, whether it is also emailed (`on`: the kinds ticked).
    ///
    /// # Errors
    /// [`AppError::Invalid`] for a kind that does not exist.
    pub async fn set_notice_prefs(&self, who: &SignedIn, on: &[String]) -> Result<(), AppError> {
        if let Some(bad) = on.iter().find(|k| NoticeKind::parse(k).is_none()) {
            return Err(AppError::field(
                "email",
                format!("There is no kind of notice called \"{}\".", bad.chars().take(40).collect::<String>()),
            ));
        }
        for k in NoticeKind::ALL.iter().filter(|k| k.optional()) {
            self.store.set_notice_pref(who.account, k.code(), on.iter().any(|c| c == k.code())).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The email that announces a notice carries nothing but that there is one, whatever the
    /// name it greets (the scan of every email is in `texts`).
    #[test]
    fn the_news_email_says_only_that_there_is_news() {
        let body = news_body("Aroha Ngata");
        assert!(body.contains("There is something new in your Tiaki inbox."), "{body}");
        assert_eq!(super::super::texts::Email::News.subject(), NEWS_SUBJECT);
        for k in NoticeKind::ALL {
            assert_eq!(NoticeKind::parse(k.code()), Some(*k));
            assert_eq!(k.optional(), *k != NoticeKind::Security, "only security notices are always emailed");
        }
    }
}
