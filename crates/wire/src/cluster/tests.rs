//! Tables of Node's own bytes (copied from what socket.io 4.8 with
//! createShardedAdapter published; `tests/tests/golden_cluster.rs` checks
//! the full set against the installed packages at test time) and of inputs
//! that must be refused without a panic.

use super::*;

const UID: &str = "68ec12a53adbef51";

fn message(body: ClusterBody) -> ClusterMessage {
    ClusterMessage {
        uid: UID.into(),
        nsp: "/".into(),
        body,
    }
}

fn packet(data: Value) -> BroadcastPacket {
    BroadcastPacket {
        kind: PacketKind::Event,
        nsp: "/".into(),
        data,
    }
}

fn rooms(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

#[test]
fn node_bytes_decode_and_encode_back() {
    let binary_broadcast = [
        &b"\x84\xa4type\x03\xa4data\x82\xa6packet\x82\xa4type\x02\xa4data\x93\xa3bin\xc4\x03\x01\x02\x03\x81\xa4more\xc4\x00"[..],
        &b"\xa4opts\x83\xa5rooms\x91\xa5room1\xa6except\x90\xa5flags\x80\xa3uid\xb068ec12a53adbef51\xa3nsp\xa1/"[..],
    ]
    .concat();
    let cases: Vec<(&str, Vec<u8>, ClusterMessage)> = vec![
        (
            "broadcast",
            br#"{"type":3,"data":{"packet":{"type":2,"data":["hello",1,-2,1.5,1e+21]},"opts":{"rooms":[],"except":[],"flags":{}}},"uid":"68ec12a53adbef51","nsp":"/"}"#.to_vec(),
            message(ClusterBody::Broadcast {
                packet: packet(Value::Array(vec![
                    Value::from("hello"),
                    Value::from(1),
                    Value::from(-2),
                    Value::F64(1.5),
                    Value::F64(1e21),
                ])),
                request_id: None,
                opts: BroadcastOpts::default(),
            }),
        ),
        (
            "broadcast with binary",
            binary_broadcast,
            message(ClusterBody::Broadcast {
                packet: packet(Value::Array(vec![
                    Value::from("bin"),
                    Value::Binary(vec![1, 2, 3]),
                    map(vec![("more", Value::Binary(Vec::new()))]),
                ])),
                request_id: None,
                opts: BroadcastOpts {
                    rooms: rooms(&["room1"]),
                    ..BroadcastOpts::default()
                },
            }),
        ),
        (
            "broadcast with ack and flags",
            br#"{"type":3,"data":{"packet":{"type":2,"data":["ask"]},"requestId":"41d0d0aadd68ccfb","opts":{"rooms":["a","b"],"except":["c"],"flags":{"volatile":true,"compress":false,"timeout":2000}}},"uid":"68ec12a53adbef51","nsp":"/"}"#.to_vec(),
            message(ClusterBody::Broadcast {
                packet: packet(Value::Array(vec![Value::from("ask")])),
                request_id: Some("41d0d0aadd68ccfb".into()),
                opts: BroadcastOpts {
                    rooms: rooms(&["a", "b"]),
                    except: rooms(&["c"]),
                    flags: BroadcastFlags {
                        volatile: true,
                        compress: Some(false),
                        timeout: Some(2000),
                        ..BroadcastFlags::default()
                    },
                },
            }),
        ),
        (
            "sockets join",
            br#"{"type":4,"data":{"opts":{"rooms":["room1"],"except":[],"flags":{}},"rooms":["room2","room3"]},"uid":"68ec12a53adbef51","nsp":"/"}"#.to_vec(),
            message(ClusterBody::SocketsJoin {
                opts: BroadcastOpts {
                    rooms: rooms(&["room1"]),
                    ..BroadcastOpts::default()
                },
                rooms: rooms(&["room2", "room3"]),
            }),
        ),
        (
            "disconnect sockets",
            br#"{"type":6,"data":{"opts":{"rooms":[],"except":[],"flags":{}},"close":true},"uid":"68ec12a53adbef51","nsp":"/"}"#.to_vec(),
            message(ClusterBody::DisconnectSockets {
                opts: BroadcastOpts::default(),
                close: true,
            }),
        ),
        (
            "fetch sockets response",
            br#"{"type":8,"data":{"requestId":"r1","sockets":[{"id":"s1","handshake":{"time":"now"},"rooms":["s1","room1"],"data":{"name":"b","level":3}}]},"uid":"68ec12a53adbef51","nsp":"/"}"#.to_vec(),
            message(ClusterBody::FetchSocketsResponse {
                request_id: "r1".into(),
                sockets: vec![ClusterSocket {
                    id: "s1".into(),
                    handshake: map(vec![("time", Value::from("now"))]),
                    rooms: rooms(&["s1", "room1"]),
                    data: map(vec![("name", Value::from("b")), ("level", Value::from(3))]),
                }],
            }),
        ),
        (
            "server-side emit with ack",
            br#"{"type":9,"data":{"requestId":"e6","packet":["ping","with ack"]},"uid":"68ec12a53adbef51","nsp":"/"}"#.to_vec(),
            message(ClusterBody::ServerSideEmit {
                request_id: Some("e6".into()),
                packet: vec![Value::from("ping"), Value::from("with ack")],
            }),
        ),
        (
            "client count",
            br#"{"type":11,"data":{"requestId":"41","clientCount":1},"uid":"68ec12a53adbef51","nsp":"/"}"#.to_vec(),
            message(ClusterBody::BroadcastClientCount {
                request_id: "41".into(),
                client_count: 1,
            }),
        ),
        (
            "binary ack",
            b"\x84\xa4type\x0c\xa4data\x82\xa9requestId\xa2a4\xa6packet\xc4\x03\x01\x02\x03\xa3uid\xb068ec12a53adbef51\xa3nsp\xa1/".to_vec(),
            message(ClusterBody::BroadcastAck {
                request_id: "a4".into(),
                packet: Value::Binary(vec![1, 2, 3]),
            }),
        ),
        (
            "heartbeat",
            br#"{"type":2,"uid":"68ec12a53adbef51","nsp":"/"}"#.to_vec(),
            message(ClusterBody::Heartbeat),
        ),
        (
            "adapter close",
            br#"{"type":13,"uid":"68ec12a53adbef51","nsp":"/"}"#.to_vec(),
            message(ClusterBody::AdapterClose),
        ),
    ];
    for (name, bytes, expected) in cases {
        let decoded = ClusterMessage::decode(&bytes).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(decoded, expected, "{name}");
        assert_eq!(expected.encode(), bytes, "{name}");
    }
}

#[test]
fn what_node_tolerates_decodes() {
    let cases: Vec<(&str, &[u8], ClusterBody)> = vec![
        (
            "numeric rooms, a packet with nsp, unknown keys",
            br#"{"type":4,"data":{"opts":{"rooms":[1,2.5],"flags":{"x":1}},"rooms":[3],"extra":true},"uid":"u","nsp":"/","more":1}"#,
            ClusterBody::SocketsJoin {
                opts: BroadcastOpts {
                    rooms: rooms(&["1", "2.5"]),
                    ..BroadcastOpts::default()
                },
                rooms: rooms(&["3"]),
            },
        ),
        (
            "no opts, close absent",
            br#"{"type":6,"data":{},"uid":"u","nsp":"/"}"#,
            ClusterBody::DisconnectSockets {
                opts: BroadcastOpts::default(),
                close: false,
            },
        ),
        (
            "an ack of undefined",
            br#"{"type":12,"data":{"requestId":"r"},"uid":"u","nsp":"/"}"#,
            ClusterBody::BroadcastAck {
                request_id: "r".into(),
                packet: Value::Nil,
            },
        ),
        (
            "a float type and count",
            br#"{"type":11.0,"data":{"requestId":"r","clientCount":2.0},"uid":"u","nsp":"/"}"#,
            ClusterBody::BroadcastClientCount {
                request_id: "r".into(),
                client_count: 2,
            },
        ),
    ];
    for (name, bytes, expected) in cases {
        let decoded = ClusterMessage::decode(bytes).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(decoded.body, expected, "{name}");
    }
}

#[test]
fn malformed_messages_are_errors() {
    let cases: Vec<(&str, &[u8])> = vec![
        ("empty", b""),
        ("not JSON", b"{nope"),
        ("an array", b"[1,2]"),
        ("msgpack array", b"\x92\x01\x02"),
        ("no type", br#"{"uid":"u","nsp":"/"}"#),
        ("type 0", br#"{"type":0,"uid":"u","nsp":"/"}"#),
        ("type 14", br#"{"type":14,"uid":"u","nsp":"/"}"#),
        ("negative type", br#"{"type":-3,"uid":"u","nsp":"/"}"#),
        ("no uid", br#"{"type":2,"nsp":"/"}"#),
        ("numeric nsp", br#"{"type":2,"uid":"u","nsp":1}"#),
        (
            "broadcast without data",
            br#"{"type":3,"uid":"u","nsp":"/"}"#,
        ),
        (
            "broadcast of a CONNECT packet",
            br#"{"type":3,"data":{"packet":{"type":0,"data":[]}},"uid":"u","nsp":"/"}"#,
        ),
        (
            "packet data not an array",
            br#"{"type":3,"data":{"packet":{"type":2,"data":"x"}},"uid":"u","nsp":"/"}"#,
        ),
        (
            "rooms not an array",
            br#"{"type":4,"data":{"rooms":"r"},"uid":"u","nsp":"/"}"#,
        ),
        (
            "a room that is an object",
            br#"{"type":4,"data":{"rooms":[{}]},"uid":"u","nsp":"/"}"#,
        ),
        (
            "fetch without request id",
            br#"{"type":7,"data":{},"uid":"u","nsp":"/"}"#,
        ),
        (
            "negative client count",
            br#"{"type":11,"data":{"requestId":"r","clientCount":-1},"uid":"u","nsp":"/"}"#,
        ),
        (
            "server-side emit packet not an array",
            br#"{"type":9,"data":{"packet":"x"},"uid":"u","nsp":"/"}"#,
        ),
        ("truncated msgpack", b"\x84\xa4type\x03"),
        (
            "trailing bytes",
            b"\x83\xa4type\x02\xa3uid\xa1u\xa3nsp\xa1/\x00",
        ),
    ];
    for (name, bytes) in cases {
        assert!(
            ClusterMessage::decode(bytes).is_err(),
            "{name} decoded: {:?}",
            ClusterMessage::decode(bytes)
        );
    }
}

#[test]
fn types_number_as_node_numbers_them() {
    for code in 1..=13u64 {
        let ty = ClusterMessageType::from_code(code).expect("known type");
        assert_eq!(u64::from(ty.code()), code);
    }
    assert_eq!(ClusterMessageType::from_code(0), None);
    assert_eq!(ClusterMessageType::from_code(14), None);
    assert_eq!(
        ClusterMessageType::from_code(8),
        Some(ClusterMessageType::FetchSocketsResponse)
    );
    assert!(ClusterMessageType::BroadcastAck.is_response());
    assert!(!ClusterMessageType::FetchSockets.is_response());
}

#[test]
fn binary_in_a_type_node_writes_as_json_stays_readable() {
    // Node would never put bytes in a join's rooms; a tree that holds some
    // anyway is written as msgpack rather than lost.
    let ack = message(ClusterBody::ServerSideEmitResponse {
        request_id: "r".into(),
        packet: Value::Binary(vec![9]),
    });
    let bytes = ack.encode();
    assert_ne!(bytes[0], b'{');
    assert_eq!(ClusterMessage::decode(&bytes).unwrap(), ack);
}

#[test]
fn array_index_keys_come_first_as_json_stringify_writes_them() {
    let ack = message(ClusterBody::BroadcastAck {
        request_id: "r".into(),
        packet: map(vec![("b", Value::from(1)), ("2", Value::from(2))]),
    });
    let text = String::from_utf8(ack.encode()).unwrap();
    assert!(text.contains(r#""packet":{"2":2,"b":1}"#), "{text}");
}
