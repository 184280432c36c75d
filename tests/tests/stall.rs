//! A frozen master (SIGSTOP) for longer than the request timeout: the
//! connections stay open but nothing answers, which is the case a plain
//! "connection refused" test never covers. Cross-node requests must end with
//! a timeout error in bounded time instead of hanging, no gateway may exit,
//! and once the master resumes (SIGCONT) requests and broadcasts work again
//! without any restart, Node peers of the fleet included.

use std::time::{Duration, Instant};

use e2e::bins::http_get;
use e2e::{wait_for, GatewayProcess, NodePeer, RedisServer};
use emitter::{Emitter, RedisConfig};
use serde_json::{json, Value};

/// The gateways' and the Node server's cross-node request timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long past the request timeout a failing request may take to return.
const SLACK: Duration = Duration::from_secs(1);
/// Rounds of `/cluster/nodes` requests to both gateways while the master
/// is frozen. Each request waits out the timeout, so the master stays
/// frozen about four request timeouts (4 s, as the README says); the test
/// asserts at least that.
const FROZEN_ROUNDS: u32 = 2;
/// How soon after SIGCONT the gateways count the nodes again, and a client
/// relay reaches the other gateway's and the Node server's clients.
/// Measured: 8 ms and 16 ms. 250 ms leaves room for a loaded 2-core
/// machine (the relay crosses a gateway, Redis and two Node processes).
const RESUME_BOUND: Duration = Duration::from_millis(250);
const EVENT: Duration = Duration::from_secs(10);

/// A gateway subscribing on the first of `replicas`; it counts nodes on
/// all of them.
async fn gateway(
    name: &str,
    master: &RedisServer,
    replicas: &[&RedisServer],
) -> anyhow::Result<GatewayProcess> {
    let timeout = REQUEST_TIMEOUT.as_millis().to_string();
    let replica_urls = replicas
        .iter()
        .map(|r| r.url())
        .collect::<Vec<_>>()
        .join(",");
    GatewayProcess::start(
        name,
        &[
            ("GATEWAY_REDIS__URL", master.url().as_str()),
            ("GATEWAY_REDIS__REPLICA_URLS", replica_urls.as_str()),
            ("GATEWAY_REDIS__SUBSCRIBER_SELECTION", "first"),
            ("GATEWAY_REDIS__REQUEST_TIMEOUT_MS", timeout.as_str()),
        ],
    )
    .await
}

/// `GET /cluster/nodes` on a gateway: (status, body as JSON, how long it took).
async fn count_nodes(gateway: &GatewayProcess) -> anyhow::Result<(u16, Value, Duration)> {
    let started = Instant::now();
    let (status, body) = http_get(gateway.admin_port(), "/cluster/nodes").await?;
    let took = started.elapsed();
    let body = serde_json::from_str(&body)
        .map_err(|err| anyhow::anyhow!("/cluster/nodes body {body:?} is not JSON: {err}"))?;
    Ok((status, body, took))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_master_times_requests_out_then_recovers() -> anyhow::Result<()> {
    let master = RedisServer::master().await?;
    let replica_a = RedisServer::replica_of(&master).await?;
    let replica_b = RedisServer::replica_of(&master).await?;
    let mut gw_a = gateway("gw-a", &master, &[&replica_a, &replica_b]).await?;
    let mut gw_b = gateway("gw-b", &master, &[&replica_b, &replica_a]).await?;
    let timeout_arg = REQUEST_TIMEOUT.as_millis().to_string();
    let node = NodePeer::server(
        "node",
        &master.url(),
        &replica_a.url(),
        &["--requests-timeout", &timeout_arg],
    )
    .await?;
    let mut alice = NodePeer::client("alice", &gw_a.url(), &[]).await?;
    let mut bob = NodePeer::client("bob", &gw_b.url(), &[]).await?;
    let mut carol = NodePeer::client("carol", &node.http_url()?, &[]).await?;

    // Before: three nodes (two gateways, one Node server; the Node adapter
    // may still be subscribing after it listens), broadcasts flow.
    wait_for("gw-a counting 3 nodes", EVENT, || async {
        let (status, body, _) = count_nodes(&gw_a).await?;
        Ok((status == 200 && body == json!({"nodes": 3})).then_some(()))
    })
    .await?;
    alice.emit("message", json!(["before"])).await?;
    for peer in [&mut bob, &mut carol] {
        let event = peer.expect_event("message", EVENT).await?;
        assert_eq!(event["args"], json!(["before"]), "{}", peer.name());
    }

    // Frozen: every request ends with 504 after about the request timeout.
    master.stop()?;
    let frozen_at = Instant::now();
    let mut timed_out = Vec::new();
    for _ in 0..FROZEN_ROUNDS {
        for gateway in [&gw_a, &gw_b] {
            let (status, body, took) = count_nodes(gateway).await?;
            assert_eq!(status, 504, "while the master is frozen: {body}");
            let error = body["error"].as_str().unwrap_or_default();
            assert!(error.contains("did not answer"), "{body}");
            assert!(
                took <= REQUEST_TIMEOUT + SLACK,
                "a request took {took:?} while the master was frozen"
            );
            // It waited for the master rather than failing for another reason.
            assert!(took >= REQUEST_TIMEOUT * 9 / 10, "504 after only {took:?}");
            timed_out.push(took);
        }
    }
    // A relay attempted while frozen: its PUBLISH times out in the gateway.
    alice.emit("message", json!(["frozen"])).await?;
    assert!(gw_a.is_running() && gw_b.is_running(), "a gateway exited");
    let frozen_for = frozen_at.elapsed();
    assert!(
        frozen_for >= REQUEST_TIMEOUT * 2 * FROZEN_ROUNDS * 9 / 10,
        "frozen for only {frozen_for:?}"
    );

    // Resumed: requests succeed again, broadcasts flow in every direction.
    master.cont()?;
    let resumed_at = Instant::now();
    let (nodes, back_after) = wait_for("gw-a counting 3 nodes again", EVENT, || async {
        let (status, body, _) = count_nodes(&gw_a).await?;
        Ok((status == 200).then(|| (body, resumed_at.elapsed())))
    })
    .await?;
    assert_eq!(nodes, json!({"nodes": 3}));
    let (status, body, _) = count_nodes(&gw_b).await?;
    assert_eq!((status, &body), (200, &json!({"nodes": 3})));

    bob.emit("message", json!(["after"])).await?;
    for peer in [&mut alice, &mut carol] {
        let event = peer
            .expect("`message` \"after\"", EVENT, |line| {
                line["event"] == "message" && line["args"] == json!(["after"])
            })
            .await?;
        assert_eq!(event["args"], json!(["after"]), "{}", peer.name());
    }
    let relayed_after = resumed_at.elapsed();
    assert!(
        back_after <= RESUME_BOUND && relayed_after <= RESUME_BOUND,
        "after SIGCONT: counted again in {back_after:?}, relayed in {relayed_after:?} (bound {RESUME_BOUND:?})"
    );
    let emitter = Emitter::connect(&RedisConfig::new(master.url())).await?;
    emitter.emit_json("seq", &[json!(1)]).await?;
    for peer in [&mut alice, &mut bob, &mut carol] {
        let event = peer.expect_event("seq", EVENT).await?;
        assert_eq!(event["args"], json!([1]), "{}", peer.name());
    }
    // The frozen-time relay was written to the master's socket before the
    // gateway gave up on it, so the master may still deliver it on resume:
    // a timeout means "not known to be delivered", not "not delivered".
    let late = bob
        .backlog()
        .any(|line| line["event"] == "message" && line["args"] == json!(["frozen"]));
    assert!(gw_a.is_running() && gw_b.is_running(), "a gateway exited");
    eprintln!(
        "[stall] master frozen {frozen_for:?}: {} /cluster/nodes requests answered 504 in {:?}..{:?} \
         (request timeout {REQUEST_TIMEOUT:?}); after SIGCONT counted again in {back_after:?}, \
         client relay seen across gateways and by the Node server's client {relayed_after:?} after resume; \
         the relay sent while frozen was {} on resume",
        timed_out.len(),
        timed_out.iter().min().copied().unwrap_or_default(),
        timed_out.iter().max().copied().unwrap_or_default(),
        if late { "delivered late" } else { "not delivered" },
    );
    Ok(())
}
