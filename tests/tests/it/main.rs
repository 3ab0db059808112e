//! The end-to-end crate's one test binary.

mod standin;
mod token_leak;
