//! The crate's integration tests, one binary (one link instead of one per file).

mod batching;
mod openai;
