//! The gateway's configuration keys, each shown to change what the gateway
//! does: single-node mode without Redis, `NAMESPACES` and `/cluster/nodes?nsp=`,
//! `REDIS__PREFIX`, `REDIS__LEGACY_EMITTER` left off, `LOG__FORMAT=json`,
//! `CORS_ORIGINS`, `WS_READ_BUFFER_BYTES` and `subscriber_selection=random`.
//! Negative checks use a marker sent after what must not arrive.

use std::time::Duration;

use e2e::bins::{http_exchange, http_get};
use e2e::{GatewayProcess, NodePeer, RedisServer};
use emitter::{Emitter, RedisConfig};
use serde_json::{json, Value};

const EVENT: Duration = Duration::from_secs(10);

async fn admin_json(gateway: &GatewayProcess, path: &str) -> anyhow::Result<(u16, Value)> {
    let (status, body) = http_get(gateway.admin_port(), path).await?;
    let value =
        serde_json::from_str(&body).map_err(|err| anyhow::anyhow!("{path}: {err}: {body}"))?;
    Ok((status, value))
}

async fn emitter(master: &RedisServer, prefix: &str) -> anyhow::Result<Emitter> {
    Ok(Emitter::connect(&RedisConfig::new(master.url()).with_prefix(prefix)).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_one_gateway_relays_and_says_it_is_single() -> anyhow::Result<()> {
    let gw = GatewayProcess::start("single", &[]).await?;
    let mut a = NodePeer::client("a", &gw.url(), &[]).await?;
    let mut b = NodePeer::client("b", &gw.url(), &["--transports", "polling"]).await?;
    a.emit("message", json!(["hello alone"])).await?;
    let event = b.expect_event("message", EVENT).await?;
    assert_eq!(event["args"], json!(["hello alone"]), "{event}");
    b.emit("message", json!(["back"])).await?;
    a.expect_event("message", EVENT).await?;

    assert_eq!(
        admin_json(&gw, "/readyz").await?,
        (200, json!({"ready": true, "mode": "single"}))
    );
    assert_eq!(
        admin_json(&gw, "/cluster/nodes").await?,
        (200, json!({"nodes": 1, "mode": "single"}))
    );
    let metrics = gw.scrape().await?;
    assert!(
        !metrics.contains("adapter_publisher_connected"),
        "no adapter series without Redis:\n{metrics}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_are_served_where_listed_and_counted_per_namespace() -> anyhow::Result<()> {
    let master = RedisServer::master().await?;
    let replica = RedisServer::replica_of(&master).await?;
    let a = GatewayProcess::on_replica(
        "gw-a",
        &master,
        &replica,
        &[("GATEWAY_NAMESPACES", "/,/chat")],
    )
    .await?;
    let b = GatewayProcess::on_replica("gw-b", &master, &replica, &[]).await?;

    let mut chat_1 = NodePeer::client("chat-1", &a.url(), &["--nsp", "/chat"]).await?;
    let mut chat_2 = NodePeer::client("chat-2", &a.url(), &["--nsp", "/chat"]).await?;
    let mut main = NodePeer::client("main", &a.url(), &[]).await?;
    chat_1.emit("message", json!(["in chat"])).await?;
    chat_2.expect_event("message", EVENT).await?;
    // Not in the main namespace: a main-namespace message after it is
    // the first thing `main` sees.
    let mut main_b = NodePeer::client("main-b", &b.url(), &[]).await?;
    main_b.emit("message", json!(["marker-main"])).await?;
    let event = main.expect_event("message", EVENT).await?;
    assert_eq!(event["args"], json!(["marker-main"]), "{event}");

    let refused = NodePeer::refused_client("chat-b", &b.url(), &["--nsp", "/chat"]).await?;
    assert!(refused.contains("Invalid namespace"), "{refused}");

    for gateway in [&a, &b] {
        assert_eq!(
            admin_json(gateway, "/cluster/nodes").await?,
            (200, json!({"nodes": 2}))
        );
        assert_eq!(
            admin_json(gateway, "/cluster/nodes?nsp=/chat").await?,
            (200, json!({"nodes": 1}))
        );
        assert_eq!(
            admin_json(gateway, "/cluster/nodes?nsp=/nobody").await?,
            (200, json!({"nodes": 0}))
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_keeps_clusters_on_one_redis_apart() -> anyhow::Result<()> {
    let (master, replica, gw) =
        GatewayProcess::with_new_replica(&[("GATEWAY_REDIS__PREFIX", "app1")]).await?;
    let mut client = NodePeer::client("client", &gw.url(), &[]).await?;

    emitter(&master, "socket.io")
        .await?
        .emit("other-cluster", ["x"])
        .await?;
    emitter(&master, "app1")
        .await?
        .emit("marker-app1", ["y"])
        .await?;
    client.nothing_before("marker-app1", EVENT).await?;
    assert_eq!(replica.numsub("app1-request#/#").await?, 1);
    assert_eq!(replica.numsub("socket.io-request#/#").await?, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_2014_emitter_is_ignored_unless_enabled() -> anyhow::Result<()> {
    let (master, replica, gw) = GatewayProcess::with_new_replica(&[]).await?;
    let mut client = NodePeer::client("client", &gw.url(), &[]).await?;

    let mut legacy = NodePeer::legacy_emitter(&master).await?;
    legacy
        .send(&json!({"id": 1, "event": "legacy", "args": ["old"]}))
        .await?;
    let done = legacy
        .expect("done", EVENT, |line| line["done"] == 1)
        .await?;
    assert!(done.get("error").is_none(), "{done}");
    emitter(&master, "socket.io")
        .await?
        .emit("marker-legacy", ["after"])
        .await?;
    client.nothing_before("marker-legacy", EVENT).await?;
    assert_eq!(replica.numsub("socket.io#emitter").await?, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line() -> anyhow::Result<()> {
    let gw = GatewayProcess::start("json", &[("GATEWAY_LOG__FORMAT", "json")]).await?;
    let mut client = NodePeer::client("client", &gw.url(), &[]).await?;
    client.join("lobby").await?;
    let text = gw.logs().text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 2, "too few log lines:\n{text}");
    for line in lines {
        let entry: Value = serde_json::from_str(line)
            .map_err(|err| anyhow::anyhow!("not JSON ({err}): {line}"))?;
        assert!(entry["level"].is_string(), "{line}");
        assert!(entry["timestamp"].is_string(), "{line}");
        assert!(entry["fields"].is_object(), "{line}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_headers_go_to_the_listed_origins_only() -> anyhow::Result<()> {
    const ALLOWED: &str = "https://app.example";
    let gw = GatewayProcess::start("cors", &[("GATEWAY_CORS_ORIGINS", ALLOWED)]).await?;
    let handshake = "/socket.io/?EIO=4&transport=polling";
    let allowed = http_exchange(gw.port(), "GET", handshake, &[("Origin", ALLOWED)], None).await?;
    assert_eq!(allowed.status, 200, "{allowed:?}");
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some(ALLOWED),
        "{allowed:?}"
    );
    let other = http_exchange(
        gw.port(),
        "GET",
        handshake,
        &[("Origin", "https://evil.example")],
        None,
    )
    .await?;
    assert_eq!(
        other.header("access-control-allow-origin"),
        None,
        "{other:?}"
    );
    // A browser's preflight for the polling POST.
    let preflight = http_exchange(
        gw.port(),
        "OPTIONS",
        handshake,
        &[
            ("Origin", ALLOWED),
            ("Access-Control-Request-Method", "POST"),
        ],
        None,
    )
    .await?;
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some(ALLOWED),
        "{preflight:?}"
    );

    // Without the key no origin is allowed.
    let closed = GatewayProcess::start("no-cors", &[]).await?;
    let response = http_exchange(
        closed.port(),
        "GET",
        handshake,
        &[("Origin", ALLOWED)],
        None,
    )
    .await?;
    assert_eq!(
        response.header("access-control-allow-origin"),
        None,
        "{response:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_longer_than_the_websocket_read_buffer_arrive_whole_and_in_order(
) -> anyhow::Result<()> {
    let gw =
        GatewayProcess::start("small-buffer", &[("GATEWAY_WS_READ_BUFFER_BYTES", "64")]).await?;
    let mut a = NodePeer::client("a", &gw.url(), &[]).await?;
    let mut b = NodePeer::client("b", &gw.url(), &[]).await?;
    // 200 kB read 64 bytes at a time, and a short one after it.
    let long: String = (0..200_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    // Long and short in turn; they arrive whole and in the order sent
    // (socketioxide runs each event's handler in a task of its own, and
    // without the gateway's relay queue a short one overtook the long one).
    let sent: Vec<String> = (0..6)
        .map(|i| {
            if i % 2 == 0 {
                format!("{i}{long}")
            } else {
                format!("short-{i}")
            }
        })
        .collect();
    for text in &sent {
        a.emit("message", json!([text])).await?;
    }
    for (i, text) in sent.iter().enumerate() {
        let event = b.expect_event("message", EVENT).await?;
        let got = event["args"][0].as_str().unwrap_or_default();
        assert!(
            got == text,
            "message {i}: got {} bytes starting {:?}, sent {} bytes",
            got.len(),
            &got[..got.len().min(12)],
            text.len()
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_selection_subscribes_on_a_replica_never_the_master() -> anyhow::Result<()> {
    let master = RedisServer::master().await?;
    let replicas = [
        RedisServer::replica_of(&master).await?,
        RedisServer::replica_of(&master).await?,
    ];
    let urls = format!("{},{}", replicas[0].url(), replicas[1].url());
    let master_url = master.url();
    let mut gateways = Vec::new();
    for name in ["gw-1", "gw-2", "gw-3"] {
        gateways.push(
            GatewayProcess::start(
                name,
                &[
                    ("GATEWAY_REDIS__URL", master_url.as_str()),
                    ("GATEWAY_REDIS__REPLICA_URLS", urls.as_str()),
                    ("GATEWAY_REDIS__SUBSCRIBER_SELECTION", "random"),
                ],
            )
            .await?,
        );
    }
    let channel = "socket.io-request#/#";
    let on_replicas = replicas[0].numsub(channel).await? + replicas[1].numsub(channel).await?;
    assert_eq!(on_replicas, 3, "each gateway subscribes on one replica");
    assert_eq!(master.numsub(channel).await?, 0, "none on the master");
    Ok(())
}
