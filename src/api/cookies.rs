//! dj-rest-auth's JWT cookie mode (`JWT_AUTH_COOKIE`), off by default: login and refresh also
//! set the access and refresh JWTs as `HttpOnly` cookies, requests may authenticate with them,
//! and then every unsafe method must echo the `csrftoken` cookie in `X-CSRFToken` (Django's
//! double-submit check). Bodies keep carrying the tokens, so mobile clients are unaffected.

use chrono::{DateTime, Utc};
use poem::{
    Request,
    http::Method,
    web::cookie::{Cookie, SameSite},
};
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::{
    config::CookieSettings,
    error::{ApiError, code},
};

const CSRF_COOKIE: &str = "csrftoken";
const CSRF_HEADER: &str = "x-csrftoken";

fn cookie(settings: &CookieSettings, name: &str, value: &str, expires: DateTime<Utc>, http_only: bool) -> Cookie {
    let mut cookie = Cookie::new_with_str(name, value);
    cookie.set_http_only(http_only);
    cookie.set_secure(settings.secure);
    cookie.set_same_site(SameSite::Lax);
    cookie.set_path("/");
    cookie.set_max_age((expires - Utc::now()).to_std().unwrap_or_default());
    cookie
}

/// Sets the session cookies (and a CSRF token when there is none) when cookie mode is on.
pub fn set_session(
    req: &Request,
    settings: &CookieSettings,
    access: (&str, DateTime<Utc>),
    refresh: Option<(&str, DateTime<Utc>)>,
) {
    let Some(access_name) = settings.access_name.as_deref() else {
        return;
    };
    let jar = req.cookie();
    jar.add(cookie(settings, access_name, access.0, access.1, true));
    if let Some((token, expires)) = refresh {
        jar.add(cookie(settings, &settings.refresh_name, token, expires, true));
        if jar.get(CSRF_COOKIE).is_none() {
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            // Readable by the page's script, which copies it into X-CSRFToken.
            jar.add(cookie(settings, CSRF_COOKIE, &hex::encode(bytes), expires, false));
        }
    }
}

/// Expires the session cookies (logout).
pub fn clear_session(req: &Request, settings: &CookieSettings) {
    let Some(access_name) = settings.access_name.as_deref() else {
        return;
    };
    for name in [access_name, settings.refresh_name.as_str()] {
        let mut removal = cookie(settings, name, "", Utc::now(), true);
        removal.make_removal();
        req.cookie().add(removal);
    }
}

fn read(req: &Request, name: &str) -> Option<String> {
    req.cookie()
        .get(name)
        .map(|c| c.value_str().to_owned())
        .filter(|v| !v.is_empty())
}

/// The access JWT from its cookie, CSRF-checked, when cookie mode is on.
pub fn access_token(req: &Request, settings: &CookieSettings) -> Result<Option<String>, ApiError> {
    let Some(name) = settings.access_name.as_deref() else {
        return Ok(None);
    };
    let Some(token) = read(req, name) else { return Ok(None) };
    check_csrf(req)?;
    Ok(Some(token))
}

/// The refresh JWT from its cookie, CSRF-checked, when cookie mode is on.
pub fn refresh_token(req: &Request, settings: &CookieSettings) -> Result<Option<String>, ApiError> {
    if settings.access_name.is_none() {
        return Ok(None);
    }
    let Some(token) = read(req, &settings.refresh_name) else {
        return Ok(None);
    };
    check_csrf(req)?;
    Ok(Some(token))
}

/// A cookie-authenticated unsafe request must carry the CSRF cookie's value in `X-CSRFToken`.
fn check_csrf(req: &Request) -> Result<(), ApiError> {
    if matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) {
        return Ok(());
    }
    let cookie = read(req, CSRF_COOKIE).unwrap_or_default();
    let header = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if cookie.is_empty() || !bool::from(cookie.as_bytes().ct_eq(header.as_bytes())) {
        return Err(ApiError::forbidden(
            code::CSRF_FAILED,
            "CSRF Failed: CSRF token missing or incorrect.",
        ));
    }
    Ok(())
}
