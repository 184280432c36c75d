//! What the adapter needs from the bus between its nodes, as one trait:
//! publish a payload on a channel, subscribe a namespace's channels, count
//! the nodes listening on a channel, and say whether it is connected.
//!
//! Everything above it (the wire format, exactly-once, socket-id rooms,
//! request gathering, the metrics) is the same whichever bus carries the
//! messages. The real one is Redis ([`crate::redis_transport`]); the
//! in-memory one ([`crate::memory`]) lets that logic run in tests without a
//! server. Messages come back through the [`crate::inbound::InboundSink`]
//! each transport is built with.

use std::time::Duration;

use bytes::Bytes;
use futures_core::future::BoxFuture;

use crate::error::Error;

/// Which subscription a set of channels belongs to. Redis may hold them on
/// two connections (`requests_on_master`); a bus that does not care may
/// treat both alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// Broadcast patterns and the legacy emitter channel.
    Broadcasts,
    /// Request and response channels.
    Requests,
}

/// Whether the adapter can do its job right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// The publisher connection to the master is up.
    pub publisher_connected: bool,
    /// The broadcast subscriber is connected with every subscription applied.
    pub subscriber_ready: bool,
    /// The request subscriber is ready (same as `subscriber_ready` unless
    /// `requests_on_master`).
    pub request_subscriber_ready: bool,
}

impl Readiness {
    /// All connections are up.
    pub fn is_ready(&self) -> bool {
        self.publisher_connected && self.subscriber_ready && self.request_subscriber_ready
    }
}

/// The bus between nodes.
pub(crate) trait Transport: Send + Sync {
    /// Send `payload` to every subscriber of `channel`, this node's own
    /// subscriptions included (as Redis does).
    fn publish<'a>(&'a self, channel: &'a str, payload: Bytes) -> BoxFuture<'a, Result<(), Error>>;

    /// Add channels and patterns to `lane`'s subscription; they stay
    /// subscribed across reconnections.
    fn subscribe<'a>(
        &'a self,
        lane: Lane,
        channels: &'a [String],
        patterns: &'a [String],
    ) -> BoxFuture<'a, Result<(), Error>>;

    /// Remove channels and patterns from `lane`'s subscription.
    fn unsubscribe<'a>(
        &'a self,
        lane: Lane,
        channels: &'a [String],
        patterns: &'a [String],
    ) -> BoxFuture<'a, ()>;

    /// How many subscriptions to exactly `channel` the whole bus holds
    /// (`PUBSUB NUMSUB`, summed over every server a node may be on).
    fn subscriber_count<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<usize, Error>>;

    /// Connection and subscription state.
    fn readiness(&self) -> Readiness;

    /// Wait until both lanes are subscribed, at most `timeout`.
    fn wait_subscribed(&self, timeout: Duration) -> BoxFuture<'_, bool>;

    /// Bytes of the publisher's stream the broadcast subscriber has not
    /// seen yet, when the bus can tell.
    fn replication_lag_bytes(&self) -> BoxFuture<'_, Option<i64>>;

    /// Close the connections. Called once, at shutdown.
    fn close(&self) -> BoxFuture<'_, ()>;
}
