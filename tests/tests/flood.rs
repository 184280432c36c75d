//! One flooding client must not delay the others: 200 loadgen clients
//! receive a steady broadcast (20 msg/s) with and without a client sending
//! events at ten times the rate limit (500/s against the default 50/s).
//!
//! The flood is of an event no handler relays, so what it costs the
//! gateway is the parsing and the rate limiter of each dropped event (the
//! fifty a second it is allowed would otherwise add a relay of their own).
//! The bound asserted: p99 with the flooder at most 2 × p99 without it,
//! plus 10 ms for the noise of a shared machine; nothing lost either way.

use std::time::Duration;

use e2e::{
    bins::{metric_sample, run_loadgen},
    GatewayProcess, NodePeer,
};
use serde_json::{json, Value};

const EVENT: Duration = Duration::from_secs(10);

fn p99_ms(report: &Value) -> anyhow::Result<f64> {
    let step = &report["steps"][0];
    let (expected, received) = (step["expected"].as_u64(), step["received"].as_u64());
    anyhow::ensure!(
        expected.is_some() && expected == received,
        "lost messages: {step}"
    );
    step["latency"]["p99_ms"]
        .as_f64()
        .ok_or_else(|| anyhow::anyhow!("no p99 in {step}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_does_not_delay_the_others() -> anyhow::Result<()> {
    // A long grace keeps the flooder connected (and flooding) all along.
    let gateway =
        GatewayProcess::start("flood", &[("GATEWAY_LIMITS__EVENTS_GRACE_S", "600")]).await?;
    let url = gateway.url();
    let pid = gateway.pid().map(|pid| pid.to_string()).unwrap_or_default();
    let args = [
        "fanout",
        "--url",
        &url,
        "--clients",
        "200",
        "--rate",
        "20",
        "--duration",
        "4",
        "--gateway-pids",
        &pid,
    ];
    let quiet = p99_ms(&run_loadgen(&args).await?)?;

    let mut flooder = NodePeer::client("flooder", &url, &[]).await?;
    let flood = json!({"cmd": "flood", "event": "noise", "args": ["x"], "count": 20_000, "intervalMs": 10, "batch": 5});
    flooder.send(&flood).await?;
    let dropped = "socketio_limited_total{limit=\"rate\"}";
    let before = gateway.wait_metric(dropped, |v| v >= 200.0, EVENT).await?;
    let flooded = p99_ms(&run_loadgen(&args).await?)?;
    let after = metric_sample(&gateway.scrape().await?, dropped).unwrap_or_default();
    eprintln!(
        "[flood] p99 {quiet:.2} ms without the flooder, {flooded:.2} ms with it; {} events dropped during the run",
        after - before
    );
    // The flood went on through the whole measurement: about 450 dropped
    // events a second, for four seconds and the connections' ramp.
    assert!(
        after - before >= 1500.0,
        "the flood stopped: {before} then {after}"
    );
    assert!(
        flooded <= 2.0 * quiet + 10.0,
        "p99 {flooded:.2} ms with the flooder, {quiet:.2} ms without"
    );
    Ok(())
}
