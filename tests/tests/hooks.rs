//! Backend hooks end to end: a real Node HTTP backend
//! (`tests/node/hook_backend.js`, which checks every call's signature with
//! its own HMAC code) behind real gateways and real `socket.io-client`s.
//! Connect: admitted with rooms and data, refused with the backend's
//! message, refused on a timeout and with the backend down. Events: acks
//! on websocket and polling, binary both ways, 1000 events in order,
//! "backend busy", a 500 as an error ack. Disconnect: once per socket,
//! retried after a 500. With a JWT, the claims reach the connect hook.
//! Over https, the backend's private CA is trusted through
//! `GATEWAY_HOOKS__TLS_CA_FILE`, and only through it.

use std::time::Duration;

use e2e::bins::{gateway_exit, http_get, metric_sample};
use e2e::jwt::TokenKit;
use e2e::wait::wait_until;
use e2e::{free_port, GatewayProcess, NodePeer, PrivateCa};
use emitter::{Emitter, RedisConfig};
use serde_json::{json, Value};

const EVENT: Duration = Duration::from_secs(10);
const SECRET: &str = "the backend's shared secret";

async fn backend() -> anyhow::Result<(NodePeer, String)> {
    let args = ["--secret".to_owned(), SECRET.to_owned()];
    let peer =
        NodePeer::spawn("backend", "hook_backend.js", &args, &[], Some("listening ")).await?;
    let url = peer.http_url()?;
    Ok((peer, url))
}

/// The backend over https, with the server certificate of `ca`.
async fn https_backend(ca: &PrivateCa) -> anyhow::Result<(NodePeer, String)> {
    let args = [
        "--secret".to_owned(),
        SECRET.to_owned(),
        "--tls-key".to_owned(),
        ca.server_key(),
        "--tls-cert".to_owned(),
        ca.server_cert(),
    ];
    let peer = NodePeer::spawn(
        "https-backend",
        "hook_backend.js",
        &args,
        &[],
        Some("listening "),
    )
    .await?;
    let url = format!("https://127.0.0.1:{}", peer.port()?);
    Ok((peer, url))
}

/// The backend's next call of `hook` for `sid`, which must be signed.
async fn call(backend: &mut NodePeer, hook: &str, sid: &str) -> anyhow::Result<Value> {
    let line = backend
        .expect(&format!("{hook} call of {sid}"), EVENT, |line| {
            line["hook"] == hook && line["body"]["socket_id"] == sid
        })
        .await?;
    assert_eq!(line["signed"], true, "{line}");
    Ok(line["body"].clone())
}

async fn hook_metric(gw: &GatewayProcess, name: &str, labels: &str) -> anyhow::Result<f64> {
    let text = gw.scrape().await?;
    Ok(metric_sample(&text, &format!("{name}{{{labels}}}")).unwrap_or(-1.0))
}

async fn requests(gw: &GatewayProcess, hook: &str, outcome: &str) -> anyhow::Result<f64> {
    let labels = format!("hook=\"{hook}\",outcome=\"{outcome}\"");
    hook_metric(gw, "gateway_hook_requests_total", &labels).await
}

fn auth(value: Value) -> [String; 2] {
    ["--auth".to_owned(), value.to_string()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connect_hook_admits_with_rooms_and_data_and_refuses_with_the_backend_word(
) -> anyhow::Result<()> {
    let (mut backend, url) = backend().await?;
    let connect_url = format!("{url}/connect");
    let (master, _replica, gw) = GatewayProcess::with_new_replica(&[
        ("GATEWAY_HOOKS__CONNECT_URL", &connect_url),
        ("GATEWAY_HOOKS__SECRET", SECRET),
        ("GATEWAY_HOOKS__TIMEOUT_MS", "500"),
    ])
    .await?;
    let mut alice_args = auth(json!({"user": "alice"})).to_vec();
    alice_args.extend([
        "--headers".into(),
        json!({"x-forwarded-for": "10.1.2.3", "x-private": "no"}).to_string(),
    ]);
    let args: Vec<&str> = alice_args.iter().map(String::as_str).collect();
    let mut alice = NodePeer::client("alice", &gw.url(), &args).await?;
    let body = call(&mut backend, "connect", alice.ready_value()).await?;
    assert_eq!(body["namespace"], "/");
    assert_eq!(body["auth"], json!({"user": "alice"}));
    assert_eq!(body["query"]["EIO"], "4", "{body}");
    assert_eq!(body["remote_addr"], "127.0.0.1", "{body}");
    // The allow-list only: the forwarded address, not the private header
    // nor the WebSocket handshake's.
    assert_eq!(body["headers"]["x-forwarded-for"], "10.1.2.3", "{body}");
    assert_eq!(body["headers"].get("x-private"), None, "{body}");
    assert_eq!(body["headers"].get("sec-websocket-key"), None, "{body}");
    assert_eq!(body["claims"], Value::Null);

    // The backend's rooms and user room were joined.
    let emitter = Emitter::connect(&RedisConfig::new(master.url())).await?;
    emitter
        .to("team:alice")
        .emit("news", ["for the team"])
        .await?;
    let news = alice.expect_event("news", EVENT).await?;
    assert_eq!(news["args"], json!(["for the team"]));
    emitter
        .to("user:alice")
        .emit("direct", ["for alice"])
        .await?;
    alice.expect_event("direct", EVENT).await?;
    // Its permissions: publish to team:* only (the default would be `*`).
    let refused = alice
        .emit_with_ack(
            "publish",
            json!([{"room": "lobby", "event": "x", "data": 1}]),
            EVENT,
        )
        .await?;
    assert_eq!(refused, json!(["forbidden: room lobby"]));

    let denied = auth(json!({"deny": "go away"}));
    let args: Vec<&str> = denied.iter().map(String::as_str).collect();
    assert_eq!(
        NodePeer::refused_client("denied", &gw.url(), &args).await?,
        "go away"
    );
    let slow = auth(json!({"slow": true}));
    let args: Vec<&str> = slow.iter().map(String::as_str).collect();
    assert_eq!(
        NodePeer::refused_client("slow", &gw.url(), &args).await?,
        "backend unavailable"
    );
    assert_eq!(requests(&gw, "connect", "ok").await?, 1.0);
    assert_eq!(requests(&gw, "connect", "refused").await?, 1.0);
    assert_eq!(requests(&gw, "connect", "timeout").await?, 1.0);

    // Fail closed with the backend gone, and stay up.
    drop(backend);
    let closed_port = free_port()?;
    let down = GatewayProcess::start(
        "down",
        &[(
            "GATEWAY_HOOKS__CONNECT_URL",
            &format!("http://127.0.0.1:{closed_port}/connect"),
        )],
    )
    .await?;
    assert_eq!(
        NodePeer::refused_client("orphan", &down.url(), &[]).await?,
        "backend unavailable"
    );
    assert_eq!(requests(&down, "connect", "unreachable").await?, 1.0);
    assert_eq!(http_get(down.admin_port(), "/healthz").await?.0, 200);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_answered_in_order_with_acks_errors_and_busy() -> anyhow::Result<()> {
    let (mut backend, url) = backend().await?;
    let event_url = format!("{url}/event");
    let gw = GatewayProcess::start(
        "events",
        &[
            ("GATEWAY_HOOKS__EVENT_URL", &event_url),
            ("GATEWAY_HOOKS__EVENTS", "echo,fail,refuse,hold,seq"),
            ("GATEWAY_HOOKS__SECRET", SECRET),
            ("GATEWAY_HOOKS__MAX_INFLIGHT", "2"),
            ("GATEWAY_LIMITS__EVENTS_PER_SECOND", "100000"),
            ("GATEWAY_LIMITS__EVENTS_BURST", "100000"),
        ],
    )
    .await?;
    for transport in ["websocket", "polling"] {
        let mut client =
            NodePeer::client(transport, &gw.url(), &["--transports", transport]).await?;
        let sid = client.ready_value().to_owned();
        let echoed = client
            .emit_with_ack("echo", json!(["hi", {"$bin": "010203"}, {"n": 1}]), EVENT)
            .await?;
        assert_eq!(
            echoed,
            json!(["hi", {"$bin": "010203"}, {"n": 1}]),
            "{transport}"
        );
        let body = call(&mut backend, "event", &sid).await?;
        assert_eq!(body["event"], "echo");
        assert_eq!(body["args"], json!(["hi", {"$binary": "AQID"}, {"n": 1}]));
        assert!(body["rooms"].is_array(), "{body}");
        assert_eq!(
            body["user"],
            Value::Null,
            "no connect hook, no token: no user"
        );
        let failed = client.emit_with_ack("fail", json!([]), EVENT).await?;
        assert_eq!(failed, json!([{"error": "backend error (HTTP 500)"}]));
        let refused = client.emit_with_ack("refuse", json!([]), EVENT).await?;
        assert_eq!(refused, json!([{"error": "refused by backend"}]));
        // Still connected and answered.
        let again = client.emit_with_ack("echo", json!([2]), EVENT).await?;
        assert_eq!(again, json!([2]));
        backend.clear_backlog();
    }

    // Two held events fill MAX_INFLIGHT=2: the third is refused at once.
    let mut busy = NodePeer::client("busy", &gw.url(), &[]).await?;
    for (id, event) in [("h1", "hold"), ("h2", "hold"), ("e3", "echo")] {
        busy.send(
            &json!({"cmd": "emitWithAck", "id": id, "event": event, "args": [], "timeout": 8000}),
        )
        .await?;
    }
    let first = busy
        .expect("an ack", EVENT, |line| line.get("ack").is_some())
        .await?;
    assert_eq!(
        first,
        json!({"ack": "e3", "args": [{"error": "backend busy"}]})
    );
    for id in ["h1", "h2"] {
        let held = busy.expect(id, EVENT, |line| line["ack"] == id).await?;
        assert_eq!(held["args"], json!(["held"]));
    }
    let busy_label = "hook=\"event\",reason=\"busy\"";
    assert_eq!(
        hook_metric(&gw, "gateway_hook_dropped_total", busy_label).await?,
        1.0
    );

    // 1000 events of one socket reach the backend in the order sent (on a
    // gateway whose bound lets them all wait).
    let ordered = GatewayProcess::start(
        "ordered",
        &[
            ("GATEWAY_HOOKS__EVENT_URL", &event_url),
            ("GATEWAY_HOOKS__EVENTS", "seq"),
            ("GATEWAY_HOOKS__SECRET", SECRET),
            ("GATEWAY_HOOKS__MAX_INFLIGHT", "1000"),
            ("GATEWAY_LIMITS__EVENTS_PER_SECOND", "100000"),
            ("GATEWAY_LIMITS__EVENTS_BURST", "100000"),
        ],
    )
    .await?;
    let mut sender = NodePeer::client("sender", &ordered.url(), &[]).await?;
    let sid = sender.ready_value().to_owned();
    backend.clear_backlog();
    sender
        .send(&json!({"cmd": "flood", "event": "seq", "count": 1000, "batch": 100, "args": ["n"], "numbered": true}))
        .await?;
    for n in 0..1000 {
        let body = call(&mut backend, "event", &sid).await?;
        assert_eq!(body["args"], json!([format!("n-{n}")]), "event {n}");
    }
    let busy = hook_metric(&ordered, "gateway_hook_dropped_total", busy_label).await?;
    assert_eq!(busy, 0.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disconnect_hook_is_called_once_per_socket_after_a_retry() -> anyhow::Result<()> {
    let (mut backend, url) = backend().await?;
    let disconnect_url = format!("{url}/disconnect");
    let gw = GatewayProcess::start(
        "disconnects",
        &[
            ("GATEWAY_HOOKS__DISCONNECT_URL", &disconnect_url),
            ("GATEWAY_HOOKS__SECRET", SECRET),
        ],
    )
    .await?;
    let mut client = NodePeer::client("leaver", &gw.url(), &[]).await?;
    let sid = client.ready_value().to_owned();
    client.send(&json!({"cmd": "disconnect"})).await?;
    // The backend answers the first call 500: the gateway retries.
    for _ in 0..2 {
        let body = call(&mut backend, "disconnect", &sid).await?;
        assert_eq!(body["reason"], "client namespace disconnect");
        assert_eq!(body["namespace"], "/");
    }
    wait_until("the retried disconnect counted", EVENT, || async {
        requests(&gw, "disconnect", "ok").await.unwrap_or(0.0) == 1.0
    })
    .await?;
    assert_eq!(requests(&gw, "disconnect", "http_status").await?, 1.0);
    // Once delivered, never again: a later socket's call comes next.
    let mut marker = NodePeer::client("marker", &gw.url(), &[]).await?;
    let marker_sid = marker.ready_value().to_owned();
    marker.send(&json!({"cmd": "disconnect"})).await?;
    let next = backend
        .expect("the next disconnect call", EVENT, |line| {
            line["hook"] == "disconnect"
        })
        .await?;
    assert_eq!(next["body"]["socket_id"], marker_sid.as_str());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_jwt_auth_the_claims_reach_the_connect_hook() -> anyhow::Result<()> {
    const JWT_SECRET: &str = "the gateway's jwt secret";
    let (mut backend, url) = backend().await?;
    let connect_url = format!("{url}/connect");
    let gw = GatewayProcess::start(
        "jwt-hooks",
        &[
            ("GATEWAY_AUTH__JWT_SECRET", JWT_SECRET),
            ("GATEWAY_HOOKS__CONNECT_URL", &connect_url),
            ("GATEWAY_HOOKS__SECRET", SECRET),
        ],
    )
    .await?;
    let kit = TokenKit::new().await?;
    let tokens = kit
        .sign(&json!([{"alg": "HS256", "secret": JWT_SECRET, "claims": {"sub": "carol", "exp": {"in": 600}, "team": "red"}}]))
        .await?;
    let with_token = auth(json!({"token": tokens[0], "user": "carol"}));
    let args: Vec<&str> = with_token.iter().map(String::as_str).collect();
    let carol = NodePeer::client("carol", &gw.url(), &args).await?;
    let body = call(&mut backend, "connect", carol.ready_value()).await?;
    assert_eq!(body["claims"]["sub"], "carol");
    assert_eq!(body["claims"]["team"], "red");
    // A bad token never reaches the backend.
    let forged = auth(json!({"token": "not.a.token"}));
    let args: Vec<&str> = forged.iter().map(String::as_str).collect();
    let refusal = NodePeer::refused_client("forged", &gw.url(), &args).await?;
    assert!(refusal.starts_with("unauthorized"), "{refusal}");
    assert_eq!(requests(&gw, "connect", "ok").await?, 1.0);
    assert_eq!(requests(&gw, "connect", "refused").await?, 0.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_hooks_trust_the_ca_of_tls_ca_file_and_nothing_else() -> anyhow::Result<()> {
    let ca = PrivateCa::new("hooks").await?;
    let (mut backend, url) = https_backend(&ca).await?;
    let (connect_url, event_url) = (format!("{url}/connect"), format!("{url}/event"));
    let hooks = [
        ("GATEWAY_HOOKS__CONNECT_URL", connect_url.as_str()),
        ("GATEWAY_HOOKS__EVENT_URL", event_url.as_str()),
        ("GATEWAY_HOOKS__EVENTS", "echo"),
        ("GATEWAY_HOOKS__SECRET", SECRET),
    ];
    let ca_cert = ca.ca_cert();
    let mut trusting = hooks.to_vec();
    trusting.push(("GATEWAY_HOOKS__TLS_CA_FILE", &ca_cert));
    let gw = GatewayProcess::start("https-hooks", &trusting).await?;
    let admitted = auth(json!({"user": "dave"}));
    let args: Vec<&str> = admitted.iter().map(String::as_str).collect();
    let mut dave = NodePeer::client("dave", &gw.url(), &args).await?;
    let sid = dave.ready_value().to_owned();
    let body = call(&mut backend, "connect", &sid).await?;
    assert_eq!(body["auth"], json!({"user": "dave"}));
    let echoed = dave
        .emit_with_ack("echo", json!(["over https"]), EVENT)
        .await?;
    assert_eq!(echoed, json!(["over https"]));
    assert_eq!(call(&mut backend, "event", &sid).await?["user"], "dave");
    assert_eq!(requests(&gw, "connect", "ok").await?, 1.0);

    // The same backend without the CA: the web roots do not know it, so
    // the certificate is refused and the client is refused, closed.
    let untrusting = GatewayProcess::start("https-untrusting", &hooks).await?;
    let args: Vec<&str> = admitted.iter().map(String::as_str).collect();
    assert_eq!(
        NodePeer::refused_client("untrusted", &untrusting.url(), &args).await?,
        "backend unavailable"
    );
    assert_eq!(requests(&untrusting, "connect", "unreachable").await?, 1.0);
    let logs = untrusting.logs().text();
    assert!(
        logs.contains("UnknownIssuer") || logs.to_lowercase().contains("certificate"),
        "the log says why: {logs}"
    );

    // A CA file that is not there, or holds no certificate, stops the
    // gateway at start with the key's name.
    let key_only = ca.server_key();
    for (file, says) in [
        ("/nonexistent/ca.pem", "cannot read"),
        (key_only.as_str(), "BEGIN CERTIFICATE"),
    ] {
        let mut env = hooks.to_vec();
        env.push(("GATEWAY_HOOKS__TLS_CA_FILE", file));
        let (code, logs) = gateway_exit(&env, Duration::from_secs(30)).await?;
        assert_eq!(code, Some(1), "{logs}");
        assert!(logs.contains("hooks.tls_ca_file"), "{logs}");
        assert!(logs.contains(says), "{says}: {logs}");
    }
    Ok(())
}
