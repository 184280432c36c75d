//! Cross-node behaviour of the adapter: three socketioxide gateways in one
//! process, each on its own port, sharing a Redis master and two replicas
//! (subscribers spread over the replicas by uid hash), driven by real
//! WebSocket clients.

mod common;

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

async fn three_gateways() -> anyhow::Result<(Topology, Vec<Gateway>)> {
    init_tracing();
    let topology = Topology::start(2).await?;
    let mut gateways = Vec::new();
    for _ in 0..3 {
        gateways.push(Gateway::start(topology.config()).await?);
    }
    // Every gateway counts the three nodes (over master + replicas) first.
    for gateway in &gateways {
        let cluster = gateway.cluster.clone();
        eventually("3 nodes counted", WAIT, || {
            let cluster = cluster.clone();
            async move { cluster.server_count("/").await.ok() == Some(3) }
        })
        .await?;
    }
    Ok((topology, gateways))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_rooms_except_and_binary_across_nodes() -> anyhow::Result<()> {
    let (topology, gateways) = three_gateways().await?;
    // The subscribers are spread: not everyone on the master.
    let endpoints: BTreeSet<String> = gateways
        .iter()
        .filter_map(|g| g.cluster.metrics().subscriber_endpoint())
        .collect();
    assert!(!endpoints.contains(&topology.master.url()), "{endpoints:?}");

    let mut a = gateways[0].client("a").await?;
    let mut b = gateways[1].client("b").await?;
    let mut c = gateways[2].client("c").await?;
    let mut d = gateways[2].client("d").await?;
    a.join("r1").await?;
    b.join("r1").await?;
    c.join("r2").await?;
    d.join("r1").await?;
    d.join("r2").await?;

    // Everyone, once.
    gateways[0]
        .io
        .emit("all", &json!({"n": 1}))
        .await
        .map_err(err)?;
    for client in [&mut a, &mut b, &mut c, &mut d] {
        assert_eq!(client.event("all").await?.args, vec![json!({"n": 1})]);
        client.no_event("all", QUIET).await?;
    }

    // One room (published on the room channel): a, b, d.
    gateways[2].io.to("r1").emit("r1", "x").await.map_err(err)?;
    for client in [&mut a, &mut b, &mut d] {
        assert_eq!(client.event("r1").await?.args, vec![json!("x")]);
    }
    c.no_event("r1", QUIET).await?;

    // Room with an exception: r1 except r2 = a, b.
    gateways[1]
        .io
        .to("r1")
        .except("r2")
        .emit("r1-not-r2", &())
        .await
        .map_err(err)?;
    a.event("r1-not-r2").await?;
    b.event("r1-not-r2").await?;
    d.no_event("r1-not-r2", QUIET).await?;
    c.no_event("r1-not-r2", Duration::ZERO).await?;

    // Two rooms, each socket once: a, b, c, d.
    gateways[0]
        .io
        .to(["r1", "r2"])
        .emit("both", &())
        .await
        .map_err(err)?;
    for client in [&mut a, &mut b, &mut c, &mut d] {
        client.event("both").await?;
        client.no_event("both", QUIET).await?;
    }

    // socket.broadcast(): everyone but the sender, on every node.
    let sender = gateways[1]
        .io
        .get_socket(b.sid.parse().map_err(|_| err("sid"))?)
        .ok_or_else(|| err("b"))?;
    sender.broadcast().emit("not-b", &()).await.map_err(err)?;
    for client in [&mut a, &mut c, &mut d] {
        client.event("not-b").await?;
    }
    b.no_event("not-b", QUIET).await?;

    // Binary from another node becomes attachments again.
    gateways[0]
        .io
        .to("r2")
        .emit("bin", &(Bytes::from_static(&[1, 2, 3]), "text"))
        .await
        .map_err(err)?;
    for client in [&mut c, &mut d] {
        let event = client.event("bin").await?;
        assert_eq!(
            event.args,
            vec![json!({"_placeholder": true, "num": 0}), json!("text")]
        );
        assert_eq!(event.attachments, vec![vec![1u8, 2, 3]]);
    }
    a.no_event("bin", QUIET).await?;

    // A socket id as a room (Node's io.to(socketId)) on another node.
    gateways[0]
        .io
        .to(b.sid.clone())
        .emit("direct", &())
        .await
        .map_err(err)?;
    b.event("direct").await?;
    b.no_event("direct", QUIET).await?;
    a.no_event("direct", Duration::ZERO).await?;

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
    a.no_event("adm", QUIET).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_across_nodes_honour_the_timeout() -> anyhow::Result<()> {
    let (_topology, gateways) = three_gateways().await?;
    let _a = gateways[0].client("a").await?;
    let _b = gateways[1].client("b").await?;
    let _c = gateways[2].client("c").await?;

    // Everyone answers: three acks, and the stream ends as soon as they are in.
    let started = Instant::now();
    let stream = gateways[0]
        .io
        .timeout(Duration::from_secs(3))
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
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stream waited for the timeout: {:?}",
        started.elapsed()
    );

    // A remote client that never answers: the stream ends at the timeout
    // (plus a small network grace) with the acks that came.
    let _mute = TestClient::connect_with(gateways[2].port, "/", "mute", false).await?;
    let started = Instant::now();
    let stream = gateways[1]
        .io
        .timeout(Duration::from_millis(800))
        .emit_with_ack::<_, Value>("ask", "q")
        .await
        .map_err(err)?;
    let acks: Vec<_> = tokio::time::timeout(WAIT, stream.collect::<Vec<_>>()).await?;
    let elapsed = started.elapsed();
    let ok = acks.iter().filter(|(_, ack)| ack.is_ok()).count();
    assert_eq!(ok, 3, "{acks:?}");
    assert!(elapsed >= Duration::from_millis(800), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1800), "{elapsed:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_apply_once_on_every_node() -> anyhow::Result<()> {
    let (_topology, gateways) = three_gateways().await?;
    let mut a = gateways[0].client("a").await?;
    let mut b = gateways[1].client("b").await?;
    let mut c = gateways[2].client("c").await?;
    let mut d = gateways[2].client("d").await?;
    a.join("r1").await?;
    b.join("r1").await?;
    c.join("r2").await?;
    d.join("r2").await?;
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
    assert!(full.complete());
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

    // socketsJoin: r1 sockets (a on node 0, b on node 1) join r3, from node 2.
    gateways[2].io.to("r1").join("r3").await.map_err(err)?;
    gateways[2].io.to("r3").emit("r3", &()).await.map_err(err)?;
    a.event("r3").await?;
    b.event("r3").await?;
    c.no_event("r3", QUIET).await?;

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
    c.event("remote-emit").await?;
    c.no_event("remote-emit", QUIET).await?;
    gateways[1]
        .io
        .to("solo")
        .emit("solo", &())
        .await
        .map_err(err)?;
    c.event("solo").await?;
    d.no_event("solo", QUIET).await?;

    // socketsLeave: everyone leaves r3; nobody gets r3 broadcasts any more.
    // The broadcast comes from the node that asked for the leave: every
    // other node receives the two in publishing order. (From another node
    // it could overtake the leave, on Node's adapter as on ours.)
    gateways[1].io.clone().leave("r3").await.map_err(err)?;
    gateways[1]
        .io
        .to("r3")
        .emit("r3-again", &())
        .await
        .map_err(err)?;
    for client in [&mut a, &mut b] {
        client.no_event("r3-again", QUIET).await?;
    }

    // disconnectSockets: r2 (both on node 2) from node 0, exactly them.
    gateways[0].io.to("r2").disconnect().await.map_err(err)?;
    c.disconnected().await?;
    d.disconnected().await?;
    let left = gateways[1].io.fetch_sockets().await.map_err(err)?;
    assert_eq!(left.len(), 2);
    gateways[2].io.emit("still-here", &()).await.map_err(err)?;
    a.event("still-here").await?;
    b.event("still-here").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_emit_with_and_without_ack() -> anyhow::Result<()> {
    let (_topology, gateways) = three_gateways().await?;
    let received = Arc::new(Mutex::new(Vec::<(usize, Value)>::new()));
    for (i, gateway) in gateways.iter().enumerate() {
        let received = received.clone();
        gateway.cluster.on_server_side_emit("/", move |emit| {
            if let Ok(mut received) = received.lock() {
                received.push((i, Value::Array(emit.data.clone())));
            }
            if let Some(ack) = emit.ack {
                tokio::spawn(ack.send(json!({"node": i})));
            }
        });
    }

    gateways[0]
        .cluster
        .server_side_emit("/", vec![json!("ping"), json!(1)])
        .await?;
    eventually("two nodes got the emit", WAIT, || {
        let received = received.clone();
        async move { received.lock().map(|r| r.len() == 2).unwrap_or(false) }
    })
    .await?;
    tokio::time::sleep(QUIET).await; // nothing else may arrive (not to self, not twice)
    {
        let got = received.lock().map_err(err)?.clone();
        let nodes: BTreeSet<usize> = got.iter().map(|(i, _)| *i).collect();
        assert_eq!(nodes, [1, 2].into());
        assert!(got.iter().all(|(_, data)| *data == json!(["ping", 1])));
    }

    let started = Instant::now();
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
    assert!(started.elapsed() < Duration::from_secs(1));

    // Only one node answers on /admin: partial result after the request timeout.
    gateways[2].cluster.on_server_side_emit("/admin", |emit| {
        if let Some(ack) = emit.ack {
            tokio::spawn(ack.send(json!("admin")));
        }
    });
    let started = Instant::now();
    let answers = gateways[0]
        .cluster
        .server_side_emit_with_ack("/admin", vec![json!("ask")])
        .await?;
    assert_eq!((answers.expected, answers.answered), (2, 1));
    assert_eq!(answers.items, vec![json!("admin")]);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1500) && elapsed < Duration::from_millis(2500),
        "{elapsed:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_node_never_hangs_a_request() -> anyhow::Result<()> {
    init_tracing();
    let topology = Topology::start(0).await?;
    let gateway = Gateway::start(topology.config()).await?;
    let mut client = gateway.client("c").await?;
    // A "node" that subscribes the request channel (so it is counted) and
    // never answers anything.
    let mut silent = topology.master.conn().await?;
    silent.subscribe("socket.io-request#/#").await?;
    assert_eq!(gateway.cluster.server_count("/").await?, 2);
    let timeout = Duration::from_millis(topology.config().request_timeout_ms);

    let started = Instant::now();
    let fetched = gateway.cluster.fetch_sockets("/", vec![], vec![]).await?;
    let elapsed = started.elapsed();
    assert_eq!(
        (fetched.expected, fetched.answered, fetched.items.len()),
        (1, 0, 1)
    );
    assert!(
        elapsed >= timeout && elapsed < timeout + Duration::from_millis(500),
        "{elapsed:?}"
    );

    let started = Instant::now();
    let sockets = gateway.io.fetch_sockets().await.map_err(err)?;
    assert_eq!(sockets.len(), 1);
    assert!(started.elapsed() < timeout + Duration::from_millis(500));

    let started = Instant::now();
    let rooms = gateway.io.rooms().await.map_err(err)?;
    assert!(rooms.is_empty(), "{rooms:?}");
    assert!(started.elapsed() < timeout + Duration::from_millis(500));

    let started = Instant::now();
    let answers = gateway
        .cluster
        .server_side_emit_with_ack("/", vec![json!("x")])
        .await?;
    assert_eq!((answers.expected, answers.answered), (1, 0));
    assert!(started.elapsed() < timeout + Duration::from_millis(500));

    // The silent node announces no client count: the ack stream still ends
    // at the caller's timeout, with the local ack.
    let started = Instant::now();
    let stream = gateway
        .io
        .timeout(Duration::from_millis(500))
        .emit_with_ack::<_, Value>("ask", &())
        .await
        .map_err(err)?;
    let acks: Vec<_> = tokio::time::timeout(WAIT, stream.collect::<Vec<_>>()).await?;
    assert_eq!(acks.len(), 1);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(500) && elapsed < Duration::from_millis(1200),
        "{elapsed:?}"
    );
    client.event("ask").await?;

    let snapshot = gateway.cluster.metrics().snapshot();
    assert!(
        snapshot.requests[&("fetch_sockets", "timeout")] >= 2,
        "{snapshot:?}"
    );
    Ok(())
}
