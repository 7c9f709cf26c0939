//! Social login, the core flow (api.md 3): find the site's app → verify the credential with the
//! provider → upsert the account → refuse disabled users → issue our tokens.

use entity::user;
use secrecy::SecretString;

use super::{AccountError, Accounts};
use crate::{
    providers::{CodeGrant, Provider, ProviderUser, SocialApp},
    store::{self, StoreError},
    tokens::IssuedPair,
};

/// What the client proved it holds, parsed once at the edge.
pub enum Credential {
    /// A provider access token, optionally with the id_token of the same login.
    AccessToken {
        token: SecretString,
        id_token: Option<SecretString>,
        nonce: Option<String>,
    },
    /// An authorization code to exchange at the provider.
    Code { grant: CodeGrant, nonce: Option<String> },
    /// An OIDC id_token alone, verified locally against the provider's keys.
    IdToken { token: SecretString, nonce: Option<String> },
}

impl Credential {
    /// How the client proved it: the audit trail's `method`.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::AccessToken { .. } => "access_token",
            Credential::Code { .. } => "code",
            Credential::IdToken { .. } => "id_token",
        }
    }
}

/// How stale `last_login` may get before a login writes it again: a returning user whose
/// provider data did not change is then signed in without any write.
const LAST_LOGIN_RESOLUTION: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

impl Accounts {
    /// The provider credential → our tokens: verified with the provider, the account upserted
    /// (created or linked on first login), a disabled user refused. `names` (first, last) came
    /// beside the credential (Apple gives them on the first authorization only): stored when
    /// the user has none.
    #[tracing::instrument(skip_all, fields(provider = provider_id, site_id, user_id = tracing::field::Empty))]
    pub async fn social_login(
        &self,
        site_id: i32,
        provider_id: &str,
        credential: Credential,
        names: Option<(String, String)>,
    ) -> Result<(user::Model, IssuedPair), AccountError> {
        let account = self.verify_credential(site_id, provider_id, credential).await?;
        let user = self.login_user(provider_id, &account).await?;
        self.keep_provider_token(provider_id, &account).await?;
        tracing::Span::current().record("user_id", user.id);
        if !user.is_active {
            return Err(AccountError::UserInactive);
        }
        let user = self.remember_names(user, names).await?;
        let pair = self.tokens.start_session(&user).await?;
        tracing::info!("social login");
        Ok((user, pair))
    }

    /// The user a verified provider account signs in as, created or linked on first login.
    async fn login_user(&self, provider_id: &str, account: &ProviderUser) -> Result<user::Model, AccountError> {
        let epoch = self.cached.user_epoch();
        let mut existing = self.cached.account(provider_id, &account.uid).await?;
        if let Some(known) = &existing
            && known.extra_data == account.extra_data
            && chrono::Utc::now() - known.last_login < LAST_LOGIN_RESOLUTION
        {
            match self.cached.user(known.user_id).await {
                Ok(user) => return Ok(user),
                // Deleted since the account was read: decide on the rows as they are now.
                Err(StoreError::NotFound(_)) => {
                    self.cached.forget_account(provider_id, &account.uid);
                    existing = store::social::find_account(&self.db, provider_id, &account.uid).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let user = match existing {
            None if self.batches_signup(account).await => {
                let signup = crate::write_queue::Signup {
                    provider: provider_id.to_owned(),
                    account: account.clone(),
                    now: chrono::Utc::now(),
                };
                match self.queue.sign_up(signup).await? {
                    Some(user) => user,
                    None => {
                        // The batch may have just made this account (the same uid twice at once).
                        let existing = store::social::find_account(&self.db, provider_id, &account.uid).await?;
                        self.cached.upsert_login(provider_id, account, existing).await?
                    }
                }
            }
            existing => self.cached.upsert_login(provider_id, account, existing).await?,
        };
        self.cached.remember_user(&user, epoch);
        Ok(user)
    }

    /// Keeps the token a provider wants for revoking the link later (Naver, Apple, Google), once
    /// the account is linked.
    pub(super) async fn keep_provider_token(
        &self,
        provider_id: &str,
        account: &ProviderUser,
    ) -> Result<(), AccountError> {
        if let Some(kept) = &account.kept {
            store::provider_tokens::keep(&self.db, provider_id, &account.uid, kept).await?;
        }
        Ok(())
    }

    /// Stores the name an app sent beside the credential when the user has none yet; a name the
    /// user set is never overwritten.
    async fn remember_names(
        &self,
        user: user::Model,
        names: Option<(String, String)>,
    ) -> Result<user::Model, AccountError> {
        let Some((first, last)) = names else { return Ok(user) };
        if !user.first_name.is_empty() || !user.last_name.is_empty() {
            return Ok(user);
        }
        Ok(self
            .cached
            .update_profile(user.id, None, Some(&first), Some(&last))
            .await?)
    }

    /// Whether a first login goes to the write queue's batches (`write_queue::signups`): the
    /// database returns inserted rows (SQLite, PostgreSQL) and the account makes a new user.
    /// Otherwise it goes the one-login way (linking by email, MariaDB).
    async fn batches_signup(&self, account: &ProviderUser) -> bool {
        use sea_orm::ConnectionTrait;
        self.db.support_returning() && store::social::makes_new_user(&self.db, account).await
    }

    /// The provider account a credential proves, checked by the site's app for that provider.
    pub async fn verify_credential(
        &self,
        site_id: i32,
        provider_id: &str,
        credential: Credential,
    ) -> Result<ProviderUser, AccountError> {
        let provider = self
            .providers
            .get(provider_id)
            .ok_or(AccountError::ProviderNotConfigured)?;
        let app = self
            .cached
            .app_for_site(provider_id, site_id)
            .await?
            .ok_or(AccountError::ProviderNotConfigured)?;
        let verified = verify(provider.as_ref(), &app, credential, self.require_nonce).await;
        if let Err(AccountError::Provider(e)) = &verified {
            super::error::log_provider_failure(provider_id, e);
        }
        verified
    }
}

/// `credential`, checked with `provider` for `app`.
async fn verify(
    provider: &dyn Provider,
    app: &SocialApp,
    credential: Credential,
    require_nonce: bool,
) -> Result<ProviderUser, AccountError> {
    let verified = match credential {
        Credential::AccessToken { token, id_token, nonce } => {
            provider
                .login_with_access_token(app, &token, id_token.as_ref(), nonce.as_deref())
                .await?
        }
        Credential::Code { grant, nonce } => provider.login_with_code(app, &grant, nonce.as_deref()).await?,
        Credential::IdToken { token, nonce } => {
            // Alone, an id_token is a bearer credential that anyone who saw it could replay
            // until it expires (hours); the nonce ties it to the login the client started.
            if nonce.is_none() && require_nonce {
                return Err(AccountError::invalid(
                    "nonce",
                    "This field is required when id_token is sent alone.",
                ));
            }
            provider.verify_id_token(app, &token, nonce.as_deref()).await?
        }
    };
    Ok(verified)
}
