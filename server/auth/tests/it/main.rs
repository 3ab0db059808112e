//! The crate's integration tests, one binary (one link instead of one per file).

mod common;

mod api_keys;
mod attacks;
mod cache;
mod discovery;
mod github;
mod github_login;
mod introspection;
mod routing;
mod vendors;
