//! One test binary for the whole HTTP API (one link step): each module is a feature's scenarios.

mod helpers;
mod kakao;
mod providers;

mod admin;
mod apple;
mod bad_input;
mod browser;
mod cli;
mod compat;
mod cookie_mode;
mod email_ownership;
mod emulator;
mod enumeration;
mod faults;
mod google;
mod import_django;
mod introspection;
mod jwt;
mod kakao_code_and_oidc;
mod local_accounts;
mod metrics;
mod multi_app;
mod naver;
mod operations;
mod rate_limits;
mod revocation;
mod scale_out;
mod smtp_sink;
mod social_accounts;
mod social_login;
mod supervision;
mod token_lifecycle;
