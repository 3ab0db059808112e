//! The crate's integration tests, one binary (one link instead of one per file).

mod common;

mod attacks;
mod cache;
mod discovery;
mod vendors;
