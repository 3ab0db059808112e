//! Pass-through events (reference §1 `RAW`, `CUSTOM`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::BaseEvent;

/// `RAW`: an upstream event passed through untouched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Raw {
    /// The upstream event (any JSON).
    pub event: Value,
    /// Where it came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Attribution to a subagent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl Raw {
    /// Wraps `event`.
    pub fn new(event: Value) -> Self {
        Self {
            event,
            source: None,
            subagent_run_id: None,
            base: BaseEvent::default(),
        }
    }
}

/// `CUSTOM`: an application-defined event (e.g. CopilotKit's `PredictState` convention).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Custom {
    /// The event's name.
    pub name: String,
    /// Its value (any JSON).
    pub value: Value,
    /// Attribution to a subagent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl Custom {
    /// A custom event.
    pub fn new(name: impl Into<String>, value: Value) -> Self {
        Self {
            name: name.into(),
            value,
            subagent_run_id: None,
            base: BaseEvent::default(),
        }
    }
}
