//! API keys end to end with the real binary: `apikey new` prints a key and an entry that loads;
//! the key runs; a wrong key is 401; `check-config` lists keys without their hashes; SIGHUP swaps
//! the table (a removed key is 401, an added one works, a broken file keeps the old table); and
//! no key is ever in the logs or the store (positive control: their fingerprints are).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_agui-server");

/// `apikey new` for `subject`: (the key, the TOML entry).
fn new_key(subject: &str) -> (String, String) {
    let output = Command::new(BIN)
        .args([
            "apikey",
            "new",
            "--subject",
            subject,
            "--roles",
            "reports",
            "--expires",
            "90d",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let key = text
        .lines()
        .find(|l| l.starts_with("agui_"))
        .expect("the key line")
        .to_owned();
    let entry = text[text.find("[[auth.api_keys]]").expect("the entry")..].to_owned();
    assert!(!entry.contains(&key), "the entry holds only the hash");
    (key, entry)
}

struct Running {
    child: std::process::Child,
    url: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn start(config: &std::path::Path, database: &str) -> Running {
        let mut child = Command::new(BIN)
            .args(["serve", "--config", config.to_str().unwrap()])
            .env_remove("AGUI_OIDC_ISSUER")
            .env("AGUI_LISTEN", "127.0.0.1:0")
            .env("AGUI_DATABASE_URL", database)
            .env("AGUI_LOG", "debug")
            .env("AGUI_LOG_FORMAT", "text")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("listening on http://") {
                    let _ = url_tx.send(line[at + "listening on ".len()..].trim().to_owned());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let url = url_rx.recv_timeout(HANG_GUARD).expect("the server listens");
        Running { child, url, logs }
    }

    fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    async fn wait_for_log(&self, needle: &str, after: usize) {
        for _ in 0..300 {
            if self.logs().iter().skip(after).any(|l| l.contains(needle)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no log line with {needle:?}: {:#?}", self.logs());
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    async fn whoami(&self, key: &str) -> (u16, Value) {
        let response = reqwest::Client::new()
            .get(format!("{}/whoami", self.url))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn keys_run_reload_on_sighup_and_never_reach_logs_or_the_store() {
    let dir = std::env::temp_dir().join(format!("agui-apikeys-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let database = format!("sqlite://{}?mode=rwc", dir.join("agui.db").display());
    let config = dir.join("agui.toml");
    let (first, first_entry) = new_key("reports-bot");
    let (second, second_entry) = new_key("ops-cron");
    std::fs::write(&config, &first_entry).unwrap();

    // check-config lists the key by subject and key id, never the hash or the key.
    let checked = Command::new(BIN)
        .args(["check-config", "--config", config.to_str().unwrap()])
        .env_remove("AGUI_OIDC_ISSUER")
        .output()
        .unwrap();
    let listing = String::from_utf8(checked.stdout).unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let parsed: agui_server::Config = toml::from_str(&first_entry).unwrap();
    let hash = parsed.auth.api_keys[0]
        .hash
        .expose()
        .trim_start_matches("sha256:")
        .to_owned();
    assert_eq!(hash.len(), 64);
    assert!(
        listing.contains("reports-bot") && listing.contains(&hash[..8]),
        "{listing}"
    );
    assert!(
        !listing.contains(&hash) && !listing.contains(&first),
        "{listing}"
    );

    let server = Running::start(&config, &database);
    let (status, me) = server.whoami(&first).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        (me["issuer"].as_str(), me["subject"].as_str()),
        (Some("agui:api-key"), Some("reports-bot"))
    );
    assert_eq!(me["roles"], serde_json::json!(["reports"]));
    let response = reqwest::Client::new()
        .post(format!("{}/chat", server.url))
        .bearer_auth(&first)
        .json(&input("hello", Some("1.0")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let events = sse_events(&response.text().await.unwrap());
    assert_eq!(terminal(&events)["type"], "RUN_FINISHED");
    assert_eq!(server.whoami(&second).await.0, 401, "not configured yet");

    // SIGHUP with the first key removed and the second added.
    std::fs::write(&config, &second_entry).unwrap();
    let seen = server.logs().len();
    server.signal("-HUP");
    server.wait_for_log("API keys reloaded", seen).await;
    assert_eq!(
        server.whoami(&first).await.0,
        401,
        "the removed key is refused"
    );
    assert_eq!(server.whoami(&second).await.0, 200, "the added key works");

    // A broken file changes nothing.
    std::fs::write(
        &config,
        "[[auth.api_keys]]\nhash = \"sha256:nothex\"\nsubject = \"x\"\n",
    )
    .unwrap();
    let seen = server.logs().len();
    server.signal("-HUP");
    server.wait_for_log("keeping the previous", seen).await;
    assert_eq!(server.whoami(&second).await.0, 200);

    server.signal("-TERM");
    let mut child = server.child;
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");

    let logs = server.logs.lock().unwrap().join("\n");
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("agui.db")
        {
            stored.extend(std::fs::read(&path).unwrap());
        }
    }
    let stored = String::from_utf8_lossy(&stored);
    for key in [&first, &second] {
        assert!(!logs.contains(key.as_str()), "a key is in the logs");
        assert!(!stored.contains(key.as_str()), "a key is in the store");
        // Positive control: what is recorded is the fingerprint.
        let fingerprint = agui_auth::token_fingerprint(key);
        assert!(
            logs.contains(&fingerprint),
            "the logs name the key by its fingerprint"
        );
    }
    assert!(
        stored.contains("reports-bot") && stored.contains(&agui_auth::token_fingerprint(&first))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
