//! The Redis adapter's counters, exported as Prometheus metrics.
//!
//! The adapter counts with plain atomics on its hot path and knows nothing
//! of Prometheus; at each scrape this exporter copies its snapshot into the
//! registry (counters advance by the difference since the last scrape, so
//! they stay monotonic as Prometheus requires).

use std::sync::Mutex;

use adapter::ClusterHandle;
use prometheus::{
    Counter, CounterVec, Gauge, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Adapter metrics in a registry, refreshed on scrape.
#[derive(Debug)]
pub struct AdapterExporter {
    cluster: ClusterHandle,
    published: IntCounterVec,
    received: IntCounterVec,
    decode_errors: IntCounterVec,
    dropped: IntCounterVec,
    requests: IntCounterVec,
    request_seconds: CounterVec,
    reconnects: IntCounter,
    endpoint: IntGaugeVec,
    nodes: IntGauge,
    publisher_up: Gauge,
    // Serialises refreshes so two scrapes never add the same difference.
    refresh: Mutex<()>,
}

fn advance(counter: &IntCounter, value: u64) {
    let current = counter.get();
    if value > current {
        counter.inc_by(value - current);
    }
}

fn advance_f64(counter: &Counter, value: f64) {
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
            requests: IntCounterVec::new(
                Opts::new("adapter_requests_total", "Cluster requests by type and outcome"),
                &["type", "outcome"],
            )?,
            request_seconds: CounterVec::new(
                Opts::new(
                    "adapter_request_seconds_total",
                    "Time spent in cluster requests, by type",
                ),
                &["type"],
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
            refresh: Mutex::new(()),
        };
        registry.register(Box::new(exporter.published.clone()))?;
        registry.register(Box::new(exporter.received.clone()))?;
        registry.register(Box::new(exporter.decode_errors.clone()))?;
        registry.register(Box::new(exporter.dropped.clone()))?;
        registry.register(Box::new(exporter.requests.clone()))?;
        registry.register(Box::new(exporter.request_seconds.clone()))?;
        registry.register(Box::new(exporter.reconnects.clone()))?;
        registry.register(Box::new(exporter.endpoint.clone()))?;
        registry.register(Box::new(exporter.nodes.clone()))?;
        registry.register(Box::new(exporter.publisher_up.clone()))?;
        exporter.refresh();
        Ok(exporter)
    }

    /// Copies the adapter's current counters into the registry.
    pub fn refresh(&self) {
        let Ok(_guard) = self.refresh.lock() else {
            return;
        };
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
        for ((kind, outcome), value) in &snapshot.requests {
            advance(&self.requests.with_label_values(&[kind, outcome]), *value);
        }
        for (kind, value) in &snapshot.request_seconds {
            advance_f64(&self.request_seconds.with_label_values(&[kind]), *value);
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
