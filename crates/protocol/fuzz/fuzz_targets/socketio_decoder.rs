//! The binary-reassembly state machine over arbitrary frame sequences: the
//! input is split on 0xff; chunks starting with 't' are text frames, the
//! others binary frames.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use protocol::socketio::PacketDecoder;

fuzz_target!(|data: &[u8]| {
    let mut decoder = PacketDecoder::new().with_max_attachments(8);
    for chunk in data.split(|&b| b == 0xff) {
        match chunk.split_first() {
            Some((b't', text)) => {
                if let Ok(text) = std::str::from_utf8(text) {
                    if let Ok(Some((packet, attachments))) = decoder.push_text(text) {
                        assert_eq!(packet.attachments, attachments.len());
                    }
                }
            }
            _ => {
                if let Ok(Some((packet, attachments))) =
                    decoder.push_binary(Bytes::copy_from_slice(chunk))
                {
                    assert_eq!(packet.attachments, attachments.len());
                }
            }
        }
    }
});
