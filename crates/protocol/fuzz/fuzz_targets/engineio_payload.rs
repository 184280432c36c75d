//! Long-polling payloads: v4 (`\x1e`), v3 text (UTF-16 length prefixes) and
//! v3 binary. No panics; decoded payloads survive a re-encode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::engineio::{
    decode_payload_v3, decode_payload_v3_binary, decode_payload_v4, encode_payload_v3,
    encode_payload_v3_binary, encode_payload_v4,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(packets) = decode_payload_v3_binary(data) {
        assert_eq!(
            decode_payload_v3_binary(&encode_payload_v3_binary(&packets)).expect("v3 binary"),
            packets
        );
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(packets) = decode_payload_v4(text) {
        assert_eq!(
            decode_payload_v4(&encode_payload_v4(&packets)).expect("v4"),
            packets
        );
    }
    if let Ok(packets) = decode_payload_v3(text) {
        assert_eq!(
            decode_payload_v3(&encode_payload_v3(&packets)).expect("v3"),
            packets
        );
    }
});
