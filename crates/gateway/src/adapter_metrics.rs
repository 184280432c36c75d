//! The Redis adapter's metrics, exported to Prometheus, and the sampled
//! replication lag of the replica this gateway subscribes on.
//!
//! The adapter counts with plain atomics on its hot path; at each scrape
//! this exporter copies its snapshot into the registry (counters advance by
//! the difference since the last scrape, so they stay monotonic as
//! Prometheus requires). Its two latency histograms are Prometheus types
//! already and are registered as they are.

use std::sync::Mutex;
use std::time::Duration;

use adapter::ClusterHandle;
use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// Adapter metrics in a registry, refreshed on scrape.
#[derive(Debug)]
pub struct AdapterExporter {
    cluster: ClusterHandle,
    published: IntCounterVec,
    received: IntCounterVec,
    decode_errors: IntCounterVec,
    dropped: IntCounterVec,
    send_failures: IntCounterVec,
    requests: IntCounterVec,
    reconnects: IntCounter,
    endpoint: IntGaugeVec,
    nodes: IntGauge,
    publisher_up: Gauge,
    /// The gateway's `socketio_packets_sent_total`, which also counts the
    /// adapter's local broadcast deliveries.
    packets_sent: IntCounter,
    // Serialises refreshes so two scrapes never add the same difference;
    // holds the local deliveries already added to `packets_sent`.
    refresh: Mutex<u64>,
}

fn advance(counter: &IntCounter, value: u64) {
    let current = counter.get();
    if value > current {
        counter.inc_by(value - current);
    }
}

impl AdapterExporter {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(
        registry: &Registry,
        cluster: ClusterHandle,
        packets_sent: IntCounter,
    ) -> Result<Self, prometheus::Error> {
        let exporter = Self {
            cluster,
            published: IntCounterVec::new(
                Opts::new("adapter_redis_published_total", "Messages published on Redis by kind"),
                &["kind"],
            )?,
            received: IntCounterVec::new(
                Opts::new("adapter_redis_received_total", "Messages received from Redis by kind"),
                &["kind"],
            )?,
            decode_errors: IntCounterVec::new(
                Opts::new(
                    "adapter_redis_decode_errors_total",
                    "Malformed messages received on the adapter's channels, by kind",
                ),
                &["kind"],
            )?,
            dropped: IntCounterVec::new(
                Opts::new(
                    "adapter_dropped_messages_total",
                    "Received messages not applied, by reason (own echoes and rooms without local sockets are normal)",
                ),
                &["reason"],
            )?,
            send_failures: IntCounterVec::new(
                Opts::new(
                    "socketio_packets_dropped_total",
                    "Broadcast packets not handed to a local client, by reason: client_buffer_full (the client reads slower than broadcasts arrive; see GATEWAY_CLIENT_BUFFER_PACKETS) or socket_closed",
                ),
                &["reason"],
            )?,
            requests: IntCounterVec::new(
                Opts::new("adapter_requests_total", "Cluster requests by type and outcome"),
                &["type", "outcome"],
            )?,
            reconnects: IntCounter::new(
                "adapter_subscriber_reconnects_total",
                "Subscriber reconnections, failovers included",
            )?,
            endpoint: IntGaugeVec::new(
                Opts::new(
                    "adapter_subscriber_endpoint",
                    "1 for the Redis server the broadcast subscriber is on",
                ),
                &["url"],
            )?,
            nodes: IntGauge::new("adapter_cluster_nodes", "Nodes counted by the last server count")?,
            publisher_up: Gauge::new(
                "adapter_publisher_connected",
                "1 while the publisher connection to the master is up",
            )?,
            packets_sent,
            refresh: Mutex::new(0),
        };
        registry.register(Box::new(exporter.published.clone()))?;
        registry.register(Box::new(exporter.received.clone()))?;
        registry.register(Box::new(exporter.decode_errors.clone()))?;
        registry.register(Box::new(exporter.dropped.clone()))?;
        registry.register(Box::new(exporter.send_failures.clone()))?;
        registry.register(Box::new(exporter.requests.clone()))?;
        for histogram in exporter.cluster.metrics().histograms() {
            registry.register(histogram)?;
        }
        registry.register(Box::new(exporter.reconnects.clone()))?;
        registry.register(Box::new(exporter.endpoint.clone()))?;
        registry.register(Box::new(exporter.nodes.clone()))?;
        registry.register(Box::new(exporter.publisher_up.clone()))?;
        exporter.refresh();
        Ok(exporter)
    }

    /// Copies the adapter's current counters into the registry.
    pub fn refresh(&self) {
        let Ok(mut counted_deliveries) = self.refresh.lock() else {
            return;
        };
        let deliveries = self.cluster.metrics().local_deliveries();
        self.packets_sent
            .inc_by(deliveries.saturating_sub(*counted_deliveries));
        *counted_deliveries = deliveries;
        let snapshot = self.cluster.metrics().snapshot();
        for (kind, value) in &snapshot.published {
            advance(&self.published.with_label_values(&[kind]), *value);
        }
        for (kind, value) in &snapshot.received {
            advance(&self.received.with_label_values(&[kind]), *value);
        }
        for (kind, value) in &snapshot.garbage {
            advance(&self.decode_errors.with_label_values(&[kind]), *value);
        }
        for (reason, value) in &snapshot.dropped {
            advance(&self.dropped.with_label_values(&[reason]), *value);
        }
        for (reason, value) in &snapshot.send_failures {
            advance(&self.send_failures.with_label_values(&[reason]), *value);
        }
        for ((kind, outcome), value) in &snapshot.requests {
            advance(&self.requests.with_label_values(&[kind, outcome]), *value);
        }
        advance(&self.reconnects, snapshot.subscriber_reconnects);
        self.endpoint.reset();
        if let Some(url) = &snapshot.subscriber_endpoint {
            self.endpoint.with_label_values(&[url]).set(1);
        }
        self.nodes
            .set(i64::try_from(snapshot.last_counted_nodes).unwrap_or(i64::MAX));
        self.publisher_up.set(if snapshot.publisher_connected {
            1.0
        } else {
            0.0
        });
    }
}

/// How often the replication lag is sampled.
pub const LAG_SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// Exports [`ClusterHandle::replication_lag_bytes`] every
/// [`LAG_SAMPLE_INTERVAL`]: how many bytes of the master's stream
/// (PUBLISHes included) the subscribed replica has not applied yet. The
/// gauge appears with the first sample, so an absent series means "never
/// measured", not "no lag"; a missed sample keeps the last value.
pub fn spawn_replication_lag_sampler(
    registry: &Registry,
    cluster: ClusterHandle,
) -> Result<tokio::task::JoinHandle<()>, prometheus::Error> {
    let lag = IntGauge::new(
        "adapter_replication_lag_bytes",
        "Master replication offset minus the subscribed replica's, sampled (0 when subscribed on the master)",
    )?;
    let registry = registry.clone();
    Ok(tokio::spawn(async move {
        let mut registered = false;
        let mut ticker = tokio::time::interval(LAG_SAMPLE_INTERVAL);
        loop {
            ticker.tick().await;
            let Some(bytes) = cluster.replication_lag_bytes().await else {
                continue;
            };
            lag.set(bytes);
            if !registered {
                registered = true;
                if let Err(err) = registry.register(Box::new(lag.clone())) {
                    tracing::warn!(%err, "cannot export the replication lag");
                }
            }
        }
    }))
}
