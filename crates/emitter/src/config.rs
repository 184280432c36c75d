//! Configuration: how to reach Redis, and how the HTTP service runs.
//!
//! Layered like the gateway's: built-in defaults, then an optional TOML file,
//! then `EMITTER_*` environment variables (`__` separates nested keys, e.g.
//! `EMITTER_REDIS__URL`), then command-line flags. Every value is checked
//! once, at start, so a typo fails loudly with the key's name instead of
//! surfacing later as a mysterious publish error.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::error::EmitterError;

/// Default Redis URL (a local server).
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
/// Default channel prefix, the `key` option of the Node adapter and emitter.
pub const DEFAULT_PREFIX: &str = "socket.io";
/// Default listen address of `emitter serve`.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";

/// Where the emitter publishes: a fixed master (`url`), or the master a set
/// of Redis Sentinels names (`sentinel_urls` + `sentinel_master`), followed
/// across failovers. The URL carries ACL credentials and a database
/// (`redis://user:secret@host:6379/2`); with sentinels its host is unused
/// but its credentials and database apply to the discovered master.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]` of the master.
    pub url: String,
    /// Channel prefix shared with the Socket.IO servers (`socket.io`).
    pub prefix: String,
    /// How long a PUBLISH may wait (queued while reconnecting, or in flight)
    /// before the caller gets an error. Never 0: an emitter must not queue
    /// forever while Redis is down.
    pub publish_timeout_ms: u64,
    /// Timeout of one TCP connection attempt to Redis.
    pub connect_timeout_ms: u64,
    /// Redis Sentinels (`redis://host:26379` or `host:26379`; a comma-separated
    /// string in the environment). When set, the master is discovered.
    #[serde(deserialize_with = "comma_list")]
    pub sentinel_urls: Vec<String>,
    /// The master group name the sentinels monitor.
    pub sentinel_master: String,
    /// Password of the sentinels themselves.
    pub sentinel_password: Option<String>,
    /// How often the sentinels are asked whether the master moved (at least
    /// 100 ms): the longest an emitter keeps publishing on a demoted master
    /// that is still up.
    pub sentinel_poll_interval_ms: u64,
    /// PEM file of the certificate authorities trusted for a `rediss://`
    /// master (a private CA, a self-signed certificate) instead of the
    /// system's.
    pub tls_ca_file: Option<String>,
}

/// A list given either as a sequence (TOML) or as one comma-separated string
/// (environment variables, flags).
fn comma_list<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let items = match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(text) => text.split(',').map(str::to_owned).collect(),
        OneOrMany::Many(items) => items,
    };
    Ok(items
        .into_iter()
        .map(|item| item.trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect())
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: DEFAULT_REDIS_URL.to_owned(),
            prefix: DEFAULT_PREFIX.to_owned(),
            publish_timeout_ms: 5_000,
            connect_timeout_ms: 2_000,
            sentinel_urls: Vec::new(),
            sentinel_master: "mymaster".to_owned(),
            sentinel_password: None,
            sentinel_poll_interval_ms: 1_000,
            tls_ca_file: None,
        }
    }
}

impl RedisConfig {
    /// A configuration for `url` with every other setting at its default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// Same configuration with another channel prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Same configuration with another publish timeout.
    pub fn with_publish_timeout(mut self, timeout: Duration) -> Self {
        self.publish_timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Same configuration following the master named `master` through `sentinels`.
    pub fn with_sentinels(
        mut self,
        sentinels: impl IntoIterator<Item = impl Into<String>>,
        master: impl Into<String>,
    ) -> Self {
        self.sentinel_urls = sentinels.into_iter().map(Into::into).collect();
        self.sentinel_master = master.into();
        self
    }

    /// fred's configuration for [`Self::url`], with [`Self::tls_ca_file`].
    pub(crate) fn node_config(&self) -> Result<fred::types::config::Config, EmitterError> {
        redis_layer::node_config(&self.url, self.tls_ca_file.as_deref())
            .map_err(|err| EmitterError::Config(format!("redis.url: {err}")))
    }

    /// The sentinels to follow, if any: the same settings as the adapter's,
    /// credentials in the sentinel URLs included.
    pub(crate) fn sentinel_settings(
        &self,
    ) -> Result<Option<redis_layer::SentinelSettings>, EmitterError> {
        if self.sentinel_urls.is_empty() {
            return Ok(None);
        }
        let settings = redis_layer::SentinelSettings::from_urls(
            &self.sentinel_urls,
            &self.sentinel_master,
            self.sentinel_password.clone(),
            self.node_config()?,
        )
        .map_err(|err| EmitterError::Config(format!("redis.sentinel_urls: {err}")))?;
        Ok(Some(settings.with_timing(
            self.sentinel_poll_interval(),
            self.connect_timeout(),
        )))
    }

    pub(crate) fn publish_timeout(&self) -> Duration {
        Duration::from_millis(self.publish_timeout_ms)
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub(crate) fn sentinel_poll_interval(&self) -> Duration {
        Duration::from_millis(self.sentinel_poll_interval_ms.max(100))
    }

    /// Checks every field; the error names the offending key (`redis.url`...).
    pub fn validate(&self) -> Result<(), SettingsError> {
        // fred reads any scheme it does not know as plain TCP: check it here
        // so `http://...` does not silently connect in clear.
        const SCHEMES: [&str; 3] = ["redis://", "rediss://", "redis-sentinel://"];
        if !SCHEMES.iter().any(|scheme| self.url.starts_with(scheme)) {
            return Err(SettingsError::invalid(
                "redis.url",
                format!(
                    "unsupported URL {:?}: expected one of {SCHEMES:?}",
                    self.url
                ),
            ));
        }
        fred::types::config::Config::from_url(&self.url)
            .map_err(|err| SettingsError::invalid("redis.url", err.details()))?;
        if self.tls_ca_file.is_some() && !self.url.starts_with("rediss://") {
            return Err(SettingsError::invalid(
                "redis.tls_ca_file",
                "is set but redis.url is not a rediss:// URL",
            ));
        }
        if self.prefix.is_empty() {
            return Err(SettingsError::invalid("redis.prefix", "must not be empty"));
        }
        if self.publish_timeout_ms == 0 {
            return Err(SettingsError::invalid(
                "redis.publish_timeout_ms",
                "must be greater than 0 (a publish must never wait forever)",
            ));
        }
        if self.connect_timeout_ms == 0 {
            return Err(SettingsError::invalid(
                "redis.connect_timeout_ms",
                "must be greater than 0",
            ));
        }
        if let Some(url) = self
            .sentinel_urls
            .iter()
            .find(|url| url.contains("://") && !url.starts_with("redis://"))
        {
            return Err(SettingsError::invalid(
                "redis.sentinel_urls",
                format!("unsupported sentinel URL {url:?}: expected redis://host:port"),
            ));
        }
        if !self.sentinel_urls.is_empty() {
            redis_layer::SentinelSettings::from_urls(
                &self.sentinel_urls,
                &self.sentinel_master,
                None,
                fred::types::config::Config::default(),
            )
            .map_err(|err| SettingsError::invalid("redis.sentinel_urls", err.to_string()))?;
        }
        if !self.sentinel_urls.is_empty() && self.sentinel_master.trim().is_empty() {
            return Err(SettingsError::invalid(
                "redis.sentinel_master",
                "must name the master group when sentinels are set",
            ));
        }
        Ok(())
    }
}

/// Settings of the `emitter` binary (CLI commands and `serve`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub redis: RedisConfig,
    /// Address `emitter serve` listens on.
    pub listen: SocketAddr,
    /// When set, `/v1/*` requests must carry `Authorization: Bearer <token>`.
    pub api_token: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            redis: RedisConfig::default(),
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            api_token: None,
        }
    }
}

/// Why the settings could not be loaded.
#[derive(Debug, Error)]
pub enum SettingsError {
    /// The file could not be read or parsed, or a value has the wrong type
    /// (the config crate's message names the key).
    #[error("configuration error: {0}")]
    Load(config::ConfigError),
    /// A value has the right type but is not acceptable.
    #[error("invalid configuration value for `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

// Not `#[from]`: the message already holds the cause, a `source` would make
// error chains print it twice.
impl From<config::ConfigError> for SettingsError {
    fn from(err: config::ConfigError) -> Self {
        SettingsError::Load(err)
    }
}

impl SettingsError {
    fn invalid(key: &'static str, message: impl Into<String>) -> Self {
        SettingsError::Invalid {
            key,
            message: message.into(),
        }
    }
}

/// Prefix of the environment variables read by [`Settings::load`].
pub const ENV_PREFIX: &str = "EMITTER";

impl Settings {
    /// Loads defaults, then `file` (TOML, must exist when given), then the
    /// environment (`env`, or the process environment when `None`), then
    /// `overrides` (command-line flags, as `("redis.url", value)` pairs).
    pub fn load(
        file: Option<&Path>,
        env: Option<config::Map<String, String>>,
        overrides: &[(&str, String)],
    ) -> Result<Self, SettingsError> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            builder = builder.add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("_")
                .separator("__")
                .source(env),
        );
        for (key, value) in overrides {
            builder = builder.set_override(*key, value.as_str())?;
        }
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks every field; the error names the offending key.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.redis.validate()?;
        if matches!(&self.api_token, Some(token) if token.is_empty()) {
            return Err(SettingsError::invalid(
                "api_token",
                "must not be empty (unset it to disable authentication)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Option<config::Map<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let settings = Settings::load(None, env(&[]), &[]).unwrap();
        assert_eq!(settings, Settings::default());
        assert_eq!(settings.redis.url, DEFAULT_REDIS_URL);
        assert_eq!(settings.redis.prefix, DEFAULT_PREFIX);
        assert_eq!(settings.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(settings.api_token, None);
    }

    #[test]
    fn environment_uses_double_underscore_nesting() {
        let settings = Settings::load(
            None,
            env(&[
                ("EMITTER_REDIS__URL", "redis://10.0.0.1:6380/2"),
                ("EMITTER_REDIS__PREFIX", "app"),
                ("EMITTER_REDIS__PUBLISH_TIMEOUT_MS", "250"),
                ("EMITTER_LISTEN", "127.0.0.1:9000"),
                ("EMITTER_API_TOKEN", "12345"),
            ]),
            &[],
        )
        .unwrap();
        assert_eq!(settings.redis.url, "redis://10.0.0.1:6380/2");
        assert_eq!(settings.redis.prefix, "app");
        assert_eq!(settings.redis.publish_timeout_ms, 250);
        assert_eq!(settings.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(settings.api_token.as_deref(), Some("12345"));
    }

    #[test]
    fn flags_override_environment_which_overrides_file() {
        let dir = std::env::temp_dir().join(format!("emitter-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("emitter.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:7000\"\n[redis]\nurl = \"redis://file:1\"\nprefix = \"from-file\"\n",
        )
        .unwrap();
        let settings = Settings::load(
            Some(&file),
            env(&[
                ("EMITTER_REDIS__PREFIX", "from-env"),
                ("EMITTER_REDIS__URL", "redis://env:2"),
            ]),
            &[("redis.url", "redis://flag:3".to_owned())],
        )
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(settings.redis.prefix, "from-env");
        assert_eq!(settings.redis.url, "redis://flag:3");
    }

    fn load_error(pairs: &[(&str, &str)]) -> String {
        Settings::load(None, env(pairs), &[])
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn invalid_values_name_their_key() {
        let err = load_error(&[("EMITTER_LISTEN", "not-an-address")]);
        assert!(err.contains("listen"), "{err}");
        let err = load_error(&[("EMITTER_REDIS__PUBLISH_TIMEOUT_MS", "soon")]);
        assert!(err.contains("redis.publish_timeout_ms"), "{err}");
        let err = load_error(&[("EMITTER_REDIS__PUBLISH_TIMEOUT_MS", "0")]);
        assert!(err.contains("redis.publish_timeout_ms"), "{err}");
        let err = load_error(&[("EMITTER_REDIS__URL", "http://nope")]);
        assert!(err.contains("redis.url"), "{err}");
        let err = load_error(&[("EMITTER_REDIS__PREFIX", "")]);
        assert!(err.contains("redis.prefix"), "{err}");
        let err = load_error(&[("EMITTER_API_TOKEN", "")]);
        assert!(err.contains("api_token"), "{err}");
        let err = load_error(&[("EMITTER_REDIS__URLL", "redis://x:1")]);
        assert!(err.contains("urll"), "{err}");
    }

    /// The sentinels' own ACL user, given in their URL, is used (it was
    /// once ignored by the emitter while the adapter took it).
    #[test]
    fn sentinel_user_from_the_url_reaches_the_publisher() {
        let settings = Settings::load(
            None,
            env(&[
                ("EMITTER_REDIS__URL", "redis://app:data-pw@127.0.0.1:6379/3"),
                (
                    "EMITTER_REDIS__SENTINEL_URLS",
                    "redis://watcher:sentinel-pw@10.0.0.1:26379",
                ),
            ]),
            &[],
        )
        .unwrap();
        let sentinels = settings.redis.sentinel_settings().unwrap().unwrap();
        match sentinels.publisher_config().server {
            fred::types::config::ServerConfig::Sentinel {
                username, password, ..
            } => {
                assert_eq!(username.as_deref(), Some("watcher"));
                assert_eq!(password.as_deref(), Some("sentinel-pw"));
            }
            other => panic!("not a sentinel configuration: {other:?}"),
        }
        assert_eq!(sentinels.base.username.as_deref(), Some("app"));
        assert_eq!(sentinels.base.database, Some(3));
    }

    #[test]
    fn sentinels_from_the_environment() {
        let settings = Settings::load(
            None,
            env(&[
                (
                    "EMITTER_REDIS__SENTINEL_URLS",
                    "redis://10.0.0.1:26379, 10.0.0.2:26380",
                ),
                ("EMITTER_REDIS__SENTINEL_MASTER", "cluster-a"),
                ("EMITTER_REDIS__SENTINEL_PASSWORD", "pw"),
                ("EMITTER_REDIS__SENTINEL_POLL_INTERVAL_MS", "250"),
            ]),
            &[],
        )
        .unwrap();
        assert_eq!(
            settings.redis.sentinel_poll_interval(),
            Duration::from_millis(250)
        );
        let sentinels = settings.redis.sentinel_settings().unwrap().unwrap();
        assert_eq!(
            sentinels.sentinels,
            vec![
                ("10.0.0.1".to_owned(), 26379),
                ("10.0.0.2".to_owned(), 26380)
            ]
        );
        assert_eq!(sentinels.password.as_deref(), Some("pw"));
        assert_eq!(settings.redis.sentinel_master, "cluster-a");
        assert_eq!(settings.redis.sentinel_password.as_deref(), Some("pw"));
        let err = load_error(&[("EMITTER_REDIS__SENTINEL_URLS", "http://x:1")]);
        assert!(err.contains("redis.sentinel_urls"), "{err}");
        let err = load_error(&[
            ("EMITTER_REDIS__SENTINEL_URLS", "x:1"),
            ("EMITTER_REDIS__SENTINEL_MASTER", " "),
        ]);
        assert!(err.contains("redis.sentinel_master"), "{err}");
    }

    #[test]
    fn missing_config_file_is_an_error() {
        let err = Settings::load(Some(Path::new("/nonexistent/emitter.toml")), env(&[]), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("emitter.toml"), "{err}");
    }
}
