//! Django's four default password validators: minimum length, similarity to the user's
//! attributes, common passwords (Django's own list of 20,000), entirely numeric.

use std::{collections::HashSet, sync::LazyLock};

/// Django's `common-passwords.txt.gz` (django/contrib/auth), unpacked.
static COMMON: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("common-passwords.txt").lines().collect());

const MIN_LENGTH: usize = 8;
/// Django's `UserAttributeSimilarityValidator.DEFAULT_MAX_SIMILARITY`.
const MAX_SIMILARITY: f64 = 0.7;

/// Django's messages for each failed rule; empty when the password is acceptable.
pub fn problems(password: &str, attributes: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    if password.chars().count() < MIN_LENGTH {
        found.push(format!(
            "This password is too short. It must contain at least {MIN_LENGTH} characters."
        ));
    }
    let lower = password.to_lowercase();
    let similar = attributes.iter().filter(|a| !a.is_empty()).any(|attribute| {
        let attribute = attribute.to_lowercase();
        // Django also compares each part of an attribute split on non-word characters.
        std::iter::once(attribute.as_str())
            .chain(attribute.split(|c: char| !c.is_alphanumeric()))
            .filter(|part| !part.is_empty())
            .any(|part| strsim::normalized_levenshtein(&lower, part) >= MAX_SIMILARITY)
    });
    if similar {
        found.push("The password is too similar to the user's attributes.".into());
    }
    if COMMON.contains(lower.trim()) {
        found.push("This password is too common.".into());
    }
    if !password.is_empty() && password.chars().all(|c| c.is_ascii_digit()) {
        found.push("This password is entirely numeric.".into());
    }
    found
}

#[cfg(test)]
mod tests {
    use super::problems;

    #[test]
    fn each_django_rule_rejects_its_case() {
        assert!(problems("short1!", &[])[0].contains("too short"));
        assert!(problems("password", &[]).iter().any(|p| p.contains("too common")));
        assert!(
            problems("84736251907", &[])
                .iter()
                .any(|p| p.contains("entirely numeric"))
        );
        assert!(
            problems("alice.smith1", &["alice.smith", "alice@example.com"])
                .iter()
                .any(|p| p.contains("similar"))
        );
    }

    #[test]
    fn a_decent_password_passes() {
        assert!(problems("correct horse battery", &["alice", "alice@example.com"]).is_empty());
    }
}
