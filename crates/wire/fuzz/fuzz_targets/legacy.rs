//! Decoding the 2014 emitter's msgpack-js dialect must be total.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wire::LegacyEmitterMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = LegacyEmitterMessage::decode(data) {
        let encoded = message.encode();
        assert!(LegacyEmitterMessage::decode(&encoded).is_ok());
    }
});
