//! Our own tokens: JWT issue/verify (simplejwt-compatible claims) and the signing key ring.

mod jwt;
mod keys;

pub use jwt::{Claims, IssuedPair, TokenType, Tokens};
pub use keys::KeyRing;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Malformed, wrong algorithm, unknown key, bad signature, wrong issuer or audience.
    #[error("token is invalid")]
    Invalid,
    #[error("token has expired")]
    Expired,
    /// A refresh token presented as an access token, or the reverse.
    #[error("wrong token type")]
    WrongType,
    #[error("cannot sign: {0}")]
    Signing(jsonwebtoken::errors::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}
