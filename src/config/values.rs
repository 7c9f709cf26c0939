//! The value types settings are read into (rates, modes, proxy and origin lists): each parses and
//! checks itself, so a bad value stops start-up naming its key.

use std::{fmt, net::IpAddr, str::FromStr, time::Duration};

use ipnet::IpNet;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

/// A rate: `N/period`, period one of `s`, `min`, `hour`, `day` or a duration (`10/30s`). N requests
/// may come at once; then one more each period/N (GCRA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub period: Duration,
}

impl Rate {
    pub const fn new(count: u32, period: Duration) -> Self {
        Self { count, period }
    }

    /// The time one request's share takes to come back: period / count.
    pub fn interval(&self) -> Duration {
        self.period / self.count
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a rate such as `10/min`");
        let (count, period) = s.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let period = match period.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            "d" | "day" => Duration::from_secs(86_400),
            other => humantime_serde::re::humantime::parse_duration(other).map_err(|_| bad())?,
        };
        // Below a millisecond per request the Redis script's clock could not tell requests apart.
        if count == 0 || period / count < Duration::from_millis(1) {
            return Err(format!("{s:?}: the count must be > 0 and at most one per millisecond"));
        }
        Ok(Self { count, period })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.count,
            humantime_serde::re::humantime::format_duration(self.period)
        )
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    XForwardedFor,
    Forwarded,
}

/// The items of a list, or of one comma-separated string as an environment variable gives it;
/// trimmed, empty ones dropped.
fn comma_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let items = match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s.split(',').map(str::to_owned).collect(),
        OneOrMany::Many(v) => v,
    };
    Ok(items
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect())
}

/// A list, or one comma-separated string (`10.0.0.0/8, 127.0.0.1`) as an environment variable
/// gives it; a bare address is a /32 (/128).
pub(super) fn ip_nets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    comma_list(d)?
        .iter()
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| serde::de::Error::custom(format!("{s:?} is not an IP address or CIDR")))
        })
        .collect()
}

/// CORS origins, a list or one comma-separated string; each `*` or `scheme://host[:port]`,
/// kept in the form browsers send in `Origin` (lower case, no trailing slash).
pub(super) fn origins<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    comma_list(d)?
        .iter()
        .map(|s| {
            if s == "*" {
                return Ok(s.to_owned());
            }
            let bad = || serde::de::Error::custom(format!("{s:?} is not an origin such as `https://app.example.com`"));
            let url = Url::parse(s).map_err(|_| bad())?;
            let origin = url.origin().ascii_serialization();
            // A path, query or user part would never match what a browser sends.
            if origin == "null" || origin != s.trim_end_matches('/').to_ascii_lowercase() {
                return Err(bad());
            }
            Ok(origin)
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum JwtAlgorithm {
    EdDSA,
    HS256,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailVerification {
    Mandatory,
    Optional,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// One `[[social_apps]]` entry: the same fields as `authbridge socialapp add`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocialAppConfig {
    pub provider: String,
    pub name: Option<String>,
    pub client_id: String,
    pub secret: SecretString,
    #[serde(default)]
    pub admin_key: Option<SecretString>,
    #[serde(default)]
    pub app_ids: Vec<String>,
    #[serde(default)]
    pub client_keys: Vec<String>,
    #[serde(default = "default_sites")]
    pub sites: Vec<i32>,
    /// Provider-specific settings (Apple `team_id`, `key_id`; Naver `link_by_email`).
    #[serde(default)]
    pub settings: Option<AppSettings>,
}

fn default_sites() -> Vec<i32> {
    vec![1]
}

/// Provider-specific settings of one app (allauth's `SocialApp.settings`), stored as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AppSettings {
    /// Naver: the operator vouches for the addresses Naver gives (Naver says nothing of their
    /// verification, docs/providers.md 1.4), so a first login may join an existing user with the
    /// same verified address. Off: such a login is refused (`email_in_use`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub link_by_email: bool,
    /// Apple: the 10-character Team ID, `iss` of the client secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    /// Apple: the 10-character Key ID of the Sign in with Apple key (`.p8`, kept as the secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

impl AppSettings {
    /// From the stored JSON; unknown keys are ignored (allauth's settings may hold others).
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_json::from_str(text)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}
