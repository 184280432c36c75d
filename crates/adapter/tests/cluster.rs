//! Cross-node behaviour of the adapter on Redis: three socketioxide
//! gateways in one process, each on its own port, sharing a Redis master
//! and two replicas (subscribers spread over the replicas by uid hash),
//! driven by real WebSocket clients. The scenarios are in
//! `common/scenarios.rs`; `memory.rs` runs them on the in-memory bus.

mod common;

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

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
    scenarios::broadcasts_reach_each_socket_once(&gateways).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_across_nodes_honour_the_timeout() -> anyhow::Result<()> {
    let (_topology, gateways) = three_gateways().await?;
    scenarios::acks_are_gathered(&gateways).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_apply_once_on_every_node() -> anyhow::Result<()> {
    let (_topology, gateways) = three_gateways().await?;
    scenarios::operations_apply_once(&gateways).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_emit_with_and_without_ack() -> anyhow::Result<()> {
    let (topology, gateways) = three_gateways().await?;
    let request_timeout = Duration::from_millis(topology.config().request_timeout_ms);
    scenarios::server_side_emits(&gateways, request_timeout).await
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
