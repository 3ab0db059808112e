//! The configuration reference, generated from the config types.
//!
//! Every key comes from serializing the defaults (so a new field appears by itself), its
//! description from [`DESCRIPTIONS`], its environment variable and flag from the clap definition
//! of [`Overrides`](crate::cli::Overrides). Tests fail when a key has no description, a
//! description names no key, or the README's copy differs from this output.

use clap::CommandFactory;
use serde_json::Value;

use crate::cli::Cli;
use crate::config::Config;

/// One line per TOML key: what it does. `auth.issuers[].x` are the fields of each issuer.
pub const DESCRIPTIONS: &[(&str, &str)] = &[
    ("listen", "Address to listen on."),
    (
        "backlog",
        "TCP listen backlog (`TcpListener::bind` would give 128).",
    ),
    (
        "shutdown_deadline_secs",
        "On SIGTERM/SIGINT, how long open streams get to end (each gets `RUN_ERROR server_shutdown`).",
    ),
    (
        "shutdown_grace_secs",
        "On SIGTERM/SIGINT, how long idle kept-alive connections stay open (at most the deadline) so a request already sent gets 503 `shutting_down` + `Connection: close` instead of a closed connection; ends early once clients have closed them.",
    ),
    (
        "keepalive_secs",
        "Seconds of silence before an SSE `: keepalive` comment (0 = never). Never sent on protobuf streams.",
    ),
    (
        "cors_origins",
        "Browser origins allowed to call the server directly (exact match, never `*`). Empty: CORS off.",
    ),
    ("log_format", "`text` or `json` (one object per line)."),
    (
        "log",
        "Log filter in `RUST_LOG` syntax, e.g. `info,agui_auth=debug`.",
    ),
    (
        "model.kind",
        "`scripted` (offline, deterministic) or `openai` (any OpenAI-compatible endpoint: OpenAI, Azure OpenAI, Ollama, vLLM, llama.cpp).",
    ),
    (
        "model.scripted_delay_ms",
        "Pause between the scripted model's text deltas, to feel like a real model.",
    ),
    (
        "limits.max_body_bytes",
        "Largest request body accepted from an authenticated caller (CopilotKit resends the whole thread each run).",
    ),
    (
        "limits.pre_auth_body_bytes",
        "Largest body read before authentication (only when the token travels in `forwardedProps`).",
    ),
    (
        "limits.max_header_bytes",
        "Largest request head (request line + `name: value` lines + CRLF), however it is segmented; larger heads get 431 `headers_too_large` (minimum 8192).",
    ),
    (
        "limits.header_read_timeout_secs",
        "Time a client gets to send its request head.",
    ),
    (
        "limits.body_read_timeout_secs",
        "Time a client gets to send a request body, first read to last byte, before and after authentication; beyond it 408 `body_timeout` and the connection is closed.",
    ),
    (
        "limits.min_body_bytes_per_sec",
        "Slowest average a body may arrive at once `limits.body_rate_grace_secs` have passed; slower gets 408 `body_timeout` (0 = no rate).",
    ),
    (
        "limits.body_rate_grace_secs",
        "Seconds a body may take before `limits.min_body_bytes_per_sec` applies.",
    ),
    (
        "limits.pre_auth_buffer_bytes",
        "Bytes buffered at once, server-wide, from bodies whose caller is not authenticated yet (credential in the body); beyond it 503 `server_busy` before reading more.",
    ),
    (
        "limits.max_buffered_body_bytes",
        "Bytes buffered at once, server-wide, from all request bodies; beyond it 503 `server_busy` before reading more.",
    ),
    (
        "limits.max_run_secs",
        "Maximum run duration; beyond it the run ends with `RUN_ERROR run_timeout`.",
    ),
    (
        "limits.max_open_streams",
        "Streams open at once on this server; beyond it new runs get 503 `server_busy`.",
    ),
    (
        "limits.max_messages",
        "Messages accepted in one `RunAgentInput`.",
    ),
    (
        "limits.tool_timeout_secs",
        "Time one backend tool may run; beyond it the model reads a `tool_timeout` result.",
    ),
    (
        "limits.max_turns",
        "Model turns (each may call tools) in one run; beyond it `RUN_ERROR max_turns`.",
    ),
    (
        "limits.runs_per_minute",
        "New runs per minute per principal (token-bucket refill); over it 429 `rate_limited` with `Retry-After`. 0 = no rate limit.",
    ),
    (
        "limits.burst",
        "Runs one principal may start back to back (the bucket size); 0 = `runs_per_minute`.",
    ),
    (
        "limits.max_concurrent_streams",
        "Streams one principal may have open at once; over it 429 `too_many_streams`. 0 = no cap.",
    ),
    (
        "limits.roles",
        "Per-role overrides, `[limits.roles.<role>]` with `runs_per_minute`, `burst`, `max_concurrent_streams`; with several roles the most generous value wins.",
    ),
    (
        "limits.redis_url",
        "Redis for cluster-wide per-principal limits (stream slots are leases with a TTL, so a killed replica frees them). Absent: per replica.",
    ),
    (
        "limits.redis_lease_secs",
        "Lifetime of a stream slot's Redis lease, renewed every third of it while the stream lives: how long a killed replica's slots stay taken.",
    ),
    (
        "trusted_proxies",
        "Proxies (IPs or CIDRs) whose `X-Forwarded-For` gives the client address in audit records; otherwise the connection's peer is used.",
    ),
    (
        "store.database_url",
        "Where threads, runs and the audit log live: `sqlite://path` (WAL) or `postgres://…` (several replicas). Absent: `serve` uses `sqlite://./data/agui.db`, `dev` an in-memory database.",
    ),
    (
        "store.thread_admin_role",
        "A role that may run on any principal's thread; every such access is audited (`admin_access`). Absent: nobody may.",
    ),
    (
        "store.heartbeat_secs",
        "How often each process records that it is alive (and looks for runs of dead replicas).",
    ),
    (
        "store.instance_timeout_secs",
        "A replica without a heartbeat for this long is dead: its open runs are marked `abandoned` and clients following them get `RUN_ERROR abandoned` (at least twice `store.heartbeat_secs`).",
    ),
    (
        "history.enabled",
        "Keep every run's events per thread, so CopilotKit's `connect` replays a conversation after a reload (or on another replica) and follows a live run.",
    ),
    (
        "history.flush_ms",
        "How often a streaming run's new events are written, compacted, through the group commit: a process killed mid-run loses at most this much of its stream.",
    ),
    (
        "history.max_runs_per_thread",
        "Runs kept per thread; beyond it the oldest runs leave the replay (logged).",
    ),
    (
        "runtime.base_path",
        "Where CopilotKit's runtime protocol is served (`/info`, `/agent/{id}/run|connect|stop`): the app's `runtimeUrl` is this server's origin plus this path. Empty: not served.",
    ),
    (
        "audit.fail_closed",
        "While audit writes fail, refuse new runs with 503 `audit_unavailable` (false: log and go on).",
    ),
    (
        "audit.mirror",
        "Mirror every committed audit record as a JSON line to `stdout` or a file.",
    ),
    (
        "audit.retention_days",
        "Delete audit records older than this many days (at start-up and daily); 0 = keep them.",
    ),
    (
        "audit.auth_failure_window_secs",
        "Authentication failures are aggregated per client address, reason and issuer over this window: one record each, so floods cannot fill the disk.",
    ),
    (
        "auth.leeway_secs",
        "Clock leeway for `exp`, `nbf` and `iat`, in seconds (0 allowed).",
    ),
    (
        "auth.max_token_lifetime_secs",
        "Largest accepted `exp - iat`.",
    ),
    ("auth.max_token_bytes", "Largest accepted token."),
    (
        "auth.accept_body_token",
        "Accept the token from `forwardedProps.authorization` when no `Authorization` header is sent (what CopilotKit's `properties` produce).",
    ),
    (
        "auth.ca_file",
        "PEM bundle of extra CA certificates for issuers behind a private CA.",
    ),
    (
        "auth.issuers",
        "The trusted issuers (`[[auth.issuers]]` tables; one issuer may come from `AGUI_OIDC_ISSUER`).",
    ),
    (
        "auth.github",
        "`[auth.github]`: accept GitHub user tokens issued to our OAuth or GitHub App (checked with GitHub's `POST /applications/{client_id}/token`), and serve \"Sign in with GitHub\". Absent: GitHub tokens are refused.",
    ),
    (
        "auth.github.client_id",
        "The app's client id; only tokens GitHub says were issued to it are accepted.",
    ),
    (
        "auth.github.client_secret",
        "The app's client secret (masked in `check-config`); prefer `client_secret_file`.",
    ),
    (
        "auth.github.client_secret_file",
        "A file holding the client secret.",
    ),
    (
        "auth.github.api_url",
        "GitHub's REST API root; GitHub Enterprise Server: `https://HOST/api/v3`.",
    ),
    (
        "auth.github.web_url",
        "GitHub's web root (the OAuth endpoints, and the issuer of GitHub principals); Enterprise: `https://HOST`.",
    ),
    (
        "auth.github.allow_http",
        "Allow plain-http API and web roots off loopback (never in production).",
    ),
    (
        "auth.github.allowed_users",
        "GitHub logins let in (case-insensitive). With the org and team lists: matching any entry of any non-empty list lets a user in (else 403 `access_denied`); all empty: every user of the app.",
    ),
    (
        "auth.github.allowed_orgs",
        "Organizations whose members are let in (the token needs `read:org`).",
    ),
    (
        "auth.github.allowed_teams",
        "Teams (`org/team-slug`) whose members are let in (needs `read:org`).",
    ),
    (
        "auth.github.roles",
        "Roles from team membership, e.g. `roles = { admin = [\"acme/platform\"] }` (needs `read:org`).",
    ),
    (
        "auth.github.cache_ttl_secs",
        "How long an accepted token is remembered (by its SHA-256, never past its own expiry).",
    ),
    (
        "auth.github.negative_cache_ttl_secs",
        "How long a refused token is remembered (0 = not at all).",
    ),
    ("auth.github.cache_capacity", "Most tokens remembered."),
    (
        "auth.github.redirect_uri",
        "agui-server's `/auth/github/callback` as the browser reaches it, registered with the app; with `app_origin` it turns on `GET /auth/github/login`.",
    ),
    (
        "auth.github.app_origin",
        "The origin of the app that opens the sign-in window: the only origin the token is posted to.",
    ),
    (
        "auth.github.scopes",
        "Scopes the sign-in asks for (`read:org` is needed for org and team checks).",
    ),
    (
        "auth.github.login_cookie_key",
        "Key (32+ bytes) signing the sign-in's state cookie; absent: random per process (set it, or the file, when several replicas serve the sign-in).",
    ),
    (
        "auth.github.login_cookie_key_file",
        "A file holding that key.",
    ),
    (
        "auth.github.login_ttl_secs",
        "How long a started sign-in may take.",
    ),
    (
        "auth.introspection",
        "Issuers whose opaque access tokens are checked by RFC 7662 introspection (`[[auth.introspection]]` tables).",
    ),
    (
        "auth.introspection[].issuer",
        "The issuer; an answer's `iss`, when present, must equal it.",
    ),
    (
        "auth.introspection[].endpoint",
        "The introspection endpoint; absent: the discovery document's `introspection_endpoint`.",
    ),
    (
        "auth.introspection[].auth_method",
        "How agui-server authenticates there: `client_secret_basic`.",
    ),
    (
        "auth.introspection[].client_id",
        "agui-server's client id at the issuer.",
    ),
    (
        "auth.introspection[].client_secret",
        "Its secret (masked in `check-config`); prefer `client_secret_file`.",
    ),
    (
        "auth.introspection[].client_secret_file",
        "A file holding the secret.",
    ),
    (
        "auth.introspection[].audiences",
        "Accepted audiences: an answer whose `aud` names any audience must name one of these.",
    ),
    (
        "auth.introspection[].allow_missing_audience",
        "Accept answers without `aud` (for issuers that never set one); otherwise they are refused.",
    ),
    (
        "auth.introspection[].subject_from_client_id",
        "Use `client_id` as the subject when the answer has no `sub` (client-credentials tokens); otherwise they are refused.",
    ),
    (
        "auth.introspection[].claims.name",
        "As `auth.issuers[].claims.name`, read from the introspection answer.",
    ),
    (
        "auth.introspection[].claims.email",
        "As `auth.issuers[].claims.email`.",
    ),
    (
        "auth.introspection[].claims.email_verified",
        "As `auth.issuers[].claims.email_verified`.",
    ),
    (
        "auth.introspection[].claims.roles",
        "As `auth.issuers[].claims.roles`.",
    ),
    (
        "auth.introspection[].required_scopes",
        "Scopes every token must carry; missing → 403 `insufficient_scope`.",
    ),
    (
        "auth.introspection[].allow.subjects",
        "As `auth.issuers[].allow.subjects`.",
    ),
    (
        "auth.introspection[].allow.groups",
        "As `auth.issuers[].allow.groups`.",
    ),
    (
        "auth.introspection[].allow.email_domains",
        "As `auth.issuers[].allow.email_domains`.",
    ),
    (
        "auth.introspection[].deny.subjects",
        "As `auth.issuers[].deny.subjects`.",
    ),
    (
        "auth.introspection[].deny.groups",
        "As `auth.issuers[].deny.groups`.",
    ),
    (
        "auth.introspection[].deny.email_domains",
        "As `auth.issuers[].deny.email_domains`.",
    ),
    (
        "auth.introspection[].allow_http",
        "Allow a plain-http issuer or endpoint off loopback (never in production).",
    ),
    (
        "auth.introspection[].token_prefix",
        "Only tokens starting with this go to this issuer (e.g. `ory_at_`); with several issuers at most one may omit it, so a token is sent to one endpoint only.",
    ),
    (
        "auth.introspection[].cache_max_secs",
        "Longest time an active token is remembered (never past its `exp`).",
    ),
    (
        "auth.introspection[].negative_cache_secs",
        "How long a refused token is remembered (0 = not at all).",
    ),
    (
        "auth.introspection[].cache_capacity",
        "Most tokens remembered.",
    ),
    (
        "auth.api_keys",
        "API keys for services and scripts (`[[auth.api_keys]]` tables, made by `agui-server apikey new`); reloaded on SIGHUP.",
    ),
    (
        "auth.api_keys[].hash",
        "`sha256:<hex>` of the whole key; `check-config` shows only its first 8 hex digits.",
    ),
    (
        "auth.api_keys[].subject",
        "The key's principal (issuer `agui:api-key`).",
    ),
    (
        "auth.api_keys[].name",
        "A label for people (the principal's name).",
    ),
    ("auth.api_keys[].roles", "The principal's roles."),
    ("auth.api_keys[].scopes", "The principal's scopes."),
    (
        "auth.api_keys[].expires",
        "RFC 3339 expiry (`2027-03-01T00:00:00Z`); absent: never.",
    ),
    (
        "openai",
        "`[openai]`: `base_url`, `api_key` (or `OPENAI_API_KEY` / `AGUI_OPENAI_API_KEY_FILE`, with `OPENAI_BASE_URL`, `AGUI_OPENAI_MODEL`), `model`, `temperature`, `max_tokens`, `connect_timeout_secs`, `first_byte_timeout_secs`, `idle_timeout_secs`, `max_retries`. Used by agents whose model is `openai`; `check-config` masks the key.",
    ),
    (
        "agents",
        "Named agents, one `[agents.<id>]` table each; `default` (implicit if absent) serves `POST /chat`.",
    ),
    (
        "agents.<id>.model",
        "`scripted` or `openai`; default: `model.kind`.",
    ),
    (
        "agents.<id>.description",
        "What the agent does, in a sentence; CopilotKit's `/info` shows it to the app.",
    ),
    (
        "agents.<id>.system_prompt",
        "System prompt; `{user.name}`, `{user.email}`, `{user.roles}` are filled from the verified principal.",
    ),
    (
        "agents.<id>.tools",
        "Backend tools the agent exposes (names); default: every built-in tool.",
    ),
    (
        "agents.<id>.required_roles",
        "Roles a caller must all have to run the agent (else 403 `access_denied`).",
    ),
    (
        "agents.<id>.required_scopes",
        "Scopes a caller must all have to run the agent (else 403 `insufficient_scope`, naming the scope).",
    ),
    (
        "agents.<id>.allow_client_system_messages",
        "Pass client `system`/`developer` messages to the model (dropped by default; some CopilotKit features send them).",
    ),
    (
        "auth.issuers[].issuer",
        "Issuer URL, exactly as in the tokens' `iss` (discovery must report the same).",
    ),
    (
        "auth.issuers[].audiences",
        "Accepted `aud` values; a token must carry at least one.",
    ),
    (
        "auth.issuers[].algorithms",
        "Accepted signature algorithms (never HS* or none).",
    ),
    (
        "auth.issuers[].typ",
        "`lenient` (absent, `JWT`, `at+jwt`, `application/at+jwt`) or `strict` (the last two).",
    ),
    (
        "auth.issuers[].claims.name",
        "JSON Pointers tried in order for the display name (first non-empty string wins).",
    ),
    (
        "auth.issuers[].claims.email",
        "JSON Pointers tried in order for the e-mail.",
    ),
    (
        "auth.issuers[].claims.email_verified",
        "JSON Pointers for `email_verified` (a boolean, or the string \"true\").",
    ),
    (
        "auth.issuers[].claims.roles",
        "JSON Pointers whose strings or string arrays are merged into the roles, e.g. `/realm_access/roles`, `/groups`, `/cognito:groups`, `/https:~1~1example.com~1roles`.",
    ),
    (
        "auth.issuers[].allow.subjects",
        "If any allow list is set, only these `sub` values (or a matching group or domain) get in.",
    ),
    (
        "auth.issuers[].allow.groups",
        "Roles/groups (as mapped by `claims.roles`) that are let in.",
    ),
    (
        "auth.issuers[].allow.email_domains",
        "E-mail domains that are let in; only a verified e-mail matches.",
    ),
    (
        "auth.issuers[].deny.subjects",
        "`sub` values always refused (403 `access_denied`), even if allowed.",
    ),
    ("auth.issuers[].deny.groups", "Roles/groups always refused."),
    (
        "auth.issuers[].deny.email_domains",
        "E-mail domains always refused (matched, like allow, on a verified e-mail).",
    ),
    (
        "auth.issuers[].required_scopes",
        "Scopes every token must carry (`scope` or `scp`); missing → 403 `insufficient_scope`.",
    ),
    (
        "auth.issuers[].allow_http",
        "Allow a plain-http issuer that is not on loopback (never in production).",
    ),
    (
        "auth.issuers[].jwks_uri",
        "JWKS URL override; by default it comes from discovery.",
    ),
];

/// A flattened TOML key with its default.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// Dotted path, `[]` for the elements of an array of tables.
    pub path: String,
    /// The default, rendered as TOML-ish text.
    pub default: String,
}

/// Every key of the configuration, from the defaults and an example issuer.
pub fn keys() -> Vec<Key> {
    let mut keys = Vec::new();
    let defaults = serde_json::to_value(Config::default()).unwrap_or(Value::Null);
    flatten("", &defaults, &mut keys);
    let example: agui_auth::IssuerConfig =
        toml::from_str("issuer = \"https://issuer.example\"\naudiences = [\"agui\"]")
            .expect("a minimal issuer parses");
    let example = serde_json::to_value(example).unwrap_or(Value::Null);
    flatten("auth.issuers[]", &example, &mut keys);
    let agent = serde_json::to_value(crate::config::AgentConfig::default()).unwrap_or(Value::Null);
    flatten("agents.<id>", &agent, &mut keys);
    let github = serde_json::to_value(agui_auth::GitHubConfig::default()).unwrap_or(Value::Null);
    flatten("auth.github", &github, &mut keys);
    let introspection =
        serde_json::to_value(agui_auth::IntrospectionConfig::default()).unwrap_or(Value::Null);
    flatten("auth.introspection[]", &introspection, &mut keys);
    let api_key: agui_auth::ApiKeyConfig =
        toml::from_str("hash = \"sha256:\"\nsubject = \"svc\"").expect("a minimal key parses");
    let api_key = serde_json::to_value(api_key).unwrap_or(Value::Null);
    flatten("auth.api_keys[]", &api_key, &mut keys);
    const REQUIRED: [&str; 7] = [
        "auth.issuers[].issuer",
        "auth.issuers[].audiences",
        "auth.github.client_id",
        "auth.introspection[].issuer",
        "auth.introspection[].client_id",
        "auth.api_keys[].hash",
        "auth.api_keys[].subject",
    ];
    for key in keys
        .iter_mut()
        .filter(|k| REQUIRED.contains(&k.path.as_str()))
    {
        key.default = "(required)".into();
    }
    keys
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<Key>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (name, child) in map {
                let path = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                flatten(&path, child, out);
            }
        }
        other => out.push(Key {
            path: prefix.to_owned(),
            default: render(other),
        }),
    }
}

fn render(value: &Value) -> String {
    match value {
        Value::Null => "(none)".into(),
        Value::String(s) => format!("`\"{s}\"`"),
        other => format!("`{other}`"),
    }
}

/// The env var and flag that override `path`, from the clap definition.
fn override_for(path: &str) -> Option<(String, String)> {
    let command = Cli::command();
    let serve = command.find_subcommand("serve")?;
    let arg_id = match path {
        "model.kind" => "model",
        "model.scripted_delay_ms" => "scripted_delay_ms",
        "audit.fail_closed" => "audit_fail_closed",
        "audit.mirror" => "audit_mirror",
        "audit.retention_days" => "audit_retention_days",
        "auth.issuers" => "oidc_issuer",
        "auth.github" => "github_client_id",
        other => match other.strip_prefix("auth.github.") {
            Some(field) => return github_override(serve, field),
            None => other.rsplit('.').next().unwrap_or(other),
        },
    };
    let arg = serve.get_arguments().find(|arg| arg.get_id() == arg_id)?;
    let env = arg.get_env()?.to_string_lossy().into_owned();
    let flag = format!("--{}", arg.get_long()?);
    Some((env, flag))
}

/// The `AGUI_GITHUB_*` variable and flag of an `[auth.github]` field.
fn github_override(serve: &clap::Command, field: &str) -> Option<(String, String)> {
    let id = format!("github_{field}");
    let arg = serve
        .get_arguments()
        .find(|arg| arg.get_id() == id.as_str())?;
    let env = arg.get_env()?.to_string_lossy().into_owned();
    Some((env, format!("--{}", arg.get_long()?)))
}

/// The Markdown reference the README embeds between its `config-reference` markers.
pub fn markdown() -> String {
    let mut out =
        String::from("| TOML key | env / flag | default | meaning |\n|---|---|---|---|\n");
    for key in keys() {
        let description = DESCRIPTIONS
            .iter()
            .find(|(path, _)| *path == key.path)
            .map_or("(undocumented)", |(_, text)| *text);
        let via = override_for(&key.path).map_or_else(
            || "TOML only".to_owned(),
            |(env, flag)| format!("`{env}` / `{flag}`"),
        );
        out.push_str(&format!(
            "| `{}` | {via} | {} | {description} |\n",
            key.path, key.default
        ));
    }
    out.push_str(
        "\nAlso: `AGUI_OIDC_AUDIENCE` / `--oidc-audience` (comma separated) and `AGUI_OIDC_REQUIRED_SCOPES` / \
         `--oidc-required-scopes` complete `AGUI_OIDC_ISSUER`; `AGUI_CONFIG` / `--config` names the TOML file. \
         Precedence: flags, then environment, then the file, then the defaults.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_config_key_is_described_and_every_description_names_a_key() {
        let keys: Vec<String> = keys().into_iter().map(|k| k.path).collect();
        let undocumented: Vec<&String> = keys
            .iter()
            .filter(|k| !DESCRIPTIONS.iter().any(|(p, _)| p == *k))
            .collect();
        assert!(
            undocumented.is_empty(),
            "add these keys to DESCRIPTIONS: {undocumented:?}"
        );
        let stale: Vec<&str> = DESCRIPTIONS
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| !keys.iter().any(|k| k == p))
            .collect();
        assert!(
            stale.is_empty(),
            "DESCRIPTIONS names keys that no longer exist: {stale:?}"
        );
    }

    #[test]
    fn every_override_flag_maps_to_a_documented_key() {
        let command = Cli::command();
        let serve = command.find_subcommand("serve").expect("serve exists");
        let reference = markdown();
        for arg in serve.get_arguments() {
            let Some(env) = arg.get_env() else { continue };
            let env = env.to_string_lossy();
            assert!(
                reference.contains(&*env),
                "{env} is missing from the configuration reference"
            );
        }
    }

    #[test]
    fn readme_embeds_the_current_reference() {
        let readme = include_str!("../../../README.md");
        let start = readme
            .find("<!-- config-reference:start -->")
            .expect("README has the start marker");
        let end = readme
            .find("<!-- config-reference:end -->")
            .expect("README has the end marker");
        let embedded = readme[start + "<!-- config-reference:start -->".len()..end].trim();
        assert_eq!(
            embedded,
            markdown().trim(),
            "README's configuration reference is stale: run `make readme-config` (agui-server config-reference)"
        );
    }
}
