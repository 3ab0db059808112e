//! agui-bench: the benchmark harness behind `make bench` (see `bench/README.md`).
//!
//! It measures agui-server side by side with the Python, Node and AG2 peers under one load
//! client, one JWKS and one pinning rule (server on CPU 0, client and mock on CPU 1), following
//! the protocol in shared/reference/perf-peers.md §6.
//!
//! # Layout
//! - [`sse`]: incremental SSE reader (event count, first event, did it end in `RUN_FINISHED`).
//! - [`stats`]: samples, errors by kind, percentiles, medians with min–max, the validity rule.
//! - [`client`]: the load client (C keep-alive connections, N streaming POSTs, a deadline).
//! - [`floor`]: the floor server (pre-encoded frames, optional truncation) and the scripted plan.
//! - [`mock`]: the mock OpenAI-compatible model (streamed text or a tool call).
//! - [`jwks`]: the shared RS256 key, discovery + JWKS server and token files.
//! - [`procfs`]: CPU seconds, RSS sampling and the listen-overflow counter from `/proc`.
//! - [`suite`]: servers, scenarios and the run loop behind `bench/run.sh`.
//! - [`report`]: `bench/results/latest.md` and the SVG chart.
//! - [`httpd`]: the loopback accept loop the helper servers share.

pub mod changes;
pub mod client;
pub mod floor;
pub mod httpd;
pub mod jwks;
pub mod mock;
pub mod procfs;
pub mod report;
pub mod sse;
pub mod stats;
pub mod suite;

pub use client::{LoadResult, LoadSpec, run as run_load, run_inputs};
pub use sse::{Ending, SseReader};
pub use stats::{ErrorKind, Percentiles, Recorder, Sample, Spread, Summary};
