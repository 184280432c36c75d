//! The documentation of [`crate::AdapterConfig`]'s fields, in one table: the
//! gateway builds its `GATEWAY_REDIS__*` keys, `gateway --help` and the
//! README's table from it, and a test holds every default here to the
//! code's. `url` is not listed: its meaning is the embedder's (the gateway
//! runs without Redis when it is unset).

/// One documented field of [`crate::AdapterConfig`].
#[derive(Debug, Clone, Copy)]
pub struct FieldDoc {
    /// The field's name.
    pub name: &'static str,
    /// Its default, as an operator would write it; `(…)` when unset.
    pub default: &'static str,
    /// Whether it is a list (comma-separated in the environment).
    pub list: bool,
    /// What it does.
    pub help: &'static str,
}

const fn field(name: &'static str, default: &'static str, help: &'static str) -> FieldDoc {
    FieldDoc {
        name,
        default,
        list: false,
        help,
    }
}

const fn list(name: &'static str, help: &'static str) -> FieldDoc {
    FieldDoc {
        name,
        default: "(none)",
        list: true,
        help,
    }
}

/// Every field an operator sets, `url` aside.
pub const FIELDS: &[FieldDoc] = &[
    list(
        "sentinel_urls",
        "comma-separated Redis Sentinels (redis://[user:pass@]host:26379 or host:26379): the master and replicas are discovered and followed across failovers",
    ),
    field(
        "sentinel_master",
        "mymaster",
        "the master group name the sentinels monitor",
    ),
    field(
        "sentinel_password",
        "(none)",
        "password of the sentinels themselves (their requirepass), when not in their URLs",
    ),
    field(
        "sentinel_poll_interval_ms",
        "1000",
        "how often the sentinels are asked for the topology besides their events, and the publisher checked to be on the master",
    ),
    field(
        "tls_ca_file",
        "(system roots)",
        "PEM file of the certificate authorities trusted for rediss:// servers (a private CA or a self-signed certificate)",
    ),
    list(
        "replica_urls",
        "comma-separated replicas to subscribe on (failover in order, then the master); with sentinels they take precedence over the discovered ones",
    ),
    field(
        "subscriber_selection",
        "hash",
        "which replica a gateway prefers: hash (of the node uid, spreads gateways), first, random or master",
    ),
    field(
        "prefix",
        "socket.io",
        "channel prefix, like the Node adapter's `key`",
    ),
    field(
        "request_timeout_ms",
        "5000",
        "how long a cross-node request waits for answers",
    ),
    field(
        "requests_on_master",
        "false",
        "subscribe request/response channels on the master (needed in a fleet with Node servers, whose fetchSockets counts NUMSUB on the master only)",
    ),
    field(
        "legacy_emitter",
        "false",
        "also accept the 2014 socket.io-emitter 0.2.0 messages on `<prefix>#emitter`",
    ),
    field(
        "buffer_size",
        "4096",
        "capacity of each namespace's inbound queues (broadcasts; requests and responses); what arrives while one is full is dropped and counted",
    ),
    field(
        "connect_timeout_ms",
        "1000",
        "how long a connection to a Redis server (or a sentinel) may take before the next one is tried",
    ),
    field(
        "subscriber_ping_interval_ms",
        "500",
        "interval of the subscriber's liveness PING; a server that misses two in a row is left for the next one",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AdapterConfig;

    /// The default of `name` as [`FIELDS`] writes it, from the code's
    /// [`AdapterConfig::default`] (for the test that holds the table to it).
    fn code_default(name: &str) -> Option<String> {
        let defaults = serde_json::to_value(AdapterConfig::default()).ok()?;
        Some(match defaults.get(name)? {
            serde_json::Value::String(text) => text.clone(),
            serde_json::Value::Null => "(unset)".to_owned(),
            serde_json::Value::Array(items) if items.is_empty() => "(none)".to_owned(),
            other => other.to_string(),
        })
    }

    #[test]
    fn documented_defaults_are_the_code_defaults() {
        for doc in FIELDS {
            let code = code_default(doc.name)
                .unwrap_or_else(|| panic!("{} is not a field of AdapterConfig", doc.name));
            if doc.default.starts_with('(') {
                assert!(
                    code.starts_with('('),
                    "{}: documented unset, the code says {code}",
                    doc.name
                );
            } else {
                assert_eq!(doc.default, code, "{}", doc.name);
            }
        }
    }

    #[test]
    fn every_field_is_documented_once() {
        let defaults = serde_json::to_value(AdapterConfig::default()).unwrap_or_default();
        let fields: Vec<&String> = defaults
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        for name in fields {
            let documented = FIELDS.iter().filter(|d| d.name == name).count();
            let expected = usize::from(name != "url");
            assert_eq!(documented, expected, "{name}");
        }
    }
}
