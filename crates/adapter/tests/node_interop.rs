//! A Rust gateway and a Node server (socket.io 4.8 + @socket.io/redis-adapter
//! 8.3) on one Redis: broadcasts and requests work in both directions. The
//! Rust gateway subscribes broadcasts on a replica and, with
//! `requests_on_master`, its request channels on the master where Node
//! counts nodes.

mod common;

use std::time::Duration;

use common::*;
use e2e::NodePeer;
use futures_util::StreamExt;
use serde_json::{json, Value};

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

const NODE_WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_node_nodes_interoperate() -> anyhow::Result<()> {
    init_tracing();
    let topology = Topology::start(1).await?;
    let mut config = topology.config();
    config.requests_on_master = true;
    config.request_timeout_ms = 3000;
    let gateway = Gateway::start(config).await?;
    assert_eq!(
        gateway.cluster.metrics().subscriber_endpoint(),
        Some(topology.replicas[0].url())
    );
    assert_eq!(
        gateway.cluster.metrics().request_subscriber_endpoint(),
        Some(topology.master.url())
    );
    let master = topology.master.url();
    let mut node = NodePeer::server("node-server", &master, &master, &[]).await?;
    let node_url = format!("http://127.0.0.1:{}", node.port()?);
    let mut node_client = NodePeer::client("node-client", &node_url, &[]).await?;
    let node_sid = node_client.ready_value().to_owned();
    let mut rust_client = gateway.client("rust-client").await?;

    // Both sides count two nodes.
    let cluster = gateway.cluster.clone();
    eventually("rust counts 2", WAIT, || {
        let cluster = cluster.clone();
        async move { cluster.server_count("/").await.ok() == Some(2) }
    })
    .await?;
    assert_eq!(
        node.server_op(json!({"op": "serverCount"}), NODE_WAIT)
            .await?,
        json!(2)
    );

    // Broadcasts, both ways.
    node.server_op(
        json!({"op": "emit", "event": "from-node", "args": ["n", 1]}),
        NODE_WAIT,
    )
    .await?;
    assert_eq!(
        rust_client.event("from-node").await?.args,
        vec![json!("n"), json!(1)]
    );
    gateway
        .io
        .emit("from-rust", &json!({"r": true}))
        .await
        .map_err(err)?;
    let line = node_client.expect_event("from-rust", NODE_WAIT).await?;
    assert_eq!(line["args"], json!([{"r": true}]));
    let line = node_client.expect_event("from-node", NODE_WAIT).await?;
    assert_eq!(line["args"], json!(["n", 1]));
    // Node's broadcast came once: a marker from Node, on the same path,
    // finds only the gateway's own broadcast ahead of it.
    node.server_op(json!({"op": "emit", "event": "marker-once"}), NODE_WAIT)
        .await?;
    let before: Vec<String> = rust_client
        .events_before("marker-once")
        .await?
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(before, ["from-rust"]);

    // Rooms: a Rust socket joins, Node broadcasts to the room.
    rust_client.join("mixed").await?;
    node.server_op(
        json!({"op": "emit", "rooms": ["mixed"], "event": "room-from-node"}),
        NODE_WAIT,
    )
    .await?;
    rust_client.event("room-from-node").await?;
    // The Node client is not in the room: a marker to everyone, sent by
    // Node after the room broadcast, reaches it with nothing ahead.
    node.server_op(json!({"op": "emit", "event": "marker-room"}), NODE_WAIT)
        .await?;
    node_client.nothing_before("marker-room", NODE_WAIT).await?;
    rust_client.nothing_before("marker-room").await?;

    // Node's fetchSockets sees the Rust socket (with its rooms), and Rust's full fetch sees Node's.
    let fetched = node
        .server_op(json!({"op": "fetchSockets"}), NODE_WAIT)
        .await?;
    let ids: Vec<&str> = fetched
        .as_array()
        .ok_or_else(|| err("array"))?
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert!(
        ids.contains(&rust_client.sid.as_str()) && ids.contains(&node_sid.as_str()),
        "{fetched}"
    );
    let rust_entry = fetched
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == json!(rust_client.sid)))
        .ok_or_else(|| err("rust socket"))?;
    assert!(
        rust_entry["rooms"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("mixed"))),
        "{rust_entry}"
    );
    let full = gateway.cluster.fetch_sockets("/", vec![], vec![]).await?;
    assert!(full.complete());
    assert!(full.items.iter().any(|s| s.id == node_sid));
    assert!(full.items.iter().any(|s| s.id == rust_client.sid));
    let rooms: Vec<String> = gateway
        .io
        .rooms()
        .await
        .map_err(err)?
        .into_iter()
        .map(|r| r.into_owned())
        .collect();
    assert!(
        rooms.contains(&node_sid) && rooms.contains(&"mixed".to_owned()),
        "{rooms:?}"
    );

    // Server-side emit with acks, both ways.
    gateway.cluster.on_server_side_emit("/", |emit| {
        if let Some(ack) = emit.ack {
            tokio::spawn(ack.send(json!({"from": "rust"})));
        }
    });
    let answers = node
        .server_op(
            json!({"op": "serverSideEmitWithAck", "event": "hi"}),
            NODE_WAIT,
        )
        .await?;
    assert_eq!(answers, json!([{"from": "rust"}]));
    let answers = gateway
        .cluster
        .server_side_emit_with_ack("/", vec![json!("hello")])
        .await?;
    assert!(answers.complete());
    assert_eq!(
        answers.items,
        vec![json!({"name": "node-server", "event": "hello"})]
    );

    // Broadcast with acks, both ways.
    let acks = node
        .server_op(
            json!({"op": "emitWithAck", "event": "ask", "timeout": 2000}),
            NODE_WAIT,
        )
        .await?;
    let mut clients: Vec<String> = acks
        .as_array()
        .ok_or_else(|| err(format!("acks {acks}")))?
        .iter()
        .filter_map(|a| a["client"].as_str().map(str::to_owned))
        .collect();
    clients.sort();
    assert_eq!(clients, ["node-client", "rust-client"]);
    let stream = gateway
        .io
        .timeout(Duration::from_secs(2))
        .emit_with_ack::<_, Value>("ask", &())
        .await
        .map_err(err)?;
    let acks: Vec<_> = tokio::time::timeout(WAIT, stream.collect::<Vec<_>>()).await?;
    let mut clients: Vec<String> = acks
        .iter()
        .filter_map(|(_, a)| {
            a.as_ref()
                .ok()
                .and_then(|v| v["client"].as_str().map(str::to_owned))
        })
        .collect();
    clients.sort();
    assert_eq!(clients, ["node-client", "rust-client"]);

    // socketsJoin from Node applies on the Rust node (once).
    node.server_op(
        json!({"op": "socketsJoin", "join": "joined-by-node"}),
        NODE_WAIT,
    )
    .await?;
    let gw = &gateway;
    eventually("rust socket joined", WAIT, || async move {
        gw.io.within("joined-by-node").sockets().len() == 1
    })
    .await?;
    gateway
        .io
        .to("joined-by-node")
        .emit("nj", &())
        .await
        .map_err(err)?;
    rust_client.event("nj").await?;
    node_client.expect_event("nj", NODE_WAIT).await?;

    // disconnectSockets from Rust, addressed by Node socket id.
    gateway
        .io
        .to(node_sid.clone())
        .disconnect()
        .await
        .map_err(err)?;
    node_client.expect_event("$disconnect", NODE_WAIT).await?;
    // Only the Node socket was disconnected: the Rust one still hears a
    // broadcast, with nothing (no disconnect) ahead of it.
    gateway
        .io
        .emit("marker-still-here", &())
        .await
        .map_err(err)?;
    rust_client.nothing_before("marker-still-here").await?;
    assert_eq!(gateway.io.fetch_sockets().await.map_err(err)?.len(), 1);
    Ok(())
}
