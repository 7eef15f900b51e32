//! Consumer-group metadata from other members: subscriptions (JoinGroup) and
//! assignments (SyncGroup), written by any client in the group.
#![no_main]

use bytes::Bytes;
use kafka_wire::codec::consumer_protocol::{decode_assignment, decode_subscription, encode_assignment, encode_subscription};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    // Whatever decodes must re-encode at the version it was read as.
    if let Ok((version, subscription)) = decode_subscription(bytes.clone()) {
        let _ = encode_subscription(&subscription, version.min(3));
    }
    if let Ok((version, assignment)) = decode_assignment(bytes) {
        let _ = encode_assignment(&assignment, version.min(3));
    }
});
