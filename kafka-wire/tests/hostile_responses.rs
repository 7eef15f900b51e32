//! Response frames crafted to make a decoder allocate from an unchecked length.
//! Each must be a typed error: before the vendored kafka-protocol fix
//! (kafka-wire/vendor/kafka-protocol/PATCHED.md) the first one aborted the
//! process with a 195 GB allocation.

use bytes::Bytes;
use kafka_wire::codec::{decode_response, CodecError};
use kafka_wire::protocol::messages::{ApiVersionsRequest, MetadataRequest, OffsetCommitRequest};

/// Found by the `response_frame` fuzz target (artifact crash-465b5f03…):
/// OffsetCommit v2, correlation id then an array count of 0xf51a0a05.
#[test]
fn fuzz_reproducer_offset_commit_v2_array_count() {
    let frame = Bytes::from_static(&[0xf5, 0x1a, 0x0a, 0x05, 0x79, 0x79, 0x79, 0x79, 0xf5]);
    let result = decode_response::<OffsetCommitRequest>(frame, 2);
    assert!(
        matches!(
            result,
            Err(CodecError::Decode {
                api: "OffsetCommit",
                ..
            })
        ),
        "{result:?}"
    );
}

#[test]
fn compact_array_count_near_u32_max_is_an_error() {
    // ApiVersions v3 body: error_code 0, api_keys compact array count 0xffff_fffe.
    let frame = Bytes::from_static(&[0, 0, 0, 1, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0x0f]);
    assert!(decode_response::<ApiVersionsRequest>(frame, 3).is_err());
}

#[test]
fn string_length_beyond_the_frame_is_an_error() {
    // Metadata v1: correlation id, brokers array of 1, node id, host string of 32,767 bytes (absent).
    let frame = Bytes::from_static(&[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0x7f, 0xff, b'h']);
    assert!(decode_response::<MetadataRequest>(frame, 1).is_err());
}

#[test]
fn compact_bytes_length_beyond_the_frame_is_an_error() {
    // Metadata v12 (flexible): correlation id, header tagged fields, throttle, brokers
    // compact array of 1, node id, host compact string claiming 2^31 bytes.
    let frame = Bytes::from_static(&[
        0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 0x80, 0x80, 0x80, 0x80, 0x08,
    ]);
    assert!(decode_response::<MetadataRequest>(frame, 12).is_err());
}
