//! Keeps a publisher on the master the sentinels name.
//!
//! fred's Sentinel client asks the sentinels where the master is only when
//! it (re)connects, and the sentinel it asks may not have heard of the
//! failover yet. When a failover leaves the old master running (a manual
//! `SENTINEL FAILOVER`, a partition that heals), nothing breaks the
//! connection: the old master keeps acknowledging PUBLISH until Sentinel
//! demotes it, up to ten seconds later, and no subscriber hears what is
//! published there. So the server the publisher is connected to is checked
//! on every topology change and every poll interval, and the connection is
//! moved until it is on the master.

use std::{sync::Arc, time::Duration};

use fred::{clients::Client, interfaces::ClientLike};
use tokio::{sync::watch, task::JoinHandle};
use tracing::Instrument;

use crate::{
    endpoint::connected_addr,
    sentinel::SentinelSettings,
    topology::{discover, spawn_watcher, TopologyRx},
};

/// Follows `topology` with `publisher` until the topology's sender is gone.
pub fn spawn_publisher_follower(
    publisher: Client,
    topology: TopologyRx,
    check_every: Duration,
    reconnect_timeout: Duration,
) -> JoinHandle<()> {
    let span = tracing::info_span!("publisher_follower");
    tokio::spawn(follow(publisher, topology, check_every, reconnect_timeout).instrument(span))
}

async fn follow(
    publisher: Client,
    mut topology: TopologyRx,
    check_every: Duration,
    reconnect_timeout: Duration,
) {
    let mut ticker = tokio::time::interval(check_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = topology.changed() => if changed.is_err() {
                return;
            },
            _ = ticker.tick() => {}
        }
        let master = topology.borrow_and_update().master.clone();
        // While fred reconnects there is nothing to judge; the
        // reconnection asks the sentinels anyway.
        let Some(connected) = connected_addr(&publisher) else {
            continue;
        };
        if connected == master.addr {
            continue;
        }
        tracing::warn!(%connected, master = %master.label, "publisher not on the master, reconnecting");
        match tokio::time::timeout(reconnect_timeout, publisher.force_reconnection()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(%err, "publisher reconnection failed, fred keeps retrying")
            }
            Err(_) => tracing::warn!("publisher reconnection timed out, fred keeps retrying"),
        }
    }
}

/// For a publisher that has no topology watcher of its own (the emitter):
/// discovers the topology in the background (the sentinels may be down at
/// start), watches it and keeps the publisher on its master. Stops when
/// dropped.
#[derive(Debug)]
pub struct MasterFollower {
    task: JoinHandle<()>,
    /// Stops the topology watcher (so does dropping it).
    shutdown: watch::Sender<bool>,
}

impl MasterFollower {
    /// Starts following for `publisher`, a fred client built from
    /// [`SentinelSettings::publisher_config`].
    pub fn spawn(publisher: Client, settings: SentinelSettings) -> Self {
        let (shutdown, shutdown_rx) = watch::channel(false);
        let span = tracing::info_span!("sentinel_master_follower", master = %settings.master_name);
        let task = tokio::spawn(
            async move {
                let topology = loop {
                    match discover(&settings).await {
                        Ok(topology) => break topology,
                        Err(err) => {
                            tracing::warn!(%err, "no sentinel named the master yet, asking again");
                            tokio::time::sleep(settings.poll_interval).await;
                        }
                    }
                };
                let check_every = settings.poll_interval;
                let reconnect_timeout = settings.connect_timeout * 2;
                let (topology_tx, topology_rx) = watch::channel(Arc::new(topology));
                let _watcher = spawn_watcher(settings, topology_tx, shutdown_rx);
                follow(publisher, topology_rx, check_every, reconnect_timeout).await;
            }
            .instrument(span),
        );
        Self { task, shutdown }
    }

    /// Stops following: the publisher stays where it is.
    pub fn stop(&self) {
        self.task.abort();
        self.shutdown.send_replace(true);
    }
}

impl Drop for MasterFollower {
    fn drop(&mut self) {
        self.stop();
    }
}
