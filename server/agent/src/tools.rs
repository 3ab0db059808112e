//! Backend tools: what they declare, who may use them, and the registry the run loop asks.
//!
//! Tools are gated twice (DESIGN "Tools are gated twice"): a tool the principal may not use is
//! left out of what the model is offered, and checked again just before it runs. A denial is a
//! `TOOL_CALL_RESULT` with a stable error the model can read, and an audit record.

use std::collections::BTreeMap;
use std::sync::Arc;

use agui_auth::Principal;
use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// What a tool tells the model about itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolSpec {
    /// The name the model calls it by.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of its arguments.
    pub parameters: Value,
}

/// Who may use a tool. Every listed role and scope is required.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolPolicy {
    /// Roles the principal must all have.
    pub required_roles: Vec<String>,
    /// Scopes the principal must all have.
    pub required_scopes: Vec<String>,
}

impl ToolPolicy {
    /// A policy that lets every authenticated principal use the tool.
    pub fn anyone() -> Self {
        Self::default()
    }

    /// Whether `principal` may use the tool.
    pub fn allows(&self, principal: &Principal) -> bool {
        self.required_roles.iter().all(|r| principal.has_role(r))
            && self.required_scopes.iter().all(|s| principal.has_scope(s))
    }
}

/// What a tool gets besides its arguments.
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// The verified caller (never the token).
    pub principal: Arc<Principal>,
    /// Fires when the run is abandoned; long tools should stop then.
    pub cancel: CancellationToken,
}

/// A tool's failure, readable by the model: it becomes the `TOOL_CALL_RESULT` content
/// `{"error": <code>, "message": <text>}`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolError {
    /// The arguments did not match the tool's schema or were not JSON.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The principal may not use this tool (the second gate).
    #[error("you are not allowed to use this tool")]
    NotAllowed,
    /// No backend or frontend tool has that name.
    #[error("there is no tool by that name")]
    UnknownTool,
    /// The tool ran longer than the per-tool timeout.
    #[error("the tool took too long and was stopped")]
    Timeout,
    /// The tool ran and failed; the text is safe to show the model.
    #[error("{0}")]
    Failed(String),
}

impl ToolError {
    /// The stable code the model reads.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidArguments(_) => "invalid_arguments",
            Self::NotAllowed => "tool_not_allowed",
            Self::UnknownTool => "unknown_tool",
            Self::Timeout => "tool_timeout",
            Self::Failed(_) => "tool_error",
        }
    }

    /// The result content the model and the client see.
    pub fn to_result(&self) -> Value {
        json!({"error": self.code(), "message": self.to_string()})
    }
}

/// A backend tool.
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// Its name, description and argument schema.
    fn spec(&self) -> ToolSpec;
    /// Who may use it.
    fn policy(&self) -> ToolPolicy {
        ToolPolicy::anyone()
    }
    /// Runs it.
    ///
    /// # Errors
    /// A [`ToolError`] the model will read as the tool's result.
    async fn call(&self, ctx: ToolContext, args: Value) -> Result<Value, ToolError>;
}

/// The backend tools of one agent.
#[derive(Clone, Default)]
pub struct ToolRegistry {
    tools: BTreeMap<String, Arc<dyn Tool>>,
}

impl std::fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.tools.keys()).finish()
    }
}

impl ToolRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in tools available today.
    pub fn with_builtins() -> Self {
        let mut registry = Self::new();
        registry.register(Arc::new(WhoAmI));
        registry
    }

    /// Adds (or replaces) a tool.
    pub fn register(&mut self, tool: Arc<dyn Tool>) {
        self.tools.insert(tool.spec().name, tool);
    }

    /// The tool called `name`, whatever its policy.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.get(name)
    }

    /// Whether a tool called `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.tools.contains_key(name)
    }

    /// The specs of the tools `principal` may use: what the model is offered.
    pub fn offered_to(&self, principal: &Principal) -> Vec<ToolSpec> {
        self.tools
            .values()
            .filter(|tool| tool.policy().allows(principal))
            .map(|tool| tool.spec())
            .collect()
    }
}

/// `whoami`: the caller's verified identity, as the server sees it.
#[derive(Debug, Clone, Copy)]
pub struct WhoAmI;

#[async_trait]
impl Tool for WhoAmI {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "whoami".into(),
            description: "Returns the signed-in user's verified identity: issuer, subject, name, \
                          email, roles and scopes."
                .into(),
            parameters: json!({"type": "object", "properties": {}, "additionalProperties": false}),
        }
    }

    async fn call(&self, ctx: ToolContext, _args: Value) -> Result<Value, ToolError> {
        Ok(ctx.principal.public_json())
    }
}
