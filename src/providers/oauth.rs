//! The authorization-code exchange through the `oauth2` crate, over our one reqwest client
//! (oauth2's own reqwest feature would pull a second reqwest), with the secret in the form body
//! as Kakao wants (`client_secret_post`).

use std::{borrow::Cow, time::Duration};

use oauth2::{
    AuthType, AuthorizationCode, Client, ClientId, ClientSecret, EndpointNotSet, EndpointSet, ExtraTokenFields,
    HttpRequest, HttpResponse, PkceCodeVerifier, RedirectUrl, RequestTokenError, StandardRevocableToken,
    StandardTokenResponse, TokenResponse, TokenUrl,
    basic::{
        BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
        BasicTokenType,
    },
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{CodeGrant, ProviderError, ProviderTokens};

/// The OIDC `id_token` beside the standard fields of a token response.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

type CodeClient = Client<
    BasicErrorResponse,
    StandardTokenResponse<IdTokenField, BasicTokenType>,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(String);

/// Sends oauth2's request with our client; reqwest's timeouts apply.
async fn send(http: reqwest::Client, request: HttpRequest) -> Result<HttpResponse, TransportError> {
    let (parts, body) = request.into_parts();
    let response = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            TransportError(if e.is_timeout() {
                "timeout".into()
            } else {
                e.without_url().to_string()
            })
        })?;
    if response.status().is_redirection() {
        return Err(TransportError(format!(
            "token endpoint: redirect ({}) not followed",
            response.status()
        )));
    }
    let mut builder = http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let bytes = super::read_body(response).await.map_err(|e| {
        TransportError(match e {
            super::BodyError::Timeout => "timeout".into(),
            other => other.to_string(),
        })
    })?;
    builder.body(bytes).map_err(|e| TransportError(e.to_string()))
}

/// Exchanges `grant` at `token_url` for `client_id`/`secret`. Kakao's refusals of the code itself
/// (`invalid_grant`: used or expired code KOE320, redirect mismatch KOE303) are the client's
/// problem (400); a refused client secret (KOE010) is ours and answers 502.
pub async fn exchange_code(
    http: &reqwest::Client,
    token_url: &str,
    client_id: &str,
    secret: &SecretString,
    grant: &CodeGrant,
    timeout: Duration,
) -> Result<ProviderTokens, ProviderError> {
    let token_url = TokenUrl::new(token_url.to_owned()).map_err(|e| ProviderError::Unavailable(e.to_string()))?;
    let mut client: CodeClient = Client::new(ClientId::new(client_id.to_owned()))
        .set_auth_type(AuthType::RequestBody)
        .set_token_uri(token_url);
    if !secret.expose_secret().is_empty() {
        client = client.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()));
    }
    let mut request = client.exchange_code(AuthorizationCode::new(grant.code.expose_secret().to_owned()));
    if let Some(verifier) = &grant.code_verifier {
        request = request.set_pkce_verifier(PkceCodeVerifier::new(verifier.expose_secret().to_owned()));
    }
    let redirect = match &grant.redirect_uri {
        Some(uri) => Some(
            RedirectUrl::new(uri.clone())
                .map_err(|_| ProviderError::CodeRejected("redirect_uri is not a valid URL.".into()))?,
        ),
        None => None,
    };
    if let Some(redirect) = &redirect {
        request = request.set_redirect_uri(Cow::Borrowed(redirect));
    }
    if let Some(state) = &grant.state {
        request = request.add_extra_param("state", state.clone());
    }
    let call = |req: HttpRequest| send(http.clone(), req);
    let response = tokio::time::timeout(timeout, request.request_async(&call))
        .await
        .map_err(|_| ProviderError::Timeout)?
        .map_err(map_error)?;
    Ok(ProviderTokens {
        access_token: SecretString::from(response.access_token().secret().to_owned()),
        id_token: response.extra_fields().id_token.clone().map(SecretString::from),
        refresh_token: response
            .refresh_token()
            .map(|t| SecretString::from(t.secret().to_owned())),
    })
}

fn map_error(e: RequestTokenError<TransportError, BasicErrorResponse>) -> ProviderError {
    match e {
        RequestTokenError::ServerResponse(body) => match body.error() {
            BasicErrorResponseType::InvalidGrant => {
                let reason = body.error_description().map(String::as_str).unwrap_or_default();
                // Kakao's own texts (kakao-api.md 4.4); they name no secret.
                let message = if reason.to_ascii_lowercase().contains("redirect") {
                    "redirect_uri does not match the one the code was issued for."
                } else {
                    "The authorization code is invalid, expired or already used."
                };
                ProviderError::CodeRejected(message.into())
            }
            BasicErrorResponseType::InvalidRequest => {
                ProviderError::CodeRejected("The provider refused the code exchange request.".into())
            }
            other => ProviderError::Misconfigured(format!("token endpoint said {other}")),
        },
        RequestTokenError::Request(TransportError(reason)) if reason == "timeout" => ProviderError::Timeout,
        RequestTokenError::Request(TransportError(reason)) => ProviderError::Unavailable(reason),
        RequestTokenError::Parse(_, _) | RequestTokenError::Other(_) => {
            ProviderError::Unavailable("unreadable token endpoint answer".into())
        }
    }
}
