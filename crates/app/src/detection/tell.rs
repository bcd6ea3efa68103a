//! Telling operators of an alert beyond the console: an email to each security contact, and a
//! signed JSON webhook (a pager or chat tool), posted by the job queue so that a slow or
//! unreachable receiver neither delays the request nor loses the alert (it is retried).

use crate::{App, AppError};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use store::{NewAlert, NewJob};

/// The job kind that posts an alert to the webhook.
pub(crate) const WEBHOOK_JOB: &str = "alert-webhook";

/// What the webhook receives: ids, codes and counts only (no names, no health data).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AlertMessage {
    /// The alert's id (the console shows it).
    pub id: String,
    /// The rule's code.
    pub rule: String,
    /// What the rule is, in words.
    pub title: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// What was done (a response code).
    pub response: String,
    /// Who: a session id, `account:<id>` or `client:<id>`.
    pub subject: String,
    /// Distinct things counted when it fired.
    pub seen: i64,
    /// When (Unix seconds).
    pub at: i64,
}

/// The signature header's value for a body: `sha256=` and the HMAC-SHA256 of the body under
/// the shared secret, in hex.
#[must_use]
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, body);
    format!("sha256={}", hex::encode(tag.as_ref()))
}

impl App {
    /// Emails the security contacts and queues the webhook for a new alert.
    pub(crate) async fn tell_operators(&self, alert: &NewAlert) -> Result<(), AppError> {
        let rule = domain::detection::Rule::parse(&alert.rule);
        let response = domain::detection::Response::parse(&alert.response);
        let email = crate::notify::texts::Email::SecurityAlert {
            rule: rule.map_or(alert.rule.as_str(), |r| r.label()),
            severity: &alert.severity,
            response: response.map_or(alert.response.as_str(), |r| r.label()),
            seen: alert.seen,
        };
        let settings = self.alert_settings();
        for to in &settings.contacts {
            self.store.enqueue_mail(&crate::notify::texts::mail(to, "", &email, alert.created_at)).await?;
        }
        if !settings.contacts.is_empty() {
            self.mail_waker.notify_one();
        }
        if settings.webhook.is_some() {
            let message = AlertMessage {
                id: alert.id.to_string(),
                rule: alert.rule.clone(),
                title: rule.map_or_else(String::new, |r| r.label().to_owned()),
                severity: alert.severity.clone(),
                response: alert.response.clone(),
                subject: alert.subject.clone(),
                seen: alert.seen,
                at: alert.created_at,
            };
            let job = NewJob {
                kind: WEBHOOK_JOB.into(),
                idempotency_key: format!("{WEBHOOK_JOB}:{}", alert.id),
                payload: serde_json::to_string(&message).map_err(|e| AppError::Internal(e.to_string()))?,
                run_after: alert.created_at,
                max_attempts: 8,
            };
            self.store.enqueue_job(&job, &uuid::Uuid::now_v7().to_string(), alert.created_at).await?;
            self.jobs_waker.notify_one();
        }
        Ok(())
    }

    /// Posts one alert to the webhook, signed (`X-Tiaki-Signature`).
    ///
    /// # Errors
    /// When the receiver cannot be reached or does not answer 2xx (the job is retried).
    pub(crate) async fn post_alert(&self, payload: &str) -> Result<(), AppError> {
        let settings = self.alert_settings();
        let Some((url, secret)) = &settings.webhook else { return Ok(()) };
        let sig = signature(secret.expose_secret().as_bytes(), payload.as_bytes());
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| AppError::Internal(format!("webhook client: {e}")))?;
        let answer = client
            .post(url)
            .header("content-type", "application/json")
            .header("x-tiaki-signature", sig)
            .body(payload.to_owned())
            .send()
            .await
            .map_err(|e| AppError::Internal(format!("the alert webhook could not be reached: {e}")))?;
        if !answer.status().is_success() {
            return Err(AppError::Internal(format!("the alert webhook answered {}", answer.status())));
        }
        Ok(())
    }
}
