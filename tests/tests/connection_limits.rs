//! The connection limit at the process's real open-files limit: a gateway
//! run with `prlimit --nofile=128` computes its maximum (128 minus its
//! reserve), refuses handshakes beyond it at once, keeps its admin endpoints
//! answering, and still finds descriptors to move its subscriber when the
//! replica it reads is killed. Then the per-address connect rate.

use std::time::Duration;

use e2e::{
    bins::{engine_sid, http_get, metric_sample, run_emitter},
    wait_for, GatewayProcess, NodePeer, RedisServer,
};
use serde_json::json;
use tokio::net::TcpStream;

const EVENT: Duration = Duration::from_secs(5);
const NOFILE: u64 = 128;
/// `admission::default_max_connections(128)`: 128 minus a reserve of 64.
const MAX_CONNECTIONS: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_open_files_limit_handshakes_are_refused_and_the_gateway_holds() -> anyhow::Result<()>
{
    let master = RedisServer::start(None, &["--repl-diskless-sync-delay", "0"]).await?;
    let mut replica = RedisServer::replica_of(&master).await?;
    let (master_url, replica_url) = (master.url(), replica.url());
    let gateway = GatewayProcess::start_with_nofile(
        "limits-fds",
        &[
            ("GATEWAY_REDIS__URL", master_url.as_str()),
            ("GATEWAY_REDIS__REPLICA_URLS", replica_url.as_str()),
        ],
        Some(NOFILE),
    )
    .await?;
    let metrics = gateway.scrape().await?;
    let limit = metric_sample(&metrics, "socketio_connection_limit");
    assert_eq!(limit, Some(MAX_CONNECTIONS as f64));
    let endpoint = |url: &str| format!("adapter_subscriber_endpoint{{url=\"{url}\"}}");
    assert_eq!(metric_sample(&metrics, &endpoint(&replica_url)), Some(1.0));

    // One real client, then idle connections up to the maximum.
    let mut client = NodePeer::client("client", &gateway.url(), &[]).await?;
    let addr = format!("127.0.0.1:{}", gateway.port());
    let mut idle = Vec::new();
    for _ in 1..MAX_CONNECTIONS {
        idle.push(TcpStream::connect(&addr).await?);
    }
    // Beyond it, a handshake is refused at once, on both transports.
    for transport in ["websocket", "polling"] {
        let refused =
            NodePeer::refused_client(transport, &gateway.url(), &["--transports", transport])
                .await?;
        assert!(refused.contains("error"), "{transport}: {refused}");
    }
    let metrics = gateway.scrape().await?;
    let refusals = metric_sample(
        &metrics,
        "socketio_refused_handshakes_total{reason=\"max_connections\"}",
    );
    assert!(refusals.is_some_and(|n| n >= 2.0), "{refusals:?}");

    // The replica the gateway reads dies: the subscriber moves to the
    // master, and /healthz answers all along.
    replica.kill();
    wait_for(
        "the subscriber on the master",
        Duration::from_secs(20),
        || async {
            let (status, _) = http_get(gateway.admin_port(), "/healthz").await?;
            anyhow::ensure!(status == 200, "/healthz answered {status}");
            let metrics = gateway.scrape().await?;
            Ok((metric_sample(&metrics, &endpoint(&master_url)) == Some(1.0)).then_some(()))
        },
    )
    .await?;
    let (status, body) = http_get(gateway.admin_port(), "/readyz").await?;
    assert_eq!(status, 200, "{body}");
    // The client it has is still served, through the new subscription.
    let (code, _, stderr) = run_emitter(
        &["emit", "--redis", &master_url, "after", "1"],
        &[],
        Duration::from_secs(20),
    )
    .await?;
    assert_eq!(code, Some(0), "{stderr}");
    client.expect_event("after", EVENT).await?;

    // Connections freed, handshakes pass again.
    idle.clear();
    let mut late = NodePeer::client("late", &gateway.url(), &[]).await?;
    assert_eq!(late.join("r").await?, json!([true]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_per_address_are_limited_per_second() -> anyhow::Result<()> {
    let gateway = GatewayProcess::start(
        "limits-ip",
        &[("GATEWAY_LIMITS__CONNECTS_PER_IP_PER_SECOND", "3")],
    )
    .await?;
    // Polling handshakes straight over HTTP: the first three of a second
    // pass, the fourth gets 429. (Retried in a new second if the four
    // straddled one.)
    let port = gateway.port();
    let handshake = "/socket.io/?EIO=4&transport=polling";
    let sid = wait_for(
        "four handshakes within one second",
        Duration::from_secs(10),
        || async {
            let mut answers = Vec::new();
            for _ in 0..4 {
                answers.push(http_get(port, handshake).await?);
            }
            let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
            Ok((statuses == [200, 200, 200, 429]).then(|| engine_sid(&answers[0].1)))
        },
    )
    .await?;
    // Requests of a session are not handshakes: the session's poll passes
    // while its address is over the rate.
    let sid = sid.unwrap_or_default();
    assert_eq!(
        http_get(port, handshake).await?.0,
        429,
        "still over the rate"
    );
    let (status, body) = http_get(port, &format!("{handshake}&sid={sid}")).await?;
    assert_eq!(status, 200, "{body}");
    let metrics = gateway.scrape().await?;
    let refused = metric_sample(
        &metrics,
        "socketio_refused_handshakes_total{reason=\"ip_rate\"}",
    );
    assert!(refused.is_some_and(|n| n >= 1.0), "{refused:?}");
    Ok(())
}
