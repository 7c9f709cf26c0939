//! Outgoing mail over SMTP (lettre), sent after the response from a bounded in-process queue:
//! whether a mail goes out (the address is registered or not) and how SMTP fares never shows in
//! the answer or its timing. Failed sends are retried, then logged; a body is never logged (it
//! holds a key). Without `AUTHBRIDGE_SMTP_URL` the endpoints that must send answer 503.

use std::{future::Future, pin::Pin, time::Duration};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
};
use secrecy::ExposeSecret;
use tokio::sync::mpsc;

use crate::config::MailSettings;

/// Jobs waiting at most; past it a request that would mail answers 503.
const QUEUE_CAPACITY: usize = 1024;
/// Waits before the 2nd and 3rd attempt of a failed send; then it is logged and dropped.
const RETRY_DELAYS: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(5)];

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail is not configured (AUTHBRIDGE_SMTP_URL)")]
    NotConfigured,
    /// `AUTHBRIDGE_MAIL_FROM` is not an address: our configuration, never the client's input.
    #[error("AUTHBRIDGE_MAIL_FROM is not a valid sender address")]
    BadSender,
    /// Too many mails wait already.
    #[error("the mail queue is full")]
    QueueFull,
    #[error("invalid recipient address")]
    Recipient,
    #[error("the SMTP server failed: {0}")]
    Transport(String),
}

/// A mail ready to go.
pub struct Outgoing {
    pub to: String,
    pub subject: &'static str,
    pub body: String,
}

/// What the queue runs: finds out whether and what to send (database work included, so that it
/// costs the request nothing), then the mail is sent with retries.
pub type MailJob = Pin<Box<dyn Future<Output = anyhow::Result<Option<Outgoing>>> + Send>>;

#[derive(Clone)]
pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Option<Mailbox>,
    queue: mpsc::Sender<Queued>,
}

enum Queued {
    Job(MailJob),
    Retry { mail: Outgoing, attempt: usize },
}

impl Mailer {
    /// Builds the transport and starts the queue's task (call inside the runtime).
    pub fn from_settings(settings: &MailSettings) -> anyhow::Result<Self> {
        let transport = match &settings.smtp_url {
            Some(url) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .map_err(|e| anyhow::anyhow!("AUTHBRIDGE_SMTP_URL: {e}"))?
                    .timeout(Some(Duration::from_secs(10)))
                    .build(),
            ),
            None => {
                tracing::warn!("AUTHBRIDGE_SMTP_URL is not set: verification and reset mails cannot be sent");
                None
            }
        };
        let from = settings.from.parse::<Mailbox>().ok();
        if from.is_none() {
            tracing::error!("AUTHBRIDGE_MAIL_FROM is not a valid address: no mail can be sent");
        }
        let (queue, jobs) = mpsc::channel(QUEUE_CAPACITY);
        let mailer = Self { transport, from, queue };
        tokio::spawn(run_queue(mailer.clone(), jobs));
        Ok(mailer)
    }

    /// Whether mail can be sent at all: `NotConfigured` or `BadSender` (both 503) otherwise.
    pub fn ready(&self) -> Result<(), MailError> {
        if self.transport.is_none() {
            return Err(MailError::NotConfigured);
        }
        if self.from.is_none() {
            // Our configuration, not the client's input: an operator must act.
            tracing::error!("mail cannot be sent: AUTHBRIDGE_MAIL_FROM is not a valid sender address");
            return Err(MailError::BadSender);
        }
        Ok(())
    }

    /// Queues `job`; it runs after the caller answered. `QueueFull` when too many wait.
    pub fn submit(
        &self,
        job: impl Future<Output = anyhow::Result<Option<Outgoing>>> + Send + 'static,
    ) -> Result<(), MailError> {
        self.ready()?;
        self.queue
            .try_send(Queued::Job(Box::pin(job)))
            .map_err(|_| MailError::QueueFull)
    }

    async fn send(&self, mail: &Outgoing) -> Result<(), MailError> {
        let transport = self.transport.as_ref().ok_or(MailError::NotConfigured)?;
        let from = self.from.clone().ok_or(MailError::BadSender)?;
        let message = Message::builder()
            .from(from)
            .to(mail.to.parse().map_err(|_| MailError::Recipient)?)
            .subject(mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| MailError::Transport(e.to_string()))?;
        transport
            .send(message)
            .await
            .map_err(|e| MailError::Transport(e.to_string()))?;
        Ok(())
    }
}

/// One job at a time, in order; a failed send is put back after a delay instead of holding the
/// queue.
async fn run_queue(mailer: Mailer, mut jobs: mpsc::Receiver<Queued>) {
    while let Some(queued) = jobs.recv().await {
        let (mail, attempt) = match queued {
            Queued::Job(job) => match job.await {
                Ok(Some(mail)) => (mail, 0),
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(error = %e, error.chain = ?e, "preparing a mail failed");
                    continue;
                }
            },
            Queued::Retry { mail, attempt } => (mail, attempt),
        };
        let Err(e) = mailer.send(&mail).await else {
            continue;
        };
        match (RETRY_DELAYS.get(attempt), &e) {
            (Some(delay), MailError::Transport(_)) => {
                tracing::warn!(error = %e, attempt = attempt + 1, subject = mail.subject, "mail not sent; retrying");
                let (queue, delay) = (mailer.queue.clone(), *delay);
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if queue
                        .try_send(Queued::Retry {
                            mail,
                            attempt: attempt + 1,
                        })
                        .is_err()
                    {
                        tracing::error!("mail queue full: a retried mail was dropped");
                    }
                });
            }
            _ => {
                tracing::error!(error = %e, attempts = attempt + 1, subject = mail.subject, "mail not sent; giving up")
            }
        }
    }
}
