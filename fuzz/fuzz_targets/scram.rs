//! SCRAM server-first and server-final messages from a hostile server.
#![no_main]

use kafka_wire::conn::scram::{parse_server_final, ScramClient, ScramHash};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (first, last) = data.split_at(data.len() / 2);
    let _ = parse_server_final(last);
    let mut client = ScramClient::with_nonce(ScramHash::Sha256, "user", "pencil", "fuzz");
    if client.client_final(first).is_ok() {
        let _ = client.verify_server_final(last);
    }
});
