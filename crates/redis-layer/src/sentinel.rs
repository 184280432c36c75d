//! Talking to Redis Sentinel: where the sentinels are and how to log in to
//! them, fred's Sentinel configuration for a publisher, and the two
//! questions asked of a sentinel (where is the master, which replicas does
//! it have), through fred's [`SentinelInterface`].

use std::time::Duration;

use fred::{
    clients::SentinelClient,
    interfaces::SentinelInterface,
    prelude::{Config, Server, ServerConfig},
    types::{config::SentinelConfig, Value as RedisValue},
};

use crate::{
    client::{self, Attempts},
    endpoint::{redact, Endpoint},
    error::Error,
    replicas::{parse_replicas, ReplicaInfo},
};

/// Where the sentinels are, how to log in to them, and what applies to the
/// servers they name.
#[derive(Debug, Clone)]
pub struct SentinelSettings {
    /// `(host, port)` of every sentinel.
    pub sentinels: Vec<(String, u16)>,
    /// The master group the sentinels monitor.
    pub master_name: String,
    /// The sentinels' own ACL user, from the first sentinel URL naming one.
    pub username: Option<String>,
    /// The sentinels' own password: the explicit one, else the first URL's.
    pub password: Option<String>,
    /// Credentials, database and TLS applied to every server they name.
    pub base: Config,
    /// How often the sentinels are asked again (events may be missed).
    pub poll_interval: Duration,
    /// Bound on connecting to a sentinel and on each of its commands.
    pub connect_timeout: Duration,
}

impl SentinelSettings {
    /// Settings from sentinel URLs (`redis://[user:pass@]host:port`, or a
    /// bare `host:port`). Credentials in a sentinel URL are the sentinels'
    /// own; `password`, when given, wins over the URLs' password.
    pub fn from_urls(
        urls: &[String],
        master_name: &str,
        password: Option<String>,
        base: Config,
    ) -> Result<Self, Error> {
        let mut sentinels = Vec::with_capacity(urls.len());
        let mut username = None;
        let mut password = password;
        for url in urls {
            let url = if url.contains("://") {
                url.clone()
            } else {
                format!("redis://{url}")
            };
            let parsed = Config::from_url(&url).map_err(|source| Error::InvalidUrl {
                url: redact(&url),
                source,
            })?;
            for server in parsed.server.hosts() {
                sentinels.push((server.host.to_string(), server.port));
            }
            if username.is_none() {
                username = parsed.username.clone();
            }
            if password.is_none() {
                password = parsed.password.clone();
            }
        }
        if sentinels.is_empty() {
            return Err(Error::Sentinel("no sentinel configured".to_owned()));
        }
        Ok(Self {
            sentinels,
            master_name: master_name.to_owned(),
            username,
            password,
            base,
            poll_interval: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(2),
        })
    }

    /// The same settings asking every `poll_interval`, each connection and
    /// command bounded by `connect_timeout`.
    pub fn with_timing(mut self, poll_interval: Duration, connect_timeout: Duration) -> Self {
        self.poll_interval = poll_interval;
        self.connect_timeout = connect_timeout;
        self
    }

    /// fred's Sentinel configuration for a publisher: it asks the sentinels
    /// (as their own user) for the master on every (re)connection.
    pub fn publisher_config(&self) -> Config {
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

    /// A server the sentinels named, with the base settings.
    pub fn endpoint(&self, host: &str, port: u16) -> Endpoint {
        Endpoint::at(&self.base, host, port)
    }

    /// `host:port` of sentinel `index`, for logs.
    pub fn label(&self, index: usize) -> String {
        self.sentinels
            .get(index)
            .map(|(host, port)| format!("{host}:{port}"))
            .unwrap_or_default()
    }

    /// A client for one sentinel, not connected yet, with the timeouts of
    /// every client here. Without a reconnect policy: whoever uses it moves
    /// to the next sentinel itself.
    pub fn client(&self, host: &str, port: u16) -> Result<SentinelClient, Error> {
        let timeout = self.connect_timeout;
        // The Config is unused: a sentinel client takes the SentinelConfig.
        let mut builder = client::builder(Config::default(), timeout, timeout, Attempts::Once);
        builder.set_sentinel_config(SentinelConfig {
            host: host.to_owned(),
            port,
            username: self.username.clone(),
            password: self.password.clone(),
            ..SentinelConfig::default()
        });
        Ok(builder.build_sentinel_client()?)
    }

    /// `(host, port)` of the master, as `SENTINEL GET-MASTER-ADDR-BY-NAME`
    /// on `sentinel` says.
    pub async fn master_addr(&self, sentinel: &SentinelClient) -> Result<(String, u16), Error> {
        let reply: RedisValue = sentinel
            .get_master_addr_by_name(self.master_name.as_str())
            .await?;
        parse_master_addr(reply, &self.master_name)
    }

    /// What `SENTINEL REPLICAS` on `sentinel` lists.
    pub async fn replicas(&self, sentinel: &SentinelClient) -> Result<Vec<ReplicaInfo>, Error> {
        let reply: RedisValue = sentinel.replicas(self.master_name.as_str()).await?;
        Ok(parse_replicas(reply))
    }
}

/// A `GET-MASTER-ADDR-BY-NAME` reply: `[host, port]`, or nil when the
/// sentinel does not monitor `master_name`.
pub fn parse_master_addr(reply: RedisValue, master_name: &str) -> Result<(String, u16), Error> {
    match reply {
        RedisValue::Array(items) if items.len() == 2 => {
            let host = items[0].as_string().filter(|h| !h.is_empty());
            let port = items[1].as_string().and_then(|p| p.parse::<u16>().ok());
            match (host, port) {
                (Some(host), Some(port)) => Ok((host, port)),
                _ => Err(Error::Sentinel("malformed master address".to_owned())),
            }
        }
        RedisValue::Null => Err(Error::Sentinel(format!(
            "the sentinel does not know master `{master_name}`"
        ))),
        other => Err(Error::Sentinel(format!(
            "unexpected master address reply of kind {:?}",
            other.kind()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Config {
        Config::from_url("redis://app:data-pw@127.0.0.1:6379/2").expect("url")
    }

    #[test]
    fn sentinel_credentials_come_from_the_urls_and_reach_the_publisher() {
        let urls = vec![
            "redis://watcher:sentinel-pw@127.0.0.1:26379".to_owned(),
            "127.0.0.1:26380".to_owned(),
        ];
        let settings = SentinelSettings::from_urls(&urls, "mymaster", None, base()).expect("urls");
        assert_eq!(
            settings.sentinels,
            vec![
                ("127.0.0.1".to_owned(), 26379),
                ("127.0.0.1".to_owned(), 26380)
            ]
        );
        let config = settings.publisher_config();
        match &config.server {
            ServerConfig::Sentinel {
                username,
                password,
                service_name,
                hosts,
            } => {
                assert_eq!(username.as_deref(), Some("watcher"));
                assert_eq!(password.as_deref(), Some("sentinel-pw"));
                assert_eq!(service_name, "mymaster");
                assert_eq!(hosts.len(), 2);
            }
            other => panic!("not a sentinel configuration: {other:?}"),
        }
        // The data nodes keep their own credentials and database.
        assert_eq!(config.username.as_deref(), Some("app"));
        assert_eq!(config.password.as_deref(), Some("data-pw"));
        assert_eq!(config.database, Some(2));

        let explicit =
            SentinelSettings::from_urls(&urls, "m", Some("given".into()), base()).expect("urls");
        assert_eq!(explicit.password.as_deref(), Some("given"));
        assert!(SentinelSettings::from_urls(&[], "m", None, base()).is_err());
        let err = SentinelSettings::from_urls(&["redis://u:secret@:bad".into()], "m", None, base())
            .expect_err("bad url");
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn master_address_replies() {
        let ok = RedisValue::Array(vec!["127.0.0.1".into(), "7000".into()]);
        assert_eq!(
            parse_master_addr(ok, "m").expect("address"),
            ("127.0.0.1".to_owned(), 7000)
        );
        for bad in [
            RedisValue::Array(vec!["127.0.0.1".into(), "port".into()]),
            RedisValue::Array(vec!["".into(), "7000".into()]),
            RedisValue::Array(vec!["127.0.0.1".into()]),
            RedisValue::from("127.0.0.1:7000"),
        ] {
            assert!(parse_master_addr(bad, "m").is_err());
        }
        let err = parse_master_addr(RedisValue::Null, "mymaster").expect_err("nil");
        assert!(err.to_string().contains("mymaster"), "{err}");
    }
}
