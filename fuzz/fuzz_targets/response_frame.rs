//! A response frame for the (api key, version) the input picks: header and
//! body, through the same path the connection uses.
#![no_main]

use bytes::Bytes;
use kafka_wire::codec::decode_response;
use kafka_wire::protocol::messages::*;
use libfuzzer_sys::fuzz_target;

macro_rules! decode_as {
    ($selector:expr, $version:expr, $frame:expr, [$($request:ty),* $(,)?]) => {{
        let decoders: &[fn(Bytes, i16)] = &[$(|frame, version| { let _ = decode_response::<$request>(frame, version); }),*];
        decoders[usize::from($selector) % decoders.len()]($frame, $version)
    }};
}

fuzz_target!(|data: &[u8]| {
    let [selector, version, frame @ ..] = data else { return };
    let version = i16::from(*version % 20);
    let frame = Bytes::copy_from_slice(frame);
    decode_as!(*selector, version, frame, [
        ApiVersionsRequest, MetadataRequest, ProduceRequest, FetchRequest, ListOffsetsRequest,
        FindCoordinatorRequest, JoinGroupRequest, SyncGroupRequest, HeartbeatRequest,
        LeaveGroupRequest, OffsetCommitRequest, OffsetFetchRequest, InitProducerIdRequest,
        AddPartitionsToTxnRequest, AddOffsetsToTxnRequest, TxnOffsetCommitRequest, EndTxnRequest,
        SaslHandshakeRequest, SaslAuthenticateRequest, CreateTopicsRequest,
    ]);
});
