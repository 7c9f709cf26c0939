//! Usernames of new social users, made as allauth's `generate_unique_username` makes them: a base
//! from the first text that normalises to something (nickname, email, `kakao_<id>`), cut to the
//! column, and a handful of candidates (the base, then random suffixes) of which one query says
//! which are taken. A shared nickname thus never costs failed inserts.

use std::collections::HashSet;

use entity::user;
use rand::{Rng, seq::SliceRandom};
use sea_orm::ConnectionTrait;
use unicode_normalization::UnicodeNormalization;

use super::StoreError;

/// Django's `username` max_length.
pub const MAX_USERNAME_CHARS: usize = 150;
/// allauth's `MAX_USERNAME_SUFFIX_LENGTH`: suffixes of 1 to 6 characters are tried.
const MAX_SUFFIX_LEN: usize = 7;
/// allauth's suffix alphabet: digits for the first four characters, then letters.
const DIGITS: &[u8] = b"0123456789";
const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// The base name: the first of `texts` that keeps something after allauth's clean-up. Unlike
/// allauth, letters outside ASCII are kept (NFKC instead of NFKD + ASCII folding), or every
/// Korean nickname would become `user`.
pub fn base<'a>(texts: impl IntoIterator<Item = &'a str>) -> String {
    for text in texts {
        let kept: String = text
            .nfkc()
            .filter(|c| c.is_alphanumeric() || c.is_whitespace() || "_@+.-".contains(*c))
            .flat_map(char::to_lowercase)
            .collect();
        // allauth keeps only what comes before an `@`: addresses live in the email table.
        let local = kept.split('@').next().unwrap_or_default().trim();
        let name = local.split_whitespace().collect::<Vec<_>>().join("_");
        if !name.is_empty() {
            return name.chars().take(MAX_USERNAME_CHARS).collect();
        }
    }
    "user".into()
}

/// allauth's `generate_username_candidates`: the base, then the base cut so that a random suffix
/// of 1, 2, … 6 characters fits in the column.
pub fn candidates(base: &str, rng: &mut impl Rng) -> Vec<String> {
    let mut candidates = vec![base.to_owned()];
    for len in 1..MAX_SUFFIX_LEN {
        let suffix: String = (0..len)
            .map(|i| {
                let alphabet = if i < 4 { DIGITS } else { LETTERS };
                char::from(*alphabet.choose(rng).unwrap_or(&b'0'))
            })
            .collect();
        let kept: String = base.chars().take(MAX_USERNAME_CHARS - len).collect();
        candidates.push(kept + &suffix);
    }
    candidates
}

/// Which of `names` are taken, in one query (a few for a large batch).
pub async fn taken(db: &impl ConnectionTrait, names: &[String]) -> Result<HashSet<String>, StoreError> {
    Ok(
        super::existing_values::<user::Entity, _>(db, user::Column::Username, names)
            .await?
            .into_iter()
            .collect(),
    )
}

/// The free candidates for a user made from `texts`, best first.
pub async fn free_candidates<'a>(
    db: &impl ConnectionTrait,
    texts: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<String>, StoreError> {
    let candidates = candidates(&base(texts), &mut rand::thread_rng());
    let taken = taken(db, &candidates).await?;
    Ok(candidates.into_iter().filter(|c| !taken.contains(c)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_is_cleaned_as_allauth_does_but_keeps_hangul() {
        assert_eq!(base(["홍 길동!"]), "홍_길동");
        assert_eq!(base(["  Neo.Anderson@matrix.io "]), "neo.anderson");
        assert_eq!(base(["ｎｉｃｋ"]), "nick", "NFKC folds full-width letters");
        assert_eq!(
            base(["!!!", "", "ann@example.com"]),
            "ann",
            "the next text when one is empty"
        );
        assert_eq!(base(["🙂"]), "user");
    }

    #[test]
    fn the_base_is_cut_to_the_column() {
        let long = "가".repeat(400);
        assert_eq!(base([long.as_str()]).chars().count(), MAX_USERNAME_CHARS);
    }

    #[test]
    fn candidates_are_the_base_then_growing_random_suffixes_within_150_characters() {
        let long = "가".repeat(MAX_USERNAME_CHARS);
        let all = candidates(&long, &mut rand::thread_rng());
        assert_eq!(all.len(), 7);
        assert_eq!(all[0], long);
        for (len, candidate) in all.iter().enumerate().skip(1) {
            assert_eq!(candidate.chars().count(), MAX_USERNAME_CHARS, "{candidate}");
            let suffix: String = candidate.chars().skip(MAX_USERNAME_CHARS - len).collect();
            assert!(suffix.chars().take(4).all(|c| c.is_ascii_digit()), "{suffix}");
            assert!(suffix.chars().skip(4).all(|c| c.is_ascii_alphabetic()), "{suffix}");
        }
        let short = candidates("nick", &mut rand::thread_rng());
        assert!(short.iter().all(|c| c.starts_with("nick")));
        assert_eq!(short[3].len(), "nick".len() + 3);
    }
}
