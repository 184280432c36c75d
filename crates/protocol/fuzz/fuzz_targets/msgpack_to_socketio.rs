//! msgpack from Redis -> Socket.IO JSON: no panics, the output is valid JSON
//! with one placeholder per attachment, and both value paths agree.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use protocol::convert::{msgpack_ref_to_socketio, msgpack_to_socketio};

fuzz_target!(|data: &[u8]| {
    let source = Bytes::copy_from_slice(data);
    let Ok(value) = rmpv::decode::read_value(&mut &source[..]) else {
        return;
    };
    let owned = msgpack_to_socketio(&value);
    if let Ok((json, attachments)) = &owned {
        serde_json::from_str::<serde_json::Value>(json).expect("valid JSON");
        for index in 0..attachments.len() {
            assert!(json.contains(&format!("{{\"_placeholder\":true,\"num\":{index}}}")));
        }
    }
    if let Ok(value_ref) = rmpv::decode::read_value_ref(&mut &source[..]) {
        assert_eq!(msgpack_ref_to_socketio(&value_ref, Some(&source)), owned);
    }
});
