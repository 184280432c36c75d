//! The broadcast message `[uid, packet, opts]` published on `prefix#nsp#` and
//! `prefix#nsp#room#`.
//!
//! This is the hot path of the cluster: every broadcast is encoded once by its
//! sender and decoded once by every other node. Encoding writes straight into
//! a single preallocated buffer; decoding walks the bytes once, borrowing map
//! keys and materialising only the fields it keeps.

use rmpv::Value;
use serde::Serialize;

use crate::msgpack::{encoded_len_hint, Dialect, Reader, Token, Writer};
use crate::DecodeError;

/// The Socket.IO packet types a broadcast may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum PacketKind {
    /// EVENT (2): what Socket.IO 3+ sends, binary or not.
    Event,
    /// BINARY_EVENT (5): sent by old emitters when the arguments hold binary.
    BinaryEvent,
}

impl PacketKind {
    /// The numeric Socket.IO packet type.
    pub fn code(self) -> u8 {
        match self {
            PacketKind::Event => 2,
            PacketKind::BinaryEvent => 5,
        }
    }

    /// The kind for a numeric packet type, if a broadcast may carry it.
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            2 => Some(PacketKind::Event),
            5 => Some(PacketKind::BinaryEvent),
            _ => None,
        }
    }
}

/// The Socket.IO packet of a broadcast: `{type, data, nsp}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BroadcastPacket {
    /// EVENT or BINARY_EVENT.
    pub kind: PacketKind,
    /// Namespace, with its leading slash; a missing `nsp` decodes as `/`.
    pub nsp: String,
    /// `[event, arg1, ...]`. Bytes anywhere inside are `Value::Binary`
    /// (msgpack bin, notepack 2 ArrayBuffers included); `undefined` is `Nil`.
    pub data: Value,
}

/// The `flags` of a broadcast. Unknown keys are ignored when decoding; only
/// set flags are written when encoding, as Node does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BroadcastFlags {
    /// Drop the packet for clients whose transport is not writable.
    pub volatile: bool,
    /// Per-message compression; `None` when unspecified.
    pub compress: Option<bool>,
    /// Deliver on the receiving node only (never set on published messages).
    pub local: bool,
    /// Set by some Socket.IO versions on `socket.broadcast`.
    pub broadcast: bool,
    /// Socket.IO 2 hint that the payload holds (or not) binary.
    pub binary: Option<bool>,
    /// Acknowledgement timeout in milliseconds.
    pub timeout: Option<u64>,
    /// Set by `socket.timeout(..).emitWithAck` style single-socket acks.
    pub expect_single_response: bool,
}

/// The `opts` of a broadcast: which sockets receive it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BroadcastOpts {
    /// Target rooms (empty = every socket of the namespace). Numeric rooms
    /// decode as their decimal string.
    pub rooms: Vec<String>,
    /// Excluded rooms (a socket id is a room); absent decodes as empty.
    pub except: Vec<String>,
    /// Delivery flags.
    pub flags: BroadcastFlags,
}

/// A broadcast between nodes: `[uid, packet, opts]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BroadcastMessage {
    /// The sender's node uid, or `"emitter"`.
    pub uid: String,
    /// The packet to deliver.
    pub packet: BroadcastPacket,
    /// Its targets.
    pub opts: BroadcastOpts,
}

impl BroadcastMessage {
    /// Encodes as standard msgpack, byte for byte what the Node adapter 8.3
    /// writes for the same message.
    pub fn encode(&self) -> Vec<u8> {
        let capacity =
            64 + self.uid.len() + packet_len_hint(&self.packet) + opts_len_hint(&self.opts);
        let mut writer = Writer::with_capacity(capacity);
        writer.array_len(3);
        writer.str(&self.uid);
        write_packet(&mut writer, &self.packet);
        write_opts(&mut writer, &self.opts, true);
        writer.into_vec()
    }

    /// Encodes as `@socket.io/redis-emitter` 5.x writes the same message: its
    /// options object is built as `{rooms, flags, except}`, so emitters stay
    /// byte for byte identical to the Node one (decoders ignore key order).
    pub fn encode_as_emitter(&self) -> Vec<u8> {
        let capacity =
            64 + self.uid.len() + packet_len_hint(&self.packet) + opts_len_hint(&self.opts);
        let mut writer = Writer::with_capacity(capacity);
        writer.array_len(3);
        writer.str(&self.uid);
        write_packet(&mut writer, &self.packet);
        writer.map_len(3);
        writer.str("rooms");
        write_rooms(&mut writer, &self.opts.rooms);
        writer.str("flags");
        write_flags(&mut writer, &self.opts.flags);
        writer.str("except");
        write_rooms(&mut writer, &self.opts.except);
        writer.into_vec()
    }

    /// Decodes a message written by any Node adapter or emitter version
    /// (notepack.io 2 or 3), or by [`BroadcastMessage::encode`].
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(buf, Dialect::Notepack);
        let len = reader.read_array_len("broadcast message")?;
        if len < 3 {
            return Err(DecodeError::UnexpectedType {
                context: "broadcast message",
                expected: "an array of three items",
            });
        }
        let uid = reader.read_string("uid")?;
        let packet = read_packet(&mut reader, 1)?;
        let opts = read_opts(&mut reader, 1)?;
        // Node destructures `[uid, packet, opts]` and ignores anything after.
        for _ in 3..len {
            reader.skip_value(1)?;
        }
        reader.finish()?;
        Ok(BroadcastMessage { uid, packet, opts })
    }
}

/// The uid of an encoded broadcast, read without decoding the rest, so that a
/// node can drop its own echoes cheaply. `None` if the message does not start
/// like a broadcast.
pub fn peek_uid(buf: &[u8]) -> Option<&str> {
    let mut reader = Reader::new(buf, Dialect::Notepack);
    match reader.next_token().ok()? {
        Token::Array(len) if len >= 3 => {}
        _ => return None,
    }
    match reader.next_token().ok()? {
        Token::Str(bytes) => std::str::from_utf8(bytes).ok(),
        _ => None,
    }
}

pub(crate) fn packet_len_hint(packet: &BroadcastPacket) -> usize {
    24 + packet.nsp.len() + encoded_len_hint(&packet.data)
}

pub(crate) fn opts_len_hint(opts: &BroadcastOpts) -> usize {
    let rooms: usize = opts
        .rooms
        .iter()
        .chain(&opts.except)
        .map(|r| r.len() + 5)
        .sum();
    96 + rooms
}

/// `{type, data, nsp}` in the order Socket.IO builds the object.
pub(crate) fn write_packet(writer: &mut Writer, packet: &BroadcastPacket) {
    writer.map_len(3);
    writer.str("type");
    writer.uint(u64::from(packet.kind.code()));
    writer.str("data");
    writer.value(&packet.data);
    writer.str("nsp");
    writer.str(&packet.nsp);
}

/// `{rooms, except, flags}` (the adapter's key order); `with_flags` false
/// writes the `{rooms, except}` of a request.
pub(crate) fn write_opts(writer: &mut Writer, opts: &BroadcastOpts, with_flags: bool) {
    writer.map_len(if with_flags { 3 } else { 2 });
    writer.str("rooms");
    write_rooms(writer, &opts.rooms);
    writer.str("except");
    write_rooms(writer, &opts.except);
    if with_flags {
        writer.str("flags");
        write_flags(writer, &opts.flags);
    }
}

fn write_rooms(writer: &mut Writer, rooms: &[String]) {
    writer.array_len(rooms.len());
    for room in rooms {
        writer.str(room);
    }
}

/// Only the flags that are set: Node objects never carry `false`/`undefined`
/// for unset flags (notepack drops undefined-valued keys).
pub(crate) fn write_flags(writer: &mut Writer, flags: &BroadcastFlags) {
    let count = usize::from(flags.volatile)
        + usize::from(flags.compress.is_some())
        + usize::from(flags.local)
        + usize::from(flags.broadcast)
        + usize::from(flags.binary.is_some())
        + usize::from(flags.timeout.is_some())
        + usize::from(flags.expect_single_response);
    writer.map_len(count);
    if flags.volatile {
        writer.str("volatile");
        writer.bool(true);
    }
    if let Some(compress) = flags.compress {
        writer.str("compress");
        writer.bool(compress);
    }
    if flags.local {
        writer.str("local");
        writer.bool(true);
    }
    if flags.broadcast {
        writer.str("broadcast");
        writer.bool(true);
    }
    if let Some(binary) = flags.binary {
        writer.str("binary");
        writer.bool(binary);
    }
    if let Some(timeout) = flags.timeout {
        writer.str("timeout");
        writer.uint(timeout);
    }
    if flags.expect_single_response {
        writer.str("expectSingleResponse");
        writer.bool(true);
    }
}

/// Reads a packet map; keys in any order, unknown keys skipped.
pub(crate) fn read_packet(
    reader: &mut Reader<'_>,
    depth: usize,
) -> Result<BroadcastPacket, DecodeError> {
    let len = match reader.next_token()? {
        Token::Map(len) => len,
        _ => {
            return Err(DecodeError::UnexpectedType {
                context: "packet",
                expected: "a map",
            })
        }
    };
    let mut kind = None;
    let mut nsp = None;
    let mut data = None;
    for _ in 0..len {
        let Some(key) = reader.read_key(depth + 1)? else {
            reader.skip_value(depth + 1)?;
            continue;
        };
        match key {
            b"type" => {
                let code = reader.read_i64("packet.type")?;
                kind = Some(
                    PacketKind::from_code(code).ok_or(DecodeError::UnsupportedPacketType(code))?,
                );
            }
            b"nsp" => nsp = reader.read_opt_string("packet.nsp")?,
            b"data" => {
                let value = reader.read_value(depth + 1)?;
                if !value.is_array() {
                    return Err(DecodeError::UnexpectedType {
                        context: "packet.data",
                        expected: "an array",
                    });
                }
                data = Some(value);
            }
            _ => reader.skip_value(depth + 1)?,
        }
    }
    Ok(BroadcastPacket {
        kind: kind.ok_or(DecodeError::MissingField("packet.type"))?,
        nsp: nsp.unwrap_or_else(|| "/".to_owned()),
        data: data.ok_or(DecodeError::MissingField("packet.data"))?,
    })
}

/// Reads an opts map `{rooms, except, flags}`; every key optional.
pub(crate) fn read_opts(
    reader: &mut Reader<'_>,
    depth: usize,
) -> Result<BroadcastOpts, DecodeError> {
    let len = match reader.next_token()? {
        Token::Map(len) => len,
        _ => {
            return Err(DecodeError::UnexpectedType {
                context: "opts",
                expected: "a map",
            })
        }
    };
    let mut opts = BroadcastOpts::default();
    for _ in 0..len {
        let Some(key) = reader.read_key(depth + 1)? else {
            reader.skip_value(depth + 1)?;
            continue;
        };
        match key {
            b"rooms" => opts.rooms = reader.read_rooms("opts.rooms")?,
            b"except" => opts.except = reader.read_rooms("opts.except")?,
            b"flags" => opts.flags = read_flags(reader, depth + 1)?,
            _ => reader.skip_value(depth + 1)?,
        }
    }
    Ok(opts)
}

/// Reads a flags map (nil = no flags). Boolean flags follow Javascript
/// truthiness because Node only ever tests them with `if`.
pub(crate) fn read_flags(
    reader: &mut Reader<'_>,
    depth: usize,
) -> Result<BroadcastFlags, DecodeError> {
    let len = match reader.next_token()? {
        Token::Map(len) => len,
        Token::Nil | Token::Undefined => return Ok(BroadcastFlags::default()),
        _ => {
            return Err(DecodeError::UnexpectedType {
                context: "opts.flags",
                expected: "a map",
            })
        }
    };
    let mut flags = BroadcastFlags::default();
    for _ in 0..len {
        let Some(key) = reader.read_key(depth + 1)? else {
            reader.skip_value(depth + 1)?;
            continue;
        };
        let token = reader.next_token()?;
        let truthy = token.is_truthy();
        let is_nil = matches!(token, Token::Nil | Token::Undefined);
        match key {
            b"volatile" => flags.volatile = truthy,
            b"compress" => flags.compress = (!is_nil).then_some(truthy),
            b"local" => flags.local = truthy,
            b"broadcast" => flags.broadcast = truthy,
            b"binary" => flags.binary = (!is_nil).then_some(truthy),
            b"expectSingleResponse" => flags.expect_single_response = truthy,
            b"timeout" => flags.timeout = timeout_from(&token),
            _ => {}
        }
        reader.skip_from(token, depth + 1)?;
    }
    Ok(flags)
}

/// A timeout in milliseconds from a Javascript number; non-numbers and
/// negative values mean "no timeout" (Node's `setTimeout` treats them as 0 or
/// ignores them, and a remote node has no use for them).
fn timeout_from(token: &Token<'_>) -> Option<u64> {
    match *token {
        Token::Uint(n) => Some(n),
        Token::Int(n) => u64::try_from(n).ok(),
        Token::F64(f) if f >= 0.0 && f.is_finite() => Some(f as u64),
        Token::F32(f) if f >= 0.0 && f.is_finite() => Some(f as u64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BroadcastMessage {
        BroadcastMessage {
            uid: "Ab12Cd".into(),
            packet: BroadcastPacket {
                kind: PacketKind::Event,
                nsp: "/".into(),
                data: Value::Array(vec![
                    Value::from("hello"),
                    Value::from("world"),
                    Value::Binary(vec![1, 2, 3]),
                ]),
            },
            opts: BroadcastOpts {
                rooms: vec!["room1".into()],
                except: vec![],
                flags: BroadcastFlags::default(),
            },
        }
    }

    #[test]
    fn round_trip() {
        let message = sample();
        assert_eq!(BroadcastMessage::decode(&message.encode()), Ok(message));
    }

    #[test]
    fn peek_uid_reads_only_the_uid() {
        let bytes = sample().encode();
        assert_eq!(peek_uid(&bytes), Some("Ab12Cd"));
        assert_eq!(peek_uid(&bytes[..4]), None);
        assert_eq!(peek_uid(b"{}"), None);
        assert_eq!(peek_uid(&[]), None);
    }

    #[test]
    fn every_flag_round_trips() {
        let mut message = sample();
        message.opts.flags = BroadcastFlags {
            volatile: true,
            compress: Some(false),
            local: true,
            broadcast: true,
            binary: Some(true),
            timeout: Some(5000),
            expect_single_response: true,
        };
        assert_eq!(BroadcastMessage::decode(&message.encode()), Ok(message));
    }

    #[test]
    fn packet_type_must_be_event_or_binary_event() {
        let mut bytes = sample().encode();
        // `a4 "type" 02` follows `93 a6 "Ab12Cd" 83`
        let type_at = 1 + 7 + 1 + 5;
        assert_eq!(bytes[type_at], 0x02);
        bytes[type_at] = 0x03;
        assert_eq!(
            BroadcastMessage::decode(&bytes),
            Err(DecodeError::UnsupportedPacketType(3))
        );
        bytes[type_at] = 0x05;
        assert_eq!(
            BroadcastMessage::decode(&bytes).map(|m| m.packet.kind),
            Ok(PacketKind::BinaryEvent)
        );
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = sample().encode();
        bytes.push(0xc0);
        assert_eq!(
            BroadcastMessage::decode(&bytes),
            Err(DecodeError::TrailingBytes(1))
        );
    }
}
