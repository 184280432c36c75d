//! Gateway configuration: defaults, then an optional TOML file, then
//! `GATEWAY_*` environment variables (`__` separates nested keys).
//!
//! Every key is listed once, in [`KEYS`], which feeds `gateway --help` and
//! the README table, so the documentation cannot drift from what is parsed.
//! Loading fails with an error naming the offending key; nothing is guessed.

use std::net::SocketAddr;
use std::path::Path;

use adapter::{AdapterConfig, SubscriberSelection};
use serde::Deserialize;

/// One documented configuration key.
#[derive(Debug, Clone, Copy)]
pub struct KeyDoc {
    /// The environment variable.
    pub env: &'static str,
    /// The dotted key in the TOML file.
    pub toml: &'static str,
    /// The default, as it would be written in the environment.
    pub default: &'static str,
    /// What it does.
    pub help: &'static str,
}

/// Every key the gateway reads.
pub const KEYS: &[KeyDoc] = &[
    KeyDoc {
        env: "GATEWAY_LISTEN",
        toml: "listen",
        default: "0.0.0.0:3000",
        help: "Socket.IO HTTP long-polling and WebSocket listener",
    },
    KeyDoc {
        env: "GATEWAY_ADMIN_LISTEN",
        toml: "admin_listen",
        default: "0.0.0.0:9100",
        help: "admin listener: GET /healthz, /readyz, /metrics, /cluster/nodes",
    },
    KeyDoc {
        env: "GATEWAY_NAMESPACES",
        toml: "namespaces",
        default: "/",
        help: "comma-separated namespaces served with the default handlers",
    },
    KeyDoc {
        env: "GATEWAY_CORS_ORIGINS",
        toml: "cors_origins",
        default: "(none)",
        help: "comma-separated allowed CORS origins for long-polling; `*` allows any",
    },
    KeyDoc {
        env: "GATEWAY_DRAIN_PERIOD_MS",
        toml: "drain_period_ms",
        default: "10000",
        help: "on SIGTERM/SIGINT, close client connections staggered over this period, then exit",
    },
    KeyDoc {
        env: "GATEWAY_WS_READ_BUFFER_BYTES",
        toml: "ws_read_buffer_bytes",
        default: "1024",
        help: "read buffer of each WebSocket connection; larger client messages are read in several steps. Every idle connection holds one, so it sets much of the memory per connection",
    },
    KeyDoc {
        env: "GATEWAY_CLIENT_BUFFER_PACKETS",
        toml: "client_buffer_packets",
        default: "128",
        help: "packets queued per client before broadcasts to it are dropped (counted in socketio_packets_dropped_total); larger absorbs longer bursts at the cost of memory per slow client",
    },
    KeyDoc {
        env: "GATEWAY_LOG__FORMAT",
        toml: "log.format",
        default: "plain",
        help: "log format: plain or json (levels come from RUST_LOG, default info)",
    },
    KeyDoc {
        env: "GATEWAY_REDIS__URL",
        toml: "redis.url",
        default: "(unset)",
        help: "Redis master to publish on, e.g. redis://127.0.0.1:6379 (redis://user:pass@host:port/db for ACL auth and a database, rediss:// for TLS); unset: single node, no Redis. With sentinels only its credentials, database and TLS are used",
    },
    KeyDoc {
        env: "GATEWAY_REDIS__SENTINEL_URLS",
        toml: "redis.sentinel_urls",
        default: "(none)",
        help: "comma-separated Redis Sentinels (redis://host:26379 or host:26379): the master and replicas are discovered and followed across failovers",
    },
    KeyDoc {
        env: "GATEWAY_REDIS__SENTINEL_MASTER",
        toml: "redis.sentinel_master",
        default: "mymaster",
        help: "the master group name the sentinels monitor",
    },
    KeyDoc {
        env: "GATEWAY_REDIS__SENTINEL_PASSWORD",
        toml: "redis.sentinel_password",
        default: "(none)",
        help: "password of the sentinels themselves (their requirepass)",
    },
    KeyDoc {
        env: "GATEWAY_REDIS__TLS_CA_FILE",
        toml: "redis.tls_ca_file",
        default: "(system roots)",
        help: "PEM file of the certificate authorities trusted for rediss:// servers (a private CA or a self-signed certificate)",
    },
    KeyDoc {
        env: "GATEWAY_REDIS__REPLICA_URLS",
        toml: "redis.replica_urls",
        default: "(none)",
        help: "comma-separated replicas to subscribe on (failover in order, then the master); with sentinels they take precedence over the discovered ones",
    },
    KeyDoc {
        env: "GATEWAY_REDIS__SUBSCRIBER_SELECTION",
        toml: "redis.subscriber_selection",
        default: "hash",
        help: "which replica a gateway prefers: hash (of the node uid, spreads gateways), first, random or master",
    },
    KeyDoc {
        env: "GATEWAY_REDIS__PREFIX",
        toml: "redis.prefix",
        default: "socket.io",
        help: "channel prefix, like the Node adapter's `key`",
    },
    KeyDoc {
        env: "GATEWAY_REDIS__REQUEST_TIMEOUT_MS",
        toml: "redis.request_timeout_ms",
        default: "5000",
        help: "how long a cross-node request waits for answers",
    },
    KeyDoc {
        env: "GATEWAY_REDIS__REQUESTS_ON_MASTER",
        toml: "redis.requests_on_master",
        default: "false",
        help: "subscribe request/response channels on the master (needed in a fleet with Node servers, whose fetchSockets counts NUMSUB on the master only)",
    },
    KeyDoc {
        env: "GATEWAY_REDIS__LEGACY_EMITTER",
        toml: "redis.legacy_emitter",
        default: "false",
        help: "also accept the 2014 socket.io-emitter 0.2.0 messages on `<prefix>#emitter`",
    },
];

/// Errors while loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or an environment variable could not be read or parsed.
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// A value parsed but is not acceptable.
    #[error("configuration key `{key}`: {reason}")]
    Invalid {
        /// The dotted key.
        key: &'static str,
        /// Why it is rejected.
        reason: String,
    },
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object a line.
    Json,
}

/// Logging settings.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LogConfig {
    /// Output format.
    #[serde(default)]
    pub format: LogFormat,
}

/// The Redis section; absent `url` means single-node mode.
#[derive(Debug, Clone, Deserialize)]
pub struct RedisConfig {
    /// The master to publish on.
    pub url: Option<String>,
    /// Replicas to subscribe on.
    #[serde(default)]
    pub replica_urls: Vec<String>,
    /// Preferred replica choice.
    #[serde(default)]
    pub subscriber_selection: SubscriberSelection,
    /// Channel prefix.
    pub prefix: String,
    /// Cross-node request timeout in milliseconds.
    pub request_timeout_ms: u64,
    /// Subscribe request/response channels on the master.
    #[serde(default)]
    pub requests_on_master: bool,
    /// Accept 2014 `socket.io-emitter` messages.
    #[serde(default)]
    pub legacy_emitter: bool,
    /// Redis Sentinels; when set the master is discovered.
    #[serde(default)]
    pub sentinel_urls: Vec<String>,
    /// The master group name the sentinels monitor.
    pub sentinel_master: String,
    /// Password of the sentinels.
    #[serde(default)]
    pub sentinel_password: Option<String>,
    /// CA certificates (PEM) trusted for `rediss://` servers.
    #[serde(default)]
    pub tls_ca_file: Option<String>,
}

impl RedisConfig {
    /// The adapter configuration, when a master or sentinels are configured.
    pub fn adapter_config(&self) -> Option<AdapterConfig> {
        let url = match (&self.url, self.sentinel_urls.is_empty()) {
            (Some(url), _) => url.clone(),
            // Only the credentials/db/TLS of `url` matter with sentinels.
            (None, false) => AdapterConfig::default().url,
            (None, true) => return None,
        };
        Some(AdapterConfig {
            sentinel_urls: self.sentinel_urls.clone(),
            sentinel_master: self.sentinel_master.clone(),
            sentinel_password: self.sentinel_password.clone(),
            replica_urls: self.replica_urls.clone(),
            prefix: self.prefix.clone(),
            request_timeout_ms: self.request_timeout_ms,
            subscriber_selection: self.subscriber_selection,
            requests_on_master: self.requests_on_master,
            legacy_emitter: self.legacy_emitter,
            tls_ca_file: self.tls_ca_file.clone(),
            ..AdapterConfig::new(url)
        })
    }
}

/// Below this a WebSocket frame header alone needs several reads.
const MIN_WS_READ_BUFFER_BYTES: usize = 64;
/// engineioxide's own default is 4 KiB; beyond 1 MiB per connection is a typo.
const MAX_WS_READ_BUFFER_BYTES: usize = 1 << 20;
/// A bound, not a target: queued packets cost memory on slow clients only.
const MAX_CLIENT_BUFFER_PACKETS: usize = 1 << 16;

/// The whole gateway configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct GatewayConfig {
    /// Socket.IO listener.
    pub listen: SocketAddr,
    /// Admin listener.
    pub admin_listen: SocketAddr,
    /// Namespaces served with the default handlers.
    pub namespaces: Vec<String>,
    /// Allowed CORS origins.
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// How long a drain takes, in milliseconds.
    pub drain_period_ms: u64,
    /// Read buffer of each WebSocket connection, in bytes.
    pub ws_read_buffer_bytes: usize,
    /// Packets queued per client before sends to it fail.
    pub client_buffer_packets: usize,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Redis.
    pub redis: RedisConfig,
}

impl GatewayConfig {
    /// Loads defaults, then `file` when given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, None)
    }

    /// Like [`GatewayConfig::load`], with an explicit environment (for tests).
    pub fn load_from(
        file: Option<&Path>,
        env: Option<std::collections::HashMap<String, String>>,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        for key in KEYS {
            // Defaults shown as "(unset)"/"(none)" are not set at all.
            if !key.default.starts_with('(') {
                builder = match key.toml {
                    "namespaces" => builder.set_default(key.toml, vec![key.default])?,
                    _ => builder.set_default(key.toml, key.default)?,
                };
            }
        }
        if let Some(path) = file {
            builder = builder.add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let environment = config::Environment::with_prefix("GATEWAY")
            .prefix_separator("_")
            .separator("__")
            .list_separator(",")
            .with_list_parse_key("namespaces")
            .with_list_parse_key("cors_origins")
            .with_list_parse_key("redis.replica_urls")
            .with_list_parse_key("redis.sentinel_urls")
            .try_parsing(true)
            .source(env);
        let config: GatewayConfig = builder.add_source(environment).build()?.try_deserialize()?;
        config.validated()
    }

    fn validated(mut self) -> Result<Self, ConfigError> {
        self.namespaces = non_empty(self.namespaces);
        self.cors_origins = non_empty(self.cors_origins);
        self.redis.replica_urls = non_empty(self.redis.replica_urls);
        self.redis.sentinel_urls = non_empty(self.redis.sentinel_urls)
            .into_iter()
            .map(|url| {
                if url.contains("://") {
                    url
                } else {
                    format!("redis://{url}")
                }
            })
            .collect();
        if self
            .redis
            .sentinel_password
            .as_deref()
            .is_some_and(|p| p.is_empty())
        {
            self.redis.sentinel_password = None;
        }
        if self
            .redis
            .url
            .as_deref()
            .is_some_and(|u| u.trim().is_empty())
        {
            self.redis.url = None;
        }
        if self
            .redis
            .tls_ca_file
            .as_deref()
            .is_some_and(|f| f.trim().is_empty())
        {
            self.redis.tls_ca_file = None;
        }
        if self.redis.tls_ca_file.is_some()
            && !self
                .redis
                .url
                .as_deref()
                .is_some_and(|url| url.starts_with("rediss://"))
        {
            return invalid(
                "redis.tls_ca_file",
                "is set but redis.url is not a rediss:// URL (with sentinels, redis.url carries the TLS choice)".into(),
            );
        }
        check_range(
            "ws_read_buffer_bytes",
            self.ws_read_buffer_bytes,
            MIN_WS_READ_BUFFER_BYTES..=MAX_WS_READ_BUFFER_BYTES,
        )?;
        check_range(
            "client_buffer_packets",
            self.client_buffer_packets,
            1..=MAX_CLIENT_BUFFER_PACKETS,
        )?;
        if self.namespaces.is_empty() {
            return invalid("namespaces", "at least one namespace is needed".into());
        }
        if let Some(ns) = self.namespaces.iter().find(|ns| !ns.starts_with('/')) {
            return invalid("namespaces", format!("`{ns}` must start with `/`"));
        }
        if let Some(url) = &self.redis.url {
            check_redis_url("redis.url", url)?;
        }
        for url in &self.redis.replica_urls {
            check_redis_url("redis.replica_urls", url)?;
        }
        for url in &self.redis.sentinel_urls {
            check_redis_url("redis.sentinel_urls", url)?;
        }
        if self.redis.url.is_none()
            && self.redis.sentinel_urls.is_empty()
            && !self.redis.replica_urls.is_empty()
        {
            return invalid(
                "redis.replica_urls",
                "replicas are set but neither redis.url (the master) nor redis.sentinel_urls is"
                    .into(),
            );
        }
        if !self.redis.sentinel_urls.is_empty() && self.redis.sentinel_master.trim().is_empty() {
            return invalid(
                "redis.sentinel_master",
                "must name the master group when sentinels are set".into(),
            );
        }
        if self.redis.request_timeout_ms == 0 {
            return invalid("redis.request_timeout_ms", "must be at least 1".into());
        }
        if self.redis.prefix.is_empty() {
            return invalid("redis.prefix", "must not be empty".into());
        }
        Ok(self)
    }
}

fn non_empty(list: Vec<String>) -> Vec<String> {
    list.into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn invalid<T>(key: &'static str, reason: String) -> Result<T, ConfigError> {
    Err(ConfigError::Invalid { key, reason })
}

fn check_range(
    key: &'static str,
    value: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        Ok(())
    } else {
        invalid(
            key,
            format!("{value} is outside {}..={}", range.start(), range.end()),
        )
    }
}

fn check_redis_url(key: &'static str, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        Ok(())
    } else {
        invalid(key, format!("`{url}` is not a redis:// or rediss:// URL"))
    }
}

/// The key table as plain text, for `--help`.
pub fn keys_help() -> String {
    let width = KEYS.iter().map(|k| k.env.len()).max().unwrap_or(0);
    let mut out = String::from("Configuration (environment variable, default, meaning):\n");
    for key in KEYS {
        out.push_str(&format!(
            "  {:width$}  [{}]  {}\n",
            key.env, key.default, key.help
        ));
    }
    out.push_str("\nThe same keys in a TOML file given with --config use the dotted names, e.g. `redis.url`.\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn defaults_need_no_redis() {
        let c = GatewayConfig::load_from(None, env(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:3000");
        assert_eq!(c.admin_listen.to_string(), "0.0.0.0:9100");
        assert_eq!(c.namespaces, vec!["/"]);
        assert!(c.redis.url.is_none());
        assert_eq!(c.redis.prefix, "socket.io");
        assert_eq!(c.redis.request_timeout_ms, 5000);
        assert_eq!(c.log.format, LogFormat::Plain);
        assert_eq!(c.drain_period_ms, 10_000);
        assert_eq!(c.ws_read_buffer_bytes, 1024);
        assert_eq!(c.client_buffer_packets, 128);
    }

    #[test]
    fn environment_overrides_with_nesting_and_lists() {
        let c = GatewayConfig::load_from(
            None,
            env(&[
                ("GATEWAY_LISTEN", "127.0.0.1:4000"),
                ("GATEWAY_REDIS__URL", "redis://127.0.0.1:6379"),
                (
                    "GATEWAY_REDIS__REPLICA_URLS",
                    "redis://127.0.0.1:6380,redis://127.0.0.1:6381",
                ),
                ("GATEWAY_REDIS__REQUEST_TIMEOUT_MS", "250"),
                ("GATEWAY_NAMESPACES", "/,/chat"),
                ("GATEWAY_LOG__FORMAT", "json"),
                ("GATEWAY_REDIS__LEGACY_EMITTER", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 4000);
        assert_eq!(c.redis.url.as_deref(), Some("redis://127.0.0.1:6379"));
        assert_eq!(c.redis.replica_urls.len(), 2);
        assert_eq!(c.redis.request_timeout_ms, 250);
        assert_eq!(c.namespaces, vec!["/", "/chat"]);
        assert_eq!(c.log.format, LogFormat::Json);
        assert!(c.redis.legacy_emitter);
    }

    #[test]
    fn file_then_environment() {
        let dir = std::env::temp_dir().join(format!("gw-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gateway.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:5000\"\n[redis]\nurl = \"redis://10.0.0.1:6379\"\nprefix = \"app\"\n",
        )
        .unwrap();
        let c = GatewayConfig::load_from(Some(&path), env(&[("GATEWAY_REDIS__PREFIX", "fromenv")]))
            .unwrap();
        assert_eq!(c.listen.port(), 5000);
        assert_eq!(c.redis.url.as_deref(), Some("redis://10.0.0.1:6379"));
        assert_eq!(c.redis.prefix, "fromenv");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases: &[(&str, &str, &str)] = &[
            ("GATEWAY_LISTEN", "nope", "listen"),
            (
                "GATEWAY_REDIS__REQUEST_TIMEOUT_MS",
                "soon",
                "request_timeout_ms",
            ),
            ("GATEWAY_REDIS__URL", "http://x", "redis.url"),
            ("GATEWAY_NAMESPACES", "chat", "namespaces"),
            ("GATEWAY_LOG__FORMAT", "xml", "format"),
            ("GATEWAY_WS_READ_BUFFER_BYTES", "8", "ws_read_buffer_bytes"),
            (
                "GATEWAY_WS_READ_BUFFER_BYTES",
                "lots",
                "ws_read_buffer_bytes",
            ),
            (
                "GATEWAY_REDIS__REQUEST_TIMEOUT_MS",
                "0",
                "request_timeout_ms",
            ),
        ];
        for (key, value, named) in cases {
            let err = GatewayConfig::load_from(None, env(&[(key, value)]))
                .expect_err(key)
                .to_string();
            assert!(err.contains(named), "{key}={value}: {err}");
        }
    }

    #[test]
    fn replicas_without_master_are_refused() {
        let err = GatewayConfig::load_from(
            None,
            env(&[("GATEWAY_REDIS__REPLICA_URLS", "redis://127.0.0.1:6380")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("redis.replica_urls"), "{err}");
    }

    #[test]
    fn sentinels_replace_the_master_url() {
        let c = GatewayConfig::load_from(
            None,
            env(&[
                (
                    "GATEWAY_REDIS__SENTINEL_URLS",
                    "redis://10.0.0.1:26379, 10.0.0.2:26379",
                ),
                ("GATEWAY_REDIS__SENTINEL_MASTER", "cluster-a"),
                ("GATEWAY_REDIS__SENTINEL_PASSWORD", "s3cret"),
            ]),
        )
        .unwrap();
        let adapter = c.redis.adapter_config().expect("sentinels enable Redis");
        assert_eq!(
            adapter.sentinel_urls,
            vec!["redis://10.0.0.1:26379", "redis://10.0.0.2:26379"]
        );
        assert_eq!(adapter.sentinel_master, "cluster-a");
        assert_eq!(adapter.sentinel_password.as_deref(), Some("s3cret"));
        assert!(adapter.uses_sentinel());

        let with_auth = GatewayConfig::load_from(
            None,
            env(&[
                ("GATEWAY_REDIS__SENTINEL_URLS", "127.0.0.1:26379"),
                ("GATEWAY_REDIS__URL", "redis://app:pw@ignored:1/2"),
            ]),
        )
        .unwrap();
        let adapter = with_auth.redis.adapter_config().unwrap();
        assert_eq!(adapter.url, "redis://app:pw@ignored:1/2");
        assert_eq!(adapter.sentinel_master, "mymaster");

        let err = GatewayConfig::load_from(
            None,
            env(&[("GATEWAY_REDIS__SENTINEL_URLS", "http://127.0.0.1:26379")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("redis.sentinel_urls"), "{err}");
    }

    #[test]
    fn help_lists_every_key() {
        let help = keys_help();
        for key in KEYS {
            assert!(help.contains(key.env));
        }
    }
}
