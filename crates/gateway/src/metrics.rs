//! Prometheus metrics of the gateway: sockets, events and bytes here, the
//! adapter's own metrics registered beside them (Redis mode), all served as
//! text exposition on the admin listener's `GET /metrics`.

use prometheus::{
    Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use socketioxide::socket::DisconnectReason;

use crate::conn::ByteCounters;

/// The gateway's metrics and the registry they live in.
#[derive(Debug, Clone)]
pub struct GatewayMetrics {
    registry: Registry,
    /// `socketio_connected_sockets{namespace}`.
    pub connected_sockets: IntGaugeVec,
    /// `socketio_connections_total`.
    pub connections: IntCounter,
    /// `socketio_disconnections_total{reason}`.
    pub disconnections: IntCounterVec,
    /// `socketio_events_received_total{namespace}`.
    pub events_received: IntCounterVec,
    /// `socketio_server_side_emits_received_total{namespace}`: server-side
    /// emits from other nodes and emitters.
    pub server_side_emits: IntCounterVec,
    /// `socketio_packets_sent_total`: acks sent by the default handlers plus,
    /// in Redis mode, the packets broadcasts hand to local sockets.
    pub packets_sent: IntCounter,
    /// `socketio_bytes_received_total` / `socketio_bytes_sent_total`, counted
    /// on the socket listener's TCP streams.
    pub bytes: ByteCounters,
    /// `socketio_auth_failures_total{reason}`: refused handshakes.
    pub auth_failures: IntCounterVec,
    /// `socketio_forbidden_total{op}`: joins, publishes and message relays
    /// the socket's permissions do not allow.
    pub forbidden: IntCounterVec,
    /// `socketio_limited_total{limit}`: joins over the room limit, events
    /// over the rate limit.
    pub limited: IntCounterVec,
    /// `socketio_limit_disconnects_total{reason}`: sockets disconnected for
    /// flooding or because their token expired.
    pub limit_disconnects: IntCounterVec,
    /// `socketio_refused_handshakes_total{reason}`: new sessions refused at
    /// the connection limit or the per-address connect rate.
    pub refused_handshakes: IntCounterVec,
    /// `socketio_connection_limit`: the connections beyond which new
    /// handshakes are refused (`limits.max_connections`, or the default).
    pub connection_limit: IntGauge,
}

/// Label values exported at zero from the start, so a dashboard shows the
/// series before the first event.
const FORBIDDEN_OPS: [&str; 3] = ["join", "publish", "message"];
const LIMITS: [&str; 2] = ["rooms", "rate"];
const LIMIT_DISCONNECTS: [&str; 2] = ["rate", "token_expired"];
const REFUSED_HANDSHAKES: [&str; 2] = ["max_connections", "ip_rate"];

fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    label: &str,
    values: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    let counter = IntCounterVec::new(Opts::new(name, help), &[label])?;
    for value in values {
        counter.with_label_values(&[value]);
    }
    registry.register(Box::new(counter.clone()))?;
    Ok(counter)
}

impl GatewayMetrics {
    /// Creates the metrics in a fresh registry.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let connected_sockets = IntGaugeVec::new(
            Opts::new("socketio_connected_sockets", "Sockets connected now"),
            &["namespace"],
        )?;
        let connections = IntCounter::new(
            "socketio_connections_total",
            "Socket.IO connections accepted (all namespaces)",
        )?;
        let disconnections = IntCounterVec::new(
            Opts::new(
                "socketio_disconnections_total",
                "Socket disconnections by reason",
            ),
            &["reason"],
        )?;
        let events_received = IntCounterVec::new(
            Opts::new(
                "socketio_events_received_total",
                "Events received from clients",
            ),
            &["namespace"],
        )?;
        let server_side_emits = IntCounterVec::new(
            Opts::new(
                "socketio_server_side_emits_received_total",
                "Server-side emits received from other nodes and emitters",
            ),
            &["namespace"],
        )?;
        let packets_sent = IntCounter::new(
            "socketio_packets_sent_total",
            "Socket.IO packets sent to clients: acks and (Redis mode) broadcast deliveries to local sockets",
        )?;
        let bytes = ByteCounters {
            received: IntCounter::new(
                "socketio_bytes_received_total",
                "Bytes read from clients on the Socket.IO listener",
            )?,
            sent: IntCounter::new(
                "socketio_bytes_sent_total",
                "Bytes written to clients on the Socket.IO listener",
            )?,
        };
        registry.register(Box::new(connected_sockets.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(disconnections.clone()))?;
        registry.register(Box::new(events_received.clone()))?;
        registry.register(Box::new(server_side_emits.clone()))?;
        registry.register(Box::new(packets_sent.clone()))?;
        registry.register(Box::new(bytes.received.clone()))?;
        registry.register(Box::new(bytes.sent.clone()))?;
        let auth_failures = counter_vec(
            &registry,
            "socketio_auth_failures_total",
            "Handshakes refused by authentication, by reason",
            "reason",
            &crate::auth::AuthError::LABELS,
        )?;
        let forbidden = counter_vec(
            &registry,
            "socketio_forbidden_total",
            "Operations refused by the socket's permissions",
            "op",
            &FORBIDDEN_OPS,
        )?;
        let limited = counter_vec(
            &registry,
            "socketio_limited_total",
            "Joins over the room limit and events over the rate limit",
            "limit",
            &LIMITS,
        )?;
        let limit_disconnects = counter_vec(
            &registry,
            "socketio_limit_disconnects_total",
            "Sockets disconnected for flooding or an expired token",
            "reason",
            &LIMIT_DISCONNECTS,
        )?;
        let refused_handshakes = counter_vec(
            &registry,
            "socketio_refused_handshakes_total",
            "New sessions refused at the connection limit or the per-address connect rate",
            "reason",
            &REFUSED_HANDSHAKES,
        )?;
        let connection_limit = IntGauge::new(
            "socketio_connection_limit",
            "Client connections beyond which new handshakes are refused",
        )?;
        registry.register(Box::new(connection_limit.clone()))?;
        Ok(Self {
            connection_limit,
            refused_handshakes,
            auth_failures,
            forbidden,
            limited,
            limit_disconnects,
            registry,
            connected_sockets,
            connections,
            disconnections,
            events_received,
            server_side_emits,
            packets_sent,
            bytes,
        })
    }

    /// The registry, for embedders who add their own metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Text exposition of everything registered.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(%err, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// Records a disconnection.
    pub fn on_disconnect(&self, namespace: &str, reason: DisconnectReason) {
        self.connected_sockets.with_label_values(&[namespace]).dec();
        self.disconnections
            .with_label_values(&[reason_label(reason)])
            .inc();
    }
}

/// A stable snake_case label for a disconnect reason.
pub fn reason_label(reason: DisconnectReason) -> &'static str {
    use DisconnectReason::*;
    match reason {
        TransportClose => "transport_close",
        MultipleHttpPollingError => "multiple_http_polling_error",
        PacketParsingError => "packet_parsing_error",
        TransportError => "transport_error",
        HeartbeatTimeout => "heartbeat_timeout",
        ClientNSDisconnect => "client_namespace_disconnect",
        ServerNSDisconnect => "server_namespace_disconnect",
        ClosingServer => "closing_server",
    }
}
