//! FakeKakao's kauth side: `/oauth/token` (authorization codes, PKCE, Kakao's KOE errors) and
//! OIDC (`/.well-known/jwks.json`, RS256 id_tokens), per kakao-api.md sections 4 and 5.

use std::sync::LazyLock;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use poem::{Request, Response, handler, http::StatusCode, web::Data};
use rsa::{RsaPrivateKey, pkcs1::EncodeRsaPrivateKey, traits::PublicKeyParts};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::fake_kakao::{FakeKakao, Shared};

pub const ISSUER: &str = "https://kauth.kakao.com";
pub const REST_KEY: &str = "rest-api-key";
pub const CLIENT_SECRET: &str = "kakao-client-secret";
pub const KID: &str = "fake-kid-1";
/// The nonce `id_claims` echo, as if the client had sent it to Kakao's authorize endpoint.
pub const NONCE: &str = "nonce-from-the-app";

/// One RSA key for the whole test binary: generating it is the slow part.
static RSA_KEY: LazyLock<RsaPrivateKey> =
    LazyLock::new(|| RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("an RSA key"));

/// What a code is good for.
#[derive(Clone)]
pub struct CodeScript {
    pub access_token: String,
    pub id_token: Option<String>,
    pub redirect_uri: String,
    /// PKCE: the S256 challenge the code was issued with.
    pub code_challenge: Option<String>,
    pub used: bool,
}

pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl FakeKakao {
    /// Kakao issued `code` for `redirect_uri` (with PKCE when `verifier` is given); exchanging it
    /// yields `access_token` (and `id_token`).
    pub fn issues_code(
        &self,
        code: &str,
        access_token: &str,
        id_token: Option<String>,
        redirect_uri: &str,
        verifier: Option<&str>,
    ) {
        self.state().lock().unwrap().codes.insert(
            code.into(),
            CodeScript {
                access_token: access_token.into(),
                id_token,
                redirect_uri: redirect_uri.into(),
                code_challenge: verifier.map(s256),
                used: false,
            },
        );
    }

    /// An RS256 id_token signed with the fake's key (header `kid` = KID unless overridden).
    pub fn id_token(&self, claims: &Value) -> String {
        self.id_token_with_kid(claims, KID)
    }

    pub fn id_token_with_kid(&self, claims: &Value, kid: &str) -> String {
        let der = RSA_KEY.to_pkcs1_der().expect("DER");
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(der.as_bytes())).expect("signed")
    }

    /// Standard claims of a Kakao id_token for `sub`, issued for `aud`, echoing `NONCE`.
    pub fn id_claims(&self, sub: i64, aud: &str) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({"iss": ISSUER, "aud": aud, "sub": sub.to_string(), "iat": now, "exp": now + 21600, "auth_time": now,
               "nonce": NONCE})
    }

    /// Kakao rotated its key: the JWKS publishes it under `kid` only from now on.
    pub fn jwks_publishes_kid(&self, kid: &str) {
        self.state().lock().unwrap().jwks_kid = Some(kid.into());
    }

    /// The JWKS endpoint answers 500 from now on.
    pub fn jwks_is_down(&self) {
        self.state().lock().unwrap().jwks_down = true;
    }
}

fn kauth_error(status: StatusCode, error: &str, description: &str, koe: &str) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json;charset=UTF-8")
        .body(json!({"error": error, "error_description": description, "error_code": koe}).to_string())
}

#[handler]
pub async fn token_endpoint(req: &Request, body: poem::Body, state: Data<&Shared>) -> Response {
    let bytes = body.into_vec().await.unwrap_or_default();
    let form: std::collections::HashMap<String, String> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let mut s = state.lock().unwrap();
    *s.calls.entry(req.uri().path().to_owned()).or_default() += 1;
    if s.token_endpoint_redirects {
        return Response::builder()
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header("location", "/elsewhere/oauth/token")
            .finish();
    }
    if field("grant_type") != "authorization_code" {
        return kauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "unsupported grant type",
            "KOE004",
        );
    }
    if field("client_id") != REST_KEY || field("client_secret") != CLIENT_SECRET {
        return kauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Bad client credentials",
            "KOE010",
        );
    }
    let code = field("code");
    let Some(script) = s.codes.get_mut(&code).filter(|c| !c.used) else {
        return kauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            &format!("authorization code not found for code={code}"),
            "KOE320",
        );
    };
    if field("redirect_uri") != script.redirect_uri {
        return kauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Redirect URI mismatch.",
            "KOE303",
        );
    }
    if let Some(challenge) = &script.code_challenge
        && s256(&field("code_verifier")) != *challenge
    {
        return kauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "PKCE verification failed.",
            "KOE320",
        );
    }
    script.used = true;
    let mut answer = json!({"token_type": "bearer", "access_token": script.access_token, "expires_in": 21599,
                            "refresh_token": "fake-refresh", "refresh_token_expires_in": 5183999});
    if let Some(id_token) = &script.id_token {
        answer["id_token"] = json!(id_token);
        answer["scope"] = json!("openid profile_nickname");
    }
    Response::builder()
        .content_type("application/json;charset=UTF-8")
        .body(answer.to_string())
}

#[handler]
pub async fn jwks_endpoint(req: &Request, state: Data<&Shared>) -> Response {
    let (down, delay, kid) = {
        let mut s = state.lock().unwrap();
        *s.calls.entry(req.uri().path().to_owned()).or_default() += 1;
        (s.jwks_down, s.delay, s.jwks_kid.clone().unwrap_or_else(|| KID.into()))
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    if down {
        return Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body("down");
    }
    let public = RSA_KEY.to_public_key();
    let jwk = json!({"kid": kid, "kty": "RSA", "alg": "RS256", "use": "sig",
                     "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
                     "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be())});
    Response::builder()
        .content_type("application/json")
        .body(json!({"keys": [jwk]}).to_string())
}
