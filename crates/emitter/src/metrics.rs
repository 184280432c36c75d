//! Prometheus metrics of the HTTP service: what was published (by kind),
//! what failed to publish, and the HTTP answers given. Kept in a registry of
//! its own (not the process-global one) so several services can live in one
//! process, as they do in tests.

use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

/// Counters exported on `GET /metrics`.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    published: IntCounterVec,
    publish_errors: IntCounterVec,
    http_requests: IntCounterVec,
}

/// Kinds of published operations (label `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    Emit,
    SocketsJoin,
    SocketsLeave,
    DisconnectSockets,
    ServerSideEmit,
}

impl OperationKind {
    pub fn label(self) -> &'static str {
        match self {
            OperationKind::Emit => "emit",
            OperationKind::SocketsJoin => "sockets_join",
            OperationKind::SocketsLeave => "sockets_leave",
            OperationKind::DisconnectSockets => "disconnect_sockets",
            OperationKind::ServerSideEmit => "server_side_emit",
        }
    }
}

impl Metrics {
    /// Creates and registers the counters.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let published = IntCounterVec::new(
            Opts::new(
                "emitter_published_total",
                "Messages published on Redis, by kind",
            ),
            &["kind"],
        )?;
        let publish_errors = IntCounterVec::new(
            Opts::new(
                "emitter_publish_errors_total",
                "Publishes Redis did not acknowledge, by kind",
            ),
            &["kind"],
        )?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "emitter_http_requests_total",
                "HTTP requests answered, by status code",
            ),
            &["status"],
        )?;
        registry.register(Box::new(published.clone()))?;
        registry.register(Box::new(publish_errors.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        Ok(Self {
            registry,
            published,
            publish_errors,
            http_requests,
        })
    }

    pub fn record_published(&self, kind: OperationKind) {
        self.published.with_label_values(&[kind.label()]).inc();
    }

    pub fn record_publish_error(&self, kind: OperationKind) {
        self.publish_errors.with_label_values(&[kind.label()]).inc();
    }

    pub fn record_http_status(&self, status: u16) {
        self.http_requests
            .with_label_values(&[status.to_string().as_str()])
            .inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|err| prometheus::Error::Msg(err.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_their_labels() {
        let metrics = Metrics::new().unwrap();
        metrics.record_published(OperationKind::Emit);
        metrics.record_published(OperationKind::Emit);
        metrics.record_publish_error(OperationKind::SocketsJoin);
        metrics.record_http_status(202);
        let text = metrics.render().unwrap();
        assert!(
            text.contains("emitter_published_total{kind=\"emit\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("emitter_publish_errors_total{kind=\"sockets_join\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("emitter_http_requests_total{status=\"202\"} 1"),
            "{text}"
        );
    }
}
