//! The default event handlers: the seed's `server.js`, made useful.
//!
//! - `message` (any arguments, binary included) is relayed to every other
//!   socket of the namespace, on every gateway;
//! - `join` / `leave` (a room name, optional ack) change the socket's rooms
//!   and ack `true`, or an error string;
//! - `publish` (`{room, event, data}`, optional ack) emits `event` with
//!   `data` to every socket in `room` on every gateway except the sender.
//!
//! Each asks the socket's [`Guard`] first, when [`crate::guard::authenticate`]
//! installed one: events over the rate limit are dropped, and `join`,
//! `publish` and `message` need the socket's permissions (refusals answer
//! the ack with `"forbidden: ..."` or `"limit: ..."`).
//!
//! Events the backend hooks take are registered here too (see
//! [`crate::hooks`]).
//!
//! They are generic over the adapter so the single-node and the Redis modes
//! share them, and public so embedders can register them beside their own
//! (they need a [`GatewayMetrics`] and an `Arc<`[`Hooks`]`>`, idle when no
//! hook is configured, in socketioxide's state, which [`crate::server`]
//! provides).

use std::convert::Infallible;
use std::sync::Arc;

use rmpv::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State};
use socketioxide::socket::DisconnectReason;
use socketioxide::BroadcastError;
use tracing::{debug, warn};

use crate::args::EventArgs;
use crate::guard::Guard;
use crate::hooks::{self, event::ToBackend, Hooks};
use crate::limits::Verdict;
use crate::membership;
use crate::metrics::GatewayMetrics;
use crate::relay_order::{InOrder, RelayQueue};

/// Longest room name accepted from a client, in bytes.
pub const MAX_ROOM_LEN: usize = 256;

/// Event names a client may not make the gateway emit through `publish`:
/// the reserved names of Socket.IO, which clients treat specially.
pub use protocol::socketio::RESERVED_EVENTS;

/// Registers the default event handlers, as a connect *middleware*:
/// socketioxide awaits middlewares before it answers the client's CONNECT,
/// whereas the connect handler runs in a task spawned after it, so handlers
/// registered there could miss a client's first events.
///
/// Events named in `hooks.events` go to the backend instead, built-in names
/// included (a backend may take `message` over); with `*`, so does every
/// event without a built-in handler.
pub async fn register<A: Adapter>(
    socket: SocketRef<A>,
    State(hooks): State<Arc<Hooks>>,
) -> Result<(), Infallible> {
    // In arrival order (see `relay_order`): relays keep the client's
    // order, and a join is applied before the events sent after it.
    socket.on("message", InOrder(on_message::<A>));
    socket.on("join", InOrder(on_join::<A>));
    socket.on("leave", InOrder(on_leave::<A>));
    socket.on("publish", InOrder(on_publish::<A>));
    // `check` lets `events` name events only with an `event_url`.
    for event in hooks.config.events.iter().filter(|event| *event != "*") {
        socket.on(event.clone(), ToBackend);
    }
    if hooks.config.forwards_the_rest() {
        socket.on_fallback(ToBackend);
    } else {
        socket.on_fallback(on_other_event::<A>);
    }
    socket.on_disconnect(on_disconnect::<A>);
    Ok(())
}

/// Counts the connection once the client is connected.
pub async fn on_connect<A: Adapter>(socket: SocketRef<A>, State(metrics): State<GatewayMetrics>) {
    debug!(ns = socket.ns(), sid = %socket.id, "socket connected");
    metrics.connections.inc();
    metrics
        .connected_sockets
        .with_label_values(&[socket.ns()])
        .inc();
}

async fn on_disconnect<A: Adapter>(
    socket: SocketRef<A>,
    reason: DisconnectReason,
    State(metrics): State<GatewayMetrics>,
    State(hooks): State<Arc<Hooks>>,
) {
    debug!(ns = socket.ns(), sid = %socket.id, ?reason, "socket disconnected");
    if let Some(guard) = Guard::of(&socket) {
        guard.closed();
    }
    metrics.on_disconnect(socket.ns(), reason);
    hooks::event::on_disconnect(&socket, reason, &hooks);
}

/// An event dropped by the rate limit.
pub(crate) struct OverRate;

/// Counts the event and applies the rate limit: the socket's guard (if it
/// has one) when the event is to be handled.
pub(crate) fn admit<A: Adapter>(
    socket: &SocketRef<A>,
    metrics: &GatewayMetrics,
) -> Result<Option<Arc<Guard>>, OverRate> {
    metrics
        .events_received
        .with_label_values(&[socket.ns()])
        .inc();
    let Some(guard) = Guard::of(socket) else {
        return Ok(None);
    };
    match guard.admit_event() {
        Verdict::Allow => Ok(Some(guard)),
        Verdict::Drop => {
            metrics.limited.with_label_values(&["rate"]).inc();
            Err(OverRate)
        }
        Verdict::Disconnect => {
            metrics.limited.with_label_values(&["rate"]).inc();
            metrics.limit_disconnects.with_label_values(&["rate"]).inc();
            warn!(ns = socket.ns(), sid = %socket.id, "over the event rate for the whole grace: disconnecting");
            let _ = socket.clone().disconnect();
            Err(OverRate)
        }
    }
}

fn forbidden(metrics: &GatewayMetrics, op: &str) {
    metrics.forbidden.with_label_values(&[op]).inc();
}

async fn on_other_event<A: Adapter>(socket: SocketRef<A>, State(metrics): State<GatewayMetrics>) {
    let _ = admit(&socket, &metrics);
}

fn on_message<A: Adapter>(
    socket: SocketRef<A>,
    args: EventArgs,
    _ack: AckSender<A>,
    metrics: GatewayMetrics,
) {
    let Ok(guard) = admit(&socket, &metrics) else {
        return;
    };
    if guard.is_some_and(|guard| !guard.permissions.broadcast) {
        return forbidden(&metrics, "message");
    }
    RelayQueue::of(&socket).push(Box::pin(async move {
        match socket.broadcast().emit("message", &args).await {
            Ok(()) => {}
            // Local sockets that could not take it are counted by the adapter
            // (socketio_packets_dropped_total); under overload a log line per
            // message would only add to the load.
            Err(BroadcastError::Socket(failed)) => {
                debug!(ns = socket.ns(), sid = %socket.id, failed = failed.len(), "message relay: some local sockets could not take it");
            }
            Err(err) => warn!(ns = socket.ns(), sid = %socket.id, %err, "message relay failed"),
        }
    }));
}

fn on_join<A: Adapter>(
    socket: SocketRef<A>,
    args: EventArgs,
    ack: AckSender<A>,
    metrics: GatewayMetrics,
) {
    let Ok(guard) = admit(&socket, &metrics) else {
        return;
    };
    let room = match room_name(args.first()) {
        Ok(room) => room,
        Err(reason) => return reply(&metrics, ack, &reason),
    };
    let Some(guard) = guard else {
        if membership::join_if_connected(&socket, room) {
            reply(&metrics, ack, &true);
        }
        return;
    };
    if !guard.permissions.may_join(&room) {
        forbidden(&metrics, "join");
        return reply(&metrics, ack, &format!("forbidden: room {room}"));
    }
    if !guard.join_within_limit(&socket, room) {
        metrics.limited.with_label_values(&["rooms"]).inc();
        return reply(&metrics, ack, &"limit: too many rooms for this socket");
    }
    reply(&metrics, ack, &true);
}

fn on_leave<A: Adapter>(
    socket: SocketRef<A>,
    args: EventArgs,
    ack: AckSender<A>,
    metrics: GatewayMetrics,
) {
    if admit(&socket, &metrics).is_err() {
        return;
    }
    match room_name(args.first()) {
        Ok(room) => {
            socket.leave(room);
            reply(&metrics, ack, &true);
        }
        Err(reason) => reply(&metrics, ack, &reason),
    }
}

fn on_publish<A: Adapter>(
    socket: SocketRef<A>,
    args: EventArgs,
    ack: AckSender<A>,
    metrics: GatewayMetrics,
) {
    let Ok(guard) = admit(&socket, &metrics) else {
        return;
    };
    let request = match PublishRequest::parse(args.first()) {
        Ok(request) => request,
        Err(reason) => return reply(&metrics, ack, &reason),
    };
    if guard.is_some_and(|guard| !guard.permissions.may_publish(&request.room)) {
        forbidden(&metrics, "publish");
        let refusal = format!("forbidden: room {}", request.room);
        return reply(&metrics, ack, &refusal);
    }
    RelayQueue::of(&socket).push(Box::pin(async move {
        let result = socket
            .to(request.room)
            .emit(&request.event, &request.data)
            .await;
        match result {
            Ok(()) => reply(&metrics, ack, &true),
            Err(err) => {
                warn!(ns = socket.ns(), sid = %socket.id, %err, "publish failed");
                reply(&metrics, ack, &format!("publish failed: {err}"));
            }
        }
    }));
}

/// Handles server-side emits (`io.serverSideEmit` from Node servers, other
/// gateways or emitters) arriving on `ns`: counted and logged; when the
/// sender waits for acknowledgements, this node answers with its uid, so
/// `serverSideEmitWithAck` learns which nodes heard it.
pub fn on_server_side_emit(cluster: &adapter::ClusterHandle, ns: &str, metrics: GatewayMetrics) {
    let uid = cluster.uid().to_owned();
    let namespace = ns.to_owned();
    cluster.on_server_side_emit(ns, move |emit| {
        metrics
            .server_side_emits
            .with_label_values(&[&namespace])
            .inc();
        tracing::info!(
            ns = %namespace,
            event = emit.event().unwrap_or("?"),
            from = emit.from.as_deref().unwrap_or("?"),
            "server-side emit received"
        );
        if let Some(ack) = emit.ack {
            let answer = serde_json::json!({ "node": uid });
            // The handler must not block the namespace's inbound worker.
            tokio::spawn(async move {
                if let Err(err) = ack.send(answer).await {
                    warn!(%err, "server-side emit ack not sent");
                }
            });
        }
    });
}

/// Sends the ack when the client asked for one; a missing ack is not an error.
pub(crate) fn reply<A: Adapter, T: serde::Serialize + ?Sized>(
    metrics: &GatewayMetrics,
    ack: AckSender<A>,
    value: &T,
) {
    match ack.send(value) {
        Ok(()) => metrics.packets_sent.inc(),
        Err(err) => debug!(%err, "ack not delivered"),
    }
}

/// Validates a room name sent by a client. Numbers are accepted and used as
/// their decimal text, as Node's adapter would see them on the wire.
fn room_name(value: Option<&Value>) -> Result<String, String> {
    let room = match value {
        Some(Value::String(s)) => match s.as_str() {
            Some(s) => s.to_owned(),
            None => return Err("room name is not valid UTF-8".into()),
        },
        Some(Value::Integer(i)) => i.to_string(),
        Some(_) => return Err("room name must be a string".into()),
        None => return Err("room name is missing".into()),
    };
    if room.is_empty() {
        return Err("room name is empty".into());
    }
    if room.len() > MAX_ROOM_LEN {
        return Err(format!("room name is longer than {MAX_ROOM_LEN} bytes"));
    }
    Ok(room)
}

/// `{room, event, data}` as sent with `publish`.
#[derive(Debug, PartialEq)]
struct PublishRequest {
    room: String,
    event: String,
    data: Value,
}

impl PublishRequest {
    fn parse(value: Option<&Value>) -> Result<Self, String> {
        let Some(Value::Map(fields)) = value else {
            return Err("publish expects an object {room, event, data}".into());
        };
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k.as_str() == Some(name))
                .map(|(_, v)| v)
        };
        let room = room_name(field("room"))?;
        let event = match field("event") {
            Some(Value::String(s)) => s.as_str().unwrap_or_default().to_owned(),
            Some(_) => return Err("event must be a string".into()),
            None => return Err("event is missing".into()),
        };
        if event.is_empty() {
            return Err("event is empty".into());
        }
        if RESERVED_EVENTS.contains(&event.as_str()) {
            return Err(format!("`{event}` is a reserved event name"));
        }
        let data = field("data").cloned().unwrap_or(Value::Nil);
        Ok(Self { room, event, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Value)]) -> Value {
        Value::Map(
            pairs
                .iter()
                .map(|(k, v)| (Value::from(*k), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn room_names() {
        assert_eq!(room_name(Some(&Value::from("a"))), Ok("a".into()));
        assert_eq!(room_name(Some(&Value::from(42))), Ok("42".into()));
        assert!(room_name(None).is_err());
        assert!(room_name(Some(&Value::from(""))).is_err());
        assert!(room_name(Some(&Value::Boolean(true))).is_err());
        let long = "x".repeat(MAX_ROOM_LEN + 1);
        assert!(room_name(Some(&Value::from(long.as_str()))).is_err());
    }

    #[test]
    fn publish_requests() {
        let ok = map(&[
            ("room", Value::from("r")),
            ("event", Value::from("news")),
            ("data", Value::from(1)),
        ]);
        assert_eq!(
            PublishRequest::parse(Some(&ok)),
            Ok(PublishRequest {
                room: "r".into(),
                event: "news".into(),
                data: Value::from(1)
            })
        );
        let reserved = map(&[
            ("room", Value::from("r")),
            ("event", Value::from("connect")),
        ]);
        assert!(PublishRequest::parse(Some(&reserved)).is_err());
        let no_event = map(&[("room", Value::from("r"))]);
        assert!(PublishRequest::parse(Some(&no_event)).is_err());
        assert!(PublishRequest::parse(Some(&Value::from("r"))).is_err());
        assert!(PublishRequest::parse(None).is_err());
    }
}
