//! Abuse limits at their boundaries, on real gateways with real Node
//! clients: rooms per socket, the event rate (drops, then a disconnect after
//! the grace), and the largest packet, on websocket and long-polling.

use std::time::Duration;

use e2e::{
    bins::{engine_sid, http_get, http_request, metric_sample},
    GatewayProcess, NodePeer,
};
use serde_json::json;

const EVENT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_per_socket_stop_at_the_limit() -> anyhow::Result<()> {
    let gateway = GatewayProcess::start(
        "limits-rooms",
        &[("GATEWAY_LIMITS__MAX_ROOMS_PER_SOCKET", "3")],
    )
    .await?;
    let mut a = NodePeer::client("a", &gateway.url(), &[]).await?;
    let mut b = NodePeer::client("b", &gateway.url(), &[]).await?;
    for room in ["r1", "r2", "r3"] {
        assert_eq!(a.join(room).await?, json!([true]), "{room}");
    }
    let refused = json!(["limit: too many rooms for this socket"]);
    assert_eq!(a.join("r4").await?, refused);
    // Joining a room it is in costs nothing; leaving makes room.
    assert_eq!(a.join("r1").await?, json!([true]));
    assert_eq!(a.leave("r1").await?, json!([true]));
    assert_eq!(a.join("r4").await?, json!([true]));
    assert_eq!(a.join("r5").await?, refused);
    // Other sockets have their own count.
    assert_eq!(b.join("r5").await?, json!([true]));
    let metrics = gateway.scrape().await?;
    assert_eq!(
        metric_sample(&metrics, "socketio_limited_total{limit=\"rooms\"}"),
        Some(2.0)
    );
    Ok(())
}

/// The gateway's resident memory, from /proc.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/{pid}/status"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_joins_cost_a_hundred_rooms() -> anyhow::Result<()> {
    // The rate limit out of the way: this is about the room limit.
    let gateway = GatewayProcess::start(
        "limits-rss",
        &[
            ("GATEWAY_LIMITS__EVENTS_PER_SECOND", "1000000"),
            ("GATEWAY_LIMITS__EVENTS_BURST", "1000000"),
        ],
    )
    .await?;
    let pid = gateway.pid().ok_or_else(|| anyhow::anyhow!("no pid"))?;
    let mut joiner = NodePeer::client("joiner", &gateway.url(), &[]).await?;
    // Twice 20,000 joins of distinct 200-byte names, fifty a millisecond.
    // Without the limit each pass would keep about 15 MB of rooms (200,000
    // joins: 9 MB to 157 MB); with it the second pass keeps nothing, and
    // RSS moves only by the packets in flight (a few MB, by scheduling).
    // The bound: half of what an unlimited pass keeps.
    let mut rss = Vec::new();
    for (pass, prefix) in [(1, "a"), (2, "b")] {
        let name = prefix.repeat(194);
        joiner
            .send(&json!({"cmd": "flood", "event": "join", "args": [name], "count": 20_000, "batch": 50, "intervalMs": 1, "numbered": true}))
            .await?;
        joiner
            .expect("the joins sent", Duration::from_secs(60), |l| {
                l["flooded"] == 20_000
            })
            .await?;
        let refused = if pass == 1 { 19_900.0 } else { 39_900.0 };
        gateway
            .wait_metric(
                "socketio_limited_total{limit=\"rooms\"}",
                |v| v == refused,
                Duration::from_secs(30),
            )
            .await?;
        rss.push(rss_kib(pid)?);
    }
    eprintln!("[limits-rss] gateway RSS after each pass of 20,000 joins: {rss:?} KiB");
    assert!(rss[1] < rss[0] + 7680, "RSS {rss:?} KiB");
    assert_eq!(
        joiner.join("r-last").await?,
        json!(["limit: too many rooms for this socket"])
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_over_the_rate_are_dropped_then_the_flooder_is_disconnected() -> anyhow::Result<()> {
    let gateway = GatewayProcess::start(
        "limits-rate",
        &[
            ("GATEWAY_LIMITS__EVENTS_PER_SECOND", "1"),
            ("GATEWAY_LIMITS__EVENTS_BURST", "5"),
            ("GATEWAY_LIMITS__EVENTS_GRACE_S", "1"),
        ],
    )
    .await?;
    let mut flooder = NodePeer::client("flooder", &gateway.url(), &[]).await?;
    let mut receiver = NodePeer::client("receiver", &gateway.url(), &[]).await?;

    // Six at once against a burst of five (and a refill of one a second):
    // five relayed, one dropped.
    flooder
        .send(&json!({"cmd": "flood", "event": "message", "args": ["burst"], "count": 6}))
        .await?;
    flooder
        .expect("the flood", EVENT, |l| l["flooded"] == 6)
        .await?;
    gateway
        .wait_metric(
            "socketio_limited_total{limit=\"rate\"}",
            |v| v == 1.0,
            EVENT,
        )
        .await?;
    for _ in 0..5 {
        receiver.expect_event("message", EVENT).await?;
    }
    let metrics = gateway.scrape().await?;
    assert_eq!(
        metric_sample(&metrics, "socketio_events_received_total{namespace=\"/\"}"),
        Some(6.0)
    );

    // Fifty a second for three seconds: dropped all along, so disconnected
    // once the one-second grace is over.
    flooder
        .send(&json!({"cmd": "flood", "event": "message", "args": ["flood"], "count": 150, "intervalMs": 20}))
        .await?;
    let line = flooder.expect_event("$disconnect", EVENT).await?;
    assert_eq!(line["args"][0], "io server disconnect", "{line}");
    gateway
        .wait_metric(
            "socketio_limit_disconnects_total{reason=\"rate\"}",
            |v| v == 1.0,
            EVENT,
        )
        .await?;
    // The receiver is unaffected.
    assert_eq!(receiver.join("still-here").await?, json!([true]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packet_over_the_limit_closes_its_connection_and_goes_nowhere() -> anyhow::Result<()> {
    let gateway = GatewayProcess::start(
        "limits-payload",
        &[("GATEWAY_LIMITS__MAX_PAYLOAD_BYTES", "4096")],
    )
    .await?;
    let mut receiver = NodePeer::client("receiver", &gateway.url(), &[]).await?;
    let big = "x".repeat(8192);
    for transport in ["websocket", "polling"] {
        let mut sender =
            NodePeer::client(transport, &gateway.url(), &["--transports", transport]).await?;
        // Just under the limit passes.
        sender.emit("message", json!(["x".repeat(3000)])).await?;
        receiver.expect_event("message", EVENT).await?;
        sender.emit("message", json!([big])).await?;
        let line = sender.expect_event("$disconnect", EVENT).await?;
        let reason = line["args"][0].as_str().unwrap_or_default();
        assert!(reason.starts_with("transport"), "{transport}: {line}");
    }
    // Only the two small messages were read as events: the big ones were
    // refused before parsing and relayed to no one.
    let metrics = gateway.scrape().await?;
    assert_eq!(
        metric_sample(&metrics, "socketio_events_received_total{namespace=\"/\"}"),
        Some(2.0)
    );
    let mut last = NodePeer::client("last", &gateway.url(), &[]).await?;
    last.emit("message", json!(["after"])).await?;
    let line = receiver.expect_event("message", EVENT).await?;
    assert_eq!(line["args"], json!(["after"]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_packets_get_413_on_polling_and_a_close_on_websocket() -> anyhow::Result<()> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{protocol::frame::coding::CloseCode, Message};

    let gateway = GatewayProcess::start(
        "limits-codes",
        &[("GATEWAY_LIMITS__MAX_PAYLOAD_BYTES", "4096")],
    )
    .await?;
    let port = gateway.port();

    // Long-polling: a session, then a POST over the limit.
    let (status, open) = http_get(port, "/socket.io/?EIO=4&transport=polling").await?;
    assert_eq!(status, 200, "{open}");
    let sid = engine_sid(&open).unwrap_or_default();
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let big = format!("42[\"message\",\"{}\"]", "x".repeat(8192));
    let (status, body) = http_request(
        port,
        "POST",
        &path,
        &[("Content-Type", "text/plain")],
        Some(&big),
    )
    .await?;
    assert_eq!(status, 413, "{body}");

    // WebSocket: a message over the limit is answered with a close frame.
    // engineioxide sends it without a status code, not 1009 ("message too
    // big"): the frame is tungstenite's capacity error, which engineioxide
    // turns into a plain close, below anything the gateway sees.
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await?;
    let open = ws
        .next()
        .await
        .ok_or_else(|| anyhow::anyhow!("no open packet"))??;
    assert!(open.to_text()?.starts_with('0'), "{open:?}");
    ws.send(Message::text("40")).await?;
    ws.send(Message::text(big)).await?;
    let close = tokio::time::timeout(EVENT, async {
        while let Some(frame) = ws.next().await {
            match frame {
                Ok(Message::Close(frame)) => return Ok(frame),
                Ok(_) => {}
                Err(err) => return Err(anyhow::anyhow!("websocket error before a close: {err}")),
            }
        }
        Err(anyhow::anyhow!(
            "the connection ended without a close frame"
        ))
    })
    .await??;
    assert!(
        close
            .as_ref()
            .is_none_or(|frame| frame.code == CloseCode::Size),
        "{close:?}"
    );
    Ok(())
}
