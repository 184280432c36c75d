//! The 2014 `socket.io-emitter` 0.2.0 message, published on
//! `socket.io#emitter` for every namespace: `[packet, {rooms, flags}]`.
//!
//! It has no uid and is serialised with msgpack-js 0.3.0, a pre-standard
//! dialect (`c4` = undefined, `d8`/`d9` = buffers with a 2/4-byte length,
//! strings only as fixraw/raw16/raw32). Old deployments still run that
//! emitter, so a node keeps accepting it. The namespace travels in the packet.

use rmpv::Value;
use serde::Serialize;

use crate::broadcast::{read_flags, read_packet, BroadcastFlags, BroadcastPacket};
use crate::msgpack::{Dialect, Reader, Token};
use crate::DecodeError;

/// A message of the 2014 emitter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LegacyEmitterMessage {
    /// The packet (type 5 when the arguments hold binary, else 2).
    pub packet: BroadcastPacket,
    /// Target rooms; empty means the whole namespace.
    pub rooms: Vec<String>,
    /// `volatile` and `broadcast` are the flags that emitter could set.
    pub flags: BroadcastFlags,
}

impl LegacyEmitterMessage {
    /// Decodes the msgpack-js bytes of `socket.io-emitter` 0.2.0.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(buf, Dialect::MsgpackJs);
        let len = reader.read_array_len("legacy emitter message")?;
        if len < 2 {
            return Err(DecodeError::UnexpectedType {
                context: "legacy emitter message",
                expected: "an array of two items",
            });
        }
        let packet = read_packet(&mut reader, 1)?;
        let (rooms, flags) = read_legacy_opts(&mut reader)?;
        for _ in 2..len {
            reader.skip_value(1)?;
        }
        reader.finish()?;
        Ok(LegacyEmitterMessage {
            packet,
            rooms,
            flags,
        })
    }

    /// Encodes exactly as msgpack-js 0.3.0 would (used to produce test
    /// input; nodes never send this message).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        array_len(&mut out, 2);
        map_len(&mut out, 3);
        raw(&mut out, "type");
        number(&mut out, i64::from(self.packet.kind.code()));
        raw(&mut out, "data");
        value(&mut out, &self.packet.data);
        raw(&mut out, "nsp");
        raw(&mut out, &self.packet.nsp);
        map_len(&mut out, 2);
        raw(&mut out, "rooms");
        array_len(&mut out, self.rooms.len());
        for room in &self.rooms {
            raw(&mut out, room);
        }
        raw(&mut out, "flags");
        let flags = [
            ("volatile", self.flags.volatile),
            ("broadcast", self.flags.broadcast),
        ];
        map_len(&mut out, flags.iter().filter(|(_, set)| *set).count());
        for (name, _) in flags.iter().filter(|(_, set)| *set) {
            raw(&mut out, name);
            out.push(0xc3);
        }
        out
    }
}

fn read_legacy_opts(reader: &mut Reader<'_>) -> Result<(Vec<String>, BroadcastFlags), DecodeError> {
    let len = match reader.next_token()? {
        Token::Map(len) => len,
        _ => {
            return Err(DecodeError::UnexpectedType {
                context: "opts",
                expected: "a map",
            })
        }
    };
    let mut rooms = Vec::new();
    let mut flags = BroadcastFlags::default();
    for _ in 0..len {
        let Some(key) = reader.read_key(2)? else {
            reader.skip_value(2)?;
            continue;
        };
        match key {
            b"rooms" => rooms = reader.read_rooms("opts.rooms")?,
            b"flags" => flags = read_flags(reader, 2)?,
            _ => reader.skip_value(2)?,
        }
    }
    Ok((rooms, flags))
}

// msgpack-js 0.3.0's encoder. It predates the str8/bin types, so rmp cannot
// produce it; these few writers mirror its `encode` function branch by branch.

fn header(out: &mut Vec<u8>, len: usize, fix: u8, fix_max: usize, marker16: u8, marker32: u8) {
    if len < fix_max {
        // `len < fix_max <= 32` so the cast is exact.
        out.push(fix | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(marker16);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(marker32);
        out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    }
}

fn array_len(out: &mut Vec<u8>, len: usize) {
    header(out, len, 0x90, 0x10, 0xdc, 0xdd);
}

fn map_len(out: &mut Vec<u8>, len: usize) {
    header(out, len, 0x80, 0x10, 0xde, 0xdf);
}

fn raw(out: &mut Vec<u8>, s: &str) {
    raw_bytes(out, s.as_bytes());
}

fn raw_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    header(out, bytes.len(), 0xa0, 0x20, 0xda, 0xdb);
    out.extend_from_slice(bytes);
}

fn buffer(out: &mut Vec<u8>, bytes: &[u8]) {
    if let Ok(len) = u16::try_from(bytes.len()) {
        out.push(0xd8);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(0xd9);
        out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
    }
    out.extend_from_slice(bytes);
}

/// msgpack-js writes a number as an integer only when `value << 0 === value`
/// (it fits an int32), else as a float64.
fn number(out: &mut Vec<u8>, n: i64) {
    let Ok(n) = i32::try_from(n) else {
        float(out, n as f64);
        return;
    };
    match n {
        0..=0x7f => out.push(n as u8),
        0x80..=0xff => out.extend_from_slice(&[0xcc, n as u8]),
        0x100..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000.. => {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        -0x20..=-1 => out.push(n as i8 as u8),
        -0x80..=-0x21 => out.extend_from_slice(&[0xd0, n as i8 as u8]),
        -0x8000..=-0x81 => {
            out.push(0xd1);
            out.extend_from_slice(&(n as i16).to_be_bytes());
        }
        _ => {
            out.push(0xd2);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

fn float(out: &mut Vec<u8>, f: f64) {
    out.push(0xcb);
    out.extend_from_slice(&f.to_be_bytes());
}

fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Nil => out.push(0xc0),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(n) => match n.as_i64() {
            Some(n) => number(out, n),
            None => float(out, n.as_f64().unwrap_or_default()),
        },
        Value::F32(f) => float(out, f64::from(*f)),
        Value::F64(f) => float(out, *f),
        Value::String(s) => raw_bytes(out, s.as_bytes()),
        // msgpack-js has no ext type; the bytes are the closest it can carry.
        Value::Binary(bytes) | Value::Ext(_, bytes) => buffer(out, bytes),
        Value::Array(items) => {
            array_len(out, items.len());
            for item in items {
                value(out, item);
            }
        }
        Value::Map(entries) => {
            map_len(out, entries.len());
            for (key, item) in entries {
                value(out, key);
                value(out, item);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broadcast::PacketKind;

    #[test]
    fn round_trip_with_every_value_kind() {
        let message = LegacyEmitterMessage {
            packet: BroadcastPacket {
                kind: PacketKind::BinaryEvent,
                nsp: "/chat".into(),
                data: Value::Array(vec![
                    Value::from("event"),
                    Value::Binary(vec![9; 70_000]),
                    Value::from("x".repeat(40)),
                    Value::from("y".repeat(70_000)),
                    Value::from(-5),
                    Value::from(-100),
                    Value::from(-1000),
                    Value::from(-100_000),
                    Value::from(100_000),
                    Value::from(1.5),
                    Value::Nil,
                    Value::Boolean(false),
                    Value::Map(vec![(Value::from("k"), Value::Array(vec![]))]),
                ]),
            },
            rooms: vec!["a".into(), "b".into()],
            flags: BroadcastFlags {
                volatile: true,
                broadcast: true,
                ..Default::default()
            },
        };
        assert_eq!(LegacyEmitterMessage::decode(&message.encode()), Ok(message));
    }

    #[test]
    fn large_integers_become_floats_like_msgpack_js() {
        let mut out = Vec::new();
        number(&mut out, 1 << 40);
        assert_eq!(out[0], 0xcb);
    }
}
