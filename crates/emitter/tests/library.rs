//! The emitter library against a real redis-server, compared with Node's
//! real `@socket.io/redis-emitter` 5.x doing the same calls.

// Helpers outside #[test] functions panic on failure too: that is the report.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{
    assert_nothing_published, next_message, node_emitter, node_run, publishes_since_start, watch,
};
use e2e::{NodePeer, RedisServer};
use emitter::{Emitter, EmitterError, RedisConfig};
use rmpv::Value;
use serde_json::json;

/// Checks that Rust and Node published the same message on the same
/// channel, byte for byte, and that Node's decoder reads them alike.
async fn assert_same_message(
    decoder: &mut NodePeer,
    rust: &e2e::redis::PubSubMessage,
    node: &e2e::redis::PubSubMessage,
) {
    assert_eq!(rust.channel, node.channel, "channel");
    assert_eq!(
        e2e::to_hex(&rust.payload),
        e2e::to_hex(&node.payload),
        "message bytes on {} ({})",
        node.channel,
        String::from_utf8_lossy(&node.payload)
    );
    if node.payload.first() != Some(&b'{') {
        let rust_view = decoder
            .decode("notepack", &rust.payload, &[])
            .await
            .unwrap()
            .unwrap();
        let node_view = decoder
            .decode("notepack", &node.payload, &[])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            rust_view, node_view,
            "Node's view of the broadcast on {}",
            node.channel
        );
    }
}

/// Runs a Node emitter command after a Rust call, and compares what each published.
struct Comparer<'a> {
    watcher: &'a mut e2e::RedisConn,
    node: &'a mut NodePeer,
    decoder: &'a mut NodePeer,
    next_id: u64,
}

impl Comparer<'_> {
    /// `rust` is the outcome of the (already awaited) Rust call.
    async fn compare(
        &mut self,
        rust: Result<usize, EmitterError>,
        node_command: serde_json::Value,
    ) -> e2e::redis::PubSubMessage {
        rust.unwrap();
        let rust_message = next_message(self.watcher).await.unwrap();
        self.next_id += 1;
        node_run(self.node, self.next_id, node_command)
            .await
            .unwrap();
        let node_message = next_message(self.watcher).await.unwrap();
        assert_same_message(self.decoder, &rust_message, &node_message).await;
        rust_message
    }
}

#[tokio::test]
async fn publishes_what_node_redis_emitter_publishes() {
    let redis = RedisServer::master().await.unwrap();
    let mut watcher = watch(&redis).await.unwrap();
    let mut node = node_emitter(&redis).await.unwrap();
    let mut decoder = NodePeer::decoder().await.unwrap();
    let io = Emitter::connect(&RedisConfig::new(redis.url()))
        .await
        .unwrap();

    let mut compare = Comparer {
        watcher: &mut watcher,
        node: &mut node,
        decoder: &mut decoder,
        next_id: 0,
    };

    // Everyone in "/": the base channel.
    let message = compare
        .compare(
            io.emit("message", ["Hello!"]).await,
            json!({"op": "emit", "event": "message", "args": ["Hello!"]}),
        )
        .await;
    assert_eq!(message.channel, "socket.io#/#");

    // Exactly one room: that room's channel; every JSON-ish type, and the
    // integer formats notepack picks.
    let args = vec![
        Value::from("world"),
        Value::from(0),
        Value::from(-1),
        Value::from(-33),
        Value::from(-129),
        Value::from(200),
        Value::from(65_536),
        Value::from(1u64 << 40),
        Value::F64(1.5),
        Value::Boolean(true),
        Value::Nil,
        Value::Map(vec![(
            Value::from("a"),
            Value::Array(vec![Value::from(1), Value::from("x")]),
        )]),
    ];
    let message = compare.compare(io.to("room1").emit("hello", args).await,
        json!({"op": "emit", "rooms": ["room1"], "event": "hello",
               "args": ["world", 0, -1, -33, -129, 200, 65536, 1_099_511_627_776u64, 1.5, true, null, {"a": [1, "x"]}]}),
    )
    .await;
    assert_eq!(message.channel, "socket.io#/#room1#");

    // Binary stays inline as msgpack bin.
    compare.compare(io.to("room1").emit("file", [Value::Binary(vec![1, 2, 3]), Value::from("name")]).await,
        json!({"op": "emit", "rooms": ["room1"], "event": "file", "args": [{"$bin": "010203"}, "name"]}),
    )
    .await;

    // Several rooms and exceptions: the base channel; rooms as a set.
    let message = compare.compare(io.to(["r1", "r2"]).in_("r1").except("r3").emit("news", [1]).await,
        json!({"op": "emit", "rooms": ["r1", "r2"], "except": ["r3"], "event": "news", "args": [1]}),
    )
    .await;
    assert_eq!(message.channel, "socket.io#/#");

    // Flags, in another namespace (normalised like Node's of()).
    let message = compare.compare(io.of("admin").volatile().compress(false).emit("tick", Vec::<Value>::new()).await,
        json!({"op": "emit", "nsp": "/admin", "volatile": true, "compress": false, "event": "tick"}),
    )
    .await;
    assert_eq!(message.channel, "socket.io#/admin#");
    compare.compare(io.except("r9").compress(true).emit("tock", ["x"]).await,
        json!({"op": "emit", "except": ["r9"], "compress": true, "event": "tock", "args": ["x"]}),
    )
    .await;

    // Requests: JSON text on the request channel, byte for byte.
    let message = compare
        .compare(
            io.to("r1").except("r2").sockets_join(["a", "b"]).await,
            json!({"op": "socketsJoin", "rooms": ["r1"], "except": ["r2"], "target": ["a", "b"]}),
        )
        .await;
    assert_eq!(message.channel, "socket.io-request#/#");
    assert_eq!(
        String::from_utf8_lossy(&message.payload),
        r#"{"type":2,"opts":{"rooms":["r1"],"except":["r2"]},"rooms":["a","b"]}"#
    );
    compare
        .compare(
            io.of("/chat").sockets_leave("a").await,
            json!({"op": "socketsLeave", "nsp": "/chat", "target": ["a"]}),
        )
        .await;
    let message = compare
        .compare(
            io.to("r1").disconnect_sockets(true).await,
            json!({"op": "disconnectSockets", "rooms": ["r1"], "close": true}),
        )
        .await;
    assert_eq!(
        String::from_utf8_lossy(&message.payload),
        r#"{"type":4,"opts":{"rooms":["r1"],"except":[]},"close":true}"#
    );
    compare
        .compare(
            io.disconnect_sockets(false).await,
            json!({"op": "disconnectSockets"}),
        )
        .await;
    let message = compare
        .compare(
            io.server_side_emit("ping", [json!(1), json!("a"), json!({"k": [true, null]})])
                .await,
            json!({"op": "serverSideEmit", "event": "ping", "args": [1, "a", {"k": [true, null]}]}),
        )
        .await;
    assert_eq!(
        String::from_utf8_lossy(&message.payload),
        r#"{"uid":"emitter","type":6,"data":["ping",1,"a",{"k":[true,null]}]}"#
    );

    io.quit().await.unwrap();
    assert_nothing_published(&redis, &mut watcher)
        .await
        .unwrap();
}

#[tokio::test]
async fn custom_prefix_and_receiver_count() {
    let redis = RedisServer::master().await.unwrap();
    let mut watcher = watch(&redis).await.unwrap();
    let io = Emitter::connect(&RedisConfig::new(redis.url()).with_prefix("app"))
        .await
        .unwrap();
    let receivers = io.to("x").emit("e", [1]).await.unwrap();
    assert_eq!(receivers, 1, "the watcher's PSUBSCRIBE received it");
    let message = next_message(&mut watcher).await.unwrap();
    assert_eq!(message.channel, "app#/#x#");
    let decoded = wire::BroadcastMessage::decode(&message.payload).unwrap();
    assert_eq!(decoded.uid, "emitter");
    assert_eq!(decoded.opts.rooms, vec!["x"]);
    io.sockets_join("y").await.unwrap();
    assert_eq!(
        next_message(&mut watcher).await.unwrap().channel,
        "app-request#/#"
    );
}

#[tokio::test]
async fn reserved_events_are_refused_and_nothing_is_published() {
    let redis = RedisServer::master().await.unwrap();
    let mut watcher = watch(&redis).await.unwrap();
    let io = Emitter::connect(&RedisConfig::new(redis.url()))
        .await
        .unwrap();
    for event in emitter::RESERVED_EVENTS {
        let err = io.to("r").emit(event, ["x"]).await.unwrap_err();
        assert!(
            matches!(err, EmitterError::ReservedEvent(ref e) if e == event),
            "{err}"
        );
        assert!(!err.is_unavailable());
        let err = io.server_side_emit(event, []).await.unwrap_err();
        assert!(matches!(err, EmitterError::ReservedEvent(_)), "{err}");
    }
    let err = io
        .emit_json("e", &[json!({"$binary": "not base64"})])
        .await
        .unwrap_err();
    assert!(matches!(err, EmitterError::InvalidArgument(_)), "{err}");
    assert_nothing_published(&redis, &mut watcher)
        .await
        .unwrap();
}

#[tokio::test]
async fn json_arguments_convert_like_javascript_values() {
    let redis = RedisServer::master().await.unwrap();
    let mut watcher = watch(&redis).await.unwrap();
    let io = Emitter::connect(&RedisConfig::new(redis.url()))
        .await
        .unwrap();
    io.to("j")
        .emit_json(
            "e",
            &[
                json!({"$binary": "AQID"}),
                json!(1.0),
                json!({"z": 1, "a": 2}),
            ],
        )
        .await
        .unwrap();
    let message = next_message(&mut watcher).await.unwrap();
    assert_eq!(message.channel, "socket.io#/#j#");
    let decoded = wire::BroadcastMessage::decode(&message.payload).unwrap();
    let Value::Array(data) = decoded.packet.data else {
        panic!("data is not an array");
    };
    assert_eq!(data[0], Value::from("e"));
    assert_eq!(data[1], Value::Binary(vec![1, 2, 3]));
    assert_eq!(
        data[2],
        Value::from(1),
        "1.0 is the integer 1 in JavaScript"
    );
    assert!(matches!(&data[3], Value::Map(entries) if entries.len() == 2));
}

#[tokio::test]
async fn unreachable_redis_is_an_error_at_connect() {
    let port = e2e::free_port().unwrap();
    let started = Instant::now();
    let err = Emitter::connect(&RedisConfig::new(format!("redis://127.0.0.1:{port}")))
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn publish_fails_within_the_timeout_while_redis_is_down_then_recovers() {
    let mut redis = RedisServer::master().await.unwrap();
    let config = RedisConfig::new(redis.url()).with_publish_timeout(Duration::from_millis(800));
    let io = Emitter::connect(&config).await.unwrap();
    io.emit("before", [1]).await.unwrap();

    redis.kill();
    let started = Instant::now();
    let err = io.emit("during", [2]).await.unwrap_err();
    let waited = started.elapsed();
    assert!(err.is_unavailable(), "{err}");
    assert!(waited < Duration::from_secs(3), "publish waited {waited:?}");
    // A lazy emitter against the dead server fails the same way.
    let lazy = Emitter::connect_lazy(&config).unwrap();
    let started = Instant::now();
    assert!(lazy.emit("x", [1]).await.unwrap_err().is_unavailable());
    assert!(started.elapsed() < Duration::from_secs(3));

    // Same port again: the emitter reconnects by itself, and the failed
    // publish was not replayed behind the caller's back.
    redis.restart().await.unwrap();
    let mut watcher = watch(&redis).await.unwrap();
    e2e::wait_until("the emitter to reconnect", Duration::from_secs(10), || {
        let connected = io.is_connected();
        async move { connected }
    })
    .await
    .unwrap();
    io.emit("after", [3]).await.unwrap();
    let message = next_message(&mut watcher).await.unwrap();
    let decoded = wire::BroadcastMessage::decode(&message.payload).unwrap();
    assert_eq!(
        decoded.packet.data,
        Value::Array(vec![Value::from("after"), Value::from(3)])
    );
    assert_nothing_published(&redis, &mut watcher)
        .await
        .unwrap();
    // Since the restart, Redis ran two PUBLISHes: "after" and the marker.
    // The watcher subscribed after the restart; Redis's count covers the
    // moments before it did.
    assert_eq!(publishes_since_start(&redis).await.unwrap(), 2);
}
