//! DRF TokenAuthentication keys: 40 hex characters, stored only as their SHA-256.

use entity::user;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{TokenError, Tokens};
use crate::store;

/// Hex SHA-256 of a secret key: what is stored instead of the key (opaque tokens, mailed keys).
pub fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl Tokens {
    /// A new key for the user (DRF `Token.generate_key`: 20 random bytes as hex). With
    /// `replace`, the user's other keys are deleted first (`drf_create_token -r`).
    pub async fn create_opaque(&self, user: &user::Model, replace: bool) -> Result<String, TokenError> {
        let user_id = user.id;
        self.wait_past_revocation(user).await;
        if replace {
            store::tokens::delete_user_auth_tokens(&self.db, user_id).await?;
        }
        let mut bytes = [0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let key = hex::encode(bytes);
        store::tokens::insert_auth_token(&self.db, &digest(&key), user_id).await?;
        Ok(key)
    }

    /// The user a key belongs to, if the key was made after the user's revocation point and the
    /// user is active (`holder`).
    pub async fn authenticate_opaque(&self, key: &str) -> Result<user::Model, TokenError> {
        let hash = digest(key);
        let row = store::tokens::find_auth_token(&self.db, &hash)
            .await?
            .ok_or(TokenError::Invalid)?;
        // The lookup is by hash, which leaks nothing about the key; compare anyway in constant
        // time so no code path ever compares secrets byte by byte.
        if !bool::from(row.key_hash.as_bytes().ct_eq(hash.as_bytes())) {
            return Err(TokenError::Invalid);
        }
        self.holder(row.user_id, row.created_at.timestamp()).await
    }

    pub async fn delete_opaque(&self, key: &str) -> Result<(), TokenError> {
        store::tokens::delete_auth_token(&self.db, &digest(key)).await?;
        Ok(())
    }
}
