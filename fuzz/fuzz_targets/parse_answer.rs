//! Any bytes as an answer of any API: parsing and classification must
//! never panic, and anything unreadable must never be taken for a failure.

#![no_main]

use hongbao_wxpay::{Api, ApiKey, Reply, SendOutcome, classify_query, classify_send};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = ApiKey::any("192006250b4c09247ec02edce69f6a2d");
    for api in Api::ALL {
        let reply = Reply::parse(api, data, &key);
        let outcome = classify_send(&reply);
        if reply.is_err() {
            assert!(matches!(outcome, SendOutcome::QueryFirst { .. }));
        }
        let _ = classify_query(&reply);
    }
    let _ = hongbao_wxpay::xml::parse(data);
});
