//! The crate's integration tests, one binary (one link instead of one per file).

mod common;

mod accountability;
mod agent_tools;
mod api_keys;
mod body_limits;
mod catalogue;
mod chat_errors;
mod chat_scripted;
mod cli;
mod config_keys;
mod copilotkit;
mod credentials;
mod github_login;
mod hostile;
mod hostile_body;
mod hostile_conn;
mod http_edges;
mod input_ids;
mod issuer_outage;
mod keepalive;
mod limits_local;
mod limits_redis;
mod memory;
mod openai_agent;
mod openai_fixtures;
mod replicas;
mod run_failures;
mod run_pipeline;
mod sigterm;
mod store_auth_failures;
mod store_conformance;
mod store_no_token;
