//! `agui-server apikey new`: a key for a service or a script, printed once, and the
//! `[[auth.api_keys]]` entry (its SHA-256 only) to add to the config. Also the key list that
//! `check-config` prints: subject, key id (8 hex digits of the hash) and expiry, never the hash.

use std::process::ExitCode;

use agui_auth::{ApiKeyConfig, AuthConfig};
use clap::{Args, Subcommand};

use crate::config::Config;

/// `apikey`: API keys for services and scripts.
#[derive(Debug, Clone, Args)]
pub struct ApikeyCommand {
    /// What to do.
    #[command(subcommand)]
    pub action: ApikeyAction,
}

/// The `apikey` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum ApikeyAction {
    /// Generate a key: prints it once, then the `[[auth.api_keys]]` entry to add (only its hash).
    New(ApikeyNewArgs),
}

/// Settings of a new key.
#[derive(Debug, Clone, Args)]
pub struct ApikeyNewArgs {
    /// The subject of the key's principal (e.g. `reports-bot`).
    #[arg(long)]
    pub subject: String,
    /// A label for people.
    #[arg(long)]
    pub name: Option<String>,
    /// Roles, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub roles: Vec<String>,
    /// Scopes, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub scopes: Vec<String>,
    /// When the key stops working: an age (`90d`, `12h`, `30m`) or an RFC 3339 time. Default: never.
    #[arg(long)]
    pub expires: Option<String>,
}

/// Runs `apikey …`.
pub fn run(command: &ApikeyCommand) -> ExitCode {
    match &command.action {
        ApikeyAction::New(args) => match new_key(args, now()) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("agui-server apikey new: {message}");
                ExitCode::from(2)
            }
        },
    }
}

fn now() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
}

/// The text `apikey new` prints: the key, then the entry.
fn new_key(args: &ApikeyNewArgs, now: i64) -> Result<String, String> {
    let expires = args
        .expires
        .as_deref()
        .map(|e| expiry(e, now))
        .transpose()?;
    let new = agui_auth::api_keys::generate();
    let entry = ApiKeyConfig {
        hash: new.hash.clone(),
        subject: args.subject.clone(),
        name: args.name.clone(),
        roles: args.roles.clone(),
        scopes: args.scopes.clone(),
        expires: expires.clone(),
    };
    // The same checks the server makes at start-up, so the printed entry always loads.
    AuthConfig {
        api_keys: vec![entry],
        ..AuthConfig::default()
    }
    .validate()
    .map_err(|e| e.to_string())?;
    // Serialized from a struct (not a map) so the entry reads in this order, hash first.
    #[derive(serde::Serialize)]
    struct Entry<'a> {
        hash: &'a str,
        subject: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<&'a str>,
        roles: &'a [String],
        scopes: &'a [String],
        #[serde(skip_serializing_if = "Option::is_none")]
        expires: Option<&'a str>,
    }
    #[derive(serde::Serialize)]
    struct Auth<'a> {
        api_keys: [Entry<'a>; 1],
    }
    #[derive(serde::Serialize)]
    struct Root<'a> {
        auth: Auth<'a>,
    }
    let root = Root {
        auth: Auth {
            api_keys: [Entry {
                hash: new.hash.expose(),
                subject: &args.subject,
                name: args.name.as_deref(),
                roles: &args.roles,
                scopes: &args.scopes,
                expires: expires.as_deref(),
            }],
        },
    };
    let entry = toml::to_string(&root).map_err(|e| e.to_string())?;
    Ok(format!(
        "# API key for {subject} (shown once: agui-server keeps only its hash; send it as `Authorization: Bearer <key>`):\n{key}\n\n# Add this to the config file, then reload the keys with SIGHUP (kill -HUP <pid>) or restart:\n{entry}",
        subject = args.subject,
        key = new.key.expose(),
    ))
}

/// `90d`, `12h`, `30m` from `now`, or an RFC 3339 time (kept as given); never in the past.
fn expiry(text: &str, now: i64) -> Result<String, String> {
    let unit = match text.chars().last() {
        Some('d') => Some(86_400),
        Some('h') => Some(3_600),
        Some('m') => Some(60),
        _ => None,
    };
    let relative = unit.and_then(|unit| {
        text[..text.len() - 1]
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=36_500 * 86_400 / unit).contains(n))
            .map(|n| now + n * unit)
    });
    let at = match relative {
        Some(at) => at,
        None => agui_auth::rfc3339::parse(text).map_err(|_| {
            format!("--expires {text:?}: use an age such as 90d, 12h or 30m, or an RFC 3339 time")
        })?,
    };
    if at <= now {
        return Err(format!("--expires {text:?} is in the past"));
    }
    Ok(if relative.is_some() {
        agui_auth::rfc3339::format(at)
    } else {
        text.to_owned()
    })
}

/// Comment lines for `check-config`: every key by subject, key id and expiry.
pub fn describe(config: &Config) -> String {
    let keys = &config.auth.api_keys;
    if keys.is_empty() {
        return String::new();
    }
    let now = now();
    let mut out = format!(
        "# API keys ({}), by subject; the key id is the first 8 hex digits of its hash:\n",
        keys.len()
    );
    for key in keys {
        let expiry = match key.expires_unix() {
            Ok(None) => "never expires".to_owned(),
            Ok(Some(at)) if at <= now => format!("EXPIRED {}", agui_auth::rfc3339::format(at)),
            Ok(Some(at)) => format!("expires {}", agui_auth::rfc3339::format(at)),
            Err(_) => "bad expiry".to_owned(),
        };
        out.push_str(&format!(
            "#   {subject}  key {id}  {expiry}{name}\n",
            subject = key.subject,
            id = key.hash.key_id(),
            name = key
                .name
                .as_deref()
                .map(|n| format!("  ({n})"))
                .unwrap_or_default(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(expires: Option<&str>) -> ApikeyNewArgs {
        ApikeyNewArgs {
            subject: "reports-bot".into(),
            name: Some("nightly \"reports\"".into()),
            roles: vec!["reports".into()],
            scopes: vec![],
            expires: expires.map(String::from),
        }
    }

    #[test]
    fn the_printed_entry_loads_and_accepts_the_printed_key() {
        let now = 1_800_000_000;
        let text = new_key(&args(Some("90d")), now).unwrap();
        let key = text.lines().nth(1).unwrap();
        assert!(key.starts_with("agui_") && key.len() == 48, "{key}");
        let entry = &text[text.find("[[auth.api_keys]]").unwrap()..];
        assert!(
            entry.starts_with("[[auth.api_keys]]\nhash = \"sha256:"),
            "{entry}"
        );
        assert!(!entry.contains(key), "the entry holds only the hash");
        let config: Config = toml::from_str(entry).expect("the entry is valid config");
        let loaded = &config.auth.api_keys[0];
        assert_eq!(loaded.subject, "reports-bot");
        assert_eq!(loaded.name.as_deref(), Some("nightly \"reports\""));
        assert_eq!(loaded.expires_unix(), Ok(Some(now + 90 * 86_400)));
        let digest = sha2::Sha256::digest(key.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(loaded.hash.expose(), format!("sha256:{hex}"));
    }

    #[test]
    fn expiries_are_ages_or_times_and_never_past() {
        let now = 1_800_000_000;
        assert_eq!(
            expiry("12h", now),
            Ok(agui_auth::rfc3339::format(now + 43_200))
        );
        assert_eq!(
            expiry("2030-01-01T00:00:00Z", now),
            Ok("2030-01-01T00:00:00Z".into())
        );
        assert!(
            expiry("2020-01-01T00:00:00Z", now)
                .unwrap_err()
                .contains("past")
        );
        assert!(expiry("soon", now).is_err());
        assert!(expiry("0d", now).is_err());
        assert!(
            new_key(
                &ApikeyNewArgs {
                    subject: " ".into(),
                    ..args(None)
                },
                now
            )
            .is_err()
        );
    }

    #[test]
    fn check_config_lists_keys_without_their_hashes() {
        let new = agui_auth::api_keys::generate();
        let mut config = Config::default();
        config.auth.api_keys = vec![ApiKeyConfig {
            hash: new.hash.clone(),
            subject: "ops-cron".into(),
            name: None,
            roles: vec![],
            scopes: vec![],
            expires: Some("2001-09-09T01:46:40Z".into()),
        }];
        let listed = describe(&config);
        assert!(
            listed.contains("ops-cron")
                && listed.contains(new.hash.key_id())
                && listed.contains("EXPIRED")
        );
        let full = new.hash.expose().trim_start_matches("sha256:");
        assert!(!listed.contains(full));
        assert!(
            !config.to_masked_toml().contains(full),
            "the effective config masks it too"
        );
    }

    use sha2::Digest;
}
