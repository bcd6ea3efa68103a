//! Mail: the texts Tiaki sends, and the sender that delivers the outbox over SMTP (or, with no
//! SMTP server configured, writes each message as an `.eml` file in the data folder). Delivery
//! is at least once: a message leaves the outbox only after the server accepted it, and a
//! failure is retried with back-off.

mod inbox;
pub(crate) mod texts;

pub use inbox::{InboxItem, NEWS_SUBJECT, Notice, NoticeKind, NoticePref};

use crate::{App, AppError};
use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use store::MailRow;

/// Where mail goes.
#[derive(Clone)]
pub enum Transport {
    /// An SMTP server.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// `.eml` files in this folder.
    Folder(PathBuf),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Smtp(_) => f.write_str("Transport::Smtp"),
            Self::Folder(p) => write!(f, "Transport::Folder({})", p.display()),
        }
    }
}

impl Transport {
    /// The transport the configuration asks for.
    ///
    /// # Errors
    /// When the SMTP URL cannot be used, or the mail folder cannot be made.
    pub fn from_config(config: &crate::Config) -> Result<Self, String> {
        if let Some(url) = &config.smtp_url {
            AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                .map(|b| Self::Smtp(b.timeout(Some(Duration::from_secs(30))).build()))
                .map_err(|e| format!("smtp_url (TIAKI_SMTP_URL) cannot be used: {e}"))
        } else {
            // The mail folder holds live codes: only the portal's own user may read it.
            use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
            let dir = config.data_dir.join("mail");
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            Ok(Self::Folder(dir))
        }
    }

    async fn send(&self, message: Message, id: uuid::Uuid) -> Result<(), String> {
        match self {
            Self::Smtp(t) => t.send(message).await.map(|_| ()).map_err(|e| e.to_string()),
            Self::Folder(dir) => {
                let tmp = dir.join(format!(".{id}.tmp"));
                let path = dir.join(format!("{id}.eml"));
                let bytes = message.formatted();
                let write = tmp.clone();
                tokio::task::spawn_blocking(move || {
                    use std::io::Write;
                    use std::os::unix::fs::OpenOptionsExt;
                    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&write)?;
                    f.write_all(&bytes)?;
                    f.sync_all()
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
                tokio::fs::rename(&tmp, &path).await.map_err(|e| e.to_string())
            }
        }
    }
}

/// How long to wait before the `attempt`-th retry: 30 s doubling, at most an hour.
#[must_use]
pub fn backoff_secs(attempts: i64) -> i64 {
    let exp = u32::try_from(attempts.clamp(1, 8) - 1).unwrap_or(0);
    (30_i64 << exp).min(3600)
}

/// Delivers the outbox.
#[derive(Debug)]
pub struct Sender {
    app: Arc<App>,
    transport: Transport,
    from: Mailbox,
}

impl Sender {
    /// A sender for `app`'s outbox.
    ///
    /// # Errors
    /// When `from` is not a mailbox.
    pub fn new(app: Arc<App>, transport: Transport, from: &str) -> Result<Self, String> {
        let from = from.parse().map_err(|e| format!("mail_from: {e}"))?;
        Ok(Self { app, transport, from })
    }

    /// Sends every message that is due; returns how many were delivered.
    ///
    /// # Errors
    /// When the outbox cannot be read.
    pub async fn deliver_due(&self) -> Result<usize, AppError> {
        let now = self.app.now();
        let batch = self.app.store.claim_mail(now, now + 120, 50).await?;
        let mut delivered = 0;
        for mail in batch {
            match self.deliver(&mail).await {
                Ok(()) => {
                    self.app.store.mail_sent(mail.id, self.app.now()).await?;
                    metrics::counter!("tiaki_mail_sent_total").increment(1);
                    delivered += 1;
                }
                Err(e) => {
                    let next = self.app.now() + backoff_secs(mail.attempts);
                    tracing::warn!(mail_id = %mail.id, attempts = mail.attempts, error = %e, "mail delivery failed; will retry");
                    metrics::counter!("tiaki_mail_failed_total").increment(1);
                    self.app.store.mail_failed(mail.id, next, &e).await?;
                }
            }
        }
        Ok(delivered)
    }

    async fn deliver(&self, mail: &MailRow) -> Result<(), String> {
        let to: Mailbox = mail.recipient.parse().map_err(|e| format!("recipient: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| e.to_string())?;
        self.transport.send(message, mail.id).await
    }

    /// Runs until `shutdown` is notified: delivers whenever mail is queued, and every few
    /// seconds for retries.
    pub async fn run(self, shutdown: Arc<tokio::sync::Notify>) {
        let waker = self.app.mail_waker.clone();
        loop {
            if let Err(e) = self.deliver_due().await {
                tracing::error!(error = %e, "mail outbox could not be read");
            }
            tokio::select! {
                () = shutdown.notified() => break,
                () = waker.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff_secs(1), 30);
        assert_eq!(backoff_secs(2), 60);
        assert_eq!(backoff_secs(4), 240);
        assert_eq!(backoff_secs(50), 3600);
    }
}
