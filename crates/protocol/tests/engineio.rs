//! Engine.IO framing: handshake, heartbeats, upgrade probe, binary forms and
//! the polling payload formats of both versions.

use bytes::Bytes;
use protocol::engineio::{
    decode_payload_v3, decode_payload_v3_binary, decode_payload_v4, encode_payload_v3,
    encode_payload_v3_binary, encode_payload_v4, utf16_len, EioPacket, EioVersion, Frame,
    OpenPacket,
};
use protocol::ProtocolError;

fn open(max_payload: Option<u64>) -> OpenPacket {
    OpenPacket {
        sid: "lv_VI97HAXpY6yYWAAAC".into(),
        upgrades: vec!["websocket".into()],
        ping_interval: 25000,
        ping_timeout: 20000,
        max_payload,
    }
}

#[test]
fn open_packet_matches_the_server_handshake() {
    let text = "0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}";
    let packet = EioPacket::Open(open(Some(1_000_000)));
    assert_eq!(packet.encode_v4(), Frame::Text(text.into()));
    assert_eq!(EioPacket::decode_v4_text(text).unwrap(), packet);
    // v3 servers send no maxPayload
    let v3 = "0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,\"pingTimeout\":20000}";
    assert_eq!(
        EioPacket::decode_v3_text(v3).unwrap(),
        EioPacket::Open(open(None))
    );
    assert!(matches!(
        EioPacket::decode_v4_text("0{}"),
        Err(ProtocolError::InvalidOpenPacket(_))
    ));
    assert!(matches!(
        EioPacket::decode_v4_text("0"),
        Err(ProtocolError::InvalidOpenPacket(_))
    ));
}

#[test]
fn heartbeat_and_upgrade_probe() {
    for version in [EioVersion::V3, EioVersion::V4] {
        for (packet, text) in [
            (EioPacket::Ping(None), "2"),
            (EioPacket::Pong(None), "3"),
            (EioPacket::Ping(Some("probe".into())), "2probe"),
            (EioPacket::Pong(Some("probe".into())), "3probe"),
            (EioPacket::Upgrade, "5"),
            (EioPacket::Noop, "6"),
            (EioPacket::Close, "1"),
            (EioPacket::Message("2[\"hi\"]".into()), "42[\"hi\"]"),
            (EioPacket::Message(String::new()), "4"),
        ] {
            assert_eq!(packet.encode(version), Frame::Text(text.into()));
            assert_eq!(
                EioPacket::decode(Frame::Text(text.into()), version).unwrap(),
                packet
            );
        }
    }
}

#[test]
fn binary_frames_differ_between_versions() {
    let data = Bytes::from_static(&[1, 2, 3]);
    let packet = EioPacket::Binary(data.clone());
    assert_eq!(packet.encode_v4(), Frame::Binary(data.clone()));
    assert_eq!(
        packet.encode_v3(),
        Frame::Binary(Bytes::from_static(&[4, 1, 2, 3]))
    );
    assert_eq!(EioPacket::decode_v4_binary(data.clone()), packet);
    assert_eq!(
        EioPacket::decode_v3_binary(Bytes::from_static(&[4, 1, 2, 3])).unwrap(),
        packet
    );
    assert_eq!(
        EioPacket::decode_v3_binary(Bytes::from_static(&[2, 1])),
        Err(ProtocolError::UnexpectedBinaryPacketType(2))
    );
    assert_eq!(
        EioPacket::decode_v3_binary(Bytes::new()),
        Err(ProtocolError::Empty)
    );
    // base64 text forms
    assert_eq!(packet.encode_v4_text(), "bAQID");
    assert_eq!(packet.encode_v3_text(), "b4AQID");
    assert_eq!(EioPacket::decode_v4_text("bAQID").unwrap(), packet);
    assert_eq!(
        EioPacket::decode_v4_text("bAQI=").unwrap(),
        EioPacket::Binary(Bytes::from_static(&[1, 2]))
    );
    assert_eq!(
        EioPacket::decode_v4_text("bAQI").unwrap(),
        EioPacket::Binary(Bytes::from_static(&[1, 2]))
    );
    assert_eq!(EioPacket::decode_v3_text("b4AQID").unwrap(), packet);
    assert_eq!(
        EioPacket::decode_v4_text("b!!"),
        Err(ProtocolError::InvalidBase64)
    );
    assert_eq!(
        EioPacket::decode_v3_text("b2AQID"),
        Err(ProtocolError::UnexpectedBinaryPacketType(2))
    );
}

#[test]
fn unknown_types_are_errors() {
    assert_eq!(EioPacket::decode_v4_text(""), Err(ProtocolError::Empty));
    assert_eq!(
        EioPacket::decode_v4_text("7"),
        Err(ProtocolError::UnknownEioPacketType('7'))
    );
    assert_eq!(
        EioPacket::decode_v3_text("x"),
        Err(ProtocolError::UnknownEioPacketType('x'))
    );
}

#[test]
fn v4_payload_uses_the_record_separator() {
    let packets = vec![
        EioPacket::Message("hello".into()),
        EioPacket::Binary(Bytes::from_static(&[1, 2, 3, 4])),
        EioPacket::Ping(None),
    ];
    let payload = encode_payload_v4(&packets);
    assert_eq!(payload, "4hello\u{1e}bAQIDBA==\u{1e}2");
    assert_eq!(decode_payload_v4(&payload).unwrap(), packets);
    assert_eq!(decode_payload_v4(""), Err(ProtocolError::Empty));
    assert_eq!(
        decode_payload_v4("4a\u{1e}\u{1e}4b"),
        Err(ProtocolError::Empty)
    );
}

#[test]
fn v3_payload_counts_utf16_code_units() {
    // "😀" is one char, 4 UTF-8 bytes, 2 UTF-16 code units.
    let packets = vec![
        EioPacket::Message("😀é".into()),
        EioPacket::Message("x".into()),
    ];
    assert_eq!(utf16_len("4😀é"), 4);
    let payload = encode_payload_v3(&packets);
    assert_eq!(payload, "4:4😀é2:4x");
    assert_eq!(decode_payload_v3(&payload).unwrap(), packets);
    assert_eq!(encode_payload_v3(&[]), "0:");
    assert_eq!(decode_payload_v3("0:").unwrap(), vec![]);
    assert_eq!(decode_payload_v3("1:b").unwrap_err(), ProtocolError::Empty);
    // A length that would cut the surrogate pair in half, or run past the end.
    assert_eq!(
        decode_payload_v3("2:4😀"),
        Err(ProtocolError::InvalidPayloadLength)
    );
    assert_eq!(
        decode_payload_v3("9:4x"),
        Err(ProtocolError::InvalidPayloadLength)
    );
    assert_eq!(
        decode_payload_v3("x:4"),
        Err(ProtocolError::InvalidPayloadLength)
    );
    assert_eq!(
        decode_payload_v3("2:4x3"),
        Err(ProtocolError::InvalidPayloadLength)
    );
    assert_eq!(
        decode_payload_v3("99999999999999999999999:4"),
        Err(ProtocolError::InvalidPayloadLength)
    );
    assert_eq!(decode_payload_v3(""), Err(ProtocolError::Empty));
}

#[test]
fn v3_binary_payload() {
    let packets = vec![
        EioPacket::Message("é".into()),
        EioPacket::Binary(Bytes::from_static(&[9; 10])),
    ];
    let payload = encode_payload_v3_binary(&packets);
    // string marker 0, length 3 (UTF-8 bytes of "4é"), 255; binary marker 1, length 11, 255, type 4
    let mut expected = vec![0, 3, 255, b'4', 0xc3, 0xa9, 1, 1, 1, 255, 4];
    expected.extend([9; 10]);
    assert_eq!(payload, expected);
    assert_eq!(decode_payload_v3_binary(&payload).unwrap(), packets);
    assert_eq!(decode_payload_v3_binary(&[]).unwrap(), vec![]);
    assert_eq!(
        decode_payload_v3_binary(&[0, 9, 255, b'4']),
        Err(ProtocolError::InvalidPayloadLength)
    );
    assert_eq!(
        decode_payload_v3_binary(&[0, 1]),
        Err(ProtocolError::InvalidPayloadLength)
    );
    assert_eq!(
        decode_payload_v3_binary(&[0, 10, 255, b'4']),
        Err(ProtocolError::InvalidPayloadLength)
    );
    assert_eq!(
        decode_payload_v3_binary(&[0, 255, b'4']),
        Err(ProtocolError::InvalidPayloadLength)
    );
    assert_eq!(
        decode_payload_v3_binary(&[0, 1, 255, 0xff]),
        Err(ProtocolError::InvalidUtf8)
    );
    let too_many_digits: Vec<u8> = std::iter::once(0)
        .chain(std::iter::repeat_n(1, 400))
        .collect();
    assert_eq!(
        decode_payload_v3_binary(&too_many_digits),
        Err(ProtocolError::InvalidPayloadLength)
    );
}
