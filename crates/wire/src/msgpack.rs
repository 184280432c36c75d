//! Tolerant msgpack reading and infallible msgpack writing.
//!
//! Node peers write three slightly different msgpack dialects: notepack.io 3
//! (standard), notepack.io 2 (`d4 00 00` for `undefined`, ext type 0 for an
//! `ArrayBuffer`) and msgpack-js 0.3 (the 2014 emitter: `c4` is `undefined`,
//! `d8`/`d9` are buffers, no str8). rmpv reads only the standard one and
//! cannot tell `d4 00 xx` (undefined) from `c7 01 00 xx` (a one-byte
//! ArrayBuffer), so [`Reader`] is a small pull parser over a byte slice that
//! classifies markers with [`rmp::Marker`] and hands out borrowed tokens. It
//! never allocates more than the remaining input can fill and bounds the
//! nesting depth, so any byte string is safe to feed it.
//!
//! [`Writer`] wraps rmp's `ByteBuf`, whose error type is `Infallible`, so
//! encoding needs neither `unwrap` nor error plumbing.

use std::convert::Infallible;

use rmp::encode::{ByteBuf, ValueWriteError};
use rmp::Marker;
use rmpv::Value;

use crate::DecodeError;

/// Deepest nesting of arrays and maps accepted in a message. Socket.IO
/// payloads are JSON-like documents; this is far beyond real ones and keeps
/// recursion (including the recursive drop of a `Value`) shallow.
pub(crate) const MAX_DEPTH: usize = 256;

/// Which Node serializer wrote the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// notepack.io 2.x and 3.x (standard msgpack plus two ext-0 quirks).
    Notepack,
    /// msgpack-js 0.3.0 (pre-2013 "raw" strings, custom buffer and undefined markers).
    MsgpackJs,
}

/// One msgpack item; containers only announce their length.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Token<'a> {
    /// `nil` (JavaScript `null`).
    Nil,
    /// One of the dialects' encodings of `undefined`: read as nil, except
    /// that a map entry holding it is dropped, as `JSON.stringify` (and so
    /// the socket a Node server writes to) drops it.
    Undefined,
    Bool(bool),
    Uint(u64),
    Int(i64),
    F32(f32),
    F64(f64),
    /// String bytes, not yet checked for UTF-8.
    Str(&'a [u8]),
    Bin(&'a [u8]),
    Array(u32),
    Map(u32),
    Ext(i8, &'a [u8]),
}

impl Token<'_> {
    /// Javascript truthiness, for flags that Node tests with `if (flags.x)`.
    /// Containers count as truthy; the caller must still skip their content.
    pub(crate) fn is_truthy(&self) -> bool {
        match *self {
            Token::Nil | Token::Undefined => false,
            Token::Bool(b) => b,
            Token::Uint(n) => n != 0,
            Token::Int(n) => n != 0,
            Token::F32(f) => f != 0.0 && !f.is_nan(),
            Token::F64(f) => f != 0.0 && !f.is_nan(),
            Token::Str(s) => !s.is_empty(),
            Token::Bin(_) | Token::Array(_) | Token::Map(_) | Token::Ext(..) => true,
        }
    }

    /// The token as an integer, accepting integral floats (Javascript has a
    /// single number type, so `2.0` and `2` are the same value).
    pub(crate) fn as_i64(&self) -> Option<i64> {
        match *self {
            Token::Uint(n) => i64::try_from(n).ok(),
            Token::Int(n) => Some(n),
            Token::F32(f) => integral_f64(f64::from(f)),
            Token::F64(f) => integral_f64(f),
            _ => None,
        }
    }
}

fn integral_f64(f: f64) -> Option<i64> {
    // The range check keeps the cast exact; beyond 2^53 floats are integral
    // anyway but no message field legitimately holds such numbers.
    if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 {
        Some(f as i64)
    } else {
        None
    }
}

/// Converts string bytes the way Node's `buffer.toString("utf8")` does:
/// invalid sequences become U+FFFD rather than errors.
pub(crate) fn lossy_string(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A pull parser over one message.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    dialect: Dialect,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], dialect: Dialect) -> Self {
        Reader {
            buf,
            pos: 0,
            dialect,
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Errors unless the whole input has been consumed.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    /// A capacity for a container of `len` items that the remaining input
    /// can actually back (every item takes at least one byte), so a forged
    /// length prefix cannot make us allocate gigabytes.
    pub(crate) fn capacity_for(&self, len: u32) -> usize {
        (len as usize).min(self.remaining())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::UnexpectedEof);
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take_array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.take_array()?))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take_array()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.take_array()?))
    }

    fn len8(&mut self) -> Result<usize, DecodeError> {
        Ok(usize::from(self.u8()?))
    }

    fn len16(&mut self) -> Result<usize, DecodeError> {
        Ok(usize::from(self.u16()?))
    }

    fn len32(&mut self) -> Result<usize, DecodeError> {
        // u32 always fits usize on the 32- and 64-bit targets we build for;
        // saturating keeps a hypothetical 16-bit target safe (take() fails).
        Ok(usize::try_from(self.u32()?).unwrap_or(usize::MAX))
    }

    /// Reads the next item's header (and the bytes of a string, binary or ext).
    pub(crate) fn next_token(&mut self) -> Result<Token<'a>, DecodeError> {
        let byte = self.u8()?;
        if self.dialect == Dialect::MsgpackJs {
            match byte {
                // msgpack-js: `undefined`
                0xc4 => return Ok(Token::Undefined),
                // msgpack-js: buffer 16 / buffer 32
                0xd8 => {
                    let len = self.len16()?;
                    return Ok(Token::Bin(self.take(len)?));
                }
                0xd9 => {
                    let len = self.len32()?;
                    return Ok(Token::Bin(self.take(len)?));
                }
                // Reserved in msgpack-js (later standardised as bin/ext).
                0xc5..=0xc9 | 0xd4..=0xd7 => return Err(DecodeError::InvalidMarker(byte)),
                _ => {}
            }
        }
        let token = match Marker::from_u8(byte) {
            Marker::FixPos(n) => Token::Uint(u64::from(n)),
            Marker::FixNeg(n) => Token::Int(i64::from(n)),
            Marker::Null => Token::Nil,
            Marker::True => Token::Bool(true),
            Marker::False => Token::Bool(false),
            Marker::U8 => Token::Uint(u64::from(self.u8()?)),
            Marker::U16 => Token::Uint(u64::from(self.u16()?)),
            Marker::U32 => Token::Uint(u64::from(self.u32()?)),
            Marker::U64 => Token::Uint(self.u64()?),
            Marker::I8 => Token::Int(i64::from(i8::from_be_bytes(self.take_array()?))),
            Marker::I16 => Token::Int(i64::from(i16::from_be_bytes(self.take_array()?))),
            Marker::I32 => Token::Int(i64::from(i32::from_be_bytes(self.take_array()?))),
            Marker::I64 => Token::Int(i64::from_be_bytes(self.take_array()?)),
            Marker::F32 => Token::F32(f32::from_be_bytes(self.take_array()?)),
            Marker::F64 => Token::F64(f64::from_be_bytes(self.take_array()?)),
            Marker::FixStr(n) => Token::Str(self.take(usize::from(n))?),
            Marker::Str8 => {
                let len = self.len8()?;
                Token::Str(self.take(len)?)
            }
            Marker::Str16 => {
                let len = self.len16()?;
                Token::Str(self.take(len)?)
            }
            Marker::Str32 => {
                let len = self.len32()?;
                Token::Str(self.take(len)?)
            }
            Marker::Bin8 => {
                let len = self.len8()?;
                Token::Bin(self.take(len)?)
            }
            Marker::Bin16 => {
                let len = self.len16()?;
                Token::Bin(self.take(len)?)
            }
            Marker::Bin32 => {
                let len = self.len32()?;
                Token::Bin(self.take(len)?)
            }
            Marker::FixArray(n) => Token::Array(u32::from(n)),
            Marker::Array16 => Token::Array(u32::from(self.u16()?)),
            Marker::Array32 => Token::Array(self.u32()?),
            Marker::FixMap(n) => Token::Map(u32::from(n)),
            Marker::Map16 => Token::Map(u32::from(self.u16()?)),
            Marker::Map32 => Token::Map(self.u32()?),
            Marker::FixExt1 => self.fixext(1)?,
            Marker::FixExt2 => self.fixext(2)?,
            Marker::FixExt4 => self.fixext(4)?,
            Marker::FixExt8 => self.fixext(8)?,
            Marker::FixExt16 => self.fixext(16)?,
            Marker::Ext8 => {
                let len = self.len8()?;
                self.ext(len)?
            }
            Marker::Ext16 => {
                let len = self.len16()?;
                self.ext(len)?
            }
            Marker::Ext32 => {
                let len = self.len32()?;
                self.ext(len)?
            }
            Marker::Reserved => return Err(DecodeError::InvalidMarker(byte)),
        };
        Ok(token)
    }

    fn ext_type(&mut self) -> Result<i8, DecodeError> {
        Ok(i8::from_be_bytes(self.take_array()?))
    }

    fn fixext(&mut self, len: usize) -> Result<Token<'a>, DecodeError> {
        let ty = self.ext_type()?;
        let data = self.take(len)?;
        // notepack 2 writes `undefined` as fixext1 type 0 (`d4 00 00`).
        if ty == 0 && len == 1 {
            return Ok(Token::Undefined);
        }
        Ok(Token::Ext(ty, data))
    }

    fn ext(&mut self, len: usize) -> Result<Token<'a>, DecodeError> {
        let ty = self.ext_type()?;
        let data = self.take(len)?;
        // notepack 2 writes an ArrayBuffer as ext 8/16/32 of type 0.
        if ty == 0 {
            return Ok(Token::Bin(data));
        }
        Ok(Token::Ext(ty, data))
    }

    /// Reads one complete value (any dialect quirk normalised).
    pub(crate) fn read_value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let token = self.next_token()?;
        self.value_from(token, depth)
    }

    /// Completes a value whose first token has already been read.
    pub(crate) fn value_from(
        &mut self,
        token: Token<'a>,
        depth: usize,
    ) -> Result<Value, DecodeError> {
        Ok(match token {
            Token::Nil | Token::Undefined => Value::Nil,
            Token::Bool(b) => Value::Boolean(b),
            Token::Uint(n) => Value::from(n),
            Token::Int(n) => Value::from(n),
            Token::F32(f) => Value::F32(f),
            Token::F64(f) => Value::F64(f),
            Token::Str(bytes) => Value::String(lossy_string(bytes).into()),
            Token::Bin(bytes) => Value::Binary(bytes.to_vec()),
            Token::Ext(ty, bytes) => Value::Ext(ty, bytes.to_vec()),
            Token::Array(len) => {
                check_depth(depth)?;
                let mut items = Vec::with_capacity(self.capacity_for(len));
                for _ in 0..len {
                    items.push(self.read_value(depth + 1)?);
                }
                Value::Array(items)
            }
            Token::Map(len) => {
                check_depth(depth)?;
                // A map entry takes at least two bytes.
                let mut entries = Vec::with_capacity(self.capacity_for(len) / 2);
                for _ in 0..len {
                    let key = self.read_value(depth + 1)?;
                    let value = match self.next_token()? {
                        Token::Undefined => continue,
                        token => self.value_from(token, depth + 1)?,
                    };
                    entries.push((key, value));
                }
                Value::Map(entries)
            }
        })
    }

    /// Skips one complete value without building it.
    pub(crate) fn skip_value(&mut self, depth: usize) -> Result<(), DecodeError> {
        let token = self.next_token()?;
        self.skip_from(token, depth)
    }

    /// Skips the rest of a value whose first token has already been read.
    pub(crate) fn skip_from(&mut self, token: Token<'a>, depth: usize) -> Result<(), DecodeError> {
        let items = match token {
            Token::Array(len) => u64::from(len),
            Token::Map(len) => u64::from(len) * 2,
            _ => return Ok(()),
        };
        check_depth(depth)?;
        for _ in 0..items {
            self.skip_value(depth + 1)?;
        }
        Ok(())
    }

    /// Reads an array header.
    pub(crate) fn read_array_len(&mut self, context: &'static str) -> Result<u32, DecodeError> {
        match self.next_token()? {
            Token::Array(len) => Ok(len),
            _ => Err(DecodeError::UnexpectedType {
                context,
                expected: "an array",
            }),
        }
    }

    /// Reads a string, borrowed from the input.
    pub(crate) fn read_str_bytes(
        &mut self,
        context: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        match self.next_token()? {
            Token::Str(bytes) => Ok(bytes),
            _ => Err(DecodeError::UnexpectedType {
                context,
                expected: "a string",
            }),
        }
    }

    /// Reads a string value.
    pub(crate) fn read_string(&mut self, context: &'static str) -> Result<String, DecodeError> {
        self.read_str_bytes(context).map(lossy_string)
    }

    /// Reads a string or nil (`undefined`).
    pub(crate) fn read_opt_string(
        &mut self,
        context: &'static str,
    ) -> Result<Option<String>, DecodeError> {
        match self.next_token()? {
            Token::Str(bytes) => Ok(Some(lossy_string(bytes))),
            Token::Nil | Token::Undefined => Ok(None),
            _ => Err(DecodeError::UnexpectedType {
                context,
                expected: "a string",
            }),
        }
    }

    /// Reads an integer (integral floats accepted).
    pub(crate) fn read_i64(&mut self, context: &'static str) -> Result<i64, DecodeError> {
        self.next_token()?
            .as_i64()
            .ok_or(DecodeError::UnexpectedType {
                context,
                expected: "an integer",
            })
    }

    /// Reads a map key; `None` for a non-string key, which the caller skips
    /// together with its value (no field of ours has such a key).
    pub(crate) fn read_key(&mut self, depth: usize) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.next_token()? {
            Token::Str(bytes) => Ok(Some(bytes)),
            other => {
                self.skip_from(other, depth)?;
                Ok(None)
            }
        }
    }

    /// Reads a room list: an array of strings or numbers (Node allows numeric
    /// room names); nil means empty, like `new Set(undefined)`.
    pub(crate) fn read_rooms(&mut self, context: &'static str) -> Result<Vec<String>, DecodeError> {
        let len = match self.next_token()? {
            Token::Array(len) => len,
            Token::Nil | Token::Undefined => return Ok(Vec::new()),
            _ => {
                return Err(DecodeError::UnexpectedType {
                    context,
                    expected: "an array of rooms",
                })
            }
        };
        let mut rooms = Vec::with_capacity(self.capacity_for(len));
        for _ in 0..len {
            let room = match self.next_token()? {
                Token::Str(bytes) => lossy_string(bytes),
                Token::Uint(n) => n.to_string(),
                Token::Int(n) => n.to_string(),
                Token::F32(f) => number_to_room(f64::from(f)),
                Token::F64(f) => number_to_room(f),
                _ => {
                    return Err(DecodeError::UnexpectedType {
                        context,
                        expected: "a room name",
                    })
                }
            };
            rooms.push(room);
        }
        Ok(rooms)
    }
}

fn check_depth(depth: usize) -> Result<(), DecodeError> {
    if depth >= MAX_DEPTH {
        Err(DecodeError::TooDeep(MAX_DEPTH))
    } else {
        Ok(())
    }
}

/// A numeric room name as Javascript's `String(n)` prints it (for the values
/// that can name a room: integers print without a fraction).
pub(crate) fn number_to_room(f: f64) -> String {
    match integral_f64(f) {
        Some(n) => n.to_string(),
        None => f.to_string(),
    }
}

/// Discards rmp's write error for an infallible sink: the `Infallible`
/// payload makes the error variants impossible, which `match e {}` proves.
fn infallible<T>(result: Result<T, ValueWriteError<Infallible>>) {
    match result {
        Ok(_) => {}
        Err(ValueWriteError::InvalidMarkerWrite(e) | ValueWriteError::InvalidDataWrite(e)) => {
            match e {}
        }
    }
}

fn infallible_plain(result: Result<(), Infallible>) {
    match result {
        Ok(()) => {}
        Err(e) => match e {},
    }
}

/// Lengths in msgpack are 32-bit. Redis caps a message at 512 MB, so a
/// longer item can never be published; saturating keeps this total.
fn len32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Standard msgpack, as notepack.io 3 writes it (smallest integer formats,
/// str for strings, bin for bytes).
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: ByteBuf,
}

impl Writer {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Writer {
            buf: ByteBuf::with_capacity(capacity),
        }
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        self.buf.into_vec()
    }

    pub(crate) fn array_len(&mut self, len: usize) {
        infallible(rmp::encode::write_array_len(&mut self.buf, len32(len)));
    }

    pub(crate) fn map_len(&mut self, len: usize) {
        infallible(rmp::encode::write_map_len(&mut self.buf, len32(len)));
    }

    pub(crate) fn str(&mut self, s: &str) {
        self.str_bytes(s.as_bytes());
    }

    fn str_bytes(&mut self, bytes: &[u8]) {
        infallible(rmp::encode::write_str_len(
            &mut self.buf,
            len32(bytes.len()),
        ));
        self.buf.as_mut_vec().extend_from_slice(bytes);
    }

    pub(crate) fn bin(&mut self, bytes: &[u8]) {
        infallible(rmp::encode::write_bin(&mut self.buf, bytes));
    }

    pub(crate) fn uint(&mut self, n: u64) {
        infallible(rmp::encode::write_uint(&mut self.buf, n));
    }

    pub(crate) fn sint(&mut self, n: i64) {
        infallible(rmp::encode::write_sint(&mut self.buf, n));
    }

    pub(crate) fn bool(&mut self, b: bool) {
        infallible_plain(rmp::encode::write_bool(&mut self.buf, b));
    }

    pub(crate) fn nil(&mut self) {
        infallible_plain(rmp::encode::write_nil(&mut self.buf));
    }

    /// Writes a payload value. Integers use the smallest format (like
    /// notepack); nil map values are kept because they are `null` in the
    /// application's data, not absent fields.
    pub(crate) fn value(&mut self, value: &Value) {
        match value {
            Value::Nil => self.nil(),
            Value::Boolean(b) => self.bool(*b),
            Value::Integer(n) => match n.as_u64() {
                Some(u) => self.uint(u),
                None => self.sint(n.as_i64().unwrap_or_default()),
            },
            Value::F32(f) => infallible(rmp::encode::write_f32(&mut self.buf, *f)),
            Value::F64(f) => infallible(rmp::encode::write_f64(&mut self.buf, *f)),
            Value::String(s) => self.str_bytes(s.as_bytes()),
            Value::Binary(bytes) => self.bin(bytes),
            Value::Array(items) => {
                self.array_len(items.len());
                for item in items {
                    self.value(item);
                }
            }
            Value::Map(entries) => {
                self.map_len(entries.len());
                for (key, item) in entries {
                    self.value(key);
                    self.value(item);
                }
            }
            Value::Ext(ty, bytes) => {
                infallible(rmp::encode::write_ext_meta(
                    &mut self.buf,
                    len32(bytes.len()),
                    *ty,
                ));
                self.buf.as_mut_vec().extend_from_slice(bytes);
            }
        }
    }
}

/// An upper bound of the encoded size of `value`, to size the output buffer
/// once instead of growing it while encoding.
pub(crate) fn encoded_len_hint(value: &Value) -> usize {
    match value {
        Value::Nil | Value::Boolean(_) => 1,
        Value::Integer(_) | Value::F64(_) => 9,
        Value::F32(_) => 5,
        Value::String(s) => 5 + s.as_bytes().len(),
        Value::Binary(bytes) => 5 + bytes.len(),
        Value::Ext(_, bytes) => 6 + bytes.len(),
        Value::Array(items) => 5 + items.iter().map(encoded_len_hint).sum::<usize>(),
        Value::Map(entries) => {
            5 + entries
                .iter()
                .map(|(k, v)| encoded_len_hint(k) + encoded_len_hint(v))
                .sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8], dialect: Dialect) -> Result<Value, DecodeError> {
        let mut reader = Reader::new(bytes, dialect);
        let value = reader.read_value(0)?;
        reader.finish()?;
        Ok(value)
    }

    #[test]
    fn notepack_quirks() {
        // notepack 2 undefined
        assert_eq!(read(&[0xd4, 0x00, 0x00], Dialect::Notepack), Ok(Value::Nil));
        // notepack 3 undefined
        assert_eq!(read(&[0xc0], Dialect::Notepack), Ok(Value::Nil));
        // notepack 2 ArrayBuffer, ext 8 type 0
        assert_eq!(
            read(&[0xc7, 0x02, 0x00, 0xab, 0xcd], Dialect::Notepack),
            Ok(Value::Binary(vec![0xab, 0xcd]))
        );
        // a one-byte ArrayBuffer is still a buffer, not undefined
        assert_eq!(
            read(&[0xc7, 0x01, 0x00, 0x07], Dialect::Notepack),
            Ok(Value::Binary(vec![7]))
        );
        // other ext types survive as ext (timestamps, notepack 2 dates)
        assert_eq!(
            read(&[0xd6, 0xff, 0, 0, 0, 1], Dialect::Notepack),
            Ok(Value::Ext(-1, vec![0, 0, 0, 1]))
        );
    }

    #[test]
    fn msgpack_js_dialect() {
        assert_eq!(read(&[0xc4], Dialect::MsgpackJs), Ok(Value::Nil));
        assert_eq!(
            read(&[0xd8, 0x00, 0x02, 1, 2], Dialect::MsgpackJs),
            Ok(Value::Binary(vec![1, 2]))
        );
        assert_eq!(
            read(&[0xd9, 0, 0, 0, 1, 9], Dialect::MsgpackJs),
            Ok(Value::Binary(vec![9]))
        );
        assert_eq!(
            read(&[0xda, 0x00, 0x01, b'x'], Dialect::MsgpackJs),
            Ok(Value::from("x"))
        );
        assert_eq!(
            read(&[0xc5, 0, 0], Dialect::MsgpackJs),
            Err(DecodeError::InvalidMarker(0xc5))
        );
        // c4 is bin 8 in notepack
        assert_eq!(
            read(&[0xc4, 0x01, 0x05], Dialect::Notepack),
            Ok(Value::Binary(vec![5]))
        );
    }

    #[test]
    fn forged_lengths_do_not_allocate() {
        // array32 of 4 billion items with nothing behind it
        assert_eq!(
            read(&[0xdd, 0xff, 0xff, 0xff, 0xff], Dialect::Notepack),
            Err(DecodeError::UnexpectedEof)
        );
        assert_eq!(
            read(&[0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0], Dialect::Notepack),
            Err(DecodeError::UnexpectedEof)
        );
        assert_eq!(
            read(&[0xc6, 0xff, 0xff, 0xff, 0xff], Dialect::Notepack),
            Err(DecodeError::UnexpectedEof)
        );
    }

    #[test]
    fn depth_is_bounded() {
        let deep = vec![0x91u8; 100_000];
        assert_eq!(
            read(&deep, Dialect::Notepack),
            Err(DecodeError::TooDeep(MAX_DEPTH))
        );
        let mut reader = Reader::new(&deep, Dialect::Notepack);
        assert_eq!(reader.skip_value(0), Err(DecodeError::TooDeep(MAX_DEPTH)));
    }

    #[test]
    fn invalid_utf8_is_replaced_like_node() {
        assert_eq!(
            read(&[0xa2, 0xff, b'a'], Dialect::Notepack),
            Ok(Value::from("\u{fffd}a"))
        );
    }

    #[test]
    fn writer_uses_smallest_integer_formats() {
        let cases: &[(Value, &[u8])] = &[
            (Value::from(5), &[0x05]),
            (Value::from(200), &[0xcc, 200]),
            (Value::from(-1), &[0xff]),
            (Value::from(-100), &[0xd0, 0x9c]),
            (Value::from(70000), &[0xce, 0x00, 0x01, 0x11, 0x70]),
            (Value::from(-40000), &[0xd2, 0xff, 0xff, 0x63, 0xc0]),
        ];
        for (value, expected) in cases {
            let mut writer = Writer::default();
            writer.value(value);
            assert_eq!(writer.into_vec(), *expected, "{value:?}");
        }
    }

    #[test]
    fn hint_bounds_the_encoded_size() {
        let value = Value::Array(vec![
            Value::from("event"),
            Value::Map(vec![(Value::from("k"), Value::from(u64::MAX))]),
            Value::Binary(vec![0; 300]),
            Value::Ext(3, vec![1, 2, 3]),
        ]);
        let mut writer = Writer::default();
        writer.value(&value);
        assert!(writer.into_vec().len() <= encoded_len_hint(&value));
    }
}
