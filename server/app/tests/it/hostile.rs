//! The hostile-input suite against the real binary (issue #12, defects 2, 3, 4, 7 and 9): each
//! defect as a black-box test of `agui-server` started as a child process on 127.0.0.1 (raw
//! sockets where the bytes on the wire matter), a few connections each, one after the other,
//! every wait bounded by `HANG_GUARD` and ended by its cause. The in-process tests of the same
//! rules are `config_keys.rs`, `input_ids.rs`, `chat_errors.rs` and the unit tests of
//! `telemetry.rs`, `accept.rs` and `dialect.rs`; these show that the shipped binary, as an
//! operator starts it, behaves so.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agui_auth::testing::TestIdp;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::error_body::assert_valid_error_body;
use crate::common::process::Process;
use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_agui-server");

/// `agui-server serve` trusting `idp` (`AGUI_OIDC_ISSUER`, as in `sigterm.rs`), with no run-rate
/// limit (the refused bodies below would take the burst) and `extra` environment.
async fn serve(idp: &TestIdp, extra: &[(&str, &str)]) -> Process {
    let mut env = vec![("AGUI_RUNS_PER_MINUTE", "0")];
    env.extend_from_slice(extra);
    Process::trusting(idp, &env).await
}

/// Waits until some stderr line contains `needle` (the cause), within `HANG_GUARD`.
async fn wait_for_stderr(server: &Process, needle: &str) -> Vec<String> {
    let start = Instant::now();
    loop {
        let lines = server.stderr();
        if lines.iter().any(|line| line.contains(needle)) {
            return lines;
        }
        assert!(
            start.elapsed() < HANG_GUARD,
            "{needle:?} never reached stderr: {lines:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("agui-{name}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP/1.1 over a TCP socket.

/// An answer read to the end of the connection.
struct RawResponse {
    status: u16,
    /// Header names lowercased.
    headers: Vec<(String, String)>,
    /// The body, de-chunked.
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` on a new connection and reads until the server closes it (the requests say
/// `Connection: close`).
async fn exchange(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    socket.write_all(request).await.expect("send");
    let mut bytes = Vec::new();
    tokio::time::timeout(HANG_GUARD, socket.read_to_end(&mut bytes))
        .await
        .expect("the server ends the answer")
        .expect("read");
    parse_response(&bytes)
}

fn parse_response(bytes: &[u8]) -> RawResponse {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete head: {:?}", String::from_utf8_lossy(bytes)));
    let head = std::str::from_utf8(&bytes[..end]).expect("an ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("a header line");
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    let raw = &bytes[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(raw) } else { raw.to_vec() };
    RawResponse {
        status,
        headers,
        body,
    }
}

/// Decodes a chunked body (it must end with its last chunk).
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size line");
        let size_text = std::str::from_utf8(&raw[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size {size_text:?}"));
        raw = &raw[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&raw[..size]);
        assert_eq!(&raw[size..size + 2], b"\r\n", "a chunk ends with CRLF");
        raw = &raw[size + 2..];
    }
}

/// `POST path` with a bearer token, a JSON body, `extra` header lines and `Connection: close`.
fn post_request(path: &str, token: &str, extra: &[&str], body: &Value) -> Vec<u8> {
    let body = serde_json::to_vec(body).unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for line in extra {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(&body);
    request
}

/// The SSE events of an answer, checked as every test's streams are (`sse_events`).
fn sse_of(response: &RawResponse) -> Vec<Value> {
    sse_events(std::str::from_utf8(&response.body).expect("SSE is UTF-8"))
}

/// The events of an AG-UI protobuf answer, frame by frame, as JSON.
fn proto_of(response: &RawResponse) -> Vec<Value> {
    let mut events = Vec::new();
    let mut rest = &response.body[..];
    while !rest.is_empty() {
        let (event, used) = agui_protocol::proto::decode_frame(rest).expect("a whole frame");
        let event = agui_protocol::proto::from_pb(event).expect("an AG-UI event");
        events.push(serde_json::to_value(event).unwrap());
        rest = &rest[used..];
    }
    events
}

// ---------------------------------------------------------------------------------------------
// Defect 2: no config typo is silently ignored.

/// One row of `agui-server config-reference`: the key and what it says.
struct Row {
    key: String,
    meaning: String,
}

/// The generated configuration reference (the README's copy is checked against it elsewhere).
fn reference_rows() -> Vec<Row> {
    let output = Command::new(BIN)
        .arg("config-reference")
        .env_clear()
        .output()
        .unwrap();
    assert!(output.status.success(), "config-reference runs");
    let text = String::from_utf8(output.stdout).unwrap();
    let rows: Vec<Row> = text
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("| `")?;
            let (key, _) = rest.split_once('`')?;
            let meaning = line.trim_end_matches('|').rsplit(" | ").next()?.to_owned();
            Some(Row {
                key: key.to_owned(),
                meaning,
            })
        })
        .collect();
    assert!(rows.len() > 50, "the reference lists every key: {text}");
    rows
}

/// Every table a config file can hold, derived from the reference: the table of each key (its
/// path without the last segment; `""` is the top level), plus the tables the reference names
/// as `[table]` / `[[table]]` in a key's meaning (`[openai]`, `[limits.roles.<role>]`). Arrays
/// of tables end in `[]`; `<id>`-like segments are names the operator picks. Each comes with
/// its documented keys.
fn config_tables(rows: &[Row]) -> BTreeMap<String, BTreeSet<String>> {
    let mut tables: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in rows {
        let (table, key) = row.key.rsplit_once('.').unwrap_or(("", &row.key));
        tables
            .entry(table.to_owned())
            .or_default()
            .insert(key.to_owned());
        // `[name]` or `[[name]]` in backticks.
        for piece in row.meaning.split('`').skip(1).step_by(2) {
            let array = piece.starts_with("[[") && piece.ends_with("]]");
            let Some(name) = piece
                .strip_prefix('[')
                .and_then(|p| p.strip_suffix(']'))
                .map(|p| p.trim_start_matches('[').trim_end_matches(']'))
            else {
                continue;
            };
            if name == row.key || name.starts_with(&format!("{}.", row.key)) {
                let name = if array {
                    format!("{name}[]")
                } else {
                    name.to_owned()
                };
                tables.entry(name).or_default();
            }
        }
    }
    tables
}

/// What a table needs to be valid (its required keys); most need nothing.
fn required_body(table: &str) -> &'static str {
    match table {
        "auth.issuers[]" => "issuer = \"https://login.example.com\"\naudiences = [\"agui\"]\n",
        "auth.introspection[]" => {
            "issuer = \"https://introspect.example.com\"\nendpoint = \"https://introspect.example.com/introspect\"\nclient_id = \"agui\"\nclient_secret = \"hostile-suite-secret\"\naudiences = [\"agui\"]\ntoken_prefix = \"hs_\"\n"
        }
        "auth.api_keys[]" => {
            "hash = \"sha256:0000000000000000000000000000000000000000000000000000000000000000\"\nsubject = \"svc\"\n"
        }
        "auth.github" => {
            "client_id = \"Iv1.hostilesuite\"\nclient_secret = \"hostile-suite-secret\"\n"
        }
        "openai" => "model = \"m\"\nbase_url = \"http://127.0.0.1:9/v1\"\n",
        "limits.roles.<role>" => "burst = 3\n",
        "agents.<id>" => "description = \"A hostile-suite agent.\"\n",
        _ => "",
    }
}

/// `auth.issuers[].deny` → `[auth.issuers.deny]`, `auth.issuers[]` → `[[auth.issuers]]`,
/// `agents.<id>` → `[agents.support]`; `""` has no header.
fn header(table: &str) -> String {
    if table.is_empty() {
        return String::new();
    }
    let concrete = table
        .replace("<id>", "support")
        .replace("<role>", "admin")
        .replace("[]", "");
    if table.ends_with("[]") {
        format!("[[{concrete}]]\n")
    } else {
        format!("[{concrete}]\n")
    }
}

/// A config holding every table with its required keys, and `line` added to `target`.
fn config_with(tables: &BTreeMap<String, BTreeSet<String>>, target: &str, line: &str) -> String {
    // Sorted paths put every array element before its sub-tables, and the top level first.
    let mut text = String::new();
    for table in tables.keys() {
        text.push_str(&header(table));
        text.push_str(required_body(table));
        if table == target {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// The value at a reference path in `check-config`'s output (arrays: the first element).
fn lookup<'a>(table: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let concrete = path.replace("<id>", "support").replace("<role>", "admin");
    let mut value: Option<&toml::Value> = None;
    for part in concrete.split('.').filter(|p| !p.is_empty()) {
        let (name, array) = match part.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (part, false),
        };
        let next = match value {
            None => table.get(name)?,
            Some(v) => v.as_table()?.get(name)?,
        };
        value = Some(if array {
            next.as_array()?.first()?
        } else {
            next
        });
    }
    value
}

/// Runs the binary with `args` and no configuration from the environment; kills it if it is
/// still running after `HANG_GUARD` (a `serve` that did not refuse its config), returning None.
fn run_binary(args: &[&str]) -> Option<(i32, String, String)> {
    let mut child = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AGUI_LISTEN", "127.0.0.1:0")
        .env("AGUI_DATABASE_URL", "sqlite::memory:")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > HANG_GUARD {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().unwrap();
    Some((
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// Asserts `args` ends with exit 2 and a configuration error naming `typo` and every one of
/// `expected` (the keys serde lists).
fn assert_refused(args: &[&str], typo: &str, expected: &BTreeSet<String>, table: &str) {
    let (code, _, stderr) = run_binary(args)
        .unwrap_or_else(|| panic!("`{typo}` in [{table}]: `{}` kept running", args[0]));
    assert_eq!(
        code, 2,
        "`{typo}` in [{table}] accepted by {}: {stderr}",
        args[0]
    );
    assert!(
        stderr.contains("configuration error") && stderr.contains(&format!("`{typo}`")),
        "{}: the unknown key in [{table}] is named: {stderr}",
        args[0]
    );
    for key in expected {
        assert!(
            stderr.contains(&format!("`{key}`")),
            "{}: `{key}`, a key of [{table}], is among the expected ones: {stderr}",
            args[0]
        );
    }
}

/// Every table the reference documents refuses a misspelt key, by name and with the expected
/// ones, in `check-config` and in `serve`; the same file without it (the positive control)
/// passes `check-config` and every table shows up in the effective configuration (so each
/// typo sat in a table the server reads). The issue's own two typos are among the cases.
#[test]
fn a_typo_in_any_config_table_stops_check_config_and_serve_by_name() {
    let rows = reference_rows();
    let tables = config_tables(&rows);
    for must in [
        "",
        "auth.issuers[]",
        "auth.issuers[].deny",
        "auth.issuers[].allow",
        "auth.issuers[].claims",
        "openai",
        "limits.roles.<role>",
        "agents.<id>",
    ] {
        assert!(tables.contains_key(must), "[{must}] found in {tables:?}");
    }
    let dir = TempDir::new("hostile-config");

    // Positive control: every table, spelt right, is valid and read.
    let good = dir.write("good.toml", &config_with(&tables, "", ""));
    let good_arg = good.to_str().unwrap();
    let (code, stdout, stderr) = run_binary(&["check-config", "--config", good_arg]).unwrap();
    assert_eq!(code, 0, "the control config is valid: {stderr}");
    let effective: toml::Table = toml::from_str(
        &stdout
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .expect("check-config prints TOML");
    for table in tables.keys().filter(|t| !t.is_empty()) {
        assert!(
            lookup(&effective, table).is_some_and(toml::Value::is_table),
            "[{table}] is in the effective configuration:\n{stdout}"
        );
    }

    // The issue's typos, then a made-up near miss of a documented key in every table.
    let mut cases: Vec<(String, String, BTreeSet<String>)> = vec![
        (
            "auth.issuers[]".into(),
            "requierd_scopes".into(),
            ["required_scopes".to_owned()].into(),
        ),
        (
            "auth.issuers[].deny".into(),
            "subject".into(),
            ["subjects".to_owned()].into(),
        ),
    ];
    for (table, keys) in &tables {
        let near = keys
            .iter()
            .next()
            .cloned()
            .or_else(|| required_body(table).split(" = ").next().map(str::to_owned))
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| "enabled".into());
        // A table without documented keys of its own: its required key is an expected one.
        let expected = if keys.is_empty() {
            [near.clone()].into()
        } else {
            keys.clone()
        };
        cases.push((table.clone(), format!("{near}x"), expected));
    }
    for (table, typo, expected) in &cases {
        let path = dir.write(
            "typo.toml",
            &config_with(&tables, table, &format!("{typo} = 1")),
        );
        let arg = path.to_str().unwrap();
        assert_refused(&["check-config", "--config", arg], typo, expected, table);
        assert_refused(&["serve", "--config", arg], typo, expected, table);
    }
    assert!(cases.len() >= tables.len() + 2);
}

/// The policy the two typos would have dropped, through `serve` with a config file and a real
/// issuer: spelt right, a denied subject gets 403 `access_denied` and a token without the
/// required scope 403 `insufficient_scope`, while an ordinary token gets in (the control).
#[tokio::test]
async fn the_correctly_spelt_auth_policy_is_enforced_by_serve() {
    let idp = TestIdp::start().await;
    let dir = TempDir::new("hostile-policy");
    let config = format!(
        "[[auth.issuers]]\nissuer = \"{}\"\naudiences = [\"{AUDIENCE}\"]\nrequired_scopes = [\"chat\"]\n\
         [auth.issuers.deny]\nsubjects = [\"mallory\"]\n",
        idp.issuer_url()
    );
    let path = dir.write("policy.toml", &config);
    let server = Process::spawn(&[("AGUI_CONFIG", path.to_str().unwrap())]).await;
    let whoami = |token: String| {
        let url = format!("{}/whoami", server.url);
        async move {
            let response = reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = whoami(mint(&idp, "alice", AUDIENCE)).await;
    assert_eq!(status, StatusCode::OK, "the control gets in: {body}");
    let (status, body) = whoami(mint(&idp, "mallory", AUDIENCE)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "access_denied");
    let mut claims = idp.claims("bob");
    claims["aud"] = json!(AUDIENCE);
    claims.as_object_mut().unwrap().remove("scope");
    let (status, body) = whoami(idp.sign("rsa-1", &claims)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "insufficient_scope");
}

// ---------------------------------------------------------------------------------------------
// Defect 3: ids are bounded, checked before anything is stored or logged.

/// A body that would stream, with the id at `pointer` replaced by `id`.
fn ids_body(n: usize, pointer: &str, id: &str) -> Value {
    let mut body = json!({
        "threadId": format!("hostile_thread_{n}"),
        "runId": format!("hostile_run_{n}"),
        "protocolVersion": "1.0",
        "messages": [
            {"id": "u0", "role": "user", "content": "earlier"},
            {"id": "a1", "role": "assistant", "toolCalls": [
                {"id": "c1", "type": "function", "function": {"name": "whoami", "arguments": "{}"}}
            ]},
            {"id": "t1", "role": "tool", "toolCallId": "c1", "content": "ok"},
            {"id": "u1", "role": "user", "content": "hello"}
        ]
    });
    *body.pointer_mut(pointer).expect("a member of the body") = json!(id);
    body
}

async fn thread_ids(server: &Process, token: &str) -> Vec<String> {
    let response = reqwest::Client::new()
        .get(format!("{}/threads", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["thread_id"].as_str().unwrap().to_owned())
        .collect()
}

/// A 7 MiB `threadId`, a 257-byte `runId`, an empty `threadId`, control characters in a
/// message id, a tool call's id and a `toolCallId`: each 400 `invalid_input` with the member's
/// pointer; afterwards `/threads` is empty and nothing of any of them is in stderr. The control:
/// a 256-byte `threadId` streams, is stored, and is logged (so the absence is no accident).
#[tokio::test]
async fn hostile_ids_are_refused_before_anything_is_stored_or_logged() {
    let idp = TestIdp::start().await;
    let server = serve(&idp, &[]).await;
    let token = mint(&idp, "ids-hostile", AUDIENCE);
    const MARK: &str = "hostile-id-mark";
    let huge = format!("{MARK}{}", "Q".repeat(7 * 1024 * 1024));
    let over = format!(
        "{MARK}{}",
        "Q".repeat(agui_protocol::MAX_ID_BYTES + 1 - MARK.len())
    );
    assert_eq!(over.len(), 257);
    let cases: [(&str, String); 6] = [
        ("/threadId", huge),
        ("/runId", over),
        ("/threadId", String::new()),
        ("/messages/3/id", format!("{MARK}\u{1}")),
        ("/messages/1/toolCalls/0/id", format!("{MARK}\nINFO forged")),
        ("/messages/2/toolCallId", format!("{MARK}\u{1b}[2J")),
    ];
    let http = reqwest::Client::new();
    for (n, (pointer, id)) in cases.iter().enumerate() {
        let response = http
            .post(format!("{}/chat", server.url))
            .bearer_auth(&token)
            .json(&ids_body(n, pointer, id))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{pointer}");
        let error: Value = response.json().await.unwrap();
        assert_valid_error_body(&error);
        assert_eq!(error["error"], "invalid_input", "{pointer}: {error}");
        assert_eq!(error["field"], *pointer, "{error}");
        let message = error["message"].as_str().unwrap();
        assert!(!message.contains(MARK), "the id is not echoed: {message}");
    }
    assert_eq!(thread_ids(&server, &token).await, Vec::<String>::new());

    // The control: an id of exactly the limit streams, is stored whole and is logged.
    let at_limit = format!("accepted-id-mark{}", "k".repeat(256 - 16));
    assert_eq!(at_limit.len(), agui_protocol::MAX_ID_BYTES);
    let response = http
        .post(format!("{}/chat", server.url))
        .bearer_auth(&token)
        .json(&ids_body(99, "/threadId", &at_limit))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let events = sse_events(&response.text().await.unwrap());
    assert_eq!(terminal(&events)["type"], "RUN_FINISHED");
    assert_eq!(thread_ids(&server, &token).await, vec![at_limit.clone()]);
    // The log is written in order: once the control's line is there, any line about the
    // refused requests would be too.
    let lines = wait_for_stderr(&server, &at_limit).await;
    for line in &lines {
        assert!(
            !line.contains(MARK) && !line.contains("QQQQQQQQ"),
            "a refused id reached the log: {}",
            &line[..line.len().min(300)]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Defect 4: log injection in the text format.

/// Control characters in every client- or issuer-supplied string that can reach a log line: a
/// token's `sub` (accepted: it is the issuer's to choose), `threadId` and `runId` (refused
/// since defect 3), an agent id in a CopilotKit path, an `X-Request-Id` with a raw ESC (over a
/// raw socket). Afterwards no stderr line holds a raw control character (so no ANSI colour on a
/// pipe either), no forged text starts a line, and the accepted `sub` is in the run's line,
/// escaped (the control: the hostile value did reach the log).
#[tokio::test]
async fn hostile_strings_cannot_forge_log_lines_or_reach_the_terminal() {
    let idp = TestIdp::start().await;
    let server = serve(&idp, &[]).await;
    let http = reqwest::Client::new();
    let forged = |what: &str| format!("INFO agui_server: forged-{what}-line");

    // The issuer's `sub`: accepted, logged with the run.
    let sub = format!("mallory\n{}\r\u{1b}[2J\u{7}", forged("sub"));
    let token = mint(&idp, &sub, AUDIENCE);
    let events = sse_of(
        &exchange(
            server.addr,
            &post_request("/chat", &token, &[], &input("hi", Some("1.0"))),
        )
        .await,
    );
    assert_eq!(terminal(&events)["type"], "RUN_FINISHED");

    // Client ids: refused before they are logged.
    let plain = mint(&idp, "alice", AUDIENCE);
    for member in ["threadId", "runId"] {
        let mut body = input("hi", Some("1.0"));
        body[member] = json!(format!("x\n{}\u{1b}[2J", forged(member)));
        let response = http
            .post(format!("{}/chat", server.url))
            .bearer_auth(&plain)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{member}");
    }
    // An agent id in the path, percent-encoded newline and ESC.
    let response = http
        .post(format!(
            "{}/copilotkit/agent/x%0AINFO%20agui_server:%20forged-agent-line%1B%5B2J/run",
            server.url
        ))
        .bearer_auth(&plain)
        .json(&input("hi", Some("1.0")))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
    // A raw ESC in a header value: refused or ignored, never written.
    let response = exchange(
        server.addr,
        &post_request(
            "/chat",
            &plain,
            &["X-Request-Id: rid\u{1b}[2Jforged-request-id"],
            &input("hi", Some("1.0")),
        ),
    )
    .await;
    assert!([200, 400].contains(&response.status), "{}", response.status);

    // A last ordinary run, so everything before it has been written.
    let events = sse_of(
        &exchange(
            server.addr,
            &post_request("/chat", &plain, &[], &input("log-barrier", Some("1.0"))),
        )
        .await,
    );
    assert_eq!(terminal(&events)["type"], "RUN_FINISHED");
    let barrier = events[0]["threadId"].as_str().unwrap().to_owned();
    let lines = wait_for_stderr(&server, &format!("thread_id={barrier} ")).await;

    for line in &lines {
        assert!(
            !line
                .chars()
                .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'),
            "a raw control character (or colour code) on stderr: {line:?}"
        );
        assert!(
            !line.contains("forged-threadId")
                && !line.contains("forged-runId")
                && !line.contains("forged-request-id"),
            "a refused value was logged: {line:?}"
        );
        for what in ["sub", "agent", "threadId", "runId"] {
            assert!(
                !line.trim_start().starts_with(&forged(what)),
                "a forged line: {line:?}"
            );
        }
        if line.contains("forged-agent-line") {
            assert!(
                line.contains(r"\nINFO agui_server: forged-agent-line"),
                "{line:?}"
            );
        }
    }
    let run_line = lines
        .iter()
        .find(|l| l.contains("run started") && l.contains("forged-sub-line"))
        .unwrap_or_else(|| panic!("the hostile sub's run is logged: {lines:#?}"));
    assert!(
        run_line.contains(&format!(
            r"sub=mallory\n{}\r\u{{1b}}[2J\u{{7}}",
            forged("sub")
        )),
        "the sub is written escaped: {run_line:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("INFO")),
        "the level is written (where colour would be)"
    );
}

/// The control for "no colour on a pipe" above: the same binary with a terminal as stderr
/// (util-linux `script` gives it a pty) colours its lines, and with `NO_COLOR` set it does not.
/// Skipped, with the reason, where `script` is missing.
#[tokio::test]
async fn colour_codes_only_on_a_terminal_without_no_color() {
    use std::io::{BufRead, BufReader};

    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux `script` (to give the server a terminal) is not installed");
        return;
    }
    let idp = TestIdp::start().await;
    for (no_color, want_colour) in [(None, true), (Some("1"), false)] {
        let mut command = Command::new("script");
        command
            .args(["-qfec", &format!("exec '{BIN}' serve"), "/dev/null"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("TERM", "xterm")
            .env("AGUI_OIDC_ISSUER", idp.issuer_url())
            .env("AGUI_OIDC_AUDIENCE", AUDIENCE)
            .env("AGUI_LISTEN", "127.0.0.1:0")
            .env("AGUI_DATABASE_URL", "sqlite::memory:")
            .env("AGUI_LOG", "info")
            .env("AGUI_LOG_FORMAT", "text")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        let mut child = command.spawn().expect("script starts");
        let stdin = child.stdin.take();
        let output = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(output).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            loop {
                let left = HANG_GUARD.saturating_sub(start.elapsed());
                match rx.recv_timeout(left) {
                    Ok(line) if line.contains("listening on") => return Some(line),
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
        })
        .await
        .unwrap();
        // `script` runs the server in a session of its own (which ignores the SIGHUP of the
        // terminal closing: SIGHUP reloads its API keys), so the server is ended by its pid,
        // then `script` (it exits with its child).
        let script = child.id();
        let children = std::fs::read_to_string(format!("/proc/{script}/task/{script}/children"))
            .unwrap_or_default();
        for pid in children
            .split_whitespace()
            .chain([script.to_string().as_str()])
        {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
        drop(stdin);
        let _ = child.wait();
        let line = line.expect("the server listens under `script`");
        assert_eq!(
            line.contains("\u{1b}["),
            want_colour,
            "NO_COLOR={no_color:?} on a terminal: {line:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Defect 7: `Accept` quality values.

/// Over a raw socket: the higher `q` wins, a tie goes to SSE, a bare `*/*` (and no `Accept`)
/// gets SSE; naming protobuf alone gets protobuf (the control that it is reachable). Each
/// answer is read to its end and decoded in the encoding its `Content-Type` says.
#[tokio::test]
async fn accept_quality_values_choose_the_encoding_over_raw_http() {
    let idp = TestIdp::start().await;
    let server = serve(&idp, &[]).await;
    let token = mint(&idp, "accept", AUDIENCE);
    const SSE: &str = "text/event-stream";
    const PROTO: &str = "application/vnd.ag-ui.event+proto";
    let cases: &[(Option<&str>, &str)] = &[
        (
            Some("text/event-stream;q=1, application/vnd.ag-ui.event+proto;q=0.5"),
            SSE,
        ),
        (
            Some("application/vnd.ag-ui.event+proto;q=0.5, text/event-stream;q=1"),
            SSE,
        ),
        (
            Some("application/vnd.ag-ui.event+proto;q=1, text/event-stream;q=0.5"),
            PROTO,
        ),
        (
            Some("text/event-stream;q=0.5, application/vnd.ag-ui.event+proto;q=1"),
            PROTO,
        ),
        (
            Some("application/vnd.ag-ui.event+proto;q=0.5, text/event-stream;q=0.5"),
            SSE,
        ),
        (
            Some("application/vnd.ag-ui.event+proto, text/event-stream"),
            SSE,
        ),
        (Some("*/*"), SSE),
        (None, SSE),
        (Some(PROTO), PROTO),
    ];
    for (accept, want) in cases {
        let header = accept.map(|a| format!("Accept: {a}"));
        let extra: Vec<&str> = header.iter().map(String::as_str).collect();
        let response = exchange(
            server.addr,
            &post_request("/chat", &token, &extra, &input("hi", Some("1.0"))),
        )
        .await;
        assert_eq!(response.status, 200, "{accept:?}");
        let content_type = response.header("content-type").unwrap_or_default();
        assert_eq!(content_type, *want, "Accept: {accept:?}");
        let events = if *want == SSE {
            sse_of(&response)
        } else {
            proto_of(&response)
        };
        assert_eq!(events[0]["type"], "RUN_STARTED", "{accept:?}");
        assert_eq!(
            events.last().unwrap()["type"],
            "RUN_FINISHED",
            "{accept:?}: the whole stream"
        );
    }
}

/// RFC 9110 §5.3: a request's `Accept` fields count together, as the one field their values
/// make joined with commas. Two fields with protobuf preferred in the second get protobuf, on
/// `/chat` and on the CopilotKit `connect` replay of the same thread; the controls: the same
/// two fields preferring SSE get SSE, and the joined single field agrees with the split one.
#[tokio::test]
async fn every_accept_field_counts_on_chat_and_connect() {
    let idp = TestIdp::start().await;
    let server = serve(&idp, &[]).await;
    let token = mint(&idp, "accept-fields", AUDIENCE);
    const SSE: &str = "text/event-stream";
    const PROTO: &str = "application/vnd.ag-ui.event+proto";
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "Accept: text/event-stream;q=0.5",
                "Accept: application/vnd.ag-ui.event+proto",
            ],
            PROTO,
        ),
        (
            &[
                "Accept: application/vnd.ag-ui.event+proto;q=0.5",
                "Accept: text/event-stream",
            ],
            SSE,
        ),
        (
            &["Accept: text/event-stream;q=0.5, application/vnd.ag-ui.event+proto"],
            PROTO,
        ),
    ];
    let decode = |response: &RawResponse, want: &str| {
        if want == SSE {
            sse_of(response)
        } else {
            proto_of(response)
        }
    };
    for (fields, want) in cases {
        let run = input("hi", Some("1.0"));
        let response = exchange(server.addr, &post_request("/chat", &token, fields, &run)).await;
        assert_eq!(response.status, 200, "{fields:?}");
        assert_eq!(
            response.header("content-type"),
            Some(want),
            "/chat {fields:?}"
        );
        let events = decode(&response, want);
        assert_eq!(events[0]["type"], "RUN_STARTED", "{fields:?}");
        assert_eq!(events.last().unwrap()["type"], "RUN_FINISHED", "{fields:?}");

        let mut connect = run.clone();
        connect["runId"] = json!(format!("{}-connect", run["runId"].as_str().unwrap()));
        connect["messages"] = json!([]);
        let path = "/copilotkit/agent/default/connect";
        let response = exchange(server.addr, &post_request(path, &token, fields, &connect)).await;
        assert_eq!(response.status, 200, "connect {fields:?}");
        assert_eq!(
            response.header("content-type"),
            Some(want),
            "connect {fields:?}"
        );
        let replayed = decode(&response, want);
        assert!(
            replayed.iter().any(|e| e["type"] == "RUN_STARTED"),
            "connect {fields:?} replays the run in that encoding: {replayed:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Defect 9: `protocolVersion` by its semver major.

/// Over HTTP: `"1.9"`, `"1"` and `"1.0.0-rc1"` get the 1.0 dialect (`protocolVersion` on
/// `RUN_STARTED`), `"0.0.59"` the 0.0.x one (none), `"2.0"` and `"1.0-beta"` (a pre-release
/// without all three numbers) 400 `unsupported_protocol_version`, as the README says.
#[tokio::test]
async fn protocol_version_follows_its_semver_major_over_http() {
    let idp = TestIdp::start().await;
    let server = serve(&idp, &[]).await;
    let token = mint(&idp, "versions", AUDIENCE);
    for version in ["1.9", "1", "1.0.0-rc1"] {
        let response = exchange(
            server.addr,
            &post_request("/chat", &token, &[], &input("hi", Some(version))),
        )
        .await;
        assert_eq!(response.status, 200, "{version}");
        let events = sse_of(&response);
        assert_eq!(
            events[0]["protocolVersion"], "1.0",
            "{version}: the 1.0 dialect"
        );
        assert_eq!(terminal(&events)["type"], "RUN_FINISHED");
    }
    let response = exchange(
        server.addr,
        &post_request("/chat", &token, &[], &input("hi", Some("0.0.59"))),
    )
    .await;
    assert_eq!(response.status, 200);
    let events = sse_of(&response);
    assert!(
        events[0].get("protocolVersion").is_none(),
        "0.0.59: the 0.0.x dialect"
    );
    for version in ["2.0", "1.0-beta"] {
        let response = exchange(
            server.addr,
            &post_request("/chat", &token, &[], &input("hi", Some(version))),
        )
        .await;
        assert_eq!(response.status, 400, "{version}");
        assert!(
            response
                .header("content-type")
                .is_some_and(|t| t.starts_with("application/json")),
            "{version}"
        );
        let error: Value = serde_json::from_slice(&response.body).unwrap();
        assert_valid_error_body(&error);
        assert_eq!(error["error"], "unsupported_protocol_version", "{version}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("AG-UI 1.x"), "{message}");
        assert!(
            !message.contains(version),
            "the version is not echoed: {message}"
        );
    }
}

/// The helpers' own control: a chunked body decodes, and a path with no such member panics
/// rather than passing silently.
#[test]
fn raw_http_helpers_decode_what_they_are_given() {
    let response = parse_response(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("text/plain"));
    assert_eq!(response.body, b"abcde");
    assert!(std::panic::catch_unwind(|| ids_body(0, "/nope/0", "x")).is_err());
}

// ---------------------------------------------------------------------------------------------
// An operator's log: a clean run is not reported as a failure.

/// A run that streams to its end and whose history is written logs nothing at WARN or ERROR
/// (an ERROR after every run once claimed "the end of the run's history could not be written"
/// when the write had worked). SIGTERM then waits for the run's history to be finished, so by
/// the exit every line about the run has been written. The control: the run's own lines are
/// there.
#[tokio::test]
async fn a_clean_run_logs_no_warning_or_error() {
    let idp = TestIdp::start().await;
    let server = serve(&idp, &[]).await;
    let token = mint(&idp, "clean-log", AUDIENCE);
    let response = reqwest::Client::new()
        .post(format!("{}/chat", server.url))
        .bearer_auth(&token)
        .json(&input("/stream 20", Some("1.0")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let events = sse_events(&response.text().await.unwrap());
    assert_eq!(terminal(&events)["type"], "RUN_FINISHED");
    server.signal("-TERM");
    let (exit, lines) = tokio::time::timeout(HANG_GUARD, server.wait_with_stderr())
        .await
        .expect("the server exits");
    assert!(exit.success(), "{exit:?}");
    assert!(
        lines.iter().any(|line| line.contains("run ended")),
        "the run's lines are logged: {lines:#?}"
    );
    let loud: Vec<&String> = lines
        .iter()
        .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
        .collect();
    assert!(loud.is_empty(), "a clean run logged: {loud:#?}");
}
