//! The header read timeout as daprd's Go server applies it: a new connection has 10 s to send its
//! first request's headers, and a kept-alive connection has 10 s from the **first byte of its next
//! request**. An idle kept-alive connection stays open, as it does in front of daprd (no
//! `IdleTimeout`), so a client's pooled connection is not closed under it after 10 s of quiet.
//!
//! hyper starts its header timer whenever it waits for a request head, idle or not. So each
//! connection gets its own [`HeaderTimer`], which hands hyper a [`HeaderSleep`] that arms only once
//! the connection is new or [`ReadCounted`] has seen bytes since the wait began. A connection
//! waiting between requests therefore holds no timer at all, which also spares every request a
//! timer-wheel insert and removal.
//!
//! Before HTTP/1 or h2 exists, hyper-util reads the first bytes to tell them apart, with no timer:
//! [`sniff_over`] tells the connection's task whether that phase ended within the timeout.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What one connection's stream and timer share: the bytes read so far, and whether HTTP/1 has
/// started waiting for a head.
#[derive(Debug, Default)]
pub struct ConnectionReads {
    bytes: AtomicU64,
    head_waited: AtomicBool,
}

/// [`ConnectionReads`], shared.
pub type BytesRead = Arc<ConnectionReads>;

/// The length of h2's client preface: hyper-util's version sniff never reads more than this.
const H2_PREFACE_LEN: u64 = 24;

/// Whether hyper-util's version sniff is over: HTTP/1 has begun waiting for a head (its own timer
/// governs from there), or the bytes read are enough to have decided.
pub fn sniff_over(read: &ConnectionReads) -> bool {
    read.head_waited.load(Ordering::Relaxed) || read.bytes.load(Ordering::Relaxed) >= H2_PREFACE_LEN
}

/// A stream that counts the bytes read from it into [`BytesRead`].
#[derive(Debug)]
pub struct ReadCounted<T> {
    inner: T,
    read: BytesRead,
}

impl<T> ReadCounted<T> {
    pub fn new(inner: T, read: BytesRead) -> Self {
        ReadCounted { inner, read }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ReadCounted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let got = buf.filled().len().saturating_sub(before);
        if got > 0 {
            self.read.bytes.fetch_add(got as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ReadCounted<T> {
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
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// When a header wait's timer starts, given the bytes read when the wait began (`None`: the
/// connection's first wait) and now: at once for a new connection's first request, at the first
/// byte of the next request otherwise, and never while the connection is idle.
pub fn timer_starts(read_at_wait: Option<u64>, read_now: u64) -> bool {
    read_at_wait.is_none_or(|at_wait| read_now > at_wait)
}

/// hyper's timer for one HTTP/1 connection: its header waits become [`HeaderSleep`]s, each as
/// long as the `header_read_timeout` hyper asks for.
#[derive(Debug, Clone)]
pub struct HeaderTimer {
    read: BytesRead,
}

impl HeaderTimer {
    pub fn new(read: BytesRead) -> Self {
        HeaderTimer { read }
    }
}

impl hyper::rt::Timer for HeaderTimer {
    fn sleep(&self, timeout: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        // The connection's first head wait counts as a new connection's even when the version
        // sniff already read some of its bytes: that request is timed from now, not its next byte.
        let first = !self.read.head_waited.swap(true, Ordering::Relaxed);
        let read_at_wait = (!first).then(|| self.read.bytes.load(Ordering::Relaxed));
        Box::pin(HeaderSleep {
            read: self.read.clone(),
            read_at_wait,
            timeout,
            armed: None,
        })
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep(deadline.saturating_duration_since(Instant::now()))
    }
}

/// One wait for a request head; see [`timer_starts`].
#[derive(Debug)]
pub struct HeaderSleep {
    read: BytesRead,
    read_at_wait: Option<u64>,
    timeout: Duration,
    armed: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Future for HeaderSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.armed.is_none() {
            if !timer_starts(self.read_at_wait, self.read.bytes.load(Ordering::Relaxed)) {
                // Idle: hyper polls again when the socket has bytes, since its read is pending.
                return Poll::Pending;
            }
            self.armed = Some(Box::pin(tokio::time::sleep(self.timeout)));
        }
        match &mut self.armed {
            Some(sleep) => sleep.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

impl hyper::rt::Sleep for HeaderSleep {}

#[cfg(test)]
mod tests {
    use super::{ConnectionReads, sniff_over, timer_starts};
    use std::sync::atomic::Ordering;

    #[test]
    fn the_timer_starts_on_a_new_connection_or_at_the_next_requests_first_byte() {
        // (bytes read when the wait began, bytes read now, timer running)
        for (at_wait, now, starts) in [
            (None, 0, true),         // a new connection: its first request is timed at once
            (None, 7, true),         // … even when the version sniff read its first bytes
            (Some(512), 512, false), // kept alive and idle: no timer
            (Some(512), 513, true),  // the next request's first byte starts it
        ] {
            assert_eq!(timer_starts(at_wait, now), starts, "{at_wait:?} → {now}");
        }
    }

    #[test]
    fn the_sniff_is_over_once_http1_waits_or_a_preface_length_is_read() {
        let read = ConnectionReads::default();
        assert!(!sniff_over(&read), "nothing read yet");
        read.bytes.store(23, Ordering::Relaxed);
        assert!(!sniff_over(&read), "one byte short of h2's preface");
        read.bytes.store(24, Ordering::Relaxed);
        assert!(sniff_over(&read));
        let http1 = ConnectionReads::default();
        http1.bytes.store(3, Ordering::Relaxed);
        http1.head_waited.store(true, Ordering::Relaxed);
        assert!(sniff_over(&http1), "HTTP/1 began: its own timer governs");
    }
}
