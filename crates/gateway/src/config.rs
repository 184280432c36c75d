//! Gateway configuration: defaults, then an optional TOML file, then
//! `GATEWAY_*` environment variables (`__` separates nested keys).
//!
//! Every key is documented once: the gateway's own in [`OWN_KEYS`], the
//! Redis ones in the adapter's [`adapter::FIELDS`] (the `[redis]` section is
//! the adapter's [`AdapterConfig`] itself, validated by it). [`keys`] joins
//! them for `gateway --help`, the README table (a test compares them) and
//! the loader, so the documentation cannot drift from what is parsed.
//! Loading fails with an error naming the offending key; nothing is guessed.

use std::net::SocketAddr;
use std::path::Path;

use adapter::AdapterConfig;
use serde::Deserialize;

/// One documented configuration key.
#[derive(Debug, Clone)]
pub struct KeyDoc {
    /// The environment variable.
    pub env: String,
    /// The dotted key in the TOML file.
    pub toml: String,
    /// The default, as it would be written in the environment; `(…)` when
    /// unset.
    pub default: &'static str,
    /// Whether it is a list (comma-separated in the environment).
    pub list: bool,
    /// What it does.
    pub help: &'static str,
}

/// A key of the gateway's own: `(toml key, default, list, help)`.
type OwnKey = (&'static str, &'static str, bool, &'static str);

/// The gateway's own keys, outside the adapter's `[redis]` fields.
pub const OWN_KEYS: &[OwnKey] = &[
    ("listen", "0.0.0.0:3000", false, "Socket.IO HTTP long-polling and WebSocket listener"),
    ("admin_listen", "0.0.0.0:9100", false, "admin listener: GET /healthz, /readyz, /metrics, /cluster/nodes"),
    ("namespaces", "/", true, "comma-separated namespaces served with the default handlers"),
    ("cors_origins", "(none)", true, "comma-separated allowed CORS origins for long-polling; `*` allows any"),
    ("drain_period_ms", "10000", false, "on SIGTERM/SIGINT, close client connections staggered over this period, then exit"),
    ("ws_read_buffer_bytes", "1024", false, "read buffer of each WebSocket connection; larger client messages are read in several steps. Every idle connection holds one, so it sets much of the memory per connection"),
    ("client_buffer_packets", "128", false, "packets queued per client before broadcasts to it are dropped (counted in socketio_packets_dropped_total); larger absorbs longer bursts at the cost of memory per slow client"),
    ("log.format", "plain", false, "log format: plain or json (levels come from RUST_LOG, default info)"),
    ("auth.jwt_secret", "(unset)", false, "HS256/384/512 secret of client tokens; with it (or a public key) every namespace requires a valid JWT at the handshake"),
    ("auth.jwt_public_key_file", "(unset)", false, "PEM public key of RS*/PS*/ES256/ES384/EdDSA client tokens"),
    ("auth.jwt_issuer", "(unset)", false, "required `iss` of tokens"),
    ("auth.jwt_audience", "(unset)", false, "required `aud` of tokens"),
    ("auth.leeway_s", "30", false, "clock skew allowed on `exp` and `nbf`, in seconds"),
    ("auth.required", "true", false, "with a key set: refuse sockets without a token (false: they connect anonymously with the default permissions)"),
    ("auth.disconnect_on_expiry", "true", false, "disconnect a socket when its token expires (plus the leeway)"),
    ("auth.user_room_prefix", "user:", false, "every socket of user `sub` joins `<prefix><sub>`; other users' rooms cannot be joined or published to"),
    ("auth.default_rooms", "(see text)", true, "rooms (names or globs like `chat:*`) a socket may join when its token has no `rooms` claim; default none with auth on, `*` with auth off"),
    ("auth.default_publish", "(see text)", true, "rooms a socket may publish to when its token has no `publish` claim; default none with auth on, `*` with auth off"),
    ("auth.default_broadcast", "(see text)", false, "whether `message` events are relayed when the token has no `broadcast` claim; default false with auth on, true with auth off"),
    ("limits.max_payload_bytes", "1000000", false, "largest packet accepted from a client; a larger one closes its connection (polling: 413)"),
    ("limits.max_rooms_per_socket", "100", false, "rooms a socket may be in, its own id room and user room aside; further joins are refused"),
    ("limits.events_per_second", "50", false, "sustained events per second per socket (token bucket); events over it are dropped and counted"),
    ("limits.events_burst", "100", false, "events a socket may send at once above the sustained rate"),
    ("limits.max_connections", "(open files − reserve)", false, "client connections beyond which new handshakes are refused at once (polling and websocket: 503); the default keeps a reserve of the open-files limit (raised to its hard limit at start) for the admin listener and Redis"),
    ("limits.connects_per_ip_per_second", "(off)", false, "new sessions per client address and second; over it, handshakes get 429"),
    ("limits.events_grace_s", "5", false, "a socket whose events keep being dropped (no drop-free second) this long is disconnected"),
    ("hooks.connect_url", "(unset)", false, "backend URL POSTed at each namespace CONNECT ({namespace, socket_id, auth, headers, query, remote_addr, claims}); its 200 admits the socket with user, rooms, data and permissions, 401/403 refuse it with its `message`, anything else (or no answer) refuses it with \"backend unavailable\""),
    ("hooks.event_url", "(unset)", false, "backend URL POSTed with each event named in hooks.events ({namespace, socket_id, user, rooms, event, args}); `{\"ack\": [...]}` is the client's ack, a failure an ack `{\"error\": ...}`"),
    ("hooks.events", "(none)", true, "events sent to hooks.event_url, one socket's in the order sent; `*` is every event without a built-in handler; a built-in name (message, join...) replaces the built-in"),
    ("hooks.disconnect_url", "(unset)", false, "backend URL POSTed after each disconnect ({namespace, socket_id, user, reason}); retried 3 times (0.5, 1, 2 s apart), then counted in gateway_hook_dropped_total"),
    ("hooks.forward_headers", crate::hooks::config::DEFAULT_FORWARD_HEADERS, true, "handshake headers the connect hook receives"),
    ("hooks.timeout_ms", "5000", false, "bound of each hook call"),
    ("hooks.max_inflight", "256", false, "events waiting for or in an event hook call, per gateway; beyond it an event is acked `{\"error\": \"backend busy\"}` at once"),
    ("hooks.secret", "(unset)", false, "with it, every hook call carries `X-Signature: sha256=<hex HMAC-SHA256 of the body>`"),
    ("hooks.tls_ca_file", "(unset)", false, "PEM file of CA certificates trusted for `https://` hooks beside the built-in web roots (a private CA, a self-signed backend)"),
    ("redis.url", "(unset)", false, "Redis master to publish on, e.g. redis://127.0.0.1:6379 (redis://user:pass@host:port/db for ACL auth and a database, rediss:// for TLS); unset: single node, no Redis. With sentinels only its credentials, database and TLS are used"),
];

/// Every key the gateway reads, in the order of the README table.
pub fn keys() -> Vec<KeyDoc> {
    let env_of = |toml: &str| format!("GATEWAY_{}", toml.replace('.', "__").to_uppercase());
    let own = OWN_KEYS.iter().map(|&(toml, default, list, help)| KeyDoc {
        env: env_of(toml),
        toml: toml.to_owned(),
        default,
        list,
        help,
    });
    let redis = adapter::FIELDS.iter().map(|field| {
        let toml = format!("redis.{}", field.name);
        KeyDoc {
            env: env_of(&toml),
            toml,
            default: field.default,
            list: field.list,
            help: field.help,
        }
    });
    own.chain(redis).collect()
}

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
        key: String,
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

/// The Redis section: the adapter's configuration, and whether there is a
/// Redis at all (no `url` and no sentinels: a single node).
#[derive(Debug, Clone, Default)]
pub struct RedisConfig {
    /// The master to publish on, when set.
    pub url: Option<String>,
    /// Every other field, as the adapter takes them (its `url` is ignored).
    pub adapter: AdapterConfig,
}

/// The section is the adapter's configuration as it deserializes itself
/// (so a bad value is reported under its `redis.<field>` key); whether
/// `url` was given is read apart, since the adapter's default fills it.
impl<'de> Deserialize<'de> for RedisConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self {
            url: None,
            adapter: AdapterConfig::deserialize(deserializer)?,
        })
    }
}

impl RedisConfig {
    /// The adapter configuration, when a master or sentinels are configured.
    pub fn adapter_config(&self) -> Option<AdapterConfig> {
        let url = match (&self.url, self.adapter.sentinel_urls.is_empty()) {
            (Some(url), _) => url.clone(),
            // Only the credentials/db/TLS of `url` matter with sentinels.
            (None, false) => AdapterConfig::default().url,
            (None, true) => return None,
        };
        Some(AdapterConfig {
            url,
            ..self.adapter.clone()
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
    #[serde(default)]
    pub redis: RedisConfig,
    /// Client authentication and permissions.
    #[serde(default)]
    pub auth: crate::auth::AuthConfig,
    /// Abuse limits.
    #[serde(default)]
    pub limits: crate::limits::LimitsConfig,
    /// Backend hooks.
    #[serde(default)]
    pub hooks: crate::hooks::HooksConfig,
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
        let keys = keys();
        let mut builder = config::Config::builder();
        // The adapter's fields take their defaults from AdapterConfig itself.
        for (toml, default, list, _) in OWN_KEYS {
            // Defaults shown as "(unset)"/"(none)" are not set at all.
            if !default.starts_with('(') {
                builder = if *list {
                    builder.set_default(*toml, default.split(',').collect::<Vec<_>>())?
                } else {
                    builder.set_default(*toml, *default)?
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
        let mut environment = config::Environment::with_prefix("GATEWAY")
            .prefix_separator("_")
            .separator("__")
            .list_separator(",")
            .try_parsing(true)
            .source(env);
        for key in keys.iter().filter(|key| key.list) {
            environment = environment.with_list_parse_key(&key.toml);
        }
        let built = builder.add_source(environment).build()?;
        let url = built
            .get::<Option<String>>("redis.url")
            .or_else(not_found_is_none)?;
        let mut config: GatewayConfig = built.try_deserialize()?;
        config.redis.url = url;
        config.validated()
    }

    fn validated(mut self) -> Result<Self, ConfigError> {
        self.namespaces = non_empty(self.namespaces);
        self.cors_origins = non_empty(self.cors_origins);
        self.redis.adapter.normalize();
        if self
            .redis
            .url
            .as_deref()
            .is_some_and(|u| u.trim().is_empty())
        {
            self.redis.url = None;
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
        if let Err((key, reason)) = self.limits.check() {
            return invalid(key, reason);
        }
        self.auth.normalize();
        if let Err((key, reason)) = self.auth.check() {
            return invalid(key, reason);
        }
        if let Err(err) = crate::auth::Verifier::from_config(&self.auth) {
            let key = match err {
                crate::auth::KeyError::EmptySecret => "auth.jwt_secret",
                _ => "auth.jwt_public_key_file",
            };
            return invalid(key, err.to_string());
        }
        self.hooks.normalize();
        if let Err((key, reason)) = self.hooks.check() {
            return invalid(key, reason);
        }
        if let Some(ns) = self.namespaces.iter().find(|ns| !ns.starts_with('/')) {
            return invalid("namespaces", format!("`{ns}` must start with `/`"));
        }
        // Checked even without Redis: a bad value is a mistake either way.
        let adapter = self
            .redis
            .adapter_config()
            .unwrap_or_else(|| self.redis.adapter.clone());
        adapter.validate().map_err(|err| ConfigError::Invalid {
            key: format!("redis.{}", err.field),
            reason: err.reason,
        })?;
        if self.redis.url.is_none()
            && !self.redis.adapter.uses_sentinel()
            && !self.redis.adapter.replica_urls.is_empty()
        {
            return invalid(
                "redis.replica_urls",
                "replicas are set but neither redis.url (the master) nor redis.sentinel_urls is"
                    .into(),
            );
        }
        Ok(self)
    }
}

/// A key absent everywhere reads as unset.
fn not_found_is_none<T>(err: config::ConfigError) -> Result<Option<T>, config::ConfigError> {
    match err {
        config::ConfigError::NotFound(_) => Ok(None),
        other => Err(other),
    }
}

fn non_empty(list: Vec<String>) -> Vec<String> {
    list.into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn invalid<T>(key: &str, reason: String) -> Result<T, ConfigError> {
    Err(ConfigError::Invalid {
        key: key.to_owned(),
        reason,
    })
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

/// The key table as plain text, for `--help`.
pub fn keys_help() -> String {
    let keys = keys();
    let width = keys.iter().map(|k| k.env.len()).max().unwrap_or(0);
    let mut out = String::from("Configuration (environment variable, default, meaning):\n");
    for key in &keys {
        out.push_str(&format!(
            "  {:width$}  [{}]  {}\n",
            key.env, key.default, key.help
        ));
    }
    out.push_str("\nThe same keys in a TOML file given with --config use the dotted names, e.g. `redis.url`.\n");
    out
}

/// The key table in markdown, as the README shows it.
pub fn keys_markdown() -> String {
    let mut out = String::from("| env | TOML | default | meaning |\n| --- | --- | --- | --- |\n");
    for key in keys() {
        out.push_str(&format!(
            "| `{}` | `{}` | `{}` | {} |\n",
            key.env, key.toml, key.default, key.help
        ));
    }
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
        assert_eq!(c.redis.adapter.prefix, "socket.io");
        assert_eq!(c.redis.adapter.request_timeout_ms, 5000);
        assert_eq!(c.log.format, LogFormat::Plain);
        assert_eq!(c.drain_period_ms, 10_000);
        assert_eq!(c.ws_read_buffer_bytes, 1024);
        assert_eq!(c.client_buffer_packets, 128);
        // The documented defaults of [auth] and [limits] are the types' own.
        assert_eq!(c.auth, crate::auth::AuthConfig::default());
        assert_eq!(c.limits, crate::limits::LimitsConfig::default());
        assert!(!c.auth.enabled());
    }

    #[test]
    fn auth_and_limits_load_and_refuse_what_would_weaken_them() {
        let c = GatewayConfig::load_from(
            None,
            env(&[
                ("GATEWAY_AUTH__JWT_SECRET", "s3cret"),
                ("GATEWAY_AUTH__DEFAULT_ROOMS", "lobby,chat:*,"),
                ("GATEWAY_AUTH__DEFAULT_BROADCAST", "true"),
                ("GATEWAY_LIMITS__EVENTS_PER_SECOND", "5"),
                ("GATEWAY_LIMITS__MAX_ROOMS_PER_SOCKET", "3"),
            ]),
        )
        .unwrap();
        assert!(c.auth.enabled());
        assert_eq!(
            c.auth.default_rooms,
            Some(vec!["lobby".into(), "chat:*".into()])
        );
        assert_eq!(c.auth.default_broadcast, Some(true));
        assert_eq!(c.limits.events_per_second, 5.0);
        assert_eq!(c.limits.max_rooms_per_socket, 3);
        for (key, value, named) in [
            ("GATEWAY_AUTH__JWT_SECRET", "", "auth.jwt_secret"),
            ("GATEWAY_AUTH__JWT_AUDIENCE", " ", "auth.jwt_audience"),
            (
                "GATEWAY_AUTH__JWT_PUBLIC_KEY_FILE",
                "/nonexistent.pem",
                "auth.jwt_public_key_file",
            ),
            ("GATEWAY_LIMITS__EVENTS_BURST", "0", "limits.events_burst"),
            (
                "GATEWAY_LIMITS__MAX_PAYLOAD_BYTES",
                "10",
                "limits.max_payload_bytes",
            ),
        ] {
            let err = GatewayConfig::load_from(None, env(&[(key, value)])).unwrap_err();
            assert!(err.to_string().contains(named), "{key}={value:?}: {err}");
        }
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
        assert_eq!(c.redis.adapter.replica_urls.len(), 2);
        assert_eq!(c.redis.adapter.request_timeout_ms, 250);
        assert_eq!(c.namespaces, vec!["/", "/chat"]);
        assert_eq!(c.log.format, LogFormat::Json);
        assert!(c.redis.adapter.legacy_emitter);
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
        assert_eq!(c.redis.adapter.prefix, "fromenv");
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
        for key in keys() {
            assert!(help.contains(&key.env), "{}", key.env);
        }
    }

    /// The README's configuration table is the one generated from the keys.
    #[test]
    fn readme_table_is_the_keys_table() {
        let readme = include_str!("../../../README.md");
        let table = keys_markdown();
        assert!(
            readme.contains(&table),
            "README.md's configuration table differs from the keys; it should read:\n{table}"
        );
    }

    /// Every adapter field is reachable under `GATEWAY_REDIS__*`, with the
    /// adapter's default when unset.
    #[test]
    fn adapter_fields_load_under_redis() {
        let c = GatewayConfig::load_from(None, env(&[])).unwrap();
        assert_eq!(c.redis.adapter, adapter::AdapterConfig::default());
        let c = GatewayConfig::load_from(
            None,
            env(&[
                ("GATEWAY_REDIS__URL", "redis://127.0.0.1:6379"),
                ("GATEWAY_REDIS__BUFFER_SIZE", "64"),
                ("GATEWAY_REDIS__CONNECT_TIMEOUT_MS", "250"),
                ("GATEWAY_REDIS__SUBSCRIBER_PING_INTERVAL_MS", "100"),
                ("GATEWAY_REDIS__SENTINEL_POLL_INTERVAL_MS", "300"),
                ("GATEWAY_REDIS__SENTINEL_PASSWORD", "12345"),
            ]),
        )
        .unwrap();
        let adapter = c.redis.adapter_config().expect("a master is set");
        assert_eq!(adapter.buffer_size, 64);
        assert_eq!(adapter.connect_timeout_ms, 250);
        assert_eq!(adapter.subscriber_ping_interval_ms, 100);
        assert_eq!(adapter.sentinel_poll_interval_ms, 300);
        // A numeric-looking password stays a string.
        assert_eq!(adapter.sentinel_password.as_deref(), Some("12345"));
        let err = GatewayConfig::load_from(
            None,
            env(&[
                ("GATEWAY_REDIS__URL", "redis://127.0.0.1:6379"),
                ("GATEWAY_REDIS__BUFFER_SIZE", "0"),
            ]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("redis.buffer_size"), "{err}");
    }
}
