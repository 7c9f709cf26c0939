//! Kakao OpenID Connect: discovery, JWKS and RS256 ID tokens signed with a key made at start-up
//! (kakao-api.md section 5). The private key never leaves memory.

use std::sync::Arc;

use anyhow::Context;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use poem::{Body, Response, handler, http::StatusCode, web::Data};
use rsa::{RsaPrivateKey, pkcs1::EncodeRsaPrivateKey, traits::PublicKeyParts};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{Shared, grants::Grant, json_response, kauth_error::KauthError, read_body, users::EmulatedUser};

/// The ID-token payload (kakao-api.md 5.3): no `email_verified`, `at_hash` or `azp`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct IdTokenClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// The RSA key ID tokens are signed with; cheap to clone. The private half never leaves memory.
#[derive(Clone)]
pub struct SigningKey(Arc<KeyMaterial>);

struct KeyMaterial {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    n: String,
    e: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.0.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh 2048-bit RSA key, like Kakao's; the `kid` is 30 hex digits, as Kakao's are.
    /// Takes a noticeable moment: call it off the async workers (`spawn_blocking`).
    pub fn generate() -> anyhow::Result<Self> {
        let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).context("generating an RSA key")?;
        let der = key.to_pkcs1_der().context("encoding the RSA key")?;
        let n_bytes = key.n().to_bytes_be();
        let e_bytes = key.e().to_bytes_be();
        let kid = hex::encode(Sha256::digest(&n_bytes))[..30].to_owned();
        Ok(Self(Arc::new(KeyMaterial {
            kid,
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            decoding: DecodingKey::from_rsa_raw_components(&n_bytes, &e_bytes),
            n: URL_SAFE_NO_PAD.encode(n_bytes),
            e: URL_SAFE_NO_PAD.encode(e_bytes),
        })))
    }

    /// The `kid` the JWKS publishes this key under.
    pub fn kid(&self) -> &str {
        &self.0.kid
    }

    pub(crate) fn jwks(&self) -> Value {
        let k = &self.0;
        json!({"keys": [{"kid": k.kid, "kty": "RSA", "alg": "RS256", "use": "sig", "n": k.n, "e": k.e}]})
    }

    /// RS256 over any claims, with `kid` in the header (the key's own unless a test names another).
    pub(crate) fn sign(
        &self,
        claims: &impl Serialize,
        kid: Option<&str>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.unwrap_or(&self.0.kid).to_owned());
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, claims, &self.0.encoding)
    }

    fn verify(&self, token: &str, issuer: &str) -> Result<IdTokenClaims, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[issuer]);
        validation.validate_aud = false;
        jsonwebtoken::decode(token, &self.0.decoding, &validation).map(|d| d.claims)
    }
}

/// The ID token for a grant with `openid`; `nonce` only at the code exchange, raw as sent.
pub(crate) fn id_token(
    shared: &Shared,
    grant: &Grant,
    user: &EmulatedUser,
    nonce: Option<String>,
    now: DateTime<Utc>,
) -> Result<String, KauthError> {
    let lifetime = shared.config.lifetimes.access(grant.kind);
    let claims = IdTokenClaims {
        iss: shared.config.issuer.clone(),
        aud: grant.client_id.clone(),
        sub: user.id().to_string(),
        iat: now.timestamp(),
        exp: (now + lifetime).timestamp(),
        auth_time: grant.auth_time.timestamp(),
        nonce,
        nickname: user.nickname().map(str::to_owned),
        picture: user.picture().map(str::to_owned),
        email: user.trusted_email().map(str::to_owned),
    };
    shared.signer().sign(&claims, None).map_err(|e| {
        tracing::error!(error = %e, "signing an ID token");
        KauthError::server_error()
    })
}

/// `GET /.well-known/openid-configuration` (kakao-api.md 5.1), pointing at this emulator.
#[handler]
pub(super) fn discovery(shared: Data<&Arc<Shared>>) -> Response {
    let at = |path: &str| shared.base_url.join(path).map(String::from).unwrap_or_default();
    json_response(
        StatusCode::OK,
        &json!({
            "issuer": shared.config.issuer,
            "authorization_endpoint": at("/oauth/authorize"),
            "token_endpoint": at("/oauth/token"),
            "userinfo_endpoint": at("/v1/oidc/userinfo"),
            "jwks_uri": at("/.well-known/jwks.json"),
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "request_uri_parameter_supported": false,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["iss", "aud", "sub", "auth_time", "exp", "iat", "nonce", "nickname", "picture", "email"]
        }),
    )
}

/// `GET /.well-known/jwks.json` (kakao-api.md 5.2).
#[handler]
pub(super) fn jwks(shared: Data<&Arc<Shared>>) -> Response {
    json_response(StatusCode::OK, &shared.signer().jwks())
}

/// `POST /oauth/tokeninfo` (kakao-api.md 5.4, Kakao's debug endpoint): the payload, or KOE400.
#[handler]
pub(super) async fn tokeninfo(shared: Data<&Arc<Shared>>, body: Body) -> Result<Response, KauthError> {
    let bytes = read_body(body).await.unwrap_or_default();
    let token = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "id_token")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| KauthError::invalid_request("id_token is required"))?;
    let claims = shared.signer().verify(&token, &shared.config.issuer).map_err(|e| {
        let why = match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => "id_token expired",
            jsonwebtoken::errors::ErrorKind::InvalidIssuer => "invalid issuer",
            _ => "invalid id_token",
        };
        KauthError::new(StatusCode::BAD_REQUEST, "invalid_token", why, Some("KOE400"))
    })?;
    Ok(json_response(StatusCode::OK, &json!(claims)))
}
