//! `POST /accounts/rest-auth/{provider}/`: provider credential in, our tokens out.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use poem::Request;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};
use secrecy::SecretString;
use serde::Deserialize;

use super::{ApiTags, Body, UserResponse, current_site_id};
use crate::{
    accounts::Credential,
    audit::{Entry, Origin, event},
    error::{ApiError, code},
    providers::CodeGrant,
    ratelimit::{Action, ClientIp},
    state::AppState,
    tokens::IssuedPair,
};

pub struct SocialApi;

/// The providers built in: the `{provider}` of the social login paths.
#[derive(poem_openapi::Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum ProviderName {
    /// Kakao Login.
    Kakao,
    /// Naver Login (네이버 로그인).
    Naver,
    /// Sign in with Apple.
    Apple,
    /// Google Sign-In.
    Google,
}

impl ProviderName {
    /// The provider id in the database and the registry (`providers::BUILT_IN`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderName::Kakao => "kakao",
            ProviderName::Naver => "naver",
            ProviderName::Apple => "apple",
            ProviderName::Google => "google",
        }
    }
}

/// Exactly one credential: `access_token` (+ optional `id_token`), `code` (+ `code_verifier`,
/// `redirect_uri`), or `id_token` alone (api.md 3).
#[derive(Object, Deserialize)]
#[oai(example)]
pub struct SocialLoginRequest {
    /// Access token the app got from the provider's SDK (Kakao: `OAuthToken.accessToken`).
    #[oai(skip_serializing_if_is_none)]
    pub access_token: Option<String>,
    /// Authorization code to exchange at the provider's token endpoint.
    #[oai(skip_serializing_if_is_none)]
    pub code: Option<String>,
    /// PKCE verifier of the code (S256).
    #[oai(skip_serializing_if_is_none)]
    pub code_verifier: Option<String>,
    /// Redirect URI the code was issued for.
    #[oai(skip_serializing_if_is_none)]
    pub redirect_uri: Option<String>,
    /// dj-rest-auth's name for `redirect_uri`.
    #[oai(skip_serializing_if_is_none)]
    pub callback_url: Option<String>,
    /// OIDC id_token: alone, or beside `access_token` (then it must name the same account).
    #[oai(skip_serializing_if_is_none)]
    pub id_token: Option<String>,
    /// The raw nonce sent to the provider's authorize endpoint; the id_token must echo it
    /// (Apple: or its SHA-256 hex, when the app hashed it for Apple).
    #[oai(skip_serializing_if_is_none)]
    pub nonce: Option<String>,
    /// Naver: the `state` of the authorize request the code came from.
    #[oai(skip_serializing_if_is_none)]
    pub state: Option<String>,
    /// Apple: the `user` JSON Apple gives the app on the first authorization only
    /// (`{"name": {"firstName", "lastName"}}`, as an object or a JSON string); the name is
    /// stored then.
    #[oai(skip_serializing_if_is_none)]
    pub user: Option<serde_json::Value>,
}

impl poem_openapi::types::Example for SocialLoginRequest {
    fn example() -> Self {
        Self {
            access_token: Some("<kakao access token>".into()),
            code: None,
            code_verifier: None,
            redirect_uri: None,
            callback_url: None,
            id_token: None,
            nonce: None,
            state: None,
            user: None,
        }
    }
}

// Hand-written so that no token or code ever reaches a log through `{:?}`.
impl fmt::Debug for SocialLoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mask = |v: &Option<String>| v.as_ref().map(|_| "***");
        f.debug_struct("SocialLoginRequest")
            .field("access_token", &mask(&self.access_token))
            .field("code", &mask(&self.code))
            .field("code_verifier", &mask(&self.code_verifier))
            .field(
                "redirect_uri",
                &self.redirect_uri.as_ref().or(self.callback_url.as_ref()),
            )
            .field("id_token", &mask(&self.id_token))
            .field("nonce", &mask(&self.nonce))
            .field("state", &mask(&self.state))
            .field("user", &self.user.as_ref().map(|_| "***"))
            .finish()
    }
}

/// A present, non-blank value, or a 400 naming the field.
fn secret_field(value: Option<String>, field: &str) -> Result<Option<SecretString>, ApiError> {
    match value {
        Some(v) if v.trim().is_empty() => Err(ApiError::field(code::INVALID, field, "This field may not be blank.")),
        Some(v) => Ok(Some(SecretString::from(v.trim().to_owned()))),
        None => Ok(None),
    }
}

impl TryFrom<SocialLoginRequest> for Credential {
    type Error = ApiError;

    fn try_from(req: SocialLoginRequest) -> Result<Self, ApiError> {
        let access_token = secret_field(req.access_token, "access_token")?;
        let code_value = secret_field(req.code, "code")?;
        let id_token = secret_field(req.id_token, "id_token")?;
        let nonce = req.nonce.filter(|n| !n.is_empty());
        match (access_token, code_value, id_token) {
            (Some(_), Some(_), _) => Err(ApiError::field(
                code::INVALID,
                "non_field_errors",
                "Send either access_token or code, not both.",
            )),
            (Some(token), None, id_token) => Ok(Credential::AccessToken { token, id_token, nonce }),
            (None, Some(code), None) => Ok(Credential::Code {
                grant: CodeGrant {
                    code,
                    code_verifier: secret_field(req.code_verifier, "code_verifier")?,
                    redirect_uri: req.redirect_uri.or(req.callback_url).filter(|u| !u.is_empty()),
                    state: req.state.filter(|s| !s.is_empty()),
                },
                nonce,
            }),
            (None, Some(_), Some(_)) => Err(ApiError::field(
                code::INVALID,
                "non_field_errors",
                "Send either code or id_token, not both: the code's own id_token is checked.",
            )),
            (None, None, Some(token)) => Ok(Credential::IdToken { token, nonce }),
            (None, None, None) => Err(ApiError::field(
                code::INVALID,
                "non_field_errors",
                "Send access_token, code or id_token.",
            )),
        }
    }
}

/// dj-rest-auth's login response with JWTs.
#[derive(Debug, Object)]
#[oai(example)]
pub struct TokenPairResponse {
    /// Access JWT; send as `Authorization: Bearer <access>`.
    pub access: String,
    /// Refresh JWT; exchange at `/rest-auth/token/refresh/`.
    pub refresh: String,
    /// When `access` expires (RFC 3339, UTC).
    pub access_expiration: String,
    /// When `refresh` expires (RFC 3339, UTC).
    pub refresh_expiration: String,
    pub user: UserResponse,
}

pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl TokenPairResponse {
    /// The response of a login; in cookie mode the tokens are also set as cookies.
    pub fn with_cookies(req: &Request, state: &AppState, pair: IssuedPair, user: entity::user::Model) -> Self {
        super::cookies::set_session(
            req,
            &state.settings.cookies,
            (&pair.access, pair.access_expiration),
            Some((&pair.refresh, pair.refresh_expiration)),
        );
        Self::new(pair, user)
    }

    pub fn new(pair: IssuedPair, user: entity::user::Model) -> Self {
        Self {
            access: pair.access,
            refresh: pair.refresh,
            access_expiration: rfc3339(pair.access_expiration),
            refresh_expiration: rfc3339(pair.refresh_expiration),
            user: user.into(),
        }
    }
}

#[derive(ApiResponse)]
pub enum SocialLoginReply {
    /// Signed in: our tokens and the user.
    #[oai(status = 200)]
    Ok(Json<TokenPairResponse>),
}

#[OpenApi(tag = "ApiTags::SocialLogin")]
impl SocialApi {
    /// Sign in with a provider credential
    ///
    /// dj-rest-auth `SocialLoginView` (`KakaoLogin`). Verifies the credential with the provider,
    /// checks that it was issued to this site's app, creates or updates the user and answers with
    /// our JWTs. Provider rejects the token → 400 `invalid_provider_token`; token of another app →
    /// 400 `provider_app_mismatch`; provider down → 502, slow → 504; the client IP's budget
    /// spent → 429.
    #[oai(
        path = "/accounts/rest-auth/:provider/",
        method = "post",
        operation_id = "login_with_provider"
    )]
    async fn login_with_provider(
        &self,
        state: poem::web::Data<&AppState>,
        req: &Request,
        /// The provider: `kakao`, `naver`, `apple` or `google`.
        provider: Path<ProviderName>,
        client: ClientIp,
        origin: Origin,
        body: Body<SocialLoginRequest>,
    ) -> Result<SocialLoginReply, ApiError> {
        let provider = provider.0.as_str();
        let result = login_with(&state, req, provider, &client, &origin, body).await;
        super::count_login(&state, provider, &result);
        result
    }
}

async fn login_with(
    state: &AppState,
    req: &Request,
    provider: &str,
    client: &ClientIp,
    origin: &Origin,
    body: Body<SocialLoginRequest>,
) -> Result<SocialLoginReply, ApiError> {
    let body = body.into_inner();
    let names = body
        .user
        .as_ref()
        .and_then(crate::providers::apple::names_of_user_field);
    let credential = Credential::try_from(body)?;
    // Before the provider is asked: each attempt costs two calls on the app's Kakao quota.
    state.limits.check(Action::SocialLogin, client, None).await?;
    let attempt = Entry::new(event::LOGIN_SUCCEEDED)
        .provider(provider)
        .method(credential.kind());
    let signed_in = async {
        let site_id = current_site_id(state, req).await?;
        Ok::<_, ApiError>(
            state
                .accounts
                .social_login(site_id, provider, credential, names)
                .await?,
        )
    };
    let (user, pair) = match signed_in.await {
        Ok(signed_in) => signed_in,
        Err(e) => {
            let failed = Entry {
                event: event::LOGIN_FAILED,
                ..attempt
            };
            state.audit.record(origin, failed.outcome(e.code()));
            return Err(e);
        }
    };
    state.audit.record(origin, attempt.user(user.id));
    Ok(SocialLoginReply::Ok(Json(TokenPairResponse::with_cookies(
        req, state, pair, user,
    ))))
}

impl poem_openapi::types::Example for TokenPairResponse {
    fn example() -> Self {
        Self {
            access: "<access JWT>".into(),
            refresh: "<refresh JWT>".into(),
            access_expiration: "2026-11-23T12:05:00Z".into(),
            refresh_expiration: "2026-11-24T12:00:00Z".into(),
            user: poem_openapi::types::Example::example(),
        }
    }
}
