//! Where the master and the usable replicas are, when Redis Sentinel says so.
//!
//! With a fixed layout the servers never change. With Sentinel they do: a
//! failover promotes a replica and re-points the others, a dead replica is
//! flagged down, a restarted one comes back. A watcher task keeps one
//! [`Topology`] current on a `watch` channel, from two sources on one
//! sentinel at a time: its pub/sub events (`+switch-master`, `+sdown`,
//! `-sdown`, `+slave`, ...) for speed, and a periodic
//! `SENTINEL GET-MASTER-ADDR-BY-NAME` / `SENTINEL REPLICAS` poll so a missed
//! event (or a sentinel that died) costs at most one poll interval. The
//! subscribers and the node counters follow the channel; the publisher uses
//! fred's own Sentinel client and is told to reconnect when the master moves.

use std::{sync::Arc, time::Duration};

use fred::{
    clients::Client,
    interfaces::{ClientLike, EventInterface, PubsubInterface},
    prelude::{Builder, Config, Server, ServerConfig},
    types::{CustomCommand, RespVersion, Value as RedisValue},
};
use tokio::sync::watch;
use tracing::Instrument;

use crate::{config::AdapterConfig, connection::Endpoint, error::Error};

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
pub(crate) struct Topology {
    /// Where PUBLISH goes.
    pub master: Endpoint,
    /// Replicas that are up and in sync with `master`, sorted by address so
    /// every gateway sees the same order (the hash selection relies on it).
    pub replicas: Vec<Endpoint>,
}

impl Topology {
    fn same_servers(&self, other: &Topology) -> bool {
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
pub(crate) type TopologyRx = watch::Receiver<Arc<Topology>>;

/// Sentinel settings resolved from [`AdapterConfig`].
#[derive(Debug, Clone)]
pub(crate) struct SentinelSettings {
    /// `host:port` of every sentinel.
    pub sentinels: Vec<(String, u16)>,
    pub master_name: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Credentials, database and TLS applied to every discovered server.
    pub base: Config,
    pub poll_interval: Duration,
    pub connect_timeout: Duration,
}

impl SentinelSettings {
    pub(crate) fn from_config(config: &AdapterConfig) -> Result<Self, Error> {
        let mut sentinels = Vec::with_capacity(config.sentinel_urls.len());
        let mut username = None;
        let mut password = config.sentinel_password.clone();
        for url in &config.sentinel_urls {
            let parsed = Config::from_url(url).map_err(|source| Error::InvalidUrl {
                url: crate::connection::redact(url),
                source,
            })?;
            for server in parsed.server.hosts() {
                sentinels.push((server.host.to_string(), server.port));
            }
            // Credentials in a sentinel URL are the sentinels' own.
            if username.is_none() {
                username = parsed.username.clone();
            }
            if password.is_none() {
                password = parsed.password.clone();
            }
        }
        let base = crate::connection::redis_config(&config.url, config)?;
        Ok(Self {
            sentinels,
            master_name: config.sentinel_master.clone(),
            username,
            password,
            base,
            poll_interval: config.sentinel_poll_interval(),
            connect_timeout: config.connect_timeout(),
        })
    }

    /// fred's Sentinel configuration: the publisher asks the sentinels for
    /// the master on every (re)connection.
    pub(crate) fn publisher_config(&self) -> Config {
        let mut config = self.base.clone();
        config.server = ServerConfig::Sentinel {
            hosts: self
                .sentinels
                .iter()
                .map(|(host, port)| Server::new(host.as_str(), *port))
                .collect(),
            service_name: self.master_name.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
        };
        config
    }

    /// A data node (master or replica) at `host:port` with the base settings.
    fn endpoint(&self, host: &str, port: u16) -> Endpoint {
        let mut config = self.base.clone();
        config.server = ServerConfig::new_centralized(host, port);
        let scheme = if is_tls(&config) { "rediss" } else { "redis" };
        Endpoint {
            label: format!("{scheme}://{host}:{port}"),
            addr: format!("{host}:{port}"),
            config,
        }
    }

    fn sentinel_client(&self, host: &str, port: u16) -> Result<Client, Error> {
        let mut config = Config {
            server: ServerConfig::new_centralized(host, port),
            username: self.username.clone(),
            password: self.password.clone(),
            version: RespVersion::RESP2,
            ..Config::default()
        };
        // Sentinels reject SELECT.
        config.database = None;
        let mut builder = Builder::from_config(config);
        let timeout = self.connect_timeout;
        builder
            .with_connection_config(|c| {
                c.connection_timeout = timeout;
                c.internal_command_timeout = timeout;
                c.max_command_attempts = 1;
            })
            .with_performance_config(|p| p.default_command_timeout = timeout);
        // No reconnect policy: the watcher moves to the next sentinel itself.
        Ok(builder.build()?)
    }
}

fn is_tls(config: &Config) -> bool {
    config.uses_tls()
}

/// Ask the sentinels, in order, for the current topology.
pub(crate) async fn discover(settings: &SentinelSettings) -> Result<Topology, Error> {
    let mut last_error = None;
    for (host, port) in &settings.sentinels {
        let client = settings.sentinel_client(host, *port)?;
        let attempt = async {
            tokio::time::timeout(settings.connect_timeout, client.init())
                .await
                .map_err(|_| Error::timeout("timed out connecting to the sentinel"))??;
            query(&client, settings, &[]).await
        }
        .await;
        let _ = tokio::time::timeout(Duration::from_millis(200), client.quit()).await;
        match attempt {
            Ok(topology) => return Ok(topology),
            Err(err) => {
                tracing::warn!(sentinel = %format!("{host}:{port}"), %err, "sentinel did not answer");
                last_error = Some(err);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| Error::Sentinel("no sentinel configured".to_owned())))
}

/// Keep `topology` current until `shutdown`.
pub(crate) fn spawn_watcher(
    settings: SentinelSettings,
    topology: watch::Sender<Arc<Topology>>,
    shutdown: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let mut next = 0usize;
        let mut failed_in_a_row = 0usize;
        let mut former_masters = FormerMasters::default();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let Some((host, port)) = settings.sentinels.get(next).cloned() else {
                return;
            };
            let span =
                tracing::info_span!("sentinel_watcher", sentinel = %format!("{host}:{port}"));
            match watch_one(
                &settings,
                &host,
                port,
                &topology,
                &mut former_masters,
                shutdown.clone(),
            )
            .instrument(span)
            .await
            {
                Ok(true) => return,
                Ok(false) => failed_in_a_row = 0,
                Err(err) => {
                    failed_in_a_row += 1;
                    tracing::warn!(sentinel = %format!("{host}:{port}"), %err, "sentinel unusable, trying the next one");
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
    });
}

/// Follow one sentinel until it fails (`Ok(false)` after having worked,
/// `Err` if it never did) or shutdown (`Ok(true)`).
async fn watch_one(
    settings: &SentinelSettings,
    host: &str,
    port: u16,
    topology: &watch::Sender<Arc<Topology>>,
    former_masters: &mut FormerMasters,
    mut shutdown: watch::Receiver<bool>,
) -> Result<bool, Error> {
    let commands = settings.sentinel_client(host, port)?;
    let events = settings.sentinel_client(host, port)?;
    let result = async {
        let mut messages = events.message_rx();
        tokio::time::timeout(settings.connect_timeout, commands.init())
            .await
            .map_err(|_| Error::timeout("timed out connecting to the sentinel"))??;
        let mut events_connection =
            tokio::time::timeout(settings.connect_timeout, events.init())
                .await
                .map_err(|_| Error::timeout("timed out connecting to the sentinel"))??;
        events
            .subscribe(
                SENTINEL_EVENTS
                    .iter()
                    .map(|e| (*e).to_owned())
                    .collect::<Vec<_>>(),
            )
            .await?;
        refresh(&commands, settings, topology, former_masters).await?;
        tracing::info!("following sentinel events");
        let mut poll = tokio::time::interval(settings.poll_interval);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failed_polls = 0u32;
        loop {
            tokio::select! {
                message = messages.recv() => match message {
                    Ok(message) => {
                        tracing::info!(event = &*message.channel, detail = ?message.value.as_str(), "sentinel event");
                        if let Err(err) = refresh(&commands, settings, topology, former_masters).await {
                            tracing::warn!(%err, "topology refresh after an event failed");
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let _ = refresh(&commands, settings, topology, former_masters).await;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(false),
                },
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
                _ = shutdown.changed() => return Ok(true),
            }
        }
    }
    .await;
    for client in [&commands, &events] {
        let client = client.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_millis(200), client.quit()).await;
        });
    }
    result
}

/// Masters this watcher saw replaced, most recent last. A replica the
/// sentinels still list as following one of them has not been re-pointed
/// yet: it is about to be (Sentinel then drops its pub/sub clients and it
/// resyncs), or it is cut off from the current master. The sentinels' view
/// of its link lags by up to their INFO period, so its link status alone
/// does not tell.
#[derive(Debug, Default)]
struct FormerMasters(Vec<String>);

impl FormerMasters {
    /// Enough for repeated failovers; older masters are replicas again.
    const KEPT: usize = 4;

    fn replaced(&mut self, previous: &str, current: &str) {
        self.0.retain(|addr| addr != previous && addr != current);
        self.0.push(previous.to_owned());
        if self.0.len() > Self::KEPT {
            self.0.remove(0);
        }
    }
}

async fn refresh(
    client: &Client,
    settings: &SentinelSettings,
    topology: &watch::Sender<Arc<Topology>>,
    former_masters: &mut FormerMasters,
) -> Result<(), Error> {
    let previous = topology.borrow().master.addr.clone();
    // The master known so far counts as former in case this very answer
    // names a new one.
    let mut suspects = former_masters.0.clone();
    suspects.push(previous.clone());
    let current = query(client, settings, &suspects).await?;
    if current.master.addr != previous {
        former_masters.replaced(&previous, &current.master.addr);
    }
    let changed = !topology.borrow().same_servers(&current);
    if changed {
        tracing::info!(
            master = %current.master.label,
            replicas = ?current.replicas.iter().map(|r| r.label.as_str()).collect::<Vec<_>>(),
            "redis topology changed"
        );
        topology.send_replace(Arc::new(current));
    }
    Ok(())
}

/// The master and its usable replicas; a replica following one of
/// `former_masters` (other than the current master) is not usable.
async fn query(
    client: &Client,
    settings: &SentinelSettings,
    former_masters: &[String],
) -> Result<Topology, Error> {
    let sentinel = CustomCommand::new_static("SENTINEL", None, false);
    let master: RedisValue = client
        .custom(
            sentinel.clone(),
            vec!["GET-MASTER-ADDR-BY-NAME", settings.master_name.as_str()],
        )
        .await?;
    let (host, port) = match master {
        RedisValue::Array(items) if items.len() == 2 => {
            let host = items[0].as_string();
            let port = items[1].as_string().and_then(|p| p.parse::<u16>().ok());
            match (host, port) {
                (Some(host), Some(port)) => (host, port),
                _ => return Err(Error::Sentinel("malformed master address".to_owned())),
            }
        }
        RedisValue::Null => {
            return Err(Error::Sentinel(format!(
                "sentinel does not know master `{}`",
                settings.master_name
            )))
        }
        other => {
            return Err(Error::Sentinel(format!(
                "unexpected master address reply {:?}",
                other.kind()
            )))
        }
    };
    let replicas: RedisValue = client
        .custom(sentinel, vec!["REPLICAS", settings.master_name.as_str()])
        .await?;
    let mut usable: Vec<Endpoint> = parse_replicas(replicas)
        .into_iter()
        .filter(|r| r.usable())
        .filter(|r| !(r.host == host && r.port == port))
        .filter(|r| {
            let follows = r.master_addr();
            follows == format!("{host}:{port}") || !former_masters.contains(&follows)
        })
        .map(|r| settings.endpoint(&r.host, r.port))
        .collect();
    usable.sort_by(|a, b| a.addr.cmp(&b.addr));
    usable.dedup_by(|a, b| a.addr == b.addr);
    Ok(Topology {
        master: settings.endpoint(&host, port),
        replicas: usable,
    })
}

/// One entry of `SENTINEL REPLICAS`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ReplicaInfo {
    pub host: String,
    pub port: u16,
    pub flags: String,
    pub master_link_status: String,
    /// The master it reports replicating from (`master-host`, `master-port`).
    pub master_host: String,
    pub master_port: String,
}

impl ReplicaInfo {
    /// Up (not subjectively/objectively down, connected to the sentinel) and
    /// in sync with its master: a subscriber there sees every PUBLISH.
    pub(crate) fn usable(&self) -> bool {
        !self
            .flags
            .split(',')
            .any(|flag| matches!(flag, "s_down" | "o_down" | "disconnected"))
            && self.master_link_status == "ok"
    }

    /// `host:port` of the master it follows (empty when not reported).
    pub(crate) fn master_addr(&self) -> String {
        format!("{}:{}", self.master_host, self.master_port)
    }
}

/// `SENTINEL REPLICAS` is an array of flat `[key, value, ...]` arrays
/// (RESP2) or of maps (RESP3). Entries without a usable address are skipped.
pub(crate) fn parse_replicas(reply: RedisValue) -> Vec<ReplicaInfo> {
    let RedisValue::Array(entries) = reply else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter_map(|entry| {
            let pairs: Vec<(String, String)> = match entry {
                RedisValue::Array(flat) => flat
                    .chunks_exact(2)
                    .filter_map(|kv| Some((kv[0].as_string()?, kv[1].as_string()?)))
                    .collect(),
                RedisValue::Map(map) => map
                    .inner()
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_string()?)))
                    .collect(),
                _ => return None,
            };
            let mut info = ReplicaInfo::default();
            let mut port = None;
            for (key, value) in pairs {
                match key.as_str() {
                    "ip" => info.host = value,
                    "port" => port = value.parse::<u16>().ok(),
                    "flags" => info.flags = value,
                    "master-link-status" => info.master_link_status = value,
                    "master-host" => info.master_host = value,
                    "master-port" => info.master_port = value,
                    _ => {}
                }
            }
            info.port = port?;
            (!info.host.is_empty()).then_some(info)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(pairs: &[(&str, &str)]) -> RedisValue {
        RedisValue::Array(
            pairs
                .iter()
                .flat_map(|(k, v)| [RedisValue::from(*k), RedisValue::from(*v)])
                .collect(),
        )
    }

    #[test]
    fn parses_and_filters_replicas() {
        let reply = RedisValue::Array(vec![
            flat(&[
                ("name", "127.0.0.1:7001"),
                ("ip", "127.0.0.1"),
                ("port", "7001"),
                ("flags", "slave"),
                ("master-link-status", "ok"),
                ("master-host", "127.0.0.1"),
                ("master-port", "7000"),
            ]),
            flat(&[
                ("ip", "127.0.0.1"),
                ("port", "7002"),
                ("flags", "s_down,slave,disconnected"),
                ("master-link-status", "err"),
            ]),
            flat(&[
                ("ip", "127.0.0.1"),
                ("port", "7003"),
                ("flags", "slave"),
                ("master-link-status", "err"),
            ]),
            flat(&[("ip", "127.0.0.1"), ("port", "not a port")]),
            RedisValue::from("garbage"),
        ]);
        let replicas = parse_replicas(reply);
        assert_eq!(replicas.len(), 3);
        assert_eq!(replicas[0].port, 7001);
        assert_eq!(replicas[0].master_addr(), "127.0.0.1:7000");
        let usable: Vec<u16> = replicas
            .iter()
            .filter(|r| r.usable())
            .map(|r| r.port)
            .collect();
        assert_eq!(usable, vec![7001]);
    }

    #[test]
    fn former_masters_keep_the_latest_few_and_never_the_current_one() {
        let mut former = FormerMasters::default();
        former.replaced("a:1", "b:1");
        former.replaced("b:1", "a:1");
        assert_eq!(former.0, vec!["b:1"], "a:1 is the master again");
        for n in 2..10 {
            former.replaced(&format!("x:{n}"), "a:1");
        }
        assert_eq!(former.0.len(), FormerMasters::KEPT);
        assert_eq!(former.0.last().map(String::as_str), Some("x:9"));
    }

    #[test]
    fn non_array_reply_means_no_replicas() {
        assert!(parse_replicas(RedisValue::Null).is_empty());
    }
}
