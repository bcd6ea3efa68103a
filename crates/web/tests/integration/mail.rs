//! Mail goes out over real SMTP: a Python aiosmtpd server on loopback, started by the test.

use crate::support::*;
use anyhow::{Context, Result, bail};
use app::notify::{Sender, Transport};
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub(crate) struct SmtpServer {
    child: Child,
    pub(crate) port: u16,
    pub(crate) maildir: PathBuf,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}

pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub(crate) async fn start_smtp(port: u16) -> Result<SmtpServer> {
    let maildir = std::env::temp_dir().join(format!("tiaki-maildir-{}", uuid::Uuid::new_v4().simple()));
    let child = Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
        .arg(&maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("python3 with aiosmtpd is needed (pip install aiosmtpd)")?;
    let server = SmtpServer { child, port, maildir };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(server);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("aiosmtpd did not start on port {port}; is it installed (pip install aiosmtpd)?")
}

pub(crate) fn delivered(maildir: &Path) -> Vec<String> {
    std::fs::read_dir(maildir.join("new"))
        .map(|d| {
            d.filter_map(std::result::Result::ok)
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .map(|m| unquote(&m))
                .collect()
        })
        .unwrap_or_default()
}

/// Undoes quoted-printable (soft line breaks and =XX escapes), as a mail client would.
fn unquote(m: &str) -> String {
    let joined = m.replace("=\r\n", "").replace("=\n", "");
    let mut out = Vec::new();
    let b = joined.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'='
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&String::from_utf8_lossy(&b[i + 1..i + 3]), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn smtp(port: u16) -> Result<Transport> {
    Ok(Transport::Smtp(
        AsyncSmtpTransport::<Tokio1Executor>::from_url(&format!("smtp://127.0.0.1:{port}"))?
            .timeout(Some(Duration::from_secs(5)))
            .build(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_mail_is_delivered_over_smtp_with_a_code_that_works() -> Result<()> {
    let w = World::new().await?;
    let server = start_smtp(free_port()?).await?;
    let sender =
        Sender::new(w.t.app.clone(), smtp(server.port)?, "Tiaki <no-reply@portal.test>").map_err(anyhow::Error::msg)?;
    // The world's set-up queued mail; deliver it all, then enrol someone new.
    sender.deliver_due().await?;
    let mut admin = w.signed_in("admin-a@example.nz", [127, 0, 10, 1]).await?;
    // Signing in from a new browser is emailed to the admin; deliver that first.
    assert_eq!(sender.deliver_due().await?, 1);
    admin
        .post(
            &format!("/practices/{}/patients", w.practice_a),
            &[
                ("nhi", "ZAC5361"),
                ("name", "Rangi Mail"),
                ("date_of_birth", "1969-09-09"),
                ("email", "rangi@example.nz"),
            ],
        )
        .await?;
    assert_eq!(sender.deliver_due().await?, 1);
    assert_eq!(w.t.app.pending_mail().await?, 0);
    let mail = delivered(&server.maildir)
        .into_iter()
        .find(|m| m.contains("rangi@example.nz"))
        .context("the activation email arrived")?;
    assert!(mail.contains("Subject: Activate your Tiaki patient portal account"));
    assert!(mail.contains("From: Tiaki <no-reply@portal.test>"));
    // As delivered over SMTP: a code to type, and nothing that looks like a link.
    assert!(!mail.contains("://") && !mail.contains("portal.test/") && !mail.contains("token="), "{mail}");
    let token = code_in(&mail.replace("\r\n", "\n")).context("the email carries a code")?;
    let mut patient = w.t.browser([127, 0, 10, 2]);
    let page = patient.post("/activate", &[("step", "code"), ("code", &token)]).await?;
    assert!(page.body.contains("Kia ora Rangi Mail"), "{}", page.body);
    let r = patient.post("/activate", &[("code", &token), ("password", PASSWORD), ("confirm", PASSWORD)]).await?;
    assert_eq!(r.status, axum::http::StatusCode::SEE_OTHER);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_is_kept_and_retried_until_the_server_takes_it() -> Result<()> {
    let w = World::new().await?;
    let pending = w.t.app.pending_mail().await?;
    assert!(pending > 0);
    let port = free_port()?;
    // Nothing listens yet: every message stays queued.
    let sender =
        Sender::new(w.t.app.clone(), smtp(port)?, "Tiaki <no-reply@portal.test>").map_err(anyhow::Error::msg)?;
    assert_eq!(sender.deliver_due().await?, 0);
    assert_eq!(w.t.app.pending_mail().await?, pending);
    let server = start_smtp(port).await?;
    // Not before the back-off has passed…
    assert_eq!(sender.deliver_due().await?, 0);
    w.t.clock.advance(31);
    // …then all of them, once.
    assert_eq!(usize::try_from(pending)?, sender.deliver_due().await?);
    assert_eq!(w.t.app.pending_mail().await?, 0);
    assert_eq!(sender.deliver_due().await?, 0);
    assert_eq!(delivered(&server.maildir).len(), usize::try_from(pending)?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_mail_is_written_as_eml_files() -> Result<()> {
    let w = World::new().await?;
    let dir = w.t.data_dir.join("mail");
    std::fs::create_dir_all(&dir)?;
    let sender = Sender::new(w.t.app.clone(), Transport::Folder(dir.clone()), "Tiaki <no-reply@portal.test>")
        .map_err(anyhow::Error::msg)?;
    let n = sender.deliver_due().await?;
    assert!(n > 0);
    let files: Vec<_> = std::fs::read_dir(&dir)?.filter_map(std::result::Result::ok).map(|e| e.path()).collect();
    assert_eq!(files.len(), n);
    assert!(files.iter().all(|p| p.extension().is_some_and(|e| e == "eml")));
    let any = std::fs::read_to_string(&files[0])?;
    assert!(any.contains("Subject: "));
    Ok(())
}
