//! The end-to-end test harness: real `redis-server` processes, real Node
//! Socket.IO peers, and ways to wait on them with timeouts.
//!
//! The integration tests in `tests/tests/*.rs` must exercise the cluster
//! against the real things it interoperates with, never mocks. This crate
//! keeps that practical: every process it starts is owned by a guard that
//! kills it on drop (also when a test panics), every wait has a deadline, and
//! a missing `redis-server` or `tests/node/node_modules` fails with a message
//! that says to run `make test`, which installs both.

pub mod bins;
pub mod churn;
pub mod golden;
pub mod jwt;
pub mod node;
pub mod redis;
pub mod sentinel;
pub mod tls;
pub mod wait;

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;

use anyhow::Context;

pub use bins::{ExampleProcess, GatewayProcess, LogTail};
pub use jwt::TokenKit;
pub use node::NodePeer;
pub use redis::{RedisConn, RedisServer, Resp};
pub use sentinel::{SentinelServer, SentinelTiming};
pub use tls::PrivateCa;
pub use wait::{wait_for, wait_until, Deadline};

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// The port is released before returning, so another process may grab it in
/// between; [`RedisServer`] retries on a fresh port when that happens.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("binding 127.0.0.1:0 to find a free port")?;
    Ok(listener
        .local_addr()
        .context("reading the bound port")?
        .port())
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

/// `tests/node`: the Node peers and their `node_modules`.
pub fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// Lowercase hex of `bytes` (the golden vectors' and decode.js's byte format).
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Parses lowercase or uppercase hex; errors on odd length or a non-hex digit.
pub fn from_hex(hex: &str) -> anyhow::Result<Vec<u8>> {
    fn nibble(c: u8) -> anyhow::Result<u8> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => anyhow::bail!("invalid hex digit {:?}", char::from(c)),
        }
    }
    let bytes = hex.as_bytes();
    anyhow::ensure!(
        bytes.len() % 2 == 0,
        "hex string has odd length {}",
        bytes.len()
    );
    bytes
        .chunks_exact(2)
        .map(|pair| Ok((nibble(pair[0])? << 4) | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(from_hex(&to_hex(&bytes)).unwrap(), bytes);
        assert_eq!(to_hex(&[0x0a, 0xff]), "0aff");
        assert_eq!(from_hex("0AfF").unwrap(), vec![0x0a, 0xff]);
        assert!(from_hex("abc").is_err());
        assert!(from_hex("zz").is_err());
    }

    #[test]
    fn free_ports_are_bindable() {
        let port = free_port().unwrap();
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }
}
