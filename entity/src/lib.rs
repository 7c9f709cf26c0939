//! sea-orm entities, one table a file. Generated-style: columns only, no behaviour.
//! Queries live in the main crate's `store` module.

pub mod audit_event;
pub mod auth_token;
pub mod email_address;
pub mod one_time_key;
pub mod refresh_token;
pub mod resource_client;
pub mod revoked_session;
pub mod signing_key;
pub mod site;
pub mod social_account;
pub mod social_app;
pub mod social_app_site;
pub mod social_token;
pub mod standing_change;
pub mod user;
