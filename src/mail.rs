//! Outgoing mail over SMTP (lettre). Without `AUTHBRIDGE_SMTP_URL` nothing can be sent and the
//! endpoints that must send answer 503; a message body is never logged (it holds a key).

use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor, message::header::ContentType};
use secrecy::ExposeSecret;

use crate::config::Settings;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail is not configured (AUTHBRIDGE_SMTP_URL)")]
    NotConfigured,
    #[error("invalid address: {0}")]
    Address(String),
    #[error("the SMTP server failed: {0}")]
    Transport(String),
}

#[derive(Clone)]
pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: String,
}

impl Mailer {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let transport = match &settings.smtp_url {
            Some(url) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .map_err(|e| anyhow::anyhow!("AUTHBRIDGE_SMTP_URL: {e}"))?
                    .timeout(Some(std::time::Duration::from_secs(10)))
                    .build(),
            ),
            None => {
                tracing::warn!("AUTHBRIDGE_SMTP_URL is not set: verification and reset mails cannot be sent");
                None
            }
        };
        Ok(Self {
            transport,
            from: settings.mail_from.clone(),
        })
    }

    pub fn is_configured(&self) -> bool {
        self.transport.is_some()
    }

    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<(), MailError> {
        let transport = self.transport.as_ref().ok_or(MailError::NotConfigured)?;
        let message = Message::builder()
            .from(self.from.parse().map_err(|_| MailError::Address(self.from.clone()))?)
            .to(to.parse().map_err(|_| MailError::Address(to.to_owned()))?)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| MailError::Transport(e.to_string()))?;
        transport
            .send(message)
            .await
            .map_err(|e| MailError::Transport(e.to_string()))?;
        Ok(())
    }
}
