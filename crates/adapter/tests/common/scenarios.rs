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

use socketioxide::operators::BroadcastOperators;

use super::{eventually, Adapter, Event, Gateway, TestClient, WAIT};

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Broadcast `marker` from `gateway` to its whole namespace `/`.
pub async fn marker(gateway: &Gateway, marker: &str) -> anyhow::Result<()> {
    gateway.io.emit(marker, &()).await.map_err(err)
}

/// After `gateway` sent `event`: broadcasts a marker from the same node and
/// checks that, before it, each of `clients` (every client connected to
/// `/`, since each gets the marker) received `event` once if its name is in
/// `expected`, and nothing else. Returns what they received, in order.
pub async fn heard(
    gateway: &Gateway,
    clients: &mut [TestClient],
    event: &str,
    expected: &[&str],
) -> anyhow::Result<Vec<Event>> {
    let marker_name = format!("after-{event}");
    marker(gateway, &marker_name).await?;
    let mut got = Vec::new();
    for client in clients.iter_mut() {
        let before = client.events_before(&marker_name).await?;
        let names: Vec<&str> = before.iter().map(|e| e.name.as_str()).collect();
        let wanted: &[&str] = if expected.contains(&client.name.as_str()) {
            &[event]
        } else {
            &[]
        };
        anyhow::ensure!(
            names == wanted,
            "{} received {names:?} before {marker_name}, not {wanted:?}",
            client.name
        );
        got.extend(before);
    }
    Ok(got)
}

/// The ids of the sockets `operators` fetch across the cluster.
async fn fetched_ids(operators: BroadcastOperators<Adapter>) -> anyhow::Result<BTreeSet<String>> {
    let sockets = operators.fetch_sockets().await.map_err(err)?;
    Ok(sockets.iter().map(|s| s.data().id.to_string()).collect())
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

const EVERYONE: &[&str] = &["a", "b", "c", "d"];

/// Every broadcast target reaches each of its sockets once, on every node.
pub async fn broadcasts_reach_each_socket_once(gateways: &[Gateway]) -> anyhow::Result<()> {
    let mut clients = four_clients(gateways).await?;
    let b_sid = clients[1].sid.clone();

    let io = |i: usize| &gateways[i].io;
    io(0).emit("all", &json!({"n": 1})).await.map_err(err)?;
    let got = heard(&gateways[0], &mut clients, "all", EVERYONE).await?;
    assert!(got.iter().all(|e| e.args == [json!({"n": 1})]), "{got:?}");

    // One room (published on the room channel).
    io(2).to("r1").emit("r1", "x").await.map_err(err)?;
    let got = heard(&gateways[2], &mut clients, "r1", &["a", "b", "d"]).await?;
    assert!(got.iter().all(|e| e.args == [json!("x")]), "{got:?}");

    // A room with an exception: r1 except r2.
    let to = io(1).to("r1").except("r2");
    to.emit("r1-not-r2", &()).await.map_err(err)?;
    heard(&gateways[1], &mut clients, "r1-not-r2", &["a", "b"]).await?;

    // Two rooms, each socket once.
    io(0)
        .to(["r1", "r2"])
        .emit("both", &())
        .await
        .map_err(err)?;
    heard(&gateways[0], &mut clients, "both", EVERYONE).await?;

    // socket.broadcast(): everyone but the sender, on every node.
    let sender = io(1)
        .get_socket(b_sid.parse().map_err(|_| err("sid"))?)
        .ok_or_else(|| err("b"))?;
    sender.broadcast().emit("not-b", &()).await.map_err(err)?;
    heard(&gateways[1], &mut clients, "not-b", &["a", "c", "d"]).await?;

    // Binary from another node becomes attachments again.
    let binary = (Bytes::from_static(&[1, 2, 3]), "text");
    io(0).to("r2").emit("bin", &binary).await.map_err(err)?;
    for event in heard(&gateways[0], &mut clients, "bin", &["c", "d"]).await? {
        let placeholder = json!({"_placeholder": true, "num": 0});
        assert_eq!(event.args, vec![placeholder, json!("text")]);
        assert_eq!(event.attachments, vec![vec![1u8, 2, 3]]);
    }

    // A socket id as a room (Node's io.to(socketId)) on another node.
    io(0).to(b_sid).emit("direct", &()).await.map_err(err)?;
    heard(&gateways[0], &mut clients, "direct", &["b"]).await?;

    // Namespaces stay apart.
    let mut admin = gateways[1].client_in("/admin", "admin").await?;
    let admin_ns = io(0).of("/admin").ok_or_else(|| err("/admin"))?;
    admin_ns.emit("adm", &()).await.map_err(err)?;
    admin.event("adm").await?;
    heard(&gateways[0], &mut clients, "adm", &[]).await?;
    Ok(())
}

/// Remote operations (fetch, rooms, socketsJoin/Leave, RemoteSocket,
/// disconnectSockets) apply once on every node.
pub async fn operations_apply_once(gateways: &[Gateway]) -> anyhow::Result<()> {
    let mut clients = four_clients(gateways).await?;
    let sids: Vec<String> = clients.iter().map(|c| c.sid.clone()).collect();
    let io = |i: usize| &gateways[i].io;

    // fetch_sockets across nodes.
    let everyone: BTreeSet<String> = sids.iter().cloned().collect();
    assert_eq!(fetched_ids(io(0).broadcast()).await?, everyone);
    let in_r2 = fetched_ids(io(0).within("r2")).await?;
    assert_eq!(in_r2, [sids[2].clone(), sids[3].clone()].into());

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
    let rooms = io(1).rooms().await.map_err(err)?;
    assert!(
        rooms.iter().any(|r| r == "r1") && rooms.iter().any(|r| r == "r2"),
        "{rooms:?}"
    );

    // socketsJoin from node 2: the r1 sockets (a on node 0, b on node 1,
    // d on node 2) join r3.
    io(2).to("r1").join("r3").await.map_err(err)?;
    io(2).to("r3").emit("r3", &()).await.map_err(err)?;
    heard(&gateways[2], &mut clients, "r3", &["a", "b", "d"]).await?;

    // A RemoteSocket (on another node) joins, gets an emit, leaves.
    let remote_c = io(0)
        .fetch_sockets()
        .await
        .map_err(err)?
        .into_iter()
        .find(|s| s.data().id.to_string() == sids[2])
        .ok_or_else(|| err("c not fetched"))?;
    remote_c.join("solo").await.map_err(err)?;
    remote_c.emit("remote-emit", &1).await.map_err(err)?;
    heard(&gateways[0], &mut clients, "remote-emit", &["c"]).await?;
    io(1).to("solo").emit("solo", &()).await.map_err(err)?;
    heard(&gateways[1], &mut clients, "solo", &["c"]).await?;

    // socketsLeave: everyone leaves r3; r3 reaches nobody, while r1 still
    // reaches its members (the positive control). The broadcasts come from
    // the node that asked for the leave, so every node receives them after
    // it, in publishing order. (From another node a broadcast could
    // overtake the leave, on Node's adapter as on ours.)
    io(1).clone().leave("r3").await.map_err(err)?;
    io(1).to("r3").emit("r3-again", &()).await.map_err(err)?;
    heard(&gateways[1], &mut clients, "r3-again", &[]).await?;
    io(1).to("r1").emit("r1-still", &()).await.map_err(err)?;
    heard(&gateways[1], &mut clients, "r1-still", &["a", "b", "d"]).await?;

    // disconnectSockets: r2 (both on node 2) from node 0, exactly them.
    io(0).to("r2").disconnect().await.map_err(err)?;
    clients[2].disconnected().await?;
    clients[3].disconnected().await?;
    assert_eq!(io(1).fetch_sockets().await.map_err(err)?.len(), 2);
    heard(&gateways[0], &mut clients[..2], "r2-disconnected", &[]).await?;
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
