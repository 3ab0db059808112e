//! Adding a backend tool to agui-server, end to end.
//!
//! `team_directory` lists the members of the caller's own team. It shows the three things every
//! tool decides:
//!
//! 1. **What the model sees**: a name, a description and a JSON Schema for the arguments
//!    ([`Tool::spec`]). Arguments are validated against the schema before [`Tool::call`] runs.
//! 2. **Who may use it**: a [`ToolPolicy`] (roles, scopes, or a predicate over the verified
//!    claims). Callers who fail it are never offered the tool, and are refused again if the model
//!    calls it anyway.
//! 3. **Whose data it touches**: only what the verified [`Principal`](agui_auth::Principal)
//!    allows. Here the team comes from the token's `team` claim, never from the arguments, so
//!    nobody can ask for another team's directory.
//!
//! Register it next to the built-ins and hand the registry to the server:
//!
//! ```no_run
//! # async fn demo(config: agui_server::Config) {
//! use std::sync::Arc;
//! let mut tools = agui_agent::ToolRegistry::with_builtins();
//! tools.register(Arc::new(agui_example_custom_tool::TeamDirectory::demo()));
//! let state = agui_server::AppState::builder(config).tools(tools).build().await.unwrap();
//! # }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use agui_agent::{Tool, ToolContext, ToolError, ToolPolicy, ToolSpec};
use async_trait::async_trait;
use serde_json::{Value, json};

/// Lists the members of the caller's team (from the verified `team` claim).
#[derive(Debug, Clone)]
pub struct TeamDirectory {
    teams: BTreeMap<String, Vec<String>>,
}

impl TeamDirectory {
    /// A directory with two demo teams, `red` and `blue`.
    pub fn demo() -> Self {
        let mut teams = BTreeMap::new();
        teams.insert("red".to_owned(), vec!["Ada".to_owned(), "Grace".to_owned()]);
        teams.insert(
            "blue".to_owned(),
            vec!["Alan".to_owned(), "Edsger".to_owned()],
        );
        Self { teams }
    }
}

#[async_trait]
impl Tool for TeamDirectory {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "team_directory".into(),
            description: "Lists the members of the signed-in user's team. Optionally filters by a name prefix.".into(),
            parameters: json!({
                "type": "object",
                "properties": {"prefix": {"type": "string", "maxLength": 32}},
                "additionalProperties": false
            }),
        }
    }

    fn policy(&self) -> ToolPolicy {
        // Only callers whose token carries a `team` claim, and who have the `directory:read`
        // scope, may use it.
        ToolPolicy {
            required_scopes: vec!["directory:read".into()],
            predicate: Some(Arc::new(|principal| {
                principal.claims.get("team").is_some_and(Value::is_string)
            })),
            ..ToolPolicy::default()
        }
    }

    async fn call(&self, ctx: ToolContext, args: Value) -> Result<Value, ToolError> {
        let team = ctx
            .principal
            .claims
            .get("team")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let prefix = args.get("prefix").and_then(Value::as_str).unwrap_or("");
        let members: Vec<&String> = self
            .teams
            .get(team)
            .into_iter()
            .flatten()
            .filter(|name| name.starts_with(prefix))
            .collect();
        Ok(json!({ "team": team, "members": members }))
    }
}
