//! Keeps the emitter's connection on the master the sentinels name.
//!
//! fred's Sentinel client asks the sentinels where the master is only when it
//! (re)connects. When a failover leaves the old master running (a manual
//! `SENTINEL FAILOVER`, a partition that heals), nothing breaks that
//! connection: the old master keeps acknowledging PUBLISH until Sentinel's
//! next INFO round turns it into a replica, up to ten seconds later, and no
//! gateway hears what is published there. So a task asks the sentinels every
//! `sentinel_poll_interval_ms` and forces a reconnection when the connection
//! is on another server than the one they name.

use std::time::Duration;

use fred::{
    clients::Client,
    interfaces::ClientLike,
    prelude::{Builder, Config, ServerConfig},
    types::{CustomCommand, RespVersion, Value as RedisValue},
};
use tokio::task::JoinHandle;

use crate::config::RedisConfig;

/// The follower task; stopped when the last [`crate::Emitter`] clone holding
/// it is dropped.
#[derive(Debug)]
pub(crate) struct MasterFollower {
    task: JoinHandle<()>,
}

impl MasterFollower {
    pub(crate) fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for MasterFollower {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where to ask and how often.
struct Sentinels {
    hosts: Vec<(String, u16)>,
    master_name: String,
    password: Option<String>,
    timeout: Duration,
}

impl MasterFollower {
    /// Starts following for `publisher`, a fred Sentinel client.
    pub(crate) fn spawn(
        publisher: Client,
        config: &RedisConfig,
        hosts: Vec<(String, u16)>,
    ) -> Self {
        let sentinels = Sentinels {
            hosts,
            master_name: config.sentinel_master.clone(),
            password: config.sentinel_password.clone(),
            timeout: config.connect_timeout(),
        };
        let poll_interval = config.sentinel_poll_interval();
        let span = tracing::info_span!("sentinel_master_follower", master = %sentinels.master_name);
        let task = tokio::spawn(tracing::Instrument::instrument(
            follow(publisher, sentinels, poll_interval),
            span,
        ));
        Self { task }
    }
}

async fn follow(publisher: Client, sentinels: Sentinels, poll_interval: Duration) {
    let mut asking: Option<(usize, QuitOnDrop)> = None;
    let mut next = 0usize;
    let mut poll = tokio::time::interval(poll_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        poll.tick().await;
        let (index, sentinel) = match asking.take() {
            Some(current) => current,
            None => {
                let index = next;
                next = (next + 1) % sentinels.hosts.len().max(1);
                match sentinels.connect(index).await {
                    Some(client) => (index, QuitOnDrop(client)),
                    None => continue,
                }
            }
        };
        let named = match sentinels.master_addr(&sentinel.0).await {
            Ok(named) => named,
            Err(err) => {
                tracing::warn!(sentinel = %sentinels.label(index), %err, "sentinel did not name the master, asking the next one");
                continue;
            }
        };
        asking = Some((index, sentinel));
        // While fred is reconnecting there is no connection to judge, and
        // the reconnection asks the sentinels anyway.
        let Some(connected) = publisher.active_connections().into_iter().next() else {
            continue;
        };
        let connected = format!("{}:{}", connected.host, connected.port);
        if connected != named {
            tracing::warn!(%connected, master = %named, "publishing on a server that is no longer the master, reconnecting");
            if let Err(err) = publisher.force_reconnection().await {
                tracing::warn!(%err, "reconnection failed, fred keeps retrying");
            }
        }
    }
}

impl Sentinels {
    fn label(&self, index: usize) -> String {
        self.hosts
            .get(index)
            .map(|(host, port)| format!("{host}:{port}"))
            .unwrap_or_default()
    }

    /// A connection to sentinel `index`, or `None` (logged) if it is out of reach.
    async fn connect(&self, index: usize) -> Option<Client> {
        let (host, port) = self.hosts.get(index)?;
        let config = Config {
            server: ServerConfig::new_centralized(host, *port),
            password: self.password.clone(),
            version: RespVersion::RESP2,
            ..Config::default()
        };
        let timeout = self.timeout;
        let mut builder = Builder::from_config(config);
        builder
            .with_connection_config(|c| {
                c.connection_timeout = timeout;
                c.internal_command_timeout = timeout;
                c.max_command_attempts = 1;
            })
            .with_performance_config(|p| p.default_command_timeout = timeout);
        let client = match builder.build() {
            Ok(client) => client,
            Err(err) => {
                tracing::warn!(sentinel = %self.label(index), %err, "cannot configure a sentinel connection");
                return None;
            }
        };
        match tokio::time::timeout(timeout, client.init()).await {
            Ok(Ok(_)) => Some(client),
            Ok(Err(err)) => {
                tracing::warn!(sentinel = %self.label(index), %err, "sentinel unreachable");
                None
            }
            Err(_) => {
                tracing::warn!(sentinel = %self.label(index), "timed out connecting to the sentinel");
                quit_in_background(client);
                None
            }
        }
    }

    /// `host:port` of the master, as `SENTINEL GET-MASTER-ADDR-BY-NAME` says.
    async fn master_addr(&self, sentinel: &Client) -> Result<String, String> {
        let reply: RedisValue = sentinel
            .custom(
                CustomCommand::new_static("SENTINEL", None, false),
                vec!["GET-MASTER-ADDR-BY-NAME", self.master_name.as_str()],
            )
            .await
            .map_err(|err| err.to_string())?;
        match reply {
            RedisValue::Array(items) if items.len() == 2 => {
                match (items[0].as_string(), items[1].as_string()) {
                    (Some(host), Some(port)) if port.parse::<u16>().is_ok() => {
                        Ok(format!("{host}:{port}"))
                    }
                    _ => Err("malformed master address".to_owned()),
                }
            }
            RedisValue::Null => Err(format!(
                "the sentinel does not know master `{}`",
                self.master_name
            )),
            other => Err(format!("unexpected reply of kind {:?}", other.kind())),
        }
    }
}

/// A sentinel connection closed when the follower lets go of it (or is
/// aborted): fred keeps a connection open until told to quit.
struct QuitOnDrop(Client);

impl Drop for QuitOnDrop {
    fn drop(&mut self) {
        quit_in_background(self.0.clone());
    }
}

fn quit_in_background(client: Client) {
    // No runtime left (process exit): the socket closes with the process.
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = tokio::time::timeout(Duration::from_millis(200), client.quit()).await;
        });
    }
}
