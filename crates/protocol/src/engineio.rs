//! Engine.IO packet framing, protocol v4 (engine.io-parser 5.x) and v3
//! (engine.io-parser 2.x, socket.io 2.x clients).
//!
//! Engine.IO is the transport under Socket.IO: one packet per WebSocket
//! frame, or several packets per HTTP long-polling body. The two versions
//! share the text form of single packets (`<type digit><data>`) and differ in
//! three places, all handled here:
//!
//! | | v4 | v3 |
//! |---|---|---|
//! | binary WebSocket frame | raw bytes | type byte `4` then bytes |
//! | binary in a text payload | `b<base64>` | `b4<base64>` |
//! | polling payload | packets joined by `\x1e` | `<len>:<packet>` with `len` in UTF-16 code units, or the XHR2 binary form |
//!
//! Not a framing difference but easy to miss in a client: in v4 the server
//! sends `ping` and the client answers `pong`; in v3 the client sends `ping`
//! every `pingInterval` and the server answers `pong`.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::ProtocolError;

/// Record separator between packets of a v4 polling payload.
pub const V4_PAYLOAD_SEPARATOR: char = '\x1e';

/// Node's `Buffer.from(s, "base64")` tolerates missing padding; so do we.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// JS refuses v3 binary payload length prefixes longer than this many digits.
const V3_MAX_LENGTH_DIGITS: usize = 310;

/// Engine.IO protocol revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EioVersion {
    /// `EIO=3`: socket.io 2.x.
    V3,
    /// `EIO=4`: socket.io 3.x and later.
    V4,
}

/// The handshake sent by the server as the first packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenPacket {
    pub sid: String,
    #[serde(default)]
    pub upgrades: Vec<String>,
    pub ping_interval: u64,
    pub ping_timeout: u64,
    /// Sent by v4 servers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_payload: Option<u64>,
}

/// One Engine.IO packet.
///
/// `Ping`/`Pong` carry `Some("probe")` during the WebSocket upgrade; an empty
/// string is the same on the wire as `None` and decodes as `None`. Data after
/// `Close`, `Upgrade` and `Noop` is ignored on decode, as in JS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EioPacket {
    Open(OpenPacket),
    Close,
    Ping(Option<String>),
    Pong(Option<String>),
    Message(String),
    Binary(Bytes),
    Upgrade,
    Noop,
}

/// A WebSocket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    Binary(Bytes),
}

impl EioPacket {
    fn type_char(&self) -> char {
        match self {
            Self::Open(_) => '0',
            Self::Close => '1',
            Self::Ping(_) => '2',
            Self::Pong(_) => '3',
            Self::Message(_) | Self::Binary(_) => '4',
            Self::Upgrade => '5',
            Self::Noop => '6',
        }
    }

    /// Appends the text form of a non-binary packet; binary packets become
    /// `<binary_prefix><base64>` (`b` in v4, `b4` in v3).
    fn encode_text_into(&self, out: &mut String, binary_prefix: &str) {
        match self {
            Self::Binary(data) => {
                out.push_str(binary_prefix);
                STANDARD.encode_string(data, out);
            }
            Self::Open(open) => {
                out.push('0');
                // Serialising a struct of strings and integers cannot fail.
                if let Ok(json) = serde_json::to_string(open) {
                    out.push_str(&json);
                }
            }
            Self::Ping(Some(data)) | Self::Pong(Some(data)) | Self::Message(data) => {
                out.push(self.type_char());
                out.push_str(data);
            }
            _ => out.push(self.type_char()),
        }
    }

    /// v4 text form; binary packets as `b<base64>` (the polling form).
    pub fn encode_v4_text(&self) -> String {
        let mut out = String::new();
        self.encode_text_into(&mut out, "b");
        out
    }

    /// v4 WebSocket frame: binary packets as raw binary frames.
    pub fn encode_v4(&self) -> Frame {
        match self {
            Self::Binary(data) => Frame::Binary(data.clone()),
            _ => Frame::Text(self.encode_v4_text()),
        }
    }

    /// v3 text form; binary packets as `b4<base64>`.
    pub fn encode_v3_text(&self) -> String {
        let mut out = String::new();
        self.encode_text_into(&mut out, "b4");
        out
    }

    /// v3 WebSocket frame: binary packets as `0x04` followed by the bytes.
    pub fn encode_v3(&self) -> Frame {
        match self {
            Self::Binary(data) => {
                let mut buf = BytesMut::with_capacity(data.len() + 1);
                buf.put_u8(4);
                buf.extend_from_slice(data);
                Frame::Binary(buf.freeze())
            }
            _ => Frame::Text(self.encode_v3_text()),
        }
    }

    /// Encodes for a WebSocket frame in the given protocol version.
    pub fn encode(&self, version: EioVersion) -> Frame {
        match version {
            EioVersion::V3 => self.encode_v3(),
            EioVersion::V4 => self.encode_v4(),
        }
    }

    /// Decodes a v4 text packet (WebSocket text frame or one polling packet).
    pub fn decode_v4_text(text: &str) -> Result<EioPacket, ProtocolError> {
        if let Some(base64) = text.strip_prefix('b') {
            return decode_base64(base64);
        }
        decode_plain_text(text)
    }

    /// A v4 binary WebSocket frame is the message itself.
    pub fn decode_v4_binary(data: Bytes) -> EioPacket {
        Self::Binary(data)
    }

    /// Decodes a v3 text packet (`b4<base64>` for binary).
    pub fn decode_v3_text(text: &str) -> Result<EioPacket, ProtocolError> {
        if let Some(rest) = text.strip_prefix('b') {
            let mut chars = rest.chars();
            return match chars.next() {
                Some('4') => decode_base64(chars.as_str()),
                Some(c) if c.is_ascii_digit() => {
                    Err(ProtocolError::UnexpectedBinaryPacketType(c as u8 - b'0'))
                }
                Some(c) => Err(ProtocolError::UnknownEioPacketType(c)),
                None => Err(ProtocolError::Empty),
            };
        }
        decode_plain_text(text)
    }

    /// Decodes a v3 binary WebSocket frame: type byte (must be message, 4)
    /// followed by the data.
    pub fn decode_v3_binary(data: Bytes) -> Result<EioPacket, ProtocolError> {
        match data.first() {
            None => Err(ProtocolError::Empty),
            Some(4) => Ok(Self::Binary(data.slice(1..))),
            Some(&other) => Err(ProtocolError::UnexpectedBinaryPacketType(other)),
        }
    }

    /// Decodes a WebSocket frame in the given protocol version.
    pub fn decode(frame: Frame, version: EioVersion) -> Result<EioPacket, ProtocolError> {
        match (frame, version) {
            (Frame::Text(text), EioVersion::V4) => Self::decode_v4_text(&text),
            (Frame::Text(text), EioVersion::V3) => Self::decode_v3_text(&text),
            (Frame::Binary(data), EioVersion::V4) => Ok(Self::decode_v4_binary(data)),
            (Frame::Binary(data), EioVersion::V3) => Self::decode_v3_binary(data),
        }
    }
}

fn decode_base64(text: &str) -> Result<EioPacket, ProtocolError> {
    LENIENT_BASE64
        .decode(text)
        .map(|data| EioPacket::Binary(Bytes::from(data)))
        .map_err(|_| ProtocolError::InvalidBase64)
}

/// `<type digit><data>`, shared by v3 and v4.
fn decode_plain_text(text: &str) -> Result<EioPacket, ProtocolError> {
    let mut chars = text.chars();
    let kind = chars.next().ok_or(ProtocolError::Empty)?;
    let data = chars.as_str();
    let optional = || (!data.is_empty()).then(|| data.to_owned());
    Ok(match kind {
        '0' => EioPacket::Open(
            serde_json::from_str(data)
                .map_err(|e| ProtocolError::InvalidOpenPacket(e.to_string()))?,
        ),
        '1' => EioPacket::Close,
        '2' => EioPacket::Ping(optional()),
        '3' => EioPacket::Pong(optional()),
        '4' => EioPacket::Message(data.to_owned()),
        '5' => EioPacket::Upgrade,
        '6' => EioPacket::Noop,
        other => return Err(ProtocolError::UnknownEioPacketType(other)),
    })
}

/// v4 polling payload: packets joined by `\x1e`, binary as `b<base64>`.
pub fn encode_payload_v4(packets: &[EioPacket]) -> String {
    let mut out = String::new();
    for (index, packet) in packets.iter().enumerate() {
        if index > 0 {
            out.push(V4_PAYLOAD_SEPARATOR);
        }
        packet.encode_text_into(&mut out, "b");
    }
    out
}

/// Decodes a v4 polling payload. Like engine.io-parser, any bad packet fails
/// the whole payload (JS stops at the first error packet and the transport
/// closes).
pub fn decode_payload_v4(payload: &str) -> Result<Vec<EioPacket>, ProtocolError> {
    payload
        .split(V4_PAYLOAD_SEPARATOR)
        .map(EioPacket::decode_v4_text)
        .collect()
}

/// v3 text polling payload: `<len>:<packet>` per packet, `len` counted in
/// UTF-16 code units (JavaScript string length); binary as `b4<base64>`. An
/// empty list encodes as `0:`.
pub fn encode_payload_v3(packets: &[EioPacket]) -> String {
    if packets.is_empty() {
        return "0:".to_owned();
    }
    let mut out = String::new();
    let mut digits = itoa::Buffer::new();
    for packet in packets {
        let text = packet.encode_v3_text();
        out.push_str(digits.format(utf16_len(&text)));
        out.push(':');
        out.push_str(&text);
    }
    out
}

/// Decodes a v3 text polling payload. Zero-length entries (`0:`) are skipped
/// as in engine.io-parser 2.x; an empty body is an error.
pub fn decode_payload_v3(payload: &str) -> Result<Vec<EioPacket>, ProtocolError> {
    if payload.is_empty() {
        return Err(ProtocolError::Empty);
    }
    let mut packets = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let colon = rest.find(':').ok_or(ProtocolError::InvalidPayloadLength)?;
        let units = parse_length(&rest.as_bytes()[..colon])?;
        let body = &rest[colon + 1..];
        let end = utf16_prefix_len(body, units).ok_or(ProtocolError::InvalidPayloadLength)?;
        if end > 0 {
            packets.push(EioPacket::decode_v3_text(&body[..end])?);
        }
        rest = &body[end..];
    }
    Ok(packets)
}

/// v3 XHR2 binary polling payload: per packet a marker byte (0 = string,
/// 1 = binary), the decimal digits of the length as bytes 0-9, a 255
/// terminator, then the packet (UTF-8 text, or type byte 4 and the data).
pub fn encode_payload_v3_binary(packets: &[EioPacket]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut digits = itoa::Buffer::new();
    for packet in packets {
        match packet {
            EioPacket::Binary(data) => {
                out.push(1);
                out.extend(digits.format(data.len() + 1).bytes().map(|d| d - b'0'));
                out.push(255);
                out.push(4);
                out.extend_from_slice(data);
            }
            _ => {
                let text = packet.encode_v3_text();
                out.push(0);
                out.extend(digits.format(text.len()).bytes().map(|d| d - b'0'));
                out.push(255);
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
    out
}

/// Decodes a v3 XHR2 binary polling payload. Stricter than JS, which
/// silently truncates a packet whose length runs past the end.
pub fn decode_payload_v3_binary(payload: &[u8]) -> Result<Vec<EioPacket>, ProtocolError> {
    let mut packets = Vec::new();
    let mut rest = payload;
    while let Some((&marker, after_marker)) = rest.split_first() {
        let terminator = after_marker
            .iter()
            .take(V3_MAX_LENGTH_DIGITS + 1)
            .position(|&b| b == 255)
            .ok_or(ProtocolError::InvalidPayloadLength)?;
        let length_digits = &after_marker[..terminator];
        if length_digits.is_empty() || length_digits.iter().any(|&d| d > 9) {
            return Err(ProtocolError::InvalidPayloadLength);
        }
        let length = length_digits
            .iter()
            .try_fold(0usize, |acc, &d| {
                acc.checked_mul(10)?.checked_add(usize::from(d))
            })
            .ok_or(ProtocolError::InvalidPayloadLength)?;
        let body = &after_marker[terminator + 1..];
        if length > body.len() {
            return Err(ProtocolError::InvalidPayloadLength);
        }
        let (packet, remaining) = body.split_at(length);
        packets.push(if marker == 0 {
            let text = std::str::from_utf8(packet).map_err(|_| ProtocolError::InvalidUtf8)?;
            EioPacket::decode_v3_text(text)?
        } else {
            EioPacket::decode_v3_binary(Bytes::copy_from_slice(packet))?
        });
        rest = remaining;
    }
    Ok(packets)
}

/// Parses a v3 text payload length: ASCII digits only.
fn parse_length(digits: &[u8]) -> Result<usize, ProtocolError> {
    if digits.is_empty() {
        return Err(ProtocolError::InvalidPayloadLength);
    }
    digits
        .iter()
        .try_fold(0usize, |acc, &b| {
            if !b.is_ascii_digit() {
                return None;
            }
            acc.checked_mul(10)?.checked_add(usize::from(b - b'0'))
        })
        .ok_or(ProtocolError::InvalidPayloadLength)
}

/// Length of `text` in UTF-16 code units, i.e. JavaScript's `String.length`.
pub fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// Byte length of the prefix of `text` that is exactly `units` UTF-16 code
/// units long; `None` if `text` is shorter or the cut would split a
/// surrogate pair.
fn utf16_prefix_len(text: &str, units: usize) -> Option<usize> {
    let mut counted = 0;
    for (byte_index, c) in text.char_indices() {
        if counted == units {
            return Some(byte_index);
        }
        counted += c.len_utf16();
        if counted > units {
            return None;
        }
    }
    (counted == units).then_some(text.len())
}
