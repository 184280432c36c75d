//! msgpack <-> Socket.IO conversion: placeholder numbering, JS semantics of
//! odd msgpack values, limits and errors.

use bytes::Bytes;
use protocol::convert::{msgpack_to_socketio, socketio_to_msgpack, MAX_DEPTH};
use protocol::socketio::{event_packet_from_msgpack, PacketType};
use protocol::ProtocolError;
use rmpv::Value;

fn s(text: &str) -> Value {
    Value::from(text)
}

fn bin(bytes: &[u8]) -> Value {
    Value::Binary(bytes.to_vec())
}

fn to_json(value: &Value) -> String {
    msgpack_to_socketio(value).expect("convertible").0
}

#[test]
fn placeholders_are_numbered_depth_first() {
    let value = Value::Array(vec![
        s("ev"),
        bin(b"0"),
        Value::Map(vec![
            (
                s("a"),
                Value::Array(vec![bin(b"1"), Value::Map(vec![(s("deep"), bin(b"2"))])]),
            ),
            (s("b"), bin(b"3")),
        ]),
        bin(b"4"),
    ]);
    let (json, attachments) = msgpack_to_socketio(&value).unwrap();
    assert_eq!(
        json,
        "[\"ev\",{\"_placeholder\":true,\"num\":0},{\"a\":[{\"_placeholder\":true,\"num\":1},{\"deep\":{\"_placeholder\":true,\"num\":2}}],\"b\":{\"_placeholder\":true,\"num\":3}},{\"_placeholder\":true,\"num\":4}]"
    );
    let expected: Vec<Bytes> = (b'0'..=b'4').map(|d| Bytes::from(vec![d])).collect();
    assert_eq!(attachments, expected);
    assert_eq!(socketio_to_msgpack(&json, &attachments).unwrap(), value);
}

#[test]
fn wire_format_example_becomes_a_binary_event() {
    // `io.emit("hello","world",Buffer[1,2,3])` as carried on Redis.
    let data = Value::Array(vec![s("hello"), s("world"), bin(&[1, 2, 3])]);
    let (packet, attachments) = event_packet_from_msgpack("/", &data).unwrap();
    assert_eq!(packet.kind, PacketType::BinaryEvent);
    assert_eq!(
        packet.encode(),
        "51-[\"hello\",\"world\",{\"_placeholder\":true,\"num\":0}]"
    );
    assert_eq!(attachments, vec![Bytes::from_static(&[1, 2, 3])]);
    let (plain, none) = event_packet_from_msgpack("/chat", &Value::Array(vec![s("hi")])).unwrap();
    assert_eq!(plain.encode(), "2/chat,[\"hi\"]");
    assert!(none.is_empty());
}

#[test]
fn numbers_follow_javascript() {
    let value = Value::Array(vec![
        Value::F64(f64::NAN),
        Value::F64(f64::INFINITY),
        Value::F64(-0.0),
        Value::F64(2.0),
        Value::F64(1e21),
        Value::F32(0.1),
        Value::from(u64::MAX),
        Value::from(i64::MIN),
    ]);
    assert_eq!(
        to_json(&value),
        "[null,null,0,2,1e+21,0.10000000149011612,18446744073709551615,-9223372036854775808]"
    );
    // and back: integral numbers become integers, others f64
    let back = socketio_to_msgpack("[1.0,1e3,1.5,-0,18446744073709551615,1e300]", &[]).unwrap();
    assert_eq!(
        back,
        Value::Array(vec![
            Value::from(1u64),
            Value::from(1000u64),
            Value::F64(1.5),
            Value::from(0u64),
            Value::from(u64::MAX),
            Value::F64(1e300),
        ])
    );
}

#[test]
fn map_keys_behave_like_js_property_keys() {
    let value = Value::Map(vec![
        (s("b"), Value::from(1)),
        (s("10"), Value::from(2)),
        (Value::from(2), Value::from(3)),
        (s("a"), Value::from(4)),
        (s("b"), Value::from(5)), // duplicate: first position, last value
        (s("__proto__"), Value::from(6)), // dropped
        (Value::Nil, Value::from(7)),
        (Value::Boolean(true), Value::from(8)),
        (Value::F64(1.5), Value::from(9)),
        (
            Value::Array(vec![Value::from(1), Value::Nil, s("x")]),
            Value::from(10),
        ),
        (Value::Map(vec![]), Value::from(11)),
        (bin(b"raw"), Value::from(12)),
        (s("01"), Value::from(13)),
        (s("4294967295"), Value::from(14)),  // not an array index
        (s("gone"), Value::Ext(0, vec![0])), // undefined value: key omitted
    ]);
    assert_eq!(
        to_json(&value),
        "{\"2\":3,\"10\":2,\"b\":5,\"a\":4,\"null\":7,\"true\":8,\"1.5\":9,\"1,,x\":10,\"[object Object]\":11,\"raw\":12,\"01\":13,\"4294967295\":14}"
    );
}

#[test]
fn strings_are_escaped_and_invalid_utf8_replaced() {
    let invalid = Value::String(rmpv::Utf8String::from(String::from("ok")));
    assert_eq!(to_json(&invalid), "\"ok\"");
    let raw: Vec<u8> = vec![0xa3, b'a', 0xff, b'"'];
    let value = rmpv::decode::read_value(&mut raw.as_slice()).unwrap();
    assert_eq!(to_json(&value), "\"a\u{fffd}\\\"\"");
    assert_eq!(to_json(&s("\u{0}\u{1f}\t")), "\"\\u0000\\u001f\\t\"");
}

#[test]
fn ext_types_follow_notepack() {
    let value = Value::Array(vec![
        Value::Ext(0, vec![0]),       // notepack 2 undefined
        Value::Ext(0, vec![1, 2, 3]), // ArrayBuffer -> attachment
        Value::Ext(-1, 1_700_000_000u32.to_be_bytes().to_vec()), // timestamp 32
        Value::Ext(5, vec![9, 9]),    // [type, bytes]
    ]);
    let (json, attachments) = msgpack_to_socketio(&value).unwrap();
    assert_eq!(
        json,
        "[null,{\"_placeholder\":true,\"num\":0},\"2023-11-14T22:13:20.000Z\",[5,{\"_placeholder\":true,\"num\":1}]]"
    );
    assert_eq!(
        attachments,
        vec![Bytes::from_static(&[1, 2, 3]), Bytes::from_static(&[9, 9])]
    );
    // timestamp 96 beyond the JS Date range is an Invalid Date -> null
    let mut far = vec![0u8; 4];
    far.extend(i64::MAX.to_be_bytes());
    assert_eq!(to_json(&Value::Ext(-1, far)), "null");
}

fn nested(depth: usize) -> Value {
    (0..depth).fold(Value::Nil, |inner, _| Value::Array(vec![inner]))
}

#[test]
fn depth_is_bounded_both_ways() {
    assert!(msgpack_to_socketio(&nested(MAX_DEPTH)).is_ok());
    assert_eq!(
        msgpack_to_socketio(&nested(MAX_DEPTH + 1)),
        Err(ProtocolError::TooDeep(MAX_DEPTH))
    );
    let deep_map =
        (0..MAX_DEPTH + 1).fold(Value::Nil, |inner, _| Value::Map(vec![(s("k"), inner)]));
    assert_eq!(
        msgpack_to_socketio(&deep_map),
        Err(ProtocolError::TooDeep(MAX_DEPTH))
    );
    let deep_json = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(
        socketio_to_msgpack(&deep_json, &[]),
        Err(ProtocolError::TooDeep(MAX_DEPTH))
    );

    // The deepest JSON we write parses back; placeholders count as a level
    // (found by the msgpack_to_socketio fuzz target).
    let (json, _) = msgpack_to_socketio(&nested(MAX_DEPTH)).unwrap();
    assert!(socketio_to_msgpack(&json, &[]).is_ok());
    let json_too_deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
    assert_eq!(
        socketio_to_msgpack(&json_too_deep, &[]),
        Err(ProtocolError::TooDeep(MAX_DEPTH))
    );
    let binary_at_the_bottom = (0..MAX_DEPTH).fold(bin(b"x"), |inner, _| Value::Array(vec![inner]));
    assert_eq!(
        msgpack_to_socketio(&binary_at_the_bottom),
        Err(ProtocolError::TooDeep(MAX_DEPTH))
    );
    let ext_pair_at_the_bottom =
        (0..MAX_DEPTH - 1).fold(Value::Ext(7, vec![1]), |inner, _| Value::Array(vec![inner]));
    assert_eq!(
        msgpack_to_socketio(&ext_pair_at_the_bottom),
        Err(ProtocolError::TooDeep(MAX_DEPTH))
    );
    let one_less = (0..MAX_DEPTH - 1).fold(bin(b"x"), |inner, _| Value::Array(vec![inner]));
    let (json, attachments) = msgpack_to_socketio(&one_less).unwrap();
    assert_eq!(socketio_to_msgpack(&json, &attachments).unwrap(), one_less);
}

#[test]
fn placeholder_errors() {
    let one = [Bytes::from_static(b"x")];
    let cases = [
        ("[{\"_placeholder\":true,\"num\":1}]", Some(1)),
        ("[{\"_placeholder\":true,\"num\":-1}]", None),
        ("[{\"_placeholder\":true,\"num\":0.5}]", None),
        ("[{\"_placeholder\":true}]", None),
        ("[{\"_placeholder\":true,\"num\":\"0\"}]", None),
    ];
    for (json, num) in cases {
        assert_eq!(
            socketio_to_msgpack(json, &one),
            Err(ProtocolError::InvalidPlaceholder { num, available: 1 }),
            "{json}"
        );
    }
    // `_placeholder` must be exactly `true`; extra keys do not matter (as in JS)
    assert_eq!(
        socketio_to_msgpack("[{\"_placeholder\":1,\"num\":0}]", &one).unwrap(),
        Value::Array(vec![Value::Map(vec![
            (s("_placeholder"), Value::from(1)),
            (s("num"), Value::from(0))
        ])])
    );
    assert_eq!(
        socketio_to_msgpack("[{\"num\":0,\"x\":1,\"_placeholder\":true}]", &one).unwrap(),
        Value::Array(vec![bin(b"x")])
    );
    assert!(matches!(
        socketio_to_msgpack("[1,", &[]),
        Err(ProtocolError::InvalidJson(_))
    ));
    assert!(matches!(
        socketio_to_msgpack("[1] x", &[]),
        Err(ProtocolError::InvalidJson(_))
    ));
}
