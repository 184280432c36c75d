//! Relays leave in the order the client sent them.
//!
//! socketioxide 0.18 runs every event handler in a task of its own, and
//! tokio may run the later of two such tasks first, so two `message`
//! events of one socket could be broadcast in either order: a 200 kB
//! message was seen overtaken by a short one sent right after it. Socket.IO
//! users rely on the order of one connection's packets, and Node keeps it.
//!
//! So the relaying events get an [`InOrder`] handler: socketioxide calls it
//! in the order the packets arrive, and it queues the relay on the socket's
//! [`RelayQueue`]. One task per busy socket polls the queued relays for the
//! first time in that order, which is when the adapter delivers to local
//! sockets and hands the PUBLISH to the Redis connection; what is left
//! (waiting for Redis' answer) runs side by side, so a slow or failing
//! PUBLISH does not hold the next relays back. A socket that sends nothing
//! has no task.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures_util::stream::{FuturesUnordered, StreamExt};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Data, SocketRef, State};
use socketioxide::handler::{FromMessage, FromMessageParts, MessageHandler, Value};
use socketioxide::socket::Socket;

use crate::args::EventArgs;
use crate::metrics::GatewayMetrics;

/// A relay's remaining work, from its first poll on.
pub type Relay = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The relays of one socket, started in arrival order.
#[derive(Default)]
pub struct RelayQueue {
    state: Mutex<QueueState>,
    /// One at a time: each waits for the one before it to finish.
    serial: bool,
}

/// A socket's calls that must also *finish* in order (the event hook's:
/// the backend receives them in the order the client sent them), run one
/// at a time by the same machinery.
#[derive(Debug, Clone)]
pub struct SerialQueue(Arc<RelayQueue>);

impl SerialQueue {
    /// The serial queue of `socket`, created on its first call.
    pub fn of<A: Adapter>(socket: &SocketRef<A>) -> Self {
        if let Some(queue) = socket.extensions.get::<Self>() {
            return queue;
        }
        let queue = Self(Arc::new(RelayQueue {
            serial: true,
            ..RelayQueue::default()
        }));
        socket.extensions.insert(queue.clone());
        queue
    }

    /// Queues `call` behind the socket's earlier ones.
    pub fn push(&self, call: Relay) {
        self.0.push(call);
    }
}

#[derive(Default)]
struct QueueState {
    /// Queued, not polled yet.
    pending: VecDeque<Relay>,
    /// Whether a task is draining the queue.
    running: bool,
    /// That task, to wake when a relay is queued while it waits.
    waker: Option<Waker>,
}

impl fmt::Debug for RelayQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock().ok();
        f.debug_struct("RelayQueue")
            .field("pending", &state.as_ref().map(|s| s.pending.len()))
            .field("running", &state.as_ref().map(|s| s.running))
            .finish()
    }
}

impl RelayQueue {
    /// The queue of `socket`, created on its first relay.
    pub fn of<A: Adapter>(socket: &SocketRef<A>) -> Arc<Self> {
        if let Some(queue) = socket.extensions.get::<Arc<Self>>() {
            return queue;
        }
        let queue = Arc::new(Self::default());
        socket.extensions.insert(queue.clone());
        queue
    }

    /// Queues `relay` behind the socket's earlier ones.
    pub fn push(self: &Arc<Self>, relay: Relay) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.pending.push_back(relay);
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
        if !state.running {
            state.running = true;
            tokio::spawn(Arc::clone(self).drain());
        }
    }

    async fn drain(self: Arc<Self>) {
        let mut in_flight = FuturesUnordered::new();
        std::future::poll_fn(|cx| self.poll_drain(cx, &mut in_flight)).await;
    }

    /// Moves what was queued into `in_flight` (whose new futures are first
    /// polled in the order they were pushed; only once it is empty when
    /// serial) and drives it; ready once both are empty.
    fn poll_drain(
        &self,
        cx: &mut Context<'_>,
        in_flight: &mut FuturesUnordered<Relay>,
    ) -> Poll<()> {
        loop {
            {
                let Ok(mut state) = self.state.lock() else {
                    return Poll::Ready(());
                };
                if !self.serial {
                    in_flight.extend(state.pending.drain(..));
                } else if in_flight.is_empty() {
                    in_flight.extend(state.pending.pop_front());
                }
                if in_flight.is_empty() {
                    state.running = false;
                    state.waker = None;
                    return Poll::Ready(());
                }
                state.waker = Some(cx.waker().clone());
            }
            if in_flight.poll_next_unpin(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

/// What an in-order handler is given.
pub type InOrderFn<A> = fn(SocketRef<A>, EventArgs, AckSender<A>, GatewayMetrics);

/// An event handler that socketioxide calls synchronously, in the order
/// the socket's packets arrive (its own handlers are spawned, see the
/// module docs). It must queue its asynchronous work on [`RelayQueue`].
pub struct InOrder<A: Adapter>(pub InOrderFn<A>);

impl<A: Adapter> fmt::Debug for InOrder<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InOrder")
    }
}

/// The marker type of [`InOrder`]'s [`MessageHandler`] implementation.
#[derive(Debug)]
pub struct InOrderArgs;

impl<A: Adapter> MessageHandler<A, InOrderArgs> for InOrder<A> {
    fn call(&self, socket: Arc<Socket<A>>, mut value: Value, ack_id: Option<i64>) {
        let parts = (
            SocketRef::from_message_parts(&socket, &mut value, &ack_id),
            AckSender::from_message_parts(&socket, &mut value, &ack_id),
            State::<GatewayMetrics>::from_message_parts(&socket, &mut value, &ack_id),
        );
        let (Ok(socket_ref), Ok(ack), Ok(State(metrics))) = parts else {
            tracing::error!(sid = %socket.id, "event handler state missing");
            return;
        };
        match Data::<EventArgs>::from_message(socket, value, ack_id) {
            Ok(Data(args)) => (self.0)(socket_ref, args, ack, metrics),
            Err(err) => tracing::debug!(%err, "event arguments not extracted"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A serial queue runs one call at a time, in order, whatever each
    /// takes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serial_calls_finish_in_order() {
        const CALLS: u64 = 10;
        let queue = SerialQueue(Arc::new(RelayQueue {
            serial: true,
            ..RelayQueue::default()
        }));
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..CALLS {
            let (running, done_tx) = (running.clone(), done_tx.clone());
            queue.push(Box::pin(async move {
                use std::sync::atomic::Ordering::SeqCst;
                let others = running.fetch_add(1, SeqCst);
                tokio::time::sleep(Duration::from_millis(20 - i * 2)).await;
                running.fetch_sub(1, SeqCst);
                let _ = done_tx.send((i, others));
            }));
        }
        for i in 0..CALLS {
            assert_eq!(done_rx.recv().await, Some((i, 0)));
        }
    }

    /// Relays start in the order queued, even when a later one would be
    /// quicker, and their waits overlap.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn relays_start_in_order_and_wait_side_by_side() {
        const RELAYS: u64 = 20;
        let queue = Arc::new(RelayQueue::default());
        let started = Arc::new(Mutex::new(Vec::new()));
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
        let begin = tokio::time::Instant::now();
        for i in 0..RELAYS {
            let started = started.clone();
            let done_tx = done_tx.clone();
            queue.push(Box::pin(async move {
                started.lock().map(|mut s| s.push(i)).ok();
                // Earlier relays wait longer: 100 ms down to 5 ms.
                tokio::time::sleep(Duration::from_millis(100 - i * 5)).await;
                let _ = done_tx.send(i);
            }));
            if i % 5 == 0 {
                tokio::task::yield_now().await;
            }
        }
        let mut finished = Vec::new();
        while finished.len() < RELAYS as usize {
            finished.push(done_rx.recv().await.expect("every relay finishes"));
        }
        let started = started.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(started, (0..RELAYS).collect::<Vec<_>>());
        // Side by side: about the longest wait, far below their sum (1.05 s).
        assert!(
            begin.elapsed() < Duration::from_millis(600),
            "{:?}",
            begin.elapsed()
        );
        // Quicker later relays finished first.
        assert_ne!(finished, (0..RELAYS).collect::<Vec<_>>());
        // The queue emptied and its task ended; a new relay starts a new one.
        let (tx, rx) = tokio::sync::oneshot::channel();
        queue.push(Box::pin(async move {
            let _ = tx.send(());
        }));
        assert!(rx.await.is_ok());
    }
}
