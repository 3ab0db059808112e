//! Prints event sequences the [`SequenceGuard`] accepts, for the official-client check in
//! `tests/conformance` (`guard-sequences.mjs`): the guard's rules must never let through a
//! sequence `@ag-ui/client`'s `verifyEvents` rejects.
//!
//! `guard_sequences [--count N] [--seed HEX64]` writes one JSON document to stdout:
//! `{"seed": "<hex>", "sequences": [{"v1": [event, …], "legacy": [event, …]}, …]}`, where `v1`
//! is what the 1.0 dialect sends and `legacy` the same events through a legacy `DialectAdapter`
//! (what the sink sends a 0.0.x client).
//! Random candidate events over a small id space (`tests/it/strategies.rs`, shared with the
//! property tests) are filtered through one guard, and whatever the last run left open is
//! closed. The seed is fixed by default, so the sequences are the same on every run.

use agui_protocol::{Dialect, DialectAdapter, Event, SequenceGuard};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::json;

#[path = "../tests/it/strategies.rs"]
mod strategies;

/// The default seed (32 bytes as hex): any fixed value will do.
const SEED: &str = "a6e1f5c0d2b34e7f8a9b0c1d2e3f405162738495a6b7c8d9eaf0b1c2d3e4f506";

fn main() {
    let mut count = 300usize;
    let mut seed = SEED.to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--count", Some(n)) => count = n.parse().expect("--count takes a number"),
            ("--seed", Some(s)) => seed = s,
            _ => panic!("usage: guard_sequences [--count N] [--seed HEX64]"),
        }
    }
    let bytes: Vec<u8> = (0..seed.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&seed[i..i + 2], 16).expect("--seed is hex"))
        .collect();
    assert_eq!(bytes.len(), 32, "--seed is 32 bytes of hex");
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    );
    let strategy = (
        proptest::collection::vec(strategies::sequence_candidate(), 0..120),
        proptest::bool::weighted(0.2),
    );
    let mut sequences = Vec::with_capacity(count);
    for _ in 0..count {
        let (candidates, error_at_end) = strategy
            .new_tree(&mut runner)
            .expect("the strategy has no filters that can give up")
            .current();
        let v1 = strategies::guard_accepted(candidates, error_at_end);
        // The property the Node side relies on: a fresh guard accepts the whole sequence.
        let mut guard = SequenceGuard::new();
        for event in &v1 {
            guard
                .check(event)
                .expect("guard_accepted returns accepted events");
        }
        // What the sink sends a 0.0.x client: the same events through a legacy adapter.
        let mut adapter = DialectAdapter::new(Dialect::Legacy);
        let legacy: Vec<Event> = v1
            .iter()
            .cloned()
            .filter_map(|event| adapter.adapt(event))
            .collect();
        sequences.push(json!({"v1": v1, "legacy": legacy}));
    }
    let document = json!({"seed": seed, "sequences": sequences});
    println!("{document}");
}
