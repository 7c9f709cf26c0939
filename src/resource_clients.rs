//! Resource-server clients: the credentials an API presents to introspect tokens. The secret is
//! 32 random bytes shown once; only its SHA-256 is stored, and checks compare in constant time.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use entity::resource_client;
use rand::RngCore;
use sea_orm::ConnectionTrait;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::{
    store::{self, StoreError},
    tokens::secret_digest,
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Client ids are 1-64 characters of `A-Z a-z 0-9 . _ -` (they travel in HTTP Basic auth).
    #[error("a client id is 1-64 characters of letters, digits, '.', '_' and '-'")]
    BadId,
    #[error("client {0:?} already exists")]
    Taken(String),
    #[error(transparent)]
    Store(StoreError),
}

pub fn is_valid_id(client_id: &str) -> bool {
    (1..=64).contains(&client_id.len())
        && client_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Registers `client_id` and returns its secret, which is not kept anywhere and cannot be shown again.
pub async fn create(db: &impl ConnectionTrait, client_id: &str) -> Result<SecretString, ClientError> {
    if !is_valid_id(client_id) {
        return Err(ClientError::BadId);
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    match store::resource_clients::insert(db, client_id, client_id, &secret_digest(&secret)).await {
        Ok(_) => Ok(SecretString::from(secret)),
        Err(StoreError::Taken { .. }) => Err(ClientError::Taken(client_id.to_owned())),
        Err(e) => Err(ClientError::Store(e)),
    }
}

/// The client, when `secret` is its secret. An unknown client costs the same digest and comparison.
pub async fn authenticate(
    db: &impl ConnectionTrait,
    client_id: &str,
    secret: &SecretString,
) -> Result<Option<resource_client::Model>, StoreError> {
    let presented = secret_digest(secret.expose_secret());
    let row = if is_valid_id(client_id) {
        store::resource_clients::find(db, client_id).await?
    } else {
        None
    };
    let stored = row.as_ref().map_or("", |r| r.secret_hash.as_str());
    let matches = bool::from(stored.as_bytes().ct_eq(presented.as_bytes()));
    Ok(row.filter(|_| matches))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_safe_for_basic_auth() {
        assert!(is_valid_id("posts-api.v2_1"));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("a:b"));
        assert!(!is_valid_id("a b"));
        assert!(!is_valid_id(&"a".repeat(65)));
    }
}
