//! What the golden-vector tests share: running a Node script that writes
//! vectors with the real npm packages against a fresh Redis, and the JSON
//! description both sides compare (golden.js's `describe`: bytes as
//! `{$bin: hex}`, numbers canonical).

use std::time::Duration;

use anyhow::{bail, Context};
use rmpv::Value as Msgpack;
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use crate::{to_hex, RedisServer};

const GOLDEN_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs `tests/node/<script>` with `REDIS_URL` set to a fresh Redis and
/// parses the JSON it prints.
pub async fn node_vectors<T: DeserializeOwned>(script: &str) -> anyhow::Result<T> {
    crate::node::ensure_node_modules()?;
    let redis = RedisServer::master().await?;
    let output = tokio::time::timeout(
        GOLDEN_TIMEOUT,
        tokio::process::Command::new("node")
            .arg(crate::node_dir().join(script))
            .current_dir(crate::node_dir())
            .env("REDIS_URL", redis.url())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .with_context(|| format!("{script} did not finish in time"))?
    .with_context(|| format!("running node {script}"))?;
    if !output.status.success() {
        bail!(
            "{script} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).with_context(|| format!("parsing {script}'s output"))
}

/// A msgpack value in golden.js's description format.
pub fn describe_msgpack(value: &Msgpack) -> anyhow::Result<Value> {
    Ok(match value {
        Msgpack::Nil => Value::Null,
        Msgpack::Boolean(b) => Value::Bool(*b),
        Msgpack::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(n), _) => json!(n),
            (None, Some(n)) => json!(n),
            _ => bail!("integer {i} out of range"),
        },
        Msgpack::F32(f) => json!(f64::from(*f)),
        Msgpack::F64(f) => json!(f),
        Msgpack::String(s) => Value::String(s.as_str().context("string is not UTF-8")?.to_owned()),
        Msgpack::Binary(b) => json!({ "$bin": to_hex(b) }),
        Msgpack::Array(items) => Value::Array(
            items
                .iter()
                .map(describe_msgpack)
                .collect::<Result<_, _>>()?,
        ),
        Msgpack::Map(pairs) => {
            let mut map = Map::new();
            for (key, value) in pairs {
                let key = key
                    .as_str()
                    .with_context(|| format!("map key {key} is not a string"))?;
                map.insert(key.to_owned(), describe_msgpack(value)?);
            }
            Value::Object(map)
        }
        // notepack 2's `undefined` (fixext 1, type 0), should a decoder keep it.
        Msgpack::Ext(0, data) if data.as_slice() == [0] => Value::Null,
        Msgpack::Ext(ty, data) => bail!("unexpected ext {ty} {}", to_hex(data)),
    })
}

/// Canonical numbers: integral values as integers, others as f64 (JS has one
/// number type; Rust distinguishes them).
pub fn canonical_numbers(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64() {
                if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
                    // Within 2^53 the cast is exact.
                    *value = json!(f as i64);
                } else {
                    *value = json!(f);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(canonical_numbers),
        Value::Object(map) => map.values_mut().for_each(canonical_numbers),
        _ => {}
    }
}
