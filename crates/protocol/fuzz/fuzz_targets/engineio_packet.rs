//! Single Engine.IO packets (WebSocket frames), v4 and v3: no panics, and
//! decoded packets survive a re-encode.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use protocol::engineio::{EioPacket, EioVersion, Frame};

fuzz_target!(|data: &[u8]| {
    let mut candidates = vec![Frame::Binary(Bytes::copy_from_slice(data))];
    if let Ok(text) = std::str::from_utf8(data) {
        candidates.push(Frame::Text(text.to_owned()));
    }
    for frame in candidates {
        for version in [EioVersion::V4, EioVersion::V3] {
            if let Ok(packet) = EioPacket::decode(frame.clone(), version) {
                let again = EioPacket::decode(packet.encode(version), version)
                    .expect("re-encoded packet decodes");
                assert_eq!(again, packet);
            }
        }
    }
});
