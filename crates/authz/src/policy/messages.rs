//! Secure messaging: a patient (or someone acting for them with the messages scope) writes to a
//! practice they are enrolled at and reads their conversations; the practice's reception and
//! clinicians read, answer, assign and close its conversations while the patient is enrolled
//! there; its admins set messaging up. Nobody else reaches any of it.

use super::{own_practice, owning_patient, owning_practice_staff, the_patient};
use crate::{Action, Denied, Grant, Policy, Principal, Relations, action, capabilities, decided_by, implies};
use domain::{PatientId, PracticeId, ThreadId};

action!(
    /// See the patient's conversations with their practices.
    ListThreads, PatientId, "patient.messages.list", Messaging, PatientMessages, List
);
action!(
    /// Start a conversation with one of the patient's practices.
    StartThread, PatientId, "patient.messages.start", Messaging, PatientMessages, Send
);
action!(
    /// Read a conversation.
    ReadThread, ThreadId, "thread.read", Messaging, MessageThread, Read
);
action!(
    /// Write in a conversation.
    ReplyThread, ThreadId, "thread.reply", Messaging, MessageThread, Send
);
action!(
    /// Assign a conversation, close or reopen it, add a note the patient never sees (staff).
    ManageThread, ThreadId, "thread.manage", Messaging, MessageThread, Update
);
action!(
    /// See the practice's conversations (its inbox).
    ReadPracticeInbox, PracticeId, "practice.messages.inbox", Messaging, PracticeInbox, List
);
action!(
    /// Set up messaging for the practice (on or off, the clinicians who take messages, the
    /// notices shown before sending, the expected reply time).
    SetUpMessaging, PracticeId, "practice.messages.set_up", Messaging, MessagingSettings, Update
);

// Managing a conversation includes reading it.
implies!(ManageThread => ReadThread, ReplyThread => ReadThread);

decided_by!(ListThreads => the_patient, StartThread => the_patient);

/// The conversation's patient (or their proxy, with the scope), or the practice's reception
/// and clinicians while the patient is enrolled there.
async fn party<A: Action<Object = ThreadId>, R: Relations + ?Sized>(
    p: &Principal,
    id: ThreadId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    let owner = rel.thread_owner(id).await?;
    match p {
        Principal::Patient { .. } | Principal::Proxy { .. } => owning_patient(p, id, owner, rel).await,
        Principal::Staff { .. } => owning_practice_staff(p, id, owner, capabilities::HANDLE_MESSAGES, rel).await,
        _ => Err(Denied::NotFound),
    }
}

/// The practice's reception and clinicians, while the patient is enrolled there.
async fn practice_side<A: Action<Object = ThreadId>, R: Relations + ?Sized>(
    p: &Principal,
    id: ThreadId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    if !matches!(p, Principal::Staff { .. }) {
        return Err(Denied::NotFound);
    }
    owning_practice_staff(p, id, rel.thread_owner(id).await?, capabilities::HANDLE_MESSAGES, rel).await
}

decided_by!(ReadThread => party, ReplyThread => party, ManageThread => practice_side);

impl Policy for ReadPracticeInbox {
    async fn decide<R: Relations + ?Sized>(
        p: &Principal,
        practice: PracticeId,
        rel: &R,
    ) -> Result<Grant<Self>, Denied> {
        own_practice(p, practice, rel, capabilities::HANDLE_MESSAGES).await
    }
}

impl Policy for SetUpMessaging {
    async fn decide<R: Relations + ?Sized>(
        p: &Principal,
        practice: PracticeId,
        rel: &R,
    ) -> Result<Grant<Self>, Denied> {
        own_practice(p, practice, rel, capabilities::MANAGE_PRACTICE).await
    }
}
