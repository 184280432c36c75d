//! Property tests: round trips for every packet kind and for the msgpack
//! conversion, placeholder order, and no panics on arbitrary input.

use bytes::Bytes;
use proptest::prelude::*;
use protocol::convert::{msgpack_ref_to_socketio, msgpack_to_socketio, socketio_to_msgpack};
use protocol::engineio::{
    decode_payload_v3, decode_payload_v3_binary, decode_payload_v4, encode_payload_v3,
    encode_payload_v3_binary, encode_payload_v4, EioPacket, EioVersion, Frame, OpenPacket,
};
use protocol::socketio::{Packet, PacketDecoder, PacketType, ProtocolVersion, RESERVED_EVENTS};
use rmpv::Value;

// ----------------------------------------------------------------- strategies

fn json_leaf() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        any::<String>().prop_map(serde_json::Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    json_leaf().prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn event_name() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        any::<String>()
            .prop_filter("not reserved", |s| !RESERVED_EVENTS.contains(&s.as_str()))
            .prop_map(serde_json::Value::from),
        any::<u32>().prop_map(serde_json::Value::from),
    ]
}

fn data_for(kind: PacketType) -> BoxedStrategy<Option<String>> {
    let object = prop::collection::btree_map(any::<String>(), json_value(), 0..4)
        .prop_map(|m| serde_json::Value::Object(m.into_iter().collect()));
    let array = prop::collection::vec(json_value(), 0..5).prop_map(serde_json::Value::Array);
    match kind {
        PacketType::Connect => prop::option::of(object.prop_map(|v| v.to_string())).boxed(),
        PacketType::Disconnect => Just(None).boxed(),
        PacketType::ConnectError => prop_oneof![
            object.prop_map(|v| v.to_string()),
            any::<String>().prop_map(|s| serde_json::Value::from(s).to_string())
        ]
        .prop_map(Some)
        .boxed(),
        PacketType::Event | PacketType::BinaryEvent => (event_name(), array)
            .prop_map(|(name, rest)| {
                let mut items = vec![name];
                items.extend(rest.as_array().cloned().unwrap_or_default());
                Some(serde_json::Value::Array(items).to_string())
            })
            .boxed(),
        PacketType::Ack | PacketType::BinaryAck => array.prop_map(|v| Some(v.to_string())).boxed(),
    }
}

fn packet() -> impl Strategy<Value = Packet> {
    let kinds = prop::sample::select(vec![
        PacketType::Connect,
        PacketType::Disconnect,
        PacketType::Event,
        PacketType::Ack,
        PacketType::ConnectError,
        PacketType::BinaryEvent,
        PacketType::BinaryAck,
    ]);
    let nsp = prop_oneof![Just("/".to_owned()), "/[a-zA-Z0-9_\\-/é?=&]{0,12}"];
    (kinds, nsp, prop::option::of(any::<u64>()), 0usize..5).prop_flat_map(
        |(kind, nsp, id, attachments)| {
            data_for(kind).prop_map(move |data| Packet {
                kind,
                nsp: nsp.clone(),
                id: if kind.is_ack() {
                    Some(id.unwrap_or(0))
                } else {
                    id.filter(|_| kind.is_event())
                },
                attachments: if kind.is_binary() { attachments } else { 0 },
                data,
            })
        },
    )
}

fn open_packet() -> impl Strategy<Value = OpenPacket> {
    (
        any::<String>(),
        prop::collection::vec(any::<String>(), 0..3),
        any::<u64>(),
        any::<u64>(),
        prop::option::of(any::<u64>()),
    )
        .prop_map(
            |(sid, upgrades, ping_interval, ping_timeout, max_payload)| OpenPacket {
                sid,
                upgrades,
                ping_interval,
                ping_timeout,
                max_payload,
            },
        )
}

/// Engine.IO packets; `text` is the strategy for text data (v4 payloads
/// cannot carry the record separator inside a packet).
fn eio_packet(
    text: impl Strategy<Value = String> + Clone + 'static,
) -> impl Strategy<Value = EioPacket> {
    let non_empty = text.clone().prop_filter("non-empty", |s| !s.is_empty());
    prop_oneof![
        open_packet().prop_map(EioPacket::Open),
        Just(EioPacket::Close),
        prop::option::of(non_empty.clone()).prop_map(EioPacket::Ping),
        prop::option::of(non_empty).prop_map(EioPacket::Pong),
        text.prop_map(EioPacket::Message),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| EioPacket::Binary(Bytes::from(b))),
        Just(EioPacket::Upgrade),
        Just(EioPacket::Noop),
    ]
}

fn msgpack_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Boolean),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::F64),
        any::<f32>().prop_map(Value::F32),
        any::<String>().prop_map(Value::from),
        prop::collection::vec(any::<u8>(), 0..16).prop_map(Value::Binary),
    ]
}

/// Map keys JS keeps verbatim and in place (no array indices, no
/// `__proto__`, no `_placeholder` which would collide with placeholders).
fn plain_key() -> impl Strategy<Value = String> {
    any::<String>().prop_filter("plain JS key", |k| {
        k != "__proto__"
            && k != "_placeholder"
            && !(k.parse::<u64>().is_ok() && !k.starts_with('0') || k == "0")
    })
}

fn msgpack_value() -> impl Strategy<Value = Value> {
    msgpack_leaf().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(plain_key(), inner, 0..6).prop_map(|m| Value::Map(
                m.into_iter().map(|(k, v)| (Value::from(k), v)).collect()
            )),
        ]
    })
}

/// What a msgpack value looks like after a trip through JS numbers.
fn normalise(value: &Value) -> Value {
    match value {
        Value::F32(f) => normalise(&Value::F64(f64::from(*f))),
        Value::F64(f) if !f.is_finite() => Value::Nil,
        Value::F64(f) if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_991.0 => {
            if *f < 0.0 {
                Value::from(*f as i64)
            } else {
                Value::from(*f as u64)
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(normalise).collect()),
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), normalise(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Equality after a trip through JS: an integral double of 2^53 or more is
/// printed as integer digits and comes back as the integer with that value.
fn same_after_js(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Integer(i), Value::F64(f)) => i.as_f64() == Some(*f),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_after_js(x, y))
        }
        (Value::Map(a), Value::Map(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ka, va), (kb, vb))| ka == kb && same_after_js(va, vb))
        }
        _ => got == want,
    }
}

/// Binaries in depth-first order, the order placeholders must follow.
fn binaries_depth_first(value: &Value, out: &mut Vec<Bytes>) {
    match value {
        Value::Binary(b) => out.push(Bytes::from(b.clone())),
        Value::Array(items) => items.iter().for_each(|v| binaries_depth_first(v, out)),
        Value::Map(entries) => entries
            .iter()
            .for_each(|(_, v)| binaries_depth_first(v, out)),
        _ => {}
    }
}

// ----------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn socketio_packets_round_trip(packet in packet()) {
        let text = packet.encode();
        let mut expected = packet.clone();
        if expected.nsp.is_empty() {
            expected.nsp = "/".into();
        }
        prop_assert_eq!(Packet::decode(&text).unwrap(), expected.clone());
        prop_assert_eq!(Packet::decode_with(&text, ProtocolVersion::V4).unwrap(), expected);
    }

    #[test]
    fn binary_packets_reassemble(packet in packet(), attachment in prop::collection::vec(any::<u8>(), 0..32)) {
        let mut decoder = PacketDecoder::new();
        let first = decoder.push_text(&packet.encode()).unwrap();
        if packet.kind.is_binary() && packet.attachments > 0 {
            prop_assert!(first.is_none());
            let mut done = None;
            for _ in 0..packet.attachments {
                prop_assert!(done.is_none());
                // placeholders in random data never point anywhere: all fine
                done = decoder.push_binary(Bytes::from(attachment.clone())).unwrap();
            }
            let (decoded, attachments) = done.unwrap();
            prop_assert_eq!(decoded.attachments, attachments.len());
        } else {
            prop_assert!(first.is_some());
        }
    }

    #[test]
    fn engineio_single_packets_round_trip(packet in eio_packet(any::<String>())) {
        for version in [EioVersion::V3, EioVersion::V4] {
            let frame = packet.encode(version);
            prop_assert_eq!(&EioPacket::decode(frame, version).unwrap(), &packet);
        }
        prop_assert_eq!(EioPacket::decode_v4_text(&packet.encode_v4_text()).unwrap(), packet.clone());
        prop_assert_eq!(EioPacket::decode_v3_text(&packet.encode_v3_text()).unwrap(), packet);
    }

    #[test]
    fn engineio_payloads_round_trip(
        v4_packets in prop::collection::vec(eio_packet("[^\u{1e}]{0,20}"), 1..6),
        v3_packets in prop::collection::vec(eio_packet(".{1,20}"), 0..6),
    ) {
        prop_assert_eq!(decode_payload_v4(&encode_payload_v4(&v4_packets)).unwrap(), v4_packets);
        prop_assert_eq!(decode_payload_v3(&encode_payload_v3(&v3_packets)).unwrap(), v3_packets.clone());
        prop_assert_eq!(decode_payload_v3_binary(&encode_payload_v3_binary(&v3_packets)).unwrap(), v3_packets);
    }

    #[test]
    fn msgpack_socketio_round_trip(value in msgpack_value()) {
        let (json, attachments) = msgpack_to_socketio(&value).unwrap();
        // valid JSON
        prop_assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
        let mut expected_attachments = Vec::new();
        binaries_depth_first(&value, &mut expected_attachments);
        prop_assert_eq!(&attachments, &expected_attachments);
        for (index, _) in attachments.iter().enumerate() {
            let placeholder = format!("{{\"_placeholder\":true,\"num\":{index}}}");
            prop_assert!(json.contains(&placeholder));
        }
        let back = socketio_to_msgpack(&json, &attachments).unwrap();
        let expected = normalise(&value);
        prop_assert!(same_after_js(&back, &expected), "{:?} != {:?}", back, expected);

        // same answer from the borrowed path, through real msgpack bytes
        let mut raw = Vec::new();
        rmpv::encode::write_value(&mut raw, &value).unwrap();
        let source = Bytes::from(raw);
        let value_ref = rmpv::decode::read_value_ref(&mut &source[..]).unwrap();
        let (json_ref, attachments_ref) = msgpack_ref_to_socketio(&value_ref, Some(&source)).unwrap();
        prop_assert_eq!(json_ref, json);
        prop_assert_eq!(attachments_ref, attachments);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn decoders_never_panic_on_strings(text in any::<String>(), noisy in "[0-6b][0-9/,\\-\\[\\]{}\":a-z\u{1e}]{0,40}") {
        for input in [&text, &noisy] {
            let _ = Packet::decode(input);
            let _ = Packet::decode_with(input, ProtocolVersion::V4);
            let _ = EioPacket::decode_v4_text(input);
            let _ = EioPacket::decode_v3_text(input);
            let _ = decode_payload_v4(input);
            let _ = decode_payload_v3(input);
            let _ = socketio_to_msgpack(input, &[Bytes::new()]);
        }
    }

    #[test]
    fn decoders_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_payload_v3_binary(&bytes);
        let _ = EioPacket::decode_v3_binary(Bytes::from(bytes.clone()));
        let _ = EioPacket::decode(Frame::Binary(Bytes::from(bytes.clone())), EioVersion::V3);
        if let Ok(value) = rmpv::decode::read_value(&mut bytes.as_slice()) {
            let _ = msgpack_to_socketio(&value);
        }
        let source = Bytes::from(bytes);
        if let Ok(value) = rmpv::decode::read_value_ref(&mut &source[..]) {
            let _ = msgpack_ref_to_socketio(&value, Some(&source));
        }
    }

    #[test]
    fn packet_decoder_never_panics(frames in prop::collection::vec(prop_oneof![
        "[0-6][0-9]{0,2}-?(/[a-z]{0,3},)?[0-9]{0,2}(\\[\"e\"(,\\{\"_placeholder\":true,\"num\":[0-3]\\})*\\])?".prop_map(Frame::Text),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(|b| Frame::Binary(Bytes::from(b))),
    ], 0..12)) {
        let mut decoder = PacketDecoder::new().with_max_attachments(4);
        for frame in frames {
            let _ = match frame {
                Frame::Text(text) => decoder.push_text(&text),
                Frame::Binary(data) => decoder.push_binary(data),
            };
        }
    }
}
