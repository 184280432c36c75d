//! Hostile, old and overloaded input: garbage on every subscribed channel is
//! counted and never breaks anything; the legacy 2014 emitter and the
//! per-socket requests of adapters before 7.x are understood; messages
//! dropped under overload are all accounted for.

mod common;

use std::time::Duration;

use adapter::{DropReason, GarbageKind, MessageKind};
use common::*;
use serde_json::json;
use wire::{
    BroadcastFlags, BroadcastMessage, BroadcastOpts, BroadcastPacket, LegacyEmitterMessage,
    PacketKind,
};

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

fn event(nsp: &str, name: &str, arg: rmpv::Value) -> BroadcastPacket {
    BroadcastPacket {
        kind: PacketKind::Event,
        nsp: nsp.to_owned(),
        data: rmpv::Value::Array(vec![rmpv::Value::from(name), arg]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_counted_and_harmless() -> anyhow::Result<()> {
    init_tracing();
    let topology = Topology::start(1).await?;
    let mut config = topology.config();
    config.legacy_emitter = true;
    let receiver = Gateway::start(config.clone()).await?;
    let sender = Gateway::start(config).await?;
    let mut client = receiver.client("c").await?;
    client.join("room").await?;

    let mut deep = vec![0x91u8; 100_000];
    deep.push(0xc0);
    let broadcast_junk: Vec<Vec<u8>> = vec![
        vec![],
        b"\xc1\xc1\xc1".to_vec(),
        b"not msgpack at all".to_vec(),
        vec![0x93, 0x01, 0x02, 0x03],       // [1, 2, 3]
        vec![0xdd, 0xff, 0xff, 0xff, 0xff], // array32 claiming 4G elements
        vec![0x93, 0xa1, b'x', 0xc0, 0xc0], // ["x", nil, nil]
        deep,
    ];
    for junk in &broadcast_junk {
        topology
            .master
            .command(&[b"PUBLISH".as_slice(), b"socket.io#/#", junk])
            .await?;
        topology
            .master
            .command(&[b"PUBLISH".as_slice(), b"socket.io#/#room#", junk])
            .await?;
    }
    let request_junk: [&[u8]; 6] = [
        b"{not json",
        b"{\"type\":\"x\"}",
        b"{\"type\":7}",
        b"{\"type\":5,\"requestId\":12,\"opts\":\"no\"}",
        b"\x81\xa4type\x07",
        b"[]",
    ];
    for junk in request_junk {
        topology
            .master
            .command(&[b"PUBLISH".as_slice(), b"socket.io-request#/#", junk])
            .await?;
        topology
            .master
            .command(&[b"PUBLISH".as_slice(), b"socket.io-response#/#", junk])
            .await?;
    }
    topology
        .master
        .command(&[b"PUBLISH".as_slice(), b"socket.io#emitter", b"\xff\x00junk"])
        .await?;

    // Every one counted, once: each junk broadcast on both channels, each
    // junk request and response, the legacy one.
    let metrics = receiver.cluster.metrics().clone();
    let broadcasts = 2 * broadcast_junk.len() as u64;
    let counted = move |metrics: &adapter::AdapterMetrics| {
        metrics.garbage_count(GarbageKind::Broadcast) == broadcasts
            && metrics.garbage_count(GarbageKind::Request) == request_junk.len() as u64
            && metrics.garbage_count(GarbageKind::Response) == request_junk.len() as u64
            && metrics.garbage_count(GarbageKind::LegacyEmitter) == 1
            && metrics.garbage_count(GarbageKind::Channel) == 0
            && metrics.garbage_count(GarbageKind::Payload) == 0
    };
    eventually("garbage counted", WAIT, || {
        let metrics = metrics.clone();
        async move { counted(&metrics) }
    })
    .await
    .map_err(|e| err(format!("{e}: {:?}", metrics.snapshot())))?;

    // Still subscribed on the same connection, still delivering.
    assert_eq!(metrics.subscriber_reconnects(), 0);
    assert!(receiver.cluster.readiness().is_ready());
    sender
        .io
        .to("room")
        .emit("fine", &json!("yes"))
        .await
        .map_err(err)?;
    assert_eq!(client.event("fine").await?.args, vec![json!("yes")]);
    // Nothing counted twice meanwhile: the junk was read before "fine".
    assert!(counted(&metrics), "{:?}", metrics.snapshot());
    let fetched = sender.io.fetch_sockets().await.map_err(err)?;
    assert_eq!(fetched.len(), 1);

    // The 2014 socket.io-emitter message, on socket.io#emitter.
    let legacy = LegacyEmitterMessage {
        packet: event("/", "legacy", rmpv::Value::from("old")),
        rooms: vec!["room".into()],
        flags: BroadcastFlags::default(),
    };
    topology
        .master
        .command(&[
            b"PUBLISH".as_slice(),
            b"socket.io#emitter",
            &legacy.encode(),
        ])
        .await?;
    assert_eq!(client.event("legacy").await?.args, vec![json!("old")]);

    // A redis-emitter broadcast (uid "emitter") is delivered like any other.
    let from_emitter = BroadcastMessage {
        uid: "emitter".into(),
        packet: event("/", "emitted", rmpv::Value::from(5)),
        opts: BroadcastOpts {
            rooms: vec!["room".into()],
            except: vec![],
            flags: BroadcastFlags::default(),
        },
    };
    topology
        .master
        .command(&[
            b"PUBLISH".as_slice(),
            b"socket.io#/#room#",
            &from_emitter.encode(),
        ])
        .await?;
    assert_eq!(client.event("emitted").await?.args, vec![json!(5)]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_drops_are_counted() -> anyhow::Result<()> {
    init_tracing();
    let topology = Topology::start(0).await?;
    let mut config = topology.config();
    config.buffer_size = 4;
    let receiver = Gateway::start_with(config, 100_000).await?;
    let mut client = receiver.client("c").await?;

    const SENT: u64 = 3000;
    let message = BroadcastMessage {
        uid: "emitter".into(),
        packet: event("/", "flood", rmpv::Value::from("x".repeat(200))),
        opts: BroadcastOpts::default(),
    }
    .encode();
    let mut conn = topology.master.conn().await?;
    for _ in 0..SENT {
        conn.send(&[b"PUBLISH".as_slice(), b"socket.io#/#", &message])
            .await?;
    }
    for _ in 0..SENT {
        conn.read().await?;
    }

    let metrics = receiver.cluster.metrics().clone();
    eventually(
        "every message seen or dropped",
        Duration::from_secs(10),
        || {
            let metrics = metrics.clone();
            async move {
                metrics.received_count(MessageKind::Broadcast)
                    + metrics.dropped_count(DropReason::SubscriberLagged)
                    >= SENT
            }
        },
    )
    .await?;
    let dropped = metrics.dropped_count(DropReason::QueueFull)
        + metrics.dropped_count(DropReason::SubscriberLagged);
    let mut delivered = 0u64;
    while delivered + dropped < SENT {
        client
            .event("flood")
            .await
            .map_err(|e| err(format!("{e}; delivered {delivered}, dropped {dropped}")))?;
        delivered += 1;
    }
    // Nothing beyond: a marker on the same channel, after the flood, comes
    // next.
    let marker = BroadcastMessage {
        uid: "emitter".into(),
        packet: event("/", "marker-flood", rmpv::Value::Nil),
        opts: BroadcastOpts::default(),
    };
    topology
        .master
        .command(&[b"PUBLISH".as_slice(), b"socket.io#/#", &marker.encode()])
        .await?;
    client.nothing_before("marker-flood").await?;
    tracing::info!(delivered, dropped, "overload accounting");
    assert_eq!(delivered + dropped, SENT);
    // The overload path ran: a 4-message queue cannot take 3000 at once.
    assert!(
        dropped > 0,
        "nothing was dropped: the test did not overload"
    );
    Ok(())
}

/// Requests types 2-4 in their legacy shape, `{uid, requestId, type, sid,
/// room}`, as adapters before 7.x sent them: applied to the socket and
/// acknowledged by the node that holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_socket_requests_are_applied_and_acknowledged() -> anyhow::Result<()> {
    init_tracing();
    let topology = Topology::start(1).await?;
    let gateway = Gateway::start(topology.config()).await?;
    let mut client = gateway.client("c").await?;
    // A member that stays: the positive control of the leave below.
    let mut stays = gateway.client("stays").await?;
    gateway.join(&stays.sid, "legacy-room")?;
    let mut responses = e2e::RedisConn::connect(topology.master.port()).await?;
    responses.psubscribe("socket.io-response#/#*").await?;

    let sid = client.sid.clone();
    let request = |kind: u8, request_id: &str| {
        let body = json!({
            "uid": "old-node",
            "requestId": request_id,
            "type": kind,
            "sid": sid,
            "room": "legacy-room",
        });
        let master = &topology.master;
        async move {
            master
                .command(&[
                    b"PUBLISH".as_slice(),
                    b"socket.io-request#/#",
                    body.to_string().as_bytes(),
                ])
                .await
        }
    };
    let acknowledged = async |responses: &mut e2e::RedisConn, request_id: &str| {
        let message = responses.next_message(Duration::from_secs(5)).await?;
        let answer: serde_json::Value = serde_json::from_slice(&message.payload)?;
        anyhow::ensure!(
            answer["requestId"] == request_id,
            "unexpected answer {answer} on {}",
            message.channel
        );
        anyhow::Ok(())
    };

    request(2, "join-1").await?;
    acknowledged(&mut responses, "join-1").await?;
    gateway
        .io
        .to("legacy-room")
        .emit("in-room", &1)
        .await
        .map_err(err)?;
    assert_eq!(client.event("in-room").await?.args, vec![json!(1)]);
    assert_eq!(stays.event("in-room").await?.args, vec![json!(1)]);

    request(3, "leave-1").await?;
    acknowledged(&mut responses, "leave-1").await?;
    gateway
        .io
        .to("legacy-room")
        .emit("in-room", &2)
        .await
        .map_err(err)?;
    assert_eq!(stays.event("in-room").await?.args, vec![json!(2)]);
    // The one that left: a marker to everyone, after it, comes first.
    gateway.io.emit("marker-left", &()).await.map_err(err)?;
    client.nothing_before("marker-left").await?;

    request(4, "disconnect-1").await?;
    acknowledged(&mut responses, "disconnect-1").await?;
    client.disconnected().await?;
    Ok(())
}
