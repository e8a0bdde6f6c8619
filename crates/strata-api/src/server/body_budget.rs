//! One node-wide budget of request body bytes held in memory, shared by REST and gRPC.
//!
//! Invariant: a byte of a request body is counted against the budget before the server
//! buffers it, and stays counted while it may still be in memory. A REST body is counted by
//! its `Content-Length` before it is read (or frame by frame as it arrives when the length is
//! unknown) and released once the response is produced; the handler keeps the buffered body
//! until then. A gRPC body is counted frame by frame, and only its last `max_message` bytes
//! stay counted: tonic's decoder holds at most one message being assembled, so a long
//! `WriteStream` holds what one message needs, not everything it ever sent.
//!
//! A body that does not fit is refused at once, never queued: REST answers `503 overloaded`
//! with `Retry-After`, gRPC `RESOURCE_EXHAUSTED`. So many slow clients each sending a large
//! body cannot add their sum to the node's memory.

use std::{
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{ApiError, BoxError, ErrorKind};

/// The budget: a semaphore whose permits are bytes. Clones share it.
#[derive(Debug, Clone)]
pub(crate) struct BodyBudget {
    bytes: Arc<Semaphore>,
}

impl BodyBudget {
    /// A budget of `bytes` (at least one, at most what tokio's semaphore can count).
    pub(crate) fn new(bytes: usize) -> Self {
        Self {
            bytes: Arc::new(Semaphore::new(bytes.clamp(1, Semaphore::MAX_PERMITS))),
        }
    }

    /// Bytes not counted against any body now.
    #[cfg(test)]
    pub(crate) fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    /// Counts `n` bytes now, or `None` when they do not fit.
    pub(crate) fn try_reserve(&self, n: usize) -> Option<Reservation> {
        let n = u32::try_from(n).ok()?;
        let permit = if n == 0 {
            None
        } else {
            Some(self.bytes.clone().try_acquire_many_owned(n).ok()?)
        };
        Some(Reservation(Arc::new(Mutex::new(Held {
            permit,
            exhausted: false,
        }))))
    }

    /// Wraps `body` so that each frame is counted as it arrives into `reservation`; with
    /// `window`, only the last `window` bytes stay counted.
    pub(crate) fn meter<B>(
        &self,
        body: B,
        reservation: Reservation,
        window: Option<usize>,
    ) -> MeteredBody<B> {
        MeteredBody {
            inner: body,
            budget: self.clone(),
            reservation,
            window,
        }
    }
}

#[derive(Debug)]
struct Held {
    permit: Option<OwnedSemaphorePermit>,
    /// A frame did not fit in the budget.
    exhausted: bool,
}

/// Bytes counted for one request; released when the last clone is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Reservation(Arc<Mutex<Held>>);

impl Reservation {
    /// Whether a frame of the body was refused for want of budget.
    pub(crate) fn exhausted(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .exhausted
    }

    /// Counts `n` more bytes; `false` (and marked exhausted) when they do not fit.
    fn add(&self, budget: &BodyBudget, n: usize, window: Option<usize>) -> bool {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(more) = u32::try_from(n)
            .ok()
            .and_then(|n| budget.bytes.clone().try_acquire_many_owned(n).ok())
        else {
            held.exhausted = true;
            return false;
        };
        match held.permit.as_mut() {
            Some(permit) => permit.merge(more),
            None => held.permit = Some(more),
        }
        if let (Some(window), Some(permit)) = (window, held.permit.as_mut()) {
            let over = permit.num_permits().saturating_sub(window);
            // Dropping the split-off part returns those bytes to the budget.
            drop(permit.split(over));
        }
        true
    }
}

/// A body whose bytes are counted against a [`BodyBudget`] as they arrive.
#[derive(Debug)]
pub(crate) struct MeteredBody<B> {
    inner: B,
    budget: BodyBudget,
    reservation: Reservation,
    window: Option<usize>,
}

impl<B> Body for MeteredBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, Bytes::len);
                if n > 0 && !this.reservation.add(&this.budget, n, this.window) {
                    // A `Status` is what tonic reports to the client as is; REST replaces the
                    // whole response once it sees the reservation exhausted.
                    let status = tonic::Status::from(body_budget_exhausted());
                    return Poll::Ready(Some(Err(Box::new(status))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The answer when a body does not fit in the node's budget.
pub(crate) fn body_budget_exhausted() -> ApiError {
    let retry_after = ApiError::overloaded()
        .retry_after()
        .unwrap_or(Duration::from_secs(1));
    ApiError::new(
        ErrorKind::Overloaded,
        "too many request body bytes in flight on this node; retry shortly",
    )
    .with_retry_after(retry_after)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use http_body_util_shim::collect;

    use super::*;

    /// Just enough of a body collector for these tests, without another dependency.
    mod http_body_util_shim {
        use std::future::poll_fn;

        use super::*;

        pub(super) async fn collect<B: Body<Data = Bytes> + Unpin>(
            mut body: B,
        ) -> Result<usize, B::Error> {
            let mut n = 0;
            while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                n += frame?.data_ref().map_or(0, Bytes::len);
            }
            Ok(n)
        }
    }

    fn body(chunks: &[usize]) -> axum::body::Body {
        let chunks: Vec<Result<Bytes, std::io::Error>> = chunks
            .iter()
            .map(|&n| Ok(Bytes::from(vec![b'x'; n])))
            .collect();
        axum::body::Body::from_stream(futures::stream::iter(chunks))
    }

    #[tokio::test]
    async fn counted_while_held_and_released_on_drop() {
        let budget = BodyBudget::new(100);
        let r = budget.try_reserve(0).unwrap();
        let n = collect(budget.meter(body(&[30, 30]), r.clone(), None))
            .await
            .unwrap();
        assert_eq!(n, 60);
        assert_eq!(budget.available(), 40);
        assert!(!r.exhausted());
        drop(r);
        assert_eq!(budget.available(), 100);
    }

    #[tokio::test]
    async fn refuses_past_the_budget() {
        let budget = BodyBudget::new(100);
        let _first = budget.try_reserve(80).unwrap();
        assert!(budget.try_reserve(30).is_none());
        let r = budget.try_reserve(0).unwrap();
        let err = collect(budget.meter(body(&[10, 30]), r.clone(), None))
            .await
            .unwrap_err();
        assert!(err.downcast_ref::<tonic::Status>().is_some());
        assert!(r.exhausted());
        drop(r);
        assert_eq!(budget.available(), 20);
    }

    #[tokio::test]
    async fn a_window_keeps_only_the_last_bytes_counted() {
        let budget = BodyBudget::new(100);
        let r = budget.try_reserve(0).unwrap();
        let n = collect(budget.meter(body(&[40, 40, 40, 40]), r.clone(), Some(50)))
            .await
            .unwrap();
        assert_eq!(n, 160);
        assert_eq!(budget.available(), 50);
    }
}
