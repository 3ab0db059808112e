//! The binary's commands: `check-config` on good and bad configs, `serve` failing closed without
//! an issuer, and `dev` printing a curl whose token really works.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_agui-server");

fn run(args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("AGUI_OIDC_ISSUER")
        .env_remove("AGUI_CONFIG");
    for (k, v) in envs {
        command.env(k, v);
    }
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn version_prints_the_crate_version() {
    let (code, stdout, _) = run(&["--version"], &[]);
    assert_eq!(code, 0);
    assert_eq!(
        stdout.trim(),
        format!("agui-server {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn serve_without_an_issuer_fails_closed_with_a_clear_message() {
    let (code, _, stderr) = run(&["serve"], &[("AGUI_LISTEN", "127.0.0.1:0")]);
    assert_eq!(code, 2);
    assert!(stderr.contains("AGUI_OIDC_ISSUER"), "{stderr}");
}

#[test]
fn check_config_prints_the_effective_config_or_the_problem() {
    let dir = std::env::temp_dir().join(format!("agui-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "listen = \"127.0.0.1:9000\"\n[[auth.issuers]]\nissuer = \"https://login.example.com\"\naudiences = [\"agui\"]\n",
    )
    .unwrap();
    let (code, stdout, stderr) = run(&["check-config", "--config", good.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("listen = \"127.0.0.1:9000\""), "{stdout}");
    assert!(stdout.contains("https://login.example.com"));

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "listen = \"127.0.0.1:9000\"\nbacklogg = 5\n").unwrap();
    let (code, _, stderr) = run(&["check-config", "--config", bad.to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("backlogg"),
        "the unknown key is named: {stderr}"
    );

    let hs = dir.join("hs.toml");
    std::fs::write(
        &hs,
        "[[auth.issuers]]\nissuer = \"https://login.example.com\"\naudiences = [\"agui\"]\nalgorithms = [\"HS256\"]\n",
    )
    .unwrap();
    let (code, _, stderr) = run(&["check-config", "--config", hs.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "symmetric algorithms are refused: {stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dev_refuses_a_non_loopback_address() {
    let (code, _, stderr) = run(&["dev", "--listen", "0.0.0.0:0"], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("loopback"), "{stderr}");
}

#[tokio::test]
async fn dev_prints_a_curl_whose_token_works() {
    let mut child = Command::new(BIN)
        .args([
            "dev",
            "--listen",
            "127.0.0.1:0",
            "--user",
            "alice",
            "--name",
            "Alice",
            "--scripted-delay-ms",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (url, token) = tokio::task::spawn_blocking(move || {
        let mut url = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("curl -N ") {
                url = Some(rest.trim_end_matches(" \\").to_owned());
            }
            if let Some(at) = line.find("Bearer ") {
                let token = line[at + 7..]
                    .trim_end_matches(['\'', ' ', '\\'])
                    .to_owned();
                return (url.expect("the URL line comes first"), token);
            }
        }
        panic!("dev printed no curl command");
    })
    .await
    .unwrap();
    let body = serde_json::json!({"threadId": "t1", "runId": "r1", "messages": [{"id": "m1", "role": "user", "content": "hello"}]});
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("\"delta\":\"Alice! \""),
        "the minted token's name is greeted: {text}"
    );
    child.kill().unwrap();
    let _ = child.wait();
}

/// `agui-server audit` prints the matching records as JSON lines; `forget` deletes one
/// subject's threads, runs and records and leaves a `forget` record naming only a hash of it.
#[tokio::test]
async fn audit_prints_filtered_json_lines_and_forget_removes_one_subject() {
    use agui_server::store::{
        AuditKind, AuditRecord, PrincipalKey, SqliteStore, Store, WriteOp, now_ms,
    };
    let dir = std::env::temp_dir().join(format!("agui-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/agui.db?mode=rwc", dir.display());
    let store = SqliteStore::connect(&url).await.unwrap();
    let alice = PrincipalKey::new("https://idp.test", "alice");
    let bob = PrincipalKey::new("https://idp.test", "bob");
    store
        .claim_thread(&alice, "t-alice", now_ms())
        .await
        .unwrap();
    store.claim_thread(&bob, "t-bob", now_ms()).await.unwrap();
    let record = |who: &PrincipalKey, kind, thread: &str| {
        WriteOp::Audit(AuditRecord::now(kind).principal(who).thread(thread))
    };
    store
        .write_batch(&[
            record(&alice, AuditKind::RunStarted, "t-alice"),
            record(&alice, AuditKind::ToolCall, "t-alice"),
            record(&bob, AuditKind::RunStarted, "t-bob"),
        ])
        .await
        .unwrap();
    drop(store);

    let (code, stdout, stderr) = run(
        &["audit", "--subject", "alice", "--kind", "run_started"],
        &[("AGUI_DATABASE_URL", &url)],
    );
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert_eq!(lines[0]["subject"], "alice");
    assert_eq!(lines[0]["kind"], "run_started");
    let (code, stdout, _) = run(&["audit"], &[("AGUI_DATABASE_URL", &url)]);
    assert_eq!(code, 0);
    assert_eq!(stdout.lines().count(), 3, "no filter: every record");
    let (code, _, stderr) = run(
        &["audit", "--kind", "nonsense"],
        &[("AGUI_DATABASE_URL", &url)],
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("run_started"), "lists the kinds: {stderr}");

    let (code, stdout, stderr) = run(
        &["forget", "--subject", "alice"],
        &[("AGUI_DATABASE_URL", &url)],
    );
    assert_eq!(code, 0, "{stderr}");
    let counts: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(counts["forgotten"]["threads"], 1);
    assert_eq!(counts["forgotten"]["audit_records"], 2);
    let (_, stdout, _) = run(&["audit"], &[("AGUI_DATABASE_URL", &url)]);
    assert!(!stdout.contains("\"alice\""), "alice is gone: {stdout}");
    assert!(stdout.contains("\"bob\""), "bob is kept: {stdout}");
    assert!(
        stdout.contains("\"forget\""),
        "the forget is recorded: {stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
