//! Request decoding (JSON and msgpack) must be total; an accepted request
//! re-encodes to something that decodes again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wire::Request;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = Request::decode(data) {
        let encoded = request.encode();
        let again = Request::decode(&encoded).expect("re-encoded request decodes");
        assert_eq!(again.request_type(), request.request_type());
        assert_eq!(again.request_id(), request.request_id());
    }
});
