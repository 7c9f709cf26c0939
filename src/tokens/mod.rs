//! Our own tokens: JWT issue/verify (simplejwt-compatible claims), the signing key ring, the
//! refresh-token lifecycle and DRF opaque tokens.

mod crypto;
mod jwt;
mod keys;
mod opaque;
mod revocation;
pub use opaque::digest as secret_digest;
mod sessions;

pub use jwt::{Claims, TokenType, Tokens, at as jwt_at};
pub use keys::{KeyRing, KeyState, revoke as revoke_signing_key, rotate as rotate_signing_key};
pub use revocation::revoked_by_point;
pub use sessions::{IssuedPair, Refreshed};

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
    /// Blacklisted: logged out, spent by rotation, or revoked with its family or user.
    #[error("token is blacklisted")]
    Revoked,
    /// A spent refresh token replayed after the grace interval: its session is now revoked.
    #[error("refresh token reused; session revoked")]
    ReuseDetected { user_id: i32 },
    /// The token's user was deleted since.
    #[error("user not found")]
    UserGone,
    /// The token's user is disabled.
    #[error("user is inactive")]
    UserInactive,
    #[error("cannot sign: {0}")]
    Signing(jsonwebtoken::errors::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}
