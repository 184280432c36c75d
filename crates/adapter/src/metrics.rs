//! Counters an operator needs to see what the adapter is doing.
//!
//! The adapter only counts (lock-free atomics on the hot path); the gateway
//! reads a [`MetricsSnapshot`] and exports it however it likes (the gateway's
//! `adapter_metrics.rs` copies it into Prometheus at each scrape). Every enum
//! has a stable `as_str` label for that purpose.

use std::{
    collections::{BTreeMap, VecDeque},
    hash::{DefaultHasher, Hasher},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
        Mutex,
    },
    time::{Duration, Instant},
};

use prometheus::{core::Collector, Histogram, HistogramOpts, HistogramVec};
use serde::Serialize;
use socketioxide_core::adapter::errors::SocketError;

macro_rules! labelled_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $label:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }
        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// A stable label for metrics.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
            pub(crate) fn index(self) -> usize { self as usize }
        }
    };
}

labelled_enum!(
    /// The kind of a message crossing Redis.
    MessageKind {
        /// `[uid, packet, opts]` on a broadcast channel.
        Broadcast => "broadcast",
        /// A JSON or msgpack request on the request channel.
        Request => "request",
        /// A response on one of the response channels.
        Response => "response",
        /// A 2014 `socket.io-emitter` message on `<prefix>#emitter`.
        LegacyEmitter => "legacy_emitter",
    }
);

labelled_enum!(
    /// Why an inbound message was not applied.
    DropReason {
        /// Our own broadcast or request coming back (normal, counted for insight).
        OwnEcho => "own_echo",
        /// A single-room broadcast for a room without a local socket (normal).
        NoLocalRoom => "no_local_room",
        /// The namespace's inbound queue was full (overload).
        QueueFull => "queue_full",
        /// The Redis client's message channel overflowed (overload).
        SubscriberLagged => "subscriber_lagged",
        /// A message for a namespace this node does not serve.
        UnknownNamespace => "unknown_namespace",
        /// A response to a request that is no longer pending (late, or someone else's).
        UnknownRequest => "unknown_request",
    }
);

labelled_enum!(
    /// What was malformed in a message that could not be applied.
    GarbageKind {
        /// A broadcast that is not valid msgpack or not `[uid, packet, opts]`.
        Broadcast => "broadcast",
        /// A request that is not valid JSON or msgpack, or has wrong types.
        Request => "request",
        /// A response that is not valid JSON or msgpack, or has wrong types.
        Response => "response",
        /// A legacy emitter message in a dialect we cannot read.
        LegacyEmitter => "legacy_emitter",
        /// A payload that decoded but could not be turned into a Socket.IO packet.
        Payload => "payload",
        /// A message on a channel we do not recognise.
        Channel => "channel",
    }
);

labelled_enum!(
    /// The cluster requests a node makes.
    RequestKind {
        /// `PUBSUB NUMSUB` over every server.
        ServerCount => "server_count",
        /// Remote `fetchSockets` (type 5).
        FetchSockets => "fetch_sockets",
        /// Remote `allRooms` (type 1).
        AllRooms => "all_rooms",
        /// Server-side emit with acknowledgement (type 6).
        ServerSideEmit => "server_side_emit",
        /// Broadcast with acknowledgements (type 7).
        BroadcastWithAck => "broadcast_with_ack",
    }
);

labelled_enum!(
    /// How a cluster request ended.
    RequestOutcome {
        /// Every expected node answered.
        Complete => "complete",
        /// The timeout fired first; the partial result was returned.
        Timeout => "timeout",
        /// Redis refused or the connection failed.
        Error => "error",
    }
);

labelled_enum!(
    /// Why a broadcast packet was not handed to a local socket.
    SendFailure {
        /// The socket's send buffer was full: its client reads slower than
        /// broadcasts arrive (overload, or a stalled client).
        ClientBufferFull => "client_buffer_full",
        /// The socket was closing.
        SocketClosed => "socket_closed",
    }
);

fn counters<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

/// How many own broadcasts are timed at once: enough for a steady sample,
/// small enough that the bookkeeping stays off the profile.
const ECHO_SAMPLES: usize = 32;
/// A timed broadcast whose echo has not come back by then is forgotten
/// (the subscriber was down, or the echo was dropped).
const ECHO_EXPIRY: Duration = Duration::from_secs(10);

/// Publish-to-echo timing of this node's own broadcasts, without changing
/// the wire format: a broadcast is remembered by a hash of its bytes, and
/// its own echo, which the subscriber drops anyway, closes the measurement.
#[derive(Debug, Default)]
struct EchoClock {
    pending: Mutex<VecDeque<(u64, Instant)>>,
}

fn payload_hash(payload: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(payload);
    hasher.finish()
}

impl EchoClock {
    fn published(&self, payload: &[u8]) {
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        let now = Instant::now();
        while pending
            .front()
            .is_some_and(|(_, at)| now.duration_since(*at) > ECHO_EXPIRY)
        {
            pending.pop_front();
        }
        if pending.len() < ECHO_SAMPLES {
            pending.push_back((payload_hash(payload), now));
        }
    }

    fn echoed(&self, payload: &[u8]) -> Option<Duration> {
        let mut pending = self.pending.lock().ok()?;
        if pending.is_empty() {
            return None;
        }
        let hash = payload_hash(payload);
        let index = pending.iter().position(|(h, _)| *h == hash)?;
        let (_, at) = pending.remove(index)?;
        Some(at.elapsed())
    }
}

/// Lock-free counters shared by every namespace of one adapter state, and
/// the two latency histograms (Prometheus types, registered by the gateway).
#[derive(Debug)]
pub struct AdapterMetrics {
    request_seconds: HistogramVec,
    delivery_seconds: Histogram,
    echo_clock: EchoClock,
    published: [AtomicU64; 4],
    received: [AtomicU64; 4],
    garbage: [AtomicU64; 6],
    dropped: [AtomicU64; 6],
    send_failures: [AtomicU64; 2],
    requests: [[AtomicU64; 3]; 5],
    request_micros: [AtomicU64; 5],
    subscriber_reconnects: AtomicU64,
    local_deliveries: AtomicU64,
    last_counted_nodes: AtomicU64,
    publisher_connected: AtomicBool,
    subscriber_endpoint: Mutex<Option<String>>,
    request_subscriber_endpoint: Mutex<Option<String>>,
}

impl Default for AdapterMetrics {
    fn default() -> Self {
        // Names and buckets are constants: building them cannot fail.
        #[allow(clippy::expect_used)]
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "adapter_request_duration_seconds",
                "Duration of cluster requests, by type",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["type"],
        )
        .expect("valid histogram");
        #[allow(clippy::expect_used)]
        let delivery_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "adapter_broadcast_delivery_seconds",
                "Time from publishing a broadcast on the master to receiving it back on this node's subscriber (sampled)",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                0.5, 1.0,
            ]),
        )
        .expect("valid histogram");
        Self {
            request_seconds,
            delivery_seconds,
            echo_clock: EchoClock::default(),
            published: counters(),
            received: counters(),
            garbage: counters(),
            dropped: counters(),
            send_failures: counters(),
            requests: std::array::from_fn(|_| counters()),
            request_micros: counters(),
            subscriber_reconnects: AtomicU64::new(0),
            local_deliveries: AtomicU64::new(0),
            last_counted_nodes: AtomicU64::new(0),
            publisher_connected: AtomicBool::new(false),
            subscriber_endpoint: Mutex::new(None),
            request_subscriber_endpoint: Mutex::new(None),
        }
    }
}

impl AdapterMetrics {
    pub(crate) fn published(&self, kind: MessageKind) {
        self.published[kind.index()].fetch_add(1, Relaxed);
    }
    pub(crate) fn received(&self, kind: MessageKind) {
        self.received[kind.index()].fetch_add(1, Relaxed);
    }
    pub(crate) fn garbage(&self, kind: GarbageKind) {
        self.garbage[kind.index()].fetch_add(1, Relaxed);
    }
    pub(crate) fn dropped(&self, reason: DropReason) {
        self.dropped[reason.index()].fetch_add(1, Relaxed);
    }
    pub(crate) fn dropped_many(&self, reason: DropReason, count: u64) {
        self.dropped[reason.index()].fetch_add(count, Relaxed);
    }
    pub(crate) fn request_done(&self, kind: RequestKind, outcome: RequestOutcome, took: Duration) {
        self.requests[kind.index()][outcome.index()].fetch_add(1, Relaxed);
        self.request_seconds
            .with_label_values(&[kind.as_str()])
            .observe(took.as_secs_f64());
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.request_micros[kind.index()].fetch_add(micros, Relaxed);
    }
    /// A broadcast of this node went out: maybe time its echo.
    pub(crate) fn broadcast_published(&self, payload: &[u8]) {
        self.echo_clock.published(payload);
    }
    /// This node's own broadcast came back on its subscriber.
    pub(crate) fn own_echo(&self, payload: &[u8]) {
        self.dropped(DropReason::OwnEcho);
        if let Some(took) = self.echo_clock.echoed(payload) {
            self.delivery_seconds.observe(took.as_secs_f64());
        }
    }
    /// A local broadcast reached `sockets` sockets, minus `failures`.
    pub(crate) fn delivered_locally(&self, sockets: u64, failures: &[SocketError]) {
        for failure in failures {
            let reason = match failure {
                SocketError::InternalChannelFull => SendFailure::ClientBufferFull,
                SocketError::Closed => SendFailure::SocketClosed,
            };
            self.send_failures[reason.index()].fetch_add(1, Relaxed);
        }
        let failed = u64::try_from(failures.len()).unwrap_or(u64::MAX);
        self.local_deliveries
            .fetch_add(sockets.saturating_sub(failed), Relaxed);
    }
    pub(crate) fn subscriber_reconnected(&self) {
        self.subscriber_reconnects.fetch_add(1, Relaxed);
    }
    pub(crate) fn set_counted_nodes(&self, nodes: u64) {
        self.last_counted_nodes.store(nodes, Relaxed);
    }
    pub(crate) fn publisher_connected(&self) -> bool {
        self.publisher_connected.load(Relaxed)
    }
    pub(crate) fn set_publisher_connected(&self, connected: bool) {
        self.publisher_connected.store(connected, Relaxed);
    }
    pub(crate) fn set_subscriber_endpoint(&self, requests_only: bool, endpoint: Option<String>) {
        let slot = if requests_only {
            &self.request_subscriber_endpoint
        } else {
            &self.subscriber_endpoint
        };
        if let Ok(mut slot) = slot.lock() {
            *slot = endpoint;
        }
    }

    /// The Prometheus histograms (request durations, broadcast delivery),
    /// for registration in the exporter's registry.
    pub fn histograms(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.request_seconds.clone()),
            Box::new(self.delivery_seconds.clone()),
        ]
    }

    /// Number of messages of `kind` published so far.
    pub fn published_count(&self, kind: MessageKind) -> u64 {
        self.published[kind.index()].load(Relaxed)
    }
    /// Number of messages of `kind` received so far (own echoes included).
    pub fn received_count(&self, kind: MessageKind) -> u64 {
        self.received[kind.index()].load(Relaxed)
    }
    /// Number of malformed messages of `kind`.
    pub fn garbage_count(&self, kind: GarbageKind) -> u64 {
        self.garbage[kind.index()].load(Relaxed)
    }
    /// Number of messages dropped for `reason`.
    pub fn dropped_count(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()].load(Relaxed)
    }
    /// Number of broadcast packets not handed to a local socket for `reason`.
    pub fn send_failure_count(&self, reason: SendFailure) -> u64 {
        self.send_failures[reason.index()].load(Relaxed)
    }
    /// Number of requests of `kind` that ended with `outcome`.
    pub fn request_count(&self, kind: RequestKind, outcome: RequestOutcome) -> u64 {
        self.requests[kind.index()][outcome.index()].load(Relaxed)
    }
    /// Packets handed to local sockets by broadcasts (local and remote),
    /// failed sends excluded.
    pub fn local_deliveries(&self) -> u64 {
        self.local_deliveries.load(Relaxed)
    }
    /// How many times a subscriber connected after its first connection.
    pub fn subscriber_reconnects(&self) -> u64 {
        self.subscriber_reconnects.load(Relaxed)
    }
    /// The node count of the last `server_count`.
    pub fn last_counted_nodes(&self) -> u64 {
        self.last_counted_nodes.load(Relaxed)
    }
    /// The server the broadcast subscriber is connected to, if any.
    pub fn subscriber_endpoint(&self) -> Option<String> {
        self.subscriber_endpoint.lock().ok().and_then(|s| s.clone())
    }
    /// The server the request subscriber is connected to when it is separate
    /// ([`crate::AdapterConfig::requests_on_master`]).
    pub fn request_subscriber_endpoint(&self) -> Option<String> {
        self.request_subscriber_endpoint
            .lock()
            .ok()
            .and_then(|s| s.clone())
    }

    /// A consistent-enough copy of every counter, with metric labels.
    pub fn snapshot(&self) -> MetricsSnapshot {
        fn by_label<T: Copy>(
            all: &[T],
            label: fn(T) -> &'static str,
            value: impl Fn(T) -> u64,
        ) -> BTreeMap<&'static str, u64> {
            all.iter().map(|&k| (label(k), value(k))).collect()
        }
        let mut requests = BTreeMap::new();
        let mut request_seconds = BTreeMap::new();
        for &kind in RequestKind::ALL {
            for &outcome in RequestOutcome::ALL {
                requests.insert(
                    (kind.as_str(), outcome.as_str()),
                    self.request_count(kind, outcome),
                );
            }
            request_seconds.insert(
                kind.as_str(),
                self.request_micros[kind.index()].load(Relaxed) as f64 / 1e6,
            );
        }
        MetricsSnapshot {
            published: by_label(MessageKind::ALL, MessageKind::as_str, |k| {
                self.published_count(k)
            }),
            received: by_label(MessageKind::ALL, MessageKind::as_str, |k| {
                self.received_count(k)
            }),
            garbage: by_label(GarbageKind::ALL, GarbageKind::as_str, |k| {
                self.garbage_count(k)
            }),
            dropped: by_label(DropReason::ALL, DropReason::as_str, |k| {
                self.dropped_count(k)
            }),
            send_failures: by_label(SendFailure::ALL, SendFailure::as_str, |k| {
                self.send_failure_count(k)
            }),
            requests,
            request_seconds,
            subscriber_reconnects: self.subscriber_reconnects(),
            last_counted_nodes: self.last_counted_nodes(),
            publisher_connected: self.publisher_connected.load(Relaxed),
            subscriber_endpoint: self.subscriber_endpoint(),
            request_subscriber_endpoint: self.request_subscriber_endpoint(),
        }
    }
}

/// A copy of [`AdapterMetrics`] keyed by metric label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsSnapshot {
    /// Messages published, by [`MessageKind`] label.
    pub published: BTreeMap<&'static str, u64>,
    /// Messages received, by [`MessageKind`] label.
    pub received: BTreeMap<&'static str, u64>,
    /// Malformed messages, by [`GarbageKind`] label.
    pub garbage: BTreeMap<&'static str, u64>,
    /// Dropped messages, by [`DropReason`] label.
    pub dropped: BTreeMap<&'static str, u64>,
    /// Broadcast packets not handed to a local socket, by [`SendFailure`] label.
    pub send_failures: BTreeMap<&'static str, u64>,
    /// Finished requests by ([`RequestKind`], [`RequestOutcome`]) labels.
    #[serde(skip)]
    pub requests: BTreeMap<(&'static str, &'static str), u64>,
    /// Total seconds spent in requests, by [`RequestKind`] label.
    pub request_seconds: BTreeMap<&'static str, f64>,
    /// Subscriber reconnections (failovers included).
    pub subscriber_reconnects: u64,
    /// Node count of the last `server_count`.
    pub last_counted_nodes: u64,
    /// Whether the publisher connection is up.
    pub publisher_connected: bool,
    /// The broadcast subscriber's current server.
    pub subscriber_endpoint: Option<String>,
    /// The request subscriber's current server when separate.
    pub request_subscriber_endpoint: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_echoes_are_timed_by_their_bytes() {
        let metrics = AdapterMetrics::default();
        metrics.broadcast_published(b"one");
        metrics.broadcast_published(b"two");
        metrics.own_echo(b"two");
        metrics.own_echo(b"unknown");
        assert_eq!(metrics.delivery_seconds.get_sample_count(), 1);
        metrics.own_echo(b"one");
        assert_eq!(metrics.delivery_seconds.get_sample_count(), 2);
        // Each publish is matched once.
        metrics.own_echo(b"one");
        assert_eq!(metrics.delivery_seconds.get_sample_count(), 2);
        assert_eq!(metrics.dropped_count(DropReason::OwnEcho), 4);
    }

    #[test]
    fn failed_sends_are_counted_and_not_delivered() {
        let metrics = AdapterMetrics::default();
        metrics.delivered_locally(
            10,
            &[
                SocketError::InternalChannelFull,
                SocketError::InternalChannelFull,
                SocketError::Closed,
            ],
        );
        metrics.delivered_locally(5, &[]);
        assert_eq!(metrics.local_deliveries(), 12);
        assert_eq!(metrics.send_failure_count(SendFailure::ClientBufferFull), 2);
        assert_eq!(metrics.send_failure_count(SendFailure::SocketClosed), 1);
    }

    #[test]
    fn snapshot_reflects_counters() {
        let metrics = AdapterMetrics::default();
        metrics.published(MessageKind::Broadcast);
        metrics.published(MessageKind::Broadcast);
        metrics.garbage(GarbageKind::Request);
        metrics.dropped(DropReason::QueueFull);
        metrics.request_done(
            RequestKind::FetchSockets,
            RequestOutcome::Timeout,
            Duration::from_millis(1500),
        );
        let snap = metrics.snapshot();
        assert_eq!(snap.published["broadcast"], 2);
        assert_eq!(snap.published["request"], 0);
        assert_eq!(snap.garbage["request"], 1);
        assert_eq!(snap.dropped["queue_full"], 1);
        assert_eq!(snap.requests[&("fetch_sockets", "timeout")], 1);
        assert_eq!(snap.send_failures["client_buffer_full"], 0);
        assert!((snap.request_seconds["fetch_sockets"] - 1.5).abs() < 1e-9);
    }
}
