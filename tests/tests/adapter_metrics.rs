//! The adapter's series on a gateway's `/metrics`, each made to move by
//! what it counts: the cross-node requests a gateway makes (`GET
//! /cluster/nodes`) with their outcome and duration, the requests it
//! answers and the responses it publishes, every reason an inbound message
//! is not applied, and the publisher's connection to the master, which a
//! master kill in the fixed layout (no sentinels) takes down while local
//! delivery goes on.
//!
//! Each count is asserted exactly, from a baseline scraped just before the
//! step that moves it: a series that moved twice, or for something else,
//! fails as surely as one that did not move.

use std::time::Duration;

use e2e::bins::{http_get, metric_sample};
use e2e::{GatewayProcess, NodePeer, RedisConn, RedisServer};
use emitter::{Emitter, RedisConfig};
use serde_json::{json, Value};
use wire::{BroadcastMessage, BroadcastOpts, BroadcastPacket, PacketKind};

const EVENT: Duration = Duration::from_secs(10);

/// The current value of `key` (0 when the series is absent).
async fn sample(gateway: &GatewayProcess, key: &str) -> anyhow::Result<f64> {
    Ok(metric_sample(&gateway.scrape().await?, key).unwrap_or(0.0))
}

/// Waits until `key` is exactly `before + by`.
async fn moved_by(gateway: &GatewayProcess, key: &str, before: f64, by: f64) -> anyhow::Result<()> {
    gateway
        .wait_metric(key, |v| v == before + by, EVENT)
        .await
        .map(drop)
        .map_err(|err| err.context(format!("{key} should be {before} + {by}")))
}

fn dropped(reason: &str) -> String {
    format!("adapter_dropped_messages_total{{reason=\"{reason}\"}}")
}

fn requests(outcome: &str) -> String {
    format!("adapter_requests_total{{outcome=\"{outcome}\",type=\"server_count\"}}")
}

const SERVER_COUNT_DURATIONS: &str =
    "adapter_request_duration_seconds_count{type=\"server_count\"}";

/// `GET /cluster/nodes` on `gateway`: (status, body).
async fn cluster_nodes(gateway: &GatewayProcess) -> anyhow::Result<(u16, Value)> {
    let (status, body) = http_get(gateway.admin_port(), "/cluster/nodes").await?;
    Ok((status, serde_json::from_str(&body)?))
}

/// A broadcast from `uid` to every socket of `/`, msgpack as Node's adapter
/// writes it.
fn broadcast(uid: &str, event: &str) -> Vec<u8> {
    BroadcastMessage {
        uid: uid.into(),
        packet: BroadcastPacket {
            kind: PacketKind::Event,
            nsp: "/".into(),
            data: rmpv::Value::Array(vec![event.into(), "x".repeat(200).into()]),
        },
        opts: BroadcastOpts::default(),
    }
    .encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_responses_and_every_drop_reason_are_counted() -> anyhow::Result<()> {
    let (master, _replica, gw) =
        GatewayProcess::with_new_replica(&[("GATEWAY_REDIS__LEGACY_EMITTER", "true")]).await?;
    let mut member = NodePeer::client("member", &gw.url(), &[]).await?;
    member.join("r1").await?;
    let member_id = member.ready_value().to_owned();

    // A request of ours: the node count, complete, timed once.
    let complete = sample(&gw, &requests("complete")).await?;
    let timed = sample(&gw, SERVER_COUNT_DURATIONS).await?;
    let (status, body) = cluster_nodes(&gw).await?;
    assert_eq!((status, &body["nodes"]), (200, &json!(1)), "{body}");
    moved_by(&gw, &requests("complete"), complete, 1.0).await?;
    moved_by(&gw, SERVER_COUNT_DURATIONS, timed, 1.0).await?;

    // A response nobody here waits for: first, so that the gateway's own
    // response below (which comes back on the shared channel) is not
    // counted in it.
    let unknown = sample(&gw, &dropped("unknown_request")).await?;
    master
        .command(&[
            "PUBLISH",
            "socket.io-response#/#",
            r#"{"requestId":"nobody-asked","rooms":[]}"#,
        ])
        .await?;
    moved_by(&gw, &dropped("unknown_request"), unknown, 1.0).await?;

    // A request from another node (allRooms, as Node's adapter writes it):
    // received, answered, and the answer published.
    let requests_in = sample(&gw, "adapter_redis_received_total{kind=\"request\"}").await?;
    let responses_out = sample(&gw, "adapter_redis_published_total{kind=\"response\"}").await?;
    let mut watcher = RedisConn::connect(master.port()).await?;
    // The answer goes to the requester's own channel, as Node answers a
    // request that names its uid.
    watcher
        .subscribe("socket.io-response#/#another-node#")
        .await?;
    master
        .command(&[
            "PUBLISH",
            "socket.io-request#/#",
            r#"{"uid":"another-node","requestId":"q1","type":1}"#,
        ])
        .await?;
    let response = watcher.next_message(EVENT).await?;
    let response: Value = serde_json::from_slice(&response.payload)?;
    assert_eq!(response["requestId"], "q1", "{response}");
    let rooms = response["rooms"].as_array().cloned().unwrap_or_default();
    assert!(
        rooms.contains(&json!("r1")) && rooms.contains(&json!(member_id)),
        "{response}"
    );
    moved_by(
        &gw,
        "adapter_redis_received_total{kind=\"request\"}",
        requests_in,
        1.0,
    )
    .await?;
    moved_by(
        &gw,
        "adapter_redis_published_total{kind=\"response\"}",
        responses_out,
        1.0,
    )
    .await?;

    // Our own broadcast coming back from the replica.
    let echoes = sample(&gw, &dropped("own_echo")).await?;
    let mut sender = NodePeer::client("sender", &gw.url(), &[]).await?;
    sender.emit("message", json!(["hello"])).await?;
    member.expect_event("message", EVENT).await?;
    moved_by(&gw, &dropped("own_echo"), echoes, 1.0).await?;

    // A single-room broadcast for a room without a local socket, beside
    // one for a room with a member (which must arrive).
    let emitter = Emitter::connect(&RedisConfig {
        url: master.url(),
        ..RedisConfig::default()
    })
    .await?;
    let no_room = sample(&gw, &dropped("no_local_room")).await?;
    emitter.to("nobody-here").emit("lost", ["x"]).await?;
    emitter.to("r1").emit("for-r1", ["y"]).await?;
    member.nothing_before("for-r1", EVENT).await?;
    moved_by(&gw, &dropped("no_local_room"), no_room, 1.0).await?;

    // A 2014 emitter message for a namespace this gateway does not serve
    // (the legacy channel is shared by every namespace).
    let unknown_nsp = sample(&gw, &dropped("unknown_namespace")).await?;
    let mut legacy = NodePeer::legacy_emitter(&master).await?;
    legacy
        .send(&json!({"id": 1, "nsp": "/elsewhere", "event": "lost", "args": []}))
        .await?;
    let done = legacy
        .expect("done", EVENT, |line| line["done"] == 1)
        .await?;
    assert!(done.get("error").is_none(), "{done}");
    moved_by(&gw, &dropped("unknown_namespace"), unknown_nsp, 1.0).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_past_a_small_queue_is_counted_as_queue_full() -> anyhow::Result<()> {
    const SENT: usize = 3000;
    let (master, _replica, gw) =
        GatewayProcess::with_new_replica(&[("GATEWAY_REDIS__BUFFER_SIZE", "4")]).await?;
    let _reader = NodePeer::client("reader", &gw.url(), &[]).await?;

    let message = broadcast("another-node", "flood");
    let mut conn = master.conn().await?;
    for _ in 0..SENT {
        conn.send(&[b"PUBLISH".as_slice(), b"socket.io#/#", &message])
            .await?;
    }
    for _ in 0..SENT {
        conn.read().await?;
    }
    // Every message is either received (then applied or dropped from the
    // full queue) or lost to the subscriber's lag; the flood must have
    // taken the overload path: a 4-message queue cannot take 3000 at once.
    let body = e2e::wait_for("every flooded message accounted for", EVENT, || async {
        let body = gw.scrape().await?;
        let value = |key: &str| metric_sample(&body, key).unwrap_or(0.0);
        let seen = value("adapter_redis_received_total{kind=\"broadcast\"}")
            + value(&dropped("subscriber_lagged"));
        Ok((seen >= SENT as f64).then_some(body))
    })
    .await?;
    let full = metric_sample(&body, &dropped("queue_full")).unwrap_or(0.0);
    assert!(full > 0.0, "nothing was dropped for a full queue:\n{body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_kill_in_the_fixed_layout_stops_publishing_and_local_delivery_goes_on(
) -> anyhow::Result<()> {
    let (mut master, _replica, gw) =
        GatewayProcess::with_new_replica(&[("GATEWAY_REDIS__REQUEST_TIMEOUT_MS", "1000")]).await?;
    let mut sender = NodePeer::client("sender", &gw.url(), &[]).await?;
    let mut receiver = NodePeer::client("receiver", &gw.url(), &[]).await?;
    gw.wait_metric("adapter_publisher_connected", |v| v == 1.0, EVENT)
        .await?;

    master.kill();
    gw.wait_metric("adapter_publisher_connected", |v| v == 0.0, EVENT)
        .await?;
    let (status, body) = http_get(gw.admin_port(), "/readyz").await?;
    assert_eq!(status, 503, "{body}");
    let published = "adapter_redis_published_total{kind=\"broadcast\"}";
    let before = sample(&gw, published).await?;
    let timeouts = sample(&gw, &requests("timeout")).await?;

    // The relay still reaches the client on the same gateway.
    sender
        .emit("message", json!(["while the master is down"]))
        .await?;
    let event = receiver.expect_event("message", EVENT).await?;
    assert_eq!(
        event["args"],
        json!(["while the master is down"]),
        "{event}"
    );
    // A node count cannot be made: 504 after the request timeout, counted.
    let (status, body) = cluster_nodes(&gw).await?;
    assert_eq!(status, 504, "{body}");
    moved_by(&gw, &requests("timeout"), timeouts, 1.0).await?;
    // Nothing was published while the master was away.
    assert_eq!(sample(&gw, published).await?, before);

    master.restart().await?;
    gw.wait_metric("adapter_publisher_connected", |v| v == 1.0, EVENT)
        .await?;
    e2e::wait_for("/readyz to be 200 again", EVENT, || async {
        Ok((http_get(gw.admin_port(), "/readyz").await?.0 == 200).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_count_redis_refuses_is_a_502_counted_as_an_error() -> anyhow::Result<()> {
    // A gateway user that may do everything but count subscribers.
    let master = RedisServer::start(
        None,
        &[
            "--user",
            "gw",
            "on",
            ">secret",
            "~*",
            "&*",
            "+@all",
            "-pubsub|numsub",
        ],
    )
    .await?;
    let url = format!("redis://gw:secret@127.0.0.1:{}", master.port());
    let gw = GatewayProcess::start("gw", &[("GATEWAY_REDIS__URL", url.as_str())]).await?;
    let errors = sample(&gw, &requests("error")).await?;
    let (status, body) = cluster_nodes(&gw).await?;
    assert_eq!(status, 502, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains("NOPERM"), "{body}");
    moved_by(&gw, &requests("error"), errors, 1.0).await?;
    Ok(())
}
