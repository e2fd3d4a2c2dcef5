//! A body that counts its data bytes and, for gRPC, notes the `grpc-status` of its trailers;
//! when it is dropped (sent or read to the end, or abandoned) it hands what it saw to a
//! [`Finish`]. Every measured request and response goes through this one type, so bytes,
//! latency and status are taken where the last byte passes, not where a handler returns.

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

/// What a measured body saw.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Seen {
    pub bytes: u64,
    /// `grpc-status` from the trailers, when there were trailers carrying one.
    pub grpc_status: Option<i32>,
    /// The stream ended with an error or was dropped before its end.
    pub broken: bool,
}

/// Records a finished body.
pub trait Finish {
    fn finish(self, seen: Seen);
}

/// `inner`, measured; `finish` runs exactly once, on drop.
pub struct Measured<B, F: Finish> {
    inner: B,
    seen: Seen,
    ended: bool,
    finish: Option<F>,
}

impl<B, F: Finish> Measured<B, F> {
    pub fn new(inner: B, finish: F) -> Self {
        Measured {
            inner,
            seen: Seen::default(),
            ended: false,
            finish: Some(finish),
        }
    }
}

/// The status a `grpc-status` header or trailer carries.
pub fn grpc_status(headers: &http::HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

impl<B, F> Body for Measured<B, F>
where
    B: Body + Unpin,
    B::Data: Buf,
    F: Finish + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen.bytes += data.remaining() as u64;
                } else if let Some(trailers) = frame.trailers_ref() {
                    this.seen.grpc_status = grpc_status(trailers);
                }
            }
            Poll::Ready(Some(Err(_))) => this.seen.broken = true,
            Poll::Ready(None) => this.ended = true,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B, F: Finish> Drop for Measured<B, F> {
    fn drop(&mut self) {
        if let Some(finish) = self.finish.take() {
            let mut seen = self.seen;
            seen.broken |= !self.ended && !self.seen.broken && !self.empty_known();
            finish.finish(seen);
        }
    }
}

impl<B, F: Finish> Measured<B, F> {
    /// A body that was never polled because it was known to be empty did end.
    fn empty_known(&self) -> bool {
        self.seen.bytes == 0 && self.seen.grpc_status.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full, StreamBody};
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Keep(Arc<Mutex<Vec<Seen>>>);
    impl Finish for Keep {
        fn finish(self, seen: Seen) {
            self.0.lock().expect("lock").push(seen);
        }
    }

    #[tokio::test]
    async fn counts_bytes_and_reads_the_grpc_status_of_trailers() {
        let keep = Keep::default();
        let full = Measured::new(Full::new(bytes::Bytes::from_static(b"hello")), keep.clone());
        full.collect().await.expect("collect");
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("5"));
        let frames: Vec<Result<Frame<bytes::Bytes>, std::convert::Infallible>> = vec![
            Ok(Frame::data(bytes::Bytes::from_static(b"abc"))),
            Ok(Frame::data(bytes::Bytes::from_static(b"de"))),
            Ok(Frame::trailers(trailers)),
        ];
        let streamed = Measured::new(
            StreamBody::new(futures_util::stream::iter(frames)),
            keep.clone(),
        );
        streamed.collect().await.expect("collect");
        let seen = keep.0.lock().expect("lock").clone();
        assert_eq!(
            seen,
            vec![
                Seen {
                    bytes: 5,
                    grpc_status: None,
                    broken: false
                },
                Seen {
                    bytes: 5,
                    grpc_status: Some(5),
                    broken: false
                },
            ]
        );
    }

    #[tokio::test]
    async fn a_body_dropped_half_way_is_broken_and_finishes_once() {
        let keep = Keep::default();
        let frames: Vec<Result<Frame<bytes::Bytes>, std::convert::Infallible>> = vec![
            Ok(Frame::data(bytes::Bytes::from_static(b"abc"))),
            Ok(Frame::data(bytes::Bytes::from_static(b"de"))),
        ];
        let mut body = Measured::new(
            StreamBody::new(futures_util::stream::iter(frames)),
            keep.clone(),
        );
        body.frame().await.expect("a frame").expect("ok");
        drop(body);
        let seen = keep.0.lock().expect("lock").clone();
        assert_eq!(
            seen,
            vec![Seen {
                bytes: 3,
                grpc_status: None,
                broken: true
            }]
        );
    }
}
