//! Property tests: every message kind survives encode → decode, and every
//! decoder is total (arbitrary or mutated bytes give a value or an error,
//! never a panic), and re-encoding what a msgpack decoder accepted is stable.

use proptest::collection::vec;
use proptest::prelude::*;
use rmpv::Value;
use wire::{
    pattern_matches, BroadcastFlags, BroadcastMessage, BroadcastOpts, BroadcastPacket, Channels,
    ClusterBody, ClusterMessage, ClusterSocket, FetchedSocket, LegacyEmitterMessage, PacketKind,
    Request, RequestOpts, Response,
};

fn text() -> impl Strategy<Value = String> {
    // Mostly short ASCII (the common case), sometimes any Unicode, sometimes
    // long enough for str8/str16 headers.
    prop_oneof![
        4 => "[a-zA-Z0-9_#/-]{0,12}",
        1 => any::<String>(),
        1 => "[a-z]{30,300}",
    ]
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![3 => vec(any::<u8>(), 0..16), 1 => vec(any::<u8>(), 250..300)]
}

/// Values as notepack would carry them. Ext type 0 is excluded: notepack
/// reserves it for `undefined` and ArrayBuffers, so it is not an ext there.
fn msgpack_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Boolean),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::F64),
        (-1e6f32..1e6).prop_map(Value::F32),
        text().prop_map(Value::from),
        bytes().prop_map(Value::Binary),
        (1i8..=127, vec(any::<u8>(), 0..20)).prop_map(|(ty, data)| Value::Ext(ty, data)),
        (-128i8..=-1, vec(any::<u8>(), 0..20)).prop_map(|(ty, data)| Value::Ext(ty, data)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((text().prop_map(Value::from), inner), 0..6).prop_map(Value::Map),
        ]
    })
}

/// Values msgpack-js can write and read back unchanged (integers as int32,
/// other numbers as float64, no ext).
fn msgpack_js_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Boolean),
        any::<i32>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::F64),
        text().prop_map(Value::from),
        bytes().prop_map(Value::Binary),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((text().prop_map(Value::from), inner), 0..6).prop_map(Value::Map),
        ]
    })
}

/// JSON without floats (serde_json's default float parsing is not
/// guaranteed to round-trip the last bit, which is not what we test here).
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        text().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
            vec((text(), inner), 0..5)
                .prop_map(|entries| serde_json::Value::Object(entries.into_iter().collect())),
        ]
    })
}

fn kind() -> impl Strategy<Value = PacketKind> {
    prop_oneof![Just(PacketKind::Event), Just(PacketKind::BinaryEvent)]
}

fn packet() -> impl Strategy<Value = BroadcastPacket> {
    (kind(), text(), text(), vec(msgpack_value(), 0..5)).prop_map(|(kind, nsp, event, args)| {
        let mut data = vec![Value::from(event)];
        data.extend(args);
        BroadcastPacket {
            kind,
            nsp,
            data: Value::Array(data),
        }
    })
}

fn flags() -> impl Strategy<Value = BroadcastFlags> {
    (
        any::<bool>(),
        any::<Option<bool>>(),
        any::<bool>(),
        any::<bool>(),
        any::<Option<bool>>(),
        any::<Option<u64>>(),
        any::<bool>(),
    )
        .prop_map(
            |(volatile, compress, local, broadcast, binary, timeout, expect_single_response)| {
                BroadcastFlags {
                    volatile,
                    compress,
                    local,
                    broadcast,
                    binary,
                    timeout,
                    expect_single_response,
                }
            },
        )
}

fn rooms() -> impl Strategy<Value = Vec<String>> {
    vec(text(), 0..4)
}

fn broadcast_opts() -> impl Strategy<Value = BroadcastOpts> {
    (rooms(), rooms(), flags()).prop_map(|(rooms, except, flags)| BroadcastOpts {
        rooms,
        except,
        flags,
    })
}

fn request_opts() -> impl Strategy<Value = RequestOpts> {
    (rooms(), rooms()).prop_map(|(rooms, except)| RequestOpts {
        rooms,
        except,
        flags: BroadcastFlags::default(),
    })
}

fn broadcast_message() -> impl Strategy<Value = BroadcastMessage> {
    (text(), packet(), broadcast_opts()).prop_map(|(uid, packet, opts)| BroadcastMessage {
        uid,
        packet,
        opts,
    })
}

fn request() -> impl Strategy<Value = Request> {
    let uid = || proptest::option::of(text());
    prop_oneof![
        (uid(), text(), rooms()).prop_map(|(uid, request_id, rooms)| Request::Sockets {
            uid,
            request_id,
            rooms
        }),
        (uid(), text()).prop_map(|(uid, request_id)| Request::AllRooms { uid, request_id }),
        (uid(), request_opts(), rooms()).prop_map(|(uid, opts, rooms)| Request::RemoteJoin {
            uid,
            opts,
            rooms
        }),
        (uid(), request_opts(), rooms()).prop_map(|(uid, opts, rooms)| Request::RemoteLeave {
            uid,
            opts,
            rooms
        }),
        (uid(), request_opts(), any::<bool>())
            .prop_map(|(uid, opts, close)| Request::RemoteDisconnect { uid, opts, close }),
        (uid(), text(), text(), text()).prop_map(|(uid, request_id, sid, room)| {
            Request::LegacyRemoteJoin {
                uid,
                request_id,
                sid,
                room,
            }
        }),
        (uid(), text(), text(), text()).prop_map(|(uid, request_id, sid, room)| {
            Request::LegacyRemoteLeave {
                uid,
                request_id,
                sid,
                room,
            }
        }),
        (uid(), text(), text(), any::<bool>()).prop_map(|(uid, request_id, sid, close)| {
            Request::LegacyRemoteDisconnect {
                uid,
                request_id,
                sid,
                close,
            }
        }),
        (uid(), text(), request_opts()).prop_map(|(uid, request_id, opts)| Request::RemoteFetch {
            uid,
            request_id,
            opts
        }),
        (uid(), proptest::option::of(text()), vec(json_value(), 1..4)).prop_map(
            |(uid, request_id, data)| Request::ServerSideEmit {
                uid,
                request_id,
                data
            }
        ),
        (uid(), text(), packet(), broadcast_opts()).prop_map(|(uid, request_id, packet, opts)| {
            Request::Broadcast {
                uid,
                request_id,
                packet,
                opts,
            }
        }),
    ]
}

fn fetched_socket() -> impl Strategy<Value = FetchedSocket> {
    (text(), json_value(), rooms(), json_value()).prop_map(|(id, handshake, rooms, data)| {
        FetchedSocket {
            id,
            handshake,
            rooms,
            data,
        }
    })
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        (text(), rooms()).prop_map(|(request_id, sockets)| Response::Sockets {
            request_id,
            sockets
        }),
        (text(), rooms()).prop_map(|(request_id, rooms)| Response::AllRooms { request_id, rooms }),
        text().prop_map(|request_id| Response::RemoteAck { request_id }),
        // An empty list is indistinguishable from an empty `Sockets` answer.
        (text(), vec(fetched_socket(), 1..3)).prop_map(|(request_id, sockets)| {
            Response::FetchedSockets {
                request_id,
                sockets,
            }
        }),
        (text(), proptest::option::of(json_value()))
            .prop_map(|(request_id, data)| Response::ServerSideEmitAck { request_id, data }),
        (text(), 0u64..=(1 << 53)).prop_map(|(request_id, client_count)| {
            Response::BroadcastClientCount {
                request_id,
                client_count,
            }
        }),
        (text(), msgpack_value())
            .prop_map(|(request_id, packet)| Response::BroadcastAck { request_id, packet }),
    ]
}

fn legacy_message() -> impl Strategy<Value = LegacyEmitterMessage> {
    (
        kind(),
        text(),
        vec(msgpack_js_value(), 0..5),
        rooms(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(kind, nsp, args, rooms, volatile, broadcast)| {
            let mut data = vec![Value::from("event")];
            data.extend(args);
            LegacyEmitterMessage {
                packet: BroadcastPacket {
                    kind,
                    nsp,
                    data: Value::Array(data),
                },
                rooms,
                flags: BroadcastFlags {
                    volatile,
                    broadcast,
                    ..Default::default()
                },
            }
        })
}

/// Values a JS object holds once `JSON.parse` or notepack made it: what
/// survives either encoding unchanged (no f32, no ext, no integral or
/// non-finite doubles, which JS cannot tell from integers or null).
fn js_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Boolean),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e12f64..1e12)
            .prop_filter("integral doubles are integers in JS", |f| f.fract() != 0.0)
            .prop_map(Value::F64),
        text().prop_map(Value::from),
        bytes().prop_map(Value::Binary),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            // JS objects have unique keys, and put the keys that are array
            // indices first ("2" before "a"), as JSON.stringify then
            // writes them: no such keys here, so the order survives.
            proptest::collection::btree_map(
                text().prop_filter("an array index key", |k| {
                    k.is_empty() || !k.bytes().all(|b| b.is_ascii_digit())
                }),
                inner,
                0..6,
            )
            .prop_map(|entries| {
                Value::Map(
                    entries
                        .into_iter()
                        .map(|(k, v)| (Value::from(k), v))
                        .collect(),
                )
            }),
        ]
    })
}

fn cluster_socket() -> impl Strategy<Value = ClusterSocket> {
    (text(), js_value(), rooms(), js_value()).prop_map(|(id, handshake, rooms, data)| {
        ClusterSocket {
            id,
            handshake,
            rooms,
            data,
        }
    })
}

fn cluster_body(nsp: String) -> impl Strategy<Value = ClusterBody> {
    let id = || text();
    let opts = broadcast_opts;
    let args = || vec(js_value(), 0..4);
    prop_oneof![
        Just(ClusterBody::InitialHeartbeat),
        Just(ClusterBody::Heartbeat),
        Just(ClusterBody::AdapterClose),
        (kind(), text(), args(), proptest::option::of(id()), opts()).prop_map(
            move |(kind, event, args, request_id, opts)| {
                let mut data = vec![Value::from(event)];
                data.extend(args);
                ClusterBody::Broadcast {
                    packet: BroadcastPacket {
                        kind,
                        nsp: nsp.clone(),
                        data: Value::Array(data),
                    },
                    request_id,
                    opts,
                }
            }
        ),
        (opts(), rooms()).prop_map(|(opts, rooms)| ClusterBody::SocketsJoin { opts, rooms }),
        (opts(), rooms()).prop_map(|(opts, rooms)| ClusterBody::SocketsLeave { opts, rooms }),
        (opts(), any::<bool>())
            .prop_map(|(opts, close)| ClusterBody::DisconnectSockets { opts, close }),
        (opts(), id())
            .prop_map(|(opts, request_id)| ClusterBody::FetchSockets { opts, request_id }),
        (id(), vec(cluster_socket(), 0..3)).prop_map(|(request_id, sockets)| {
            ClusterBody::FetchSocketsResponse {
                request_id,
                sockets,
            }
        }),
        (proptest::option::of(id()), args())
            .prop_map(|(request_id, packet)| ClusterBody::ServerSideEmit { request_id, packet }),
        (id(), js_value()).prop_map(|(request_id, packet)| {
            ClusterBody::ServerSideEmitResponse { request_id, packet }
        }),
        (id(), 0u64..=(1 << 53)).prop_map(|(request_id, client_count)| {
            ClusterBody::BroadcastClientCount {
                request_id,
                client_count,
            }
        }),
        (id(), js_value())
            .prop_map(|(request_id, packet)| ClusterBody::BroadcastAck { request_id, packet }),
    ]
}

fn cluster_message() -> impl Strategy<Value = ClusterMessage> {
    (text(), text()).prop_flat_map(|(uid, nsp)| {
        cluster_body(nsp.clone()).prop_map(move |body| ClusterMessage {
            uid: uid.clone(),
            nsp: nsp.clone(),
            body,
        })
    })
}

/// Damages a valid message: overwrite, truncate or insert bytes.
fn mutate(mut bytes: Vec<u8>, edits: Vec<(usize, u8, u8)>) -> Vec<u8> {
    for (at, byte, op) in edits {
        if bytes.is_empty() {
            bytes.push(byte);
            continue;
        }
        let at = at % bytes.len();
        match op % 3 {
            0 => bytes[at] = byte,
            1 => bytes.truncate(at),
            _ => bytes.insert(at, byte),
        }
    }
    bytes
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4)
}

/// Runs every decoder on `bytes`; whatever a msgpack decoder accepts must
/// re-encode to bytes that decode to the same thing (checked on bytes, so
/// NaN payloads compare equal).
fn check_all_decoders(bytes: &[u8]) {
    if let Ok(message) = BroadcastMessage::decode(bytes) {
        let encoded = message.encode();
        let again = BroadcastMessage::decode(&encoded).expect("re-encoded broadcast decodes");
        assert_eq!(again.encode(), encoded);
        assert_eq!(wire::peek_uid(&encoded), Some(message.uid.as_str()));
    }
    let _ = wire::peek_uid(bytes);
    if let Ok(request) = Request::decode(bytes) {
        if let Request::Broadcast { .. } = request {
            let encoded = request.encode();
            let again = Request::decode(&encoded).expect("re-encoded request decodes");
            assert_eq!(again.encode(), encoded);
        }
    }
    if let Ok(response) = Response::decode(bytes) {
        if let Response::BroadcastAck { .. } = response {
            let encoded = response.encode();
            let again = Response::decode(&encoded).expect("re-encoded response decodes");
            assert_eq!(again.encode(), encoded);
        }
    }
    let _ = LegacyEmitterMessage::decode(bytes);
    if let Ok(message) = ClusterMessage::decode(bytes) {
        let encoded = message.encode();
        let again = ClusterMessage::decode(&encoded).expect("re-encoded cluster message decodes");
        assert_eq!(again.encode(), encoded);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn broadcast_round_trips(message in broadcast_message()) {
        let encoded = message.encode();
        prop_assert_eq!(wire::peek_uid(&encoded), Some(message.uid.as_str()));
        prop_assert_eq!(BroadcastMessage::decode(&encoded), Ok(message));
    }

    #[test]
    fn request_round_trips(request in request()) {
        prop_assert_eq!(Request::decode(&request.encode()), Ok(request));
    }

    #[test]
    fn response_round_trips(response in response()) {
        prop_assert_eq!(Response::decode(&response.encode()), Ok(response));
    }

    #[test]
    fn legacy_round_trips(message in legacy_message()) {
        prop_assert_eq!(LegacyEmitterMessage::decode(&message.encode()), Ok(message));
    }

    #[test]
    fn cluster_messages_round_trip(message in cluster_message()) {
        prop_assert_eq!(ClusterMessage::decode(&message.encode()), Ok(message));
    }

    /// Whatever the tree holds (f32, ext, integral doubles), its encoding
    /// decodes, and re-encodes to the same bytes.
    #[test]
    fn cluster_encoding_is_stable(request_id in text(), packet in msgpack_value()) {
        let message = ClusterMessage {
            uid: "u".into(),
            nsp: "/".into(),
            body: ClusterBody::BroadcastAck { request_id, packet },
        };
        let encoded = message.encode();
        let again = ClusterMessage::decode(&encoded).expect("an encoded message decodes");
        prop_assert_eq!(again.encode(), encoded);
    }

    #[test]
    fn decoders_are_total_on_damaged_cluster_messages(message in cluster_message(), edits in edits()) {
        check_all_decoders(&mutate(message.encode(), edits));
    }

    #[test]
    fn decoders_are_total_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..512)) {
        check_all_decoders(&bytes);
    }

    #[test]
    fn decoders_are_total_on_arbitrary_json(text in "\\{[\"a-zA-Z0-9:,\\[\\]{}. -]{0,80}") {
        check_all_decoders(text.as_bytes());
    }

    #[test]
    fn decoders_are_total_on_damaged_broadcasts(message in broadcast_message(), edits in edits()) {
        check_all_decoders(&mutate(message.encode(), edits));
    }

    #[test]
    fn decoders_are_total_on_damaged_requests(request in request(), edits in edits()) {
        check_all_decoders(&mutate(request.encode(), edits));
    }

    #[test]
    fn decoders_are_total_on_damaged_responses(response in response(), edits in edits()) {
        check_all_decoders(&mutate(response.encode(), edits));
    }

    #[test]
    fn decoders_are_total_on_damaged_legacy_messages(message in legacy_message(), edits in edits()) {
        check_all_decoders(&mutate(message.encode(), edits));
    }

    /// The broadcast pattern of a namespace matches its base and room
    /// channels and nothing of another namespace, glob characters in the
    /// names included (namespaces never contain '#').
    #[test]
    fn broadcast_pattern_matches_only_its_namespace(
        prefix in "[a-z.*?\\[\\]\\\\#-]{0,8}",
        nsp in "/[a-z*?\\[\\]\\\\^-]{0,6}",
        other in "/[a-z*?\\[\\]\\\\^-]{0,6}",
        room in "[a-z*?#\\[\\]]{0,6}",
    ) {
        let channels = Channels::new(&prefix, &nsp);
        let pattern = channels.broadcast_pattern();
        prop_assert!(pattern_matches(&pattern, channels.broadcast()));
        prop_assert!(pattern_matches(&pattern, &channels.broadcast_room(&room)));
        prop_assert!(!pattern_matches(&pattern, channels.request()));
        if other != nsp {
            let others = Channels::new(&prefix, &other);
            prop_assert!(!pattern_matches(&pattern, others.broadcast()));
            prop_assert!(!pattern_matches(&pattern, &others.broadcast_room(&room)));
        }
    }
}
