//! Password hashing: argon2id (m=19456 KiB, t=2, p=1, OWASP's minimum) on the blocking pool.
//! Django's `pbkdf2_sha256$…` and `argon2$…` hashes verify too, so a Django user table imports
//! as is; the caller re-hashes on login when `needs_rehash` says so.

use std::sync::LazyLock;

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::{SaltString, rand_core::OsRng},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::telemetry::spawn_blocking_in_span;

/// Django's Argon2PasswordHasher prefix; we write it too, so the table can go back to Django.
const DJANGO_ARGON2_PREFIX: &str = "argon2";

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("hashing failed: {0}")]
    Hash(String),
    #[error("the hashing task failed")]
    Task,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("static argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon2()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(format!("{DJANGO_ARGON2_PREFIX}{hash}"))
}

/// Argon2 jobs allowed at once: one per core. Each holds 19 MiB, so a login burst must queue
/// (asynchronously) instead of filling the blocking pool with hundreds of hashes and as many
/// 19 MiB buffers; the runtime's workers stay free for other requests meanwhile.
static HASHING: LazyLock<tokio::sync::Semaphore> =
    LazyLock::new(|| tokio::sync::Semaphore::new(std::thread::available_parallelism().map(usize::from).unwrap_or(2)));

/// Runs one argon2 job on the blocking pool once a hashing slot is free.
async fn run_hashing<R: Send + 'static>(job: impl FnOnce() -> R + Send + 'static) -> Result<R, PasswordError> {
    let _slot = HASHING.acquire().await.map_err(|_| PasswordError::Task)?;
    spawn_blocking_in_span(job).await.map_err(|_| PasswordError::Task)
}

/// A hash that no password matches, verified for unknown users and unusable or unknown hashes
/// so that they take the same time as a wrong password.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| hash_blocking("authbridge-dummy-password").unwrap_or_default());

fn verify_blocking(stored: &str, password: &str) -> bool {
    if let Some(phc) = stored.strip_prefix(DJANGO_ARGON2_PREFIX)
        && let Ok(hash) = PasswordHash::new(phc)
    {
        return argon2().verify_password(password.as_bytes(), &hash).is_ok();
    }
    if stored.starts_with("$argon2")
        && let Ok(hash) = PasswordHash::new(stored)
    {
        return argon2().verify_password(password.as_bytes(), &hash).is_ok();
    }
    if let Some(rest) = stored.strip_prefix("pbkdf2_sha256$")
        && let Some(matches) = verify_django_pbkdf2(rest, password)
    {
        return matches;
    }
    // `!…` (a social-only account), unknown or broken formats never match, after the same argon2
    // work as a wrong password: an answer at once would tell which accounts are Kakao-only.
    let dummy = DUMMY_HASH.strip_prefix(DJANGO_ARGON2_PREFIX).unwrap_or_default();
    let _ = PasswordHash::new(dummy).map(|h| argon2().verify_password(password.as_bytes(), &h));
    false
}

/// The most PBKDF2 iterations a stored hash may ask for: Django 5 uses 870,000-1,000,000; a hash
/// asking for more would make each login attempt burn seconds to minutes of CPU.
pub const MAX_PBKDF2_ITERATIONS: u64 = 10_000_000;

/// The iteration count of a Django `pbkdf2_sha256$…` hash; `None` for other formats or a count
/// that is not a number.
pub fn pbkdf2_iterations(stored: &str) -> Option<u64> {
    stored.strip_prefix("pbkdf2_sha256$")?.split('$').next()?.parse().ok()
}

/// `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>` (Django's default hasher); `None` for a
/// hash that cannot be checked (malformed, or more iterations than we run).
fn verify_django_pbkdf2(rest: &str, password: &str) -> Option<bool> {
    let mut parts = rest.splitn(3, '$');
    let (Some(iterations), Some(salt), Some(expected)) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    let iterations = iterations.parse::<u32>().ok()?;
    if u64::from(iterations) > MAX_PBKDF2_ITERATIONS {
        return None;
    }
    let expected = STANDARD.decode(expected).ok()?;
    let mut derived = vec![0u8; expected.len().max(1)];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), salt.as_bytes(), iterations, &mut derived);
    Some(derived.ct_eq(&expected).into())
}

pub async fn hash(password: &SecretString) -> Result<String, PasswordError> {
    let password = password.clone();
    run_hashing(move || hash_blocking(password.expose_secret())).await?
}

/// Checks `password` against `stored`, or against a dummy hash when there is no user, so both
/// cases cost one argon2 verification.
pub async fn verify(stored: Option<&str>, password: &SecretString) -> bool {
    let stored = stored.map(str::to_owned);
    let password = password.clone();
    run_hashing(move || match stored {
        Some(stored) => verify_blocking(&stored, password.expose_secret()),
        None => verify_blocking("!no-such-user", password.expose_secret()),
    })
    .await
    .unwrap_or(false)
}

/// False for a hash in a format nothing here verifies (`md5$…`, `bcrypt_sha256$…`): its user can
/// only get in again through a password reset. Django's unusable marker (`!…`) counts as supported.
pub fn is_supported_format(stored: &str) -> bool {
    ["!", DJANGO_ARGON2_PREFIX, "$argon2", "pbkdf2_sha256$"]
        .iter()
        .any(|prefix| stored.starts_with(prefix))
}

/// True for hashes not made with our current algorithm and parameters.
pub fn needs_rehash(stored: &str) -> bool {
    let phc = stored.strip_prefix(DJANGO_ARGON2_PREFIX).unwrap_or(stored);
    let Ok(hash) = PasswordHash::new(phc) else { return true };
    let current = argon2();
    hash.algorithm != Algorithm::Argon2id.ident()
        || Params::try_from(&hash).map_or(true, |p| {
            (p.m_cost(), p.t_cost(), p.p_cost())
                != (
                    current.params().m_cost(),
                    current.params().t_cost(),
                    current.params().p_cost(),
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_hash_verifies_and_looks_like_djangos_argon2() {
        let hash = hash_blocking("correct horse").unwrap();
        assert!(hash.starts_with("argon2$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_blocking(&hash, "correct horse"));
        assert!(!verify_blocking(&hash, "wrong"));
        assert!(!needs_rehash(&hash));
    }

    #[test]
    fn a_django_pbkdf2_hash_verifies_and_asks_for_a_rehash() {
        let mut derived = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(b"password", b"saltsaltsalt", 1000, &mut derived);
        let stored = format!("pbkdf2_sha256$1000$saltsaltsalt${}", STANDARD.encode(derived));
        assert!(verify_blocking(&stored, "password"));
        assert!(!verify_blocking(&stored, "Password"));
        assert!(needs_rehash(&stored));
    }

    #[test]
    fn a_known_django_vector_verifies() {
        // Django 3.2's default cost; value from Python's hashlib.pbkdf2_hmac("sha256", "lètmein",
        // b"seasalt", 260000), the call Django's PBKDF2PasswordHasher makes.
        let stored = "pbkdf2_sha256$260000$seasalt$YlZ2Vggtqdc61YjArZuoApoBh9JNGYoDRBUGu6tcJQo=";
        assert!(verify_blocking(stored, "lètmein"));
    }

    #[test]
    fn unusable_and_unknown_hashes_never_match() {
        assert!(!verify_blocking("!abc", ""));
        assert!(!verify_blocking("md5$x$y", "y"));
        assert!(!verify_blocking("", ""));
        assert!(!is_supported_format("md5$x$y") && !is_supported_format(""));
        assert!(is_supported_format("!abc") && is_supported_format("pbkdf2_sha256$1$s$h"));
    }
}
