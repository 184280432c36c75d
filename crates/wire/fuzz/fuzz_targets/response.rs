//! Response decoding (JSON and msgpack) must be total; an accepted response
//! re-encodes to something that decodes again with the same request id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wire::Response;

fuzz_target!(|data: &[u8]| {
    if let Ok(response) = Response::decode(data) {
        let encoded = response.encode();
        let again = Response::decode(&encoded).expect("re-encoded response decodes");
        assert_eq!(again.request_id(), response.request_id());
    }
});
