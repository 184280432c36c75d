//! Bytes written by the real Node serializers (tests/node/golden.json, made by
//! tests/node/golden.js) and the examples of /work/shared/wire-format.md:
//! each decodes to the structure Node meant, and what Node 8.3 writes
//! deterministically is re-encoded byte for byte. `tests/tests/fixtures.rs`
//! checks that golden.json is what the packages `tests/node` installs write.

use rmpv::Value;
use serde_json::json;
use wire::{
    BroadcastFlags, BroadcastMessage, BroadcastOpts, BroadcastPacket, FetchedSocket,
    LegacyEmitterMessage, PacketKind, Request, RequestOpts, Response,
};

fn golden() -> serde_json::Value {
    serde_json::from_str(include_str!("node/golden.json")).expect("golden.json parses")
}

fn golden_hex(name: &str) -> Vec<u8> {
    let text = golden()[name].as_str().expect("golden entry").to_owned();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn golden_json(list: &str) -> Vec<String> {
    golden()[list]
        .as_array()
        .expect("golden list")
        .iter()
        .map(|v| v.as_str().expect("string").to_owned())
        .collect()
}

/// Transcribes the annotated hex of wire-format.md: hex bytes and quoted
/// strings (written as their UTF-8 bytes).
fn annotated(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').expect("closing quote");
            out.extend_from_slice(&quoted.as_bytes()[..end]);
            rest = quoted[end + 1..].trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            out.push(u8::from_str_radix(&rest[..end], 16).expect("hex byte"));
            rest = rest[end..].trim_start();
        }
    }
    out
}

fn array(items: Vec<Value>) -> Value {
    Value::Array(items)
}

fn s(text: &str) -> Value {
    Value::from(text)
}

fn packet(kind: PacketKind, nsp: &str, data: Vec<Value>) -> BroadcastPacket {
    BroadcastPacket {
        kind,
        nsp: nsp.into(),
        data: array(data),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

// ------------------------------------------------------- wire-format.md

#[test]
fn doc_broadcast_example_decodes_and_reencodes_exactly() {
    let bytes = annotated(
        r#"
93 a6 "Ab12Cd"
   83 a4 "type" 02  a4 "data" 93 a5 "hello" a5 "world" c4 03 01 02 03  a3 "nsp" a1 "/"
   83 a5 "rooms" 91 a5 "room1"  a6 "except" 90  a5 "flags" 80
"#,
    );
    let expected = BroadcastMessage {
        uid: "Ab12Cd".into(),
        packet: packet(
            PacketKind::Event,
            "/",
            vec![s("hello"), s("world"), Value::Binary(vec![1, 2, 3])],
        ),
        opts: BroadcastOpts {
            rooms: strings(&["room1"]),
            except: vec![],
            flags: BroadcastFlags::default(),
        },
    };
    assert_eq!(BroadcastMessage::decode(&bytes), Ok(expected.clone()));
    assert_eq!(expected.encode(), bytes);
    assert_eq!(
        bytes,
        golden_hex("adapter_broadcast"),
        "the doc example is what notepack 3 writes"
    );
}

#[test]
fn doc_legacy_example_decodes_and_reencodes_exactly() {
    let bytes = annotated(
        r#"
92 83 a4 "type" 05 a4 "data" 92 a5 "hello" d8 00 03 01 02 03 a3 "nsp" a1 "/"
   82 a5 "rooms" 91 a5 "room1" a5 "flags" 81 a8 "volatile" c3
"#,
    );
    let expected = LegacyEmitterMessage {
        packet: packet(
            PacketKind::BinaryEvent,
            "/",
            vec![s("hello"), Value::Binary(vec![1, 2, 3])],
        ),
        rooms: strings(&["room1"]),
        flags: BroadcastFlags {
            volatile: true,
            ..Default::default()
        },
    };
    assert_eq!(LegacyEmitterMessage::decode(&bytes), Ok(expected.clone()));
    assert_eq!(expected.encode(), bytes);
    assert_eq!(
        bytes,
        golden_hex("legacy"),
        "the doc example is what msgpack-js 0.3.0 writes"
    );
}

// ------------------------------------------------------- broadcasts

#[test]
fn adapter_broadcast_with_flags_and_unknown_flag() {
    let decoded =
        BroadcastMessage::decode(&golden_hex("adapter_broadcast_flags")).expect("decodes");
    let object = Value::Map(vec![
        (s("a"), Value::from(1)),
        (
            s("b"),
            array(vec![
                Value::Boolean(true),
                Value::Nil,
                Value::from(-3),
                Value::F64(1.5),
                Value::from(300),
                Value::from(70000),
                Value::from(-40000),
            ]),
        ),
    ]);
    let expected = BroadcastMessage {
        uid: "Xy98Zw".into(),
        packet: packet(PacketKind::Event, "/chat", vec![s("ev"), object]),
        opts: BroadcastOpts {
            rooms: strings(&["r1", "r2"]),
            except: strings(&["sid1"]),
            flags: BroadcastFlags {
                volatile: true,
                compress: Some(false),
                timeout: Some(5000),
                expect_single_response: true,
                ..Default::default()
            },
        },
    };
    assert_eq!(decoded, expected);
    // Node's flags minus the unknown key: everything we keep is re-encoded
    // exactly as notepack wrote it, in the same order.
    let ours = expected.encode();
    let theirs = golden_hex("adapter_broadcast_flags");
    let unknown_flag = annotated(r#"ac "somethingNew" a1 "x""#);
    let mut theirs_without = theirs[..theirs.len() - unknown_flag.len()].to_vec();
    // the flags map header went from 85 (5 keys) to 84
    let header_at = theirs_without
        .iter()
        .rposition(|b| *b == 0x85)
        .expect("fixmap 5");
    theirs_without[header_at] = 0x84;
    assert_eq!(ours, theirs_without);
}

#[test]
fn undefined_map_values_are_skipped_and_bare_undefined_is_nil() {
    let bytes = golden_hex("adapter_broadcast_undefined_flag");
    let expected = BroadcastMessage {
        uid: "Xy98Zw".into(),
        packet: packet(PacketKind::Event, "/", vec![s("ev"), Value::Nil]),
        opts: BroadcastOpts::default(),
    };
    assert_eq!(BroadcastMessage::decode(&bytes), Ok(expected.clone()));
    assert_eq!(expected.encode(), bytes);
}

#[test]
fn notepack2_undefined_and_array_buffers() {
    let decoded = BroadcastMessage::decode(&golden_hex("notepack2_broadcast")).expect("decodes");
    assert_eq!(
        decoded,
        BroadcastMessage {
            uid: "Qw12Er".into(),
            packet: packet(
                PacketKind::Event,
                "/",
                vec![
                    s("ev"),
                    Value::Nil,
                    Value::Binary(vec![9, 8, 7]),
                    Value::Binary(vec![5])
                ]
            ),
            opts: BroadcastOpts {
                rooms: vec![],
                except: strings(&["s"]),
                flags: BroadcastFlags::default()
            },
        }
    );
}

#[test]
fn redis_emitter_5_key_order() {
    let decoded = BroadcastMessage::decode(&golden_hex("emitter_broadcast")).expect("decodes");
    assert_eq!(
        decoded,
        BroadcastMessage {
            uid: wire::EMITTER_UID.into(),
            packet: packet(PacketKind::Event, "/", vec![s("hello"), Value::from(1)]),
            opts: BroadcastOpts {
                rooms: strings(&["room1"]),
                except: vec![],
                flags: BroadcastFlags {
                    volatile: true,
                    ..Default::default()
                },
            },
        }
    );
}

#[test]
fn old_emitter_without_except_with_numeric_room_and_binary_event() {
    let decoded = BroadcastMessage::decode(&golden_hex("old_emitter_broadcast")).expect("decodes");
    assert_eq!(
        decoded,
        BroadcastMessage {
            uid: "emitter".into(),
            packet: packet(
                PacketKind::BinaryEvent,
                "/",
                vec![s("bin"), Value::Binary(vec![0xff])]
            ),
            opts: BroadcastOpts {
                rooms: strings(&["42", "x"]),
                except: vec![],
                flags: BroadcastFlags::default()
            },
        }
    );
}

#[test]
fn missing_nsp_means_root() {
    let bytes = annotated(r#"93 a6 "Ab12Cd" 82 a4 "type" 02 a4 "data" 91 a1 "e" 81 a5 "rooms" 90"#);
    let decoded = BroadcastMessage::decode(&bytes).expect("decodes");
    assert_eq!(decoded.packet.nsp, "/");
    assert!(decoded.opts.except.is_empty());
}

#[test]
fn legacy_msgpack_js_numbers_strings_and_undefined() {
    let decoded = LegacyEmitterMessage::decode(&golden_hex("legacy_long")).expect("decodes");
    assert_eq!(
        decoded,
        LegacyEmitterMessage {
            packet: packet(
                PacketKind::Event,
                "/chat",
                vec![
                    s("e"),
                    Value::from("x".repeat(40)),
                    Value::Nil,
                    Value::from(-1000),
                    Value::F64(3_000_000_000.0),
                    Value::F64(2.5),
                ]
            ),
            rooms: vec![],
            flags: BroadcastFlags::default(),
        }
    );
    // msgpack-js writes 3e9 as a float64, which our encoder mirrors;
    // `undefined` (c4) comes back as null (c0), the only difference.
    let mut node = golden_hex("legacy_long");
    let undefined_at = node
        .iter()
        .position(|b| *b == 0xc4)
        .expect("undefined marker");
    node[undefined_at] = 0xc0;
    assert_eq!(decoded.encode(), node);
}

// ------------------------------------------------------- requests

#[test]
fn broadcast_request_and_ack_are_byte_exact() {
    let bytes = golden_hex("request_broadcast");
    let expected = Request::Broadcast {
        uid: Some("Ab12Cd".into()),
        request_id: "Rq34St".into(),
        packet: packet(
            PacketKind::Event,
            "/",
            vec![s("ping"), Value::Binary(vec![1])],
        ),
        opts: RequestOpts {
            rooms: vec![],
            except: strings(&["sid"]),
            flags: BroadcastFlags {
                timeout: Some(1000),
                ..Default::default()
            },
        },
    };
    assert_eq!(Request::decode(&bytes), Ok(expected.clone()));
    assert_eq!(expected.encode(), bytes);

    let ack = golden_hex("response_ack");
    let expected = Response::BroadcastAck {
        request_id: "Rq34St".into(),
        packet: array(vec![s("pong"), Value::from(2)]),
    };
    assert_eq!(Response::decode(&ack), Ok(expected.clone()));
    assert_eq!(expected.encode(), ack);

    assert_eq!(
        Response::decode(&golden_hex("response_ack_undefined")),
        Ok(Response::BroadcastAck {
            request_id: "Rq34St".into(),
            packet: Value::Nil
        })
    );
}

fn opts(rooms: &[&str], except: &[&str]) -> RequestOpts {
    RequestOpts {
        rooms: strings(rooms),
        except: strings(except),
        flags: BroadcastFlags::default(),
    }
}

#[test]
fn json_requests_decode_and_reencode_exactly() {
    let uid = || Some("Ab12Cd".to_owned());
    let rid = || "Rq34St".to_owned();
    let expected = vec![
        Request::Sockets {
            uid: uid(),
            request_id: rid(),
            rooms: strings(&["r1"]),
        },
        Request::AllRooms {
            uid: uid(),
            request_id: rid(),
        },
        Request::RemoteJoin {
            uid: uid(),
            opts: opts(&["r1"], &["s1"]),
            rooms: strings(&["r2", "r3"]),
        },
        Request::RemoteLeave {
            uid: None,
            opts: opts(&[], &[]),
            rooms: strings(&["r2"]),
        },
        Request::RemoteDisconnect {
            uid: uid(),
            opts: opts(&["r1"], &[]),
            close: true,
        },
        Request::RemoteDisconnect {
            uid: None,
            opts: opts(&[], &[]),
            close: false,
        },
        Request::RemoteFetch {
            uid: uid(),
            request_id: rid(),
            opts: opts(&["r1"], &["s1"]),
        },
        Request::ServerSideEmit {
            uid: uid(),
            request_id: None,
            data: vec![json!("hello"), json!({"a": 1}), json!([1, 2])],
        },
        Request::ServerSideEmit {
            uid: uid(),
            request_id: Some(rid()),
            data: vec![json!("hello")],
        },
        Request::ServerSideEmit {
            uid: Some("emitter".into()),
            request_id: None,
            data: vec![json!("hi")],
        },
        Request::LegacyRemoteJoin {
            uid: uid(),
            request_id: rid(),
            sid: "s1".into(),
            room: "r1".into(),
        },
        Request::LegacyRemoteDisconnect {
            uid: uid(),
            request_id: rid(),
            sid: "s1".into(),
            close: true,
        },
    ];
    let texts = golden_json("json");
    assert_eq!(texts.len(), expected.len());
    for (text, request) in texts.iter().zip(expected) {
        assert_eq!(
            Request::decode(text.as_bytes()).as_ref(),
            Ok(&request),
            "{text}"
        );
        assert_eq!(String::from_utf8(request.encode()).expect("utf8"), *text);
    }
}

#[test]
fn json_responses_decode_and_reencode_exactly() {
    let rid = || "Rq34St".to_owned();
    let expected = vec![
        Response::Sockets {
            request_id: rid(),
            sockets: strings(&["s1", "s2"]),
        },
        Response::AllRooms {
            request_id: rid(),
            rooms: strings(&["r1", "s1"]),
        },
        Response::RemoteAck { request_id: rid() },
        Response::FetchedSockets {
            request_id: rid(),
            sockets: vec![FetchedSocket {
                id: "s1".into(),
                handshake: json!({"headers": {"host": "x"}, "time": "t", "address": "::1", "xdomain": false,
                    "secure": false, "issued": 1, "url": "/socket.io/", "query": {"EIO": "4"}, "auth": {}}),
                rooms: strings(&["s1", "r1"]),
                data: json!({"user": "u"}),
            }],
        },
        Response::ServerSideEmitAck {
            request_id: rid(),
            data: Some(json!({"ok": true})),
        },
        Response::ServerSideEmitAck {
            request_id: rid(),
            data: None,
        },
        Response::BroadcastClientCount {
            request_id: rid(),
            client_count: 3,
        },
    ];
    let texts = golden_json("json_responses");
    assert_eq!(texts.len(), expected.len());
    for (text, response) in texts.iter().zip(expected) {
        assert_eq!(
            Response::decode(text.as_bytes()).as_ref(),
            Ok(&response),
            "{text}"
        );
        assert_eq!(String::from_utf8(response.encode()).expect("utf8"), *text);
    }
}

#[test]
fn requests_without_opts_or_with_numeric_rooms() {
    let request = Request::decode(br#"{"uid":"u","requestId":"r","type":3,"sid":"s","room":7}"#);
    assert_eq!(
        request,
        Ok(Request::LegacyRemoteLeave {
            uid: Some("u".into()),
            request_id: "r".into(),
            sid: "s".into(),
            room: "7".into()
        })
    );
    // legacy disconnect as socket.io-redis wrote it, keys in another order
    let request = Request::decode(br#"{"sid":"s","close":true,"requestId":"r","type":4}"#);
    assert_eq!(
        request,
        Ok(Request::LegacyRemoteDisconnect {
            uid: None,
            request_id: "r".into(),
            sid: "s".into(),
            close: true
        })
    );
    let request = Request::decode(br#"{"type":0,"requestId":"r","rooms":[1,"a",2.0]}"#);
    assert_eq!(
        request,
        Ok(Request::Sockets {
            uid: None,
            request_id: "r".into(),
            rooms: strings(&["1", "a", "2"])
        })
    );
}

#[test]
fn malformed_requests_are_errors() {
    for bad in [
        &b""[..],
        b"{",
        b"{}",
        br#"{"type":42}"#,
        br#"{"type":7,"requestId":"r"}"#,
        br#"{"type":5,"requestId":"r"}"#,
        br#"{"type":6,"data":"notanarray"}"#,
        br#"{"type":2,"sid":"s","room":"r"}"#,
        &[0x80][..],
        &[0x81, 0xa4, b't', b'y', b'p', b'e', 0x00][..],
    ] {
        assert!(
            Request::decode(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    for bad in [
        &b"{}"[..],
        br#"{"type":8,"requestId":"r"}"#,
        br#"{"type":9,"requestId":"r"}"#,
        &[0x80][..],
    ] {
        assert!(
            Response::decode(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn empty_sockets_answer_counts_as_an_empty_fetch() {
    let response = Response::decode(br#"{"requestId":"r","sockets":[]}"#).expect("decodes");
    assert_eq!(response.request_id(), "r");
    assert_eq!(response.into_fetched_sockets(), Some(vec![]));
}
