//! Lingering close: when the server closes a connection, it first half-closes (sends FIN after
//! the response), then reads and discards what the client still sends, for a bounded time and
//! number of bytes, and only then closes the socket.
//!
//! Without it, a connection closed while the client is still uploading (a 413 for a body over
//! `limits.max_body_bytes`, a 431, any refusal that does not read the body) is closed with unread
//! bytes in the kernel's receive buffer, and the kernel answers with a reset (RFC 9293 §3.6.1,
//! RFC 1122 §4.2.2.13). The reset reaches the client before it reads the answer: Node's `fetch`
//! and browsers see `EPIPE` / "Failed to fetch" instead of the 413. Apache's `lingering_close`
//! and nginx's `lingering_close` exist for the same reason (RFC 9112 §9.6 asks for it).
//!
//! hyper calls `poll_shutdown` on its IO once a connection is done (after flushing the last
//! response), so the lingering lives there: no task, no buffer beyond a stack scratch array.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// How long a closing connection keeps reading what the client still sends.
pub(crate) const LINGER_TIME: Duration = Duration::from_secs(5);

/// The fewest bytes a closing connection discards (the budget is twice `limits.max_body_bytes`,
/// at least this), so a client slightly over the limit still reads the answer.
pub(crate) const MIN_LINGER_BYTES: u64 = 1024 * 1024;

/// A TCP stream whose shutdown lingers (see the module docs).
pub(crate) struct LingeringStream {
    inner: TcpStream,
    state: State,
    /// How many bytes a close discards at most.
    budget: u64,
}

enum State {
    Open,
    /// FIN sent; discarding until EOF, the budget or the deadline.
    Lingering {
        deadline: Pin<Box<Sleep>>,
        left: u64,
    },
    Closed,
}

impl LingeringStream {
    /// Wraps `inner`; a close discards at most `budget` bytes.
    pub(crate) fn new(inner: TcpStream, budget: u64) -> Self {
        Self {
            inner,
            state: State::Open,
            budget,
        }
    }

    /// Reads and discards until the client closes, errs, the budget is spent or the deadline
    /// passes. `Ready` means: close now.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let State::Lingering { deadline, left } = &mut self.state else {
            return Poll::Ready(());
        };
        let mut scratch = [0u8; 8192];
        loop {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut self.inner).poll_read(cx, &mut buf)) {
                Ok(()) if buf.filled().is_empty() => return Poll::Ready(()),
                Ok(()) => {
                    *left = left.saturating_sub(buf.filled().len() as u64);
                    if *left == 0 {
                        return Poll::Ready(());
                    }
                }
                Err(_) => return Poll::Ready(()),
            }
        }
    }
}

impl AsyncRead for LingeringStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for LingeringStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match this.state {
                State::Open => {
                    // Half-close: the client reads the whole answer, then EOF.
                    match ready!(Pin::new(&mut this.inner).poll_shutdown(cx)) {
                        Ok(()) => {
                            this.state = State::Lingering {
                                deadline: Box::pin(tokio::time::sleep(LINGER_TIME)),
                                left: this.budget,
                            };
                        }
                        // Already reset or gone: nothing to linger for.
                        Err(_) => this.state = State::Closed,
                    }
                }
                State::Lingering { .. } => {
                    ready!(this.poll_linger(cx));
                    this.state = State::Closed;
                }
                State::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}
