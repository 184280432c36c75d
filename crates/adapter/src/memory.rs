//! An in-memory bus between the nodes of one process, in place of Redis
//! pub/sub: for tests of the adapter, and of applications built on it, that
//! should run in milliseconds and without a server.
//!
//! It routes as one Redis server does: a message goes to every subscription
//! whose channel is the message's or whose pattern matches it (Redis glob
//! rules, [`wire::pattern_matches`]), once per match, the publisher's own
//! subscriptions included; every message is delivered before the next one
//! starts, so all nodes see one order; the node count of a channel is its
//! number of exact subscriptions (`PUBSUB NUMSUB`). Everything above the
//! bus (the wire format, exactly-once, socket-id rooms, request gathering)
//! is the adapter's real code.

use std::{
    collections::HashSet,
    fmt,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use bytes::Bytes;
use futures_core::future::BoxFuture;
use socketioxide_core::Sid;
use tokio::sync::mpsc;

use crate::{
    config::AdapterConfig,
    error::Error,
    handle::ClusterHandle,
    inbound::{Inbound, InboundSink},
    metrics::AdapterMetrics,
    state::Shared,
    transport::{Lane, Readiness, Transport},
};

/// A pub/sub bus in memory. Clones share one bus.
///
/// ```
/// # async fn run() -> Result<(), adapter::Error> {
/// use adapter::{AdapterConfig, MemoryBus};
/// let bus = MemoryBus::new();
/// let a = bus.node(AdapterConfig::default())?;
/// let b = bus.node(AdapterConfig::default())?;
/// // Give each to its own `SocketIo::builder().with_adapter::<RedisAdapter<_>>(..)`.
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct MemoryBus {
    state: Arc<BusState>,
}

impl fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBus")
            .field("subscriptions", &self.state.lock().len())
            .finish()
    }
}

#[derive(Default)]
struct BusState {
    subscriptions: Mutex<Vec<Subscription>>,
    /// Held while one message is delivered, so every subscriber sees the
    /// messages in one order, as one Redis server gives them.
    delivery: Mutex<()>,
    next_id: AtomicU64,
}

struct Subscription {
    id: u64,
    sink: InboundSink,
    channels: HashSet<String>,
    patterns: HashSet<String>,
}

impl Subscription {
    /// How many times a message on `channel` is delivered to it: once for
    /// the channel, once per matching pattern (Redis' message and pmessage).
    fn matches(&self, channel: &str) -> usize {
        usize::from(self.channels.contains(channel))
            + self
                .patterns
                .iter()
                .filter(|pattern| wire::pattern_matches(pattern, channel))
                .count()
    }
}

impl BusState {
    fn lock(&self) -> MutexGuard<'_, Vec<Subscription>> {
        // A panicking sink cannot leave the list half-updated: every update
        // is a single insert, remove or push.
        self.subscriptions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn join(&self, sink: InboundSink) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().push(Subscription {
            id,
            sink,
            channels: HashSet::new(),
            patterns: HashSet::new(),
        });
        id
    }

    fn leave(&self, id: u64) {
        self.lock().retain(|subscription| subscription.id != id);
    }

    fn update(&self, id: u64, apply: impl FnOnce(&mut Subscription)) {
        if let Some(subscription) = self.lock().iter_mut().find(|s| s.id == id) {
            apply(subscription);
        }
    }

    fn deliver(&self, channel: &str, payload: &Bytes) -> usize {
        let _order = self
            .delivery
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Sinks run outside the list's lock: one may drop the last handle
        // of a node, whose transport then leaves the bus.
        let targets: Vec<(InboundSink, usize)> = self
            .lock()
            .iter()
            .map(|s| (s.sink.clone(), s.matches(channel)))
            .filter(|(_, times)| *times > 0)
            .collect();
        let mut delivered = 0;
        for (sink, times) in targets {
            for _ in 0..times {
                sink(Inbound {
                    channel: channel.to_owned(),
                    payload: payload.clone(),
                });
                delivered += 1;
            }
        }
        delivered
    }

    fn subscriber_count(&self, channel: &str) -> usize {
        self.lock()
            .iter()
            .filter(|s| s.channels.contains(channel))
            .count()
    }
}

impl MemoryBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// A node on this bus: the handle to give to
    /// `SocketIo::builder().with_adapter::<RedisAdapter<_>>(..)`.
    ///
    /// `config` is normalized and validated as for
    /// [`ClusterHandle::connect`]; its Redis fields (URLs, TLS, Sentinel,
    /// subscriber placement) are not used, its prefix, timeouts, queue size
    /// and legacy emitter switch are.
    pub fn node(&self, mut config: AdapterConfig) -> Result<ClusterHandle, Error> {
        config.normalize();
        config.validate()?;
        let metrics = Arc::new(AdapterMetrics::default());
        metrics.set_publisher_connected(true);
        let legacy_emitter = config.legacy_emitter;
        let (shared, transport) = Shared::build(
            config,
            Sid::new().to_string(),
            metrics,
            |sink, _shutdown| MemoryTransport {
                id: self.state.join(sink),
                bus: self.state.clone(),
                closed: AtomicBool::new(false),
            },
        );
        if legacy_emitter {
            transport.add(&[shared.legacy_channel().to_owned()], &[]);
        }
        Ok(ClusterHandle { shared })
    }

    /// Publish `payload` on `channel`, as another client of the server
    /// would (an emitter, a Node server, garbage): the number of
    /// subscriptions it reached, as `PUBLISH` answers.
    pub fn publish(&self, channel: &str, payload: impl Into<Bytes>) -> usize {
        self.state.deliver(channel, &payload.into())
    }

    /// Subscribe outside any node, as `redis-cli` would: every message on
    /// `channels` or matching `patterns`, as `(channel, payload)`, until the
    /// [`Watcher`] is dropped. Its exact channels count in the node counts,
    /// as a Redis connection's do.
    pub fn watch(&self, channels: &[&str], patterns: &[&str]) -> Watcher {
        let (tx, rx) = mpsc::unbounded_channel();
        let sink: InboundSink = Arc::new(move |inbound: Inbound| {
            let _ = tx.send((inbound.channel, inbound.payload));
        });
        let id = self.state.join(sink);
        self.state.update(id, |s| {
            s.channels = channels.iter().map(|c| (*c).to_owned()).collect();
            s.patterns = patterns.iter().map(|p| (*p).to_owned()).collect();
        });
        Watcher {
            messages: rx,
            id,
            bus: self.state.clone(),
        }
    }

    /// `PUBSUB NUMSUB channel`.
    pub fn subscriber_count(&self, channel: &str) -> usize {
        self.state.subscriber_count(channel)
    }
}

/// A subscription made with [`MemoryBus::watch`].
pub struct Watcher {
    /// What arrived, as `(channel, payload)`.
    pub messages: mpsc::UnboundedReceiver<(String, Bytes)>,
    id: u64,
    bus: Arc<BusState>,
}

impl fmt::Debug for Watcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watcher").field("id", &self.id).finish()
    }
}

impl Watcher {
    /// The next message, or `None` when none arrived within `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<(String, Bytes)> {
        tokio::time::timeout(timeout, self.messages.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.bus.leave(self.id);
    }
}

/// One node's place on the bus.
struct MemoryTransport {
    id: u64,
    bus: Arc<BusState>,
    closed: AtomicBool,
}

impl MemoryTransport {
    /// Adds to this node's subscription at once (the bus has no round trip).
    fn add(&self, channels: &[String], patterns: &[String]) {
        self.bus.update(self.id, |s| {
            s.channels.extend(channels.iter().cloned());
            s.patterns.extend(patterns.iter().cloned());
        });
    }
}

impl Drop for MemoryTransport {
    fn drop(&mut self) {
        self.bus.leave(self.id);
    }
}

impl Transport for MemoryTransport {
    fn publish<'a>(&'a self, channel: &'a str, payload: Bytes) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            self.bus.deliver(channel, &payload);
            Ok(())
        })
    }

    fn subscribe<'a>(
        &'a self,
        _lane: Lane,
        channels: &'a [String],
        patterns: &'a [String],
    ) -> BoxFuture<'a, Result<(), Error>> {
        self.add(channels, patterns);
        Box::pin(async { Ok(()) })
    }

    fn unsubscribe<'a>(
        &'a self,
        _lane: Lane,
        channels: &'a [String],
        patterns: &'a [String],
    ) -> BoxFuture<'a, ()> {
        self.bus.update(self.id, |s| {
            for channel in channels {
                s.channels.remove(channel);
            }
            for pattern in patterns {
                s.patterns.remove(pattern);
            }
        });
        Box::pin(async {})
    }

    fn subscriber_count<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<usize, Error>> {
        let count = self.bus.subscriber_count(channel);
        Box::pin(async move { Ok(count) })
    }

    fn readiness(&self) -> Readiness {
        let open = !self.closed.load(Ordering::Acquire);
        Readiness {
            publisher_connected: open,
            subscriber_ready: open,
            request_subscriber_ready: open,
        }
    }

    fn wait_subscribed(&self, _timeout: Duration) -> BoxFuture<'_, bool> {
        let open = !self.closed.load(Ordering::Acquire);
        Box::pin(async move { open })
    }

    fn replication_lag_bytes(&self) -> BoxFuture<'_, Option<i64>> {
        Box::pin(async { Some(0) })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        self.closed.store(true, Ordering::Release);
        self.bus.leave(self.id);
        Box::pin(async {})
    }
}
