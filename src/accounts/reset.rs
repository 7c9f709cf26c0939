//! Passwords: a reset by mail (dj-rest-auth's reset and reset-confirm), and a new password set
//! by its owner. Every new password revokes the user's tokens.

use chrono::Utc;
use entity::user;
use secrecy::SecretString;

use super::{AccountError, Accounts, keys, mail, registration::check_new_password};
use crate::{
    audit::{Entry, Origin, event},
    mail::Outgoing,
    ratelimit::{Action, ClientIp},
    store::{self, one_time},
    tokens::jwt_at,
};

/// A new password as a form gives it: twice.
pub struct NewPassword {
    pub password1: String,
    pub password2: String,
}

impl Accounts {
    /// Queues a reset link for the active user owning `email`, if any, after the client's and
    /// the address's budget allow it. Everything else (the lookup, the key, the mail) happens in
    /// the mail queue after the answer, so a registered and an unknown address get the same
    /// answer in the same time, and SMTP's failures never reach the client.
    pub async fn send_password_reset(&self, client: &ClientIp, email: &str) -> Result<(), AccountError> {
        self.limits.check(Action::PasswordReset, client, Some(email)).await?;
        if email.parse::<lettre::Address>().is_err() {
            return Err(AccountError::invalid("email", "Enter a valid email address."));
        }
        let (accounts, email) = (self.clone(), email.to_owned());
        self.mailer
            .submit(async move { accounts.password_reset_mail(&email).await })?;
        Ok(())
    }

    async fn password_reset_mail(&self, email: &str) -> anyhow::Result<Option<Outgoing>> {
        let owner = match store::users::find_email(&self.db, email).await? {
            Some(row) => Some(store::users::get(&self.db, row.user_id).await?),
            None => store::users::find_by_user_email(&self.db, email).await?,
        };
        let Some(user) = owner.filter(|u| u.is_active) else {
            return Ok(None);
        };
        let now = Utc::now();
        store::one_time::void_for_user(&self.db, one_time::RESET_PASSWORD, user.id, now).await?;
        let (token, hash) = keys::new_key();
        store::one_time::insert(
            &self.db,
            one_time::NewKey {
                purpose: one_time::RESET_PASSWORD,
                user_id: user.id,
                email: None,
                key_hash: &hash,
                expires_at: jwt_at(now, self.settings.password_reset_lifetime),
            },
        )
        .await?;
        let uid = keys::encode_uid(user.id);
        Ok(Some(mail::password_reset(
            &self.settings,
            email,
            &user.username,
            &uid,
            &token,
        )))
    }

    /// Sets a new password from a reset link (`uid`, `token`); revokes every token of the user,
    /// and returns it. `None` when the link is not valid.
    pub async fn reset_password(
        &self,
        origin: &Origin,
        uid: &str,
        token: &str,
        new: NewPassword,
    ) -> Result<Option<i32>, AccountError> {
        check_new_password(&new.password1, &new.password2, &[], super::NEW_PASSWORD_FIELDS)?;
        let Some(user_id) = keys::decode_uid(uid) else {
            return Ok(None);
        };
        let hash = keys::key_hash(token);
        let consumed = store::one_time::consume(&self.db, one_time::RESET_PASSWORD, &hash, Utc::now());
        let Some(row) = consumed.await? else {
            return Ok(None);
        };
        if row.user_id != user_id {
            return Ok(None);
        }
        self.store_password(user_id, &SecretString::from(new.password1)).await?;
        self.audit
            .record(origin, Entry::new(event::PASSWORD_RESET).user(user_id));
        Ok(Some(user_id))
    }

    /// A new password chosen by `user`, who proved who they are (the caller checked the old
    /// password or a recent sign-in); revokes every token of the user.
    pub async fn change_password(
        &self,
        origin: &Origin,
        user: &user::Model,
        new: NewPassword,
    ) -> Result<(), AccountError> {
        check_new_password(
            &new.password1,
            &new.password2,
            &[&user.username, &user.email],
            super::NEW_PASSWORD_FIELDS,
        )?;
        self.store_password(user.id, &SecretString::from(new.password1)).await?;
        let what = match user.password.starts_with('!') {
            true => event::PASSWORD_SET,
            false => event::PASSWORD_CHANGED,
        };
        self.audit.record(origin, Entry::new(what).user(user.id));
        Ok(())
    }

    /// Stores a new password hash and revokes the user's refresh and opaque tokens.
    async fn store_password(&self, user_id: i32, password: &SecretString) -> Result<(), AccountError> {
        let hash = crate::password::hash(password).await?;
        store::users::update_password(&self.db, user_id, &hash).await?;
        self.tokens.revoke_user(user_id).await?;
        Ok(())
    }
}
