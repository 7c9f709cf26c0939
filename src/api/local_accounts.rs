//! dj-rest-auth's local accounts: login with a password, registration with a mandatory
//! email confirmation (allauth), confirmation and resending of the key.

use std::fmt;

use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};
use secrecy::SecretString;
use serde::Deserialize;

use super::{
    ApiTags, Body,
    social::TokenPairResponse,
    tokens::{DetailReply, DetailResponse},
};
use crate::{
    accounts::{NewAccount, Registered},
    audit::{Entry, Origin, event},
    error::{ApiError, code},
    ratelimit::ClientIp,
    state::AppState,
};

pub struct LocalAccountsApi;

#[derive(Object, Deserialize)]
#[oai(example)]
pub struct LoginRequest {
    /// Username; or leave it out and send `email`.
    pub username: Option<String>,
    pub email: Option<String>,
    pub password: String,
}

#[derive(Object, Deserialize)]
#[oai(example)]
pub struct RegisterRequest {
    /// Optional: made from the email's local part when left out. At most 150 characters.
    #[oai(validator(max_length = 150))]
    pub username: Option<String>,
    #[oai(validator(max_length = 254))]
    pub email: String,
    pub password1: String,
    pub password2: String,
}

#[derive(Object, Deserialize)]
#[oai(example)]
pub struct VerifyEmailRequest {
    /// The key from the confirmation mail.
    pub key: String,
}

#[derive(Object, Deserialize)]
#[oai(example)]
pub struct EmailRequest {
    #[oai(validator(max_length = 254))]
    pub email: String,
}

macro_rules! masked_debug {
    ($t:ty, $($field:ident),*) => {
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($t))$(.field(stringify!($field), &self.$field))*.finish_non_exhaustive()
            }
        }
    };
}
masked_debug!(LoginRequest, username, email);
masked_debug!(RegisterRequest, username, email);

#[derive(ApiResponse)]
pub enum PasswordLoginReply {
    /// Signed in: the same body as a social login.
    #[oai(status = 200)]
    Ok(Json<TokenPairResponse>),
}

#[derive(ApiResponse)]
pub enum RegisterReply {
    /// Created; a confirmation mail is on its way (unless verification is off).
    #[oai(status = 201)]
    Created(Json<DetailResponse>),
}

fn detail(text: &str) -> Json<DetailResponse> {
    Json(DetailResponse { detail: text.into() })
}

fn valid_email(email: &str) -> Result<String, ApiError> {
    let email = email.trim();
    match email.parse::<lettre::Address>() {
        Ok(_) => Ok(email.to_owned()),
        Err(_) => Err(ApiError::field(code::INVALID, "email", "Enter a valid email address.")),
    }
}

#[OpenApi(tag = "ApiTags::Accounts")]
impl LocalAccountsApi {
    /// Sign in with a password
    ///
    /// dj-rest-auth `LoginView`: username or email + password → the same body as a social login.
    /// Wrong credentials and unknown users get the same answer in similar time.
    #[oai(path = "/rest-auth/login/", method = "post", operation_id = "login")]
    async fn login(
        &self,
        state: poem::web::Data<&AppState>,
        req: &poem::Request,
        client: ClientIp,
        origin: Origin,
        body: Body<LoginRequest>,
    ) -> Result<PasswordLoginReply, ApiError> {
        let result = password_login(&state, req, &client, &origin, body).await;
        super::count_login(&state, "password", &result);
        result
    }

    /// Register
    ///
    /// dj-rest-auth `RegisterView` with allauth: Django's four password validators apply; the
    /// account is created and a confirmation key is mailed (`ACCOUNT_EMAIL_VERIFICATION`,
    /// mandatory by default: no login before the address is confirmed). An address that has an
    /// account gets the same 201 and its owner a mail (`ACCOUNT_PREVENT_ENUMERATION`).
    #[oai(path = "/rest-auth/registration/", method = "post", operation_id = "register")]
    async fn register(
        &self,
        state: poem::web::Data<&AppState>,
        client: ClientIp,
        body: Body<RegisterRequest>,
    ) -> Result<RegisterReply, ApiError> {
        let body = body.into_inner();
        let new = NewAccount {
            email: valid_email(&body.email)?,
            username: body.username,
            password1: body.password1,
            password2: body.password2,
        };
        let said = match state.accounts.register(&client, new).await? {
            Registered::Active => "Registered.",
            Registered::MailSent => "Verification e-mail sent.",
        };
        Ok(RegisterReply::Created(detail(said)))
    }

    /// Confirm an email address
    ///
    /// dj-rest-auth `VerifyEmailView`: a key works once and expires; else 404.
    #[oai(
        path = "/rest-auth/registration/verify-email/",
        method = "post",
        operation_id = "verify_email"
    )]
    async fn verify_email(
        &self,
        state: poem::web::Data<&AppState>,
        origin: Origin,
        body: Body<VerifyEmailRequest>,
    ) -> Result<DetailReply, ApiError> {
        let Some(user_id) = state.accounts.confirm_email(body.into_inner().key.trim()).await? else {
            return Err(ApiError::not_found(code::NOT_FOUND, "Not found."));
        };
        state
            .audit
            .record(&origin, Entry::new(event::EMAIL_CONFIRMED).user(user_id));
        Ok(super::tokens::detail("ok"))
    }

    /// Send the confirmation mail again
    ///
    /// dj-rest-auth `ResendEmailVerificationView`: 200 whether or not the address is known.
    #[oai(
        path = "/rest-auth/registration/resend-email/",
        method = "post",
        operation_id = "resend_email"
    )]
    async fn resend_email(
        &self,
        state: poem::web::Data<&AppState>,
        client: ClientIp,
        body: Body<EmailRequest>,
    ) -> Result<DetailReply, ApiError> {
        let email = body.into_inner().email;
        state.accounts.resend_confirmation(&client, email.trim()).await?;
        Ok(super::tokens::detail("ok"))
    }
}

impl poem_openapi::types::Example for LoginRequest {
    fn example() -> Self {
        Self {
            username: Some("alice".into()),
            email: None,
            password: "correct horse battery".into(),
        }
    }
}

impl poem_openapi::types::Example for RegisterRequest {
    fn example() -> Self {
        Self {
            username: None,
            email: "alice@example.com".into(),
            password1: "correct horse battery".into(),
            password2: "correct horse battery".into(),
        }
    }
}

impl poem_openapi::types::Example for VerifyEmailRequest {
    fn example() -> Self {
        Self {
            key: "<key from the mail>".into(),
        }
    }
}

impl poem_openapi::types::Example for EmailRequest {
    fn example() -> Self {
        Self {
            email: "alice@example.com".into(),
        }
    }
}

/// dj-rest-auth `LoginView`'s flow: throttle, check the password, then the email's status.
async fn password_login(
    state: &AppState,
    req: &poem::Request,
    client: &ClientIp,
    origin: &Origin,
    body: Body<LoginRequest>,
) -> Result<PasswordLoginReply, ApiError> {
    let body = body.into_inner();
    let name = body.username.or(body.email).filter(|n| !n.trim().is_empty());
    let name = name.ok_or_else(|| {
        ApiError::field(
            code::INVALID,
            "non_field_errors",
            "Must include \"username\" and \"password\".",
        )
    })?;
    let password = SecretString::from(body.password);
    let (user, pair) = state.accounts.password_login(client, origin, &name, &password).await?;
    Ok(PasswordLoginReply::Ok(Json(TokenPairResponse::with_cookies(
        req, state, pair, user,
    ))))
}
