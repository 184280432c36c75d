//! Golden vectors: the Rust codecs against bytes made by the real Node packages.
//!
//! `tests/node/golden.js` encodes messages with notepack.io 3 and 2,
//! socket.io-parser 4.2.4, and captures on a real Redis what
//! @socket.io/redis-emitter 5.x, socket.io-emitter 0.2.0 and two live
//! socket.io servers with @socket.io/redis-adapter 8.3 publish. For every
//! vector this test checks that
//!
//! 1. the Rust decoder (crates/wire, crates/protocol) accepts it and yields
//!    the structure the Node decoder yields (`expect`), after the documented
//!    normalisations (rooms are strings, `undefined` is nil, binary packet
//!    types report as EVENT/ACK like socket.io-parser's Decoder);
//! 2. re-encoding is byte for byte identical where the vector is `exact`;
//! 3. a broadcast turns into the Socket.IO text and attachments a Node
//!    socket.io server sends its clients for it;
//! 4. the Rust encoding, fed to the Node decoders (decode.js), reads back as
//!    the same structure.
//!
//! No bytes are typed by hand: the Node script is the only source.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use bytes::Bytes;
use e2e::golden::{canonical_numbers, describe_msgpack, node_vectors};
use e2e::{from_hex, to_hex, NodePeer};
use protocol::convert::{msgpack_to_socketio, socketio_to_msgpack};
use protocol::socketio::{Packet, PacketDecoder, PacketType};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use wire::{
    BroadcastFlags, BroadcastMessage, BroadcastOpts, BroadcastPacket, Channels,
    LegacyEmitterMessage, Request, Response,
};

#[derive(Debug, Deserialize)]
struct Vector {
    name: String,
    source: String,
    kind: String,
    channel: Option<String>,
    hex: String,
    #[serde(default)]
    attachments: Vec<String>,
    expect: Value,
    exact: bool,
    socketio: Option<SocketioView>,
}

#[derive(Debug, Deserialize)]
struct SocketioView {
    text: String,
    attachments: Vec<String>,
}

/// Runs golden.js against a fresh Redis and parses its vectors.
async fn golden_vectors() -> anyhow::Result<Vec<Vector>> {
    node_vectors("golden.js").await
}

// ------------------------------------------------------------------ Rust -> the JSON description

fn describe_flags(flags: &BroadcastFlags) -> Value {
    let mut map = Map::new();
    if flags.volatile {
        map.insert("volatile".into(), json!(true));
    }
    if let Some(compress) = flags.compress {
        map.insert("compress".into(), json!(compress));
    }
    if flags.local {
        map.insert("local".into(), json!(true));
    }
    if flags.broadcast {
        map.insert("broadcast".into(), json!(true));
    }
    if let Some(binary) = flags.binary {
        map.insert("binary".into(), json!(binary));
    }
    if let Some(timeout) = flags.timeout {
        map.insert("timeout".into(), json!(timeout));
    }
    if flags.expect_single_response {
        map.insert("expectSingleResponse".into(), json!(true));
    }
    Value::Object(map)
}

fn describe_packet(packet: &BroadcastPacket) -> anyhow::Result<Value> {
    Ok(
        json!({"type": packet.kind.code(), "data": describe_msgpack(&packet.data)?, "nsp": packet.nsp}),
    )
}

fn describe_opts(opts: &BroadcastOpts, with_flags: bool) -> Value {
    let mut value = json!({"rooms": opts.rooms, "except": opts.except});
    if with_flags {
        value["flags"] = describe_flags(&opts.flags);
    }
    value
}

fn describe_broadcast(message: &BroadcastMessage) -> anyhow::Result<Value> {
    Ok(json!([
        message.uid,
        describe_packet(&message.packet)?,
        describe_opts(&message.opts, true)
    ]))
}

fn describe_legacy(message: &LegacyEmitterMessage) -> anyhow::Result<Value> {
    Ok(
        json!([describe_packet(&message.packet)?, {"rooms": message.rooms, "flags": describe_flags(&message.flags)}]),
    )
}

fn describe_request(request: &Request) -> anyhow::Result<Value> {
    let mut map = Map::new();
    if let Some(uid) = request.uid() {
        map.insert("uid".into(), json!(uid));
    }
    if let Some(id) = request.request_id() {
        map.insert("requestId".into(), json!(id));
    }
    map.insert("type".into(), json!(request.request_type().code()));
    match request {
        Request::Sockets { rooms, .. } => {
            map.insert("rooms".into(), json!(rooms));
        }
        Request::AllRooms { .. } => {}
        Request::RemoteJoin { opts, rooms, .. } | Request::RemoteLeave { opts, rooms, .. } => {
            map.insert("opts".into(), describe_opts(opts, false));
            map.insert("rooms".into(), json!(rooms));
        }
        Request::RemoteDisconnect { opts, close, .. } => {
            map.insert("opts".into(), describe_opts(opts, false));
            map.insert("close".into(), json!(close));
        }
        Request::LegacyRemoteJoin { sid, room, .. }
        | Request::LegacyRemoteLeave { sid, room, .. } => {
            map.insert("sid".into(), json!(sid));
            map.insert("room".into(), json!(room));
        }
        Request::LegacyRemoteDisconnect { sid, close, .. } => {
            map.insert("sid".into(), json!(sid));
            map.insert("close".into(), json!(close));
        }
        Request::RemoteFetch { opts, .. } => {
            map.insert("opts".into(), describe_opts(opts, false));
        }
        Request::ServerSideEmit { data, .. } => {
            map.insert("data".into(), json!(data));
        }
        Request::Broadcast { packet, opts, .. } => {
            map.insert("packet".into(), describe_packet(packet)?);
            map.insert("opts".into(), describe_opts(opts, true));
        }
    }
    Ok(Value::Object(map))
}

fn describe_response(response: &Response) -> anyhow::Result<Value> {
    let id = response.request_id();
    Ok(match response {
        Response::Sockets { sockets, .. } => json!({"requestId": id, "sockets": sockets}),
        Response::AllRooms { rooms, .. } => json!({"requestId": id, "rooms": rooms}),
        Response::RemoteAck { .. } => json!({ "requestId": id }),
        Response::FetchedSockets { sockets, .. } => json!({
            "requestId": id,
            "sockets": sockets.iter().map(|s| json!({
                "id": s.id, "handshake": s.handshake, "rooms": s.rooms, "data": s.data,
            })).collect::<Vec<_>>(),
        }),
        Response::ServerSideEmitAck { data, .. } => match data {
            Some(data) => json!({"type": 6, "requestId": id, "data": data}),
            None => json!({"type": 6, "requestId": id}),
        },
        Response::BroadcastClientCount { client_count, .. } => {
            json!({"type": 8, "requestId": id, "clientCount": client_count})
        }
        Response::BroadcastAck { packet, .. } => {
            json!({"type": 9, "requestId": id, "packet": describe_msgpack(packet)?})
        }
    })
}

/// A decoded Socket.IO packet as socket.io-parser's Decoder reports it.
fn describe_sio(packet: &Packet, attachments: &[Bytes]) -> anyhow::Result<Value> {
    // The Node Decoder reports BINARY_EVENT / BINARY_ACK as EVENT / ACK once
    // the attachments are back in place.
    let kind = match packet.kind {
        PacketType::BinaryEvent => PacketType::Event,
        PacketType::BinaryAck => PacketType::Ack,
        other => other,
    };
    let mut map = Map::new();
    map.insert("type".into(), json!(kind as u8));
    map.insert("nsp".into(), json!(packet.nsp));
    if let Some(id) = packet.id {
        map.insert("id".into(), json!(id));
    }
    if let Some(data) = &packet.data {
        let value = socketio_to_msgpack(data, attachments).context("socketio_to_msgpack")?;
        map.insert("data".into(), describe_msgpack(&value)?);
    }
    Ok(Value::Object(map))
}

// ------------------------------------------------------------------ normalisation of the Node view

fn is_undefined(value: &Value) -> bool {
    value.get("$undefined") == Some(&Value::Bool(true))
}

/// `undefined` in packet data follows `JSON.stringify`, which is what a
/// Node server writes to its sockets: an object entry holding it vanishes,
/// an array item or a bare value becomes null (notepack 3 writes a bare
/// undefined as nil; notepack 2's `d4 00 00` decodes to it).
fn undefined_to_null(value: &mut Value) {
    if is_undefined(value) {
        *value = Value::Null;
        return;
    }
    match value {
        Value::Array(items) => items.iter_mut().for_each(undefined_to_null),
        Value::Object(map) => {
            map.retain(|_, v| !is_undefined(v));
            map.values_mut().for_each(undefined_to_null);
        }
        _ => {}
    }
}

/// Rooms are strings in Rust (an integer room is its decimal text, which is
/// also the channel name Node uses); a missing or undefined list is empty.
fn normalize_rooms(value: Option<&mut Value>) {
    let Some(value) = value else { return };
    if is_undefined(value) || value.is_null() {
        *value = json!([]);
        return;
    }
    if let Value::Array(items) = value {
        for item in items {
            if let Value::Number(n) = item {
                *item = Value::String(n.to_string());
            }
        }
    }
}

fn normalize_flags(flags: &mut Value) {
    if is_undefined(flags) || flags.is_null() {
        *flags = json!({});
    }
    if let Value::Object(map) = flags {
        map.retain(|_, v| !is_undefined(v));
    }
}

fn normalize_opts(opts: &mut Value, with_flags: bool) {
    if let Value::Object(map) = opts {
        map.entry("except").or_insert(json!([]));
        if with_flags {
            map.entry("flags").or_insert(json!({}));
        }
    }
    normalize_rooms(opts.get_mut("rooms"));
    normalize_rooms(opts.get_mut("except"));
    if let Some(flags) = opts.get_mut("flags") {
        normalize_flags(flags);
    }
}

fn normalize_packet(packet: &mut Value) {
    if let Value::Object(map) = packet {
        // Node's adapter treats a missing nsp as "/".
        map.entry("nsp").or_insert(json!("/"));
    }
    if let Some(data) = packet.get_mut("data") {
        undefined_to_null(data);
    }
}

/// The Node view of a message, normalised to what the Rust types can hold.
fn normalize(kind: &str, mut view: Value) -> Value {
    match kind {
        "broadcast" => {
            if let Some(packet) = view.get_mut(1) {
                normalize_packet(packet);
            }
            if let Some(opts) = view.get_mut(2) {
                normalize_opts(opts, true);
            }
            // Node destructures [uid, packet, opts] and ignores the rest.
            if let Value::Array(items) = &mut view {
                items.truncate(3);
            }
        }
        "legacy-emitter" => {
            if let Some(packet) = view.get_mut(0) {
                normalize_packet(packet);
            }
            if let Some(opts) = view.get_mut(1) {
                normalize_rooms(opts.get_mut("rooms"));
                if let Some(Value::Object(flags)) = opts.get_mut("flags") {
                    // 0.2.0 carries the namespace in flags only transiently.
                    flags.remove("nsp");
                }
                if let Some(flags) = opts.get_mut("flags") {
                    normalize_flags(flags);
                }
            }
        }
        "request" => {
            if view.get("opts").is_some() {
                let with_flags = view["type"] == 7;
                if let Some(opts) = view.get_mut("opts") {
                    normalize_opts(opts, with_flags);
                }
            }
            if view.get("rooms").is_some() {
                normalize_rooms(view.get_mut("rooms"));
            }
            if let Some(packet) = view.get_mut("packet") {
                normalize_packet(packet);
            }
        }
        // A BROADCAST_ACK carries the client's ack argument as msgpack.
        "response" if view["type"] == 9 => {
            if let Some(packet) = view.get_mut("packet") {
                undefined_to_null(packet);
            }
        }
        // JSON responses and Socket.IO packets compare as decoded.
        _ => {}
    }
    canonical_numbers(&mut view);
    view
}

// ------------------------------------------------------------------ per-vector checks

/// The Rust side of one vector: its description, its re-encoding, and how
/// decode.js should read the re-encoding.
struct RustView {
    described: Value,
    reencoded: Vec<u8>,
    reencoded_attachments: Vec<Bytes>,
    node_kind: &'static str,
}

fn rust_view(vector: &Vector, bytes: &[u8]) -> anyhow::Result<RustView> {
    Ok(match vector.kind.as_str() {
        "broadcast" => {
            let message = BroadcastMessage::decode(bytes).context("BroadcastMessage::decode")?;
            check_broadcast_channel(vector, &message)?;
            if let Some(view) = &vector.socketio {
                check_socketio_view(&message.packet, view)?;
            }
            RustView {
                described: describe_broadcast(&message)?,
                reencoded: message.encode(),
                reencoded_attachments: Vec::new(),
                node_kind: "notepack",
            }
        }
        "request" => {
            let request = Request::decode(bytes).context("Request::decode")?;
            if let Some(channel) = &vector.channel {
                let expected = Channels::new("socket.io", "/");
                anyhow::ensure!(
                    channel == expected.request(),
                    "request on unexpected channel {channel}"
                );
            }
            RustView {
                described: describe_request(&request)?,
                reencoded: request.encode(),
                reencoded_attachments: Vec::new(),
                node_kind: "adapter",
            }
        }
        "response" => {
            let response = Response::decode(bytes).context("Response::decode")?;
            RustView {
                described: describe_response(&response)?,
                reencoded: response.encode(),
                reencoded_attachments: Vec::new(),
                node_kind: "adapter",
            }
        }
        "legacy-emitter" => {
            let message =
                LegacyEmitterMessage::decode(bytes).context("LegacyEmitterMessage::decode")?;
            if let Some(channel) = &vector.channel {
                anyhow::ensure!(
                    *channel == wire::legacy_emitter_channel("socket.io"),
                    "legacy channel {channel}"
                );
            }
            RustView {
                described: describe_legacy(&message)?,
                reencoded: message.encode(),
                reencoded_attachments: Vec::new(),
                node_kind: "legacy",
            }
        }
        "sio-packet" => {
            let text = std::str::from_utf8(bytes).context("packet text is not UTF-8")?;
            let mut decoder = PacketDecoder::new();
            let mut decoded = decoder
                .push_text(text)
                .context("PacketDecoder::push_text")?;
            for hex in &vector.attachments {
                anyhow::ensure!(decoded.is_none(), "packet complete before all attachments");
                decoded = decoder
                    .push_binary(Bytes::from(from_hex(hex)?))
                    .context("push_binary")?;
            }
            let (packet, attachments) =
                decoded.context("packet incomplete after its attachments")?;
            RustView {
                described: describe_sio(&packet, &attachments)?,
                reencoded: packet.encode().into_bytes(),
                reencoded_attachments: attachments,
                node_kind: "sio-packet",
            }
        }
        other => bail!("unknown vector kind {other}"),
    })
}

fn check_broadcast_channel(vector: &Vector, message: &BroadcastMessage) -> anyhow::Result<()> {
    let Some(channel) = &vector.channel else {
        return Ok(());
    };
    let channels = Channels::new("socket.io", &message.packet.nsp);
    let expected = channels.broadcast_for(&message.opts.rooms);
    anyhow::ensure!(
        *channel == *expected,
        "published on {channel}, Rust would publish on {expected}"
    );
    Ok(())
}

/// The broadcast's data, converted the way a gateway sends it to its
/// sockets, must be exactly what a Node socket.io server sends.
fn check_socketio_view(packet: &BroadcastPacket, view: &SocketioView) -> anyhow::Result<()> {
    let (json, attachments) = msgpack_to_socketio(&packet.data).context("msgpack_to_socketio")?;
    let sio = if attachments.is_empty() {
        Packet::event(&packet.nsp, json)
    } else {
        Packet::binary_event(&packet.nsp, json, attachments.len())
    };
    let text = sio.encode();
    anyhow::ensure!(
        text == view.text,
        "socket.io text differs:\n  rust: {text}\n  node: {}",
        view.text
    );
    let hex: Vec<String> = attachments.iter().map(|a| to_hex(a)).collect();
    anyhow::ensure!(
        hex == view.attachments,
        "attachments differ: rust {hex:?}, node {:?}",
        view.attachments
    );
    Ok(())
}

async fn check_vector(vector: &Vector, decoder: &mut NodePeer) -> anyhow::Result<()> {
    let bytes = from_hex(&vector.hex)?;
    let expected = normalize(&vector.kind, vector.expect.clone());
    let rust = rust_view(vector, &bytes)?;

    let mut described = rust.described.clone();
    canonical_numbers(&mut described);
    anyhow::ensure!(
        described == expected,
        "decoded structure differs:\n  rust: {described}\n  node: {expected}"
    );

    if vector.exact {
        anyhow::ensure!(
            rust.reencoded == bytes,
            "re-encoding differs:\n  rust: {}\n  node: {}\n  rust text: {}\n  node text: {}",
            to_hex(&rust.reencoded),
            vector.hex,
            String::from_utf8_lossy(&rust.reencoded),
            String::from_utf8_lossy(&bytes),
        );
    }

    // The Rust encoding must read back in Node as the same structure.
    let attachments: Vec<&[u8]> = rust
        .reencoded_attachments
        .iter()
        .map(|a| a.as_ref())
        .collect();
    let node_view = decoder
        .decode(rust.node_kind, &rust.reencoded, &attachments)
        .await?
        .map_err(|err| {
            anyhow::anyhow!(
                "Node rejects the Rust encoding {}: {err}",
                to_hex(&rust.reencoded)
            )
        })?;
    let node_view = normalize(&vector.kind, node_view);
    anyhow::ensure!(
        node_view == expected,
        "Node reads the Rust encoding differently:\n  node(rust bytes): {node_view}\n  node(node bytes): {expected}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_vectors_round_trip_between_node_and_rust() -> anyhow::Result<()> {
    let vectors = golden_vectors().await?;

    // The script must have produced every family: a silent empty run proves nothing.
    let mut per_source: BTreeMap<String, usize> = BTreeMap::new();
    for vector in &vectors {
        let family = vector.name.split('/').next().unwrap_or_default().to_owned();
        *per_source.entry(family).or_default() += 1;
    }
    for (family, minimum) in [
        ("np3", 8),
        ("np2", 4),
        ("sio", 20),
        ("emitter5", 15),
        ("emitter02", 4),
        ("adapter", 25),
    ] {
        let count = per_source.get(family).copied().unwrap_or(0);
        anyhow::ensure!(
            count >= minimum,
            "only {count} `{family}` vectors (want >= {minimum}): {per_source:?}"
        );
    }
    for kind in [
        "broadcast",
        "request",
        "response",
        "legacy-emitter",
        "sio-packet",
    ] {
        anyhow::ensure!(vectors.iter().any(|v| v.kind == kind), "no `{kind}` vector");
    }
    let request_types: Vec<i64> = vectors
        .iter()
        .filter(|v| v.kind == "request")
        .filter_map(|v| v.expect["type"].as_i64())
        .collect();
    for ty in 0..=7 {
        anyhow::ensure!(request_types.contains(&ty), "no request of type {ty}");
    }

    let mut decoder = NodePeer::decoder().await?;
    let mut failures = Vec::new();
    for vector in &vectors {
        if let Err(err) = check_vector(vector, &mut decoder).await {
            failures.push(format!(
                "{} ({}, {}): {err:#}",
                vector.name, vector.source, vector.kind
            ));
        }
    }
    anyhow::ensure!(
        failures.is_empty(),
        "{} of {} golden vectors failed:\n\n{}",
        failures.len(),
        vectors.len(),
        failures.join("\n\n")
    );
    Ok(())
}
