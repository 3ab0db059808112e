//! The run pipeline's promise: nothing is written before everything that can refuse has
//! refused, and what a run writes names its principal and thread.

use std::time::Duration;

use agui_server::store::{AuditFilter, AuditKind, PrincipalKey};
use serde_json::{Value, json};

use crate::common::*;

fn on_thread(text: &str, thread: &str, run: &str) -> Value {
    let mut body = input(text, Some("1.0"));
    body["threadId"] = json!(thread);
    body["runId"] = json!(run);
    body
}

async fn records(server: &TestServer, filter: AuditFilter) -> Vec<agui_server::store::AuditRecord> {
    let connected = server.state.backends.connected().expect("store connected");
    connected.log.flush().await;
    connected.store().query_audit(&filter).await.unwrap()
}

/// A run refused with 503 `server_busy` leaves no open run and no `run_started` record behind
/// (it was committed before the cap was checked, and stayed open until a restart). Once the
/// stream that held the only place closes, the same request runs and is recorded: the control.
#[tokio::test]
async fn a_run_refused_as_server_busy_leaves_no_open_run() {
    let server = start_with(
        |c| c.limits.max_open_streams = 1,
        |b| b.model(model(HangingModel)),
    )
    .await;
    let alice = server.token("alice");
    let mut holder = server
        .post("/chat", Some(&alice), &on_thread("hi", "holder", "r0"))
        .await;
    assert_eq!(holder.status(), 200);
    let _ = holder.chunk().await.unwrap();

    let refused = server
        .post("/chat", Some(&alice), &on_thread("hi", "busy", "r1"))
        .await;
    assert_eq!(refused.status(), 503);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["error"],
        "server_busy"
    );
    let store = server.state.backends.connected().unwrap().store().clone();
    assert!(
        store.get_run("busy", "r1").await.unwrap().is_none(),
        "a refused run was recorded"
    );
    let started = records(
        &server,
        AuditFilter {
            thread_id: Some("busy".into()),
            ..AuditFilter::default()
        },
    )
    .await;
    assert!(started.is_empty(), "{started:?}");
    let threads = store
        .list_threads(&PrincipalKey::new(server.idp.issuer_url(), "alice"))
        .await
        .unwrap();
    assert!(threads.iter().all(|t| t.thread_id != "busy"), "{threads:?}");

    // The control: with the holder gone, the same run is admitted and recorded.
    drop(holder);
    let mut admitted = None;
    for _ in 0..600 {
        let response = server
            .post("/chat", Some(&alice), &on_thread("hi", "busy", "r1"))
            .await;
        if response.status() == 200 {
            admitted = Some(response);
            break;
        }
        assert_eq!(response.status(), 503);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut admitted = admitted.expect("the place was released when the holder closed");
    let _ = admitted.chunk().await.unwrap();
    assert!(store.get_run("busy", "r1").await.unwrap().is_some());
    drop(admitted);
    server.stop().await;
}

/// A backend tool call's audit record carries the caller's issuer and the thread: `audit
/// --thread` finds it, and `forget --issuer --subject` removes it with the rest of the
/// subject's data (before, both missed it: its issuer and thread were NULL).
#[tokio::test]
async fn tool_call_records_name_issuer_and_thread_and_are_forgotten_with_their_subject() {
    let server = start().await;
    let issuer = server.idp.issuer_url();
    let events = server
        .run("alice", &on_thread("who am i", "alices-thread", "r1"))
        .await;
    assert_eq!(tool_result(&events)["subject"], "alice");
    // Another user's tool call: the control that forget removes only Alice's.
    server
        .run("bob", &on_thread("who am i", "bobs-thread", "r1"))
        .await;

    let calls = records(
        &server,
        AuditFilter {
            thread_id: Some("alices-thread".into()),
            kinds: vec![AuditKind::ToolCall],
            ..AuditFilter::default()
        },
    )
    .await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].issuer.as_deref(), Some(issuer.as_str()));
    assert_eq!(calls[0].subject.as_deref(), Some("alice"));
    assert_eq!(calls[0].run_id.as_deref(), Some("r1"));

    let store = server.state.backends.connected().unwrap().store().clone();
    store.forget_subject(Some(&issuer), "alice").await.unwrap();
    let left = records(
        &server,
        AuditFilter {
            kinds: vec![AuditKind::ToolCall],
            ..AuditFilter::default()
        },
    )
    .await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].subject.as_deref(), Some("bob"));
    server.stop().await;
}
