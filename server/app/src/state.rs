//! The shared application state: configuration, the authenticator, the agent parts, metrics,
//! and the shutdown machinery. Cheap to clone (`Arc` inside).

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use agui_agent::{AuditSink, DocumentStore, ModelProvider, RunSettings, ToolRegistry};
use agui_auth::Authenticator;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accountability::Accountability;
use crate::agents::{self, Agent};
use crate::config::{Config, ConfigError};
use crate::metrics::Metrics;

/// Shared state of one server.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What [`AppState`] holds.
pub struct Inner {
    /// The validated configuration.
    pub config: Config,
    /// Verifies tokens against the configured issuers.
    pub auth: Authenticator,
    /// The agents by id; `default` serves `POST /chat`.
    pub agents: BTreeMap<String, Arc<Agent>>,
    /// The built-in document tools' store (inspectable by tests and operators).
    pub documents: DocumentStore,
    /// An audit sink that replaces the store's for run events (tests); `None` in production.
    pub audit_override: Option<Arc<dyn AuditSink>>,
    /// The store, the audit log, the auth-failure aggregator and the per-principal limiter.
    pub accountability: Arc<Accountability>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Fires when the server starts shutting down; every run watches it.
    pub shutdown: CancellationToken,
    /// Every spawned run, so shutdown can wait for them.
    pub runs: TaskTracker,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("listen", &self.config.listen)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Starts building the state for `config`.
    pub fn builder(config: Config) -> AppStateBuilder {
        AppStateBuilder {
            config,
            model: None,
            tools: None,
            audit: None,
            authenticator: None,
        }
    }

    /// The limits of each run.
    pub fn run_settings(&self) -> RunSettings {
        RunSettings {
            max_turns: self.config.limits.max_turns,
            tool_timeout: Duration::from_secs(self.config.limits.tool_timeout_secs),
            run_timeout: self.config.run_timeout(),
        }
    }
}

/// Builds an [`AppState`]; tests swap in their own model, tools or audit sink.
pub struct AppStateBuilder {
    config: Config,
    model: Option<Arc<dyn ModelProvider>>,
    tools: Option<ToolRegistry>,
    audit: Option<Arc<dyn AuditSink>>,
    authenticator: Option<Authenticator>,
}

impl AppStateBuilder {
    /// Uses `model` instead of the configured one.
    pub fn model(mut self, model: Arc<dyn ModelProvider>) -> Self {
        self.model = Some(model);
        self
    }

    /// Uses `tools` instead of the built-in tools.
    pub fn tools(mut self, tools: ToolRegistry) -> Self {
        self.tools = Some(tools);
        self
    }

    /// Sends run events to `audit` instead of the store's audit log.
    pub fn audit(mut self, audit: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Uses an already started authenticator (e.g. `dev`'s).
    pub fn authenticator(mut self, auth: Authenticator) -> Self {
        self.authenticator = Some(auth);
        self
    }

    /// Validates the config, starts the authenticator (OIDC discovery) and assembles the state.
    ///
    /// # Errors
    /// A config that cannot work, or an issuer whose discovery document names another issuer.
    pub async fn build(self) -> Result<AppState, ConfigError> {
        self.config.validate()?;
        let auth = match self.authenticator {
            Some(auth) => auth,
            None => Authenticator::start(self.config.auth.clone())
                .await
                .map_err(|error| ConfigError::Auth(error.to_string()))?,
        };
        let documents = DocumentStore::default();
        let metrics = Metrics::default();
        let agents = agents::build(
            &self.config,
            &documents,
            self.model,
            self.tools,
            &metrics.model_latency,
        )?;
        let shutdown = CancellationToken::new();
        let accountability = Accountability::start(&self.config, shutdown.clone()).await?;
        Ok(AppState(Arc::new(Inner {
            config: self.config,
            auth,
            agents,
            documents,
            audit_override: self.audit,
            accountability,
            metrics,
            shutdown,
            runs: TaskTracker::new(),
        })))
    }
}
