//! Subscriber failover: SIGKILL the replica a gateway subscribes on and the
//! gateway must be subscribed on the next replica within 2 s, then on the
//! master when that one dies too, without losing a subscription.

mod common;

use std::time::{Duration, Instant};

use adapter::SubscriberSelection;
use common::*;
use serde_json::json;

/// How soon a subscriber whose replica was killed must be subscribed on
/// the next server. Measured: about 50 ms (the connection closes at once).
/// 500 ms is ten times that, for a loaded 2-core machine.
const FAILOVER_BOUND: Duration = Duration::from_millis(500);
/// How long the test waits for it before it gives up (past the bound, so
/// that a slow failover fails with its measured time).
const FAILOVER_WAIT: Duration = Duration::from_secs(5);

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_fails_over_to_next_replica_then_master() -> anyhow::Result<()> {
    init_tracing();
    let mut topology = Topology::start(2).await?;
    let replica0 = topology.replicas[0].url();
    let replica1 = topology.replicas[1].url();
    let master = topology.master.url();

    let mut config = topology.config();
    config.subscriber_selection = SubscriberSelection::First;
    let watched = Gateway::start(config.clone()).await?;
    // The other gateway subscribes on the master: it survives both kills.
    config.subscriber_selection = SubscriberSelection::Master;
    let sender = Gateway::start(config).await?;
    assert_eq!(
        watched.cluster.metrics().subscriber_endpoint(),
        Some(replica0.clone())
    );

    let mut client = watched.client("watched").await?;
    client.join("room").await?;
    let mut admin = watched.client_in("/admin", "admin").await?;
    sender
        .io
        .to("room")
        .emit("before", &())
        .await
        .map_err(err)?;
    client.event("before").await.map_err(|e| {
        err(format!(
            "{e}; watched: {:?}; sender: {:?}",
            watched.cluster.metrics().snapshot(),
            sender.cluster.metrics().snapshot()
        ))
    })?;

    // Kill the replica under the watched gateway.
    topology.replicas[0].kill();
    let killed = Instant::now();
    let cluster = watched.cluster.clone();
    let expected = replica1.clone();
    eventually("resubscribed on replica 1", FAILOVER_WAIT, || {
        let cluster = cluster.clone();
        let expected = expected.clone();
        async move {
            cluster.readiness().subscriber_ready
                && cluster.metrics().subscriber_endpoint() == Some(expected)
        }
    })
    .await?;
    let took = killed.elapsed();
    assert!(
        took <= FAILOVER_BOUND,
        "failover took {took:?} (bound {FAILOVER_BOUND:?})"
    );
    assert_eq!(watched.cluster.metrics().subscriber_reconnects(), 1);

    // Every subscription survived: room broadcasts, another namespace, requests.
    sender
        .io
        .to("room")
        .emit("after-1", &())
        .await
        .map_err(err)?;
    client.event("after-1").await?;
    sender
        .io
        .of("/admin")
        .ok_or_else(|| err("/admin"))?
        .emit("admin-1", &())
        .await
        .map_err(err)?;
    admin.event("admin-1").await?;
    let fetched = sender.io.fetch_sockets().await.map_err(err)?;
    assert!(fetched
        .iter()
        .any(|s| s.data().id.to_string() == client.sid));
    assert_eq!(sender.cluster.server_count("/").await?, 2);

    // Then the second replica: down to the master.
    topology.replicas[1].kill();
    let killed = Instant::now();
    let cluster = watched.cluster.clone();
    let expected = master.clone();
    eventually("resubscribed on the master", FAILOVER_WAIT, || {
        let cluster = cluster.clone();
        let expected = expected.clone();
        async move {
            cluster.readiness().subscriber_ready
                && cluster.metrics().subscriber_endpoint() == Some(expected)
        }
    })
    .await?;
    let took = killed.elapsed();
    assert!(
        took <= FAILOVER_BOUND,
        "failover to the master took {took:?} (bound {FAILOVER_BOUND:?})"
    );
    sender
        .io
        .to("room")
        .emit("after-2", &json!(2))
        .await
        .map_err(err)?;
    assert_eq!(client.event("after-2").await?.args, vec![json!(2)]);
    // Once: not also through a subscription left on a dead replica's
    // successor. A marker from the same node, after it, comes first.
    sender
        .io
        .to("room")
        .emit("marker-after-2", &())
        .await
        .map_err(err)?;
    client.nothing_before("marker-after-2").await?;
    sender
        .io
        .of("/admin")
        .ok_or_else(|| err("/admin"))?
        .emit("admin-2", &())
        .await
        .map_err(err)?;
    admin.event("admin-2").await?;
    // Dead replicas count zero, the master counts both gateways.
    assert_eq!(sender.cluster.server_count("/").await?, 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_replica_is_abandoned() -> anyhow::Result<()> {
    init_tracing();
    let topology = Topology::start(2).await?;
    let mut config = topology.config();
    config.subscriber_selection = SubscriberSelection::First;
    let watched = Gateway::start(config.clone()).await?;
    config.subscriber_selection = SubscriberSelection::Master;
    let sender = Gateway::start(config).await?;
    let mut client = watched.client("watched").await?;

    // SIGSTOP: the TCP connection stays open, only the PINGs tell.
    topology.replicas[0].stop()?;
    let frozen = Instant::now();
    let cluster = watched.cluster.clone();
    let expected = topology.replicas[1].url();
    let result = eventually(
        "moved off the frozen replica",
        Duration::from_secs(3),
        || {
            let cluster = cluster.clone();
            let expected = expected.clone();
            async move {
                cluster.readiness().subscriber_ready
                    && cluster.metrics().subscriber_endpoint() == Some(expected)
            }
        },
    )
    .await;
    topology.replicas[0].cont()?;
    result?;
    tracing::info!(took = ?frozen.elapsed(), "left the frozen replica");
    sender.io.emit("after", &()).await.map_err(err)?;
    client.event("after").await?;
    Ok(())
}
