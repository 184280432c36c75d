//! The load scenarios: connect a crowd, then publish at given rates and
//! measure what arrives.
//!
//! One run opens the connections once (ramped, spread over the gateways and
//! over 127.0.0.x source addresses), optionally joins rooms, then measures
//! each requested rate as a separate phase on the same connections, so a
//! load sweep does not pay the connection ramp at every step. Every
//! connection is one tokio task that answers pings, counts stamped
//! deliveries and, when told to, publishes; the controller only paces
//! publishers and reads counters.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, info, warn};

use crate::client::{lean_ws_config, nsp_prefix, Connection, Target};
pub use crate::outcome::{table, RunReport, StepReport};
use crate::payload::{self, Stamp, EMITTER_SOURCES};
use crate::procfs;
use crate::receipts::Receipts;
use crate::rooms::Rooms;
use crate::stats::Stats;

/// What the clients do once connected.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Every message goes to every client.
    Fanout,
    /// Clients join rooms; each message goes to one room.
    Rooms,
    /// Connections only: memory per connection and connect rate.
    Idle,
}

/// Where messages come from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Publisher clients emit `message` (fanout) or `publish` (rooms).
    Clients,
    /// The loadgen publishes Node-emitter messages on the Redis master.
    Emitter,
}

/// A complete run description.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Names the server stack in the results (`rust`, `node`, ...).
    pub label: String,
    pub scenario: Scenario,
    pub source: Source,
    pub urls: Vec<String>,
    pub nsp: String,
    pub clients: usize,
    pub publishers: usize,
    /// Total messages per second for each measured phase; 0 = as fast as
    /// the cluster keeps up (at most `max_in_flight` messages outstanding).
    pub rates: Vec<f64>,
    pub payload_bytes: usize,
    /// How long each phase publishes (idle: how long connections are held).
    pub duration: Duration,
    pub rooms_per_client: usize,
    pub room_size: usize,
    pub connect_rate: f64,
    pub connect_concurrency: usize,
    /// Spread connections over 127.0.0.1 ..= 127.0.0.N (0: let the kernel pick).
    pub source_ips: u8,
    pub redis_url: Option<String>,
    pub gateway_pids: Vec<u32>,
    pub redis_pids: Vec<u32>,
    pub max_in_flight: u64,
    /// How long to wait for stragglers after publishing stops.
    pub drain_timeout: Duration,
    /// Skip the remaining (higher) rates once a phase is overloaded.
    pub stop_when_overloaded: bool,
    /// With a gateway's HS256 secret, each client connects with a token of
    /// its own ([`crate::token`]).
    pub auth_secret: Option<String>,
}

/// What a connection task is told to do.
#[derive(Debug)]
enum Command {
    /// Publish one stamped message (to a room in the rooms scenario).
    Publish { room: Option<usize> },
    /// Join a room, acknowledged by the server.
    Join { room: usize },
}

/// Shared by the controller and every connection task.
#[derive(Debug)]
struct Shared {
    stats: Stats,
    rooms: Option<Rooms>,
    scenario: Scenario,
    nsp_prefix: String,
    payload_bytes: usize,
}

/// Runs a scenario to completion.
pub async fn run(config: RunConfig) -> anyhow::Result<RunReport> {
    anyhow::ensure!(!config.urls.is_empty(), "at least one server URL is needed");
    anyhow::ensure!(config.clients > 0, "--clients must be at least 1");
    let mut targets = Vec::new();
    for url in &config.urls {
        targets.push(
            Target::resolve(url)
                .await
                .with_context(|| format!("server {url}"))?,
        );
    }
    let rooms = (config.scenario == Scenario::Rooms).then(|| {
        Rooms::new(
            config.clients,
            config.rooms_per_client.max(1),
            config.room_size,
        )
    });
    let shared = Arc::new(Shared {
        stats: Stats::new(),
        rooms,
        scenario: config.scenario,
        nsp_prefix: nsp_prefix(&config.nsp),
        payload_bytes: config.payload_bytes,
    });
    let stats = &shared.stats;
    let rss_before = sample_rss(&config.gateway_pids);

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let crowd = connect_crowd(&config, &shared, &targets, shutdown_rx).await?;
    join_rooms(&shared, &crowd.senders, crowd.connected).await;
    let rss_connected = sample_rss(&config.gateway_pids);
    let steps = if config.scenario == Scenario::Idle {
        // Hold the connections through at least one ping round.
        tokio::time::sleep(config.duration).await;
        Vec::new()
    } else {
        measure_rates(&config, &shared, &crowd.senders).await?
    };
    let rss_per_connection_bytes =
        rss_growth_per_connection(&rss_before, &rss_connected, crowd.connected);

    let report = RunReport {
        label: config.label.clone(),
        scenario: config.scenario,
        source: config.source,
        clients: config.clients,
        connected: crowd.connected,
        connect_errors: stats.connect_errors.load(Relaxed),
        connect_secs: crowd.connect_secs,
        connects_per_sec: crowd.connected as f64 / crowd.connect_secs.max(1e-9),
        publishers: config.publishers,
        payload_bytes: config.payload_bytes,
        rooms: shared.rooms.as_ref().map_or(0, |r| r.count),
        rooms_per_client: shared.rooms.as_ref().map_or(0, |r| r.per_client),
        join_errors: stats.join_errors.load(Relaxed),
        gateway_rss_before_kib: rss_before,
        gateway_rss_connected_kib: rss_connected,
        rss_per_connection_bytes,
        steps,
        disconnects: stats.disconnects.load(Relaxed),
    };

    // Close every connection and wait (bounded) for the tasks to finish.
    let _ = shutdown_tx.send(true);
    let Crowd {
        senders, mut tasks, ..
    } = crowd;
    drop(senders);
    let closing = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(10), closing)
        .await
        .is_err()
    {
        tasks.abort_all();
    }
    Ok(report)
}

/// The open connections: one command channel and one task each.
struct Crowd {
    senders: Vec<mpsc::Sender<Command>>,
    tasks: JoinSet<()>,
    connected: u64,
    connect_secs: f64,
}

/// Opens `config.clients` connections, ramped at the connect rate with a
/// bounded number in flight, spread over the targets and source addresses.
async fn connect_crowd(
    config: &RunConfig,
    shared: &Arc<Shared>,
    targets: &[Target],
    shutdown_rx: watch::Receiver<bool>,
) -> anyhow::Result<Crowd> {
    let stats = &shared.stats;
    let mut senders = Vec::with_capacity(config.clients);
    let mut tasks = JoinSet::new();
    let connect_started = Instant::now();
    let permits = Arc::new(Semaphore::new(config.connect_concurrency.max(1)));
    let mut ticker =
        tokio::time::interval(Duration::from_secs_f64(1.0 / config.connect_rate.max(1.0)));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    for index in 0..config.clients {
        ticker.tick().await;
        let permit = permits.clone().acquire_owned().await?;
        let (tx, rx) = mpsc::channel(64);
        senders.push(tx);
        let target = targets[index % targets.len()].clone();
        let source = (config.source_ips > 0).then(|| {
            let last = u8::try_from(index % usize::from(config.source_ips)).unwrap_or(0) + 1;
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
        });
        let nsp = config.nsp.clone();
        let auth = config
            .auth_secret
            .as_deref()
            .map(|secret| crate::token::connect_auth(secret, index))
            .transpose()?;
        let shared = shared.clone();
        let shutdown = shutdown_rx.clone();
        tasks.spawn(async move {
            let connected =
                Connection::connect(&target, source, &nsp, auth.as_deref(), lean_ws_config()).await;
            drop(permit);
            match connected {
                Ok(conn) => {
                    shared.stats.connected.fetch_add(1, Relaxed);
                    drive(index, conn, shared, rx, shutdown).await;
                }
                Err(err) => {
                    let errors = shared.stats.connect_errors.fetch_add(1, Relaxed);
                    if errors < 5 {
                        warn!(%err, index, "connect failed");
                    }
                }
            }
        });
    }
    let attempts = config.clients as u64;
    wait_until(Duration::from_secs(60), || {
        stats.connected.load(Relaxed) + stats.connect_errors.load(Relaxed) >= attempts
    })
    .await;
    let connect_secs = connect_started.elapsed().as_secs_f64();
    let connected = stats.connected.load(Relaxed);
    info!(
        connected,
        errors = stats.connect_errors.load(Relaxed),
        secs = format!("{connect_secs:.1}"),
        "connections open"
    );
    Ok(Crowd {
        senders,
        tasks,
        connected,
        connect_secs,
    })
}

/// In the rooms scenario, joins every connection to its rooms and waits
/// (bounded) for the acknowledgements.
async fn join_rooms(shared: &Shared, senders: &[mpsc::Sender<Command>], connected: u64) {
    let Some(rooms) = &shared.rooms else {
        return;
    };
    let stats = &shared.stats;
    for (index, sender) in senders.iter().enumerate() {
        for room in rooms.of_client(index) {
            // A closed channel is a connection that failed: not joined.
            let _ = sender.send(Command::Join { room }).await;
        }
    }
    let wanted = connected * rooms.per_client as u64;
    let all_joined = wait_until(Duration::from_secs(60), || {
        stats.joined.load(Relaxed) + stats.join_errors.load(Relaxed) >= wanted
    })
    .await;
    if !all_joined {
        warn!(
            joined = stats.joined.load(Relaxed),
            wanted, "not every join was acknowledged"
        );
    }
}

/// Measures each configured rate as one phase, from the clients or the
/// emitter, stopping early when asked to once a phase is overloaded.
async fn measure_rates(
    config: &RunConfig,
    shared: &Arc<Shared>,
    senders: &[mpsc::Sender<Command>],
) -> anyhow::Result<Vec<StepReport>> {
    let emitter = match config.source {
        Source::Emitter => {
            let url = config
                .redis_url
                .as_deref()
                .context("--redis is required with --source emitter")?;
            Some(
                emitter::Emitter::connect(&emitter::RedisConfig::new(url))
                    .await
                    .context("connecting the emitter to Redis")?
                    .of(&config.nsp),
            )
        }
        Source::Clients => None,
    };
    let mut steps = Vec::new();
    for (index, rate) in config.rates.iter().copied().enumerate() {
        let phase = index as u64 + 1;
        let step = measure_phase(config, shared, senders, emitter.as_ref(), phase, rate).await;
        print_step(config, &step);
        let overloaded = step.is_overloaded();
        steps.push(step);
        if overloaded && config.stop_when_overloaded {
            info!(rate, "overloaded: skipping the higher rates");
            break;
        }
    }
    Ok(steps)
}

/// Publishes at `rate` for the configured duration, then waits for
/// stragglers, and reports the phase.
async fn measure_phase(
    config: &RunConfig,
    shared: &Arc<Shared>,
    senders: &[mpsc::Sender<Command>],
    emitter: Option<&emitter::Emitter>,
    phase: u64,
    rate: f64,
) -> StepReport {
    let stats = &shared.stats;
    stats.begin_phase(phase);
    let cpu_before = sample_cpu(&config.gateway_pids);
    let redis_before = sample_cpu(&config.redis_pids);
    let self_before = procfs::cpu_seconds(std::process::id()).ok();
    let started_us = stats.now_us();
    let deadline = tokio::time::Instant::now() + config.duration;

    let mut publishers = match config.source {
        Source::Clients => config.publishers.clamp(1, senders.len().max(1)),
        Source::Emitter => config.publishers.max(1),
    };
    if rate > 0.0 {
        // A publisher slower than one message per second would distort the
        // rate over a short phase.
        publishers = publishers.min(rate.ceil() as usize).max(1);
    }
    let mut pacers = JoinSet::new();
    for publisher in 0..publishers {
        let pacer = Pacer {
            shared: shared.clone(),
            publisher,
            publishers,
            sender: senders.get(publisher).cloned(),
            emitter: emitter.cloned(),
            period: (rate > 0.0).then(|| Duration::from_secs_f64(publishers as f64 / rate)),
            max_in_flight: config.max_in_flight.max(1),
            deadline,
        };
        pacers.spawn(pacer.run());
    }
    while pacers.join_next().await.is_some() {}
    let publish_secs = (stats.now_us() - started_us) as f64 / 1e6;

    // Drain: until everything expected arrived, or nothing more arrives.
    let drain_deadline = Instant::now() + config.drain_timeout;
    let mut last_received = stats.received.load(Relaxed);
    let mut last_progress = Instant::now();
    loop {
        let received = stats.received.load(Relaxed);
        if received >= stats.expected.load(Relaxed) || Instant::now() >= drain_deadline {
            break;
        }
        if received != last_received {
            last_received = received;
            last_progress = Instant::now();
        } else if last_progress.elapsed() > Duration::from_secs(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let gateway_cpu_secs = delta(&cpu_before, &sample_cpu(&config.gateway_pids));
    let redis_cpu_secs = delta(&redis_before, &sample_cpu(&config.redis_pids));
    let loadgen_cpu_secs = self_before
        .zip(procfs::cpu_seconds(std::process::id()).ok())
        .map(|(before, after)| after - before);
    let published = stats.published.load(Relaxed);
    let expected = stats.expected.load(Relaxed);
    let received = stats.received.load(Relaxed);
    let window_secs = (stats.last_delivery_us().max(started_us) - started_us) as f64 / 1e6;
    let deliveries_per_sec = if window_secs > 0.0 {
        received as f64 / window_secs
    } else {
        0.0
    };
    let receivers = stats
        .connected
        .load(Relaxed)
        .saturating_sub(stats.disconnects.load(Relaxed))
        .max(1);
    StepReport {
        rate_target: rate,
        window_secs,
        published,
        publish_errors: stats.publish_errors.load(Relaxed),
        publish_rate: published as f64 / publish_secs.max(1e-9),
        expected,
        received,
        lost: expected.saturating_sub(received),
        duplicates: stats.duplicates.load(Relaxed),
        stale: stats.stale.load(Relaxed),
        deliveries_per_sec,
        latency: stats.latency(),
        gateway_cpu_secs,
        deliveries_per_cpu_sec: gateway_cpu_secs
            .filter(|cpu| *cpu > 0.0)
            .map(|cpu| received as f64 / cpu),
        redis_cpu_secs,
        loadgen_cpu_secs,
        per_client_bytes_per_sec: deliveries_per_sec * config.payload_bytes as f64
            / receivers as f64,
    }
}

/// Paces one publisher.
struct Pacer {
    shared: Arc<Shared>,
    publisher: usize,
    publishers: usize,
    sender: Option<mpsc::Sender<Command>>,
    emitter: Option<emitter::Emitter>,
    period: Option<Duration>,
    max_in_flight: u64,
    deadline: tokio::time::Instant,
}

impl Pacer {
    async fn run(self) {
        let stats = &self.shared.stats;
        let mut next_seq: u64 = 0;
        let mut ticker = self.period.map(|period| {
            // Stagger publishers over one period so they do not fire in step.
            let offset = period.mul_f64(self.publisher as f64 / self.publishers as f64);
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
            ticker
        });
        loop {
            match ticker.as_mut() {
                Some(ticker) => {
                    if tokio::time::timeout_at(self.deadline, ticker.tick())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                None => {
                    // Closed loop: wait for the cluster to catch up.
                    let window = self.max_in_flight * self.fanout_estimate();
                    while stats
                        .expected
                        .load(Relaxed)
                        .saturating_sub(stats.received.load(Relaxed))
                        > window
                    {
                        if tokio::time::Instant::now() >= self.deadline {
                            return;
                        }
                        tokio::time::sleep(Duration::from_micros(200)).await;
                    }
                }
            }
            if tokio::time::Instant::now() >= self.deadline {
                return;
            }
            let room = self
                .shared
                .rooms
                .as_ref()
                .map(|rooms| fastrand::usize(..rooms.count));
            if let Some(emitter) = &self.emitter {
                self.publish_via_emitter(emitter, room, next_seq).await;
                next_seq += 1;
            } else if let Some(sender) = &self.sender {
                if sender.send(Command::Publish { room }).await.is_err() {
                    stats.publish_errors.fetch_add(1, Relaxed);
                }
            }
        }
    }

    fn fanout_estimate(&self) -> u64 {
        let stats = &self.shared.stats;
        match &self.shared.rooms {
            Some(rooms) => (stats.joined.load(Relaxed) / rooms.count as u64).max(1),
            None => stats.connected.load(Relaxed).max(1),
        }
    }

    /// Publishes message `seq` of this publisher through the emitter.
    async fn publish_via_emitter(&self, emitter: &emitter::Emitter, room: Option<usize>, seq: u64) {
        let stats = &self.shared.stats;
        let expected = match (room, &self.shared.rooms) {
            (Some(room), Some(rooms)) => rooms.members[room].load(Relaxed),
            _ => live_connections(stats),
        };
        let text = payload::payload(
            Stamp {
                phase: stats.phase(),
                sent_us: stats.now_us(),
                source: EMITTER_SOURCES + self.publisher as u64,
                seq,
            },
            self.shared.payload_bytes,
        );
        stats.expected.fetch_add(expected, Relaxed);
        let args = [rmpv::Value::from(text)];
        let result = match room {
            Some(room) => emitter.to(Rooms::name(room)).emit("message", args).await,
            None => emitter.emit("message", args).await,
        };
        match result {
            Ok(_) => {
                stats.published.fetch_add(1, Relaxed);
            }
            Err(err) => {
                stats.expected.fetch_sub(expected, Relaxed);
                if stats.publish_errors.fetch_add(1, Relaxed) < 5 {
                    warn!(%err, "emitter publish failed");
                }
            }
        }
    }
}

fn live_connections(stats: &Stats) -> u64 {
    stats
        .connected
        .load(Relaxed)
        .saturating_sub(stats.disconnects.load(Relaxed))
}

/// One connection: answers pings, counts deliveries, executes commands.
async fn drive(
    index: usize,
    conn: Connection,
    shared: Arc<Shared>,
    mut commands: mpsc::Receiver<Command>,
    mut shutdown: watch::Receiver<bool>,
) {
    let stats = &shared.stats;
    let mut ws = conn.ws;
    let mut next_ack_id: u64 = 0;
    let mut pending_joins: Vec<(u64, usize)> = Vec::new();
    let mut receipts = Receipts::default();
    let mut next_seq: u64 = 0;
    let mut commands_open = true;
    loop {
        tokio::select! {
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let bytes = text.as_bytes();
                match bytes {
                    [b'2', ..] => {
                        // Engine.IO ping: answer with the same data.
                        let mut pong = String::with_capacity(bytes.len());
                        pong.push('3');
                        pong.push_str(&text.as_str()[1..]);
                        if ws.send(Message::text(pong)).await.is_err() {
                            break;
                        }
                    }
                    [b'4', b'2', ..] => stats.record_delivery(index, &mut receipts, payload::scan(bytes)),
                    [b'4', b'3', rest @ ..] => {
                        let (id, body) = split_ack(rest, &shared.nsp_prefix);
                        if let Some(pos) = pending_joins.iter().position(|(pending, _)| Some(*pending) == id) {
                            let (_, room) = pending_joins.swap_remove(pos);
                            if body.starts_with(b"[true]") {
                                stats.joined.fetch_add(1, Relaxed);
                                if let Some(rooms) = &shared.rooms {
                                    rooms.members[room].fetch_add(1, Relaxed);
                                }
                            } else {
                                stats.join_errors.fetch_add(1, Relaxed);
                            }
                        }
                    }
                    [b'1', ..] | [b'4', b'1', ..] => break,
                    _ => {}
                }
            }
            command = commands.recv(), if commands_open => {
                let Some(command) = command else {
                    commands_open = false;
                    continue;
                };
                let frame = match command {
                    Command::Publish { room } => {
                        let expected = expected_for(index, room, &shared);
                        stats.expected.fetch_add(expected, Relaxed);
                        stats.published.fetch_add(1, Relaxed);
                        let seq = next_seq;
                        next_seq += 1;
                        publish_frame(&shared, room, index, seq)
                    }
                    Command::Join { room } => {
                        let id = next_ack_id;
                        next_ack_id += 1;
                        pending_joins.push((id, room));
                        format!("42{}{id}[\"join\",\"{}\"]", shared.nsp_prefix, Rooms::name(room))
                    }
                };
                if let Err(err) = ws.send(Message::text(frame)).await {
                    debug!(%err, index, "send failed");
                    stats.publish_errors.fetch_add(1, Relaxed);
                    break;
                }
            }
            _ = shutdown.changed() => {
                let _ = ws.close(None).await;
                return;
            }
        }
    }
    if !*shutdown.borrow() {
        stats.disconnects.fetch_add(1, Relaxed);
    }
}

/// Deliveries one client publish should cause: every other client for the
/// `message` relay; the room's members except the sender for `publish`.
fn expected_for(index: usize, room: Option<usize>, shared: &Shared) -> u64 {
    let stats = &shared.stats;
    match (room, &shared.rooms) {
        (Some(room), Some(rooms)) => {
            let members = rooms.members[room].load(Relaxed);
            let sender_is_member = rooms.of_client(index).any(|r| r == room);
            members.saturating_sub(u64::from(sender_is_member))
        }
        _ => live_connections(stats).saturating_sub(1),
    }
}

/// The Engine.IO frame of message `seq` published by connection `index`.
fn publish_frame(shared: &Shared, room: Option<usize>, index: usize, seq: u64) -> String {
    let stats = &shared.stats;
    let text = payload::payload(
        Stamp {
            phase: stats.phase(),
            sent_us: stats.now_us(),
            source: index as u64,
            seq,
        },
        shared.payload_bytes,
    );
    match (shared.scenario, room) {
        (Scenario::Rooms, Some(room)) => format!(
            "42{}[\"publish\",{{\"room\":\"{}\",\"event\":\"message\",\"data\":\"{text}\"}}]",
            shared.nsp_prefix,
            Rooms::name(room)
        ),
        _ => format!("42{}[\"message\",\"{text}\"]", shared.nsp_prefix),
    }
}

/// Splits `[nsp,]<id><json>` of an ACK packet (after `43`).
fn split_ack<'a>(rest: &'a [u8], nsp_prefix: &str) -> (Option<u64>, &'a [u8]) {
    let rest = rest.strip_prefix(nsp_prefix.as_bytes()).unwrap_or(rest);
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let id = std::str::from_utf8(&rest[..digits])
        .ok()
        .and_then(|d| d.parse().ok());
    (id, &rest[digits..])
}

async fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

fn sample_rss(pids: &[u32]) -> Vec<u64> {
    pids.iter()
        .map(|pid| procfs::rss_kib(*pid).unwrap_or(0))
        .collect()
}

fn sample_cpu(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|pid| procfs::cpu_seconds(*pid).ok()).sum()
}

fn delta(before: &Option<f64>, after: &Option<f64>) -> Option<f64> {
    before.zip(*after).map(|(b, a)| a - b)
}

fn rss_growth_per_connection(before: &[u64], after: &[u64], connections: u64) -> Option<f64> {
    if before.is_empty() || connections == 0 {
        return None;
    }
    let grown: u64 = after
        .iter()
        .sum::<u64>()
        .saturating_sub(before.iter().sum());
    Some(grown as f64 * 1024.0 / connections as f64)
}

/// One line per phase while the run goes on.
fn print_step(config: &RunConfig, step: &StepReport) {
    info!(
        label = config.label,
        rate = step.rate_target,
        delivered = step.received,
        lost = step.lost,
        per_sec = format!("{:.0}", step.deliveries_per_sec),
        p99_ms = step.latency.p99_ms,
        "phase done"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_split_into_id_and_body() {
        assert_eq!(split_ack(b"12[true]", ""), (Some(12), &b"[true]"[..]));
        assert_eq!(
            split_ack(b"/chat,3[true]", "/chat,"),
            (Some(3), &b"[true]"[..])
        );
        assert_eq!(split_ack(b"[true]", ""), (None, &b"[true]"[..]));
    }

    #[test]
    fn rss_growth_is_per_connection_bytes() {
        assert_eq!(
            rss_growth_per_connection(&[1000, 1000], &[1500, 1500], 1024),
            Some(1000.0)
        );
        assert_eq!(rss_growth_per_connection(&[], &[], 10), None);
        assert_eq!(rss_growth_per_connection(&[10], &[5], 10), Some(0.0));
    }
}
