//! The shared application state: configuration, the authenticator, the agent parts, metrics,
//! and the shutdown machinery. Cheap to clone (`Arc` inside).

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use agui_agent::{DocumentStore, ModelProvider, RunSettings, ToolRegistry};
use agui_auth::Authenticator;
use ipnet::IpNet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admission::StreamCap;
use crate::agents::{self, Agent};
use crate::backends::Backends;
use crate::config::{Config, ConfigError};
use crate::history::History;
use crate::metrics::Metrics;
use crate::trim::Trimmer;
use crate::upload::BodyBudgets;

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
    /// The store, the audit log, the auth-failure aggregator and the per-principal limiter.
    pub backends: Arc<Backends>,
    /// The server-wide cap on open streams.
    pub stream_cap: StreamCap,
    /// The server-wide budgets for buffered request bodies.
    pub body_budgets: Arc<BodyBudgets>,
    /// Returns free memory to the system after a burst of bodies or streams.
    pub(crate) trimmer: Trimmer,
    /// Thread history: the runs streaming here and their followers.
    pub(crate) history: Arc<History>,
    /// Proxies whose `X-Forwarded-For` is believed for the client address.
    pub trusted_proxies: Vec<IpNet>,
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
            authenticator: None,
        }
    }

    /// Every metric in Prometheus text format, as `GET /metrics` serves it.
    pub fn metrics_text(&self) -> String {
        let mut extra = self.auth.stats().to_prometheus();
        self.body_budgets.render(&mut extra);
        if let Some(connected) = self.backends.connected() {
            use std::fmt::Write as _;
            let stats = connected.log.stats();
            let _ = writeln!(
                extra,
                "# HELP agui_audit_commits_total Transactions the audit log's group commit wrote.\n\
                 # TYPE agui_audit_commits_total counter\n\
                 agui_audit_commits_total {}\n\
                 # HELP agui_audit_ops_written_total Store operations (run starts and ends, audit records) the group commit wrote.\n\
                 # TYPE agui_audit_ops_written_total counter\n\
                 agui_audit_ops_written_total {}",
                stats.commits, stats.written
            );
        }
        self.trimmer.render(&mut extra);
        self.metrics.render(self.stream_cap.open(), &extra)
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

/// Builds an [`AppState`]; tests swap in their own model or tools.
pub struct AppStateBuilder {
    config: Config,
    model: Option<Arc<dyn ModelProvider>>,
    tools: Option<ToolRegistry>,
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
        let trusted_proxies = crate::client_addr::parse_trusted_proxies(
            &self.config.trusted_proxies,
        )
        .map_err(|message| ConfigError::Invalid {
            setting: "trusted_proxies",
            message,
        })?;
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
        let backends = Backends::start(&self.config, shutdown.clone()).await;
        let history = History::new(self.config.history.clone());
        history.spawn(backends.clone(), shutdown.clone());
        let trimmer = Trimmer::default();
        Ok(AppState(Arc::new(Inner {
            history,
            stream_cap: StreamCap::new(self.config.limits.max_open_streams, trimmer.clone()),
            body_budgets: Arc::new(BodyBudgets::new(&self.config.limits, trimmer.clone())),
            trimmer,
            trusted_proxies,
            config: self.config,
            auth,
            agents,
            documents,
            backends,
            metrics,
            shutdown,
            runs: TaskTracker::new(),
        })))
    }
}
