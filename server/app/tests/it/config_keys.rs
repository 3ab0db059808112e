//! No config typo is silently ignored (issue #12, defect 2): through the real binary, a misspelt
//! key in every table the TOML reaches makes `check-config` and `serve` exit 2 with a message
//! on stderr that names the key and the expected ones; the correctly spelt key (the positive
//! control) passes `check-config` and shows up in the effective configuration it prints.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_agui-server");

const ISSUER: &str =
    "[[auth.issuers]]\nissuer = \"https://login.example.com\"\naudiences = [\"agui\"]\n";

/// One table: a snippet with a typo, the same snippet spelt right, and where its value lands.
struct Case {
    /// The misspelt key.
    typo: &'static str,
    /// A correct key serde lists among the expected ones.
    expected: &'static str,
    /// TOML with the typo (`{}` marks where the correct spelling goes in `text`).
    text: &'static str,
    /// Dotted path (array index as a number) of the value in `check-config`'s output.
    path: &'static str,
    /// The value there, as TOML.
    value: &'static str,
    /// Whether the snippet extends the issuer (so it must come after it).
    after_issuer: bool,
}

const CASES: &[Case] = &[
    Case {
        typo: "backlogg",
        expected: "backlog",
        text: "{} = 77\n",
        path: "backlog",
        value: "77",
        after_issuer: false,
    },
    Case {
        typo: "scripted_delay",
        expected: "scripted_delay_ms",
        text: "[model]\n{} = 5\n",
        path: "model.scripted_delay_ms",
        value: "5",
        after_issuer: false,
    },
    Case {
        typo: "max_body",
        expected: "max_body_bytes",
        text: "[limits]\n{} = 4096\n",
        path: "limits.max_body_bytes",
        value: "4096",
        after_issuer: false,
    },
    Case {
        typo: "burts",
        expected: "burst",
        text: "[limits.roles.admin]\n{} = 3\n",
        path: "limits.roles.admin.burst",
        value: "3",
        after_issuer: false,
    },
    Case {
        typo: "database",
        expected: "database_url",
        text: "[store]\n{} = \"sqlite::memory:\"\n",
        path: "store.database_url",
        value: "\"sqlite::memory:\"",
        after_issuer: false,
    },
    Case {
        typo: "retention",
        expected: "retention_days",
        text: "[audit]\n{} = 3\n",
        path: "audit.retention_days",
        value: "3",
        after_issuer: false,
    },
    Case {
        typo: "system_promt",
        expected: "system_prompt",
        text: "[agents.support]\n{} = \"You help.\"\n",
        path: "agents.support.system_prompt",
        value: "\"You help.\"",
        after_issuer: false,
    },
    Case {
        typo: "base_ur",
        expected: "base_url",
        text: "[openai]\nmodel = \"m\"\n{} = \"http://127.0.0.1:9/v1\"\n",
        path: "openai.base_url",
        value: "\"http://127.0.0.1:9/v1\"",
        after_issuer: false,
    },
    Case {
        typo: "leeway",
        expected: "leeway_secs",
        text: "[auth]\n{} = 5\n",
        path: "auth.leeway_secs",
        value: "5",
        after_issuer: false,
    },
    Case {
        typo: "requierd_scopes",
        expected: "required_scopes",
        text: "{} = [\"chat\"]\n",
        path: "auth.issuers.0.required_scopes",
        value: "[\"chat\"]",
        after_issuer: true,
    },
    Case {
        typo: "subject",
        expected: "subjects",
        text: "[auth.issuers.deny]\n{} = [\"mallory\"]\n",
        path: "auth.issuers.0.deny.subjects",
        value: "[\"mallory\"]",
        after_issuer: true,
    },
    Case {
        typo: "email_domain",
        expected: "email_domains",
        text: "[auth.issuers.allow]\n{} = [\"example.com\"]\n",
        path: "auth.issuers.0.allow.email_domains",
        value: "[\"example.com\"]",
        after_issuer: true,
    },
    Case {
        typo: "role",
        expected: "roles",
        text: "[auth.issuers.claims]\n{} = \"/groups\"\n",
        path: "auth.issuers.0.claims.roles",
        value: "[\"/groups\"]",
        after_issuer: true,
    },
];

fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(BIN)
        .args(args)
        .env_remove("AGUI_OIDC_ISSUER")
        .env_remove("AGUI_CONFIG")
        .env("AGUI_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn write_config(dir: &Path, name: &str, case: &Case, key: &str) -> PathBuf {
    let snippet = case.text.replace("{}", key);
    let text = if case.after_issuer {
        format!("{ISSUER}{snippet}")
    } else {
        format!("{snippet}{ISSUER}")
    };
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The value at a dotted path of a TOML document (numbers index arrays).
fn lookup<'a>(table: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut parts = path.split('.');
    let mut value = table.get(parts.next()?)?;
    for part in parts {
        value = match part.parse::<usize>() {
            Ok(index) => value.as_array()?.get(index)?,
            Err(_) => value.as_table()?.get(part)?,
        };
    }
    Some(value)
}

#[test]
fn a_typo_in_any_config_table_fails_check_config_by_name() {
    let dir = std::env::temp_dir().join(format!("agui-config-keys-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    for case in CASES {
        let typo = write_config(&dir, "typo.toml", case, case.typo);
        let (code, _, stderr) = run(&["check-config", "--config", typo.to_str().unwrap()]);
        assert_eq!(code, 2, "`{}` was accepted: {stderr}", case.typo);
        assert!(
            stderr.contains(&format!("unknown field `{}`", case.typo)),
            "the unknown key is named: {stderr}"
        );
        assert!(
            stderr.contains(&format!("`{}`", case.expected)),
            "the expected keys are listed: {stderr}"
        );

        // Positive control: the right spelling passes and takes effect.
        let good = write_config(&dir, "good.toml", case, case.expected);
        let (code, stdout, stderr) = run(&["check-config", "--config", good.to_str().unwrap()]);
        assert_eq!(code, 0, "`{}` was refused: {stderr}", case.expected);
        let effective: toml::Table = toml::from_str(&stdout).expect("check-config prints TOML");
        let want: toml::Value = toml::from_str::<toml::Table>(&format!("v = {}", case.value))
            .unwrap()
            .remove("v")
            .unwrap();
        assert_eq!(
            lookup(&effective, case.path),
            Some(&want),
            "{} in:\n{stdout}",
            case.path
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn serve_refuses_a_typo_in_the_auth_config() {
    let dir = std::env::temp_dir().join(format!("agui-config-keys-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let deny = CASES.iter().find(|c| c.typo == "subject").unwrap();
    let typo = write_config(&dir, "typo.toml", deny, deny.typo);
    let (code, _, stderr) = run(&["serve", "--config", typo.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("configuration error") && stderr.contains("unknown field `subject`"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
