//! Authentication-failure aggregation: a flood becomes one record per source, reason and
//! issuer per window.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use agui_server::store::{
    AuditFilter, AuditKind, AuditLog, AuditLogOptions, AuthFailureAggregator, AuthFailureKey,
    SqliteStore, Store,
};

fn key(source: &str, reason: &str) -> AuthFailureKey {
    AuthFailureKey {
        source: source.parse::<IpAddr>().unwrap(),
        reason: reason.to_owned(),
        issuer: Some("https://idp.test".to_owned()),
    }
}

#[tokio::test]
async fn a_flood_becomes_one_record_per_key_per_window() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::connect("sqlite::memory:").await.unwrap());
    let log = AuditLog::start(store.clone(), AuditLogOptions::default());
    let failures = AuthFailureAggregator::new(log.clone(), Duration::from_secs(60));

    // Time is paused only while failures are counted: the database's own timers stay real.
    tokio::time::pause();
    for i in 0..1_000 {
        failures.record(
            key("198.51.100.7", "invalid_token"),
            Some(&format!("fp{}", i % 7)),
        );
    }
    failures.record(key("198.51.100.7", "expired"), None);
    failures.record(key("203.0.113.1", "invalid_token"), None);
    // Inside the window nothing is written yet.
    failures.sweep();
    tokio::time::advance(Duration::from_secs(30)).await;
    failures.sweep();
    tokio::time::resume();
    log.flush().await;
    let filter = AuditFilter {
        kinds: vec![AuditKind::AuthFailure],
        ..Default::default()
    };
    assert!(store.query_audit(&filter).await.unwrap().is_empty());

    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(31)).await;
    failures.sweep();
    // The next failure of the flooding key opens a new window.
    failures.record(key("198.51.100.7", "invalid_token"), None);
    tokio::time::resume();
    log.flush().await;

    let records = store.query_audit(&filter).await.unwrap();
    assert_eq!(records.len(), 3, "{records:#?}");
    let flood = records
        .iter()
        .find(|r| r.detail["source"] == "198.51.100.7" && r.detail["reason"] == "invalid_token")
        .expect("the flood's record");
    assert_eq!(flood.detail["count"], 1_000);
    assert_eq!(flood.issuer.as_deref(), Some("https://idp.test"));
    // Fingerprints are bounded (5 of the 7 seen), never tokens.
    assert_eq!(
        flood.detail["token_fingerprints"].as_array().unwrap().len(),
        5
    );
    let counts: Vec<_> = records
        .iter()
        .map(|r| r.detail["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts.iter().sum::<u64>(), 1_002);

    // The open window is written at shutdown.
    failures.flush_all();
    log.flush().await;
    assert_eq!(store.query_audit(&filter).await.unwrap().len(), 4);
}
