//! Chaos under load: replicas killed and restarted (full resync) while the
//! emitter library and a client broadcast a few hundred messages a second;
//! delivery must come back by itself within a bound, with the loss counted.

#[path = "support/load.rs"]
mod load;

use std::time::{Duration, Instant};

use e2e::{GatewayProcess, NodePeer, RedisServer};
use emitter::{Emitter, RedisConfig};

const EMIT_PERIOD: Duration = Duration::from_millis(5);
const TALK_PERIOD: Duration = Duration::from_millis(20);
/// How long a wait for delivery after a fault may take before the test
/// gives up (the asserted bounds are [`GAP_BOUND`] and the losses).
const RECOVERY_BOUND: Duration = Duration::from_secs(2);
/// The longest silence a watching client may see after its gateway's
/// replica is killed. Measured: 7-11 ms (the subscriber's connection
/// closes at once, and it resubscribes on the next replica; the emitter
/// sends every 5 ms). 250 ms leaves room for a loaded 2-core machine.
const GAP_BOUND: Duration = Duration::from_millis(250);

/// The most messages a kill may lose out of a stream sent every `period`,
/// given the `gap` the watcher saw: on one ordered stream only what was
/// sent during the silence can be missing. Twice that, for the sender's
/// catch-up after a stall of its own, plus 3. Measured: 1-4 of 217 emitter
/// messages and 0-1 of 55 client messages, for a 7-11 ms gap.
fn loss_bound(gap: Duration, period: Duration) -> usize {
    2 * (gap.as_millis() / period.as_millis()) as usize + 3
}

/// A watcher's silence after a kill within [`GAP_BOUND`], and what it lost
/// of a stream sent every `period` within [`loss_bound`].
fn assert_bounded(what: &str, gap: Duration, lost: usize, period: Duration) {
    assert!(
        gap <= GAP_BOUND,
        "{what}: silent for {gap:?} (bound {GAP_BOUND:?})"
    );
    let bound = loss_bound(gap, period);
    assert!(lost <= bound, "{what}: lost {lost} (bound {bound})");
}

async fn gateway(
    name: &str,
    master: &RedisServer,
    replicas: &[&RedisServer],
) -> anyhow::Result<GatewayProcess> {
    let replica_urls = replicas
        .iter()
        .map(|r| r.url())
        .collect::<Vec<_>>()
        .join(",");
    GatewayProcess::start(
        name,
        &[
            ("GATEWAY_REDIS__URL", master.url().as_str()),
            ("GATEWAY_REDIS__REPLICA_URLS", replica_urls.as_str()),
            ("GATEWAY_REDIS__SUBSCRIBER_SELECTION", "first"),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_killed_then_restarted_with_full_resync() -> anyhow::Result<()> {
    let master = RedisServer::master().await?;
    let mut replica_a = RedisServer::replica_of(&master).await?;
    let replica_b = RedisServer::replica_of(&master).await?;
    // gw-a subscribes on replica A (then B, then the master); gw-b on B.
    let gw_a = gateway("gw-a", &master, &[&replica_a, &replica_b]).await?;
    let gw_b = gateway("gw-b", &master, &[&replica_b, &replica_a]).await?;
    let (rec_a, got_a) = load::record(NodePeer::client("watch-a", &gw_a.url(), &[]).await?);
    let talker = load::talker_load(
        NodePeer::client("talker", &gw_b.url(), &[]).await?,
        TALK_PERIOD,
    );
    let emitter = Emitter::connect(&RedisConfig::new(master.url())).await?;
    let emits = load::emitter_load(emitter, EMIT_PERIOD);
    let warm = Instant::now();
    load::first_after(&got_a.seq, warm, Duration::from_secs(5)).await?;
    load::first_after(&got_a.message, warm, Duration::from_secs(5)).await?;

    // 1. kill -9 the replica gw-a subscribes on.
    let killed = Instant::now();
    replica_a.kill();
    let back = load::first_after(
        &got_a.seq,
        killed + Duration::from_millis(50),
        RECOVERY_BOUND * 3,
    )
    .await?;
    let talk_back = load::first_after(
        &got_a.message,
        killed + Duration::from_millis(50),
        RECOVERY_BOUND * 3,
    )
    .await?;
    let end = load::one_more_second().await?;
    let gap = load::longest_gap(&got_a.seq, killed, end);
    let (lost, sent) = load::lost(
        &emits.log,
        &got_a.seq,
        killed - Duration::from_millis(200),
        end,
    );
    let (lost_talk, talked) = load::lost(
        &talker.log,
        &got_a.message,
        killed - Duration::from_millis(200),
        end,
    );
    eprintln!(
        "[chaos replica kill] gw-a received the emitter again after {:?}, client messages after {:?}; \
         longest silence {gap:?}; lost emitter {lost}/{sent}, client {lost_talk}/{talked}",
        back.at.duration_since(killed),
        talk_back.at.duration_since(killed),
    );
    assert_bounded("gw-a, emitter messages", gap, lost, EMIT_PERIOD);
    assert_bounded("gw-a, client messages", gap, lost_talk, TALK_PERIOD);

    // 2. the replica comes back empty (no persistence: full resync); gw-a
    // moves back to it, its preferred server, without losing or repeating
    // a message across the move.
    let channel = "socket.io-request#/#";
    // A second, fast load (as fast as Redis acknowledges, numbered apart)
    // so that even a few milliseconds of overlap or gap at the switch would
    // show as repeated or lost messages.
    let fast = load::emitter_load_from(
        Emitter::connect(&RedisConfig::new(master.url())).await?,
        Duration::from_micros(200),
        1_000_000_000,
    );
    let restarted = Instant::now();
    replica_a.restart().await?;
    assert!(replica_a.master_link_up().await?);
    e2e::wait_until(
        "gw-a back on the resynced replica A, only gw-b left on B",
        Duration::from_secs(20),
        || async {
            replica_a.numsub(channel).await.unwrap_or(0) == 1
                && replica_b.numsub(channel).await.unwrap_or(0) == 1
        },
    )
    .await?;
    let moved_back = Instant::now();
    let settled = moved_back + Duration::from_secs(1);
    e2e::wait_until(
        "a second of load after the move",
        Duration::from_secs(3),
        || async { Instant::now() >= settled },
    )
    .await?;
    let fast_log = fast.log.clone();
    fast.stop().await?;
    let drained = Instant::now() + Duration::from_millis(500);
    e2e::wait_until("late deliveries", Duration::from_secs(2), || async {
        Instant::now() >= drained
    })
    .await?;
    let (lost_move, sent_move) = load::lost(&emits.log, &got_a.seq, restarted, settled);
    let (lost_fast, sent_fast) = load::lost(&fast_log, &got_a.seq, restarted, settled);
    let repeated = load::repeated(&got_a.seq);
    eprintln!(
        "[chaos replica restart] gw-a back on replica A {:?} after its restart; \
         across the move lost {lost_move}/{sent_move} steady and {lost_fast}/{sent_fast} fast \
         emitter messages, {repeated} received twice",
        moved_back.duration_since(restarted),
    );
    if lost_move + lost_fast > 0 {
        let metrics = gw_a.scrape().await.unwrap_or_default();
        let drops: Vec<&str> = metrics
            .lines()
            .filter(|l| l.contains("dropped") && !l.starts_with('#'))
            .collect();
        eprintln!(
            "[chaos replica restart] lost: {:?}\ngw-a drop counters:\n{}\ngw-a logs:\n{}",
            load::missing(&emits.log, &got_a.seq, restarted, settled)
                .into_iter()
                .chain(load::missing(&fast_log, &got_a.seq, restarted, settled))
                .map(|s| (s.n, s.at.duration_since(restarted)))
                .collect::<Vec<_>>(),
            drops.join("\n"),
            gw_a.logs().text(),
        );
    }
    assert_eq!(lost_move + lost_fast, 0, "messages lost while moving back");
    assert_eq!(repeated, 0, "messages received twice");

    // 3. replica B dies: gw-b moves to its next choice, replica A.
    let (rec_b, got_b) = load::record(NodePeer::client("watch-b", &gw_b.url(), &[]).await?);
    // watch-b only counts from its first message: what was sent before it
    // connected is not a loss.
    let watching_b = load::first_after(&got_b.seq, Instant::now(), Duration::from_secs(5))
        .await?
        .at;
    let mut replica_b = replica_b;
    let killed_b = Instant::now();
    replica_b.kill();
    let back_b = load::first_after(
        &got_b.seq,
        killed_b + Duration::from_millis(50),
        RECOVERY_BOUND * 3,
    )
    .await?;
    e2e::wait_until(
        "both gateways subscribed on replica A",
        Duration::from_secs(5),
        || async {
            replica_a.numsub(channel).await.unwrap_or(0) == 2
                && master.numsub(channel).await.unwrap_or(0) == 0
        },
    )
    .await?;
    let end_b = load::one_more_second().await?;
    let gap_b = load::longest_gap(&got_b.seq, killed_b, end_b);
    let (lost_b, sent_b) = load::lost(
        &emits.log,
        &got_b.seq,
        watching_b.max(killed_b - Duration::from_millis(200)),
        end_b,
    );
    eprintln!(
        "[chaos replica kill B] gw-b received again after {:?}, now on replica A with gw-a; \
         longest silence {gap_b:?}; lost emitter {lost_b}/{sent_b}",
        back_b.at.duration_since(killed_b),
    );
    assert_bounded("gw-b, emitter messages", gap_b, lost_b, EMIT_PERIOD);

    emits.stop().await?;
    drop(talker.stop().await?);
    drop(rec_a.stop().await?);
    drop(rec_b.stop().await?);
    for received in [&got_a, &got_b] {
        let disconnects = received
            .disconnects
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default();
        assert!(
            disconnects.is_empty(),
            "client disconnected: {disconnects:?}"
        );
    }
    Ok(())
}
