//! Operating the gateway: Prometheus metrics that move with traffic,
//! `/readyz` following Redis, a SIGTERM drain during which clients move
//! to another gateway while emits keep arriving, and a client that stops
//! reading, whose broadcasts are dropped and counted without holding up
//! the others.

use std::time::{Duration, Instant};

use e2e::bins::{http_get, metric_sample};
use e2e::{wait_for, GatewayProcess, NodePeer, RedisServer};
use emitter::{Emitter, RedisConfig};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;

const EVENT: Duration = Duration::from_secs(10);
/// The write stall limit (45 s, engineioxide's ping interval plus ping
/// timeout) with room to spare.
const HEARTBEAT: Duration = Duration::from_secs(75);

/// [`GatewayProcess::wait_metric`] with the event timeout.
async fn wait_metric(
    gateway: &GatewayProcess,
    key: &str,
    want: impl Fn(f64) -> bool,
) -> anyhow::Result<f64> {
    gateway.wait_metric(key, want, EVENT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_the_traffic() -> anyhow::Result<()> {
    let master = RedisServer::master().await?;
    let replica_a = RedisServer::replica_of(&master).await?;
    let replica_b = RedisServer::replica_of(&master).await?;
    let a = GatewayProcess::on_replica("gw-a", &master, &replica_a, &[]).await?;
    let b = GatewayProcess::on_replica("gw-b", &master, &replica_b, &[]).await?;

    let body = a.scrape().await?;
    for name in [
        "socketio_connections_total",
        "socketio_bytes_received_total",
        "socketio_bytes_sent_total",
        "socketio_packets_sent_total",
        "adapter_subscriber_reconnects_total",
        "adapter_cluster_nodes",
    ] {
        assert!(
            body.lines().any(|l| l.starts_with(name)),
            "{name} missing from:\n{body}"
        );
    }
    assert_eq!(
        metric_sample(
            &body,
            &format!("adapter_subscriber_endpoint{{url=\"{}\"}}", replica_a.url())
        ),
        Some(1.0),
        "{body}"
    );

    let mut on_a = NodePeer::client("client-a", &a.url(), &[]).await?;
    let mut on_b = NodePeer::client("client-b", &b.url(), &[]).await?;
    wait_metric(&a, "socketio_connected_sockets{namespace=\"/\"}", |v| {
        v == 1.0
    })
    .await?;
    wait_metric(&a, "socketio_connections_total", |v| v == 1.0).await?;

    let published_before = metric_sample(
        &a.scrape().await?,
        "adapter_redis_published_total{kind=\"broadcast\"}",
    )
    .unwrap_or(0.0);
    for i in 0..5 {
        on_a.emit("message", json!(["m", i])).await?;
        on_b.expect_event("message", EVENT).await?;
    }
    wait_metric(
        &a,
        "adapter_redis_published_total{kind=\"broadcast\"}",
        |v| v >= published_before + 5.0,
    )
    .await?;
    wait_metric(
        &b,
        "adapter_redis_received_total{kind=\"broadcast\"}",
        |v| v >= 5.0,
    )
    .await?;
    wait_metric(&a, "socketio_events_received_total{namespace=\"/\"}", |v| {
        v >= 5.0
    })
    .await?;
    wait_metric(&b, "socketio_bytes_sent_total", |v| v > 0.0).await?;
    // B handed the 5 relayed messages to its one client.
    wait_metric(&b, "socketio_packets_sent_total", |v| v >= 5.0).await?;
    // Own broadcasts echoed by the subscriber are timed, and the replica's
    // lag is sampled (small: nothing is written but these PUBLISHes).
    wait_metric(&a, "adapter_broadcast_delivery_seconds_count", |v| v >= 1.0).await?;
    let lag = wait_metric(&a, "adapter_replication_lag_bytes", |v| v >= 0.0).await?;
    assert!(lag < 1_000_000.0, "replication lag {lag}");
    wait_metric(&a, "socketio_bytes_received_total", |v| v > 0.0).await?;

    // Garbage is counted as decode errors.
    for payload in [b"\xc1".as_slice(), b"\x93\x01\x02\x03"] {
        master
            .command(&[b"PUBLISH".as_slice(), b"socket.io#/#", payload])
            .await?;
    }
    wait_metric(
        &a,
        "adapter_redis_decode_errors_total{kind=\"broadcast\"}",
        |v| v >= 2.0,
    )
    .await?;

    // The gauge comes back down on disconnect, with the reason counted.
    on_a.send(&json!({"cmd": "disconnect"})).await?;
    wait_metric(&a, "socketio_connected_sockets{namespace=\"/\"}", |v| {
        v == 0.0
    })
    .await?;
    wait_metric(
        &a,
        "socketio_disconnections_total{reason=\"client_namespace_disconnect\"}",
        |v| v == 1.0,
    )
    .await?;
    // A client that dies without a word: its transport closes.
    let mut killed = NodePeer::client("killed", &a.url(), &[]).await?;
    wait_metric(&a, "socketio_connected_sockets{namespace=\"/\"}", |v| {
        v == 1.0
    })
    .await?;
    killed.kill().await?;
    // No close frame: the connection just ends.
    wait_metric(
        &a,
        "socketio_disconnections_total{reason=\"transport_error\"}",
        |v| v == 1.0,
    )
    .await?;
    wait_metric(&a, "socketio_connected_sockets{namespace=\"/\"}", |v| {
        v == 0.0
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_redis_connections() -> anyhow::Result<()> {
    let mut master = RedisServer::master().await?;
    // Subscribed on the master itself: stopping it takes the subscriber down.
    let gw = GatewayProcess::start("gw", &[("GATEWAY_REDIS__URL", &master.url())]).await?;
    let port = gw.admin_port();
    let (status, body) = http_get(port, "/readyz").await?;
    assert_eq!(status, 200, "{body}");

    master.kill();
    let body = wait_for("/readyz to turn 503", EVENT, || async {
        let (status, body) = http_get(port, "/readyz").await?;
        Ok((status == 503).then_some(body))
    })
    .await?;
    let reason: Value = serde_json::from_str(&body)?;
    assert_eq!(reason["ready"], json!(false));
    assert!(
        reason["reason"]
            .as_str()
            .is_some_and(|r| r.contains("redis")),
        "{body}"
    );
    assert_eq!(http_get(port, "/healthz").await?.0, 200, "healthz stays up");

    master.restart().await?;
    wait_for(
        "/readyz to be 200 again",
        Duration::from_secs(15),
        || async { Ok((http_get(port, "/readyz").await?.0 == 200).then_some(())) },
    )
    .await?;
    Ok(())
}

/// Parses a client's `message` line `["seq", n]` into `n`.
fn seq_of(line: &Value) -> Option<u64> {
    (line["event"] == "message" && line["args"][0] == "seq")
        .then(|| line["args"][1].as_u64())
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_clients_to_the_other_gateway_without_losing_emits() -> anyhow::Result<()> {
    let master = RedisServer::master().await?;
    let replica_a = RedisServer::replica_of(&master).await?;
    let replica_b = RedisServer::replica_of(&master).await?;
    let drain = Duration::from_millis(2000);
    let drain_ms = drain.as_millis().to_string();
    let mut a = GatewayProcess::on_replica(
        "gw-a",
        &master,
        &replica_a,
        &[("GATEWAY_DRAIN_PERIOD_MS", &drain_ms)],
    )
    .await?;
    let b = GatewayProcess::on_replica("gw-b", &master, &replica_b, &[]).await?;

    let mut movers = Vec::new();
    for i in 0..4 {
        movers.push(
            NodePeer::client(
                &format!("mover-{i}"),
                &a.url(),
                &["--failover-url", &b.url()],
            )
            .await?,
        );
    }
    let mut stayer = NodePeer::client("stayer", &b.url(), &[]).await?;

    let emitter = Emitter::connect(&RedisConfig {
        url: master.url(),
        ..RedisConfig::default()
    })
    .await?;

    a.signal("TERM")?;
    let signalled = Instant::now();
    // Not ready at once, and no new connections.
    // The signal is handled asynchronously: "at once" means within a few
    // scheduler ticks, bounded here at 500 ms.
    let admin = a.admin_port();
    wait_for(
        "/readyz to turn 503 after SIGTERM",
        Duration::from_millis(500),
        || async { Ok((http_get(admin, "/readyz").await?.0 == 503).then_some(())) },
    )
    .await?;
    eprintln!("readyz turned 503 {:?} after SIGTERM", signalled.elapsed());
    let refused = wait_for(
        "new connections to be refused",
        Duration::from_secs(2),
        || async {
            Ok(NodePeer::client("late", &a.url(), &[])
                .await
                .is_err()
                .then_some(()))
        },
    )
    .await;
    assert!(
        refused.is_ok(),
        "gateway A still accepts connections while draining"
    );

    // Emit through the drain and a little after.
    let total: u64 = 40;
    let interval = (drain + Duration::from_millis(1000)) / total as u32;
    for seq in 1..=total {
        emitter
            .emit_json("message", &[json!("seq"), json!(seq)])
            .await?;
        tokio::time::sleep(interval).await;
    }

    let code = a.wait_exit(drain + Duration::from_secs(2)).await?;
    let exited_after = signalled.elapsed();
    eprintln!(
        "gateway A exited with {code:?} {exited_after:?} after SIGTERM (drain period {drain:?})"
    );
    assert_eq!(code, Some(0));
    assert!(exited_after <= drain + Duration::from_secs(2));

    // The stable client got everything.
    for seq in 1..=total {
        stayer
            .expect(&format!("seq {seq}"), EVENT, |l| seq_of(l) == Some(seq))
            .await?;
    }
    // Each mover: no gap while connected to A, none once on B, and it did
    // move to B.
    for mover in &mut movers {
        let moved = mover.expect_event("$connect", EVENT).await?;
        assert_eq!(moved["args"][1], json!(b.url()));
        let last = mover
            .expect("last seq", EVENT, |l| seq_of(l) == Some(total))
            .await?;
        assert_eq!(seq_of(&last), Some(total));
        let mut phases: Vec<Vec<u64>> = vec![Vec::new()];
        for line in mover.backlog().chain(std::iter::once(&last)) {
            if line["event"] == "$disconnect" {
                phases.push(Vec::new());
            } else if let (Some(seq), Some(phase)) = (seq_of(line), phases.last_mut()) {
                phase.push(seq);
            }
        }
        for phase in &phases {
            for pair in phase.windows(2) {
                assert_eq!(
                    pair[1],
                    pair[0] + 1,
                    "{}: gap while connected: {phases:?}",
                    mover.name()
                );
            }
        }
        eprintln!(
            "{}: received while on A {:?}, on B {:?}",
            mover.name(),
            phases.first(),
            phases.last()
        );
    }
    Ok(())
}

/// A Socket.IO client (raw WebSocket, Engine.IO 4) that connects to the
/// default namespace and then never reads again. Its receive buffer is
/// pinned small so the gateway's writes back up quickly.
async fn stalled_client(
    gateway: &GatewayProcess,
) -> anyhow::Result<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>> {
    let address: std::net::SocketAddr = gateway.url().trim_start_matches("http://").parse()?;
    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    let stream = socket.connect(address).await?;
    let url = format!("ws://{address}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await?;
    // engineioxide pings right after OPEN: answer, and wait for CONNECT.
    let mut open = None;
    ws.send(Message::text("40")).await?;
    loop {
        let text = match tokio::time::timeout(EVENT, ws.next()).await? {
            Some(Ok(Message::Text(text))) => text.to_string(),
            Some(Ok(_)) => continue,
            Some(Err(err)) => return Err(err.into()),
            None => anyhow::bail!("closed before the handshake ended"),
        };
        match text.as_bytes().first() {
            Some(b'0') => open = Some(text),
            Some(b'2') => ws.send(Message::text("3")).await?,
            _ if text.starts_with("40") => break,
            _ => anyhow::bail!("unexpected packet during the handshake: {text}"),
        }
    }
    anyhow::ensure!(open.is_some(), "CONNECT came before OPEN");
    Ok(ws)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_loses_its_broadcasts_counted_and_others_get_all(
) -> anyhow::Result<()> {
    // 150 broadcasts of 64 KiB (9.6 MB) outgrow what the kernel buffers for
    // the stalled socket (send buffer at most 4 MiB here, receive 4 KiB)
    // plus a 4-packet client buffer.
    const FLOOD: usize = 150;
    let (master, _replica, gw) =
        GatewayProcess::with_new_replica(&[("GATEWAY_CLIENT_BUFFER_PACKETS", "4")]).await?;
    let stalled = stalled_client(&gw).await?;
    let mut reader = NodePeer::client("reader", &gw.url(), &[]).await?;
    wait_metric(&gw, "socketio_connected_sockets{namespace=\"/\"}", |v| {
        v == 2.0
    })
    .await?;

    let emitter = Emitter::connect(&RedisConfig {
        url: master.url(),
        ..RedisConfig::default()
    })
    .await?;
    let filler = "x".repeat(64 * 1024);
    // In lockstep with the client that reads, so that only the stalled one
    // ever has packets waiting: it loses broadcasts, the reader none.
    for i in 0..FLOOD {
        emitter
            .emit_json("message", &[json!(i), json!(filler)])
            .await?;
        let event = reader.expect_event("message", EVENT).await?;
        assert_eq!(event["args"][0], json!(i), "message {i}");
    }
    wait_metric(
        &gw,
        "socketio_packets_dropped_total{reason=\"client_buffer_full\"}",
        |v| v >= 1.0,
    )
    .await?;
    // Every broadcast had two recipients: each was either handed over
    // (socketio_packets_sent_total) or dropped, never both.
    let (sent, dropped) = wait_for(
        "sent + dropped to account for every recipient",
        EVENT,
        || async {
            let body = gw.scrape().await?;
            let sent = metric_sample(&body, "socketio_packets_sent_total").unwrap_or(0.0);
            let dropped = metric_sample(
                &body,
                "socketio_packets_dropped_total{reason=\"client_buffer_full\"}",
            )
            .unwrap_or(0.0);
            Ok((sent + dropped == 2.0 * FLOOD as f64).then_some((sent, dropped)))
        },
    )
    .await?;
    assert!(sent >= FLOOD as f64, "sent {sent}");
    eprintln!("stalled client: {dropped} of {FLOOD} broadcasts dropped; {sent} packets sent");
    // Its ping cannot be queued either, so its heartbeat fails (25 s after
    // it connected), and once its connection has taken no byte for the
    // gateway's write stall limit (45 s) the session ends, counted as a
    // heartbeat timeout; the reader stays. Measured: about 45 s after the
    // flood.
    let stalled_at = Instant::now();
    gw.wait_metric(
        "socketio_disconnections_total{reason=\"heartbeat_timeout\"}",
        |v| v == 1.0,
        HEARTBEAT,
    )
    .await?;
    eprintln!(
        "stalled client closed {:?} after the flood",
        stalled_at.elapsed()
    );
    wait_metric(&gw, "socketio_connected_sockets{namespace=\"/\"}", |v| {
        v == 1.0
    })
    .await?;
    drop(stalled);
    Ok(())
}
