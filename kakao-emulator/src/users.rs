//! Emulated Kakao users: stored as their `/v2/user/me` body, which already says what they
//! consented to (absent field = not consented, kakao-api.md 1.3), and rendered per request.

use std::path::Path;

use anyhow::Context;
use serde_json::{Map, Value, json};

/// One user, as the `/v2/user/me` body of a fully consented login.
#[derive(Debug, Clone)]
pub struct EmulatedUser {
    id: i64,
    me: Map<String, Value>,
}

impl EmulatedUser {
    /// Takes a `/v2/user/me`-shaped object; `id` must be an int64 JSON number. `null`s are
    /// dropped: Kakao omits what it does not have.
    pub fn from_me(me: Value) -> anyhow::Result<Self> {
        let Value::Object(me) = drop_nulls(me) else {
            anyhow::bail!("a user must be a JSON object shaped like /v2/user/me");
        };
        let id = me
            .get("id")
            .and_then(Value::as_i64)
            .context("a user needs an integer \"id\" (int64)")?;
        Ok(Self { id, me })
    }

    pub fn id(&self) -> i64 {
        self.id
    }

    fn account(&self) -> Option<&Map<String, Value>> {
        self.me.get("kakao_account").and_then(Value::as_object)
    }

    pub fn account_str(&self, key: &str) -> Option<&str> {
        self.account()?.get(key)?.as_str()
    }

    pub fn nickname(&self) -> Option<&str> {
        self.account()
            .and_then(|a| a.get("profile")?.get("nickname")?.as_str())
            .or_else(|| self.me.get("properties")?.get("nickname")?.as_str())
    }

    pub fn picture(&self) -> Option<&str> {
        self.account()?.get("profile")?.get("thumbnail_image_url")?.as_str()
    }

    pub fn email(&self) -> Option<&str> {
        self.account_str("email")
    }

    /// The email only when Kakao calls it valid and verified, as in the ID token (kakao-api.md 5.3).
    pub fn trusted_email(&self) -> Option<&str> {
        let account = self.account()?;
        let flag = |k: &str| account.get(k) == Some(&Value::Bool(true));
        (flag("is_email_valid") && flag("is_email_verified"))
            .then(|| self.email())
            .flatten()
    }

    /// For the picker page and the banner.
    pub fn label(&self) -> String {
        let name = self.nickname().unwrap_or("(no nickname)");
        match self.email() {
            Some(email) => format!("{name} <{email}>"),
            None => name.to_owned(),
        }
    }

    /// Scope ids the user consented to, from the fields present (kakao-api.md 4.2 `scope`).
    pub fn scopes(&self) -> Vec<String> {
        let Some(account) = self.account() else {
            return Vec::new();
        };
        let profile = account.get("profile");
        let has = |k: &str| account.contains_key(k);
        [
            ("profile_nickname", profile.is_some_and(|p| p.get("nickname").is_some())),
            (
                "profile_image",
                profile.is_some_and(|p| p.get("profile_image_url").is_some()),
            ),
            ("account_email", has("email")),
            ("name", has("name")),
            ("age_range", has("age_range")),
            ("birthyear", has("birthyear")),
            ("birthday", has("birthday")),
            ("gender", has("gender")),
            ("phone_number", has("phone_number")),
            ("account_ci", has("ci")),
        ]
        .into_iter()
        .filter(|(_, present)| *present)
        .map(|(scope, _)| scope.to_owned())
        .collect()
    }

    /// The `/v2/user/me` body: image URLs `https` only with `secure_resource=true`, and only the
    /// parts `property_keys` names when it is given (kakao-api.md 1.1).
    pub fn render(&self, secure_resource: bool, property_keys: Option<&[String]>) -> Value {
        let mut me = match property_keys {
            Some(keys) => self.filtered(keys),
            None => self.me.clone(),
        };
        let account = me.get_mut("kakao_account").and_then(|a| a.get_mut("profile"));
        set_scheme(account, &["thumbnail_image_url", "profile_image_url"], secure_resource);
        set_scheme(
            me.get_mut("properties"),
            &["profile_image", "thumbnail_image"],
            secure_resource,
        );
        Value::Object(me)
    }

    fn filtered(&self, keys: &[String]) -> Map<String, Value> {
        let mut out: Map<String, Value> = self
            .me
            .iter()
            .filter(|(k, _)| ["id", "connected_at", "synched_at", "has_signed_up"].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut account = Map::new();
        let mut properties = Map::new();
        let all_properties = self.me.get("properties").and_then(Value::as_object);
        for key in keys {
            if key == "kakao_account." {
                account.extend(self.account().cloned().unwrap_or_default());
            } else if let Some(group) = key.strip_prefix("kakao_account.") {
                for field in account_fields(group) {
                    if let Some(v) = self.account().and_then(|a| a.get(&field)) {
                        account.insert(field, v.clone());
                    }
                }
            } else if key == "properties." {
                properties.extend(all_properties.cloned().unwrap_or_default());
            } else if let Some(name) = key.strip_prefix("properties.") {
                if let Some(v) = all_properties.and_then(|p| p.get(name)) {
                    properties.insert(name.to_owned(), v.clone());
                }
            } else if (key == "for_partner.uuid" || key == "for_partner.")
                && let Some(v) = self.me.get("for_partner")
            {
                out.insert("for_partner".into(), v.clone());
            }
        }
        if !account.is_empty() {
            out.insert("kakao_account".into(), Value::Object(account));
        }
        if !properties.is_empty() {
            out.insert("properties".into(), Value::Object(properties));
        }
        out
    }
}

/// Rewrites image URLs to `https` or `http` (Kakao's `secure_resource`).
fn set_scheme(parent: Option<&mut Value>, keys: &[&str], secure: bool) {
    let Some(parent) = parent else { return };
    for key in keys {
        let Some(url) = parent.get_mut(*key) else { continue };
        let rest = url
            .as_str()
            .and_then(|u| u.strip_prefix("https://").or_else(|| u.strip_prefix("http://")))
            .map(str::to_owned);
        if let Some(rest) = rest {
            *url = Value::String(format!("{}://{rest}", if secure { "https" } else { "http" }));
        }
    }
}

/// The `kakao_account` fields one `property_keys` entry stands for (its value and its flags).
fn account_fields(group: &str) -> Vec<String> {
    let mut fields = vec![
        group.to_owned(),
        format!("{group}_needs_agreement"),
        format!("has_{group}"),
        format!("is_{group}_valid"),
        format!("is_{group}_verified"),
    ];
    let extra: &[&str] = match group {
        "profile" => &["profile_nickname_needs_agreement", "profile_image_needs_agreement"],
        "birthday" => &["birthday_type", "is_leap_month"],
        "ci" => &["ci_authenticated_at"],
        _ => &[],
    };
    fields.extend(extra.iter().map(|s| (*s).to_owned()));
    fields
}

fn drop_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, drop_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(drop_nulls).collect()),
        other => other,
    }
}

/// Users from a JSON file: an array of `/v2/user/me` bodies.
pub fn load_users(path: &Path) -> anyhow::Result<Vec<EmulatedUser>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let values: Vec<Value> = serde_json::from_str(&text)
        .with_context(|| format!("{}: expected a JSON array of /v2/user/me objects", path.display()))?;
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| EmulatedUser::from_me(v).with_context(|| format!("{}: user #{i}", path.display())))
        .collect()
}

/// Three users: every field (kakao-api.md 1.4), nickname only (with a 19-digit id above 2^53),
/// and one whose email Kakao no longer calls valid.
pub fn builtin_users() -> Vec<EmulatedUser> {
    let full = json!({
        "id": 3_095_134_389_i64,
        "connected_at": "2022-04-11T01:45:28Z",
        "kakao_account": {
            "profile_nickname_needs_agreement": false,
            "profile_image_needs_agreement": false,
            "profile": {
                "nickname": "홍길동",
                "thumbnail_image_url": "https://k.kakaocdn.net/dn/zK7QA/btqzpE4aqO1/pl2HpfVBUI9s1SSrstperq/img_110x110.jpg",
                "profile_image_url": "https://k.kakaocdn.net/dn/zK7QA/btqzpE4aqO1/pl2HpfVBUI9s1wqsgrEAVk/img_640x640.jpg",
                "is_default_image": false,
                "is_default_nickname": false
            },
            "name_needs_agreement": false, "name": "홍길동",
            "email_needs_agreement": false, "is_email_valid": true, "is_email_verified": true,
            "email": "sample@sample.com",
            "age_range_needs_agreement": false, "age_range": "20~29",
            "birthyear_needs_agreement": false, "birthyear": "2002",
            "birthday_needs_agreement": false, "birthday": "1130", "birthday_type": "SOLAR", "is_leap_month": false,
            "gender_needs_agreement": false, "gender": "female",
            "phone_number_needs_agreement": false, "phone_number": "+82 010-1234-5678",
            "ci_needs_agreement": false, "ci": "CI_VALUE", "ci_authenticated_at": "2019-03-11T11:25:22Z"
        },
        "properties": {"CUSTOM_PROPERTY_KEY": "CUSTOM_PROPERTY_VALUE"},
        "for_partner": {"uuid": "YVNjU2pZbkJ6T3xLfVFjVm9aaloO"}
    });
    let minimal = json!({
        "id": 1_376_016_924_426_814_086_i64,
        "connected_at": "2022-04-11T01:45:28Z",
        "kakao_account": {"profile_nickname_needs_agreement": false, "profile": {"nickname": "라이언"}},
        "properties": {"CUSTOM_PROPERTY_KEY": "CUSTOM_PROPERTY_VALUE"}
    });
    let invalid_email = json!({
        "id": 8_178_783_042_i64,
        "connected_at": "2020-12-23T11:00:11Z",
        "kakao_account": {
            "profile_nickname_needs_agreement": false,
            "profile": {"nickname": "김OO"},
            "email_needs_agreement": false, "is_email_valid": false, "is_email_verified": true,
            "email": "reused@example.com"
        }
    });
    [full, minimal, invalid_email]
        .into_iter()
        .filter_map(|v| EmulatedUser::from_me(v).ok())
        .collect()
}

/// The user set, looked up by id or by `login_hint`.
#[derive(Debug)]
pub(crate) struct Users(Vec<EmulatedUser>);

impl Users {
    pub fn new(users: Vec<EmulatedUser>) -> anyhow::Result<Self> {
        anyhow::ensure!(!users.is_empty(), "the emulator needs at least one user");
        for (i, user) in users.iter().enumerate() {
            anyhow::ensure!(
                users[..i].iter().all(|u| u.id != user.id),
                "user id {} appears twice",
                user.id
            );
        }
        Ok(Self(users))
    }

    /// Adds the user, or replaces the one with its id.
    pub fn upsert(&mut self, user: EmulatedUser) {
        match self.0.iter_mut().find(|u| u.id == user.id) {
            Some(known) => *known = user,
            None => self.0.push(user),
        }
    }

    pub fn all(&self) -> &[EmulatedUser] {
        &self.0
    }

    pub fn get(&self, id: i64) -> Option<&EmulatedUser> {
        self.0.iter().find(|u| u.id == id)
    }

    /// `login_hint`: a user id, or an email.
    pub fn by_hint(&self, hint: &str) -> Option<&EmulatedUser> {
        match hint.parse::<i64>() {
            Ok(id) => self.get(id),
            Err(_) => self.0.iter().find(|u| u.email() == Some(hint)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_users_are_three_and_only_the_full_one_has_a_trusted_email() {
        let users = builtin_users();
        assert_eq!(users.len(), 3);
        assert_eq!(users[0].trusted_email(), Some("sample@sample.com"));
        assert_eq!(users[1].trusted_email(), None);
        assert_eq!(users[2].email(), Some("reused@example.com"));
        assert_eq!(users[2].trusted_email(), None);
    }

    #[test]
    fn property_keys_keep_the_named_group_with_its_flags() {
        let me = builtin_users()[0].render(false, Some(&["kakao_account.email".to_owned()]));
        let account = me["kakao_account"].as_object().unwrap();
        let mut keys: Vec<_> = account.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["email", "email_needs_agreement", "is_email_valid", "is_email_verified"]
        );
        assert_eq!(me["id"], 3_095_134_389_i64);
        assert!(me.get("properties").is_none());
    }

    #[test]
    fn image_urls_follow_secure_resource() {
        let user = &builtin_users()[0];
        let url = |secure| user.render(secure, None)["kakao_account"]["profile"]["profile_image_url"].clone();
        assert!(url(false).as_str().unwrap().starts_with("http://"));
        assert!(url(true).as_str().unwrap().starts_with("https://"));
    }

    #[test]
    fn nulls_are_dropped_and_an_id_is_required() {
        let user = EmulatedUser::from_me(json!({"id": 1, "kakao_account": {"email": null}})).unwrap();
        assert_eq!(user.render(false, None), json!({"id": 1, "kakao_account": {}}));
        assert!(EmulatedUser::from_me(json!({"id": "1"})).is_err());
    }
}
