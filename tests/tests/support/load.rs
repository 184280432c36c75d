//! Steady broadcast load for the chaos tests, and what the clients saw.
//!
//! The emitter library publishes `seq(n)` every few milliseconds and a Node
//! client emits `message(n)` (relayed by its gateway to every other socket);
//! recorders drain the receiving clients' output with timestamps, so a test
//! can measure how long delivery stopped around a fault and how many
//! messages never arrived.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::NodePeer;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One message as sent or received: its sequence number and when.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    pub n: i64,
    pub at: Instant,
    pub ok: bool,
}

pub type Log = Arc<Mutex<Vec<Stamp>>>;

fn push(log: &Log, n: i64, ok: bool) {
    if let Ok(mut log) = log.lock() {
        log.push(Stamp {
            n,
            at: Instant::now(),
            ok,
        });
    }
}

pub fn snapshot(log: &Log) -> Vec<Stamp> {
    log.lock().map(|l| l.clone()).unwrap_or_default()
}

/// A background loop, stopped by [`Load::stop`].
pub struct Load<T> {
    stop: watch::Sender<bool>,
    task: JoinHandle<T>,
    pub log: Log,
}

impl<T> Load<T> {
    pub async fn stop(self) -> anyhow::Result<T> {
        self.stop.send_replace(true);
        Ok(tokio::time::timeout(Duration::from_secs(10), self.task).await??)
    }
}

/// The emitter library publishing `seq(n)` every `period`.
pub fn emitter_load(emitter: emitter::Emitter, period: Duration) -> Load<()> {
    emitter_load_from(emitter, period, 0)
}

/// [`emitter_load`] numbering from `first`, so two loads can share a client.
pub fn emitter_load_from(emitter: emitter::Emitter, period: Duration, first: i64) -> Load<()> {
    let (stop, mut stopped) = watch::channel(false);
    let log: Log = Arc::default();
    let task_log = log.clone();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut n = first;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopped.changed() => return,
            }
            let ok = emitter.emit_json("seq", &[json!(n)]).await.is_ok();
            push(&task_log, n, ok);
            n += 1;
        }
    });
    Load { stop, task, log }
}

/// A Node client emitting `message(n)` every `period` (several per tick
/// would also do; one keeps the numbering simple). Returns the client.
pub fn talker_load(mut talker: NodePeer, period: Duration) -> Load<NodePeer> {
    let (stop, mut stopped) = watch::channel(false);
    let log: Log = Arc::default();
    let task_log = log.clone();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut n = 0i64;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopped.changed() => return talker,
            }
            let ok = talker
                .send(&json!({"cmd": "emit", "event": "message", "args": [n]}))
                .await
                .is_ok();
            push(&task_log, n, ok);
            n += 1;
        }
    });
    Load { stop, task, log }
}

/// What one client received.
#[derive(Clone, Default)]
pub struct Received {
    pub seq: Log,
    pub message: Log,
    pub disconnects: Arc<Mutex<Vec<String>>>,
}

/// Drains `peer`'s output into a [`Received`].
pub fn record(mut peer: NodePeer) -> (Load<NodePeer>, Received) {
    let (stop, mut stopped) = watch::channel(false);
    let received = Received::default();
    let out = received.clone();
    let task = tokio::spawn(async move {
        loop {
            let line = tokio::select! {
                line = peer.next_line(Duration::from_millis(200)) => line,
                _ = stopped.changed() => return peer,
            };
            let Ok(line) = line else { continue };
            let n = line["args"][0].as_i64();
            match (line["event"].as_str(), n) {
                (Some("seq"), Some(n)) => push(&out.seq, n, true),
                (Some("message"), Some(n)) => push(&out.message, n, true),
                (Some("$disconnect"), _) => {
                    if let Ok(mut d) = out.disconnects.lock() {
                        d.push(line.to_string());
                    }
                }
                _ => {}
            }
        }
    });
    (
        Load {
            stop,
            task,
            log: Arc::default(),
        },
        received,
    )
}

/// Waits until `log` has an entry at or after `since` (with `n > after_n`
/// when given); returns it.
pub async fn first_after(log: &Log, since: Instant, timeout: Duration) -> anyhow::Result<Stamp> {
    e2e::wait_for("a message after the fault", timeout, || {
        let found = snapshot(log).into_iter().find(|s| s.at >= since && s.ok);
        async move { Ok(found) }
    })
    .await
}

/// Lets the loads run for one more second, the window that losses and
/// silences are counted in; returns when it ends.
pub async fn one_more_second() -> anyhow::Result<Instant> {
    let end = Instant::now() + Duration::from_secs(1);
    e2e::wait_until(
        "one more second of load",
        Duration::from_secs(3),
        || async { Instant::now() >= end },
    )
    .await?;
    Ok(end)
}

/// The longest time without a receipt in `log` between `from` and `to`.
pub fn longest_gap(log: &Log, from: Instant, to: Instant) -> Duration {
    let mut last = from;
    let mut longest = Duration::ZERO;
    for stamp in snapshot(log).iter().filter(|s| s.at >= from && s.at <= to) {
        longest = longest.max(stamp.at.duration_since(last));
        last = stamp.at;
    }
    longest.max(to.saturating_duration_since(last))
}

/// Messages sent successfully in `[from, to]` that `received` never got,
/// and how many were sent successfully in that window.
pub fn lost(sent: &Log, received: &Log, from: Instant, to: Instant) -> (usize, usize) {
    let sent_ok = snapshot(sent)
        .iter()
        .filter(|s| s.ok && s.at >= from && s.at <= to)
        .count();
    (missing(sent, received, from, to).len(), sent_ok)
}

/// The messages sent successfully in `[from, to]` that `received` never got.
pub fn missing(sent: &Log, received: &Log, from: Instant, to: Instant) -> Vec<Stamp> {
    let got: std::collections::HashSet<i64> = snapshot(received).iter().map(|s| s.n).collect();
    snapshot(sent)
        .into_iter()
        .filter(|s| s.ok && s.at >= from && s.at <= to && !got.contains(&s.n))
        .collect()
}

/// How many receipts in `received` repeat a sequence number already seen.
pub fn repeated(received: &Log) -> usize {
    let mut seen = std::collections::HashSet::new();
    snapshot(received)
        .iter()
        .filter(|s| !seen.insert(s.n))
        .count()
}
