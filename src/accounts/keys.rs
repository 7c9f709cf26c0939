//! The single-use keys of mail links (email confirmation, password reset) and Django's uid
//! encoding of reset links.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;

/// A random key for a mail link and the hash that is stored instead of it.
pub(super) fn new_key() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let key = URL_SAFE_NO_PAD.encode(bytes);
    let hash = key_hash(&key);
    (key, hash)
}

pub fn key_hash(key: &str) -> String {
    crate::tokens::secret_digest(key)
}

/// Django's `urlsafe_base64_encode(force_bytes(pk))`.
pub fn encode_uid(pk: i32) -> String {
    URL_SAFE_NO_PAD.encode(pk.to_string())
}

pub fn decode_uid(uid: &str) -> Option<i32> {
    String::from_utf8(URL_SAFE_NO_PAD.decode(uid.trim_end_matches('=')).ok()?)
        .ok()?
        .parse()
        .ok()
}
