//! Socket.IO packet text codec, compatible with socket.io-parser 4.2.4.
//!
//! A Socket.IO packet travels as one Engine.IO text message
//! (`<type>[<attachments>-][<nsp>,][<id>][<json>]`) followed, for the binary
//! types, by one Engine.IO binary message per attachment. [`Packet`] is the
//! text part; [`PacketDecoder`] is the small state machine that joins the text
//! part with its attachments, the way socket.io-parser's `Decoder` does.
//!
//! The JSON data is kept as raw, already validated JSON text (`Option<String>`)
//! rather than a parsed tree: the gateway only forwards it, and the hot path
//! ([`crate::convert`]) writes it directly from msgpack.
//!
//! Binary packets keep their wire type ([`PacketType::BinaryEvent`] /
//! [`PacketType::BinaryAck`]) and attachment count after decoding, so that
//! decoding then encoding gives back the same text. (socket.io-parser turns
//! them into EVENT / ACK once reassembled; callers can use
//! [`PacketType::is_event`] / [`PacketType::is_ack`].)

use bytes::Bytes;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::ProtocolError;

/// Event names that socket.io-parser 4.x refuses in an EVENT packet because
/// they have a meaning of their own on the receiving side.
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Default bound on the number of attachments one binary packet may announce.
pub const DEFAULT_MAX_ATTACHMENTS: usize = 1024;

/// Socket.IO packet types (the first character of a packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    Connect = 0,
    Disconnect = 1,
    Event = 2,
    Ack = 3,
    /// `CONNECT_ERROR` in protocol v5; `ERROR` in protocol v4 (socket.io 2.x).
    ConnectError = 4,
    BinaryEvent = 5,
    BinaryAck = 6,
}

impl PacketType {
    /// Parses the ASCII digit of a packet type.
    pub fn from_char(c: char) -> Option<Self> {
        Some(match c {
            '0' => Self::Connect,
            '1' => Self::Disconnect,
            '2' => Self::Event,
            '3' => Self::Ack,
            '4' => Self::ConnectError,
            '5' => Self::BinaryEvent,
            '6' => Self::BinaryAck,
            _ => return None,
        })
    }

    /// The ASCII digit used on the wire.
    pub fn as_char(self) -> char {
        (b'0' + self as u8) as char
    }

    /// True for the types followed by binary attachments.
    pub fn is_binary(self) -> bool {
        matches!(self, Self::BinaryEvent | Self::BinaryAck)
    }

    /// EVENT or BINARY_EVENT.
    pub fn is_event(self) -> bool {
        matches!(self, Self::Event | Self::BinaryEvent)
    }

    /// ACK or BINARY_ACK.
    pub fn is_ack(self) -> bool {
        matches!(self, Self::Ack | Self::BinaryAck)
    }
}

/// Which generation of socket.io-parser rules to validate payloads with.
///
/// The text framing is identical; only payload validation differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtocolVersion {
    /// Socket.IO protocol v4: socket.io 2.x / socket.io-parser 3.x. CONNECT
    /// may carry any JSON object-ish value (or none; the namespace may carry a
    /// `?query`), type 4 is `ERROR` (string or object), reserved event names
    /// are allowed.
    V4,
    /// Socket.IO protocol v5: socket.io 3.x/4.x / socket.io-parser 4.x.
    #[default]
    V5,
}

/// One Socket.IO packet (the text part; attachments travel separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub kind: PacketType,
    /// Namespace, `/` by default. Encoded only when it is not `/`.
    pub nsp: String,
    /// Ack id of an EVENT expecting an ack, or of an ACK.
    pub id: Option<u64>,
    /// Number of binary attachments following a BINARY_EVENT / BINARY_ACK;
    /// always 0 for the other types.
    pub attachments: usize,
    /// Raw JSON text of the data (e.g. `["event",1,{"a":true}]`), or `None`.
    /// For binary types it holds `{"_placeholder":true,"num":N}` objects where
    /// the attachments go. Decoding guarantees it is valid JSON of the right
    /// shape; constructors trust the caller.
    pub data: Option<String>,
}

impl Packet {
    fn new(kind: PacketType, nsp: &str, id: Option<u64>, data: Option<String>) -> Self {
        Self {
            kind,
            nsp: nsp.to_owned(),
            id,
            attachments: 0,
            data,
        }
    }

    /// CONNECT sent by a client, with an optional auth object (JSON text).
    pub fn connect(nsp: &str, auth_json: Option<String>) -> Self {
        Self::new(PacketType::Connect, nsp, None, auth_json)
    }

    /// CONNECT answered by a v5 server: `0{"sid":"..."}`.
    pub fn connect_sid(nsp: &str, sid: &str) -> Self {
        let mut data = String::with_capacity(sid.len() + 10);
        data.push_str("{\"sid\":");
        write_json_string(&mut data, sid);
        data.push('}');
        Self::new(PacketType::Connect, nsp, None, Some(data))
    }

    /// DISCONNECT (no data).
    pub fn disconnect(nsp: &str) -> Self {
        Self::new(PacketType::Disconnect, nsp, None, None)
    }

    /// v5 CONNECT_ERROR: `4{"message":"..."}`.
    pub fn connect_error(nsp: &str, message: &str) -> Self {
        let mut data = String::with_capacity(message.len() + 14);
        data.push_str("{\"message\":");
        write_json_string(&mut data, message);
        data.push('}');
        Self::new(PacketType::ConnectError, nsp, None, Some(data))
    }

    /// v4-era ERROR with a bare JSON string: `4"Not authorized"`.
    pub fn error_v4(nsp: &str, message: &str) -> Self {
        let mut data = String::with_capacity(message.len() + 2);
        write_json_string(&mut data, message);
        Self::new(PacketType::ConnectError, nsp, None, Some(data))
    }

    /// EVENT; `args_json` is the whole array, event name first
    /// (`["chat","hi"]`). Chain [`Packet::with_id`] to request an ack.
    pub fn event(nsp: &str, args_json: impl Into<String>) -> Self {
        Self::new(PacketType::Event, nsp, None, Some(args_json.into()))
    }

    /// ACK answering ack `id`; `args_json` is the array of ack arguments.
    pub fn ack(nsp: &str, id: u64, args_json: impl Into<String>) -> Self {
        Self::new(PacketType::Ack, nsp, Some(id), Some(args_json.into()))
    }

    /// BINARY_EVENT whose `args_json` holds `attachments` placeholders.
    pub fn binary_event(nsp: &str, args_json: impl Into<String>, attachments: usize) -> Self {
        let mut packet = Self::new(PacketType::BinaryEvent, nsp, None, Some(args_json.into()));
        packet.attachments = attachments;
        packet
    }

    /// BINARY_ACK whose `args_json` holds `attachments` placeholders.
    pub fn binary_ack(
        nsp: &str,
        id: u64,
        args_json: impl Into<String>,
        attachments: usize,
    ) -> Self {
        let mut packet = Self::new(PacketType::BinaryAck, nsp, Some(id), Some(args_json.into()));
        packet.attachments = attachments;
        packet
    }

    /// Sets the ack id.
    pub fn with_id(mut self, id: u64) -> Self {
        self.id = Some(id);
        self
    }

    /// Encodes the text part, exactly as socket.io-parser's `encodeAsString`.
    pub fn encode(&self) -> String {
        let data_len = self.data.as_ref().map_or(0, String::len);
        let mut out = String::with_capacity(self.nsp.len() + data_len + 24);
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoded text part to `out`.
    pub fn encode_into(&self, out: &mut String) {
        out.push(self.kind.as_char());
        if self.kind.is_binary() {
            let mut digits = itoa::Buffer::new();
            out.push_str(digits.format(self.attachments));
            out.push('-');
        }
        if !self.nsp.is_empty() && self.nsp != "/" {
            out.push_str(&self.nsp);
            out.push(',');
        }
        if let Some(id) = self.id {
            let mut digits = itoa::Buffer::new();
            out.push_str(digits.format(id));
        }
        if let Some(data) = &self.data {
            out.push_str(data);
        }
    }

    /// Decodes a text packet with the protocol v5 (socket.io-parser 4.x) rules.
    pub fn decode(text: &str) -> Result<Packet, ProtocolError> {
        Self::decode_with(text, ProtocolVersion::V5)
    }

    /// Decodes a text packet, validating the payload with `version`'s rules.
    ///
    /// Deliberate strictness where socket.io-parser relies on JavaScript's
    /// loose number coercion: the type must be a digit `0`-`6` (JS reads `""`
    /// and `" "` as CONNECT), the attachment count must be decimal digits
    /// (an empty count still means 0, as in JS), and ids must fit in a u64.
    pub fn decode_with(text: &str, version: ProtocolVersion) -> Result<Packet, ProtocolError> {
        let bytes = text.as_bytes();
        let first = *bytes.first().ok_or(ProtocolError::Empty)?;
        let kind = PacketType::from_char(first as char)
            .ok_or_else(|| ProtocolError::UnknownPacketType(text.chars().next().unwrap_or('\0')))?;
        // `pos` is the index of the next unread byte; every delimiter we look
        // for is ASCII, so byte indices are also char boundaries.
        let mut pos = 1;

        let mut attachments = 0usize;
        if kind.is_binary() {
            let dash = bytes[pos..]
                .iter()
                .position(|&b| b == b'-')
                .ok_or(ProtocolError::InvalidAttachmentCount)?;
            let count = &bytes[pos..pos + dash];
            attachments = if count.is_empty() {
                0
            } else {
                parse_decimal(count).ok_or(ProtocolError::InvalidAttachmentCount)? as usize
            };
            pos += dash + 1;
        }

        let mut nsp = String::from("/");
        if bytes.get(pos) == Some(&b'/') {
            match bytes[pos..].iter().position(|&b| b == b',') {
                Some(comma) => {
                    nsp = text[pos..pos + comma].to_owned();
                    pos += comma + 1;
                }
                // no comma: the namespace runs to the end, as in JS
                None => {
                    nsp = text[pos..].to_owned();
                    pos = bytes.len();
                }
            }
        }

        let mut id = None;
        let digits = bytes[pos..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits > 0 {
            id = Some(parse_decimal(&bytes[pos..pos + digits]).ok_or(ProtocolError::InvalidAckId)?);
            pos += digits;
        }

        let mut data = None;
        if pos < bytes.len() {
            let json = &text[pos..];
            validate_payload(kind, json, version)?;
            data = Some(json.to_owned());
        }

        Ok(Packet {
            kind,
            nsp,
            id,
            attachments,
            data,
        })
    }
}

/// Parses ASCII decimal digits into a u64, `None` on overflow or non-digit.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Appends `value` as a JSON string literal with JSON.stringify's escaping.
pub fn write_json_string(out: &mut String, value: &str) {
    crate::jsfmt::write_json_string(out, value);
}

pub use crate::convert::write_placeholder;

/// The placeholder object that stands for attachment `num`:
/// `{"_placeholder":true,"num":N}`.
pub fn placeholder(num: usize) -> String {
    let mut out = String::with_capacity(32);
    write_placeholder(&mut out, num);
    out
}

/// Builds a BINARY_EVENT / BINARY_ACK by hand: every [`add`](Self::add)
/// stores an attachment and returns the placeholder text to splice into the
/// JSON arguments, numbered in the order the attachments are added (which
/// must be the depth-first order in which they appear in the JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BinaryPacketBuilder {
    attachments: Vec<Bytes>,
}

impl BinaryPacketBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `data` and returns its placeholder JSON text.
    pub fn add(&mut self, data: Bytes) -> String {
        let text = placeholder(self.attachments.len());
        self.attachments.push(data);
        text
    }

    /// Number of attachments added so far.
    pub fn len(&self) -> usize {
        self.attachments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.attachments.is_empty()
    }

    /// BINARY_EVENT with the collected attachments (EVENT when there are none,
    /// like socket.io-parser's `hasBinary` check).
    pub fn event(
        self,
        nsp: &str,
        args_json: impl Into<String>,
        id: Option<u64>,
    ) -> (Packet, Vec<Bytes>) {
        let mut packet = if self.attachments.is_empty() {
            Packet::event(nsp, args_json)
        } else {
            Packet::binary_event(nsp, args_json, self.attachments.len())
        };
        packet.id = id;
        (packet, self.attachments)
    }

    /// BINARY_ACK with the collected attachments (ACK when there are none).
    pub fn ack(self, nsp: &str, id: u64, args_json: impl Into<String>) -> (Packet, Vec<Bytes>) {
        let packet = if self.attachments.is_empty() {
            Packet::ack(nsp, id, args_json)
        } else {
            Packet::binary_ack(nsp, id, args_json, self.attachments.len())
        };
        (packet, self.attachments)
    }
}

/// A packet together with its binary attachments, as yielded by
/// [`PacketDecoder`].
pub type DecodedPacket = (Packet, Vec<Bytes>);

/// Stateful decoder for one connection: feed it every Engine.IO message in
/// order; it yields a packet once its announced attachments have arrived.
#[derive(Debug, Clone)]
pub struct PacketDecoder {
    version: ProtocolVersion,
    max_attachments: usize,
    pending: Option<(Packet, Vec<Bytes>)>,
}

impl Default for PacketDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl PacketDecoder {
    /// Protocol v5 rules, at most [`DEFAULT_MAX_ATTACHMENTS`] per packet.
    pub fn new() -> Self {
        Self {
            version: ProtocolVersion::V5,
            max_attachments: DEFAULT_MAX_ATTACHMENTS,
            pending: None,
        }
    }

    pub fn with_version(mut self, version: ProtocolVersion) -> Self {
        self.version = version;
        self
    }

    pub fn with_max_attachments(mut self, max_attachments: usize) -> Self {
        self.max_attachments = max_attachments;
        self
    }

    /// True while attachments of a binary packet are still expected.
    pub fn is_reconstructing(&self) -> bool {
        self.pending.is_some()
    }

    /// Feeds an Engine.IO text message.
    pub fn push_text(&mut self, text: &str) -> Result<Option<DecodedPacket>, ProtocolError> {
        if self.pending.is_some() {
            return Err(ProtocolError::UnexpectedText);
        }
        let packet = Packet::decode_with(text, self.version)?;
        if !packet.kind.is_binary() || packet.attachments == 0 {
            return Ok(Some((packet, Vec::new())));
        }
        if packet.attachments > self.max_attachments {
            return Err(ProtocolError::TooManyAttachments {
                announced: packet.attachments as u64,
                limit: self.max_attachments,
            });
        }
        // The count comes from the peer: never reserve more than a few slots
        // up front, the vector grows as real frames arrive.
        let buffers = Vec::with_capacity(packet.attachments.min(8));
        self.pending = Some((packet, buffers));
        Ok(None)
    }

    /// Feeds an Engine.IO binary message. On the last attachment the
    /// placeholders are checked against the attachments (like
    /// socket.io-parser's `reconstructPacket`).
    pub fn push_binary(&mut self, data: Bytes) -> Result<Option<DecodedPacket>, ProtocolError> {
        let Some((packet, buffers)) = self.pending.as_mut() else {
            return Err(ProtocolError::UnexpectedBinary);
        };
        buffers.push(data);
        if buffers.len() < packet.attachments {
            return Ok(None);
        }
        let Some((packet, buffers)) = self.pending.take() else {
            return Err(ProtocolError::UnexpectedBinary);
        };
        if let Some(data) = &packet.data {
            crate::convert::check_placeholders(data, buffers.len())?;
        }
        Ok(Some((packet, buffers)))
    }

    /// Drops a half-received binary packet (e.g. on disconnect).
    pub fn reset(&mut self) {
        self.pending = None;
    }
}

/// Checks the JSON data against socket.io-parser's `isPayloadValid`.
fn validate_payload(
    kind: PacketType,
    json: &str,
    version: ProtocolVersion,
) -> Result<(), ProtocolError> {
    if kind == PacketType::Disconnect {
        // JS: `payload === undefined`, i.e. nothing after the header.
        return Err(ProtocolError::InvalidPayload(kind));
    }
    let shape: Shape =
        serde_json::from_str(json).map_err(|e| ProtocolError::InvalidJson(e.to_string()))?;
    let valid = match (kind, version) {
        (PacketType::Connect, ProtocolVersion::V5) => shape == Shape::Object,
        // v4: `typeof payload === "object"` also admits arrays and null.
        (PacketType::Connect, ProtocolVersion::V4) => {
            matches!(shape, Shape::Object | Shape::Array(_) | Shape::Null)
        }
        (PacketType::ConnectError, ProtocolVersion::V5) => {
            matches!(shape, Shape::Object | Shape::String)
        }
        (PacketType::ConnectError, ProtocolVersion::V4) => {
            matches!(
                shape,
                Shape::Object | Shape::String | Shape::Array(_) | Shape::Null
            )
        }
        (PacketType::Event | PacketType::BinaryEvent, ProtocolVersion::V5) => {
            matches!(
                shape,
                Shape::Array(FirstElement::Number | FirstElement::EventName)
            )
        }
        (PacketType::Event | PacketType::BinaryEvent, ProtocolVersion::V4) => matches!(
            shape,
            Shape::Array(
                FirstElement::Number | FirstElement::EventName | FirstElement::ReservedName
            )
        ),
        (PacketType::Ack | PacketType::BinaryAck, _) => matches!(shape, Shape::Array(_)),
        (PacketType::Disconnect, _) => false,
    };
    if valid {
        Ok(())
    } else {
        Err(ProtocolError::InvalidPayload(kind))
    }
}

/// The top-level JSON kind, which is all `isPayloadValid` looks at.
#[derive(Debug, PartialEq, Eq)]
enum Shape {
    Object,
    Array(FirstElement),
    String,
    Null,
    Other,
}

/// What the first element of an array is (EVENT validity).
#[derive(Debug, PartialEq, Eq)]
enum FirstElement {
    None,
    Number,
    EventName,
    ReservedName,
    Other,
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ShapeVisitor;
        impl<'de> Visitor<'de> for ShapeVisitor {
            type Value = Shape;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Shape::Object)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
                let first = seq
                    .next_element::<FirstElement>()?
                    .unwrap_or(FirstElement::None);
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Shape::Array(first))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Shape, E> {
                Ok(Shape::String)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
                Ok(Shape::Null)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
        }
        deserializer.deserialize_any(ShapeVisitor)
    }
}

impl<'de> Deserialize<'de> for FirstElement {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FirstVisitor;
        impl<'de> Visitor<'de> for FirstVisitor {
            type Value = FirstElement;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FirstElement, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(FirstElement::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FirstElement, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FirstElement::Other)
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<FirstElement, E> {
                Ok(if RESERVED_EVENTS.contains(&name) {
                    FirstElement::ReservedName
                } else {
                    FirstElement::EventName
                })
            }
            fn visit_unit<E: de::Error>(self) -> Result<FirstElement, E> {
                Ok(FirstElement::Other)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<FirstElement, E> {
                Ok(FirstElement::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<FirstElement, E> {
                Ok(FirstElement::Number)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<FirstElement, E> {
                Ok(FirstElement::Number)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<FirstElement, E> {
                Ok(FirstElement::Number)
            }
        }
        deserializer.deserialize_any(FirstVisitor)
    }
}

// ---------------------------------------------------------------------------
// whole packets

/// Builds the EVENT (or BINARY_EVENT, when `data` holds binaries) that a
/// gateway sends to its sockets for a broadcast received from Redis; `data`
/// is the msgpack `[event, ...args]` array.
pub fn event_packet_from_msgpack(
    nsp: &str,
    data: &rmpv::Value,
) -> Result<(Packet, Vec<Bytes>), ProtocolError> {
    let (json, attachments) = crate::convert::msgpack_to_socketio(data)?;
    let packet = if attachments.is_empty() {
        Packet::event(nsp, json)
    } else {
        Packet::binary_event(nsp, json, attachments.len())
    };
    Ok((packet, attachments))
}

/// Builds the ACK (or BINARY_ACK) for ack `id` from msgpack ack arguments.
pub fn ack_packet_from_msgpack(
    nsp: &str,
    id: u64,
    data: &rmpv::Value,
) -> Result<(Packet, Vec<Bytes>), ProtocolError> {
    let (json, attachments) = crate::convert::msgpack_to_socketio(data)?;
    let packet = if attachments.is_empty() {
        Packet::ack(nsp, id, json)
    } else {
        Packet::binary_ack(nsp, id, json, attachments.len())
    };
    Ok((packet, attachments))
}
