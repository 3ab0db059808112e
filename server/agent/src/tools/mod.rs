//! Backend tools: what they declare, who may use them, and the registry the run loop asks.
//!
//! Tools are gated twice (DESIGN "Tools are gated twice"): a tool the principal may not use is
//! left out of what the model is offered, and checked again just before it runs. A denial is a
//! `TOOL_CALL_RESULT` with a stable error the model can read, and an audit record; nothing
//! executes. Arguments are validated against the tool's JSON Schema first ([`schema`]). Tools get
//! the verified [`Principal`] (never the token), a cancellation token, and the run's shared state
//! ([`StateAccess`]); changes they make reach the client as `STATE_DELTA` (RFC 6902).

pub mod builtin;
pub mod schema;
mod state;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use agui_auth::Principal;
use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub use builtin::{
    DeleteDocument, DocumentStore, GetDocument, ListMyDocuments, SetPreference, WhoAmI,
};
pub use state::StateAccess;

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

/// A predicate over the verified principal (its claims, roles, scopes).
pub type ClaimPredicate = Arc<dyn Fn(&Principal) -> bool + Send + Sync>;

/// Who may use a tool: every listed role and scope is required, and the predicate (if any) must
/// hold.
#[derive(Clone, Default)]
pub struct ToolPolicy {
    /// Roles the principal must all have.
    pub required_roles: Vec<String>,
    /// Scopes the principal must all have.
    pub required_scopes: Vec<String>,
    /// A check over the verified claims, e.g. `|p| p.email_verified == Some(true)`.
    pub predicate: Option<ClaimPredicate>,
}

impl fmt::Debug for ToolPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolPolicy")
            .field("required_roles", &self.required_roles)
            .field("required_scopes", &self.required_scopes)
            .field("predicate", &self.predicate.is_some())
            .finish()
    }
}

impl ToolPolicy {
    /// Every authenticated principal may use the tool.
    pub fn anyone() -> Self {
        Self::default()
    }

    /// Only principals with `role`.
    pub fn role(role: impl Into<String>) -> Self {
        Self {
            required_roles: vec![role.into()],
            ..Self::default()
        }
    }

    /// Whether `principal` may use the tool.
    pub fn allows(&self, principal: &Principal) -> bool {
        self.required_roles.iter().all(|r| principal.has_role(r))
            && self.required_scopes.iter().all(|s| principal.has_scope(s))
            && self.predicate.as_ref().is_none_or(|p| p(principal))
    }
}

/// What a tool gets besides its arguments.
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// The verified caller (never the token).
    pub principal: Arc<Principal>,
    /// Fires when the run is abandoned; long tools should stop then.
    pub cancel: CancellationToken,
    /// The run's shared state: read it, change it with JSON Patch operations.
    pub state: StateAccess,
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
    /// The thing the tool was asked about does not exist (for this caller).
    #[error("{0}")]
    NotFound(String),
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
            Self::NotFound(_) => "not_found",
            Self::Failed(_) => "tool_error",
        }
    }

    /// The result content the model and the client see.
    pub fn to_result(&self) -> Value {
        json!({"error": self.code(), "message": self.to_string()})
    }

    /// Every code, for the catalogue.
    pub const ALL_CODES: [&'static str; 6] = [
        "invalid_arguments",
        "tool_not_allowed",
        "unknown_tool",
        "tool_timeout",
        "not_found",
        "tool_error",
    ];
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
    /// Runs it with arguments already validated against [`Tool::spec`]'s schema.
    ///
    /// # Errors
    /// A [`ToolError`] the model will read as the tool's result.
    async fn call(&self, ctx: ToolContext, args: Value) -> Result<Value, ToolError>;
}

/// The backend tools of one agent.
#[derive(Clone, Default)]
pub struct ToolRegistry {
    /// Shared: every run of an agent holds its registry, so a clone is a reference count.
    tools: Arc<BTreeMap<String, Registered>>,
}

/// A tool and its [`Tool::spec`], built once at registration: runs offer the specs on every
/// turn, and a spec's JSON Schema is dozens of allocations to build or clone.
#[derive(Clone)]
struct Registered {
    tool: Arc<dyn Tool>,
    spec: Arc<ToolSpec>,
}

impl fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.tools.keys()).finish()
    }
}

impl ToolRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in demo tools: `whoami`, `list_my_documents`, `get_document`,
    /// `delete_document` (role `admin`) and `set_preference`, sharing one document store.
    pub fn with_builtins() -> Self {
        Self::with_builtins_on(DocumentStore::default())
    }

    /// The built-in tools over `documents` (so a server can inspect the store).
    pub fn with_builtins_on(documents: DocumentStore) -> Self {
        let mut registry = Self::new();
        registry.register(Arc::new(WhoAmI));
        registry.register(Arc::new(ListMyDocuments(documents.clone())));
        registry.register(Arc::new(GetDocument(documents.clone())));
        registry.register(Arc::new(DeleteDocument(documents)));
        registry.register(Arc::new(SetPreference));
        registry
    }

    /// Adds (or replaces) a tool.
    pub fn register(&mut self, tool: Arc<dyn Tool>) {
        let spec = Arc::new(tool.spec());
        Arc::make_mut(&mut self.tools).insert(spec.name.clone(), Registered { tool, spec });
    }

    /// A registry with only the named tools (unknown names are reported).
    ///
    /// # Errors
    /// The first name that is not registered.
    pub fn subset(&self, names: &[String]) -> Result<Self, String> {
        let mut subset = Self::new();
        for name in names {
            let registered = self.tools.get(name).ok_or_else(|| name.clone())?;
            Arc::make_mut(&mut subset.tools).insert(name.clone(), registered.clone());
        }
        Ok(subset)
    }

    /// The tool called `name`, whatever its policy.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.get(name).map(|registered| &registered.tool)
    }

    /// Whether a tool called `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.tools.contains_key(name)
    }

    /// Every tool name.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tools.keys().map(String::as_str)
    }

    /// The specs of the tools `principal` may use: what the model is offered (the first gate).
    pub fn offered_to(&self, principal: &Principal) -> Vec<Arc<ToolSpec>> {
        self.tools
            .values()
            .filter(|registered| registered.tool.policy().allows(principal))
            .map(|registered| registered.spec.clone())
            .collect()
    }
}
