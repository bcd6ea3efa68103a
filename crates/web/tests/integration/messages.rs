//! Secure messaging through the real router: a patient writes to their practice's nurses, a
//! nurse replies and keeps an internal note the patient never sees, the practice assigns and
//! closes the conversation; every bad message is refused with nothing stored; other people get
//! 404; and nothing of a subject or a message is in the database files in the clear.

use crate::support::*;
use anyhow::{Result, anyhow};
use app::domain::StaffRole;
use axum::http::StatusCode;
use testkit::appointments::count;

/// The practice's admin turns messaging on (with, optionally, the GP taking messages by name).
pub(crate) async fn messaging_on(w: &World, with_gp: bool) -> Result<()> {
    let mut admin = w.signed_in("admin-a@example.nz", [127, 0, 30, 1]).await?;
    let path = format!("/practices/{}/messaging", w.practice_a);
    let page = admin.get(&path).await?;
    let gp = page
        .body
        .split("name=\"clinician-")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .ok_or_else(|| anyhow!("no clinician offered: {}", page.body))?
        .to_owned();
    let key = format!("clinician-{gp}");
    let mut fields = vec![
        ("on", "1"),
        ("after_hours", "Not for urgent matters: call 111 in an emergency."),
        ("fee_notice", ""),
        ("reply_days", "2"),
    ];
    if with_gp {
        fields.push((key.as_str(), "1"));
    }
    let r = admin.post(&path, &fields).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    Ok(())
}

fn field(body: &str, name: &str) -> String {
    body.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_default()
        .to_owned()
}

/// Patient 1 starts a conversation with practice A's nurses; returns its id.
pub(crate) async fn one_thread(w: &World, p: &mut Browser, subject: &str, body: &str) -> Result<String> {
    let path = format!("/patients/{}/messages", w.patient1);
    let page = p.get(&path).await?;
    let r = p
        .post(
            &path,
            &[
                ("practice", &w.practice_a.to_string()),
                ("to", "team:nurses"),
                ("subject", subject),
                ("body", body),
                ("request_key", &field(&page.body, "request_key")),
            ],
        )
        .await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    Ok(crate::appointments::id_in(r.location()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_and_a_nurse_exchange_messages_and_the_practice_handles_the_conversation() -> Result<()> {
    let w = World::new().await?;
    staff(&w.t, w.practice_a, "nurse-a@example.nz", StaffRole::Nurse).await?;
    messaging_on(&w, true).await?;
    let mut p = w.signed_in("p1@example.nz", [127, 0, 30, 2]).await?;
    let page = p.get(&format!("/patients/{}/messages", w.patient1)).await?;
    assert!(page.body.contains("call 111"), "the notice is shown before sending: {}", page.body);
    assert!(page.body.contains("within 2 working days"));
    let id = one_thread(&w, &mut p, "Rash on my arm", "It has been itchy for three days.").await?;
    // The nurse finds it in the practice's inbox, reads it, replies and notes.
    let mut nurse = w.signed_in("nurse-a@example.nz", [127, 0, 30, 3]).await?;
    let inbox = nurse.get(&format!("/practices/{}/messages", w.practice_a)).await?;
    assert!(inbox.body.contains("Rash on my arm") && inbox.body.contains("Pat Ient"), "{}", inbox.body);
    let thread = nurse.get(&format!("/messages/{id}")).await?;
    assert!(thread.body.contains("It has been itchy for three days."), "{}", thread.body);
    let before = unread_in(&mut p).await?;
    let r = nurse
        .post(&format!("/messages/{id}"), &[("action", "reply"), ("body", "Please send a photo, or book with us.")])
        .await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = nurse
        .post(&format!("/messages/{id}"), &[("action", "note"), ("body", "Possible eczema; GP to review")])
        .await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    // The patient reads the reply, never the note; their inbox has the news.
    let mine = p.get(&format!("/messages/{id}")).await?;
    assert!(mine.body.contains("Please send a photo, or book with us."), "{}", mine.body);
    assert!(!mine.body.contains("eczema"), "an internal note reached the patient");
    assert_eq!(unread_in(&mut p).await?, before + 1);
    let notices = p.get("/inbox").await?;
    assert!(notices.body.contains("A reply from your practice"), "{}", notices.body);
    // The practice assigns and closes it; the patient writing again opens it.
    nurse.get(&format!("/messages/{id}")).await?;
    let assignee =
        thread.body.split("value=\"assign:").nth(1).and_then(|s| s.split('"').next()).unwrap_or_default().to_owned();
    let r = nurse.post(&format!("/messages/{id}"), &[("action", &format!("assign:{assignee}"))]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(nurse.post(&format!("/messages/{id}"), &[("action", "close")]).await?.status, StatusCode::SEE_OTHER);
    assert_eq!(count(&w.t, "message_threads WHERE status = 'closed' AND assigned_to IS NOT NULL").await?, 1);
    let closed = nurse.get(&format!("/practices/{}/messages?status=closed", w.practice_a)).await?;
    assert!(closed.body.contains("Rash on my arm"));
    p.get(&format!("/messages/{id}")).await?;
    let r = p.post(&format!("/messages/{id}"), &[("action", "reply"), ("body", "Photo attached at the desk.")]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(count(&w.t, "message_threads WHERE status = 'open'").await?, 1);
    // Only the practice notes, assigns or closes: the patient asking is refused.
    for action in ["note", "close", "unassign"] {
        let r = p.post(&format!("/messages/{id}"), &[("action", action), ("body", "x")]).await?;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{action}");
    }
    // The same form sent twice starts one conversation.
    let path = format!("/patients/{}/messages", w.patient1);
    let page = p.get(&path).await?;
    let key = field(&page.body, "request_key");
    let send = [
        ("practice", w.practice_a.to_string()),
        ("to", "team:reception".to_owned()),
        ("subject", "Repeat form".to_owned()),
        ("body", "Can I pick up the form?".to_owned()),
        ("request_key", key),
    ];
    let send: Vec<(&str, &str)> = send.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = p.post(&path, &send).await?;
    let second = p.post(&path, &send).await?;
    assert_eq!(first.location(), second.location());
    assert_eq!(count(&w.t, "message_threads").await?, 2);
    Ok(())
}

/// The unread count in the page header.
async fn unread_in(b: &mut Browser) -> Result<i64> {
    let page = b.get("/acting-for").await?;
    Ok(page
        .body
        .split("<span class=\"count\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_are_refused_and_nothing_is_kept() -> Result<()> {
    let w = World::new().await?;
    let mut p = w.signed_in("p1@example.nz", [127, 0, 31, 1]).await?;
    let path = format!("/patients/{}/messages", w.patient1);
    let practice_a = w.practice_a.to_string();
    // Messaging off: refused, and the page says to phone.
    let page = p.get(&path).await?;
    assert!(page.body.contains("does not take messages online"), "{}", page.body);
    // (No form is offered while messaging is off; a made-up key stands in.)
    let key = "bad-input-form".to_owned();
    let send = |practice: &str, to: &str, subject: &str, body: &str| {
        vec![
            ("practice".to_owned(), practice.to_owned()),
            ("to".to_owned(), to.to_owned()),
            ("subject".to_owned(), subject.to_owned()),
            ("body".to_owned(), body.to_owned()),
            ("request_key".to_owned(), key.clone()),
        ]
    };
    let post = async |b: &mut Browser, fields: Vec<(String, String)>| -> Result<Reply> {
        let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        b.post(&path, &f).await
    };
    let r = post(&mut p, send(&practice_a, "team:nurses", "Hello", "A question")).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("does not take messages online"));
    messaging_on(&w, false).await?;
    let long = "x".repeat(4001);
    let gp = admin_of(&w.t, w.practice_a).await?.to_string();
    for (what, fields, says) in [
        ("an empty message", send(&practice_a, "team:nurses", "Hello", "  "), "Write something"),
        ("an empty subject", send(&practice_a, "team:nurses", "", "A question"), "Write something"),
        ("an oversized message", send(&practice_a, "team:nurses", "Hello", &long), "at most 4000"),
        (
            "a team that does not exist",
            send(&practice_a, "team:doctors", "Hello", "A question"),
            "who the message is for",
        ),
        (
            "a clinician not taking messages",
            send(&practice_a, &format!("clinician:{gp}"), "Hello", "A question"),
            "does not take messages",
        ),
        ("no practice", send("", "team:nurses", "Hello", "A question"), "Choose your practice"),
    ] {
        let r = post(&mut p, fields).await?;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {}", r.body);
        assert!(r.body.contains(says), "{what}: {}", r.body);
    }
    // A practice the patient is not enrolled at: 404.
    let r = post(&mut p, send(&w.practice_b.to_string(), "team:nurses", "Hello", "A question")).await?;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(count(&w.t, "message_threads").await?, 0);
    assert_eq!(count(&w.t, "messages").await?, 0);
    // A real conversation: nobody else reaches it.
    let id = one_thread(&w, &mut p, "Sore throat", "Since Monday").await?;
    for (who, email) in [("another practice's staff", "admin-b@example.nz"), ("another patient", "p2@example.nz")] {
        let mut b = w.signed_in(email, [127, 0, 31, 3]).await?;
        assert_eq!(b.get(&format!("/messages/{id}")).await?.status, StatusCode::NOT_FOUND, "{who}");
        b.get("/acting-for").await?;
        let r = b.post(&format!("/messages/{id}"), &[("action", "reply"), ("body", "hi")]).await?;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{who}");
        assert_eq!(b.get(&path).await?.status, StatusCode::NOT_FOUND, "{who}");
    }
    assert_eq!(count(&w.t, "messages").await?, 1);
    // An empty or oversized reply changes nothing.
    p.get(&format!("/messages/{id}")).await?;
    for body in ["", &long] {
        let r = p.post(&format!("/messages/{id}"), &[("action", "reply"), ("body", body)]).await?;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert_eq!(count(&w.t, "messages").await?, 1);
    // Messaging turned off: a reply would reach nobody, so it is refused and nothing is kept.
    let mut admin = w.signed_in("admin-a@example.nz", [127, 0, 31, 5]).await?;
    let settings = format!("/practices/{}/messaging", w.practice_a);
    admin.get(&settings).await?;
    // A reply time that is no number is refused, changes nothing, and the page keeps what was typed.
    let r = admin.post(&settings, &[("after_hours", "Ring 111 for emergencies"), ("reply_days", "soon")]).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("Ring 111 for emergencies") && r.body.contains("value=\"soon\""), "{}", r.body);
    assert!(!r.body.contains("id=\"on\" name=\"on\" value=\"1\" checked"), "the box as it was sent, unticked");
    let r = admin.post(&settings, &[("after_hours", "Call 111"), ("reply_days", "2")]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    p.get(&format!("/messages/{id}")).await?;
    let r = p.post(&format!("/messages/{id}"), &[("action", "reply"), ("body", "Still sore")]).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("does not take messages from you online"), "{}", r.body);
    assert_eq!(count(&w.t, "messages").await?, 1);
    Ok(())
}

/// A raw scan of the database files (`SQLite`: the file and its write-ahead log) finds neither a
/// subject nor a message in the clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_scan_of_the_database_finds_no_subject_or_message() -> Result<()> {
    let w = World::new().await?;
    if !w.t.url.starts_with("sqlite:") {
        return Ok(()); // The PostgreSQL files are not ours to read; the same sealing runs there.
    }
    messaging_on(&w, false).await?;
    let mut p = w.signed_in("p1@example.nz", [127, 0, 32, 1]).await?;
    let id = one_thread(&w, &mut p, "Kidney stone worry", "Pain in my left flank since Sunday").await?;
    let mut nurse = w.signed_in("gp-a@example.nz", [127, 0, 32, 2]).await?;
    nurse.get(&format!("/messages/{id}")).await?;
    nurse.post(&format!("/messages/{id}"), &[("action", "note"), ("body", "Query renal colic")]).await?;
    let path = w.t.url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or(path);
    let mut scanned = 0;
    for file in [path.to_owned(), format!("{path}-wal")] {
        let Ok(bytes) = std::fs::read(&file) else { continue };
        scanned += 1;
        for needle in ["Kidney stone", "left flank", "renal colic"] {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()), "{file} holds {needle:?}");
        }
    }
    assert!(scanned >= 1, "the database file was read");
    Ok(())
}

/// Sends a file with a message in a conversation, as the thread page's form does.
async fn send_file(b: &mut Browser, thread: &str, name: &str, content: &[u8]) -> Result<Reply> {
    b.get(&format!("/messages/{thread}")).await?;
    let csrf = b.csrf.clone().unwrap_or_default();
    let (ct, body) = multipart(&[("csrf", None, csrf.as_bytes()), ("file", Some(name), content)]);
    b.send(axum::http::Method::POST, &format!("/messages/{thread}/attachments"), Some(&ct), body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_sent_with_a_message_is_the_patients_and_its_clinicians_open_it() -> Result<()> {
    let w = World::new().await?;
    staff(&w.t, w.practice_a, "nurse-a@example.nz", StaffRole::Nurse).await?;
    messaging_on(&w, false).await?;
    let mut p = w.signed_in("p1@example.nz", [127, 0, 33, 1]).await?;
    let id = one_thread(&w, &mut p, "My rash", "Photo to follow").await?;
    let docs = count(&w.t, "documents").await?;
    // An HTML file is refused, and nothing is kept: no document, no message, no blob.
    let r = send_file(&mut p, &id, "rash.html", b"<html><body><script>alert(1)</script></body></html>").await?;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.body);
    assert_eq!(count(&w.t, "documents").await?, docs);
    assert_eq!(count(&w.t, "messages").await?, 1);
    // A PDF is kept in the patient's documents, marked as sent with a message.
    let r = send_file(&mut p, &id, "rash.pdf", &pdf("rash photo", 2000)).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(count(&w.t, "documents").await?, docs + 1);
    let list = p.get(&format!("/patients/{}/documents", w.patient1)).await?;
    assert!(list.body.contains("Sent with a message: rash.pdf"), "{}", list.body);
    // The practice's clinicians open it from the conversation; reception does not.
    let mut nurse = w.signed_in("nurse-a@example.nz", [127, 0, 33, 2]).await?;
    let thread = nurse.get(&format!("/messages/{id}")).await?;
    let doc = thread
        .body
        .split("/documents/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .ok_or_else(|| anyhow!("no document in the conversation: {}", thread.body))?
        .to_owned();
    assert_eq!(nurse.get(&format!("/documents/{doc}/download")).await?.status, StatusCode::OK);
    let mut reception = w.signed_in("admin-a@example.nz", [127, 0, 33, 3]).await?;
    assert_eq!(reception.get(&format!("/documents/{doc}/download")).await?.status, StatusCode::NOT_FOUND);
    // The practice's staff add nothing to a patient's documents; strangers reach nothing.
    let r = send_file(&mut nurse, &id, "x.pdf", &pdf("x", 500)).await?;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let mut other = w.signed_in("p2@example.nz", [127, 0, 33, 4]).await?;
    other.get("/acting-for").await?;
    let csrf = other.csrf.clone().unwrap_or_default();
    let (ct, body) = multipart(&[("csrf", None, csrf.as_bytes()), ("file", Some("x.pdf"), &pdf("x", 500))]);
    let r = other.send(axum::http::Method::POST, &format!("/messages/{id}/attachments"), Some(&ct), body).await?;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(count(&w.t, "documents").await?, docs + 1);
    Ok(())
}

/// A document a practice's system sends, and a result a clinician releases, are notices in the
/// patient's inbox (and emailed as "something new", nothing more).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_received_are_notices_in_the_inbox() -> Result<()> {
    let w = World::new().await?;
    // The world's fixture letter was pushed by practice A's system.
    let mut p = w.signed_in("p1@example.nz", [127, 0, 34, 1]).await?;
    let inbox = p.get("/inbox").await?;
    assert!(inbox.body.contains("A new health document has arrived"), "{}", inbox.body);
    let news: Vec<_> = mails(&w.t).await?.into_iter().filter(|m| m.1 == app::notify::NEWS_SUBJECT).collect();
    assert!(news.iter().any(|m| m.0 == "p1@example.nz"));
    assert!(news.iter().all(|m| !m.2.contains("http") && !m.2.contains("letter")), "{news:?}");
    Ok(())
}
