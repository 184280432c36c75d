//! `make soak`: the gateway under session churn for minutes, and the memory
//! it keeps per session.
//!
//! Three phases share the time: long-polling churn, WebSocket churn, and
//! both mixed. Each starts a fresh gateway, runs rounds of sessions (the
//! first is the warm-up, the second the baseline) and reports the growth of
//! the gateway's anonymous RSS per session after the baseline. With
//! `--redis` the gateway runs on a Redis master, and a client relays
//! `message` broadcasts to every socket through it during the churn.
//!
//! ```text
//! cargo run -p e2e --bin soak -- [--minutes 5] [--redis]
//! ```
//!
//! Exits with status 1 when a phase kept more than
//! [`MAX_RETAINED_BYTES_PER_SESSION`].

use std::time::{Duration, Instant};

use anyhow::Context;
use e2e::churn::{self, Churn, Round, MAX_RETAINED_BYTES_PER_SESSION, QUIET_MALLOC};
use e2e::{GatewayProcess, NodePeer, RedisServer};
use serde_json::json;

const SESSIONS_PER_ROUND: u64 = 3_000;
const CONCURRENCY: u64 = 20;
/// Fewer rounds measure nothing: warm-up, baseline, and one after it.
const MIN_ROUNDS: usize = 3;
/// Broadcasts per second relayed during the churn with `--redis`.
const BROADCAST_RATE: u64 = 50;

#[derive(Debug)]
struct Options {
    minutes: f64,
    redis: bool,
}

fn parse_options() -> anyhow::Result<Options> {
    let mut options = Options {
        minutes: 5.0,
        redis: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--minutes" => {
                let value = args.next().context("--minutes needs a value")?;
                options.minutes = value
                    .parse()
                    .ok()
                    .filter(|m: &f64| m.is_finite() && *m > 0.0)
                    .with_context(|| format!("--minutes {value}: not a positive number"))?;
            }
            "--redis" => options.redis = true,
            other => anyhow::bail!("unknown argument {other}; usage: soak [--minutes N] [--redis]"),
        }
    }
    Ok(options)
}

#[derive(Debug)]
struct Phase {
    transports: &'static str,
    rounds: Vec<Round>,
    retained: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = parse_options()?;
    let phase_time = Duration::from_secs_f64(options.minutes * 60.0 / 3.0);
    let mut phases = Vec::new();
    for transports in ["polling", "websocket", "mixed"] {
        let phase = run_phase(transports, phase_time, options.redis).await?;
        eprintln!(
            "{transports}: {:.1} B per session after the warm-up",
            phase.retained
        );
        phases.push(phase);
    }
    print_report(&phases, options.redis);
    if phases
        .iter()
        .any(|phase| phase.retained > MAX_RETAINED_BYTES_PER_SESSION)
    {
        std::process::exit(1);
    }
    Ok(())
}

async fn run_phase(transports: &'static str, time: Duration, redis: bool) -> anyhow::Result<Phase> {
    let master = match redis {
        true => Some(RedisServer::start(None, &[]).await?),
        false => None,
    };
    let url = master.as_ref().map(RedisServer::url);
    let mut env: Vec<(&str, &str)> = QUIET_MALLOC.to_vec();
    if let Some(url) = &url {
        env.push(("GATEWAY_REDIS__URL", url.as_str()));
    }
    let gateway = GatewayProcess::start(&format!("soak-{transports}"), &env).await?;
    let broadcaster = match redis {
        true => Some(start_broadcaster(&gateway, time).await?),
        false => None,
    };
    let churn = Churn {
        transports,
        mode: "close",
        sessions: SESSIONS_PER_ROUND,
        concurrency: CONCURRENCY,
        others: u64::from(broadcaster.is_some()),
    };
    let started = Instant::now();
    let mut rounds = Vec::new();
    while rounds.len() < MIN_ROUNDS || started.elapsed() < time {
        let round = churn::round(&gateway, &churn).await?;
        eprintln!(
            "{transports} round {}: {} sessions ({} failed) in {:.1} s, RssAnon {} KB",
            rounds.len() + 1,
            round.sessions,
            round.failed,
            round.seconds,
            round.rss_anon / 1024
        );
        rounds.push(round);
    }
    drop(broadcaster);
    let retained = churn::retained_per_session(&rounds, 1).context("too few rounds")?;
    Ok(Phase {
        transports,
        rounds,
        retained,
    })
}

/// A client that sends `message` (relayed to every other socket) at
/// [`BROADCAST_RATE`] for `time` and a little more.
async fn start_broadcaster(gateway: &GatewayProcess, time: Duration) -> anyhow::Result<NodePeer> {
    let mut peer = NodePeer::client(
        "broadcaster",
        &gateway.url(),
        &["--transports", "websocket"],
    )
    .await?;
    let count = (time.as_secs() + 60) * BROADCAST_RATE;
    peer.send(&json!({
        "cmd": "flood", "event": "message", "args": ["tick"],
        "count": count, "intervalMs": 1000 / BROADCAST_RATE, "batch": 1,
    }))
    .await?;
    Ok(peer)
}

fn print_report(phases: &[Phase], redis: bool) {
    let mode = if redis {
        "Redis mode, with broadcasts"
    } else {
        "single node"
    };
    println!("| churn ({mode}) | sessions | rounds | RssAnon after warm-up → end | retained per session |");
    println!("| --- | --- | --- | --- | --- |");
    for phase in phases {
        let sessions: u64 = phase.rounds.iter().map(|r| r.sessions).sum();
        let failed: u64 = phase.rounds.iter().map(|r| r.failed).sum();
        let kb = |round: Option<&Round>| round.map_or(0, |r| r.rss_anon / 1024);
        println!(
            "| {} | {sessions} ({failed} failed) | {} | {} → {} KB | {:.1} B |",
            phase.transports,
            phase.rounds.len(),
            kb(phase.rounds.get(1)),
            kb(phase.rounds.last()),
            phase.retained
        );
    }
    println!("bound: {MAX_RETAINED_BYTES_PER_SESSION} B per session");
}
