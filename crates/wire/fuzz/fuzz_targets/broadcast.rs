//! Broadcast decoding must be total, and whatever it accepts must re-encode
//! to a fixed point (decode(encode(m)) encodes identically).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wire::BroadcastMessage;

fuzz_target!(|data: &[u8]| {
    let _ = wire::peek_uid(data);
    if let Ok(message) = BroadcastMessage::decode(data) {
        let encoded = message.encode();
        let again = BroadcastMessage::decode(&encoded).expect("re-encoded broadcast decodes");
        assert_eq!(again.encode(), encoded);
        assert_eq!(wire::peek_uid(&encoded), Some(message.uid.as_str()));
    }
});
