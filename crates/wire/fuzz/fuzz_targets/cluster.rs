//! ClusterAdapter message decoding (JSON and msgpack) must be total; an
//! accepted message re-encodes to bytes that decode to the same type and
//! request, and encode again to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wire::ClusterMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = ClusterMessage::decode(data) {
        let encoded = message.encode();
        let again = ClusterMessage::decode(&encoded).expect("re-encoded message decodes");
        assert_eq!(again.body.message_type(), message.body.message_type());
        assert_eq!(again.body.request_id(), message.body.request_id());
        assert_eq!(again.encode(), encoded);
    }
});
