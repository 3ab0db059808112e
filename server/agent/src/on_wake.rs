//! A future polled only when it woke its task.
//!
//! The supervisor races a run's work against the run's stops: the client gone, shutdown, a stop
//! request and the deadline. `select!` polls every branch whenever the task wakes, and a paced
//! run wakes once or twice per event for its work alone; every poll of a
//! `CancellationToken::cancelled()` takes the token's mutex and its `Notify`'s waiter lock.
//! Three tokens made that ~4 % of a paced stream's CPU (bench/PROFILE.md, "What remains").
//! Behind [`OnWake`] the stops are polled on the first poll and then only after one of them
//! woke the task: the cost per wake-up of the work is two atomic operations.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures::task::AtomicWaker;

/// Polls its future only on the first poll and after the future woke (see the module docs).
pub(crate) struct OnWake<F> {
    future: Pin<Box<F>>,
    flag: Arc<Flag>,
    /// The waker handed to `future`: it raises `flag` and wakes the task.
    waker: Waker,
}

/// Whether the wrapped future woke since it was last polled, and the task to wake.
struct Flag {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<F: Future> OnWake<F> {
    /// Wraps `future`.
    pub(crate) fn new(future: F) -> Self {
        let flag = Arc::new(Flag {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        Self {
            future: Box::pin(future),
            waker: Waker::from(flag.clone()),
            flag,
        }
    }
}

impl<F: Future> Future for OnWake<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        // Registered before the flag is read: a wake between the two is seen by the read, one
        // after it wakes the task registered here.
        this.flag.task.register(cx.waker());
        if !this.flag.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        this.future
            .as_mut()
            .poll(&mut Context::from_waker(&this.waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use tokio_util::sync::CancellationToken;

    /// A future that counts its polls and is ready once `token` is cancelled.
    fn counted(token: CancellationToken, polls: Arc<AtomicUsize>) -> impl Future<Output = ()> {
        let mut cancelled = Box::pin(token.cancelled_owned());
        std::future::poll_fn(move |cx| {
            polls.fetch_add(1, Ordering::Relaxed);
            cancelled.as_mut().poll(cx)
        })
    }

    #[tokio::test]
    async fn the_future_is_polled_first_then_only_when_it_woke() {
        let token = CancellationToken::new();
        let polls = Arc::new(AtomicUsize::new(0));
        let mut on_wake = OnWake::new(counted(token.clone(), polls.clone()));
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        for _ in 0..5 {
            assert!(Pin::new(&mut on_wake).poll(&mut cx).is_pending());
        }
        assert_eq!(
            polls.load(Ordering::Relaxed),
            1,
            "polled again without a wake"
        );
        token.cancel();
        assert!(Pin::new(&mut on_wake).poll(&mut cx).is_ready());
        assert_eq!(polls.load(Ordering::Relaxed), 2);
    }

    /// The task is woken through the wrapper: a task waiting only on the wrapped future ends
    /// when the future's event happens (the control: it does not end before).
    #[tokio::test]
    async fn the_futures_wake_reaches_the_task() {
        let token = CancellationToken::new();
        let waiting = tokio::spawn(OnWake::new(token.clone().cancelled_owned()));
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        token.cancel();
        waiting.await.unwrap();
    }
}
