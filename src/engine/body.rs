//! The body of a delivery request: the message's own bytes, or a workflow step's steps
//! array sent as the run's shared fragments one after the other (never joined into a copy).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use super::core::Dispatch;

#[derive(Clone, Debug, Default)]
pub struct DeliveryBody {
    parts: VecDeque<Bytes>,
    /// Bytes not yet sent.
    len: u64,
}

impl DeliveryBody {
    /// What `d` delivers.
    pub fn of(d: &Dispatch) -> Self {
        match d.workflow.as_ref().and_then(|w| w.body.as_ref()) {
            Some(b) => Self {
                parts: b.parts.iter().filter(|p| !p.is_empty()).cloned().collect(),
                len: b.len as u64,
            },
            None => Self::from(d.spec.body.clone()),
        }
    }
}

impl From<Bytes> for DeliveryBody {
    fn from(b: Bytes) -> Self {
        let len = b.len() as u64;
        let parts = if b.is_empty() {
            VecDeque::new()
        } else {
            VecDeque::from([b])
        };
        Self { parts, len }
    }
}

impl Body for DeliveryBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let part = self.parts.pop_front();
        if let Some(p) = &part {
            self.len = self.len.saturating_sub(p.len() as u64);
        }
        Poll::Ready(part.map(|p| Ok(Frame::data(p))))
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        // Exact, so the request carries a Content-Length (some receivers read only that).
        SizeHint::with_exact(self.len)
    }
}
