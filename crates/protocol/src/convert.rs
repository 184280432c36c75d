//! Conversion between msgpack value trees and Socket.IO JSON plus attachments.
//!
//! On Redis, `@socket.io/redis-adapter` carries packet data as msgpack with
//! binary inline (`bin`). On a socket the same data is JSON text in which
//! every binary is replaced by `{"_placeholder":true,"num":N}` and sent as a
//! separate attachment. Every broadcast a gateway receives goes through
//! [`msgpack_to_socketio`], so it writes JSON straight into one `String`
//! without an intermediate `serde_json::Value`.
//!
//! The output is what a Node peer produces for the same message: notepack.io
//! 3 decodes the msgpack into JS values, socket.io-parser's
//! `deconstructPacket` swaps binaries for placeholders (depth-first, in
//! order) and `JSON.stringify` writes the text. That fixes the edge cases:
//!
//! - map keys are converted like JS property keys (`String(key)`: `1` ->
//!   `"1"`, `nil` -> `"null"`, bytes decoded as UTF-8, arrays joined with
//!   `,`, maps `"[object Object]"`); keys that are array indices
//!   (`"0"`..`"4294967294"`) come first in ascending order, then the others in
//!   insertion order; a repeated key keeps its first position and its last
//!   value; `__proto__` keys vanish;
//! - `NaN` and the infinities print as `null`; `f32` prints as the double it
//!   widens to (`0.1f32` -> `0.10000000149011612`), other numbers as JS
//!   prints them;
//! - strings with invalid UTF-8 are decoded with U+FFFD replacement (as
//!   Node's `Buffer.toString`);
//! - ext types as notepack 3 reads them: ext 0 of length 1 is `undefined`
//!   (notepack 2's `d4 00 00`: `null` in arrays, key omitted in maps), ext 0
//!   of any other length is an ArrayBuffer (an attachment; note notepack reads
//!   `d7 00` as a legacy Date, which a value tree cannot tell from an 8-byte
//!   ArrayBuffer), ext -1 of length 4/8/12 is a timestamp (a `Date`, printed
//!   as its ISO string, `null` if out of range), any other ext is the pair
//!   `[type, <bytes>]`.
//!
//! One deliberate difference: integers are printed exactly, where notepack
//! would round those beyond 2^53 to a double. A JS receiver parses both texts
//! to the same double; a Rust receiver gets the exact value.
//!
//! In the other direction [`socketio_to_msgpack`] parses the JSON and puts the
//! attachments back where the placeholders are, with the number rules of
//! notepack's encoder (integral numbers become msgpack integers).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;

use bytes::Bytes;
use rmpv::{Integer, Value, ValueRef};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use smallvec::SmallVec;

use crate::jsfmt;
use crate::ProtocolError;

/// Deepest JSON nesting produced or accepted, counting arrays, objects and
/// placeholder objects: serde_json's parser refuses the 128th level, so the
/// JSON [`msgpack_to_socketio`] writes always parses back.
pub const MAX_DEPTH: usize = 127;

/// Integers within this magnitude are exact JS numbers.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Converts a msgpack value (usually the `data` array of a packet) into
/// Socket.IO JSON text and its attachments, numbered depth-first.
pub fn msgpack_to_socketio(data: &Value) -> Result<(String, Vec<Bytes>), ProtocolError> {
    let mut json = String::with_capacity(128);
    let mut attachments = Vec::new();
    write_socketio_json(data, &mut json, &mut attachments)?;
    Ok((json, attachments))
}

/// Like [`msgpack_to_socketio`], appending to caller-owned buffers (so a
/// packet header can be written first, or buffers reused).
pub fn write_socketio_json(
    data: &Value,
    out: &mut String,
    attachments: &mut Vec<Bytes>,
) -> Result<(), ProtocolError> {
    let mut writer = JsonWriter {
        out,
        attachments,
        to_bytes: Bytes::copy_from_slice,
    };
    writer.value(data, 0)
}

/// Converts a borrowed msgpack value. When `source` is the buffer the value
/// was decoded from, attachments are zero-copy slices of it.
pub fn msgpack_ref_to_socketio(
    data: &ValueRef<'_>,
    source: Option<&Bytes>,
) -> Result<(String, Vec<Bytes>), ProtocolError> {
    let mut json = String::with_capacity(128);
    let mut attachments = Vec::new();
    let to_bytes = |slice: &[u8]| match source {
        Some(source) if is_within(source, slice) => source.slice_ref(slice),
        _ => Bytes::copy_from_slice(slice),
    };
    let mut writer = JsonWriter {
        out: &mut json,
        attachments: &mut attachments,
        to_bytes,
    };
    writer.value(data, 0)?;
    Ok((json, attachments))
}

/// `Bytes::slice_ref` panics on foreign slices; check first.
fn is_within(source: &Bytes, slice: &[u8]) -> bool {
    let start = source.as_ptr() as usize;
    let end = start + source.len();
    let slice_start = slice.as_ptr() as usize;
    slice.is_empty() || (slice_start >= start && slice_start + slice.len() <= end)
}

/// Converts Socket.IO JSON text plus attachments into a msgpack value, with
/// each placeholder replaced by `Value::Binary` of its attachment.
pub fn socketio_to_msgpack(json: &str, attachments: &[Bytes]) -> Result<Value, ProtocolError> {
    parse_json(json, attachments, true)
}

/// Appends the placeholder object that stands for attachment `num`.
pub fn write_placeholder(out: &mut String, num: usize) {
    use std::fmt::Write as _;
    out.push_str("{\"_placeholder\":true,\"num\":");
    let _ = write!(out, "{num}");
    out.push('}');
}

/// Checks that every placeholder in `json` names one of `available`
/// attachments, as socket.io-parser's `reconstructPacket` does.
pub(crate) fn check_placeholders(json: &str, available: usize) -> Result<(), ProtocolError> {
    // Only the count matters when the binaries are not materialised.
    let fake = vec![Bytes::new(); available.min(json.len())];
    parse_json(json, &fake, false)
        .map(drop)
        .map_err(|err| match err {
            ProtocolError::InvalidPlaceholder { num, .. } => {
                ProtocolError::InvalidPlaceholder { num, available }
            }
            other => other,
        })
}

// ---------------------------------------------------------------------------
// msgpack -> JSON

/// The shape of a msgpack node, common to `Value` and `ValueRef`.
enum Node<'v, T> {
    Nil,
    Bool(bool),
    Int(Integer),
    F32(f32),
    F64(f64),
    Str(&'v [u8]),
    Bin(&'v [u8]),
    Array(&'v [T]),
    Map(&'v [(T, T)]),
    Ext(i8, &'v [u8]),
}

trait AsNode: Sized {
    fn node(&self) -> Node<'_, Self>;
}

impl AsNode for Value {
    fn node(&self) -> Node<'_, Self> {
        match self {
            Value::Nil => Node::Nil,
            Value::Boolean(b) => Node::Bool(*b),
            Value::Integer(i) => Node::Int(*i),
            Value::F32(f) => Node::F32(*f),
            Value::F64(f) => Node::F64(*f),
            Value::String(s) => Node::Str(s.as_bytes()),
            Value::Binary(b) => Node::Bin(b),
            Value::Array(a) => Node::Array(a),
            Value::Map(m) => Node::Map(m),
            Value::Ext(t, d) => Node::Ext(*t, d),
        }
    }
}

impl AsNode for ValueRef<'_> {
    fn node(&self) -> Node<'_, Self> {
        match self {
            ValueRef::Nil => Node::Nil,
            ValueRef::Boolean(b) => Node::Bool(*b),
            ValueRef::Integer(i) => Node::Int(*i),
            ValueRef::F32(f) => Node::F32(*f),
            ValueRef::F64(f) => Node::F64(*f),
            ValueRef::String(s) => Node::Str(s.as_bytes()),
            ValueRef::Binary(b) => Node::Bin(b),
            ValueRef::Array(a) => Node::Array(a),
            ValueRef::Map(m) => Node::Map(m),
            ValueRef::Ext(t, d) => Node::Ext(*t, d),
        }
    }
}

/// What notepack 3 turns an ext value into.
enum ExtMeaning {
    Undefined,
    ArrayBuffer,
    /// A valid JS time value in ms, or `None` for an Invalid Date.
    Date(Option<i64>),
    Pair,
}

fn ext_meaning(kind: i8, data: &[u8]) -> ExtMeaning {
    match (kind, data.len()) {
        (0, 1) => ExtMeaning::Undefined,
        (0, _) => ExtMeaning::ArrayBuffer,
        (-1, 4 | 8 | 12) => ExtMeaning::Date(timestamp_ms(data)),
        _ => ExtMeaning::Pair,
    }
}

/// msgpack timestamp ext -> JS time value, computed in doubles like notepack
/// and `new Date(..)` (TimeClip truncates toward zero, rejects > 8.64e15).
fn timestamp_ms(data: &[u8]) -> Option<i64> {
    let be32 = |at: usize| -> f64 {
        let mut word = [0u8; 4];
        word.copy_from_slice(&data[at..at + 4]);
        f64::from(u32::from_be_bytes(word))
    };
    let ms = match data.len() {
        4 => be32(0) * 1e3,
        8 => {
            let hi = be32(0);
            let nanos = (hi / 4.0).floor();
            let seconds = (hi % 4.0) * 4_294_967_296.0 + be32(4);
            seconds * 1e3 + nanos / 1e6
        }
        12 => {
            let nanos = be32(0);
            let mut word = [0u8; 4];
            word.copy_from_slice(&data[4..8]);
            let hi = f64::from(i32::from_be_bytes(word));
            (hi * 4_294_967_296.0 + be32(8)) * 1e3 + nanos / 1e6
        }
        _ => return None,
    };
    (ms.is_finite() && ms.abs() <= jsfmt::MAX_DATE_MS).then(|| ms.trunc() as i64)
}

fn is_undefined<T: AsNode>(value: &T) -> bool {
    matches!(value.node(), Node::Ext(0, data) if data.len() == 1)
}

struct JsonWriter<'o, F> {
    out: &'o mut String,
    attachments: &'o mut Vec<Bytes>,
    to_bytes: F,
}

impl<F: FnMut(&[u8]) -> Bytes> JsonWriter<'_, F> {
    /// Writes a placeholder (itself a JSON object one level down).
    fn attachment(&mut self, data: &[u8], depth: usize) -> Result<(), ProtocolError> {
        enter(depth)?;
        write_placeholder(self.out, self.attachments.len());
        let bytes = (self.to_bytes)(data);
        self.attachments.push(bytes);
        Ok(())
    }

    fn value<T: AsNode>(&mut self, value: &T, depth: usize) -> Result<(), ProtocolError> {
        match value.node() {
            Node::Nil => self.out.push_str("null"),
            Node::Bool(b) => self.out.push_str(if b { "true" } else { "false" }),
            Node::Int(i) => write_integer(self.out, i),
            Node::F32(f) => jsfmt::write_json_f64(self.out, f64::from(f)),
            Node::F64(f) => jsfmt::write_json_f64(self.out, f),
            Node::Str(bytes) => jsfmt::write_json_string(self.out, &String::from_utf8_lossy(bytes)),
            Node::Bin(bytes) => self.attachment(bytes, depth)?,
            Node::Array(items) => {
                let depth = enter(depth)?;
                self.out.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        self.out.push(',');
                    }
                    // JSON.stringify writes undefined array slots as null.
                    if is_undefined(item) {
                        self.out.push_str("null");
                    } else {
                        self.value(item, depth)?;
                    }
                }
                self.out.push(']');
            }
            Node::Map(entries) => self.map(entries, enter(depth)?)?,
            Node::Ext(kind, data) => match ext_meaning(kind, data) {
                ExtMeaning::Undefined | ExtMeaning::Date(None) => self.out.push_str("null"),
                ExtMeaning::ArrayBuffer => self.attachment(data, depth)?,
                ExtMeaning::Date(Some(ms)) => {
                    self.out.push('"');
                    jsfmt::write_iso_date(self.out, ms);
                    self.out.push('"');
                }
                ExtMeaning::Pair => {
                    let depth = enter(depth)?;
                    self.out.push('[');
                    let mut digits = itoa::Buffer::new();
                    self.out.push_str(digits.format(kind));
                    self.out.push(',');
                    self.attachment(data, depth)?;
                    self.out.push(']');
                }
            },
        }
        Ok(())
    }

    fn map<T: AsNode>(&mut self, entries: &[(T, T)], depth: usize) -> Result<(), ProtocolError> {
        self.out.push('{');
        let mut first = true;
        if let Some(keys) = plain_keys(entries) {
            for (key, (_, value)) in keys.into_iter().zip(entries) {
                if is_undefined(value) {
                    continue;
                }
                if !first {
                    self.out.push(',');
                }
                first = false;
                jsfmt::write_json_string(self.out, key);
                self.out.push(':');
                self.value(value, depth)?;
            }
        } else {
            for (key, value) in js_object_entries(entries, depth)? {
                if is_undefined(value) {
                    continue;
                }
                if !first {
                    self.out.push(',');
                }
                first = false;
                jsfmt::write_json_string(self.out, &key);
                self.out.push(':');
                self.value(value, depth)?;
            }
        }
        self.out.push('}');
        Ok(())
    }
}

fn enter(depth: usize) -> Result<usize, ProtocolError> {
    if depth >= MAX_DEPTH {
        Err(ProtocolError::TooDeep(MAX_DEPTH))
    } else {
        Ok(depth + 1)
    }
}

fn write_integer(out: &mut String, value: Integer) {
    let mut digits = itoa::Buffer::new();
    if let Some(unsigned) = value.as_u64() {
        out.push_str(digits.format(unsigned));
    } else if let Some(signed) = value.as_i64() {
        out.push_str(digits.format(signed));
    }
}

/// The common case: every key is a distinct UTF-8 string that JS keeps as
/// is and in place. Returns the keys, or `None` when the JS object semantics
/// need the slow path.
fn plain_keys<T: AsNode>(entries: &[(T, T)]) -> Option<SmallVec<[&str; 16]>> {
    let mut keys = SmallVec::with_capacity(entries.len());
    for (key, _) in entries {
        let Node::Str(bytes) = key.node() else {
            return None;
        };
        let key = std::str::from_utf8(bytes).ok()?;
        if key == "__proto__" || array_index(key).is_some() {
            return None;
        }
        keys.push(key);
    }
    let distinct = if keys.len() <= 16 {
        keys.iter()
            .enumerate()
            .all(|(i, key)| !keys[..i].contains(key))
    } else {
        let mut seen = HashSet::with_capacity(keys.len());
        keys.iter().all(|key| seen.insert(*key))
    };
    distinct.then_some(keys)
}

/// The own enumerable properties of the object notepack builds from
/// `entries`, in JS property order, duplicates collapsed, `__proto__` gone.
fn js_object_entries<T: AsNode>(
    entries: &[(T, T)],
    depth: usize,
) -> Result<Vec<(String, &T)>, ProtocolError> {
    let mut properties: Vec<(String, &T)> = Vec::with_capacity(entries.len());
    let mut positions = std::collections::HashMap::with_capacity(entries.len());
    for (key, value) in entries {
        let mut name = String::new();
        js_property_key(&mut name, key, depth)?;
        if name == "__proto__" {
            continue;
        }
        match positions.get(&name) {
            Some(&at) => properties[at] = (name, value),
            None => {
                positions.insert(name.clone(), properties.len());
                properties.push((name, value));
            }
        }
    }
    // Integer-like keys first, ascending; the stable sort keeps the others in
    // insertion order.
    properties.sort_by_key(|(name, _)| array_index(name).map_or((1, 0), |index| (0, index)));
    Ok(properties)
}

/// `String(value)` for a notepack-decoded value used as a property key.
fn js_property_key<T: AsNode>(
    out: &mut String,
    key: &T,
    depth: usize,
) -> Result<(), ProtocolError> {
    match key.node() {
        Node::Nil => out.push_str("null"),
        Node::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        Node::Int(i) => match i.as_f64() {
            Some(f) if f.abs() > MAX_SAFE_INTEGER => jsfmt::write_js_number(out, f),
            _ => write_integer(out, i),
        },
        Node::F32(f) => jsfmt::write_js_number(out, f64::from(f)),
        Node::F64(f) => jsfmt::write_js_number(out, f),
        Node::Str(bytes) | Node::Bin(bytes) => out.push_str(&String::from_utf8_lossy(bytes)),
        Node::Map(_) => out.push_str("[object Object]"),
        Node::Array(items) => {
            // Array.prototype.join: null and undefined become empty strings.
            let depth = enter(depth)?;
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                if !matches!(item.node(), Node::Nil) && !is_undefined(item) {
                    js_property_key(out, item, depth)?;
                }
            }
        }
        Node::Ext(kind, data) => match ext_meaning(kind, data) {
            ExtMeaning::Undefined => out.push_str("undefined"),
            ExtMeaning::ArrayBuffer => out.push_str("[object ArrayBuffer]"),
            // JS would use Date.prototype.toString (local time zone); the
            // ISO form is a documented approximation.
            ExtMeaning::Date(Some(ms)) => jsfmt::write_iso_date(out, ms),
            ExtMeaning::Date(None) => out.push_str("Invalid Date"),
            ExtMeaning::Pair => {
                let mut digits = itoa::Buffer::new();
                out.push_str(digits.format(kind));
                out.push(',');
                out.push_str(&String::from_utf8_lossy(data));
            }
        },
    }
    Ok(())
}

/// The numeric value of a canonical array-index key (`"0"`, `"17"`, but not
/// `"017"` or `"4294967295"`).
fn array_index(key: &str) -> Option<u32> {
    let bytes = key.as_bytes();
    if bytes.is_empty() || bytes.len() > 10 || (bytes.len() > 1 && bytes[0] == b'0') {
        return None;
    }
    if !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value: u64 = key.parse().ok()?;
    u32::try_from(value).ok().filter(|&index| index != u32::MAX)
}

// ---------------------------------------------------------------------------
// JSON -> msgpack

fn parse_json(
    json: &str,
    attachments: &[Bytes],
    materialize: bool,
) -> Result<Value, ProtocolError> {
    let placeholder_error = RefCell::new(None);
    let seed = ValueSeed {
        attachments,
        materialize,
        placeholder_error: &placeholder_error,
    };
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let result = seed
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    match result {
        Ok(value) => Ok(value),
        Err(err) => {
            if let Some(placeholder) = placeholder_error.into_inner() {
                return Err(placeholder);
            }
            let message = err.to_string();
            if message.starts_with("recursion limit exceeded") {
                Err(ProtocolError::TooDeep(MAX_DEPTH))
            } else {
                Err(ProtocolError::InvalidJson(message))
            }
        }
    }
}

/// A JSON number as notepack would encode the JS number: integral values
/// become integers.
fn number_value(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() <= MAX_SAFE_INTEGER {
        if value < 0.0 {
            Value::from(value as i64)
        } else {
            Value::from(value as u64)
        }
    } else {
        Value::F64(value)
    }
}

#[derive(Clone, Copy)]
struct ValueSeed<'a> {
    attachments: &'a [Bytes],
    /// false: placeholders only checked, binaries left empty.
    materialize: bool,
    placeholder_error: &'a RefCell<Option<ProtocolError>>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Boolean(value))
    }
    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }
    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }
    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        Ok(number_value(value))
    }
    fn visit_str<E: de::Error>(self, value: &str) -> Result<Value, E> {
        Ok(Value::from(value))
    }
    fn visit_string<E: de::Error>(self, value: String) -> Result<Value, E> {
        Ok(Value::from(value))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        // Last occurrence wins, as in JSON.parse.
        let mut placeholder_flag = None;
        let mut num = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let value = map.next_value_seed(self)?;
            match &*key {
                "_placeholder" => placeholder_flag = Some(entries.len()),
                "num" => num = Some(entries.len()),
                _ => {}
            }
            entries.push((Value::from(&*key), value));
        }
        let is_placeholder =
            placeholder_flag.is_some_and(|at| entries[at].1 == Value::Boolean(true));
        if !is_placeholder {
            return Ok(Value::Map(entries));
        }
        let index = num.and_then(|at| entries[at].1.as_u64());
        match index
            .and_then(|index| usize::try_from(index).ok())
            .filter(|&i| i < self.attachments.len())
        {
            Some(index) if self.materialize => Ok(Value::Binary(self.attachments[index].to_vec())),
            Some(_) => Ok(Value::Binary(Vec::new())),
            None => {
                *self.placeholder_error.borrow_mut() = Some(ProtocolError::InvalidPlaceholder {
                    num: index,
                    available: self.attachments.len(),
                });
                Err(de::Error::custom("illegal attachments"))
            }
        }
    }
}
