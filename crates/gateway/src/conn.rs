//! Accepted TCP connections, counted and closable one by one.
//!
//! socketioxide has no per-socket "close the transport" call, and a
//! namespace-level disconnect tells a Socket.IO client *not* to reconnect.
//! To drain a gateway so that its clients reconnect elsewhere, the gateway
//! closes the underlying connections itself: every accepted stream is
//! registered here and can be made to read end-of-file, which the HTTP and
//! WebSocket layers treat as the client going away; the client sees a
//! transport close and reconnects (through the load balancer, elsewhere).
//! The same wrapper counts the bytes that cross the socket listener, and
//! gives up a connection whose client has taken no byte for
//! [`WRITE_STALL_LIMIT`]: engineioxide's WebSocket writer waits on a write
//! without watching for the session's close, so a client that stops
//! reading would otherwise never be disconnected, heartbeat or not.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use prometheus::IntCounter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// How long a write may wait for the client to take bytes before the
/// connection is closed: engineioxide's default ping interval plus ping
/// timeout (25 s + 20 s), by when a client that reads nothing has failed
/// its heartbeat anyway.
pub const WRITE_STALL_LIMIT: Duration = Duration::from_secs(45);

/// A write that has waited for the client since its timer was armed.
#[derive(Debug, Default)]
struct WriteStall {
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    armed: bool,
    failed: bool,
}

impl WriteStall {
    /// Passes a write's outcome through: progress disarms the timer, a
    /// pending write arms it, and one still pending when it fires fails
    /// (and every write after it).
    fn check<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if !result.is_pending() {
            self.armed = false;
            return result;
        }
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_STALL_LIMIT)));
        if !self.armed {
            self.armed = true;
            timer
                .as_mut()
                .reset(tokio::time::Instant::now() + WRITE_STALL_LIMIT);
        }
        if timer.as_mut().poll(cx).is_ready() {
            self.failed = true;
            return Poll::Ready(Err(stalled()));
        }
        Poll::Pending
    }
}

fn stalled() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the client took no bytes for the write stall limit",
    )
}

/// What a tracked connection shares with the tracker.
#[derive(Debug, Default)]
struct ConnState {
    closing: AtomicBool,
    reader: AtomicWaker,
}

/// Byte counters for the socket listener.
#[derive(Debug, Clone)]
pub struct ByteCounters {
    /// Bytes read from clients.
    pub received: IntCounter,
    /// Bytes written to clients.
    pub sent: IntCounter,
}

/// The set of open connections.
#[derive(Debug, Clone, Default)]
pub struct ConnectionTracker {
    inner: Arc<TrackerInner>,
}

#[derive(Debug, Default)]
struct TrackerInner {
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<ConnState>>>,
}

impl ConnectionTracker {
    /// Connections open now.
    pub fn open_count(&self) -> usize {
        self.inner.open.lock().map(|open| open.len()).unwrap_or(0)
    }

    /// Closes up to `count` open connections (oldest ids first) and returns
    /// how many it closed. A closed connection reads end-of-file at once.
    pub fn close_some(&self, count: usize) -> usize {
        let Ok(open) = self.inner.open.lock() else {
            return 0;
        };
        let mut ids: Vec<u64> = open
            .iter()
            .filter(|(_, state)| !state.closing.load(Ordering::Relaxed))
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        let mut closed = 0;
        for id in ids.into_iter().take(count) {
            if let Some(state) = open.get(&id) {
                state.closing.store(true, Ordering::Release);
                state.reader.wake();
                closed += 1;
            }
        }
        closed
    }

    fn register(&self) -> (u64, Arc<ConnState>) {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState::default());
        if let Ok(mut open) = self.inner.open.lock() {
            open.insert(id, Arc::clone(&state));
        }
        (id, state)
    }

    fn unregister(&self, id: u64) {
        if let Ok(mut open) = self.inner.open.lock() {
            open.remove(&id);
        }
    }
}

/// A listener whose streams are tracked and counted.
#[derive(Debug)]
pub struct TrackedListener {
    listener: TcpListener,
    tracker: ConnectionTracker,
    bytes: ByteCounters,
}

impl TrackedListener {
    /// Wraps a bound listener.
    pub fn new(listener: TcpListener, tracker: ConnectionTracker, bytes: ByteCounters) -> Self {
        Self {
            listener,
            tracker,
            bytes,
        }
    }
}

impl axum::serve::Listener for TrackedListener {
    type Io = TrackedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.listener).await;
        // Small frames (pings, short events) should leave at once.
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%err, "cannot set TCP_NODELAY");
        }
        let (id, state) = self.tracker.register();
        let stream = TrackedStream {
            stream,
            id,
            state,
            stall: WriteStall::default(),
            tracker: self.tracker.clone(),
            bytes: self.bytes.clone(),
        };
        (stream, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// A TCP stream that counts its bytes and can be closed from outside.
#[derive(Debug)]
pub struct TrackedStream {
    stream: TcpStream,
    id: u64,
    state: Arc<ConnState>,
    stall: WriteStall,
    tracker: ConnectionTracker,
    bytes: ByteCounters,
}

impl TrackedStream {
    /// The write-stall check around a write; a stalled connection also
    /// reads end-of-file from then on, so the layers above let it go.
    fn guard_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        write: impl FnOnce(Pin<&mut TcpStream>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if self.stall.failed {
            return Poll::Ready(Err(stalled()));
        }
        let result = write(Pin::new(&mut self.stream), cx);
        let result = self.stall.check(cx, result);
        if self.stall.failed {
            tracing::info!(
                limit_s = WRITE_STALL_LIMIT.as_secs(),
                "closing a connection whose client stopped reading"
            );
            self.state.closing.store(true, Ordering::Release);
            self.state.reader.wake();
        }
        result
    }
}

impl Drop for TrackedStream {
    fn drop(&mut self) {
        self.tracker.unregister(self.id);
    }
}

impl AsyncRead for TrackedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // Register before checking, so a close between the two still wakes us.
        self.state.reader.register(cx.waker());
        if self.state.closing.load(Ordering::Acquire) {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        if read > 0 {
            self.bytes.received.inc_by(read as u64);
        }
        result
    }
}

impl AsyncWrite for TrackedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = self.guard_write(cx, |stream, cx| stream.poll_write(cx, buf));
        if let Poll::Ready(Ok(written)) = &result {
            self.bytes.sent.inc_by(*written as u64);
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = self.guard_write(cx, |stream, cx| stream.poll_write_vectored(cx, bufs));
        if let Poll::Ready(Ok(written)) = &result {
            self.bytes.sent.inc_by(*written as u64);
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
