//! Emitters pushing into Rust gateways: the Rust emitter (library, CLI and
//! HTTP service), Node's `@socket.io/redis-emitter` 5.x and the seed's 2014
//! `socket.io-emitter` 0.2.0, against two gateways on different replicas,
//! with real Node clients on both.
//!
//! "Did not receive" is proven without fixed waits: after each targeted
//! emit, a marker goes to everyone; a client that got the marker would have
//! got the targeted event first (one publisher connection, one subscriber
//! per gateway, so order is kept), so it must not be in its backlog.

use std::process::Stdio;
use std::time::Duration;

use e2e::bins::{bin_path, http_get, http_request, run_emitter};
use e2e::{free_port, wait_for, GatewayProcess, NodePeer, RedisServer};
use emitter::{Emitter, RedisConfig};
use serde_json::{json, Value};
use tokio::process::Command;

const EVENT: Duration = Duration::from_secs(10);

struct Cluster {
    master: RedisServer,
    _replicas: Vec<RedisServer>,
    a: GatewayProcess,
    b: GatewayProcess,
}

impl Cluster {
    async fn start() -> anyhow::Result<Self> {
        let master = RedisServer::master().await?;
        let r1 = RedisServer::replica_of(&master).await?;
        let r2 = RedisServer::replica_of(&master).await?;
        let url = master.url();
        let gateway = |name: &'static str, replica: String| {
            let url = url.clone();
            async move {
                GatewayProcess::start(
                    name,
                    &[
                        ("GATEWAY_REDIS__URL", url.as_str()),
                        ("GATEWAY_REDIS__REPLICA_URLS", replica.as_str()),
                        ("GATEWAY_REDIS__LEGACY_EMITTER", "true"),
                    ],
                )
                .await
            }
        };
        let a = gateway("gw-a", r1.url()).await?;
        let b = gateway("gw-b", r2.url()).await?;
        Ok(Self {
            master,
            _replicas: vec![r1, r2],
            a,
            b,
        })
    }
}

/// Clients: `a1` (rooms r1) and `a2` (r2) on gateway A, `b1` (r1) on B.
struct Clients {
    a1: NodePeer,
    a2: NodePeer,
    b1: NodePeer,
}

impl Clients {
    async fn connect(cluster: &Cluster) -> anyhow::Result<Self> {
        let mut a1 = NodePeer::client("a1", &cluster.a.url(), &[]).await?;
        let mut a2 = NodePeer::client("a2", &cluster.a.url(), &[]).await?;
        let mut b1 = NodePeer::client("b1", &cluster.b.url(), &[]).await?;
        assert_eq!(a1.join("r1").await?, json!([true]));
        assert_eq!(a2.join("r2").await?, json!([true]));
        assert_eq!(b1.join("r1").await?, json!([true]));
        Ok(Self { a1, a2, b1 })
    }

    fn all(&mut self) -> [&mut NodePeer; 3] {
        [&mut self.a1, &mut self.a2, &mut self.b1]
    }
}

/// Waits for `event` with `args` on each of `peers`.
async fn expect_on(peers: &mut [&mut NodePeer], event: &str, args: &Value) -> anyhow::Result<()> {
    for peer in peers.iter_mut() {
        let got = peer
            .expect(&format!("{event} {args}"), EVENT, |l| {
                l["event"] == event && &l["args"] == args
            })
            .await?;
        assert_eq!(&got["args"], args, "{}", peer.name());
    }
    Ok(())
}

/// Checks that `peer` received `marker` and no `event` before it.
async fn expect_not_before_marker(
    peer: &mut NodePeer,
    event: &str,
    marker: &Value,
) -> anyhow::Result<()> {
    peer.expect("marker", EVENT, |l| {
        l["event"] == "marker" && &l["args"] == marker
    })
    .await?;
    let unwanted: Vec<&Value> = peer.backlog().filter(|l| l["event"] == event).collect();
    assert!(
        unwanted.is_empty(),
        "{} received {event}: {unwanted:?}",
        peer.name()
    );
    Ok(())
}

/// What an emitter under test can be asked to do.
enum Driver {
    Rust(Emitter),
    Node(Box<NodePeer>),
}

impl Driver {
    /// `{"op": emit|socketsJoin|socketsLeave|disconnectSockets|serverSideEmit, rooms, except, volatile, event, args, target, close}`
    /// with binary arguments as `{"$bin": hex}`.
    async fn run(&mut self, command: Value) -> anyhow::Result<()> {
        match self {
            Driver::Node(peer) => {
                let id = rand_id();
                let mut command = command;
                command["id"] = json!(id);
                peer.send(&command).await?;
                let reply = peer.expect("done", EVENT, |l| l["done"] == id).await?;
                anyhow::ensure!(reply.get("error").is_none(), "node emitter: {reply}");
                Ok(())
            }
            Driver::Rust(emitter) => {
                let strings = |key: &str| -> Vec<String> {
                    command[key]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|r| r.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let mut op = emitter.to(strings("rooms")).except(strings("except"));
                if command["volatile"] == json!(true) {
                    op = op.volatile();
                }
                let args: Vec<Value> = command["args"]
                    .as_array()
                    .map(|a| a.iter().map(bin_to_base64).collect())
                    .unwrap_or_default();
                let event = command["event"].as_str().unwrap_or_default();
                match command["op"].as_str() {
                    Some("emit") => op.emit_json(event, &args).await?,
                    Some("socketsJoin") => op.sockets_join(strings("target")).await?,
                    Some("socketsLeave") => op.sockets_leave(strings("target")).await?,
                    Some("disconnectSockets") => {
                        op.disconnect_sockets(command["close"] == json!(true))
                            .await?
                    }
                    Some("serverSideEmit") => emitter.server_side_emit(event, args).await?,
                    other => anyhow::bail!("unknown op {other:?}"),
                };
                Ok(())
            }
        }
    }
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn hex_to_bytes(hex: &str) -> Vec<u8> {
    e2e::from_hex(hex).unwrap_or_default()
}

/// `{"$bin": hex}` (the Node peers' convention) to the Rust emitter's
/// `{"$binary": base64}`.
fn bin_to_base64(value: &Value) -> Value {
    use base64::Engine as _;
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key("$bin") => {
            let bytes = hex_to_bytes(map["$bin"].as_str().unwrap_or_default());
            json!({"$binary": base64::engine::general_purpose::STANDARD.encode(bytes)})
        }
        Value::Array(items) => Value::Array(items.iter().map(bin_to_base64).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), bin_to_base64(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

async fn server_side_emits(gateway: &GatewayProcess) -> anyhow::Result<f64> {
    let (_, body) = http_get(gateway.admin_port(), "/metrics").await?;
    Ok(body
        .lines()
        .find_map(|l| l.strip_prefix("socketio_server_side_emits_received_total{namespace=\"/\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0))
}

/// Every call kind of an emitter, checked on clients of both gateways.
async fn every_call_kind(cluster: &Cluster, driver: &mut Driver) -> anyhow::Result<()> {
    let mut clients = Clients::connect(cluster).await?;

    // To everyone.
    driver
        .run(json!({"op": "emit", "event": "hello", "args": ["all", 1, {"k": [true, null]}]}))
        .await?;
    expect_on(
        &mut clients.all(),
        "hello",
        &json!(["all", 1, {"k": [true, null]}]),
    )
    .await?;

    // One room, on both gateways; a2 is not in it.
    driver
        .run(json!({"op": "emit", "rooms": ["r1"], "event": "room", "args": ["r1 only"]}))
        .await?;
    expect_on(
        &mut [&mut clients.a1, &mut clients.b1],
        "room",
        &json!(["r1 only"]),
    )
    .await?;
    driver
        .run(json!({"op": "emit", "event": "marker", "args": [1]}))
        .await?;
    expect_not_before_marker(&mut clients.a2, "room", &json!([1])).await?;

    // Two rooms with an exception.
    driver.run(json!({"op": "emit", "rooms": ["r1", "r2"], "except": ["r1"], "event": "except", "args": ["not r1"]})).await?;
    expect_on(&mut [&mut clients.a2], "except", &json!(["not r1"])).await?;
    driver
        .run(json!({"op": "emit", "event": "marker", "args": [2]}))
        .await?;
    expect_not_before_marker(&mut clients.a1, "except", &json!([2])).await?;
    expect_not_before_marker(&mut clients.b1, "except", &json!([2])).await?;

    // Binary, and volatile.
    let binary = json!(["bytes", {"$bin": "00ff7f"}, {"nested": {"$bin": "0102"}}]);
    driver
        .run(json!({"op": "emit", "event": "bin", "args": binary}))
        .await?;
    expect_on(&mut clients.all(), "bin", &binary).await?;
    driver
        .run(json!({"op": "emit", "volatile": true, "event": "vol", "args": ["v"]}))
        .await?;
    expect_on(&mut clients.all(), "vol", &json!(["v"])).await?;

    // socketsJoin: r1 members join r3 on both gateways; then leave it.
    driver
        .run(json!({"op": "socketsJoin", "rooms": ["r1"], "target": ["r3"]}))
        .await?;
    driver
        .run(json!({"op": "emit", "rooms": ["r3"], "event": "r3", "args": ["joined"]}))
        .await?;
    expect_on(
        &mut [&mut clients.a1, &mut clients.b1],
        "r3",
        &json!(["joined"]),
    )
    .await?;
    driver
        .run(json!({"op": "emit", "event": "marker", "args": [3]}))
        .await?;
    expect_not_before_marker(&mut clients.a2, "r3", &json!([3])).await?;
    driver
        .run(json!({"op": "socketsLeave", "rooms": ["r3"], "target": ["r3"]}))
        .await?;
    driver
        .run(json!({"op": "emit", "rooms": ["r3"], "event": "r3-after", "args": ["left"]}))
        .await?;
    driver
        .run(json!({"op": "emit", "event": "marker", "args": [4]}))
        .await?;
    for peer in clients.all() {
        expect_not_before_marker(peer, "r3-after", &json!([4])).await?;
    }

    // Server-side emit reaches both gateways' handlers.
    let before = (
        server_side_emits(&cluster.a).await?,
        server_side_emits(&cluster.b).await?,
    );
    driver
        .run(json!({"op": "serverSideEmit", "event": "sync", "args": [1]}))
        .await?;
    wait_for("server-side emit on both gateways", EVENT, || async {
        let now = (
            server_side_emits(&cluster.a).await?,
            server_side_emits(&cluster.b).await?,
        );
        Ok((now.0 > before.0 && now.1 > before.1).then_some(()))
    })
    .await?;

    // disconnectSockets: only r2 (a2) goes.
    driver
        .run(json!({"op": "disconnectSockets", "rooms": ["r2"], "close": true}))
        .await?;
    clients.a2.expect_event("$disconnect", EVENT).await?;
    driver
        .run(json!({"op": "emit", "event": "marker", "args": [5]}))
        .await?;
    for peer in [&mut clients.a1, &mut clients.b1] {
        expect_not_before_marker(peer, "$disconnect", &json!([5])).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_emitter_library_reaches_every_gateway() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let emitter = Emitter::connect(&RedisConfig {
        url: cluster.master.url(),
        ..RedisConfig::default()
    })
    .await?;
    every_call_kind(&cluster, &mut Driver::Rust(emitter)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_redis_emitter_reaches_every_gateway() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let node = NodePeer::redis_emitter(&cluster.master).await?;
    every_call_kind(&cluster, &mut Driver::Node(Box::new(node))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_emitter_cli_and_http_service_reach_every_gateway() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let mut clients = Clients::connect(&cluster).await?;
    let redis = cluster.master.url();

    // The seed's line, through the CLI.
    let (code, _, stderr) = run_emitter(
        &["emit", "--redis", &redis, "message", "Hello!"],
        &[],
        EVENT,
    )
    .await?;
    assert_eq!(code, Some(0), "{stderr}");
    expect_on(&mut clients.all(), "message", &json!(["Hello!"])).await?;
    let (code, _, stderr) = run_emitter(
        &[
            "emit",
            "--redis",
            &redis,
            "--to",
            "r1",
            "room",
            "{\"n\":1}",
            "2",
        ],
        &[],
        EVENT,
    )
    .await?;
    assert_eq!(code, Some(0), "{stderr}");
    expect_on(
        &mut [&mut clients.a1, &mut clients.b1],
        "room",
        &json!([{"n": 1}, 2]),
    )
    .await?;

    // The HTTP service.
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let mut service = Command::new(bin_path("emitter").await?)
        .args(["serve", "--listen", &listen, "--redis", &redis])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    wait_for("emitter service /readyz", EVENT, || async {
        Ok((http_get(port, "/readyz").await?.0 == 200).then_some(()))
    })
    .await?;
    let body = json!({"rooms": ["r1"], "except": [], "event": "http", "args": ["via http", {"$binary": "AQI="}]}).to_string();
    let (status, answer) = http_request(
        port,
        "POST",
        "/v1/emit",
        &[("Content-Type", "application/json")],
        Some(&body),
    )
    .await?;
    assert_eq!(status, 202, "{answer}");
    expect_on(
        &mut [&mut clients.a1, &mut clients.b1],
        "http",
        &json!(["via http", {"$bin": "0102"}]),
    )
    .await?;
    let body = json!({"rooms": ["r2"], "target_rooms": ["r9"]}).to_string();
    let (status, answer) = http_request(
        port,
        "POST",
        "/v1/sockets/join",
        &[("Content-Type", "application/json")],
        Some(&body),
    )
    .await?;
    assert_eq!(status, 202, "{answer}");
    let body = json!({"rooms": ["r9"], "event": "r9", "args": []}).to_string();
    http_request(
        port,
        "POST",
        "/v1/emit",
        &[("Content-Type", "application/json")],
        Some(&body),
    )
    .await?;
    expect_on(&mut [&mut clients.a2], "r9", &json!([])).await?;
    service.kill().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_2014_emitter_reaches_gateways_with_the_legacy_option() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let mut clients = Clients::connect(&cluster).await?;
    let mut legacy = NodePeer::legacy_emitter(&cluster.master).await?;
    async fn run(legacy: &mut NodePeer, mut command: Value) -> anyhow::Result<()> {
        let id = rand_id();
        command["id"] = json!(id);
        legacy.send(&command).await?;
        let reply = legacy.expect("done", EVENT, |l| l["done"] == id).await?;
        anyhow::ensure!(reply.get("error").is_none(), "legacy emitter: {reply}");
        Ok(())
    }

    run(&mut legacy, json!({"event": "message", "args": ["Hello!"]})).await?;
    expect_on(&mut clients.all(), "message", &json!(["Hello!"])).await?;
    run(
        &mut legacy,
        json!({"rooms": ["r1"], "event": "room", "args": ["r1", {"$bin": "010203"}]}),
    )
    .await?;
    expect_on(
        &mut [&mut clients.a1, &mut clients.b1],
        "room",
        &json!(["r1", {"$bin": "010203"}]),
    )
    .await?;
    run(&mut legacy, json!({"event": "marker", "args": [1]})).await?;
    expect_not_before_marker(&mut clients.a2, "room", &json!([1])).await?;
    Ok(())
}
