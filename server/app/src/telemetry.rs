//! Logging: `text` for people, `json` (one object per line) for log shippers. Logs carry the
//! request id, subject, thread and run ids and a token fingerprint; never a token.
//!
//! Lines are handed to a background thread that writes them to stderr, so a request never waits
//! on a `write(2)` of its log lines (at thousands of runs per second that was a quarter of the
//! CPU). Keep the returned guard alive until exit: dropping it flushes what is queued.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. Later calls (tests) are ignored.
#[must_use = "dropping the guard stops the log writer; hold it until exit"]
pub fn init(format: LogFormat, filter: &str) -> WorkerGuard {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Not lossy: when the queue is full, logging waits rather than drops lines. The writer
    // thread drains every queued line into the buffer, then flushes: one write(2) per batch
    // instead of one per line (two lines per run were two syscalls per request).
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("agui-log-writer")
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    guard
}
