//! The Node peers and the harness, checked against each other.
//!
//! Later tests mix Rust gateways with these Node servers and clients and
//! trust them as the reference; this file proves the reference itself works
//! on real Redis processes: a Node-only cluster relays events (also through a
//! replica), acks, room publishes and the adapter's cluster-wide operations.

use std::time::Duration;

use e2e::node::EVENT_TIMEOUT;
use e2e::{Deadline, NodePeer, RedisServer};
use serde_json::{json, Value};

const OP_TIMEOUT: Duration = Duration::from_secs(10);

fn ids(sockets: &Value) -> Vec<String> {
    let mut ids: Vec<String> = sockets
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|s| s["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_cluster_relays_through_master_and_replica() -> anyhow::Result<()> {
    let master = RedisServer::master().await?;
    let replica = RedisServer::replica_of(&master).await?;

    // A subscribes on the master, B on the replica: both publish on the master.
    let mut server_a = NodePeer::server("node-a", &master.url(), &master.url(), &[]).await?;
    let mut server_b = NodePeer::server("node-b", &master.url(), &replica.url(), &[]).await?;

    let mut alice = NodePeer::client("alice", &server_a.http_url()?, &[]).await?;
    let mut bob = NodePeer::client(
        "bob",
        &server_b.http_url()?,
        &["--v2", "--transports", "polling,websocket"],
    )
    .await?;
    let mut carol =
        NodePeer::client("carol", &server_b.http_url()?, &["--transports", "polling"]).await?;

    // `message` goes to every other socket, binary included, in both directions.
    alice
        .emit("message", json!(["hi", {"$bin": "010203"}, {"n": 1.5}]))
        .await?;
    for peer in [&mut bob, &mut carol] {
        let event = peer.expect_event("message", EVENT_TIMEOUT).await?;
        assert_eq!(
            event["args"],
            json!(["hi", {"$bin": "010203"}, {"n": 1.5}]),
            "{}",
            peer.name()
        );
    }
    bob.emit("message", json!(["from bob"])).await?;
    assert_eq!(
        alice.expect_event("message", EVENT_TIMEOUT).await?["args"],
        json!(["from bob"])
    );
    assert_eq!(
        carol.expect_event("message", EVENT_TIMEOUT).await?["args"],
        json!(["from bob"])
    );
    // Nothing else reaches alice: a marker from server B takes bob's path.
    server_b
        .server_op(
            json!({"op": "emit", "event": "marker-message", "args": [1]}),
            OP_TIMEOUT,
        )
        .await?;
    alice
        .nothing_before("marker-message", EVENT_TIMEOUT)
        .await?;

    // Rooms: only members get a publish, never the sender.
    assert_eq!(bob.join("news").await?, json!([true]));
    assert_eq!(alice.join("news").await?, json!([true]));
    let ack = alice
        .emit_with_ack(
            "publish",
            json!([{"room": "news", "event": "headline", "data": {"t": "x"}}]),
            OP_TIMEOUT,
        )
        .await?;
    assert_eq!(ack, json!([true]));
    assert_eq!(
        bob.expect_event("headline", EVENT_TIMEOUT).await?["args"],
        json!([{"t": "x"}])
    );
    // A marker from server A, where alice published: to carol through
    // Redis, to alice locally.
    server_a
        .server_op(
            json!({"op": "emit", "event": "marker-headline", "args": [1]}),
            OP_TIMEOUT,
        )
        .await?;
    carol
        .nothing_before("marker-headline", EVENT_TIMEOUT)
        .await?;
    alice
        .nothing_before("marker-headline", EVENT_TIMEOUT)
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_cluster_operations_cover_every_request_type() -> anyhow::Result<()> {
    let master = RedisServer::master().await?;
    let mut server_a = NodePeer::server("node-a", &master.url(), &master.url(), &[]).await?;
    let mut server_b = NodePeer::server(
        "node-b",
        &master.url(),
        &master.url(),
        &["--specific-response-channel"],
    )
    .await?;
    let mut alice = NodePeer::client("alice", &server_a.http_url()?, &[]).await?;
    let mut bob = NodePeer::client("bob", &server_b.http_url()?, &["--v2"]).await?;
    let alice_id = alice.ready_value().to_owned();
    let bob_id = bob.ready_value().to_owned();
    bob.join("b-room").await?;

    assert_eq!(
        server_a
            .server_op(json!({"op": "serverCount"}), OP_TIMEOUT)
            .await?,
        json!(2)
    );
    assert_eq!(master.numsub("socket.io-request#/#").await?, 2);

    // REMOTE_FETCH (5), ALL_ROOMS (1).
    let sockets = server_a
        .server_op(json!({"op": "fetchSockets"}), OP_TIMEOUT)
        .await?;
    let mut both = vec![alice_id.clone(), bob_id.clone()];
    both.sort();
    assert_eq!(ids(&sockets), both);
    let rooms = server_a
        .server_op(json!({"op": "allRooms"}), OP_TIMEOUT)
        .await?;
    assert!(
        rooms
            .as_array()
            .is_some_and(|r| r.contains(&json!("b-room"))),
        "{rooms}"
    );

    // REMOTE_JOIN (2) from A moves B's socket; fetch sees it.
    server_a
        .server_op(
            json!({"op": "socketsJoin", "rooms": [bob_id], "join": "joined"}),
            OP_TIMEOUT,
        )
        .await?;
    let deadline = Deadline::new("bob to be in `joined`", OP_TIMEOUT);
    while ids(&server_a
        .server_op(
            json!({"op": "fetchSockets", "rooms": ["joined"]}),
            OP_TIMEOUT,
        )
        .await?)
        != [bob_id.clone()]
    {
        deadline.tick().await?;
    }

    // REMOTE_LEAVE (3).
    server_a
        .server_op(
            json!({"op": "socketsLeave", "rooms": ["joined"], "leave": "joined"}),
            OP_TIMEOUT,
        )
        .await?;
    let deadline = Deadline::new("`joined` to empty", OP_TIMEOUT);
    while !ids(&server_a
        .server_op(
            json!({"op": "fetchSockets", "rooms": ["joined"]}),
            OP_TIMEOUT,
        )
        .await?)
    .is_empty()
    {
        deadline.tick().await?;
    }

    // SERVER_SIDE_EMIT (6) without and with ack.
    server_a
        .server_op(
            json!({"op": "serverSideEmit", "event": "hello", "args": [1, "x"]}),
            OP_TIMEOUT,
        )
        .await?;
    let seen = server_b
        .expect_event("serverSideEmit", EVENT_TIMEOUT)
        .await?;
    assert_eq!(seen["args"], json!(["hello", 1, "x"]));
    let acks = server_a
        .server_op(
            json!({"op": "serverSideEmitWithAck", "event": "ping", "args": []}),
            OP_TIMEOUT,
        )
        .await?;
    assert_eq!(acks, json!([{"name": "node-b", "event": "ping"}]));

    // BROADCAST (7) with acks from both clients.
    let responses = server_a
        .server_op(
            json!({"op": "emitWithAck", "event": "question", "args": [42], "timeout": 3000}),
            OP_TIMEOUT,
        )
        .await?;
    let mut clients: Vec<&str> = responses
        .as_array()
        .map(|list| list.iter().filter_map(|r| r["client"].as_str()).collect())
        .unwrap_or_default();
    clients.sort();
    assert_eq!(clients, ["alice", "bob"]);
    assert_eq!(
        bob.expect_event("question", EVENT_TIMEOUT).await?["acked"],
        json!(true)
    );

    // REMOTE_DISCONNECT (4): only the targeted socket goes.
    server_a
        .server_op(
            json!({"op": "disconnectSockets", "rooms": ["b-room"], "close": true}),
            OP_TIMEOUT,
        )
        .await?;
    bob.expect_event("$disconnect", EVENT_TIMEOUT).await?;
    server_b.expect_event("disconnect", EVENT_TIMEOUT).await?;
    // alice stays: she gets a marker after the disconnect, and no
    // `$disconnect` before it.
    server_a
        .server_op(
            json!({"op": "emit", "event": "marker-stays", "args": [1]}),
            OP_TIMEOUT,
        )
        .await?;
    // (`events_before` fails on a `$disconnect`; what else alice read
    // before, such as the earlier broadcasts, is not this check's concern.)
    alice.events_before("marker-stays", EVENT_TIMEOUT).await?;

    // The peers stop cleanly when their stdin closes.
    alice.close_stdin();
    assert!(alice.wait_exit(EVENT_TIMEOUT).await?.success());
    server_a.close_stdin();
    assert!(server_a.wait_exit(EVENT_TIMEOUT).await?.success());
    Ok(())
}

#[tokio::test]
async fn client_that_cannot_connect_fails_with_a_clear_error() -> anyhow::Result<()> {
    let err = NodePeer::client("nobody", "http://127.0.0.1:1", &[])
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("exited before printing"), "{text}");
    Ok(())
}
