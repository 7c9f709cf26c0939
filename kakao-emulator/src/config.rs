//! What the emulator serves: the emulated Kakao app (or apps), its users, token lifetimes and the
//! unlink webhook. Plain data; the CLI and tests build it, `Emulator::build` reads it.

use std::{net::SocketAddr, time::Duration};

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use url::Url;

use crate::{oidc::SigningKey, users::EmulatedUser};

pub const DEFAULT_APP_ID: i64 = 1234;
pub const DEFAULT_REST_API_KEY: &str = "emulator-rest-key";
pub const DEFAULT_NATIVE_APP_KEY: &str = "emulator-native-key";
pub const DEFAULT_JAVASCRIPT_KEY: &str = "emulator-js-key";
pub const DEFAULT_CLIENT_SECRET: &str = "emulator-secret";
pub const DEFAULT_ADMIN_KEY: &str = "emulator-admin-key";
/// The issuer real Kakao puts in ID tokens (kakao-api.md 5.3), so a verifier needs no change.
pub const DEFAULT_ISSUER: &str = "https://kauth.kakao.com";

const DAY: u64 = 24 * 3600;

/// Everything the emulator serves: the emulated Kakao app, its users, lifetimes.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// URL clients reach the emulator at (discovery document, banner); default `http://<bound address>`.
    pub public_url: Option<Url>,
    pub app: KakaoApp,
    pub users: Vec<EmulatedUser>,
    /// `iss` of the ID tokens.
    pub issuer: String,
    pub lifetimes: Lifetimes,
    pub unlink_callback: Option<UnlinkCallback>,
    /// Further apps on the same emulated Kakao (a deployment with one Kakao app per site): their
    /// keys and admin keys work everywhere the first app's do. Users are shared by all apps.
    pub other_apps: Vec<KakaoApp>,
    /// The ID-token signing key; `None` makes a fresh one at start-up. Tests that start many
    /// emulators share one, since making a 2048-bit RSA key is the slow part of start-up.
    pub signing_key: Option<SigningKey>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 18080)),
            public_url: None,
            app: KakaoApp::default(),
            users: crate::users::builtin_users(),
            issuer: DEFAULT_ISSUER.into(),
            lifetimes: Lifetimes::default(),
            unlink_callback: None,
            other_apps: Vec::new(),
            signing_key: None,
        }
    }
}

/// The emulated Kakao Developers app (kakao-api.md 7.2).
#[derive(Debug, Clone)]
pub struct KakaoApp {
    pub app_id: i64,
    pub rest_api_key: String,
    pub native_app_key: String,
    pub javascript_key: String,
    /// `None`: "Client Secret" is off. Checked only for the REST API key, as Kakao does.
    pub client_secret: Option<SecretString>,
    pub admin_key: SecretString,
    /// Registered redirect URIs; empty allows any. `kakao<native key>://oauth` is always allowed.
    pub redirect_uris: Vec<String>,
}

impl Default for KakaoApp {
    fn default() -> Self {
        Self {
            app_id: DEFAULT_APP_ID,
            rest_api_key: DEFAULT_REST_API_KEY.into(),
            native_app_key: DEFAULT_NATIVE_APP_KEY.into(),
            javascript_key: DEFAULT_JAVASCRIPT_KEY.into(),
            client_secret: Some(SecretString::from(DEFAULT_CLIENT_SECRET)),
            admin_key: SecretString::from(DEFAULT_ADMIN_KEY),
            redirect_uris: Vec::new(),
        }
    }
}

/// Which of the app's keys a client used; it sets the access-token lifetime (kakao-api.md 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rest,
    Native,
    JavaScript,
}

impl KakaoApp {
    pub fn key_kind(&self, client_id: &str) -> Option<KeyKind> {
        [
            (&self.rest_api_key, KeyKind::Rest),
            (&self.native_app_key, KeyKind::Native),
            (&self.javascript_key, KeyKind::JavaScript),
        ]
        .into_iter()
        .find(|(key, _)| key.as_str() == client_id)
        .map(|(_, kind)| kind)
    }

    pub(crate) fn allows_redirect(&self, kind: KeyKind, uri: &str) -> bool {
        if kind == KeyKind::Native && uri == format!("kakao{}://oauth", self.native_app_key) {
            return true;
        }
        self.redirect_uris.is_empty() || self.redirect_uris.iter().any(|r| r == uri)
    }

    pub(crate) fn is_admin_key(&self, key: &str) -> bool {
        secret_eq(&self.admin_key, key)
    }
}

pub(crate) fn secret_eq(secret: &SecretString, presented: &str) -> bool {
    secret.expose_secret().as_bytes().ct_eq(presented.as_bytes()).into()
}

/// Token lifetimes; Kakao's by default (kakao-api.md 7.1). Short values make expiry testable.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub rest_access: Duration,
    pub native_access: Duration,
    pub javascript_access: Duration,
    pub refresh: Duration,
    /// A refresh returns a new refresh token only when the old one has less than this left.
    pub refresh_rotation_window: Duration,
    pub code: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            rest_access: Duration::from_secs(6 * 3600),
            native_access: Duration::from_secs(12 * 3600),
            javascript_access: Duration::from_secs(2 * 3600),
            refresh: Duration::from_secs(60 * DAY),
            refresh_rotation_window: Duration::from_secs(30 * DAY),
            code: Duration::from_secs(600),
        }
    }
}

impl Lifetimes {
    /// Sets the access-token lifetime of every key kind.
    pub fn with_access(mut self, lifetime: Duration) -> Self {
        self.rest_access = lifetime;
        self.native_access = lifetime;
        self.javascript_access = lifetime;
        self
    }

    pub(crate) fn access(&self, kind: KeyKind) -> Duration {
        match kind {
            KeyKind::Rest => self.rest_access,
            KeyKind::Native => self.native_access,
            KeyKind::JavaScript => self.javascript_access,
        }
    }
}

/// Where the unlink webhook goes (kakao-api.md 6.3).
#[derive(Debug, Clone)]
pub struct UnlinkCallback {
    pub url: Url,
    pub method: CallbackMethod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackMethod {
    Get,
    Post,
}
