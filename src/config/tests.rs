use std::{collections::BTreeSet, time::Duration};

use figment::{
    Figment,
    error::Kind,
    providers::{Format, Toml},
};

use super::{names::NAMES, *};

/// Flat `(name, value)` pairs as the environment gives them.
fn from_env(pairs: &[(&str, &str)]) -> Result<Settings, Box<figment::Error>> {
    pairs
        .iter()
        .fold(Figment::new(), |f, (k, v)| f.merge(Flat::env((*k, *v))))
        .extract()
        .map_err(Box::new)
}

#[test]
fn rates_parse_with_named_and_humantime_periods() {
    assert_eq!("10/min".parse(), Ok(Rate::new(10, Duration::from_secs(60))));
    assert_eq!(" 5 / hour".parse(), Ok(Rate::new(5, Duration::from_secs(3600))));
    assert_eq!("3/30s".parse(), Ok(Rate::new(3, Duration::from_secs(30))));
    for bad in ["10", "0/min", "x/min", "10/fortnightly", "5000/1s"] {
        assert!(bad.parse::<Rate>().is_err(), "{bad}");
    }
}

#[test]
fn trusted_proxies_take_a_list_or_a_comma_separated_string() {
    let parsed = from_env(&[("trusted_proxies", "10.0.0.0/8, 127.0.0.1,::1")]).unwrap();
    let nets: Vec<String> = parsed.proxies.trusted.iter().map(ToString::to_string).collect();
    assert_eq!(nets, ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]);
    let from_file: Settings = Figment::new()
        .merge(Flat::file(Toml::string(r#"trusted_proxies = ["192.168.0.0/16"]"#)))
        .extract()
        .unwrap();
    assert_eq!(from_file.proxies.trusted.len(), 1);
    let bad = from_env(&[("trusted_proxies", "proxy.local")]);
    assert!(bad.is_err());
}

#[test]
fn cors_origins_are_origins_and_credentials_need_explicit_ones() {
    let parsed = from_env(&[(
        "cors_allowed_origins",
        "https://App.example.com/, http://localhost:3000",
    )])
    .unwrap();
    assert_eq!(
        parsed.browser.cors_allowed_origins,
        ["https://app.example.com", "http://localhost:3000"]
    );
    for bad in [
        "app.example.com",
        "https://app.example.com/login",
        "https://user@app.example.com",
    ] {
        assert!(from_env(&[("cors_allowed_origins", bad)]).is_err(), "{bad}");
    }
    let mut wildcard_with_credentials = Settings::default();
    wildcard_with_credentials.browser.cors_allowed_origins = vec!["*".into()];
    wildcard_with_credentials.browser.cors_allow_credentials = true;
    assert!(wildcard_with_credentials.validate().is_err());
}

#[test]
fn flat_names_from_the_file_and_the_environment_land_in_their_sections() {
    let file = Toml::string(
        r#"
        kakao_api_base = "http://127.0.0.1:18080"
        jwt_auth_cookie = "jwt-auth"
        login_rate_per_ip = "3/min"
        redis_key_prefix = "t:"

        [[social_apps]]
        provider = "kakao"
        client_id = "K"
        secret = "S"
        "#,
    );
    let settings: Settings = Figment::new()
        .merge(Flat::file(file))
        .merge(Flat::env(("kakao_auth_base", "http://127.0.0.1:18081")))
        .merge(Flat::env(("database_max_connections", 3)))
        .extract()
        .unwrap();
    assert_eq!(settings.kakao.api_base.as_str(), "http://127.0.0.1:18080/");
    assert_eq!(settings.kakao.auth_base.as_str(), "http://127.0.0.1:18081/");
    assert_eq!(settings.cookies.access_name.as_deref(), Some("jwt-auth"));
    assert_eq!(settings.rate_limits.login_per_ip, Rate::new(3, Duration::from_secs(60)));
    assert_eq!(settings.redis.key_prefix, "t:");
    assert_eq!(settings.database.max_connections, 3);
    assert_eq!(settings.social_apps.len(), 1);
    // What was not given keeps its default.
    assert_eq!(settings.kakao.issuer, "https://kauth.kakao.com");
}

#[test]
fn errors_name_the_flat_key_as_it_was_spelled() {
    let env = from_env(&[("access_token_lifetime", "five minutes")]).unwrap_err();
    assert!(env.to_string().contains(r#"for key "ACCESS_TOKEN_LIFETIME""#), "{env}");
    let file = Figment::new()
        .merge(Flat::file(Toml::string(r#"kakao_api_base = "not a url""#)))
        .extract::<Settings>()
        .unwrap_err();
    assert!(
        file.to_string().contains(r#"for key "default.kakao_api_base""#),
        "{file}"
    );
    let typo = from_env(&[("acess_token_lifetime", "5m")]).unwrap_err();
    assert!(
        matches!(&typo.kind, Kind::UnknownField(name, expected)
            if name == "acess_token_lifetime" && expected.contains(&"access_token_lifetime")),
        "{typo}"
    );
    // Section names are not settings: the file takes the flat names only.
    assert!(from_env(&[("kakao", "x")]).is_err());
}

/// Every `section.field` of the tree, read from serde's own field lists: an unknown field's
/// error names the fields its struct expects.
fn tree_paths() -> BTreeSet<String> {
    let expected = |probe: &str| match Figment::new().merge((probe, 0)).extract::<Settings>() {
        Err(e) => match e.kind {
            Kind::UnknownField(_, fields) => Some(fields),
            _ => None,
        },
        Ok(_) => None,
    };
    let mut paths = BTreeSet::new();
    for root in expected("unknown_probe").expect("the root struct denies unknown fields") {
        match expected(&format!("{root}.unknown_probe")) {
            Some(fields) => paths.extend(fields.iter().map(|f| format!("{root}.{f}"))),
            None => {
                paths.insert((*root).to_owned());
            }
        }
    }
    paths
}

#[test]
fn the_name_table_covers_every_field_of_the_tree_once() {
    let mapped: Vec<&str> = NAMES.iter().map(|(_, path)| *path).collect();
    let unique: BTreeSet<String> = mapped.iter().map(|p| (*p).to_owned()).collect();
    assert_eq!(unique.len(), mapped.len(), "a path is mapped twice");
    assert_eq!(unique, tree_paths());
    let flat: BTreeSet<&str> = NAMES.iter().map(|(name, _)| *name).collect();
    assert_eq!(flat.len(), NAMES.len(), "a flat name is mapped twice");
}

/// The keys in the first column of the README's configuration table (`a` / `b` rows hold two).
fn readme_keys() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("\n## Configuration\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("the README has a Configuration section");
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .flat_map(|row| {
            let first = row.split(" | ").next().unwrap_or_default();
            format!("`{first}")
                .split(" / ")
                .map(|key| key.trim_matches('`').to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_readme_configuration_table_lists_every_setting_and_nothing_else() {
    let documented = readme_keys();
    let settings: BTreeSet<String> = NAMES.iter().map(|(name, _)| (*name).to_owned()).collect();
    let missing: Vec<_> = settings.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&settings).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "README configuration table: missing {missing:?}, lists unknown {unknown:?}"
    );
}
