//! Where the master and the usable replicas are, as Redis Sentinel says.
//!
//! A failover promotes a replica and re-points the others, a dead replica is
//! flagged down, a restarted one comes back. A watcher task keeps one
//! [`Topology`] current on a `watch` channel, from two sources on one
//! sentinel at a time: its pub/sub events (`+switch-master`, `+sdown`,
//! `-sdown`, `+slave`, ...) for speed, and a periodic poll so a missed
//! event (or a sentinel that died) costs at most one poll interval. Which
//! replicas count as usable is decided by [`crate::replicas`].

use std::{sync::Arc, time::Duration};

use fred::{
    clients::SentinelClient,
    interfaces::{ClientLike, EventInterface, PubsubInterface},
    types::ConnectHandle,
};
use tokio::sync::{broadcast::error::RecvError, watch};
use tracing::Instrument;

use crate::{
    endpoint::{quit_in_background, Endpoint},
    error::Error,
    replicas::{usable_replicas, FormerMasters},
    sentinel::SentinelSettings,
};

/// Sentinel events after which the topology is read again at once.
const SENTINEL_EVENTS: &[&str] = &[
    "+switch-master",
    "+sdown",
    "-sdown",
    "+odown",
    "-odown",
    "+slave",
    "+convert-to-slave",
    "+slave-reconf-done",
    "+failover-end",
    "+reboot",
];

/// The servers of one master group as a sentinel last described them.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Where PUBLISH goes.
    pub master: Endpoint,
    /// Replicas that are up and in sync with `master`, sorted by address so
    /// every client sees the same order.
    pub replicas: Vec<Endpoint>,
}

impl Topology {
    /// Whether both name the same master and replicas.
    pub fn same_servers(&self, other: &Topology) -> bool {
        self.master.addr == other.master.addr
            && self.replicas.len() == other.replicas.len()
            && self
                .replicas
                .iter()
                .zip(&other.replicas)
                .all(|(a, b)| a.addr == b.addr)
    }
}

/// The receiving side of the topology watcher.
pub type TopologyRx = watch::Receiver<Arc<Topology>>;

/// Connects to a sentinel within the connect timeout; the handle resolves
/// when the connection ends.
async fn connect(
    settings: &SentinelSettings,
    client: &SentinelClient,
) -> Result<ConnectHandle, Error> {
    match tokio::time::timeout(settings.connect_timeout, client.init()).await {
        Ok(Ok(handle)) => Ok(handle),
        Ok(Err(err)) => Err(err.into()),
        Err(_) => Err(Error::timeout("timed out connecting to the sentinel")),
    }
}

/// Asks the sentinels, in order, for the current topology.
pub async fn discover(settings: &SentinelSettings) -> Result<Topology, Error> {
    let mut last_error = None;
    for (index, (host, port)) in settings.sentinels.iter().enumerate() {
        let client = settings.client(host, *port)?;
        let attempt = async {
            connect(settings, &client).await?;
            query(&client, settings, &FormerMasters::default(), "").await
        }
        .await;
        quit_in_background(&client);
        match attempt {
            Ok(topology) => return Ok(topology),
            Err(err) => {
                tracing::warn!(sentinel = %settings.label(index), %err, "sentinel did not answer");
                last_error = Some(err);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| Error::Sentinel("no sentinel configured".to_owned())))
}

/// Keeps `topology` current until `shutdown` (or until every receiver is
/// gone). Ends by dropping `topology`, which tells its receivers.
pub fn spawn_watcher(
    settings: SentinelSettings,
    topology: watch::Sender<Arc<Topology>>,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut next = 0usize;
        let mut failed_in_a_row = 0usize;
        let mut former_masters = FormerMasters::default();
        loop {
            if *shutdown.borrow() || topology.is_closed() {
                return;
            }
            let Some((host, port)) = settings.sentinels.get(next).cloned() else {
                return;
            };
            let label = settings.label(next);
            let span = tracing::info_span!("sentinel_watcher", sentinel = %label);
            let watched = watch_one(
                &settings,
                (&host, port),
                &topology,
                &mut former_masters,
                shutdown.clone(),
            )
            .instrument(span)
            .await;
            match watched {
                Ok(true) => return,
                Ok(false) => failed_in_a_row = 0,
                Err(err) => {
                    failed_in_a_row += 1;
                    tracing::warn!(sentinel = %label, %err, "sentinel unusable, trying the next one");
                }
            }
            next = (next + 1) % settings.sentinels.len();
            if failed_in_a_row >= settings.sentinels.len() {
                failed_in_a_row = 0;
                let mut shutdown = shutdown.clone();
                tokio::select! {
                    _ = tokio::time::sleep(settings.poll_interval) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    })
}

/// Follows one sentinel until it fails (`Ok(false)` after having worked,
/// `Err` if it never did) or shutdown (`Ok(true)`).
async fn watch_one(
    settings: &SentinelSettings,
    (host, port): (&str, u16),
    topology: &watch::Sender<Arc<Topology>>,
    former_masters: &mut FormerMasters,
    mut shutdown: watch::Receiver<bool>,
) -> Result<bool, Error> {
    let commands = settings.client(host, port)?;
    let events = settings.client(host, port)?;
    let result = async {
        let mut messages = events.message_rx();
        connect(settings, &commands).await?;
        let mut events_connection = connect(settings, &events).await?;
        let channels: Vec<String> = SENTINEL_EVENTS.iter().map(|e| (*e).to_owned()).collect();
        events.subscribe(channels).await?;
        refresh(&commands, settings, topology, former_masters).await?;
        tracing::info!("following sentinel events");
        let mut poll = tokio::time::interval(settings.poll_interval);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failed_polls = 0u32;
        loop {
            tokio::select! {
                message = messages.recv() => {
                    match message {
                        Ok(message) => tracing::info!(event = &*message.channel, detail = ?message.value.as_str(), "sentinel event"),
                        Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => return Ok(false),
                    }
                    if let Err(err) = refresh(&commands, settings, topology, former_masters).await {
                        tracing::warn!(%err, "topology refresh after an event failed");
                    }
                }
                _ = poll.tick() => match refresh(&commands, settings, topology, former_masters).await {
                    Ok(()) => failed_polls = 0,
                    Err(err) => {
                        failed_polls += 1;
                        tracing::debug!(%err, failed_polls, "topology poll failed");
                        if failed_polls >= 2 {
                            return Ok(false);
                        }
                    }
                },
                _ = &mut events_connection => return Ok(false),
                _ = topology.closed() => return Ok(true),
                _ = shutdown.changed() => return Ok(true),
            }
        }
    }
    .await;
    quit_in_background(&commands);
    quit_in_background(&events);
    result
}

/// Asks again and publishes the answer if the servers changed.
async fn refresh(
    client: &SentinelClient,
    settings: &SentinelSettings,
    topology: &watch::Sender<Arc<Topology>>,
    former_masters: &mut FormerMasters,
) -> Result<(), Error> {
    let previous = topology.borrow().master.addr.clone();
    let current = query(client, settings, former_masters, &previous).await?;
    if current.master.addr != previous {
        former_masters.replaced(&previous, &current.master.addr);
    }
    if !topology.borrow().same_servers(&current) {
        tracing::info!(
            master = %current.master.label,
            replicas = ?current.replicas.iter().map(|r| r.label.as_str()).collect::<Vec<_>>(),
            "redis topology changed"
        );
        topology.send_replace(Arc::new(current));
    }
    Ok(())
}

/// The master and its usable replicas. `known_master` (empty when there is
/// none yet) counts as a former master in case this very answer names a new
/// one.
async fn query(
    client: &SentinelClient,
    settings: &SentinelSettings,
    former_masters: &FormerMasters,
    known_master: &str,
) -> Result<Topology, Error> {
    let (host, port) = settings.master_addr(client).await?;
    let listed = settings.replicas(client).await?;
    let suspects = former_masters.suspects(known_master);
    let replicas = usable_replicas(&format!("{host}:{port}"), &listed, &suspects)
        .into_iter()
        .map(|(host, port)| settings.endpoint(&host, port))
        .collect();
    Ok(Topology {
        master: settings.endpoint(&host, port),
        replicas,
    })
}

/// How long a caller should give [`discover`]: one connect timeout per
/// sentinel, and one more for the commands.
pub fn discovery_timeout(settings: &SentinelSettings) -> Duration {
    settings.connect_timeout * (settings.sentinels.len() as u32 + 1)
}
