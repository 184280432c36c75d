//! Permissions from token claims, end to end: two gateways on one Redis,
//! real Node clients with tokens minted by Node's `jsonwebtoken`, the
//! emitter CLI, and a Node socket.io server with the official adapter.

use std::time::Duration;

use e2e::{
    bins::{metric_sample, run_emitter},
    GatewayProcess, NodePeer, RedisServer, TokenKit,
};
use serde_json::{json, Value};

const SECRET: &str = "permissions test secret";
const EVENT: Duration = Duration::from_secs(5);

async fn emit(redis: &str, args: &[&str]) -> anyhow::Result<()> {
    let mut all = vec!["emit", "--redis", redis];
    all.extend_from_slice(args);
    let (code, _, stderr) = run_emitter(&all, &[], Duration::from_secs(20)).await?;
    anyhow::ensure!(code == Some(0), "emitter {args:?} failed: {stderr}");
    Ok(())
}

async fn publish(client: &mut NodePeer, room: &str) -> anyhow::Result<Value> {
    let request = json!([{"room": room, "event": "news", "data": room}]);
    client.emit_with_ack("publish", request, EVENT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_decide_rooms_publishes_and_relays_on_every_gateway() -> anyhow::Result<()> {
    let redis = RedisServer::start(None, &[]).await?;
    let url = redis.url();
    let env = [
        ("GATEWAY_REDIS__URL", url.as_str()),
        ("GATEWAY_AUTH__JWT_SECRET", SECRET),
    ];
    let one = GatewayProcess::start("perm-1", &env).await?;
    let two = GatewayProcess::start("perm-2", &env).await?;
    let kit = TokenKit::new().await?;
    let claims = |sub: &str, extra: Value| {
        let mut claims = json!({"sub": sub, "exp": {"in": 600}, "name": sub.to_uppercase()});
        if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
            claims.extend(extra.clone());
        }
        json!({"alg": "HS256", "secret": SECRET, "claims": claims})
    };
    let tokens = kit
        .sign(&json!([
            claims(
                "alice",
                json!({"rooms": ["chat:*"], "publish": ["chat:general"], "broadcast": true})
            ),
            claims("bob", json!({})),
        ]))
        .await?;
    let auth = |i: usize| json!({ "token": tokens[i] }).to_string();
    let (alice_auth, bob_auth) = (auth(0), auth(1));
    let mut alice_ws = NodePeer::client("alice-ws", &one.url(), &["--auth", &alice_auth]).await?;
    let mut alice_polling = NodePeer::client(
        "alice-polling",
        &two.url(),
        &["--transports", "polling", "--auth", &alice_auth],
    )
    .await?;
    let mut bob = NodePeer::client("bob", &one.url(), &["--auth", &bob_auth]).await?;

    // The emitter to user:alice reaches both of alice's sockets, on both
    // gateways, and not bob; the marker after it reaches everyone.
    emit(&url, &["--to", "user:alice", "dm", "for alice"]).await?;
    emit(&url, &["marker", "1"]).await?;
    for alice in [&mut alice_ws, &mut alice_polling] {
        let before = alice.events_before("marker", EVENT).await?;
        assert_eq!(before.len(), 1, "{before:?}");
        assert_eq!(before[0]["event"], "dm");
        assert_eq!(before[0]["args"], json!(["for alice"]));
    }
    bob.nothing_before("marker", EVENT).await?;

    // Joins: inside the claims, yes; elsewhere, no; another user's room, no.
    assert_eq!(alice_ws.join("chat:random").await?, json!([true]));
    assert_eq!(
        alice_ws.join("admin").await?,
        json!(["forbidden: room admin"])
    );
    assert_eq!(
        bob.join("chat:random").await?,
        json!(["forbidden: room chat:random"])
    );
    assert_eq!(
        bob.join("user:alice").await?,
        json!(["forbidden: room user:alice"])
    );
    // A refused join changed nothing: that room's broadcasts do not come.
    emit(&url, &["--to", "admin", "secret", "x"]).await?;
    emit(&url, &["--to", "chat:random", "chat", "y"]).await?;
    emit(&url, &["marker", "2"]).await?;
    let before = alice_ws.events_before("marker", EVENT).await?;
    let names: Vec<&Value> = before.iter().map(|line| &line["event"]).collect();
    assert_eq!(names, [&json!("chat")], "{before:?}");
    alice_polling.nothing_before("marker", EVENT).await?;
    bob.nothing_before("marker", EVENT).await?;

    // Publishes: only to the rooms of the claim.
    assert_eq!(publish(&mut alice_ws, "chat:general").await?, json!([true]));
    assert_eq!(
        publish(&mut alice_ws, "chat:random").await?,
        json!(["forbidden: room chat:random"])
    );
    assert_eq!(
        publish(&mut bob, "chat:general").await?,
        json!(["forbidden: room chat:general"])
    );

    // Relays: bob (no broadcast claim) is not relayed, alice is.
    bob.emit("message", json!(["from bob"])).await?;
    one.wait_metric(
        "socketio_forbidden_total{op=\"message\"}",
        |v| v == 1.0,
        EVENT,
    )
    .await?;
    alice_polling.emit("message", json!(["from alice"])).await?;
    for receiver in [&mut alice_ws, &mut bob] {
        let line = receiver.expect_event("message", EVENT).await?;
        assert_eq!(line["args"], json!(["from alice"]), "{}", receiver.name());
    }
    let metrics = one.scrape().await?;
    for (op, count) in [("join", 3.0), ("publish", 2.0), ("message", 1.0)] {
        let sample = format!("socketio_forbidden_total{{op=\"{op}\"}}");
        let total = metric_sample(&metrics, &sample).unwrap_or(0.0)
            + metric_sample(&two.scrape().await?, &sample).unwrap_or(0.0);
        assert_eq!(total, count, "{sample}");
    }

    // A Node server on the same Redis sees the claims as the sockets' data.
    let mut node = NodePeer::server("node", &url, &url, &[]).await?;
    let sockets = node
        .server_op(
            json!({"op": "fetchSockets", "rooms": ["user:alice"]}),
            EVENT,
        )
        .await?;
    let sockets = sockets.as_array().cloned().unwrap_or_default();
    assert_eq!(sockets.len(), 2, "{sockets:?}");
    for socket in &sockets {
        assert_eq!(socket["data"]["sub"], "alice", "{socket}");
        assert_eq!(socket["data"]["name"], "ALICE", "{socket}");
        assert_eq!(socket["data"]["rooms"], json!(["chat:*"]), "{socket}");
    }
    Ok(())
}
