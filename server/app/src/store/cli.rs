//! The library side of `agui-server audit` and `agui-server forget`: the lead's subcommands
//! parse their flags into these calls.

use std::io::Write;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::{
    AuditFilter, AuditKind, AuditRecord, ForgetCounts, Store, StoreError, WriteOp, now_ms,
};

/// Errors of the CLI helpers.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
    /// A flag value is invalid.
    #[error("{0}")]
    Invalid(String),
}

/// Prints the audit records matching `filter` to `out`, one JSON object per line, oldest
/// first. Returns how many were printed.
///
/// # Errors
///
/// [`CliError::Store`] or [`CliError::Io`].
pub async fn audit(
    store: &dyn Store,
    filter: &AuditFilter,
    out: &mut dyn Write,
) -> Result<usize, CliError> {
    let records = store.query_audit(filter).await?;
    for record in &records {
        serde_json::to_writer(&mut *out, record).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(records.len())
}

/// Deletes one subject's threads, runs and audit records (of `issuer`, or of every issuer),
/// then writes a `forget` audit record of it. The record names the issuer and a SHA-256 of the
/// subject, not the subject: forgetting someone should not leave their id behind.
///
/// # Errors
///
/// [`CliError::Store`]; [`CliError::Invalid`] for an empty subject.
pub async fn forget(
    store: &dyn Store,
    issuer: Option<&str>,
    subject: &str,
) -> Result<ForgetCounts, CliError> {
    if subject.is_empty() {
        return Err(CliError::Invalid("--subject must not be empty".to_owned()));
    }
    let counts = store.forget_subject(issuer, subject).await?;
    let mut record = AuditRecord::now(AuditKind::Forget).detail(json!({
        "subject_sha256": sha256_hex(subject),
        "threads": counts.threads,
        "runs": counts.runs,
        "audit_records": counts.audit_records,
        "history_chunks": counts.history_chunks,
    }));
    record.issuer = issuer.map(str::to_owned);
    store.write_batch(&[WriteOp::Audit(record)]).await?;
    Ok(counts)
}

/// Parses a `--kind` value (`run_started`, `auth_failure`, ...).
///
/// # Errors
///
/// [`CliError::Invalid`] listing the kinds.
pub fn parse_kind(value: &str) -> Result<AuditKind, CliError> {
    AuditKind::parse(value).ok_or_else(|| {
        let kinds: Vec<_> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
        CliError::Invalid(format!(
            "unknown audit kind `{value}` (one of: {})",
            kinds.join(", ")
        ))
    })
}

/// Parses a `--since` / `--until` value: milliseconds since the epoch (`1763800000000`) or an
/// age relative to now (`30s`, `15m`, `24h`, `7d`).
///
/// # Errors
///
/// [`CliError::Invalid`].
pub fn parse_time(value: &str) -> Result<i64, CliError> {
    parse_time_at(value, now_ms())
}

fn parse_time_at(value: &str, now: i64) -> Result<i64, CliError> {
    let invalid = || {
        CliError::Invalid(format!(
            "invalid time `{value}`: use epoch milliseconds or an age like 30s, 15m, 24h, 7d"
        ))
    };
    let value = value.trim();
    if let Ok(ms) = value.parse::<i64>() {
        return Ok(ms);
    }
    let (number, unit) = value.split_at(value.len().saturating_sub(1));
    let number: i64 = number.parse().map_err(|_| invalid())?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(invalid()),
    };
    number
        .checked_mul(unit_ms)
        .and_then(|age| now.checked_sub(age))
        .filter(|_| number >= 0)
        .ok_or_else(invalid)
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_epoch_ms_or_age() {
        assert_eq!(
            parse_time_at("1763800000000", 5).unwrap(),
            1_763_800_000_000
        );
        assert_eq!(
            parse_time_at("2h", 10_000_000).unwrap(),
            10_000_000 - 7_200_000
        );
        assert_eq!(
            parse_time_at("7d", 1_000_000_000).unwrap(),
            1_000_000_000 - 604_800_000
        );
        assert!(parse_time_at("yesterday", 0).is_err());
        assert!(parse_time_at("-3h", 0).is_err());
        assert!(parse_time_at("3w", 0).is_err());
    }

    #[test]
    fn kinds_parse_and_unknown_lists_choices() {
        assert_eq!(parse_kind("tool_call").unwrap(), AuditKind::ToolCall);
        let error = parse_kind("tools").unwrap_err().to_string();
        assert!(error.contains("run_started"), "{error}");
    }
}
