//! Registration of a local account and the confirmation of its address (allauth's mandatory
//! email verification, `ACCOUNT_PREVENT_ENUMERATION`), and the rules of usernames and passwords.

use chrono::Utc;
use sea_orm::TransactionTrait;
use secrecy::SecretString;

use super::{AccountError, Accounts, keys, mail};
use crate::{
    config::EmailVerification,
    ratelimit::{Action, ClientIp},
    store::{self, StoreError, one_time},
    tokens::jwt_at,
};

/// Where a new password's errors go: (mismatch field, validator field). dj-rest-auth's password
/// views report both on `new_password2`; registration uses `password2` and `password1`.
pub const NEW_PASSWORD_FIELDS: (&str, &str) = ("new_password2", "new_password2");
pub const REGISTER_PASSWORD_FIELDS: (&str, &str) = ("password2", "password1");

const USERNAME_TAKEN: &str = "A user with that username already exists.";

/// A registration as the client asked for it (the address already parsed).
pub struct NewAccount {
    /// Empty or missing: the address's local part.
    pub username: Option<String>,
    pub email: String,
    pub password1: String,
    pub password2: String,
}

/// What the client is told: the same whether the address was new or had an account.
pub enum Registered {
    /// No email verification: the account can sign in.
    Active,
    /// A confirmation (or, for a known address, an "account exists") mail is on its way.
    MailSent,
}

/// The 400 for a username outside Django's rule.
pub fn check_username(name: &str) -> Result<(), AccountError> {
    if store::users::is_valid_username(name) {
        return Ok(());
    }
    Err(AccountError::invalid(
        "username",
        "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.",
    ))
}

/// Field errors of a new password pair, Django's validators included.
pub fn check_new_password(
    password1: &str,
    password2: &str,
    attributes: &[&str],
    (mismatch_field, rules_field): (&'static str, &'static str),
) -> Result<(), AccountError> {
    if password1 != password2 {
        return Err(AccountError::invalid(
            mismatch_field,
            "The two password fields didn't match.",
        ));
    }
    let problems = crate::password_rules::problems(password1, attributes);
    if problems.is_empty() {
        return Ok(());
    }
    Err(AccountError::WeakPassword {
        field: rules_field,
        problems,
    })
}

impl Accounts {
    /// `check_username`, and a name with an `@` may not be another user's email address: logins
    /// look such a name up as an email first, and the name would pass for that user's address
    /// elsewhere. `user_id` is the account being renamed (`None` for a registration).
    pub async fn check_new_username(&self, name: &str, user_id: Option<i32>) -> Result<(), AccountError> {
        check_username(name)?;
        if name.contains('@')
            && let Some(owner) = store::users::email_owner(&self.db, name).await?
            && Some(owner) != user_id
        {
            return Err(AccountError::invalid("username", USERNAME_TAKEN));
        }
        Ok(())
    }

    /// dj-rest-auth's `RegisterView`: throttled per client and address; the account is created
    /// with an unverified address and a confirmation key is mailed. An address that has an
    /// account is a 400 on `email`, or, with `prevent_enumeration`, a mail to its owner and the
    /// same answer as a new account; the password is hashed either way, so the timing matches.
    pub async fn register(&self, client: &ClientIp, new: NewAccount) -> Result<Registered, AccountError> {
        let email = new.email;
        self.limits.check(Action::Register, client, Some(&email)).await?;
        let verification = self.settings.email_verification;
        if verification != EmailVerification::None {
            // Refuse before creating an account nobody could confirm.
            self.mailer.ready()?;
        }
        let username = new
            .username
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
        self.check_new_username(&username, None).await?;
        check_new_password(
            &new.password1,
            &new.password2,
            &[&username, &email],
            REGISTER_PASSWORD_FIELDS,
        )?;
        let created = self
            .create_local_user(&username, &email, &SecretString::from(new.password1))
            .await?;
        if verification == EmailVerification::None {
            return Ok(Registered::Active);
        }
        if let Some(user_id) = created {
            // The account stays if this fails; `resend-email/` sends the key again.
            self.send_confirmation(user_id, &email).await?;
        }
        Ok(Registered::MailSent)
    }

    /// A new local user with an unverified email row, in one transaction; `None` when the
    /// address has an account and its owner was told instead (`address_taken`).
    async fn create_local_user(
        &self,
        username: &str,
        email: &str,
        password: &SecretString,
    ) -> Result<Option<i32>, AccountError> {
        let password_hash = crate::password::hash(password).await?;
        if store::users::find_email(&self.db, email).await?.is_some()
            || store::users::find_by_user_email(&self.db, email).await?.is_some()
        {
            return self.address_taken(email).map(|()| None);
        }
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        let new_user = store::users::NewLocalUser {
            username,
            email,
            password_hash,
            is_staff: false,
            is_superuser: false,
        };
        let user = match store::users::insert_local(&txn, new_user).await {
            Err(StoreError::Taken { .. }) => return Err(AccountError::invalid("username", USERNAME_TAKEN)),
            other => other?,
        };
        if let Err(e) = store::users::insert_email(&txn, user.id, email, false).await {
            return match e {
                // Registered concurrently by someone else.
                StoreError::Taken { .. } => {
                    txn.rollback().await.map_err(StoreError::from)?;
                    self.address_taken(email).map(|()| None)
                }
                e => Err(e.into()),
            };
        }
        txn.commit().await.map_err(StoreError::from)?;
        Ok(Some(user.id))
    }

    fn address_taken(&self, email: &str) -> Result<(), AccountError> {
        if !self.settings.prevent_enumeration {
            return Err(AccountError::EmailInUse);
        }
        if self.settings.email_verification != EmailVerification::None {
            let mail = mail::account_exists(&self.settings, email);
            self.mailer.submit(async move { Ok(Some(mail)) })?;
        }
        Ok(())
    }

    /// Queues a mail with a new email-confirmation key for `email` of `user_id`.
    async fn send_confirmation(&self, user_id: i32, email: &str) -> Result<(), AccountError> {
        self.mailer.ready()?;
        let (key, hash) = keys::new_key();
        store::one_time::insert(
            &self.db,
            one_time::NewKey {
                purpose: one_time::CONFIRM_EMAIL,
                user_id,
                email: Some(email),
                key_hash: &hash,
                expires_at: jwt_at(Utc::now(), self.settings.email_confirmation_lifetime),
            },
        )
        .await?;
        let mail = mail::confirmation(&self.settings, email, &key);
        self.mailer.submit(async move { Ok(Some(mail)) })?;
        Ok(())
    }

    /// Queues a new confirmation mail for `email` when it belongs to an unverified address;
    /// silent otherwise. Throttled per client and address; the lookup runs in the mail queue,
    /// so the answer's timing tells nothing.
    pub async fn resend_confirmation(&self, client: &ClientIp, email: &str) -> Result<(), AccountError> {
        self.limits.check(Action::Register, client, Some(email)).await?;
        let (accounts, email) = (self.clone(), email.to_owned());
        self.mailer.submit(async move {
            let Some(row) = store::users::find_email(&accounts.db, &email).await? else {
                return Ok(None);
            };
            if row.verified {
                return Ok(None);
            }
            let (key, hash) = keys::new_key();
            store::one_time::insert(
                &accounts.db,
                one_time::NewKey {
                    purpose: one_time::CONFIRM_EMAIL,
                    user_id: row.user_id,
                    email: Some(&row.email),
                    key_hash: &hash,
                    expires_at: jwt_at(Utc::now(), accounts.settings.email_confirmation_lifetime),
                },
            )
            .await?;
            Ok(Some(mail::confirmation(&accounts.settings, &row.email, &key)))
        })?;
        Ok(())
    }

    /// Marks the address of a valid, unused confirmation key verified; returns its user. `None`
    /// when the key is unknown, used or expired.
    pub async fn confirm_email(&self, key: &str) -> Result<Option<i32>, AccountError> {
        let hash = keys::key_hash(key);
        let consumed = store::one_time::consume(&self.db, one_time::CONFIRM_EMAIL, &hash, Utc::now());
        let Some(row) = consumed.await? else {
            return Ok(None);
        };
        let email = row.email.unwrap_or_default();
        self.cached.set_email_verified(row.user_id, &email).await?;
        Ok(Some(row.user_id))
    }
}
