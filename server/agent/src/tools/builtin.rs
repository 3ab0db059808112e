//! The built-in demo tools. Each shows one rule of per-user tools:
//!
//! - `whoami`: the verified identity, straight from the principal.
//! - `list_my_documents`, `get_document(id)`: only ever the caller's own records (keyed by issuer
//!   and subject; another user's id finds nothing).
//! - `delete_document(id)`: requires the `admin` role; a viewer is refused by the policy, not by
//!   the tool.
//! - `set_preference(key, value)`: changes the run's shared state (`STATE_DELTA`).
//!
//! The documents live in memory, seeded per user on first use; a durable store can replace
//! [`DocumentStore`] behind the same tools.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use agui_auth::Principal;
use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Value, json};

use super::{Tool, ToolContext, ToolError, ToolPolicy, ToolSpec};

/// `whoami`: the caller's verified identity, as the server sees it.
#[derive(Debug, Clone, Copy)]
pub struct WhoAmI;

#[async_trait]
impl Tool for WhoAmI {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "whoami".into(),
            description: "Returns the signed-in user's verified identity: issuer, subject, name, email, roles and scopes.".into(),
            parameters: json!({"type": "object", "properties": {}, "additionalProperties": false}),
        }
    }

    async fn call(&self, ctx: ToolContext, _args: Value) -> Result<Value, ToolError> {
        Ok(ctx.principal.public_json())
    }
}

/// One demo document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Document {
    /// Per-user id (1, 2, 3 …).
    pub id: u64,
    /// Title.
    pub title: String,
    /// Body text.
    pub body: String,
}

/// A user: (issuer, subject).
type Owner = (String, String);

/// The demo documents of every user, keyed by (issuer, subject). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct DocumentStore(Arc<Mutex<HashMap<Owner, Vec<Document>>>>);

impl DocumentStore {
    fn with_user<R>(&self, principal: &Principal, f: impl FnOnce(&mut Vec<Document>) -> R) -> R {
        // Held only for in-memory edits, never across an .await.
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let docs = all
            .entry((principal.issuer.clone(), principal.subject.clone()))
            .or_insert_with(|| seed(principal.display_name()));
        f(docs)
    }

    /// The caller's documents.
    pub fn list(&self, principal: &Principal) -> Vec<Document> {
        self.with_user(principal, |docs| docs.clone())
    }

    /// One of the caller's documents.
    pub fn get(&self, principal: &Principal, id: u64) -> Option<Document> {
        self.with_user(principal, |docs| docs.iter().find(|d| d.id == id).cloned())
    }

    /// Deletes one of the caller's documents; whether it existed.
    pub fn delete(&self, principal: &Principal, id: u64) -> bool {
        self.with_user(principal, |docs| {
            let before = docs.len();
            docs.retain(|d| d.id != id);
            docs.len() != before
        })
    }
}

fn seed(owner: &str) -> Vec<Document> {
    [
        ("Welcome", "How to use this workspace."),
        ("Quarterly plan", "Goals and milestones for next quarter."),
        ("Meeting notes", "Decisions from Monday's sync."),
    ]
    .into_iter()
    .zip(1..)
    .map(|((title, body), id)| Document {
        id,
        title: title.into(),
        body: format!("{body} (owner: {owner})"),
    })
    .collect()
}

fn id_schema(what: &str) -> Value {
    json!({
        "type": "object",
        "properties": {"id": {"type": "integer", "minimum": 1, "description": what}},
        "required": ["id"],
        "additionalProperties": false
    })
}

fn id_of(args: &Value) -> u64 {
    // The schema was validated before the call: `id` is a positive integer.
    args["id"].as_u64().unwrap_or_default()
}

/// `list_my_documents`: the caller's documents (id and title).
#[derive(Debug, Clone)]
pub struct ListMyDocuments(pub DocumentStore);

#[async_trait]
impl Tool for ListMyDocuments {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "list_my_documents".into(),
            description: "Lists the signed-in user's documents (id and title).".into(),
            parameters: json!({"type": "object", "properties": {}, "additionalProperties": false}),
        }
    }

    async fn call(&self, ctx: ToolContext, _args: Value) -> Result<Value, ToolError> {
        let docs: Vec<Value> = self
            .0
            .list(&ctx.principal)
            .into_iter()
            .map(|d| json!({"id": d.id, "title": d.title}))
            .collect();
        Ok(json!({ "documents": docs }))
    }
}

/// `get_document(id)`: one of the caller's documents.
#[derive(Debug, Clone)]
pub struct GetDocument(pub DocumentStore);

#[async_trait]
impl Tool for GetDocument {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "get_document".into(),
            description: "Returns one of the signed-in user's documents by id.".into(),
            parameters: id_schema("The document's id, as listed by list_my_documents."),
        }
    }

    async fn call(&self, ctx: ToolContext, args: Value) -> Result<Value, ToolError> {
        let id = id_of(&args);
        let doc = self
            .0
            .get(&ctx.principal, id)
            .ok_or_else(|| ToolError::NotFound(format!("you have no document {id}")))?;
        Ok(serde_json::to_value(doc).unwrap_or_default())
    }
}

/// `delete_document(id)`: deletes one of the caller's documents; role `admin` required.
#[derive(Debug, Clone)]
pub struct DeleteDocument(pub DocumentStore);

#[async_trait]
impl Tool for DeleteDocument {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "delete_document".into(),
            description:
                "Deletes one of the signed-in user's documents by id (administrators only).".into(),
            parameters: id_schema("The document's id."),
        }
    }

    fn policy(&self) -> ToolPolicy {
        ToolPolicy::role("admin")
    }

    async fn call(&self, ctx: ToolContext, args: Value) -> Result<Value, ToolError> {
        let id = id_of(&args);
        if self.0.delete(&ctx.principal, id) {
            Ok(json!({"deleted": id}))
        } else {
            Err(ToolError::NotFound(format!("you have no document {id}")))
        }
    }
}

/// `set_preference(key, value)`: stores a preference in the shared state under `/preferences`.
#[derive(Debug, Clone, Copy)]
pub struct SetPreference;

#[async_trait]
impl Tool for SetPreference {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "set_preference".into(),
            description: "Remembers a user preference (e.g. theme, language) in the shared state."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "key": {"type": "string", "minLength": 1, "maxLength": 64},
                    "value": {"type": "string", "maxLength": 1024}
                },
                "required": ["key", "value"],
                "additionalProperties": false
            }),
        }
    }

    async fn call(&self, ctx: ToolContext, args: Value) -> Result<Value, ToolError> {
        let key = args["key"].as_str().unwrap_or_default().to_owned();
        let value = args["value"].clone();
        ctx.state.set_member("preferences", &key, value.clone());
        Ok(json!({"preference": key, "value": value}))
    }
}
