//! [`BatchedWriter`]: log lines gathered in memory and written to stderr by one thread, one
//! `write(2)` per window instead of one wake-up per line.
//!
//! `tracing-appender`'s non-blocking writer sends every line through a channel to its thread:
//! each line that finds the thread asleep wakes it (a `futex(2)` from the request's thread, a
//! context switch on a one-core server) and it writes what it drained, so at two lines per run
//! a short run cost about one wake-up and one `write(2)` of its own. Here a line is appended to
//! a buffer under a lock held for the copy; the thread is woken only by the first line after a
//! write (or when [`FLUSH_AT`] bytes are waiting), then lets the window fill for
//! [`FLUSH_EVERY`] before it writes everything at once. A busy server thus makes at most about
//! a hundred writes a second, whatever its request rate.
//!
//! Not lossy: past [`MAX_PENDING`] bytes (stderr slower than the logs) a line waits for the
//! thread to take the buffer, as the non-blocking writer's full channel made it wait. Lines of a
//! process killed by a signal in the last window are lost (they were in the channel before);
//! [`LogGuard`]'s drop writes what is pending and waits for it.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// How long the first line of a batch waits for others to join it.
pub const FLUSH_EVERY: Duration = Duration::from_millis(10);
/// Pending bytes that are written at once, without waiting for the window to end.
pub const FLUSH_AT: usize = 64 * 1024;
/// Pending bytes beyond which a new line waits until the thread has taken the buffer.
pub const MAX_PENDING: usize = 8 * 1024 * 1024;

/// The writer `tracing_subscriber::fmt` formats into; cheap to clone.
#[derive(Clone)]
pub struct BatchedWriter {
    shared: Arc<Shared>,
}

/// Stops the writer thread when dropped, after it has written every pending line.
#[must_use = "dropping the guard stops the log writer; hold it until exit"]
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    /// Held to append one line or to swap the buffer out: never across a write.
    state: Mutex<State>,
    /// Tells the thread a batch started, is big enough, or the guard is gone.
    wake: Condvar,
    /// Tells waiting lines the buffer was taken.
    drained: Condvar,
    window: Duration,
}

#[derive(Default)]
struct State {
    pending: Vec<u8>,
    closed: bool,
}

impl BatchedWriter {
    /// Starts the writer thread over `out` (stderr in the server), with [`FLUSH_EVERY`].
    ///
    /// # Panics
    /// The thread cannot be spawned.
    pub fn start<W: Write + Send + 'static>(out: W) -> (Self, LogGuard) {
        Self::with_window(out, FLUSH_EVERY)
    }

    /// [`BatchedWriter::start`] with another window (tests use a long one).
    ///
    /// # Panics
    /// The thread cannot be spawned.
    pub fn with_window<W: Write + Send + 'static>(out: W, window: Duration) -> (Self, LogGuard) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            drained: Condvar::new(),
            window,
        });
        let thread = std::thread::Builder::new()
            .name("agui-log-writer".into())
            .spawn({
                let shared = shared.clone();
                move || shared.run(out)
            })
            .expect("spawn the log writer thread");
        let guard = LogGuard {
            shared: shared.clone(),
            thread: Some(thread),
        };
        (Self { shared }, guard)
    }

    fn push(&self, line: &[u8]) {
        let shared = &self.shared;
        let mut state = shared.lock();
        if state.pending.len() >= MAX_PENDING && !state.closed {
            state = shared
                .drained
                .wait_while(state, |s| s.pending.len() >= MAX_PENDING && !s.closed)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let starts_batch = state.pending.is_empty();
        state.pending.extend_from_slice(line);
        let full = state.pending.len() >= FLUSH_AT;
        drop(state);
        if starts_batch || full {
            shared.wake.notify_one();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The thread: wait for a first line, let the window fill, write the batch; until the
    /// guard is dropped and nothing is left.
    fn run<W: Write>(&self, mut out: W) {
        let mut batch = Vec::with_capacity(FLUSH_AT);
        loop {
            let mut state = self
                .wake
                .wait_while(self.lock(), |s| s.pending.is_empty() && !s.closed)
                .unwrap_or_else(PoisonError::into_inner);
            let deadline = Instant::now() + self.window;
            while !state.closed && state.pending.len() < FLUSH_AT {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                state = self
                    .wake
                    .wait_timeout(state, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            std::mem::swap(&mut state.pending, &mut batch);
            let closed = state.closed;
            drop(state);
            self.drained.notify_all();
            if !batch.is_empty() {
                // Nowhere to report a failed log write; the next batch tries again.
                let _ = out.write_all(&batch).and_then(|()| out.flush());
                batch.clear();
            }
            if closed && self.lock().pending.is_empty() {
                return;
            }
        }
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        self.shared.drained.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One event's output: `tracing_subscriber::fmt` formats a whole line, then writes it here.
pub struct Line<'a>(&'a BatchedWriter);

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.push(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records every `write` call it gets.
    #[derive(Clone, Default)]
    struct Recorder(Arc<(Mutex<Vec<Vec<u8>>>, Condvar)>);

    impl Write for Recorder {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.0.lock().unwrap().push(bytes.to_vec());
            self.0.1.notify_all();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Recorder {
        fn writes(&self) -> Vec<Vec<u8>> {
            self.0.0.lock().unwrap().clone()
        }

        fn wait_for_writes(&self, n: usize) {
            let calls = self.0.0.lock().unwrap();
            drop(self.0.1.wait_while(calls, |c| c.len() < n).unwrap());
        }
    }

    const HOUR: Duration = Duration::from_secs(3_600);

    fn line(writer: &BatchedWriter, text: &str) {
        writer.make_writer().write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn lines_of_one_window_are_one_write_in_order_and_the_guard_flushes_them() {
        let out = Recorder::default();
        let (writer, guard) = BatchedWriter::with_window(out.clone(), HOUR);
        let expected: String = (0..1_000).map(|i| format!("line {i}\n")).collect();
        for i in 0..1_000 {
            line(&writer, &format!("line {i}\n"));
        }
        // The window is an hour: nothing is written until the guard goes.
        assert!(out.writes().is_empty());
        drop(guard);
        let writes = out.writes();
        assert_eq!(writes.len(), 1, "one write for the whole window");
        assert_eq!(String::from_utf8(writes.concat()).unwrap(), expected);
    }

    #[test]
    fn a_full_buffer_is_written_before_its_window_ends() {
        let out = Recorder::default();
        let (writer, guard) = BatchedWriter::with_window(out.clone(), HOUR);
        let big = "x".repeat(FLUSH_AT - 1) + "\n";
        line(&writer, &big);
        // Within an hour's window only the size can have caused this write.
        out.wait_for_writes(1);
        assert_eq!(out.writes(), vec![big.into_bytes()]);
        // Positive control: a small line waits for its window (here: the guard).
        line(&writer, "small\n");
        assert_eq!(out.writes().len(), 1);
        drop(guard);
        assert_eq!(out.writes().len(), 2);
        assert_eq!(out.writes()[1], b"small\n");
    }

    #[test]
    fn a_short_window_writes_without_the_guard() {
        let out = Recorder::default();
        let (writer, _guard) = BatchedWriter::with_window(out.clone(), Duration::from_millis(1));
        line(&writer, "a\n");
        out.wait_for_writes(1);
        line(&writer, "b\n");
        out.wait_for_writes(2);
        assert_eq!(out.writes().concat(), b"a\nb\n");
    }
}
