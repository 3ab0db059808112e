//! Reading stored rows into the store's types, written once: each backend only says how to read
//! one column of its row type ([`Row`]).

use super::{
    AuditKind, AuditRecord, HistoryChunk, OpenRun, PrincipalKey, ReplayChunk, RunOutcome,
    RunRecord, StoreError, ThreadReplay, ThreadSummary,
};

/// One result row of a backend, read by column name.
pub(crate) trait Row {
    /// A text column (`NULL` → `None`).
    fn text(&self, column: &str) -> Result<Option<String>, StoreError>;
    /// An integer column (`NULL` → `None`).
    fn int(&self, column: &str) -> Result<Option<i64>, StoreError>;
}

fn required<T>(value: Option<T>, column: &str) -> Result<T, StoreError> {
    value.ok_or_else(|| StoreError::Corrupt(format!("{column} is NULL")))
}

fn text(row: &impl Row, column: &str) -> Result<String, StoreError> {
    required(row.text(column)?, column)
}

fn int(row: &impl Row, column: &str) -> Result<i64, StoreError> {
    required(row.int(column)?, column)
}

fn json(text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A `runs` row (`usage` selected as text).
pub(crate) fn run(row: &impl Row) -> Result<RunRecord, StoreError> {
    Ok(RunRecord {
        thread_id: text(row, "thread_id")?,
        run_id: text(row, "run_id")?,
        issuer: text(row, "issuer")?,
        subject: text(row, "subject")?,
        agent: text(row, "agent")?,
        credential_source: text(row, "credential_source")?,
        instance: text(row, "instance")?,
        started_at: int(row, "started_at")?,
        ended_at: row.int("ended_at")?,
        outcome: row
            .text("outcome")?
            .map(|name| RunOutcome::parse(&name).ok_or(StoreError::Corrupt(name)))
            .transpose()?,
        error_code: row.text("error_code")?,
        usage: row.text("usage")?.as_deref().map(json).transpose()?,
        tool_calls: int(row, "tool_calls")?,
    })
}

/// An `audit` row (`detail` selected as text).
pub(crate) fn audit(row: &impl Row) -> Result<AuditRecord, StoreError> {
    let kind = text(row, "kind")?;
    Ok(AuditRecord {
        id: Some(int(row, "id")?),
        at: int(row, "at")?,
        kind: AuditKind::parse(&kind).ok_or(StoreError::Corrupt(kind))?,
        issuer: row.text("issuer")?,
        subject: row.text("subject")?,
        thread_id: row.text("thread_id")?,
        run_id: row.text("run_id")?,
        detail: json(&text(row, "detail")?)?,
    })
}

/// A `threads` row as `/threads` lists it.
pub(crate) fn thread(row: &impl Row) -> Result<ThreadSummary, StoreError> {
    Ok(ThreadSummary {
        thread_id: text(row, "thread_id")?,
        created_at: int(row, "created_at")?,
        last_run_at: row.int("last_run_at")?,
        title: row.text("title")?,
        agent: row.text("agent")?,
    })
}

/// A `history` row.
pub(crate) fn history(row: &impl Row) -> Result<HistoryChunk, StoreError> {
    Ok(HistoryChunk {
        thread_id: text(row, "thread_id")?,
        run_id: text(row, "run_id")?,
        chunk: int(row, "chunk")?,
        started_at: int(row, "started_at")?,
        at: int(row, "at")?,
        events: text(row, "events")?,
    })
}

/// An open run with its instance's heartbeat (`runs` joined with `instances`).
pub(crate) fn open_run(row: &impl Row) -> Result<OpenRun, StoreError> {
    Ok(OpenRun {
        run_id: text(row, "run_id")?,
        instance: text(row, "instance")?,
        started_at: int(row, "started_at")?,
        heartbeat_at: row.int("heartbeat_at")?,
    })
}

/// Adds one row of [`super::rules::thread_replay_sql`] to `replay`.
pub(crate) fn add_replay_row(replay: &mut ThreadReplay, row: &impl Row) -> Result<(), StoreError> {
    match int(row, "part")? {
        0 => {
            replay.owner = Some(PrincipalKey::new(
                text(row, "issuer")?,
                text(row, "subject")?,
            ))
        }
        1 => replay.chunks.push(ReplayChunk {
            run_id: text(row, "run_id")?,
            chunk: int(row, "chunk")?,
            started_at: int(row, "started_at")?,
            events: text(row, "events")?,
        }),
        _ => replay.open.push(OpenRun {
            run_id: text(row, "run_id")?,
            instance: text(row, "instance")?,
            started_at: int(row, "started_at")?,
            heartbeat_at: row.int("heartbeat_at")?,
        }),
    }
    Ok(())
}
