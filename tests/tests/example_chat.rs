//! The chat example (`crates/gateway/examples/chat.rs`) as a user runs it:
//! two instances on one real Redis, real Node socket.io-client clients on
//! each. What one node's client does reaches the room on the other node.

use std::time::Duration;

use e2e::{free_port, ExampleProcess, NodePeer, RedisServer};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(5);

async fn chat_node(name: &str, redis: &RedisServer) -> anyhow::Result<(ExampleProcess, String)> {
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let process = ExampleProcess::start(
        "chat",
        &[
            ("REDIS_URL", redis.url().as_str()),
            ("LISTEN", listen.as_str()),
        ],
        &format!("chat listening on {listen}"),
    )
    .await
    .map_err(|err| err.context(format!("starting chat node {name}")))?;
    Ok((process, format!("http://{listen}")))
}

async fn client(name: &str, url: &str) -> anyhow::Result<NodePeer> {
    let auth = json!({ "name": name }).to_string();
    NodePeer::client(name, url, &["--auth", &auth]).await
}

/// The first argument of an ack.
fn first(args: Value) -> Value {
    args.get(0).cloned().unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_room_spans_two_chat_nodes() -> anyhow::Result<()> {
    let redis = RedisServer::master().await?;
    let (_node_a, url_a) = chat_node("a", &redis).await?;
    let (_node_b, url_b) = chat_node("b", &redis).await?;
    let mut alice = client("alice", &url_a).await?;
    let mut bob = client("bob", &url_b).await?;

    // Joins: acked with the members counted on both nodes, announced by the
    // server to the room on both nodes.
    let joined = first(
        alice
            .emit_with_ack("join", json!(["lobby"]), TIMEOUT)
            .await?,
    );
    assert_eq!(joined, json!({"room": "lobby", "members": 1}));
    let system = alice.expect_event("system", TIMEOUT).await?;
    assert_eq!(system["args"][0]["text"], "alice joined");
    let joined = first(bob.emit_with_ack("join", json!(["lobby"]), TIMEOUT).await?);
    assert_eq!(joined, json!({"room": "lobby", "members": 2}));
    for peer in [&mut alice, &mut bob] {
        let system = peer.expect_event("system", TIMEOUT).await?;
        assert_eq!(system["args"][0]["text"], "bob joined");
    }

    // Typing reaches the others only: bob's own chat message, sent after
    // his typing, reaches him with no typing line before it.
    bob.emit("typing", json!(["lobby"])).await?;
    let typing = alice.expect_event("typing", TIMEOUT).await?;
    assert_eq!(typing["args"][0], json!({"from": "bob"}));
    let acked = first(
        bob.emit_with_ack("chat", json!([{"room": "lobby", "text": "hi"}]), TIMEOUT)
            .await?,
    );
    assert_eq!(acked, json!({"ok": true}));
    let own = bob.expect_event("chat", TIMEOUT).await?;
    assert_eq!(own["args"][0], json!({"from": "bob", "text": "hi"}));
    assert!(
        bob.backlog().all(|line| line["event"] != "typing"),
        "bob heard his own typing: {:?}",
        bob.backlog().collect::<Vec<_>>()
    );

    // A message crosses to the other node, with the sender's ack.
    let chat = alice.expect_event("chat", TIMEOUT).await?;
    assert_eq!(chat["args"][0], json!({"from": "bob", "text": "hi"}));
    let acked = first(
        alice
            .emit_with_ack(
                "chat",
                json!([{"room": "lobby", "text": "hello bob"}]),
                TIMEOUT,
            )
            .await?,
    );
    assert_eq!(acked, json!({"ok": true}));
    let chat = bob.expect_event("chat", TIMEOUT).await?;
    assert_eq!(
        chat["args"][0],
        json!({"from": "alice", "text": "hello bob"})
    );

    // Refusals come back in the ack, and nothing is sent.
    let refused = first(
        alice
            .emit_with_ack("chat", json!([{"room": "elsewhere", "text": "x"}]), TIMEOUT)
            .await?,
    );
    assert_eq!(refused["error"], "join \"elsewhere\" first");
    let refused = first(
        alice
            .emit_with_ack("chat", json!([{"room": "lobby", "text": "  "}]), TIMEOUT)
            .await?,
    );
    assert_eq!(refused["error"], "empty message");
    // The marker after the refusals: the next message bob gets is it.
    alice
        .emit_with_ack(
            "chat",
            json!([{"room": "lobby", "text": "marker"}]),
            TIMEOUT,
        )
        .await?;
    let next = bob.expect_event("chat", TIMEOUT).await?;
    assert_eq!(
        next["args"][0]["text"], "marker",
        "a refused message was sent"
    );
    Ok(())
}
