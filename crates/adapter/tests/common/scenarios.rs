//! The cross-node behaviour of the adapter, written once and run on three
//! gateways of any bus: on Redis by `cluster.rs`, on the in-memory bus by
//! `memory.rs`.
//!
//! Negative checks use markers: after what must not arrive, the node that
//! sent it broadcasts a marker, which takes the same path to every socket
//! (direct on that node; through the bus, the receiving node's subscriber
//! and its namespace worker elsewhere), so the marker must be the first
//! thing to arrive.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::{eventually, Gateway, TestClient, WAIT};

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Broadcast `marker` from `gateway` to its whole namespace `/`.
pub async fn marker(gateway: &Gateway, marker: &str) -> anyhow::Result<()> {
    gateway.io.emit(marker, &()).await.map_err(err)
}

/// Each client gets nothing before `marker` (every connected client gets
/// every marker: each must read it, or it stands before the next one).
async fn nothing_before(clients: [&mut TestClient; 4], marker: &str) -> anyhow::Result<()> {
    for client in clients {
        client.nothing_before(marker).await?;
    }
    Ok(())
}

/// Four clients: a on node 0, b on node 1, c and d on node 2; a, b and d
/// in r1, c and d in r2.
async fn four_clients(gateways: &[Gateway]) -> anyhow::Result<[TestClient; 4]> {
    let mut a = gateways[0].client("a").await?;
    let mut b = gateways[1].client("b").await?;
    let mut c = gateways[2].client("c").await?;
    let mut d = gateways[2].client("d").await?;
    a.join("r1").await?;
    b.join("r1").await?;
    c.join("r2").await?;
    d.join("r1").await?;
    d.join("r2").await?;
    Ok([a, b, c, d])
}

/// Every broadcast target reaches each of its sockets once, on every node.
pub async fn broadcasts_reach_each_socket_once(gateways: &[Gateway]) -> anyhow::Result<()> {
    let [mut a, mut b, mut c, mut d] = four_clients(gateways).await?;

    // Everyone, once.
    gateways[0]
        .io
        .emit("all", &json!({"n": 1}))
        .await
        .map_err(err)?;
    marker(&gateways[0], "m1").await?;
    for client in [&mut a, &mut b, &mut c, &mut d] {
        let before = client.events_before("m1").await?;
        let names: Vec<&str> = before.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["all"], "{}", client.name);
        assert_eq!(before[0].args, vec![json!({"n": 1})]);
    }

    // One room (published on the room channel): a, b, d.
    gateways[2].io.to("r1").emit("r1", "x").await.map_err(err)?;
    marker(&gateways[2], "m2").await?;
    for client in [&mut a, &mut b, &mut d] {
        assert_eq!(client.event("r1").await?.args, vec![json!("x")]);
    }
    nothing_before([&mut a, &mut b, &mut c, &mut d], "m2").await?;

    // A room with an exception: r1 except r2 = a, b.
    gateways[1]
        .io
        .to("r1")
        .except("r2")
        .emit("r1-not-r2", &())
        .await
        .map_err(err)?;
    marker(&gateways[1], "m3").await?;
    a.event("r1-not-r2").await?;
    b.event("r1-not-r2").await?;
    nothing_before([&mut a, &mut b, &mut c, &mut d], "m3").await?;

    // Two rooms, each socket once: a, b, c, d.
    gateways[0]
        .io
        .to(["r1", "r2"])
        .emit("both", &())
        .await
        .map_err(err)?;
    marker(&gateways[0], "m4").await?;
    for client in [&mut a, &mut b, &mut c, &mut d] {
        client.event("both").await?;
    }
    nothing_before([&mut a, &mut b, &mut c, &mut d], "m4").await?;

    // socket.broadcast(): everyone but the sender, on every node.
    let sender = gateways[1]
        .io
        .get_socket(b.sid.parse().map_err(|_| err("sid"))?)
        .ok_or_else(|| err("b"))?;
    sender.broadcast().emit("not-b", &()).await.map_err(err)?;
    marker(&gateways[1], "m5").await?;
    for client in [&mut a, &mut c, &mut d] {
        client.event("not-b").await?;
    }
    nothing_before([&mut a, &mut b, &mut c, &mut d], "m5").await?;

    // Binary from another node becomes attachments again.
    gateways[0]
        .io
        .to("r2")
        .emit("bin", &(Bytes::from_static(&[1, 2, 3]), "text"))
        .await
        .map_err(err)?;
    marker(&gateways[0], "m6").await?;
    for client in [&mut c, &mut d] {
        let event = client.event("bin").await?;
        assert_eq!(
            event.args,
            vec![json!({"_placeholder": true, "num": 0}), json!("text")]
        );
        assert_eq!(event.attachments, vec![vec![1u8, 2, 3]]);
    }
    nothing_before([&mut a, &mut b, &mut c, &mut d], "m6").await?;

    // A socket id as a room (Node's io.to(socketId)) on another node.
    gateways[0]
        .io
        .to(b.sid.clone())
        .emit("direct", &())
        .await
        .map_err(err)?;
    marker(&gateways[0], "m7").await?;
    b.event("direct").await?;
    nothing_before([&mut a, &mut b, &mut c, &mut d], "m7").await?;

    // Namespaces stay apart.
    let mut admin = gateways[1].client_in("/admin", "admin").await?;
    gateways[0]
        .io
        .of("/admin")
        .ok_or_else(|| err("/admin"))?
        .emit("adm", &())
        .await
        .map_err(err)?;
    admin.event("adm").await?;
    marker(&gateways[0], "m8").await?;
    nothing_before([&mut a, &mut b, &mut c, &mut d], "m8").await?;
    Ok(())
}

/// Remote operations (fetch, rooms, socketsJoin/Leave, RemoteSocket,
/// disconnectSockets) apply once on every node.
pub async fn operations_apply_once(gateways: &[Gateway]) -> anyhow::Result<()> {
    let [mut a, mut b, mut c, mut d] = four_clients(gateways).await?;
    let all: BTreeSet<String> = [&a, &b, &c, &d].iter().map(|c| c.sid.clone()).collect();

    // fetch_sockets across nodes.
    let fetched: BTreeSet<String> = gateways[0]
        .io
        .fetch_sockets()
        .await
        .map_err(err)?
        .iter()
        .map(|s| s.data().id.to_string())
        .collect();
    assert_eq!(fetched, all);
    let in_r2: BTreeSet<String> = gateways[0]
        .io
        .within("r2")
        .fetch_sockets()
        .await
        .map_err(err)?
        .iter()
        .map(|s| s.data().id.to_string())
        .collect();
    assert_eq!(in_r2, [c.sid.clone(), d.sid.clone()].into());

    // The full fetch of the cluster API carries rooms (own id first).
    let full = gateways[1]
        .cluster
        .fetch_sockets("/", vec!["r2".into()], vec![])
        .await?;
    assert!(full.complete(), "{full:?}");
    assert_eq!(full.items.len(), 2);
    for socket in &full.items {
        assert_eq!(socket.rooms[0], socket.id);
        assert!(socket.rooms.contains(&"r2".to_owned()));
    }

    // rooms across nodes.
    let rooms: BTreeSet<String> = gateways[1]
        .io
        .rooms()
        .await
        .map_err(err)?
        .into_iter()
        .map(|r| r.into_owned())
        .collect();
    assert!(rooms.contains("r1") && rooms.contains("r2"), "{rooms:?}");

    // socketsJoin from node 2: the r1 sockets (a on node 0, b on node 1,
    // d on node 2) join r3.
    gateways[2].io.to("r1").join("r3").await.map_err(err)?;
    gateways[2].io.to("r3").emit("r3", &()).await.map_err(err)?;
    marker(&gateways[2], "m1").await?;
    for client in [&mut a, &mut b, &mut d] {
        client.event("r3").await?;
    }
    nothing_before([&mut a, &mut b, &mut c, &mut d], "m1").await?;

    // A RemoteSocket (on another node) joins, gets an emit, leaves.
    let remote_c = gateways[0]
        .io
        .fetch_sockets()
        .await
        .map_err(err)?
        .into_iter()
        .find(|s| s.data().id.to_string() == c.sid)
        .ok_or_else(|| err("c not fetched"))?;
    remote_c.join("solo").await.map_err(err)?;
    remote_c.emit("remote-emit", &1).await.map_err(err)?;
    marker(&gateways[0], "m2").await?;
    c.event("remote-emit").await?;
    nothing_before([&mut a, &mut b, &mut c, &mut d], "m2").await?;
    gateways[1]
        .io
        .to("solo")
        .emit("solo", &())
        .await
        .map_err(err)?;
    marker(&gateways[1], "m3").await?;
    c.event("solo").await?;
    nothing_before([&mut a, &mut b, &mut c, &mut d], "m3").await?;

    // socketsLeave: everyone leaves r3; r3 reaches nobody, while r1 still
    // reaches its members (the positive control). Both broadcasts come from
    // the node that asked for the leave, so every node receives the three
    // in publishing order. (From another node a broadcast could overtake
    // the leave, on Node's adapter as on ours.)
    gateways[1].io.clone().leave("r3").await.map_err(err)?;
    gateways[1]
        .io
        .to("r3")
        .emit("r3-again", &())
        .await
        .map_err(err)?;
    gateways[1]
        .io
        .to("r1")
        .emit("r1-still", &())
        .await
        .map_err(err)?;
    for client in [&mut a, &mut b, &mut d] {
        client.nothing_before("r1-still").await?;
    }

    // disconnectSockets: r2 (both on node 2) from node 0, exactly them.
    gateways[0].io.to("r2").disconnect().await.map_err(err)?;
    c.disconnected().await?;
    d.disconnected().await?;
    let left = gateways[1].io.fetch_sockets().await.map_err(err)?;
    assert_eq!(left.len(), 2);
    marker(&gateways[0], "still-here").await?;
    a.nothing_before("still-here").await?;
    b.nothing_before("still-here").await?;
    Ok(())
}

/// A broadcast with acks gathers every node's acks, ends as soon as they
/// are in, and ends at its timeout when a client stays mute.
pub async fn acks_are_gathered(gateways: &[Gateway]) -> anyhow::Result<()> {
    let _a = gateways[0].client("a").await?;
    let _b = gateways[1].client("b").await?;
    let _c = gateways[2].client("c").await?;

    // Everyone answers: three acks, long before the timeout.
    let started = tokio::time::Instant::now();
    let stream = gateways[0]
        .io
        .timeout(Duration::from_secs(30))
        .emit_with_ack::<_, Value>("ask", "q")
        .await
        .map_err(err)?;
    let acks: Vec<_> = tokio::time::timeout(WAIT, stream.collect::<Vec<_>>()).await?;
    let mut answers: Vec<String> = acks
        .into_iter()
        .map(|(_, ack)| ack.map(|v| v["client"].as_str().unwrap_or_default().to_owned()))
        .collect::<Result<_, _>>()
        .map_err(err)?;
    answers.sort();
    assert_eq!(answers, ["a", "b", "c"]);
    assert!(started.elapsed() < WAIT, "{:?}", started.elapsed());

    // A remote client that never answers: the stream ends at the timeout
    // (plus a small network grace) with the acks that came.
    let _mute = TestClient::connect_with(gateways[2].port, "/", "mute", false).await?;
    let timeout = Duration::from_millis(800);
    let started = tokio::time::Instant::now();
    let stream = gateways[1]
        .io
        .timeout(timeout)
        .emit_with_ack::<_, Value>("ask", "q")
        .await
        .map_err(err)?;
    let acks: Vec<_> = tokio::time::timeout(WAIT, stream.collect::<Vec<_>>()).await?;
    let elapsed = started.elapsed();
    let ok = acks.iter().filter(|(_, ack)| ack.is_ok()).count();
    assert_eq!(ok, 3, "{acks:?}");
    assert!(elapsed >= timeout, "{elapsed:?}");
    assert!(elapsed < timeout + Duration::from_secs(1), "{elapsed:?}");
    Ok(())
}

/// Server-side emits reach every other node once (not the sender), with
/// and without acks; a missing answer ends the wait at `request_timeout`.
pub async fn server_side_emits(
    gateways: &[Gateway],
    request_timeout: Duration,
) -> anyhow::Result<()> {
    let received: Vec<Arc<Mutex<Vec<Value>>>> = (0..gateways.len())
        .map(|_| Arc::new(Mutex::new(Vec::new())))
        .collect();
    for (i, gateway) in gateways.iter().enumerate() {
        let mine = received[i].clone();
        gateway.cluster.on_server_side_emit("/", move |emit| {
            if let Ok(mut mine) = mine.lock() {
                mine.push(Value::Array(emit.data.clone()));
            }
            if let Some(ack) = emit.ack {
                tokio::spawn(ack.send(json!({ "node": i })));
            }
        });
    }
    let got = |i: usize| received[i].lock().map(|r| r.clone()).unwrap_or_default();
    let has = |i: usize, event: &'static str| {
        let seen = got(i).iter().any(|data| data[0] == event);
        async move { seen }
    };

    // Node 0 emits; then node 1 emits a marker, which node 0 and node 2
    // receive after anything node 0's emit brought them.
    gateways[0]
        .cluster
        .server_side_emit("/", vec![json!("ping"), json!(1)])
        .await?;
    eventually("node 1 got the ping", WAIT, || has(1, "ping")).await?;
    gateways[1]
        .cluster
        .server_side_emit("/", vec![json!("marker")])
        .await?;
    eventually("node 0 got the marker", WAIT, || has(0, "marker")).await?;
    eventually("node 2 got the marker", WAIT, || has(2, "marker")).await?;
    assert_eq!(got(0), [json!(["marker"])]);
    assert_eq!(got(1), [json!(["ping", 1])]);
    assert_eq!(got(2), [json!(["ping", 1]), json!(["marker"])]);

    let started = tokio::time::Instant::now();
    let answers = gateways[1]
        .cluster
        .server_side_emit_with_ack("/", vec![json!("ask")])
        .await?;
    assert!(answers.complete(), "{answers:?}");
    assert_eq!(answers.expected, 2);
    let mut nodes: Vec<i64> = answers
        .items
        .iter()
        .filter_map(|v| v["node"].as_i64())
        .collect();
    nodes.sort();
    assert_eq!(nodes, [0, 2]);
    assert!(
        started.elapsed() < request_timeout,
        "{:?}",
        started.elapsed()
    );

    // Only one node answers on /admin: partial result after the request timeout.
    gateways[2].cluster.on_server_side_emit("/admin", |emit| {
        if let Some(ack) = emit.ack {
            tokio::spawn(ack.send(json!("admin")));
        }
    });
    let started = tokio::time::Instant::now();
    let answers = gateways[0]
        .cluster
        .server_side_emit_with_ack("/admin", vec![json!("ask")])
        .await?;
    assert_eq!((answers.expected, answers.answered), (2, 1));
    assert_eq!(answers.items, vec![json!("admin")]);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= request_timeout && elapsed < request_timeout + Duration::from_secs(1),
        "{elapsed:?}"
    );
    Ok(())
}
