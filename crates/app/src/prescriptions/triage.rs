//! The practice's triage of repeat requests: the queue (open requests first), a nurse taking
//! one into review, a GP approving it (sent to the pharmacy, or ready to collect) or declining it
//! with a reason the patient reads. Each change tells the patient there is news.

use super::{Prescriptions, RequestView, conflict, request_context, request_view, seal};
use crate::AppError;
use crate::audit::Caller;
use authz::{ApproveRepeatRequest, DeclineRepeatRequest, ListRepeatQueue, ReviewRepeatRequest};
use domain::calendar::local_day;
use domain::prescriptions::RepeatStatus;
use domain::{PracticeId, RepeatRequestId};
use store::prescriptions::{RepeatDecision, RequestGrant};
use store::{KeyGrant, RecordKeyGrant};

impl Prescriptions<'_> {
    /// The practice's queue: open requests first (oldest first), then those closed in the last
    /// week. Names are not shown here (no patient's key is opened for a queue).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the practice's clinicians.
    pub async fn queue(&self, caller: &Caller, practice: PracticeId) -> Result<Vec<RequestView>, AppError> {
        let app = self.app;
        let grant = app.authorize::<ListRepeatQueue>(caller, practice).await?;
        let rows = app.store.repeat_queue(&grant, app.now() - 7 * 86_400).await?;
        // Each patient the queue names is on the record, under their own name.
        let seen: Vec<_> = rows
            .iter()
            .map(|r| {
                let t = crate::audit::Target::of(&grant).with_patient(r.patient).about(&r.id);
                app.event(caller, &t, crate::audit::Outcome::Allowed)
            })
            .collect();
        if !seen.is_empty() {
            app.audit(seen).await?;
        }
        Ok(rows.iter().map(|r| request_view(r, &[], None)).collect())
    }

    /// Moves a request on: a nurse (or GP) takes it into review; a GP approves it (sent to the
    /// pharmacy, or ready to collect) or declines it with a reason the patient reads. The
    /// patient is told there is news.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the practice's clinicians (prescribers, to decide);
    /// [`AppError::Invalid`] for a decline without a reason; [`AppError::Conflict`] for a
    /// request that has moved on.
    pub async fn decide(
        &self,
        caller: &Caller,
        id: RepeatRequestId,
        action: &str,
        reason: &str,
    ) -> Result<(), AppError> {
        let app = self.app;
        let day = local_day(app.now()).to_string();
        let by = caller.principal.account();
        let (row, mail) = match action {
            "review" => {
                let g = app.decide::<ReviewRepeatRequest>(caller, id).await?;
                let d = RepeatDecision {
                    from: &[RepeatStatus::Requested],
                    to: RepeatStatus::InReview,
                    by,
                    outcome: None,
                    reason: None,
                    day: &day,
                };
                let mail = app
                    .news(
                        g.patient().ok_or(AppError::NotFound)?,
                        &news(id, "Your practice is looking at a repeat prescription request", g.via_practice()),
                    )
                    .await?;
                let done = app.store.decide_repeat(RequestGrant::Review(&g), &d, &mail, app.now()).await;
                if done.is_ok() {
                    app.audit(vec![app.event(caller, &crate::audit::Target::of(&g), crate::audit::Outcome::Allowed)])
                        .await?;
                }
                (done, mail)
            }
            "sent_to_pharmacy" | "ready_to_collect" => {
                let g = app.decide::<ApproveRepeatRequest>(caller, id).await?;
                let outcome = if action == "sent_to_pharmacy" { "sent_to_pharmacy" } else { "ready_to_collect" };
                let d = RepeatDecision {
                    from: &[RepeatStatus::Requested, RepeatStatus::InReview],
                    to: RepeatStatus::Approved,
                    by,
                    outcome: Some(outcome),
                    reason: None,
                    day: &day,
                };
                let mail = app
                    .news(
                        g.patient().ok_or(AppError::NotFound)?,
                        &news(id, "A repeat prescription request was approved", g.via_practice()),
                    )
                    .await?;
                let done = app.store.decide_repeat(RequestGrant::Approve(&g), &d, &mail, app.now()).await;
                if done.is_ok() {
                    app.audit(vec![app.event(caller, &crate::audit::Target::of(&g), crate::audit::Outcome::Allowed)])
                        .await?;
                }
                (done, mail)
            }
            "decline" => {
                let g = app.decide::<DeclineRepeatRequest>(caller, id).await?;
                let reason = reason.trim();
                if reason.is_empty() || reason.chars().count() > 1000 {
                    return Err(AppError::field(
                        "reason",
                        "Say why it is declined and what the patient should do (at most 1,000 characters): they read it.",
                    ));
                }
                let patient = g.patient().ok_or(AppError::NotFound)?;
                let key = app
                    .sealing_key(caller, RecordKeyGrant::Decline(&g), KeyGrant::Sealing(RecordKeyGrant::Decline(&g)))
                    .await?;
                let sealed = seal(&key, &request_context(id, "decline_reason"), reason)?;
                let d = RepeatDecision {
                    from: &[RepeatStatus::Requested, RepeatStatus::InReview],
                    to: RepeatStatus::Declined,
                    by,
                    outcome: None,
                    reason: Some(&sealed),
                    day: &day,
                };
                let mail = app
                    .news(patient, &news(id, "A repeat prescription request was declined", g.via_practice()))
                    .await?;
                let done = app.store.decide_repeat(RequestGrant::Decline(&g), &d, &mail, app.now()).await;
                if done.is_ok() {
                    let target = crate::audit::Target::of(&g);
                    app.audit(vec![app.event(caller, &target, crate::audit::Outcome::Allowed)]).await?;
                }
                (done, mail)
            }
            _ => {
                // The policy first: only the practice's clinicians are told the form is wrong.
                let _grant = app.decide::<ReviewRepeatRequest>(caller, id).await?;
                return Err(AppError::field("action", "Choose what to do with the request."));
            }
        };
        row.map_err(conflict)?;
        if mail.iter().any(|m| m.deliver) {
            app.mail_waker.notify_one();
        }
        Ok(())
    }
}

/// The notice of a request moving on.
fn news(id: RepeatRequestId, title: &'static str, practice: Option<domain::PracticeId>) -> crate::notify::Notice {
    crate::notify::Notice {
        kind: crate::notify::NoticeKind::Prescriptions,
        title,
        link: Some(format!("/repeats/{id}")),
        practice,
    }
}
