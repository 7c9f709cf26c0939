//! `Handle`: in-process control of an emulator, for tests that run it beside the code under test.
//! What a browser or Kakao's own UI would do (log in, rotate keys, fail) in one call, plus the
//! calls it received. Over HTTP the same emulator offers only `/emulator/…`.

use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use serde::Serialize;
use sha2::{Digest, Sha256};
use url::Url;

use crate::{
    EmulatedUser, Fault, KeyKind, Shared, SigningKey,
    grants::{Code, Grant},
    lock,
};

/// One `POST /v1/user/unlink` that succeeded: whom, for which app (named by its admin key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unlink {
    pub user_id: i64,
    pub app_id: i64,
}

/// Cheap to clone; every clone controls the same emulator.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Base URL for both Kakao hosts, as `Emulator::base_url`.
    pub fn base_url(&self) -> &Url {
        &self.shared.base_url
    }

    /// Adds the user, or replaces the one with the same id (its profile changed at Kakao).
    pub fn upsert_user(&self, user: EmulatedUser) {
        self.shared.users().upsert(user);
    }

    /// `token` is a valid access token of `user` for the first app, as if the user had logged in
    /// with its REST API key and consented to everything their profile shows.
    pub fn accepts_token(&self, token: &str, user: EmulatedUser) {
        self.accepts_token_of_app(token, self.shared.config.app.app_id, user);
    }

    /// As `accepts_token`, issued to app `app_id`: another app's id makes a "foreign" token.
    pub fn accepts_token_of_app(&self, token: &str, app_id: i64, user: EmulatedUser) {
        let grant = self.grant_of(&user, app_id);
        self.upsert_user(user);
        let lifetimes = &self.shared.config.lifetimes;
        self.shared
            .grants()
            .issue_as(grant, token.to_owned(), lifetimes, Utc::now());
    }

    /// The access token's lifetime ends now: Kakao then answers -401 "already expired". False when
    /// the emulator never issued `token`.
    pub fn expire_token(&self, token: &str) -> bool {
        self.shared.grants().expire_access(token, Utc::now())
    }

    /// `code` is an authorization code of `user` for the first app's REST API key, as if they had
    /// logged in at `/oauth/authorize` with `redirect_uri` (and, given a verifier, its S256 PKCE
    /// challenge). It expires as a real one does.
    pub fn issues_code(&self, code: &str, user: EmulatedUser, redirect_uri: &str, code_verifier: Option<&str>) {
        let grant = self.grant_of(&user, self.shared.config.app.app_id);
        self.upsert_user(user);
        let now = Utc::now();
        let code_challenge = code_verifier.map(|v| URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes())));
        let scripted = Code {
            grant,
            redirect_uri: redirect_uri.to_owned(),
            code_challenge,
            nonce: None,
            expires_at: now + self.shared.config.lifetimes.code,
        };
        self.shared.grants().insert_code_as(code.to_owned(), scripted);
    }

    fn grant_of(&self, user: &EmulatedUser, app_id: i64) -> Grant {
        Grant {
            user_id: user.id(),
            app_id,
            client_id: self.shared.config.app.rest_api_key.clone(),
            kind: KeyKind::Rest,
            scopes: user.scopes(),
            auth_time: Utc::now(),
        }
    }

    /// An RS256 ID token over any claims, signed with the key the JWKS publishes: for testing a
    /// verifier against expired, foreign or otherwise wrong tokens Kakao itself would not mint.
    pub fn sign_id_token(&self, claims: &impl Serialize) -> Result<String, jsonwebtoken::errors::Error> {
        self.shared.signer().sign(claims, None)
    }

    /// As `sign_id_token`, with another `kid` in the header (a key the JWKS does not publish).
    pub fn sign_id_token_with_kid(
        &self,
        claims: &impl Serialize,
        kid: &str,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        self.shared.signer().sign(claims, Some(kid))
    }

    /// Kakao rotated its key: from now on the JWKS publishes only `key`, and ID tokens are signed
    /// with it.
    pub fn rotate_signing_key(&self, key: SigningKey) {
        *lock(&self.shared.signer) = key;
    }

    pub fn signing_key(&self) -> SigningKey {
        self.shared.signer()
    }

    /// Every Kakao endpoint answers 500 (`/emulator/` ones keep working) until `is_up`.
    pub fn is_down(&self) {
        lock(&self.shared.faults).set_everywhere(Some(Fault::Status(500)));
    }

    /// Kakao is back: no faults and no delay left, on any path.
    pub fn is_up(&self) {
        let mut faults = lock(&self.shared.faults);
        faults.set_everywhere(None);
        faults.clear_paths();
        faults.set_delay(None);
    }

    /// Every Kakao endpoint waits `delay` before it answers.
    pub fn is_slow(&self, delay: Duration) {
        lock(&self.shared.faults).set_delay(Some(delay));
    }

    /// The endpoint at `path` (e.g. `/.well-known/jwks.json`) answers `fault` until `is_up`.
    pub fn fails(&self, path: &str, fault: Fault) {
        lock(&self.shared.faults).set_on(path, fault);
    }

    /// Requests received at exactly `path` (no query), faulty answers and unknown paths included.
    pub fn calls(&self, path: &str) -> usize {
        lock(&self.shared.faults).calls(path)
    }

    /// Successful `POST /v1/user/unlink` calls, oldest first.
    pub fn unlinks(&self) -> Vec<Unlink> {
        lock(&self.shared.unlinks).clone()
    }
}
