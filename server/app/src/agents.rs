//! Named agents: `[agents.<id>]` in the TOML. Each has its model, system prompt, the backend tools
//! it exposes and who may run it. `POST /agents/{id}/chat` runs one; `POST /chat` runs the agent
//! named `default` (implicit when not configured: the server's model with every built-in tool).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agui_agent::{
    DocumentStore, ModelError, ModelProvider, ModelRequest, ModelStream, ScriptedModel,
    ToolRegistry,
};
use agui_auth::Principal;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::config::{AgentConfig, Config, ConfigError, ModelKind};
use crate::metrics::Histogram;

/// A runnable agent.
#[derive(Clone)]
pub struct Agent {
    /// Its id (`default`, or the `[agents.<id>]` key).
    pub id: String,
    /// What it does (empty when not configured).
    pub description: String,
    /// Its model.
    pub model: Arc<dyn ModelProvider>,
    /// Its backend tools.
    pub tools: ToolRegistry,
    /// Roles required to run it.
    pub required_roles: Vec<String>,
    /// Scopes required to run it.
    pub required_scopes: Vec<String>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("id", &self.id)
            .field("model", &self.model.name())
            .field("tools", &self.tools)
            .finish()
    }
}

/// What a principal lacks to run an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissingGrant {
    /// A scope its token was not issued with (403 `insufficient_scope`, naming the scope).
    Scope(String),
    /// A role it does not hold (403 `access_denied`: a role is not something the client can
    /// ask its issuer for, so no scope is named).
    Role(String),
}

impl std::fmt::Display for MissingGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Scope(scope) => write!(f, "scope {scope}"),
            Self::Role(role) => write!(f, "role {role}"),
        }
    }
}

impl Agent {
    /// The first required scope, then role, the principal lacks (`None`: it may run the agent).
    pub fn missing_grant(&self, principal: &Principal) -> Option<MissingGrant> {
        if let Some(scope) = self
            .required_scopes
            .iter()
            .find(|s| !principal.has_scope(s))
        {
            return Some(MissingGrant::Scope(scope.clone()));
        }
        self.required_roles
            .iter()
            .find(|r| !principal.has_role(r))
            .map(|role| MissingGrant::Role(role.clone()))
    }
}

/// Builds every configured agent (plus the implicit `default`).
///
/// `model_override` and `tools_override` replace the default agent's model and tools (tests and
/// embedders use them). Every model's time to first delta goes to `model_latency`.
///
/// # Errors
/// An agent that names an unknown tool or a model kind this build cannot run.
pub fn build(
    config: &Config,
    documents: &DocumentStore,
    model_override: Option<Arc<dyn ModelProvider>>,
    tools_override: Option<ToolRegistry>,
    model_latency: &Arc<Histogram>,
) -> Result<BTreeMap<String, Arc<Agent>>, ConfigError> {
    let builtins = ToolRegistry::with_builtins_on(documents.clone());
    let mut configs = config.agents.clone();
    configs.entry("default".to_owned()).or_default();
    let mut agents = BTreeMap::new();
    for (id, agent) in configs {
        let mut tools = match &agent.tools {
            Some(names) => builtins
                .subset(names)
                .map_err(|name| ConfigError::Invalid {
                    setting: "agents.<id>.tools",
                    message: format!("agent `{id}` names the unknown tool `{name}`"),
                })?,
            None => builtins.clone(),
        };
        let mut model = model_for(config, &agent, agent.model.unwrap_or(config.model.kind))?;
        if id == "default" {
            if let Some(m) = &model_override {
                model = m.clone();
            }
            if let Some(t) = &tools_override {
                tools = t.clone();
            }
        }
        let model: Arc<dyn ModelProvider> = Arc::new(TimedModel {
            inner: model,
            latency: model_latency.clone(),
        });
        agents.insert(
            id.clone(),
            Arc::new(Agent {
                description: agent.description.clone().unwrap_or_default(),
                id,
                model,
                tools,
                required_roles: agent.required_roles,
                required_scopes: agent.required_scopes,
            }),
        );
    }
    Ok(agents)
}

fn model_for(
    config: &Config,
    agent: &AgentConfig,
    kind: ModelKind,
) -> Result<Arc<dyn ModelProvider>, ConfigError> {
    match kind {
        ModelKind::Scripted => Ok(Arc::new(ScriptedModel::new(Duration::from_millis(
            config.model.scripted_delay_ms,
        )))),
        ModelKind::Openai => {
            let mut openai = config.openai.clone().ok_or_else(|| ConfigError::Invalid {
                setting: "openai",
                message: "the openai model needs OPENAI_API_KEY (or an [openai] table)".into(),
            })?;
            if agent.system_prompt.is_some() {
                openai.system_prompt.clone_from(&agent.system_prompt);
            }
            openai.allow_client_system_messages |= agent.allow_client_system_messages;
            let provider =
                agui_agent::OpenAiProvider::new(openai).map_err(|error| ConfigError::Invalid {
                    setting: "openai",
                    message: error.to_string(),
                })?;
            Ok(Arc::new(provider))
        }
    }
}

/// Measures each turn's time to its first delta (`agui_model_latency_seconds`).
struct TimedModel {
    inner: Arc<dyn ModelProvider>,
    latency: Arc<Histogram>,
}

#[async_trait::async_trait]
impl ModelProvider for TimedModel {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn stream(
        &self,
        request: ModelRequest,
        cancel: CancellationToken,
    ) -> Result<ModelStream, ModelError> {
        let started = std::time::Instant::now();
        let stream = self.inner.stream(request, cancel).await?;
        let latency = self.latency.clone();
        let mut first = true;
        Ok(stream
            .inspect(move |_| {
                if std::mem::take(&mut first) {
                    latency.observe(started.elapsed());
                }
            })
            .boxed())
    }
}
