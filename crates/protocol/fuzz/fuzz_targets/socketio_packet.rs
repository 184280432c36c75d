//! Socket.IO text packets: decoding never panics, and whatever decodes
//! re-encodes to text that decodes to the same packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::socketio::{Packet, ProtocolVersion};

fuzz_target!(|text: &str| {
    for version in [ProtocolVersion::V5, ProtocolVersion::V4] {
        if let Ok(packet) = Packet::decode_with(text, version) {
            let again =
                Packet::decode_with(&packet.encode(), version).expect("re-encoded packet decodes");
            assert_eq!(again, packet);
        }
    }
});
