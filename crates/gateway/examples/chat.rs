//! A chat on the cluster: where a Rust application starts. socketioxide
//! with this project's Redis adapter and handlers of its own; run two on one
//! Redis and a room spans both.
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:6379 LISTEN=127.0.0.1:3000 cargo run -p gateway --example chat
//! REDIS_URL=redis://127.0.0.1:6379 LISTEN=127.0.0.1:3001 cargo run -p gateway --example chat
//! ```
//!
//! What a Socket.IO client (any version 3 or 4 client) can do:
//! - connect with `auth: {"name": "alice"}` (without it the socket id is
//!   the name);
//! - `join` a room, with an ack: `{"room", "members"}`, `members` counting
//!   the room's sockets on every node; the room hears a `system` event from
//!   the server, `{"text": "alice joined"}`;
//! - `chat` `{"room", "text"}` with an ack: everyone in the room (the sender
//!   too) gets `chat` `{"from", "text"}`, and the ack is `{"ok": true}`, or
//!   `{"error": ...}` when the sender is not in the room or the text is
//!   empty or too long;
//! - `typing` a room name: the others in the room get a volatile `typing`
//!   `{"from"}` (dropped rather than queued for a slow client).
//!
//! Handlers are registered in a connect middleware, which socketioxide
//! awaits before it answers the client's CONNECT: a client that emits right
//! after connecting is never ahead of them.

use std::sync::Arc;

use adapter::{AdapterConfig, ClusterHandle, RedisAdapter};
use anyhow::Context;
use serde::Deserialize;
use serde_json::json;
use socketioxide::adapter::Emitter;
use socketioxide::extract::{AckSender, Data, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::SocketIo;

type Socket = SocketRef<RedisAdapter<Emitter>>;
type Ack = AckSender<RedisAdapter<Emitter>>;

/// Longest accepted message and room name, in bytes.
const MAX_TEXT: usize = 2000;
const MAX_ROOM: usize = 128;

#[derive(Debug, Deserialize)]
struct Auth {
    name: String,
}

#[derive(Debug, Deserialize)]
struct ChatIn {
    room: String,
    text: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt::init();
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());

    let cluster = ClusterHandle::connect(AdapterConfig::new(redis_url.as_str()))
        .await
        .with_context(|| format!("connecting to {}", redis_layer::redact(&redis_url)))?;
    let (layer, io) = SocketIo::builder()
        .with_adapter::<RedisAdapter<_>>(cluster.clone())
        .build_layer();
    io.ns("/", on_connect.with(register))
        .await
        .context("joining the cluster on namespace /")?;

    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    // Tests and scripts wait for this line.
    println!("chat listening on {}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    io.close().await;
    cluster.shutdown().await;
    Ok(())
}

async fn on_connect(socket: Socket) {
    tracing::info!(sid = %socket.id, "connected");
}

/// Registers this socket's handlers, with its name captured in each.
async fn register(socket: Socket, TryData(auth): TryData<Auth>) -> Result<(), std::io::Error> {
    let name: Arc<str> = match auth {
        Ok(auth) if !auth.name.trim().is_empty() => auth.name.trim().into(),
        _ => socket.id.to_string().into(),
    };
    let who = name.clone();
    socket.on(
        "join",
        move |socket: Socket, Data::<String>(room), ack: Ack| {
            let name = who.clone();
            async move { on_join(socket, &name, room, ack).await }
        },
    );
    let who = name.clone();
    socket.on(
        "chat",
        move |socket: Socket, Data::<ChatIn>(message), ack: Ack| {
            let name = who.clone();
            async move { on_chat(socket, &name, message, ack).await }
        },
    );
    socket.on("typing", move |socket: Socket, Data::<String>(room)| {
        let name = name.clone();
        async move {
            // Volatile: a late typing indicator is worth nothing.
            let _ = socket
                .to(room)
                .volatile()
                .emit("typing", &json!({"from": &*name}))
                .await;
        }
    });
    Ok(())
}

async fn on_join(socket: Socket, name: &str, room: String, ack: Ack) {
    if room.is_empty() || room.len() > MAX_ROOM {
        let _ = ack.send(&json!({"error": format!("a room name is 1 to {MAX_ROOM} bytes")}));
        return;
    }
    socket.join(room.clone());
    // The server speaks to the room: on every node, the joiner included.
    let text = format!("{name} joined");
    if let Err(err) = socket
        .within(room.clone())
        .emit("system", &json!({ "text": text }))
        .await
    {
        tracing::warn!(%err, room, "join announcement not delivered everywhere");
    }
    // Counted across the cluster: every node answers for its own sockets.
    let members = match socket.within(room.clone()).fetch_sockets().await {
        Ok(sockets) => json!(sockets.len()),
        Err(err) => {
            tracing::warn!(%err, room, "member count failed");
            serde_json::Value::Null
        }
    };
    let _ = ack.send(&json!({"room": room, "members": members}));
}

async fn on_chat(socket: Socket, name: &str, message: ChatIn, ack: Ack) {
    let ChatIn { room, text } = message;
    let in_room = socket.rooms().iter().any(|joined| **joined == *room);
    let refusal = if !in_room {
        Some(format!("join {room:?} first"))
    } else if text.trim().is_empty() {
        Some("empty message".to_owned())
    } else if text.len() > MAX_TEXT {
        Some(format!("messages are at most {MAX_TEXT} bytes"))
    } else {
        None
    };
    if let Some(error) = refusal {
        let _ = ack.send(&json!({ "error": error }));
        return;
    }
    match socket
        .within(room)
        .emit("chat", &json!({"from": name, "text": text}))
        .await
    {
        Ok(()) => {
            let _ = ack.send(&json!({"ok": true}));
        }
        Err(err) => {
            let _ = ack.send(&json!({"error": err.to_string()}));
        }
    }
}
