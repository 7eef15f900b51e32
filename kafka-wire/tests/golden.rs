//! Golden-byte tests: whole request frames checked against bytes written out by
//! hand from the Kafka protocol guide, never produced by the encoder under test.
//!
//! Sources for every expected byte:
//! - Protocol guide, "Headers" (Request Header v2, Response Header v0) and the
//!   per-API "Requests"/"Responses" layouts: <https://kafka.apache.org/protocol#protocol_messages>
//! - Protocol guide, "Protocol Primitive Types": COMPACT_STRING / COMPACT_ARRAY /
//!   COMPACT_RECORDS are an UNSIGNED_VARINT of length + 1 (0 = null), and a
//!   `_tagged_fields` section is an UNSIGNED_VARINT count (0 = none), then per
//!   field an UNSIGNED_VARINT tag, an UNSIGNED_VARINT size and the data (KIP-482).
//! - Record batch v2: <https://kafka.apache.org/documentation/#recordbatch>
//!   (record lengths, deltas and key/value/header lengths are zigzag varints,
//!   the timestamp delta a zigzag varlong; CRC-32C over attributes..end).
//!
//! The CRC literal in [`BATCH`] was computed once, outside this crate, by a
//! table-driven CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) written
//! in Python and checked against the standard vectors
//! crc32c("123456789") = 0xE3069283 and crc32c(32 zero bytes) = 0x8A9136AA.

use bytes::{Bytes, BytesMut};
use kafka_wire::codec::{decode_response, encode_request};
use kafka_wire::protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_wire::protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_wire::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_wire::protocol::messages::{
    ApiVersionsRequest, BrokerId, FetchRequest, MetadataRequest, ProduceRequest, TopicName,
};
use kafka_wire::protocol::protocol::{Request, StrBytes};
use kafka_wire::records::{BatchBuilder, Compression, Header, ProducerState};

const CLIENT_ID: &str = "nisshi";
const TOPIC: &str = "events";

// ---------------------------------------------------------------- helpers

/// Encodes one request frame with this crate's encoder.
fn encode<R: Request>(correlation_id: i32, version: i16, body: &R) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_request(&mut buf, correlation_id, Some(CLIENT_ID), version, body).expect("encode");
    buf.to_vec()
}

/// Compares `actual` with `expected` and, on mismatch, names the first
/// differing byte offset (counted from the start of the size prefix).
fn assert_golden(what: &str, actual: &[u8], expected: &[u8]) {
    if let Some(at) = actual.iter().zip(expected).position(|(a, e)| a != e) {
        panic!(
            "{what}: first difference at byte offset {at}: encoder wrote {:#04x}, guide says {:#04x}\n\
             encoder: {}\nexpected: {}",
            actual[at],
            expected[at],
            hex(actual),
            hex(expected)
        );
    }
    assert_eq!(
        actual.len(),
        expected.len(),
        "{what}: lengths differ (encoder {} bytes, expected {} bytes)\nencoder: {}\nexpected: {}",
        actual.len(),
        expected.len(),
        hex(actual),
        hex(expected)
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks that a hand-written frame's size prefix matches its own length, so a
/// miscount in the expected array is caught as such rather than blamed on the encoder.
fn check_size_prefix(expected: &[u8]) {
    let size = i32::from_be_bytes(expected[..4].try_into().unwrap());
    assert_eq!(
        size as usize,
        expected.len() - 4,
        "hand-written size prefix is wrong"
    );
}

fn topic_name(name: &'static str) -> TopicName {
    TopicName(StrBytes::from_static_str(name))
}

// ------------------------------------------------------- ApiVersions v3

/// Protocol guide: `ApiVersions Request (Version: 3) => client_software_name
/// client_software_version _tagged_fields` (both COMPACT_STRING), request header v2.
#[test]
fn api_versions_v3_request() {
    let body = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("nisshi"))
        .with_client_software_version(StrBytes::from_static_str("0.1.0"));
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x00, 0x00, 0x00, 0x1f,                   // size = 31
        // Request Header v2
        0x00, 0x12,                               // request_api_key = 18 (ApiVersions)
        0x00, 0x03,                               // request_api_version = 3
        0x00, 0x00, 0x00, 0x01,                   // correlation_id = 1
        0x00, 0x06, b'n', b'i', b's', b's', b'h', b'i', // client_id: NULLABLE_STRING (i16 len 6) "nisshi"
        0x00,                                     // header _tagged_fields: none
        // ApiVersionsRequest v3
        0x07, b'n', b'i', b's', b's', b'h', b'i', // client_software_name: COMPACT_STRING len 6 (+1) "nisshi"
        0x06, b'0', b'.', b'1', b'.', b'0',       // client_software_version: COMPACT_STRING len 5 (+1) "0.1.0"
        0x00,                                     // _tagged_fields: none
    ];
    check_size_prefix(expected);
    assert_golden("ApiVersions v3", &encode(1, 3, &body), expected);
}

// ---------------------------------------------------------- Metadata v12

/// Protocol guide: `Metadata Request (Version: 12) => [topics]
/// allow_auto_topic_creation include_topic_authorized_operations _tagged_fields`,
/// `topics => topic_id name _tagged_fields` (UUID, COMPACT_NULLABLE_STRING).
#[test]
fn metadata_v12_request() {
    let body = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name(TOPIC)))
        ]))
        .with_allow_auto_topic_creation(false)
        .with_include_topic_authorized_operations(false);
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x00, 0x00, 0x00, 0x2d,                   // size = 45
        // Request Header v2
        0x00, 0x03,                               // request_api_key = 3 (Metadata)
        0x00, 0x0c,                               // request_api_version = 12
        0x00, 0x00, 0x00, 0x02,                   // correlation_id = 2
        0x00, 0x06, b'n', b'i', b's', b's', b'h', b'i', // client_id "nisshi"
        0x00,                                     // header _tagged_fields: none
        // MetadataRequest v12
        0x02,                                     // topics: COMPACT_ARRAY, 1 element (+1)
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //   topic_id: UUID, all zero (by name)
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //   (topic_id, low 8 bytes)
        0x07, b'e', b'v', b'e', b'n', b't', b's', //   name: COMPACT_NULLABLE_STRING len 6 (+1) "events"
        0x00,                                     //   topic _tagged_fields: none
        0x00,                                     // allow_auto_topic_creation = false
        0x00,                                     // include_topic_authorized_operations = false
        0x00,                                     // _tagged_fields: none
    ];
    check_size_prefix(expected);
    assert_golden("Metadata v12", &encode(2, 12, &body), expected);
}

// ------------------------------------------------------ record batch v2

/// Timestamps of the two records in [`BATCH`]: 1_700_000_000_000 ms = 0x0000_018b_cfe5_6800.
const TS0: i64 = 1_700_000_000_000;
const TS1: i64 = TS0 + 5;

/// A magic-2 batch of two uncompressed records, as the documentation's
/// "Record Batch" / "Record" / "Record Header" sections lay it out:
/// record 0: key "k", value "v1", no headers;
/// record 1: null key, value "v2", one header "h" = "x", timestamp +5 ms.
#[rustfmt::skip]
const BATCH: [u8; 84] = [
    // RecordBatch header (61 bytes)
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // baseOffset: int64 = 0
    0x00, 0x00, 0x00, 0x48,                   // batchLength: int32 = 72 (bytes after this field)
    0xff, 0xff, 0xff, 0xff,                   // partitionLeaderEpoch: int32 = -1
    0x02,                                     // magic: int8 = 2
    0xfd, 0xe8, 0x65, 0x79,                   // crc: uint32 CRC-32C(attributes..end) = 0xfde86579
    0x00, 0x00,                               // attributes: int16 = 0 (no compression, CreateTime, not txn, not control)
    0x00, 0x00, 0x00, 0x01,                   // lastOffsetDelta: int32 = 1
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, // baseTimestamp: int64 = 1_700_000_000_000
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x05, // maxTimestamp: int64 = 1_700_000_000_005
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // producerId: int64 = -1
    0xff, 0xff,                               // producerEpoch: int16 = -1
    0xff, 0xff, 0xff, 0xff,                   // baseSequence: int32 = -1
    0x00, 0x00, 0x00, 0x02,                   // recordsCount: int32 = 2
    // Record 0 (10 bytes)
    0x12,                                     // length: varint 9 (zigzag 18)
    0x00,                                     // attributes: int8 = 0
    0x00,                                     // timestampDelta: varlong 0
    0x00,                                     // offsetDelta: varint 0
    0x02, b'k',                               // keyLength: varint 1 (zigzag 2), key "k"
    0x04, b'v', b'1',                         // valueLength: varint 2 (zigzag 4), value "v1"
    0x00,                                     // headers count: varint 0
    // Record 1 (13 bytes)
    0x18,                                     // length: varint 12 (zigzag 24)
    0x00,                                     // attributes: int8 = 0
    0x0a,                                     // timestampDelta: varlong 5 (zigzag 10)
    0x02,                                     // offsetDelta: varint 1 (zigzag 2)
    0x01,                                     // keyLength: varint -1 (zigzag 1) = null key
    0x04, b'v', b'2',                         // valueLength: varint 2, value "v2"
    0x02,                                     // headers count: varint 1 (zigzag 2)
    0x02, b'h',                               //   headerKeyLength: varint 1, key "h"
    0x02, b'x',                               //   headerValueLength: varint 1, value "x"
];

fn build_batch() -> Bytes {
    let mut builder = BatchBuilder::new(Compression::None);
    builder.append(TS0, Some(&b"k"[..]), Some(&b"v1"[..]), &[]);
    builder.append(TS1, None, Some(&b"v2"[..]), &[Header::new("h", "x")]);
    builder.build(ProducerState::NONE).expect("build batch")
}

/// The batch builder alone against [`BATCH`] (offsets here are within the batch).
#[test]
fn record_batch_v2_two_records() {
    assert_golden("record batch", &build_batch(), &BATCH);
}

// ------------------------------------------------------------ Produce v9

/// Protocol guide: `Produce Request (Version: 9) => transactional_id acks
/// timeout_ms [topic_data] _tagged_fields`, `topic_data => name [partition_data]
/// _tagged_fields`, `partition_data => index records _tagged_fields`
/// (COMPACT_NULLABLE_STRING, INT16, INT32, COMPACT_STRING, INT32, COMPACT_RECORDS).
#[test]
fn produce_v9_request() {
    let body = ProduceRequest::default()
        .with_transactional_id(None)
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(TOPIC))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(build_batch()))])]);
    #[rustfmt::skip]
    let before_records: &[u8] = &[
        0x00, 0x00, 0x00, 0x7d,                   // size = 125
        // Request Header v2
        0x00, 0x00,                               // request_api_key = 0 (Produce)
        0x00, 0x09,                               // request_api_version = 9
        0x00, 0x00, 0x30, 0x39,                   // correlation_id = 12345
        0x00, 0x06, b'n', b'i', b's', b's', b'h', b'i', // client_id "nisshi"
        0x00,                                     // header _tagged_fields: none
        // ProduceRequest v9
        0x00,                                     // transactional_id: COMPACT_NULLABLE_STRING null (0)
        0xff, 0xff,                               // acks: int16 = -1
        0x00, 0x00, 0x75, 0x30,                   // timeout_ms: int32 = 30000
        0x02,                                     // topic_data: COMPACT_ARRAY, 1 element
        0x07, b'e', b'v', b'e', b'n', b't', b's', //   name: COMPACT_STRING "events"
        0x02,                                     //   partition_data: COMPACT_ARRAY, 1 element
        0x00, 0x00, 0x00, 0x00,                   //     index: int32 = 0
        0x55,                                     //     records: COMPACT_RECORDS length 84 (+1 = 85)
    ];
    #[rustfmt::skip]
    let after_records: &[u8] = &[
        0x00,                                     //     partition_data _tagged_fields: none
        0x00,                                     //   topic_data _tagged_fields: none
        0x00,                                     // _tagged_fields: none
    ];
    let expected = [before_records, &BATCH[..], after_records].concat();
    check_size_prefix(&expected);
    assert_golden("Produce v9", &encode(12345, 9, &body), &expected);
}

// ------------------------------------------------------------- Fetch v12

/// Protocol guide: `Fetch Request (Version: 12) => replica_id max_wait_ms
/// min_bytes max_bytes isolation_level session_id session_epoch [topics]
/// [forgotten_topics_data] rack_id _tagged_fields`, `topics => topic [partitions]
/// _tagged_fields`, `partitions => partition current_leader_epoch fetch_offset
/// last_fetched_epoch log_start_offset partition_max_bytes _tagged_fields`.
#[test]
fn fetch_v12_request() {
    let body = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(52_428_800)
        .with_isolation_level(1)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(TOPIC))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(-1)
                .with_fetch_offset(0)
                .with_last_fetched_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(1_048_576)])]);
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x00, 0x00, 0x00, 0x58,                   // size = 88
        // Request Header v2
        0x00, 0x01,                               // request_api_key = 1 (Fetch)
        0x00, 0x0c,                               // request_api_version = 12
        0x7f, 0xff, 0xff, 0xfe,                   // correlation_id = 2147483646
        0x00, 0x06, b'n', b'i', b's', b's', b'h', b'i', // client_id "nisshi"
        0x00,                                     // header _tagged_fields: none
        // FetchRequest v12
        0xff, 0xff, 0xff, 0xff,                   // replica_id: int32 = -1 (consumer)
        0x00, 0x00, 0x01, 0xf4,                   // max_wait_ms: int32 = 500
        0x00, 0x00, 0x00, 0x01,                   // min_bytes: int32 = 1
        0x03, 0x20, 0x00, 0x00,                   // max_bytes: int32 = 52428800 (50 MiB)
        0x01,                                     // isolation_level: int8 = 1 (READ_COMMITTED)
        0x00, 0x00, 0x00, 0x00,                   // session_id: int32 = 0
        0xff, 0xff, 0xff, 0xff,                   // session_epoch: int32 = -1
        0x02,                                     // topics: COMPACT_ARRAY, 1 element
        0x07, b'e', b'v', b'e', b'n', b't', b's', //   topic: COMPACT_STRING "events"
        0x02,                                     //   partitions: COMPACT_ARRAY, 1 element
        0x00, 0x00, 0x00, 0x00,                   //     partition: int32 = 0
        0xff, 0xff, 0xff, 0xff,                   //     current_leader_epoch: int32 = -1
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // fetch_offset: int64 = 0
        0xff, 0xff, 0xff, 0xff,                   //     last_fetched_epoch: int32 = -1
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // log_start_offset: int64 = -1
        0x00, 0x10, 0x00, 0x00,                   //     partition_max_bytes: int32 = 1048576
        0x00,                                     //     partitions _tagged_fields: none
        0x00,                                     //   topics _tagged_fields: none
        0x01,                                     // forgotten_topics_data: COMPACT_ARRAY, 0 elements
        0x01,                                     // rack_id: COMPACT_STRING "" (0 + 1)
        0x00,                                     // _tagged_fields: none (cluster_id, tag 0, null so omitted)
    ];
    check_size_prefix(expected);
    assert_golden("Fetch v12", &encode(0x7fff_fffe, 12, &body), expected);
}

// ---------------------------------------------- ApiVersionsResponse v3

/// Protocol guide: `ApiVersions Response (Version: 3) => error_code [api_keys]
/// throttle_time_ms _tagged_fields`, `api_keys => api_key min_version max_version
/// _tagged_fields`; response header v0 (ApiVersions responses always use v0 so a
/// client can read the answer to a version the broker does not support).
/// Tagged fields of the body: 0 supported_features, 1 finalized_features_epoch,
/// 2 finalized_features, 3 zk_migration_ready; tag 9 is unknown and must be kept.
#[test]
fn api_versions_v3_response_decodes() {
    #[rustfmt::skip]
    let frame: &[u8] = &[
        // Response Header v0
        0x00, 0x00, 0x00, 0x07,                   // correlation_id = 7
        // ApiVersionsResponse v3
        0x00, 0x00,                               // error_code: int16 = 0
        0x03,                                     // api_keys: COMPACT_ARRAY, 2 elements (+1)
        0x00, 0x00,                               //   api_key = 0 (Produce)
        0x00, 0x03,                               //   min_version = 3
        0x00, 0x0b,                               //   max_version = 11
        0x00,                                     //   _tagged_fields: none
        0x00, 0x12,                               //   api_key = 18 (ApiVersions)
        0x00, 0x00,                               //   min_version = 0
        0x00, 0x04,                               //   max_version = 4
        0x00,                                     //   _tagged_fields: none
        0x00, 0x00, 0x00, 0x0a,                   // throttle_time_ms: int32 = 10
        0x02,                                     // _tagged_fields: 2 fields
        0x01, 0x08,                               //   tag 1 (finalized_features_epoch), size 8
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, //   int64 = 5
        0x09, 0x02,                               //   tag 9 (unknown), size 2
        0xab, 0xcd,                               //   opaque bytes
    ];
    let (header, response) = decode_response::<ApiVersionsRequest>(Bytes::from_static(frame), 3)
        .expect("decode ApiVersions v3 response");
    assert_eq!(header.correlation_id, 7);
    assert_eq!(response.error_code, 0);
    assert_eq!(response.api_keys.len(), 2);
    let keys: Vec<(i16, i16, i16)> = response
        .api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect();
    assert_eq!(keys, [(0, 3, 11), (18, 0, 4)]);
    assert!(response
        .api_keys
        .iter()
        .all(|k| k.unknown_tagged_fields.is_empty()));
    assert_eq!(response.throttle_time_ms, 10);
    assert_eq!(response.finalized_features_epoch, 5);
    assert!(response.supported_features.is_empty());
    assert!(response.finalized_features.is_empty());
    assert!(!response.zk_migration_ready);
    assert_eq!(response.unknown_tagged_fields.len(), 1);
    assert_eq!(
        response.unknown_tagged_fields.get(&9).map(|b| &b[..]),
        Some(&[0xab, 0xcd][..])
    );
}
