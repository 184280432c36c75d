//! The connect hook: a connect middleware that runs after the JWT check
//! (socketioxide runs the last added middleware first, see
//! [`crate::server`]) and before socketioxide answers the client's
//! CONNECT. The backend's answer admits the socket, with a user, rooms,
//! data and rights, or refuses it: the client's `connect_error` then
//! carries the backend's message or "backend unavailable".

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use serde_json::{json, Map, Value};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State, TryData};
use tracing::{debug, info};

use super::answer::{connect_verdict, ConnectVerdict};
use super::{Hook, Hooks};
use crate::admission::PeerAddr;
use crate::guard::Guard;

/// A refused CONNECT; its text is the client's `connect_error` message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(String);

/// Connect middleware: asks `hooks.connect_url`, when set, whether the
/// socket may connect, and applies its answer.
pub async fn connect<A: Adapter>(
    socket: SocketRef<A>,
    TryData(auth): TryData<Value>,
    State(hooks): State<Arc<Hooks>>,
) -> Result<(), Refusal> {
    let Some(url) = &hooks.config.connect_url else {
        return Ok(());
    };
    // The JWT middleware runs first and always installs one.
    let Some(guard) = Guard::of(&socket) else {
        return Err(Refusal(super::answer::UNAVAILABLE.into()));
    };
    let body = request_body(&socket, auth.ok(), guard.claims.as_ref(), &hooks);
    let verdict = hooks
        .client
        .call(Hook::Connect, url, &body, connect_verdict)
        .await;
    let admission = match verdict {
        ConnectVerdict::Accept(admission) => admission,
        ConnectVerdict::Refuse(message) => {
            info!(ns = socket.ns(), sid = %socket.id, %message, "handshake refused by the backend");
            return Err(Refusal(message));
        }
    };
    let config = guard.auth_config();
    let permissions = guard.permissions.granted_by_backend(
        &admission.permissions,
        admission.user.as_deref(),
        config,
    );
    if permissions.own_user_room != guard.permissions.own_user_room {
        if let Some(room) = &guard.permissions.own_user_room {
            socket.leave(room.clone());
        }
    }
    if let Some(room) = &permissions.own_user_room {
        socket.join(room.clone());
    }
    for room in admission.rooms {
        socket.join(room);
    }
    debug!(ns = socket.ns(), sid = %socket.id, user = ?admission.user, "socket admitted by the backend");
    let admitted = guard.admitted_by_backend(permissions, admission.user, admission.data);
    socket.extensions.insert(Arc::new(admitted));
    Ok(())
}

/// `{namespace, socket_id, auth, headers, query, remote_addr, claims}`.
fn request_body<A: Adapter>(
    socket: &SocketRef<A>,
    auth: Option<Value>,
    claims: Option<&Value>,
    hooks: &Hooks,
) -> Value {
    let parts = socket.req_parts();
    let mut headers = Map::new();
    for name in &hooks.config.forward_headers {
        let values: Vec<String> = parts
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .collect();
        if !values.is_empty() {
            headers.insert(name.clone(), Value::String(values.join(", ")));
        }
    }
    let query: Map<String, Value> = parts
        .uri
        .query()
        .map(|query| {
            form_urlencoded::parse(query.as_bytes())
                .map(|(name, value)| (name.into_owned(), Value::String(value.into_owned())))
                .collect()
        })
        .unwrap_or_default();
    let remote_addr = parts
        .extensions
        .get::<ConnectInfo<PeerAddr>>()
        .map(|ConnectInfo(PeerAddr(addr))| addr_text(addr));
    json!({
        "namespace": socket.ns(),
        "socket_id": socket.id.to_string(),
        "auth": auth,
        "headers": headers,
        "query": query,
        "remote_addr": remote_addr,
        "claims": claims,
    })
}

fn addr_text(addr: &SocketAddr) -> String {
    addr.ip().to_canonical().to_string()
}
