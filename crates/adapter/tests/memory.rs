//! The adapter on the in-memory bus: three socketioxide gateways in one
//! process on a [`MemoryBus`], driven by real WebSocket clients, with no
//! Redis. The cross-node scenarios of `cluster.rs` run here in
//! milliseconds; the tests after them read and write the wire through the
//! bus, which Redis tests cannot do as simply.

mod common;

use std::time::Duration;

use adapter::{AdapterConfig, MemoryBus, Watcher};
use common::{scenarios::marker, *};
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
    let mut a = gateways[0].client("a").await?;
    let mut b = gateways[1].client("b").await?;
    a.join("r1").await?;

    gateways[0]
        .io
        .emit("all", &json!({"n": 1}))
        .await
        .map_err(err)?;
    let (channel, message) = next_broadcast(&mut wire).await?;
    assert_eq!(channel, "socket.io#/#");
    assert_eq!(message.uid, gateways[0].cluster.uid());
    assert!(message.opts.rooms.is_empty());
    gateways[1].io.to("r1").emit("r1", &()).await.map_err(err)?;
    let (channel, message) = next_broadcast(&mut wire).await?;
    assert_eq!(channel, "socket.io#/#r1#");
    assert_eq!(message.opts.rooms, ["r1"]);
    a.event("r1").await?;
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
    assert_eq!(next_broadcast(&mut wire).await?.0, "socket.io#/#nobody#");
    marker(&gateways[0], "m").await?;
    let before = b.events_before("m").await?;
    let names: Vec<&str> = before.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["all"]);
    // The bus delivers during the PUBLISH: each node has dropped its own
    // echoes by now, and node 1 handled "nobody" before the marker.
    let zero = gateways[0].cluster.metrics().snapshot();
    let one = gateways[1].cluster.metrics().snapshot();
    assert_eq!(
        (zero.published["broadcast"], one.published["broadcast"]),
        (3, 1)
    );
    assert_eq!((zero.dropped["own_echo"], one.dropped["own_echo"]), (3, 1));
    assert_eq!(
        (zero.dropped["no_local_room"], one.dropped["no_local_room"]),
        (0, 1)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_ids_are_rooms_for_other_nodes() -> anyhow::Result<()> {
    let bus = MemoryBus::new();
    let gateways = gateways_on(&bus, 2).await?;
    let mut a = gateways[0].client("a").await?;
    let mut b = gateways[1].client("b").await?;

    // io.to(socketId) from the other node reaches that socket alone.
    gateways[0]
        .io
        .to(b.sid.clone())
        .emit("direct", &())
        .await
        .map_err(err)?;
    marker(&gateways[0], "m1").await?;
    b.event("direct").await?;
    b.nothing_before("m1").await?;
    a.nothing_before("m1").await?;

    // A Node server's io.to(socketId), straight on the wire.
    let from_node = BroadcastMessage {
        uid: "node-server".into(),
        packet: BroadcastPacket {
            kind: PacketKind::Event,
            nsp: "/".into(),
            data: rmpv::Value::Array(vec!["from-node".into(), 7.into()]),
        },
        opts: BroadcastOpts {
            rooms: vec![a.sid.clone()],
            ..BroadcastOpts::default()
        },
    };
    let channel = format!("socket.io#/#{}#", a.sid);
    assert_eq!(bus.publish(&channel, from_node.encode()), 2);
    assert_eq!(a.event("from-node").await?.args, vec![json!(7)]);

    // Node's io.in(socketId).socketsJoin("vip") joins the socket on its node.
    let join = Request::RemoteJoin {
        uid: Some("node-server".into()),
        opts: RequestOpts {
            rooms: vec![b.sid.clone()],
            ..RequestOpts::default()
        },
        rooms: vec!["vip".into()],
    };
    assert_eq!(bus.publish("socket.io-request#/#", join.encode()), 2);
    let sid = b.sid.parse().map_err(|_| err("sid"))?;
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
    marker(&gateways[0], "m2").await?;
    b.event("vip").await?;
    b.nothing_before("m2").await?;
    a.nothing_before("m2").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_gather_every_node_and_end_at_the_timeout() -> anyhow::Result<()> {
    let bus = MemoryBus::new();
    let gateways = gateways_on(&bus, 3).await?;
    for (i, gateway) in gateways.iter().enumerate() {
        gateway.cluster.on_server_side_emit("/", move |emit| {
            if let Some(ack) = emit.ack {
                tokio::spawn(ack.send(json!({ "node": i })));
            }
        });
    }
    let answers = gateways[1]
        .cluster
        .server_side_emit_with_ack("/", vec![json!("ask")])
        .await?;
    assert_eq!((answers.expected, answers.answered), (2, 2), "{answers:?}");
    let mut nodes: Vec<i64> = answers
        .items
        .iter()
        .filter_map(|v| v["node"].as_i64())
        .collect();
    nodes.sort();
    assert_eq!(nodes, [0, 2]);

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
    marker(&gateways[0], "m").await?;
    a.nothing_before("m").await?;
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
