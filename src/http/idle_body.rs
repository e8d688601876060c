//! A request body that fails once it sent nothing for a while.
//!
//! tower-http's `TimeoutBody` arms its timer at every poll, even when the next frame is
//! already buffered, which is nearly always (a publish's body arrives with its head): a
//! timer registered and removed per request. This one polls the body first and arms the
//! timer only when the body has to wait.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Sleep, sleep};

pub struct IdleTimeoutBody<B> {
    inner: B,
    timeout: Duration,
    /// Armed while the body waits for data.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<B> IdleTimeoutBody<B> {
    pub fn new(timeout: Duration, inner: B) -> Self {
        Self {
            inner,
            timeout,
            sleep: None,
        }
    }
}

/// The body sent nothing for the idle timeout.
#[derive(Debug)]
pub struct BodyIdle;

impl std::fmt::Display for BodyIdle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body sent nothing for too long")
    }
}

impl std::error::Error for BodyIdle {}

impl<B> Body for IdleTimeoutBody<B>
where
    B: Body + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = B::Data;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.sleep = None;
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        let timeout = this.timeout;
        let timer = this.sleep.get_or_insert_with(|| Box::pin(sleep(timeout)));
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(Some(Err(Box::new(BodyIdle))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
