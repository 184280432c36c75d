//! The socketioxide-redis stack of `make bench`: socketioxide 0.18 with the
//! socketioxide-redis 0.4 adapter on fred, which publishes and subscribes on
//! one Redis (sharded pub/sub, Redis 7+), with the gateway's default
//! handlers so the same load scenarios apply.
//!
//!   socketioxide-redis-server <listen addr> <redis url>
//!
//! Prints `listening <addr>` once the adapter is initialised.

use anyhow::Context;
use fred::types::RespVersion;
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::SocketIo;
use socketioxide_redis::{FredAdapter, RedisAdapterCtr};

const RESERVED: &[&str] = &[
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

fn room_name(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

async fn on_connect<A: Adapter>(socket: SocketRef<A>) {
    socket.on("message", on_message::<A>);
    socket.on("join", on_join::<A>);
    socket.on("leave", on_leave::<A>);
    socket.on("publish", on_publish::<A>);
}

async fn on_message<A: Adapter>(socket: SocketRef<A>, Data(data): Data<Value>) {
    let _ = socket.broadcast().emit("message", &data).await;
}

async fn on_join<A: Adapter>(socket: SocketRef<A>, Data(room): Data<Value>, ack: AckSender<A>) {
    match room_name(&room) {
        Some(room) => {
            socket.join(room);
            let _ = ack.send(&true);
        }
        None => {
            let _ = ack.send("room name must be a non-empty string");
        }
    }
}

async fn on_leave<A: Adapter>(socket: SocketRef<A>, Data(room): Data<Value>, ack: AckSender<A>) {
    if let Some(room) = room_name(&room) {
        socket.leave(room);
    }
    let _ = ack.send(&true);
}

async fn on_publish<A: Adapter>(
    socket: SocketRef<A>,
    Data(request): Data<Value>,
    ack: AckSender<A>,
) {
    let room = request.get("room").and_then(room_name);
    let event = request
        .get("event")
        .and_then(Value::as_str)
        .map(str::to_owned);
    match (room, event) {
        (Some(room), Some(event)) if !event.is_empty() && !RESERVED.contains(&event.as_str()) => {
            let data = request.get("data").cloned().unwrap_or(Value::Null);
            let _ = socket.to(room).emit(&event, &data).await;
            let _ = ack.send(&true);
        }
        _ => {
            let _ = ack.send("publish expects {room, event, data}");
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:3000".into());
    let redis = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());

    let mut config = fred::prelude::Config::from_url(&redis).context("redis url")?;
    config.version = RespVersion::RESP3;
    let client = fred::prelude::Builder::from_config(config).build_subscriber_client()?;
    let adapter = RedisAdapterCtr::new_with_fred(client).await?;
    let (layer, io) = SocketIo::builder()
        .with_adapter::<FredAdapter<_>>(adapter)
        .build_layer();
    io.ns("/", on_connect).await?;

    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening {}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
