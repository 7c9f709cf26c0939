//! One of our apps at a provider, as the providers and the rest of the code see it (the store
//! reads it from `socialaccount_socialapp`); secrets stay wrapped. It lives here, not in the
//! store, so that the store may use the providers' types without the providers using the store.

pub use crate::config::AppSettings;
use secrecy::SecretString;

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

impl SocialApp {
    /// The app's client id, then its further client keys: every audience a token may name.
    pub fn audiences(&self) -> Vec<String> {
        std::iter::once(self.client_id.clone())
            .chain(self.client_keys.iter().cloned())
            .collect()
    }
}
