//! Adapter configuration, loaded by the gateway through the `config` crate.
//!
//! Every field has a default so a configuration file only names what it
//! changes; durations are plain milliseconds because that is what operators
//! write in TOML and environment variables.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, InvalidField};

/// How a gateway picks the server its broadcast subscriber connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriberSelection {
    /// A replica chosen by a hash of the node uid, so a fleet spreads evenly
    /// over the replicas without coordination.
    #[default]
    Hash,
    /// Always the first configured replica (the others are fallbacks).
    First,
    /// A replica picked at random at start-up.
    Random,
    /// The master, even when replicas are configured.
    Master,
}

/// Configuration of the Redis adapter.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct AdapterConfig {
    /// The master: every PUBLISH goes here, e.g. `redis://127.0.0.1:6379`.
    ///
    /// `redis://user:pass@host:port/db` carries ACL credentials (or just
    /// `:pass@`) and a database number; `rediss://` uses TLS. Pub/sub ignores
    /// the database number (channels are global to a server), so it only
    /// changes the `SELECT` each connection sends. With Sentinel
    /// ([`Self::sentinel_urls`]) the host and port here are not used, but the
    /// credentials, database and TLS apply to every discovered server.
    pub url: String,
    /// Replicas of `url` that subscribers may use. Empty: subscribe on the
    /// master.
    pub replica_urls: Vec<String>,
    /// Channel prefix (the Node adapter's `key` option).
    pub prefix: String,
    /// How long a cluster request (fetch sockets, rooms, server-side emit
    /// with ack, ...) waits for the other nodes.
    pub request_timeout_ms: u64,
    /// Which replica the broadcast subscriber prefers.
    pub subscriber_selection: SubscriberSelection,
    /// Subscribe the request and response channels on the master rather than
    /// on the replica.
    ///
    /// Node's `@socket.io/redis-adapter` counts the nodes with
    /// `PUBSUB NUMSUB` on its own (master) connection only, so in a fleet
    /// that mixes Node and Rust nodes a Rust node whose request subscriber
    /// sits on a replica is invisible to Node's `fetchSockets`,
    /// `serverSideEmitWithAck` and `emitWithAck` counting. Turning this on
    /// costs one more connection to the master per gateway; broadcasts still
    /// come from the replica.
    pub requests_on_master: bool,
    /// Also accept the 2014 `socket.io-emitter` 0.2.0 messages published on
    /// `<prefix>#emitter`, delivered like broadcasts.
    pub legacy_emitter: bool,
    /// Capacity of each per-namespace inbound queue (one for broadcasts, one
    /// for requests and responses). Messages arriving while a queue is full
    /// are dropped and counted.
    pub buffer_size: usize,
    /// How long a subscriber waits for a server to accept a connection
    /// before trying the next one.
    pub connect_timeout_ms: u64,
    /// Interval of the subscriber's liveness PING; a server that misses two
    /// in a row is abandoned for the next one.
    pub subscriber_ping_interval_ms: u64,
    /// Redis Sentinel instances (`redis://[user:pass@]host:26379`). When
    /// set, the master comes from the sentinels rather than [`Self::url`],
    /// and the replicas too unless [`Self::replica_urls`] is given; both are
    /// followed across failovers.
    pub sentinel_urls: Vec<String>,
    /// The master group name the sentinels monitor.
    pub sentinel_master: String,
    /// Password of the sentinels themselves (`requirepass` in sentinel.conf),
    /// when not given in the sentinel URLs.
    pub sentinel_password: Option<String>,
    /// How often the topology is read from a sentinel besides its events.
    pub sentinel_poll_interval_ms: u64,
    /// PEM file of the certificate authorities to trust for `rediss://`
    /// servers, instead of the system's (a private CA, a self-signed
    /// certificate). Only valid with a `rediss://` URL.
    pub tls_ca_file: Option<String>,
}

impl Default for AdapterConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".to_owned(),
            replica_urls: Vec::new(),
            prefix: "socket.io".to_owned(),
            request_timeout_ms: 5000,
            subscriber_selection: SubscriberSelection::Hash,
            requests_on_master: false,
            legacy_emitter: false,
            buffer_size: 4096,
            connect_timeout_ms: 1000,
            subscriber_ping_interval_ms: 500,
            sentinel_urls: Vec::new(),
            sentinel_master: "mymaster".to_owned(),
            sentinel_password: None,
            sentinel_poll_interval_ms: 1000,
            tls_ca_file: None,
        }
    }
}

impl AdapterConfig {
    /// A configuration for the master at `url`, defaults elsewhere.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// Tidies values as operators write them: list items trimmed and empty
    /// ones dropped, a bare `host:port` sentinel given its `redis://`, empty
    /// optional strings unset.
    pub fn normalize(&mut self) {
        let tidy = |list: &mut Vec<String>| {
            *list = list
                .iter()
                .map(|item| item.trim().to_owned())
                .filter(|item| !item.is_empty())
                .collect();
        };
        tidy(&mut self.replica_urls);
        tidy(&mut self.sentinel_urls);
        for url in &mut self.sentinel_urls {
            if !url.contains("://") {
                *url = format!("redis://{url}");
            }
        }
        for optional in [&mut self.sentinel_password, &mut self.tls_ca_file] {
            if optional.as_deref().is_some_and(|v| v.trim().is_empty()) {
                *optional = None;
            }
        }
    }

    /// Checks every field; the error names the first one that cannot be
    /// used. [`crate::ClusterHandle::connect`] runs it, and so does the
    /// gateway when it loads its configuration.
    pub fn validate(&self) -> Result<(), InvalidField> {
        let invalid = |field, reason: String| Err(InvalidField { field, reason });
        check_redis_url("url", &self.url)?;
        for url in &self.replica_urls {
            check_redis_url("replica_urls", url)?;
        }
        for url in &self.sentinel_urls {
            check_redis_url("sentinel_urls", url)?;
        }
        if self.tls_ca_file.is_some() && !self.url.starts_with("rediss://") {
            return invalid(
                "tls_ca_file",
                "is set but the url is not a rediss:// URL (with sentinels, the url carries the TLS choice)".into(),
            );
        }
        if self.uses_sentinel() && self.sentinel_master.trim().is_empty() {
            return invalid(
                "sentinel_master",
                "must name the master group when sentinels are set".into(),
            );
        }
        if self.prefix.is_empty() {
            return invalid("prefix", "must not be empty".into());
        }
        for (field, value) in [
            ("request_timeout_ms", self.request_timeout_ms),
            ("connect_timeout_ms", self.connect_timeout_ms),
            (
                "subscriber_ping_interval_ms",
                self.subscriber_ping_interval_ms,
            ),
            ("sentinel_poll_interval_ms", self.sentinel_poll_interval_ms),
            ("buffer_size", self.buffer_size as u64),
        ] {
            if value == 0 {
                return invalid(field, "must be at least 1".into());
            }
        }
        Ok(())
    }

    /// [`Self::request_timeout_ms`] as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// Whether the servers are discovered through Redis Sentinel.
    pub fn uses_sentinel(&self) -> bool {
        !self.sentinel_urls.is_empty()
    }

    pub(crate) fn sentinel_poll_interval(&self) -> Duration {
        Duration::from_millis(self.sentinel_poll_interval_ms.max(100))
    }

    /// Where the sentinels are and what applies to the servers they name.
    pub(crate) fn sentinel_settings(&self) -> Result<redis_layer::SentinelSettings, Error> {
        let base = redis_layer::node_config(&self.url, self.tls_ca_file.as_deref())?;
        let settings = redis_layer::SentinelSettings::from_urls(
            &self.sentinel_urls,
            &self.sentinel_master,
            self.sentinel_password.clone(),
            base,
        )?;
        Ok(settings.with_timing(self.sentinel_poll_interval(), self.connect_timeout()))
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms.max(50))
    }

    pub(crate) fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.subscriber_ping_interval_ms.max(50))
    }

    /// The order in which the broadcast subscriber tries servers, as indexes
    /// into [`Self::replica_urls`] (`None` is the master): the preferred
    /// replica, the following replicas, then the master.
    #[cfg(test)]
    pub(crate) fn subscriber_candidates(&self, uid: &str, random_seed: u64) -> Vec<Option<usize>> {
        candidate_order(
            self.subscriber_selection,
            self.replica_urls.len(),
            uid,
            random_seed,
        )
    }
}

fn check_redis_url(field: &'static str, url: &str) -> Result<(), InvalidField> {
    // fred reads an unknown scheme as plain TCP: refuse it rather than
    // connect in clear to what was meant as something else.
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        Ok(())
    } else {
        Err(InvalidField {
            field,
            reason: format!(
                "`{}` is not a redis:// or rediss:// URL",
                redis_layer::redact(url)
            ),
        })
    }
}

/// The order in which a subscriber tries `replicas` replicas (`Some(index)`)
/// and the master (`None`) under `selection`.
pub(crate) fn candidate_order(
    selection: SubscriberSelection,
    replicas: usize,
    uid: &str,
    random_seed: u64,
) -> Vec<Option<usize>> {
    if replicas == 0 || selection == SubscriberSelection::Master {
        // Master first; replicas are still better than nothing when it dies.
        return std::iter::once(None)
            .chain((0..replicas).map(Some))
            .collect();
    }
    let preferred = match selection {
        SubscriberSelection::First | SubscriberSelection::Master => 0,
        SubscriberSelection::Hash => (fnv1a(uid.as_bytes()) % replicas as u64) as usize,
        SubscriberSelection::Random => (random_seed % replicas as u64) as usize,
    };
    (0..replicas)
        .map(|offset| Some((preferred + offset) % replicas))
        .chain(std::iter::once(None))
        .collect()
}

/// FNV-1a: stable across processes and Rust versions, unlike `DefaultHasher`,
/// so the same uid always lands on the same replica.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_replicas(n: usize, selection: SubscriberSelection) -> AdapterConfig {
        AdapterConfig {
            replica_urls: (0..n).map(|i| format!("redis://r{i}")).collect(),
            subscriber_selection: selection,
            ..AdapterConfig::default()
        }
    }

    #[test]
    fn no_replica_means_master() {
        let config = with_replicas(0, SubscriberSelection::Hash);
        assert_eq!(config.subscriber_candidates("abc", 0), vec![None]);
    }

    #[test]
    fn first_selection_orders_replicas_then_master() {
        let config = with_replicas(3, SubscriberSelection::First);
        assert_eq!(
            config.subscriber_candidates("abc", 7),
            vec![Some(0), Some(1), Some(2), None]
        );
    }

    #[test]
    fn hash_selection_is_stable_and_spreads() {
        let config = with_replicas(2, SubscriberSelection::Hash);
        let mut first_choices = [0usize; 2];
        for i in 0..200 {
            let uid = format!("node{i}");
            let candidates = config.subscriber_candidates(&uid, 0);
            assert_eq!(candidates, config.subscriber_candidates(&uid, 99));
            assert_eq!(candidates.len(), 3);
            assert_eq!(candidates[2], None);
            first_choices[candidates[0].unwrap()] += 1;
        }
        assert!(first_choices.iter().all(|&n| n > 50), "{first_choices:?}");
    }

    #[test]
    fn master_selection_keeps_replicas_as_fallback() {
        let config = with_replicas(2, SubscriberSelection::Master);
        assert_eq!(
            config.subscriber_candidates("x", 0),
            vec![None, Some(0), Some(1)]
        );
    }

    #[test]
    fn deserializes_with_defaults() {
        let config: AdapterConfig = serde_json::from_str(
            r#"{"url":"redis://m:1","replica_urls":["redis://r:2"],"subscriber_selection":"first"}"#,
        )
        .unwrap();
        assert_eq!(config.url, "redis://m:1");
        assert_eq!(config.prefix, "socket.io");
        assert_eq!(config.request_timeout_ms, 5000);
        assert_eq!(config.subscriber_selection, SubscriberSelection::First);
        assert!(!config.requests_on_master);
    }
}
