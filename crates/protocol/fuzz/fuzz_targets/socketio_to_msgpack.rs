//! Socket.IO JSON + attachments -> msgpack: no panics, and whatever converts
//! converts back to JSON.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use protocol::convert::{msgpack_to_socketio, socketio_to_msgpack};

fuzz_target!(|text: &str| {
    let attachments = [Bytes::from_static(b"zero"), Bytes::from_static(b"one")];
    if let Ok(value) = socketio_to_msgpack(text, &attachments) {
        msgpack_to_socketio(&value).expect("parsed JSON converts back");
    }
});
