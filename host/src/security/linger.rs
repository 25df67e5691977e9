//! A request body that is read to its end even when nobody wants it, so a
//! refusal reaches the client.
//!
//! A handler that refuses a request (413 past the body limit, 401, 429)
//! drops its body unread. hyper then stops reading and closes the
//! connection with the client's bytes still in the socket, and the kernel
//! answers them with a reset: a client still sending its body gets "broken
//! pipe" instead of the answer, often before it has read it. Servers
//! "linger" instead (RFC 9112 §9.6): [`Lingering`] hands a body dropped
//! before its end to a task that reads and discards up to [`LINGER_BYTES`]
//! more, for at most the listener's `body_timeout` and [`LINGER_TIME`], so
//! the answer is sent at once and the client reads it once it has sent the
//! rest. A body that announces more than [`LINGER_BYTES`] is not waited for:
//! its connection closes at once, as before.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::BodyExt as _;
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};

/// The most of an unwanted body that is still read and thrown away.
pub const LINGER_BYTES: u64 = 16 * 1024 * 1024;

/// The longest an unwanted body is still read for.
pub const LINGER_TIME: Duration = Duration::from_secs(5);

/// A request body that, dropped before its end, is drained in the
/// background (within `within`) instead of cut off.
#[derive(Debug)]
pub struct Lingering {
    inner: Option<Incoming>,
    ended: bool,
    within: Duration,
}

impl Lingering {
    /// Wrap `body`; an unread rest is drained for at most `within`
    /// (and [`LINGER_TIME`]).
    pub fn new(body: Incoming, within: Duration) -> Self {
        Self {
            ended: body.is_end_stream(),
            inner: Some(body),
            within: within.min(LINGER_TIME),
        }
    }
}

impl Body for Lingering {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(&mut *inner).poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(None | Some(Err(_))) => true,
            Poll::Ready(Some(Ok(_))) => inner.is_end_stream(),
            Poll::Pending => false,
        };
        self.ended = ended;
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let Some(body) = self.inner.take() else {
            return;
        };
        if self.ended || body.size_hint().lower() > LINGER_BYTES {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(drain(body, self.within));
        }
    }
}

/// Read and discard `body` until its end, [`LINGER_BYTES`] or `within`.
async fn drain(mut body: Incoming, within: Duration) {
    let read = async {
        let mut left = LINGER_BYTES;
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref() {
                left = left.saturating_sub(data.len() as u64);
                if left == 0 {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(within, read).await;
}
