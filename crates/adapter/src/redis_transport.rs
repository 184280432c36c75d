//! The [`Transport`] on Redis: PUBLISH on the master through the publisher,
//! SUBSCRIBE through the subscribers (on a replica, moving between servers),
//! and node counts from `PUBSUB NUMSUB` summed over the master and every
//! replica. How these connections are set up is in [`crate::startup`].

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use bytes::Bytes;
use fred::{
    clients::Client,
    interfaces::{ClientLike, PubsubInterface},
    types::{InfoKind, Value as RedisValue},
};
use futures_core::future::BoxFuture;
use tracing::Instrument;

use redis_layer::{connected_addr, info::info_int};

use crate::{
    connection::Counter,
    error::Error,
    metrics::AdapterMetrics,
    subscriber::Subscriber,
    transport::{Lane, Readiness, Transport},
};

/// The Redis connections of one adapter state.
pub(crate) struct RedisTransport {
    pub publisher: Client,
    /// One per replica; follows the topology under Sentinel.
    pub counters: RwLock<Vec<Counter>>,
    pub broadcast_subscriber: Arc<Subscriber>,
    /// The same subscriber as `broadcast_subscriber` unless
    /// `requests_on_master`.
    pub request_subscriber: Arc<Subscriber>,
    /// How long a replica may take to answer `NUMSUB` or `INFO`.
    pub answer_timeout: Duration,
    /// Holds the publisher's state as its error and reconnection events
    /// report it: fred's own state stays "connected" while it retries a
    /// master that is gone.
    pub metrics: Arc<AdapterMetrics>,
}

impl RedisTransport {
    fn subscriber(&self, lane: Lane) -> &Subscriber {
        match lane {
            Lane::Broadcasts => &self.broadcast_subscriber,
            Lane::Requests => &self.request_subscriber,
        }
    }

    fn counters(&self) -> Vec<Counter> {
        self.counters.read().map(|c| c.clone()).unwrap_or_default()
    }

    async fn count_on_replica(&self, counter: &Counter, channel: &str) -> usize {
        match tokio::time::timeout(self.answer_timeout, numsub(&counter.client, channel)).await {
            Ok(Ok(count)) => count,
            Ok(Err(err)) => {
                tracing::debug!(replica = %counter.label, %err, "NUMSUB failed, counting 0");
                0
            }
            Err(_) => {
                tracing::debug!(replica = %counter.label, "NUMSUB timed out, counting 0");
                0
            }
        }
    }
}

impl Transport for RedisTransport {
    fn publish<'a>(&'a self, channel: &'a str, payload: Bytes) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let result: Result<i64, _> = self
                .publisher
                .publish(channel, payload)
                .instrument(tracing::debug_span!("redis_publish", channel))
                .await;
            result.map(|_| ()).map_err(Error::from)
        })
    }

    fn subscribe<'a>(
        &'a self,
        lane: Lane,
        channels: &'a [String],
        patterns: &'a [String],
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.subscriber(lane).add(channels, patterns))
    }

    fn unsubscribe<'a>(
        &'a self,
        lane: Lane,
        channels: &'a [String],
        patterns: &'a [String],
    ) -> BoxFuture<'a, ()> {
        Box::pin(self.subscriber(lane).remove(channels, patterns))
    }

    fn subscriber_count<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<usize, Error>> {
        let span = tracing::debug_span!("redis_numsub", channel);
        Box::pin(
            async move {
                let master = numsub(&self.publisher, channel).await;
                let counters = self.counters();
                let replicas = futures_util::future::join_all(
                    counters
                        .iter()
                        .map(|counter| self.count_on_replica(counter, channel)),
                )
                .await;
                Ok(master? + replicas.into_iter().sum::<usize>())
            }
            .instrument(span),
        )
    }

    fn readiness(&self) -> Readiness {
        Readiness {
            publisher_connected: self.publisher.is_connected()
                && self.metrics.publisher_connected(),
            subscriber_ready: self.broadcast_subscriber.is_subscribed(),
            request_subscriber_ready: self.request_subscriber.is_subscribed(),
        }
    }

    fn wait_subscribed(&self, timeout: Duration) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
            self.broadcast_subscriber.wait_subscribed(left()).await
                && self.request_subscriber.wait_subscribed(left()).await
        })
    }

    /// The master's `master_repl_offset` minus the `slave_repl_offset` of
    /// the replica the broadcast subscriber is on, from `INFO replication`
    /// on the connections already held (so credentials, TLS and Sentinel
    /// discovery apply). `Some(0)` when subscribed on the master.
    fn replication_lag_bytes(&self) -> BoxFuture<'_, Option<i64>> {
        Box::pin(async move {
            let addr = self.broadcast_subscriber.server_addr()?;
            if connected_addr(&self.publisher).as_ref() == Some(&addr) {
                return Some(0);
            }
            let replica = self
                .counters()
                .into_iter()
                .find(|counter| counter.addr == addr)?
                .client;
            let (master, replica) = futures_util::future::join(
                replication_offset(&self.publisher, "master_repl_offset", self.answer_timeout),
                replication_offset(&replica, "slave_repl_offset", self.answer_timeout),
            )
            .await;
            Some((master? - replica?).max(0))
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = tokio::time::timeout(Duration::from_secs(1), self.publisher.quit()).await;
            for counter in self.counters() {
                let _ =
                    tokio::time::timeout(Duration::from_millis(200), counter.client.quit()).await;
            }
        })
    }
}

/// One offset of `INFO replication` on `client`'s server, `None` if it did
/// not answer within `timeout`.
async fn replication_offset(client: &Client, field: &str, timeout: Duration) -> Option<i64> {
    let info: String = tokio::time::timeout(timeout, client.info(Some(InfoKind::Replication)))
        .await
        .ok()?
        .ok()?;
    info_int(&info, field)
}

async fn numsub(client: &Client, channel: &str) -> Result<usize, Error> {
    let reply: RedisValue = client.pubsub_numsub(channel).await?;
    // [channel, count] (RESP2 array) or {channel: count} (RESP3 map).
    let count = match reply {
        RedisValue::Array(items) => items.get(1).and_then(|v| v.as_i64()),
        RedisValue::Map(map) => map.inner().into_iter().next().and_then(|(_, v)| v.as_i64()),
        _ => None,
    };
    Ok(count.and_then(|c| usize::try_from(c).ok()).unwrap_or(0))
}
