//! Posts: a small blog API protected by authbridge's tokens. Access JWTs are verified locally
//! (`authbridge-verify`); DRF `Token` keys are introspected at authbridge with a short cache.

pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod error;
pub mod migration;
pub mod photos;
pub mod store;
