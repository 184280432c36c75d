//! The event and disconnect hooks.
//!
//! [`ToBackend`] is the handler of the events `hooks.events` names (and of
//! every event without a built-in handler with `*`). socketioxide calls it
//! in the order the socket's packets arrive; it takes one of the gateway's
//! `hooks.max_inflight` permits (or answers "backend busy" at once), and
//! queues the call on the socket's [`SerialQueue`], which makes one call at
//! a time: the backend receives a socket's events in the order it sent
//! them. The answer becomes the client's ack.

use std::sync::Arc;

use serde_json::json;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Data, Event, SocketRef, State};
use socketioxide::handler::{FromMessage, FromMessageParts, MessageHandler, Value};
use socketioxide::socket::{DisconnectReason, Socket};
use tracing::warn;

use super::answer::{delivered, event_answer, retry_delay};
use super::{Hook, Hooks};
use crate::args::EventArgs;
use crate::guard::Guard;
use crate::handlers::{admit, reply};
use crate::metrics::GatewayMetrics;
use crate::relay_order::SerialQueue;

/// Calls to the disconnect hook before it is given up: the first and
/// three retries, 0.5, 1 and 2 s apart.
pub const DISCONNECT_ATTEMPTS: u32 = 4;

/// The handler of the events that go to the backend.
#[derive(Debug, Clone, Copy)]
pub struct ToBackend;

/// The marker type of [`ToBackend`]'s [`MessageHandler`] implementation.
#[derive(Debug)]
pub struct ToBackendArgs;

impl<A: Adapter> MessageHandler<A, ToBackendArgs> for ToBackend {
    fn call(&self, socket: Arc<Socket<A>>, mut value: Value, ack_id: Option<i64>) {
        let parts = (
            SocketRef::from_message_parts(&socket, &mut value, &ack_id),
            AckSender::from_message_parts(&socket, &mut value, &ack_id),
            Event::from_message_parts(&socket, &mut value, &ack_id),
            State::<GatewayMetrics>::from_message_parts(&socket, &mut value, &ack_id),
            State::<Arc<Hooks>>::from_message_parts(&socket, &mut value, &ack_id),
        );
        let (Ok(socket_ref), Ok(ack), Ok(Event(event)), Ok(State(metrics)), Ok(State(hooks))) =
            parts
        else {
            tracing::error!(sid = %socket.id, "event hook state missing");
            return;
        };
        match Data::<EventArgs>::from_message(socket, value, ack_id) {
            Ok(Data(args)) => forward(socket_ref, event, args, ack, &metrics, hooks),
            Err(err) => tracing::debug!(%err, "event arguments not extracted"),
        }
    }
}

fn forward<A: Adapter>(
    socket: SocketRef<A>,
    event: String,
    args: EventArgs,
    ack: AckSender<A>,
    metrics: &GatewayMetrics,
    hooks: Arc<Hooks>,
) {
    if admit(&socket, metrics).is_err() {
        return;
    }
    let Some(url) = hooks.config.event_url.clone() else {
        return;
    };
    let Ok(permit) = hooks.inflight.clone().try_acquire_owned() else {
        hooks
            .client
            .metrics
            .dropped
            .with_label_values(&["event", "busy"])
            .inc();
        return reply(metrics, ack, &json!({"error": "backend busy"}));
    };
    let user = Guard::of(&socket).and_then(|guard| guard.user.clone());
    let rooms: Vec<String> = socket.rooms().iter().map(|room| room.to_string()).collect();
    let body = json!({
        "namespace": socket.ns(),
        "socket_id": socket.id.to_string(),
        "user": user,
        "rooms": rooms,
        "event": event,
        "args": args.0.iter().map(protocol::json_args::value_to_json).collect::<Vec<_>>(),
    });
    let metrics = metrics.clone();
    SerialQueue::of(&socket).push(Box::pin(async move {
        let answer = hooks
            .client
            .call(Hook::Event, &url, &body, event_answer)
            .await;
        drop(permit);
        match answer {
            Ok(args) => reply(&metrics, ack, &EventArgs(args)),
            Err(message) => reply(&metrics, ack, &json!({ "error": message })),
        }
    }));
}

/// Tells `hooks.disconnect_url`, when set, that `socket` left: in a task
/// of its own, retried [`DISCONNECT_ATTEMPTS`] times, then counted as
/// given up.
pub fn on_disconnect<A: Adapter>(
    socket: &SocketRef<A>,
    reason: DisconnectReason,
    hooks: &Arc<Hooks>,
) {
    let Some(url) = hooks.config.disconnect_url.clone() else {
        return;
    };
    let user = Guard::of(socket).and_then(|guard| guard.user.clone());
    let body = json!({
        "namespace": socket.ns(),
        "socket_id": socket.id.to_string(),
        "user": user,
        "reason": node_reason(reason),
    });
    let hooks = hooks.clone();
    tokio::spawn(async move {
        for attempt in 0..DISCONNECT_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(retry_delay(attempt - 1)).await;
            }
            if hooks
                .client
                .call(Hook::Disconnect, &url, &body, delivered)
                .await
            {
                return;
            }
        }
        hooks
            .client
            .metrics
            .dropped
            .with_label_values(&["disconnect", "gave_up"])
            .inc();
        warn!(sid = %body["socket_id"], attempts = DISCONNECT_ATTEMPTS, "disconnect hook given up");
    });
}

/// The reason as Node's `socket.on("disconnect", reason)` names it, which
/// is what a Socket.IO backend already knows.
pub fn node_reason(reason: DisconnectReason) -> &'static str {
    use DisconnectReason::*;
    match reason {
        TransportClose => "transport close",
        TransportError | MultipleHttpPollingError => "transport error",
        HeartbeatTimeout => "ping timeout",
        PacketParsingError => "parse error",
        ClientNSDisconnect => "client namespace disconnect",
        ServerNSDisconnect => "server namespace disconnect",
        ClosingServer => "server shutting down",
    }
}
