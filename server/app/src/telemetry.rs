//! Logging: `text` for people, `json` (one object per line) for log shippers. Logs carry the
//! request id, subject, thread and run ids and a token fingerprint; never a token.
//!
//! Lines are gathered in memory and written to stderr by a background thread, one `write(2)` per
//! 10 ms window (`log_writer`), so a request never waits on a `write(2)` of its log lines (at
//! thousands of runs per second that was a quarter of the CPU) nor wakes a thread per line.
//! Keep the returned guard alive until exit: dropping it writes what is pending.
//!
//! **No log injection.** Many logged values come from clients or issuers (`thread_id`, `run_id`,
//! `sub`, error texts). In the text format every field value and the message go through
//! [`EscapedFields`], which writes control characters as escapes (`\n`, `\r`, `\t`, `\u{1b}`…),
//! so a value can never end the line and start a forged one, nor reach the operator's terminal
//! as an escape sequence. tracing-subscriber 0.3.23's own text formatter only neutralises a few
//! ANSI characters in the message and writes `%`-formatted fields raw, newlines included. The
//! JSON format needs nothing: serde_json escapes every control character. Colour (ANSI codes of
//! our own, for levels) is written only when stderr is a terminal and `NO_COLOR` is unset.

use std::ffi::OsStr;
use std::fmt::{self, Write as _};
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::{Format, Writer};
use tracing_subscriber::fmt::{MakeWriter, SubscriberBuilder};

use crate::config::LogFormat;
use crate::log_writer::{BatchedWriter, LogGuard};

/// Installs the global subscriber. Later calls (tests) are ignored.
pub fn init(format: LogFormat, filter: &str) -> LogGuard {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Not lossy, and one write(2) per 10 ms window (or 64 KiB) rather than a wake-up of the
    // writer thread per line: see `log_writer`.
    let (writer, guard) = BatchedWriter::start(std::io::stderr());
    let _ = match format {
        LogFormat::Text => {
            let colour = use_colour(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            );
            text_builder(filter, writer, colour).try_init()
        }
        LogFormat::Json => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    guard
}

/// Whether the text format may colour its output: only on a terminal, and not when `NO_COLOR`
/// is set to a non-empty value (<https://no-color.org>).
fn use_colour(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// The text format: tracing-subscriber's full line format with [`EscapedFields`], colour only
/// when `colour` says so.
fn text_builder<W>(
    filter: EnvFilter,
    writer: W,
    colour: bool,
) -> SubscriberBuilder<EscapedFields, Format, EnvFilter, W>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(colour)
        .fmt_fields(EscapedFields)
}

/// Formats event and span fields like tracing-subscriber's default (`name=value` separated by
/// spaces, the message bare, strings quoted), except that every value is written through
/// [`Escaping`]: no control character reaches the line.
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapedFields;

impl<'a> MakeVisitor<Writer<'a>> for EscapedFields {
    type Visitor = EscapedVisitor<'a>;

    fn make_visitor(&self, target: Writer<'a>) -> Self::Visitor {
        EscapedVisitor {
            writer: target,
            first: true,
            result: Ok(()),
        }
    }
}

/// The visitor of [`EscapedFields`] for one set of fields.
#[derive(Debug)]
pub struct EscapedVisitor<'a> {
    writer: Writer<'a>,
    first: bool,
    result: fmt::Result,
}

impl EscapedVisitor<'_> {
    /// Writes ` name=` (or nothing for the message), then `value` escaped.
    fn field(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        let name = field.name();
        // `log` records carry their metadata as `log.*` fields, already shown by the line
        // format (as tracing-subscriber's default visitor does).
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        let separator = if std::mem::take(&mut self.first) {
            ""
        } else {
            " "
        };
        self.result = write_field(&mut self.writer, separator, name, value);
    }
}

fn write_field(
    writer: &mut Writer<'_>,
    separator: &str,
    name: &str,
    value: fmt::Arguments<'_>,
) -> fmt::Result {
    writer.write_str(separator)?;
    if name != "message" {
        writer.write_str(name.strip_prefix("r#").unwrap_or(name))?;
        writer.write_char('=')?;
    }
    Escaping(writer).write_fmt(value)
}

impl Visit for EscapedVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.field(field, format_args!("{value}"));
        } else {
            self.field(field, format_args!("{value:?}"));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, format_args!("{value}"));
        let mut source = value.source();
        if source.is_none() || self.result.is_err() {
            return;
        }
        // `error.sources=[cause, its cause]`, as tracing-subscriber writes the chain.
        let mut chain = String::new();
        while let Some(cause) = source {
            if !chain.is_empty() {
                chain.push_str(", ");
            }
            let _ = write!(chain, "{cause}");
            source = cause.source();
        }
        let name = field.name();
        self.result = write!(self.writer, " {name}.sources=[")
            .and_then(|()| Escaping(&mut self.writer).write_str(&chain))
            .and_then(|()| self.writer.write_char(']'));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, format_args!("{value:?}"));
    }
}

impl VisitOutput<fmt::Result> for EscapedVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for EscapedVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

/// A `fmt::Write` adapter that writes every control character (Unicode Cc: C0, DEL, C1) and the
/// Unicode line and paragraph separators as a Rust-style escape: `\n`, `\r`, `\t`, else
/// `\u{1b}`. Everything else passes unchanged, so ordinary values read as before.
struct Escaping<'w, W: fmt::Write + ?Sized>(&'w mut W);

impl<W: fmt::Write + ?Sized> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut clean = 0;
        for (at, c) in s.char_indices() {
            if !(c.is_control() || c == '\u{2028}' || c == '\u{2029}') {
                continue;
            }
            self.0.write_str(&s[clean..at])?;
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                c => write!(self.0, "\\u{{{:x}}}", u32::from(c))?,
            }
            clean = at + c.len_utf8();
        }
        self.0.write_str(&s[clean..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Collects what the formatter writes. Not a terminal.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;

        fn make_writer(&'a self) -> Capture {
            self.clone()
        }
    }

    /// What the text format writes for `log`, colour on or off.
    fn text_output(colour: bool, log: impl FnOnce()) -> String {
        let capture = Capture::default();
        let subscriber = text_builder(EnvFilter::new("info"), capture.clone(), colour).finish();
        tracing::subscriber::with_default(subscriber, log);
        String::from_utf8(capture.0.lock().unwrap().clone()).unwrap()
    }

    fn hostile_event() {
        let span = tracing::info_span!("request", request_id = %"req\nINFO forged span");
        let _entered = span.enter();
        tracing::info!(
            thread_id = %"t1\nINFO agui_server: forged line",
            run_id = %"r1\r\u{1b}[2J",
            sub = "mallory\u{1b}[31m",
            error = ?"e\u{85}\u{2028}x",
            "run {}\u{7}",
            "started\nforged"
        );
    }

    #[test]
    fn client_values_cannot_start_a_line_or_reach_the_terminal() {
        let line = text_output(false, hostile_event);
        assert_eq!(line.matches('\n').count(), 1, "one line: {line:?}");
        assert!(line.ends_with('\n'), "{line:?}");
        for raw in ['\r', '\u{1b}', '\u{7}', '\u{85}', '\u{2028}'] {
            assert!(!line.contains(raw), "{raw:?} in {line:?}");
        }
        for escaped in [
            r"thread_id=t1\nINFO agui_server: forged line",
            r"run_id=r1\r\u{1b}[2J",
            r#"sub="mallory\u{1b}[31m""#,
            r"run started\nforged\u{7}",
            r"request{request_id=req\nINFO forged span}",
            r#"error="e\u{85}\u{2028}x""#,
        ] {
            assert!(line.contains(escaped), "{escaped} not in {line:?}");
        }
    }

    #[test]
    fn ordinary_values_are_written_unchanged() {
        let line = text_output(false, || {
            let span = tracing::info_span!("request", request_id = %"0b7c3f6e");
            let _entered = span.enter();
            tracing::info!(
                thread_id = %"thread_1",
                sub = "alice",
                n = 3,
                ok = true,
                "run started for {}",
                "ünïcödé ✓ \\n"
            );
        });
        for expected in [
            "request{request_id=0b7c3f6e}",
            "run started for ünïcödé ✓ \\n thread_id=thread_1 sub=\"alice\" n=3 ok=true\n",
        ] {
            assert!(line.contains(expected), "{expected} not in {line:?}");
        }
    }

    #[test]
    fn errors_and_their_sources_are_escaped() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("outer\nfailure")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let error = Outer(std::io::Error::other("inner\u{1b}[2J"));
        let line = text_output(false, || {
            tracing::warn!(
                error = &error as &(dyn std::error::Error + 'static),
                "failed"
            );
        });
        assert_eq!(line.matches('\n').count(), 1, "{line:?}");
        assert!(
            line.contains(r"failed error=outer\nfailure error.sources=[inner\u{1b}[2J]"),
            "{line:?}"
        );
    }

    #[test]
    fn no_colour_codes_unless_asked_for() {
        let plain = text_output(false, || tracing::info!(thread_id = %"t", "hello"));
        assert!(!plain.contains('\u{1b}'), "{plain:?}");
        // Positive control: with colour on, the level is coloured, and a value still cannot
        // carry an escape of its own.
        let coloured = text_output(true, hostile_event);
        assert!(coloured.contains("\u{1b}["), "{coloured:?}");
        assert!(!coloured.contains("\u{1b}[2J") && !coloured.contains("\u{1b}[31m"));
        assert_eq!(coloured.matches('\n').count(), 1);
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(!use_colour(false, None), "stderr is not a terminal");
        assert!(!use_colour(false, Some(OsStr::new(""))));
        assert!(use_colour(true, None));
        assert!(
            use_colour(true, Some(OsStr::new(""))),
            "an empty NO_COLOR is unset"
        );
        assert!(!use_colour(true, Some(OsStr::new("1"))));
    }
}
