//! The adapter on the in-memory bus: three socketioxide gateways in one
//! process on a [`MemoryBus`], driven by real WebSocket clients, with no
//! Redis. The cross-node scenarios of `cluster.rs` run here in
//! milliseconds; the tests after them read and write the wire through the
//! bus, which Redis tests cannot do as simply.

mod common;

use std::time::Duration;

use adapter::{AdapterConfig, MemoryBus, Watcher};
use common::{scenarios::heard, *};
use serde_json::json;
use wire::{BroadcastMessage, BroadcastOpts, BroadcastPacket, PacketKind, Request, RequestOpts};

const REQUEST_TIMEOUT: Duration = Duration::from_millis(300);

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

fn config() -> AdapterConfig {
    AdapterConfig {
        request_timeout_ms: REQUEST_TIMEOUT.as_millis() as u64,
        ..AdapterConfig::default()
    }
}

async fn gateways_on(bus: &MemoryBus, count: usize) -> anyhow::Result<Vec<Gateway>> {
    init_tracing();
    let mut gateways = Vec::new();
    for _ in 0..count {
        gateways.push(Gateway::start_on(bus.node(config())?, 1024).await?);
    }
    Ok(gateways)
}

/// Every broadcast that goes on the wire, as `(channel, message)`.
fn broadcast_watcher(bus: &MemoryBus) -> Watcher {
    bus.watch(&[], &["socket.io#*"])
}

async fn next_broadcast(watcher: &mut Watcher) -> anyhow::Result<(String, BroadcastMessage)> {
    let (channel, payload) = watcher
        .next(WAIT)
        .await
        .ok_or_else(|| err("no broadcast on the wire"))?;
    Ok((channel, BroadcastMessage::decode(&payload)?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_reach_each_socket_once() -> anyhow::Result<()> {
    let bus = MemoryBus::new();
    scenarios::broadcasts_reach_each_socket_once(&gateways_on(&bus, 3).await?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_apply_once_on_every_node() -> anyhow::Result<()> {
    let bus = MemoryBus::new();
    scenarios::operations_apply_once(&gateways_on(&bus, 3).await?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_are_gathered_across_nodes() -> anyhow::Result<()> {
    let bus = MemoryBus::new();
    scenarios::acks_are_gathered(&gateways_on(&bus, 3).await?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_emits_reach_every_other_node_once() -> anyhow::Result<()> {
    let bus = MemoryBus::new();
    scenarios::server_side_emits(&gateways_on(&bus, 3).await?, REQUEST_TIMEOUT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_publish_per_broadcast_on_its_channel() -> anyhow::Result<()> {
    let bus = MemoryBus::new();
    let gateways = gateways_on(&bus, 2).await?;
    let mut wire = broadcast_watcher(&bus);
    let mut clients = [
        gateways[0].client("a").await?,
        gateways[1].client("b").await?,
    ];
    clients[0].join("r1").await?;

    gateways[0].io.emit("all", &()).await.map_err(err)?;
    let (channel, message) = next_broadcast(&mut wire).await?;
    assert_eq!(channel, "socket.io#/#");
    assert_eq!(message.uid, gateways[0].cluster.uid());
    assert!(message.opts.rooms.is_empty());
    heard(&gateways[0], &mut clients, "all", &["a", "b"]).await?;
    let (channel, _) = next_broadcast(&mut wire).await?;
    assert_eq!(channel, "socket.io#/#", "the marker");

    gateways[1].io.to("r1").emit("r1", &()).await.map_err(err)?;
    let (channel, message) = next_broadcast(&mut wire).await?;
    assert_eq!(channel, "socket.io#/#r1#");
    assert_eq!(message.opts.rooms, ["r1"]);
    heard(&gateways[1], &mut clients, "r1", &["a"]).await?;
    let (channel, _) = next_broadcast(&mut wire).await?;
    assert_eq!(channel, "socket.io#/#", "the marker");
    assert!(
        wire.next(Duration::ZERO).await.is_none(),
        "a second publish"
    );

    // A room with no socket on node 1: node 1 drops it before decoding.
    gateways[0]
        .io
        .to("nobody")
        .emit("x", &())
        .await
        .map_err(err)?;
    heard(&gateways[0], &mut clients, "x", &[]).await?;
    // The bus delivers during the PUBLISH: each node has dropped its own
    // echoes by now, and node 1 handled "nobody" before the last marker.
    let zero = gateways[0].cluster.metrics().snapshot();
    let one = gateways[1].cluster.metrics().snapshot();
    let counts = |label: &str| (zero.dropped[label], one.dropped[label]);
    assert_eq!(
        (zero.published["broadcast"], one.published["broadcast"]),
        (4, 2)
    );
    assert_eq!(counts("own_echo"), (4, 2));
    assert_eq!(counts("no_local_room"), (0, 1));
    Ok(())
}

/// A broadcast as a Node server on the same Redis publishes it.
fn from_node(event: &str, rooms: &[&str]) -> (String, Vec<u8>) {
    let message = BroadcastMessage {
        uid: "node-server".into(),
        packet: BroadcastPacket {
            kind: PacketKind::Event,
            nsp: "/".into(),
            data: rmpv::Value::Array(vec![event.into()]),
        },
        opts: BroadcastOpts {
            rooms: rooms.iter().map(|r| (*r).to_owned()).collect(),
            ..BroadcastOpts::default()
        },
    };
    let rooms: Vec<String> = message.opts.rooms.clone();
    let channel = wire::Channels::new("socket.io", "/")
        .broadcast_for(&rooms)
        .into_owned();
    (channel, message.encode())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_style_messages_address_socket_ids() -> anyhow::Result<()> {
    let bus = MemoryBus::new();
    let gateways = gateways_on(&bus, 2).await?;
    let mut clients = [
        gateways[0].client("a").await?,
        gateways[1].client("b").await?,
    ];
    let (a_sid, b_sid) = (clients[0].sid.clone(), clients[1].sid.clone());

    // A Node server's io.to(socketId), straight on the wire; then a marker
    // on the same path, the bus.
    let (channel, payload) = from_node("from-node", &[&a_sid]);
    assert_eq!(bus.publish(&channel, payload), 2, "both nodes subscribe");
    let (channel, payload) = from_node("bus-marker", &[]);
    bus.publish(&channel, payload);
    let before = clients[0].events_before("bus-marker").await?;
    assert_eq!(
        before.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        ["from-node"]
    );
    clients[1].nothing_before("bus-marker").await?;

    // Node's io.in(socketId).socketsJoin("vip") joins the socket on its node.
    let join = Request::RemoteJoin {
        uid: Some("node-server".into()),
        opts: RequestOpts {
            rooms: vec![b_sid.clone()],
            ..RequestOpts::default()
        },
        rooms: vec!["vip".into()],
    };
    assert_eq!(bus.publish("socket.io-request#/#", join.encode()), 2);
    let sid = b_sid.parse().map_err(|_| err("sid"))?;
    eventually("b joined vip", WAIT, || {
        let joined = gateways[1]
            .io
            .get_socket(sid)
            .is_some_and(|s| s.rooms().iter().any(|r| r == "vip"));
        async move { joined }
    })
    .await?;
    gateways[0]
        .io
        .to("vip")
        .emit("vip", &())
        .await
        .map_err(err)?;
    heard(&gateways[0], &mut clients, "vip", &["b"]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_subscriber_counts_as_a_node_that_never_answers() -> anyhow::Result<()> {
    let bus = MemoryBus::new();
    let gateways = gateways_on(&bus, 3).await?;
    for (i, gateway) in gateways.iter().enumerate() {
        gateway.cluster.on_server_side_emit("/", move |emit| {
            if let Some(ack) = emit.ack {
                tokio::spawn(ack.send(json!({ "node": i })));
            }
        });
    }
    // A subscriber of the request channel that never answers is counted as
    // a node: the request ends at the timeout with what came.
    let _silent = bus.watch(&["socket.io-request#/#"], &[]);
    assert_eq!(gateways[0].cluster.server_count("/").await?, 4);
    let started = tokio::time::Instant::now();
    let answers = gateways[0]
        .cluster
        .server_side_emit_with_ack("/", vec![json!("ask")])
        .await?;
    assert_eq!((answers.expected, answers.answered), (3, 2), "{answers:?}");
    assert!(
        started.elapsed() >= REQUEST_TIMEOUT,
        "{:?}",
        started.elapsed()
    );
    let fetched = gateways[0]
        .cluster
        .fetch_sockets("/", vec![], vec![])
        .await?;
    assert_eq!((fetched.expected, fetched.answered), (3, 2), "{fetched:?}");
    let snapshot = gateways[0].cluster.metrics().snapshot();
    assert_eq!(
        snapshot.requests[&("fetch_sockets", "timeout")],
        1,
        "{snapshot:?}"
    );

    // A node that shuts down stops being counted.
    gateways[2].cluster.shutdown().await;
    assert_eq!(gateways[0].cluster.server_count("/").await?, 3);
    assert!(!gateways[2].cluster.readiness().is_ready());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_wire_is_counted_and_harmless() -> anyhow::Result<()> {
    let bus = MemoryBus::new();
    let gateways = gateways_on(&bus, 1).await?;
    let mut a = gateways[0].client("a").await?;
    for (channel, payload) in [
        ("socket.io#/#", &b"\xc1not msgpack"[..]),
        ("socket.io#/#room#", b"\x93\xa1x"),
        ("socket.io-request#/#", b"{\"type\":"),
        ("socket.io-request#/#", b"\x00\x01"),
        ("socket.io-response#/#", b"[]"),
    ] {
        bus.publish(channel, payload.to_vec());
    }
    // A marker on the same path. The namespace worker takes requests and
    // responses first, so they are counted too when it reaches the client.
    let (channel, payload) = from_node("bus-marker", &[]);
    bus.publish(&channel, payload);
    a.nothing_before("bus-marker").await?;
    let snapshot = gateways[0].cluster.metrics().snapshot();
    // The room message is dropped unread: no local socket is in "room".
    for (table, label, count) in [
        (&snapshot.garbage, "broadcast", 1),
        (&snapshot.garbage, "request", 2),
        (&snapshot.garbage, "response", 1),
        (&snapshot.dropped, "no_local_room", 1),
    ] {
        assert_eq!(table.get(label), Some(&count), "{label}: {snapshot:?}");
    }
    Ok(())
}
