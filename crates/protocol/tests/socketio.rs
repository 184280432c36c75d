//! Socket.IO packet codec: examples from the protocol documentation and the
//! binary reassembly state machine.

use bytes::Bytes;
use protocol::socketio::{
    placeholder, BinaryPacketBuilder, Packet, PacketDecoder, PacketType, ProtocolVersion,
    DEFAULT_MAX_ATTACHMENTS,
};
use protocol::ProtocolError;

#[test]
fn documented_examples_round_trip() {
    // From the socket.io-protocol v5 README.
    let examples = [
        ("0", Packet::connect("/", None)),
        ("0/admin,", Packet::connect("/admin", None)),
        (
            "0{\"token\":\"123\"}",
            Packet::connect("/", Some("{\"token\":\"123\"}".into())),
        ),
        (
            "0{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}",
            Packet::connect_sid("/", "oSO0OpakMV_3jnilAAAA"),
        ),
        ("1/admin,", Packet::disconnect("/admin")),
        ("2[\"hello\",1]", Packet::event("/", "[\"hello\",1]")),
        (
            "2/admin,456[\"project:delete\",123]",
            Packet::event("/admin", "[\"project:delete\",123]").with_id(456),
        ),
        ("3/admin,456[]", Packet::ack("/admin", 456, "[]")),
        (
            "4{\"message\":\"Not authorized\"}",
            Packet::connect_error("/", "Not authorized"),
        ),
        (
            "51-[\"hello\",{\"_placeholder\":true,\"num\":0}]",
            Packet::binary_event("/", "[\"hello\",{\"_placeholder\":true,\"num\":0}]", 1),
        ),
        (
            "61-/admin,456[{\"_placeholder\":true,\"num\":0}]",
            Packet::binary_ack("/admin", 456, "[{\"_placeholder\":true,\"num\":0}]", 1),
        ),
    ];
    for (text, packet) in examples {
        assert_eq!(packet.encode(), text);
        assert_eq!(Packet::decode(text).unwrap(), packet, "{text}");
    }
}

#[test]
fn v4_era_packets() {
    // socket.io 2.x: CONNECT with a query in the namespace, ERROR as a string.
    let connect = Packet::decode_with("0/admin?token=abc,", ProtocolVersion::V4).unwrap();
    assert_eq!(connect.nsp, "/admin?token=abc");
    assert_eq!(
        Packet::error_v4("/", "Not authorized").encode(),
        "4\"Not authorized\""
    );
    assert!(Packet::decode_with("4\"Not authorized\"", ProtocolVersion::V4).is_ok());
    // v4 accepts reserved event names, v5 does not.
    assert!(Packet::decode_with("2[\"connect\"]", ProtocolVersion::V4).is_ok());
    assert_eq!(
        Packet::decode("2[\"connect\"]"),
        Err(ProtocolError::InvalidPayload(PacketType::Event))
    );
}

#[test]
fn invalid_packets_are_rejected() {
    let cases: &[(&str, ProtocolError)] = &[
        ("", ProtocolError::Empty),
        ("7", ProtocolError::UnknownPacketType('7')),
        ("é", ProtocolError::UnknownPacketType('é')),
        ("5x-[\"a\"]", ProtocolError::InvalidAttachmentCount),
        ("51[\"a\"]", ProtocolError::InvalidAttachmentCount),
        ("299999999999999999999[\"a\"]", ProtocolError::InvalidAckId),
        ("1[]", ProtocolError::InvalidPayload(PacketType::Disconnect)),
        ("0[]", ProtocolError::InvalidPayload(PacketType::Connect)),
        ("2{}", ProtocolError::InvalidPayload(PacketType::Event)),
        ("2[]", ProtocolError::InvalidPayload(PacketType::Event)),
        ("2[null]", ProtocolError::InvalidPayload(PacketType::Event)),
        ("3{}", ProtocolError::InvalidPayload(PacketType::Ack)),
        (
            "4[]",
            ProtocolError::InvalidPayload(PacketType::ConnectError),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(&Packet::decode(text).unwrap_err(), expected, "{text:?}");
    }
    assert!(matches!(
        Packet::decode("2[\"a\""),
        Err(ProtocolError::InvalidJson(_))
    ));
}

#[test]
fn namespace_without_comma_runs_to_the_end_like_js() {
    let packet = Packet::decode("2/chat[\"a\"]").unwrap();
    assert_eq!(packet.nsp, "/chat[\"a\"]");
    assert_eq!(packet.data, None);
}

#[test]
fn decoder_reassembles_binary_packets() {
    let mut decoder = PacketDecoder::new();
    let text = "52-/nsp,7[\"upload\",{\"_placeholder\":true,\"num\":0},{\"x\":{\"_placeholder\":true,\"num\":1}}]";
    assert_eq!(decoder.push_text(text).unwrap(), None);
    assert!(decoder.is_reconstructing());
    assert_eq!(
        decoder.push_binary(Bytes::from_static(b"one")).unwrap(),
        None
    );
    let (packet, attachments) = decoder
        .push_binary(Bytes::from_static(b"two"))
        .unwrap()
        .unwrap();
    assert_eq!(packet.kind, PacketType::BinaryEvent);
    assert_eq!(packet.nsp, "/nsp");
    assert_eq!(packet.id, Some(7));
    assert_eq!(
        attachments,
        vec![Bytes::from_static(b"one"), Bytes::from_static(b"two")]
    );
    assert!(!decoder.is_reconstructing());
    // and the next packet decodes normally
    let (next, none) = decoder.push_text("2[\"a\"]").unwrap().unwrap();
    assert_eq!(next, Packet::event("/", "[\"a\"]"));
    assert!(none.is_empty());
}

#[test]
fn decoder_enforces_the_frame_sequence() {
    let mut decoder = PacketDecoder::new();
    assert_eq!(
        decoder.push_binary(Bytes::new()),
        Err(ProtocolError::UnexpectedBinary)
    );
    decoder
        .push_text("51-[\"a\",{\"_placeholder\":true,\"num\":0}]")
        .unwrap();
    assert_eq!(
        decoder.push_text("2[\"a\"]"),
        Err(ProtocolError::UnexpectedText)
    );
    decoder.reset();
    assert!(decoder.push_text("2[\"a\"]").unwrap().is_some());

    // zero attachments: emitted right away, like socket.io-parser
    let (packet, attachments) = decoder.push_text("50-[\"a\"]").unwrap().unwrap();
    assert_eq!(packet.attachments, 0);
    assert!(attachments.is_empty());

    // a placeholder pointing past the attachments fails on the last frame
    decoder
        .push_text("51-[\"a\",{\"_placeholder\":true,\"num\":1}]")
        .unwrap();
    assert_eq!(
        decoder.push_binary(Bytes::from_static(b"x")),
        Err(ProtocolError::InvalidPlaceholder {
            num: Some(1),
            available: 1
        })
    );
    assert!(!decoder.is_reconstructing());

    let announced = DEFAULT_MAX_ATTACHMENTS as u64 + 1;
    assert_eq!(
        decoder.push_text(&format!("5{announced}-[\"a\"]")),
        Err(ProtocolError::TooManyAttachments {
            announced,
            limit: DEFAULT_MAX_ATTACHMENTS
        })
    );
    let mut small = PacketDecoder::new().with_max_attachments(1);
    assert!(small.push_text("52-[\"a\"]").is_err());
}

#[test]
fn builder_numbers_placeholders_in_insertion_order() {
    let mut builder = BinaryPacketBuilder::new();
    let first = builder.add(Bytes::from_static(b"a"));
    let second = builder.add(Bytes::from_static(b"b"));
    assert_eq!(first, placeholder(0));
    assert_eq!(second, "{\"_placeholder\":true,\"num\":1}");
    let args = format!("[\"files\",{first},[{second}]]");
    let (packet, attachments) = builder.event("/", args.clone(), Some(3));
    assert_eq!(packet.encode(), format!("52-3{args}"));
    assert_eq!(attachments.len(), 2);

    let (plain, none) = BinaryPacketBuilder::new().ack("/x", 9, "[1]");
    assert_eq!(plain.encode(), "3/x,9[1]");
    assert!(none.is_empty());
}

#[test]
fn constructors_escape_strings() {
    assert_eq!(
        Packet::connect_error("/", "bad \"token\"\n").encode(),
        "4{\"message\":\"bad \\\"token\\\"\\n\"}"
    );
    let decoded = Packet::decode(&Packet::connect_sid("/a", "x\"y").encode()).unwrap();
    assert_eq!(decoded.data.as_deref(), Some("{\"sid\":\"x\\\"y\"}"));
}
