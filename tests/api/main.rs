//! One test binary for the whole HTTP API (one link step): each module is a feature's scenarios.

mod helpers;

mod bad_input;
mod cli;
mod compat;
mod emulator;
mod fake_kakao;
mod jwt;
mod operations;
mod social_login;
mod token_lifecycle;
