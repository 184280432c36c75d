//! `loadgen`: drives a Socket.IO cluster with many WebSocket clients and
//! reports deliveries per second, latency percentiles, losses and server
//! cost; also serves the benchmark floor and merges benchmark reports.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use loadgen::scenario::{self, RunConfig, Scenario, Source};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every message to every client (the `message` relay, or the emitter).
    Fanout(RunArgs),
    /// Clients join rooms; messages go to random rooms (`publish`, or the emitter).
    Rooms(RunArgs),
    /// Connections only: connect rate and server memory per connection.
    Idle(RunArgs),
    /// The floor server: relays each `message` frame, encoded once, to every other socket.
    Floor {
        #[arg(long, default_value = "127.0.0.1:3900")]
        listen: String,
    },
    /// Merges run reports into <out-dir>/<name>.json, .md and .svg.
    Report(loadgen::output::ReportArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Socket.IO servers; clients are spread over them round-robin.
    #[arg(long = "url", required = true, num_args = 1.., value_delimiter = ',')]
    urls: Vec<String>,
    /// Names the server stack in the report.
    #[arg(long, default_value = "rust")]
    label: String,
    #[arg(long, default_value = "/")]
    nsp: String,
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Publishing clients (or emitter tasks with --source emitter).
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// Who publishes: clients through the servers, or the emitter on Redis.
    #[arg(long, value_enum, default_value = "clients")]
    source: Source,
    /// Total messages per second; a comma-separated list measures each in
    /// turn on the same connections; 0 = as fast as the cluster keeps up.
    #[arg(long = "rate", num_args = 1.., value_delimiter = ',', default_value = "10")]
    rates: Vec<f64>,
    /// Payload size of each message in bytes.
    #[arg(long = "payload", default_value_t = 100)]
    payload_bytes: usize,
    /// Seconds each rate is measured (idle: seconds the connections are held).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Rooms scenario: rooms each client joins.
    #[arg(long, default_value_t = 1)]
    rooms_per_client: usize,
    /// Rooms scenario: members per room.
    #[arg(long, default_value_t = 100)]
    room_size: usize,
    /// New connections per second during the ramp.
    #[arg(long, default_value_t = 2000.0)]
    connect_rate: f64,
    /// Handshakes in flight at once during the ramp.
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
    /// Bind client sockets to 127.0.0.1..=127.0.0.N (0: no bind), so that
    /// more than one ephemeral port range is available.
    #[arg(long, default_value_t = 4)]
    source_ips: u8,
    /// Redis master for --source emitter.
    #[arg(long = "redis")]
    redis_url: Option<String>,
    /// Gateway processes whose CPU time and RSS are measured.
    #[arg(long, value_delimiter = ',')]
    gateway_pids: Vec<u32>,
    /// Redis processes whose CPU time is measured.
    #[arg(long, value_delimiter = ',')]
    redis_pids: Vec<u32>,
    /// With --rate 0: messages in flight before publishers wait.
    #[arg(long, default_value_t = 16)]
    max_in_flight: u64,
    /// Seconds to wait for stragglers after each phase.
    #[arg(long, default_value_t = 10.0)]
    drain_timeout: f64,
    /// Skip the remaining rates once one loses over 1% or has p99 > 1 s.
    #[arg(long)]
    stop_when_overloaded: bool,
    /// Writes the report as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The gateways' HS256 secret (`GATEWAY_AUTH__JWT_SECRET`): every
    /// client connects with a token of its own, allowed to relay, join and
    /// publish everywhere.
    #[arg(long, env = "LOADGEN_AUTH_SECRET", hide_env_values = true)]
    auth_secret: Option<String>,
}

impl RunArgs {
    fn into_config(self, scenario: Scenario) -> (RunConfig, Option<PathBuf>) {
        let config = RunConfig {
            label: self.label,
            scenario,
            source: self.source,
            urls: self.urls,
            nsp: self.nsp,
            clients: self.clients,
            publishers: self.publishers,
            rates: self.rates,
            payload_bytes: self.payload_bytes,
            duration: Duration::from_secs_f64(self.duration.max(0.0)),
            rooms_per_client: self.rooms_per_client,
            room_size: self.room_size,
            connect_rate: self.connect_rate,
            connect_concurrency: self.connect_concurrency,
            source_ips: self.source_ips,
            redis_url: self.redis_url,
            gateway_pids: self.gateway_pids,
            redis_pids: self.redis_pids,
            max_in_flight: self.max_in_flight,
            drain_timeout: Duration::from_secs_f64(self.drain_timeout.max(0.0)),
            stop_when_overloaded: self.stop_when_overloaded,
            auth_secret: self.auth_secret,
        };
        (config, self.json)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let (scenario, args) = match cli.command {
        Command::Fanout(args) => (Scenario::Fanout, args),
        Command::Rooms(args) => (Scenario::Rooms, args),
        Command::Idle(args) => (Scenario::Idle, args),
        Command::Floor { listen } => {
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            println!("listening {}", listener.local_addr()?);
            let stats = loadgen::floor::serve(listener, shutdown_signal()).await?;
            eprintln!("floor stopped: {stats:?}");
            return Ok(());
        }
        Command::Report(args) => return loadgen::output::run(&args),
    };
    let (config, json) = args.into_config(scenario);
    let report = tokio::select! {
        report = scenario::run(config) => report?,
        () = shutdown_signal() => anyhow::bail!("interrupted"),
    };
    print!("{}", scenario::table(&report));
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
