//! Sign-in with a username or email and a password (Django's `ModelBackend`, dj-rest-auth's
//! `LoginView`).

use entity::user;
use secrecy::SecretString;

use super::{AccountError, Accounts};
use crate::{
    audit::{Entry, Origin, event},
    codes,
    config::EmailVerification,
    ratelimit::{Action, ClientIp},
    store,
    tokens::IssuedPair,
};

impl Accounts {
    /// `authenticate`, then (mandatory verification) at least one verified address when the
    /// user has any, then a session.
    pub async fn password_login(
        &self,
        client: &ClientIp,
        origin: &Origin,
        login: &str,
        password: &SecretString,
    ) -> Result<(user::Model, IssuedPair), AccountError> {
        let user = self
            .authenticate(client, origin, login, password)
            .await?
            .ok_or(AccountError::InvalidCredentials)?;
        if self.settings.email_verification == EmailVerification::Mandatory {
            let emails = store::users::list_emails(&self.db, user.id).await?;
            if !emails.is_empty() && !emails.iter().any(|e| e.verified) {
                return Err(AccountError::EmailNotVerified);
            }
        }
        let pair = self.tokens.start_session(&user).await?;
        Ok((user, pair))
    }

    /// Username-or-email + password, as Django's ModelBackend: `None` for a wrong password, an
    /// unknown user or a disabled one, all after one argon2 verification (no user enumeration by
    /// timing). A Django-format or weaker hash is upgraded to our argon2id on success.
    ///
    /// The attempt first spends the client IP's login budget, then the account's, named by the
    /// user's username when the name is a known username or email (both names of one account
    /// share one budget), else by the name as sent. A refusal is a 429 before any password work.
    #[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn authenticate(
        &self,
        client: &ClientIp,
        origin: &Origin,
        login: &str,
        password: &SecretString,
    ) -> Result<Option<user::Model>, AccountError> {
        let user = store::users::find_by_login(&self.db, login.trim()).await?;
        let account = user.as_ref().map_or(login, |u| u.username.as_str());
        self.limits.check(Action::Login, client, Some(account)).await?;
        let matches = crate::password::verify(user.as_ref().map(|u| u.password.as_str()), password).await;
        let attempt = Entry::new(event::LOGIN_SUCCEEDED).method("password");
        let known = user.as_ref().map(|u| u.id);
        let Some(user) = user.filter(|u| matches && u.is_active) else {
            let mut failed = Entry {
                event: event::LOGIN_FAILED,
                ..attempt
            }
            .outcome(codes::INVALID_CREDENTIALS);
            failed.user_id = known;
            self.audit.record(origin, failed);
            return Ok(None);
        };
        self.audit.record(origin, attempt.user(user.id));
        tracing::Span::current().record("user_id", user.id);
        if crate::password::needs_rehash(&user.password) {
            match crate::password::hash(password).await {
                Ok(hash) => store::users::update_password(&self.db, user.id, &hash).await?,
                Err(e) => tracing::warn!(error = %e, "password rehash failed; keeping the old hash"),
            }
        }
        store::users::touch_last_login(&self.db, user.id, chrono::Utc::now()).await?;
        Ok(Some(user))
    }
}
