//! Golden vectors of the ClusterAdapter format (crates/wire's `cluster`)
//! against the real Node packages: `tests/node/golden_cluster.js` runs two
//! socket.io 4.8 servers with createShardedAdapter on a real Redis and
//! records every message they publish, of every type from BROADCAST to
//! BROADCAST_ACK, JSON and msgpack, and the heartbeat types through the
//! adapter's own encoder. For each one this test checks that
//!
//! 1. the Rust decoder accepts it and its tree is what Node's decoder
//!    reads (numbers canonical, as JS has one number type);
//! 2. it re-encodes to Node's bytes exactly;
//! 3. a message Node published on a channel is one Rust would publish on
//!    that channel (Node's default `dynamic` subscription mode), and a
//!    response goes to a node's response channel.
//!
//! No bytes are typed by hand: the Node script is the only source.

use std::collections::BTreeSet;

use anyhow::Context;
use e2e::from_hex;
use e2e::golden::{canonical_numbers, describe_msgpack, node_vectors};
use serde::Deserialize;
use serde_json::Value;
use wire::{ClusterMessage, ClusterMessageType, ShardedChannels, SubscriptionMode};

#[derive(Debug, Deserialize)]
struct Vector {
    name: String,
    source: String,
    channel: String,
    hex: String,
    expect: Value,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_messages_match_node_byte_for_byte() -> anyhow::Result<()> {
    let vectors: Vec<Vector> = node_vectors("golden_cluster.js").await?;
    let mut types = BTreeSet::new();
    let mut binary = 0;
    let mut failures = Vec::new();
    // The uids of the nodes: a response goes to one of their channels.
    let uids: BTreeSet<String> = vectors
        .iter()
        .filter_map(|v| {
            v.expect
                .get("uid")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    for vector in &vectors {
        let checked = check(vector, &uids).with_context(|| {
            format!(
                "vector {} ({}) on {}: {}",
                vector.name, vector.source, vector.channel, vector.hex
            )
        });
        match checked {
            Ok(message) => {
                types.insert(message.body.message_type().code());
                binary += usize::from(!vector.hex.starts_with("7b"));
            }
            Err(err) => failures.push(format!("{err:#}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    eprintln!(
        "[golden cluster] {} vectors, {binary} msgpack, types {types:?}",
        vectors.len()
    );
    // Every type of socket.io-adapter's MessageType, and both encodings.
    assert_eq!(types, (1..=13).collect::<BTreeSet<u8>>());
    assert!(binary >= 3, "msgpack vectors: {binary}");
    Ok(())
}

fn check(vector: &Vector, uids: &BTreeSet<String>) -> anyhow::Result<ClusterMessage> {
    let bytes = from_hex(&vector.hex)?;
    let message = ClusterMessage::decode(&bytes)?;
    let mut expected = vector.expect.clone();
    canonical_numbers(&mut expected);
    let mut ours = describe_msgpack(&message.to_tree())?;
    canonical_numbers(&mut ours);
    anyhow::ensure!(ours == expected, "decoded as {ours}\nNode read {expected}");
    let encoded = ClusterMessage::encode(&message);
    anyhow::ensure!(
        encoded == bytes,
        "re-encoded as {}",
        String::from_utf8_lossy(&encoded)
    );
    let channels = ShardedChannels::new("socket.io", &message.nsp);
    let ty = message.body.message_type();
    if ty.is_response() {
        let on_a_response_channel = uids
            .iter()
            .any(|uid| channels.response(uid) == vector.channel);
        anyhow::ensure!(
            on_a_response_channel,
            "a response outside response channels"
        );
    } else if !matches!(
        ty,
        ClusterMessageType::InitialHeartbeat
            | ClusterMessageType::Heartbeat
            | ClusterMessageType::AdapterClose
    ) {
        let ours = channels.publish_channel(&message, SubscriptionMode::Dynamic);
        anyhow::ensure!(ours == vector.channel, "Rust would publish on {ours}");
    }
    Ok(message)
}
