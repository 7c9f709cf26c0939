//! One of our apps at a provider, as the providers and the rest of the code see it (the store
//! reads it from `socialaccount_socialapp`); secrets stay wrapped. It lives here, not in the
//! store, so that the store may use the providers' types without the providers using the store.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone)]
pub struct SocialApp {
    pub id: i32,
    pub provider: String,
    pub name: String,
    pub client_id: String,
    pub secret: SecretString,
    pub admin_key: SecretString,
    pub app_ids: Vec<String>,
    pub client_keys: Vec<String>,
    pub sites: Vec<i32>,
    pub settings: AppSettings,
}

/// Provider-specific settings of one app (allauth's `SocialApp.settings`), stored as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AppSettings {
    /// Naver: the operator vouches for the addresses Naver gives (Naver says nothing of their
    /// verification, docs/providers.md 1.4), so a first login may join an existing user with the
    /// same verified address. Off: such a login is refused (`email_in_use`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub link_by_email: bool,
    /// Apple: the 10-character Team ID, `iss` of the client secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    /// Apple: the 10-character Key ID of the Sign in with Apple key (`.p8`, kept as the secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

impl AppSettings {
    /// From the stored JSON; unknown keys are ignored (allauth's settings may hold others).
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_json::from_str(text)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

impl SocialApp {
    /// The app's client id, then its further client keys: every audience a token may name.
    pub fn audiences(&self) -> Vec<String> {
        std::iter::once(self.client_id.clone())
            .chain(self.client_keys.iter().cloned())
            .collect()
    }
}
