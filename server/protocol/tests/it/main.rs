//! The crate's integration tests, one binary (one link instead of one per file).

mod events;
mod input;
mod input_ids;
mod properties;
mod proto_parity;
mod strategies;
