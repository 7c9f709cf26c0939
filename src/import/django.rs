//! What Django's columns mean: one row of `auth_user`, `socialaccount_socialaccount` or
//! `account_emailaddress`, read from CSV text or dumpdata JSON, turned into our entity models.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDateTime, Utc};
use entity::{email_address, social_account, user};
use serde_json::Value;

/// One field's value as the dump holds it, before it is given a type.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Raw<'a> {
    /// No such column or key in this dump.
    Missing,
    Null,
    Text(&'a str),
    Bool(bool),
    /// Any other JSON value (numbers, objects).
    Json(&'a Value),
}

impl<'a> From<Option<&'a Value>> for Raw<'a> {
    fn from(value: Option<&'a Value>) -> Self {
        match value {
            None => Raw::Missing,
            Some(Value::Null) => Raw::Null,
            Some(Value::String(s)) => Raw::Text(s),
            Some(Value::Bool(b)) => Raw::Bool(*b),
            Some(v) => Raw::Json(v),
        }
    }
}

/// A field that could not be read: which one, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub problem: String,
}

type Field<T> = Result<T, FieldError>;

fn bad(field: &'static str, problem: impl Into<String>) -> FieldError {
    FieldError {
        field,
        problem: problem.into(),
    }
}

/// Django's string columns here are at most 255 characters (MySQL's `varchar(255)`); longer
/// values would be cut or refused by the database, so they are refused here, by name.
fn text(raw: Raw<'_>, field: &'static str, max_chars: usize, required: bool) -> Field<String> {
    let value: Cow<'_, str> = match raw {
        Raw::Text(s) => s.into(),
        Raw::Json(Value::Number(n)) => n.to_string().into(),
        Raw::Missing | Raw::Null if !required => "".into(),
        Raw::Missing | Raw::Null => return Err(bad(field, "is required")),
        Raw::Bool(_) | Raw::Json(_) => return Err(bad(field, "must be text")),
    };
    if required && value.trim().is_empty() {
        return Err(bad(field, "may not be blank"));
    }
    if value.chars().count() > max_chars {
        return Err(bad(field, format!("is longer than {max_chars} characters")));
    }
    Ok(value.into_owned())
}

fn id(raw: Raw<'_>, field: &'static str) -> Field<i32> {
    let parsed = match raw {
        Raw::Text(s) => s.trim().parse::<i64>().ok(),
        Raw::Json(Value::Number(n)) => n.as_i64(),
        Raw::Missing | Raw::Null => return Err(bad(field, "is required")),
        _ => None,
    };
    match parsed.map(i32::try_from) {
        Some(Ok(id)) if id > 0 => Ok(id),
        _ => Err(bad(field, "must be a positive 32-bit integer")),
    }
}

/// `t`/`f` (psql), `true`/`false`, `1`/`0` (MySQL); an absent column takes `default`.
fn boolean(raw: Raw<'_>, field: &'static str, default: Option<bool>) -> Field<bool> {
    let parsed = match raw {
        Raw::Bool(b) => Some(b),
        Raw::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "1" => Some(true),
            "f" | "false" | "0" => Some(false),
            _ => None,
        },
        Raw::Json(Value::Number(n)) => match n.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Raw::Missing => return default.ok_or_else(|| bad(field, "is required")),
        Raw::Null | Raw::Json(_) => None,
    };
    parsed.ok_or_else(|| bad(field, "must be a boolean (t/f, true/false or 1/0)"))
}

/// An empty CSV cell, `\N` (MySQL `INTO OUTFILE`) and JSON `null` are NULL.
fn optional_timestamp(raw: Raw<'_>, field: &'static str) -> Field<Option<DateTime<Utc>>> {
    match raw {
        Raw::Missing | Raw::Null => Ok(None),
        Raw::Text(s) if s.trim().is_empty() || s.trim() == "\\N" => Ok(None),
        Raw::Text(s) => parse_timestamp(s.trim())
            .map(Some)
            .ok_or_else(|| bad(field, format!("{s:?} is not a timestamp like 2024-05-01 12:34:56+00"))),
        _ => Err(bad(field, "must be a timestamp")),
    }
}

fn timestamp(raw: Raw<'_>, field: &'static str) -> Field<DateTime<Utc>> {
    optional_timestamp(raw, field)?.ok_or_else(|| bad(field, "is required"))
}

/// Postgres (`2024-05-01 12:34:56.123456+00`, `+05:30`), ISO 8601 (`…T…Z`, dumpdata) and
/// offset-less values (MySQL, `USE_TZ = False`), which are taken as UTC.
pub(crate) fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s = match s.as_bytes().get(10) {
        Some(b'T' | b't') => Cow::Owned(format!("{} {}", &s[..10], &s[11..])),
        _ => Cow::Borrowed(s),
    };
    if let Ok(t) = DateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S%.f%#z") {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

/// allauth's `extra_data`: a JSON object (JSONField), or JSON text (older TextField, and CSV).
fn extra_data(raw: Raw<'_>) -> Field<Value> {
    match raw {
        Raw::Missing | Raw::Null => Ok(Value::Object(Default::default())),
        Raw::Text(s) if s.trim().is_empty() => Ok(Value::Object(Default::default())),
        Raw::Text(s) => serde_json::from_str(s).map_err(|e| bad("extra_data", format!("is not JSON: {e}"))),
        Raw::Json(v) => Ok(v.clone()),
        Raw::Bool(_) => Err(bad("extra_data", "must be JSON")),
    }
}

/// A row of `auth_user`. The password hash is kept as it is; it is verified (and upgraded)
/// at the next login.
pub(crate) fn user<'a>(get: impl Fn(&'static str) -> Raw<'a>) -> Field<user::Model> {
    let username = text(get("username"), "username", 150, true)?;
    let password = text(get("password"), "password", 255, false)?;
    // Each login would run the hash's iterations: refuse a CPU bomb rather than import it.
    if let Some(iterations) = crate::password::pbkdf2_iterations(&password)
        && iterations > crate::password::MAX_PBKDF2_ITERATIONS
    {
        return Err(bad(
            "password",
            format!(
                "user {username:?} has a pbkdf2_sha256 hash with {iterations} iterations (at most {} are \
                 accepted); set a new password for this user in Django (or make it unusable) and dump again",
                crate::password::MAX_PBKDF2_ITERATIONS
            ),
        ));
    }
    Ok(user::Model {
        id: id(get("id"), "id")?,
        username,
        email: text(get("email"), "email", 254, false)?,
        first_name: text(get("first_name"), "first_name", 150, false)?,
        last_name: text(get("last_name"), "last_name", 150, false)?,
        password,
        is_active: boolean(get("is_active"), "is_active", Some(true))?,
        is_staff: boolean(get("is_staff"), "is_staff", Some(false))?,
        is_superuser: boolean(get("is_superuser"), "is_superuser", Some(false))?,
        date_joined: timestamp(get("date_joined"), "date_joined")?,
        last_login: optional_timestamp(get("last_login"), "last_login")?,
        tokens_valid_after: None,
    })
}

/// A row of `socialaccount_socialaccount`. The uid stays text: Kakao ids exceed 2^31.
pub(crate) fn social_account<'a>(get: impl Fn(&'static str) -> Raw<'a>) -> Field<social_account::Model> {
    let date_joined = timestamp(get("date_joined"), "date_joined")?;
    Ok(social_account::Model {
        id: id(get("id"), "id")?,
        user_id: id(get("user_id"), "user_id")?,
        provider: text(get("provider"), "provider", 32, true)?,
        uid: text(get("uid"), "uid", 191, true)?,
        extra_data: extra_data(get("extra_data"))?,
        // allauth fills last_login on every login; a NULL there means "never since joining".
        last_login: optional_timestamp(get("last_login"), "last_login")?.unwrap_or(date_joined),
        date_joined,
        // allauth does not record it: filled at the account's next login.
        social_app_id: None,
    })
}

/// A row of `account_emailaddress`; the address is lower-cased, as authbridge stores them.
pub(crate) fn email_address<'a>(get: impl Fn(&'static str) -> Raw<'a>) -> Field<email_address::Model> {
    let email = text(get("email"), "email", 254, true)?.trim().to_lowercase();
    if !email.contains('@') {
        return Err(bad("email", format!("{email:?} is not an email address")));
    }
    Ok(email_address::Model {
        id: id(get("id"), "id")?,
        user_id: id(get("user_id"), "user_id")?,
        email,
        verified: boolean(get("verified"), "verified", Some(false))?,
        primary: boolean(get("primary"), "primary", Some(false))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn postgres_iso_and_naive_timestamps_parse() {
        let cases = [
            ("2024-05-01 12:34:56.123456+00", "2024-05-01T12:34:56.123456Z"),
            ("2024-05-01 21:34:56+09", "2024-05-01T12:34:56Z"),
            ("2024-05-01 18:04:56+05:30", "2024-05-01T12:34:56Z"),
            ("2024-05-01T12:34:56.123Z", "2024-05-01T12:34:56.123Z"),
            ("2024-05-01T12:34:56+00:00", "2024-05-01T12:34:56Z"),
            ("2024-05-01 12:34:56.5", "2024-05-01T12:34:56.5Z"),
            ("2024-05-01T12:34:56", "2024-05-01T12:34:56Z"),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_timestamp(input), Some(at(expected)), "{input}");
        }
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp("2024-13-01 00:00:00"), None);
    }

    #[test]
    fn booleans_and_nulls_read_as_psql_mysql_and_json_write_them() {
        for (raw, expected) in [("t", true), ("F", false), ("true", true), ("0", false), ("1", true)] {
            assert_eq!(boolean(Raw::Text(raw), "x", None), Ok(expected), "{raw}");
        }
        assert_eq!(boolean(Raw::Bool(true), "x", None), Ok(true));
        assert_eq!(boolean(Raw::Missing, "x", Some(true)), Ok(true));
        assert_eq!(
            boolean(Raw::Text("yes"), "is_staff", None).unwrap_err().field,
            "is_staff"
        );
        assert_eq!(optional_timestamp(Raw::Text(""), "x"), Ok(None));
        assert_eq!(optional_timestamp(Raw::Text("\\N"), "x"), Ok(None));
        assert_eq!(optional_timestamp(Raw::Null, "x"), Ok(None));
    }

    #[test]
    fn a_social_account_keeps_a_big_uid_as_text_and_parses_extra_data() {
        let extra = json!({"id": 3095134389u64}).to_string();
        let uid = json!(3095134389u64);
        let get = |name: &str| match name {
            "id" => Raw::Text("5"),
            "user_id" => Raw::Text("42"),
            "provider" => Raw::Text("kakao"),
            "uid" => Raw::from(Some(&uid)),
            "extra_data" => Raw::Text(&extra),
            "date_joined" => Raw::Text("2024-05-01 12:34:56+00"),
            _ => Raw::Missing,
        };
        let account = social_account(get).unwrap();
        assert_eq!(account.uid, "3095134389");
        assert_eq!(account.extra_data["id"], json!(3095134389u64));
        assert_eq!(account.last_login, account.date_joined);
    }

    #[test]
    fn ids_must_be_positive_32_bit_integers() {
        assert_eq!(id(Raw::Text("7"), "id"), Ok(7));
        assert!(id(Raw::Text("0"), "id").is_err());
        assert!(id(Raw::Text("3095134389"), "user_id").is_err());
        assert!(id(Raw::Text("x"), "id").is_err());
    }
}
