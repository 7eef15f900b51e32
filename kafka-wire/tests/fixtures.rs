//! Captured Fetch v12 responses, decoded without a broker.
//!
//! `tests/fixtures/fetch_v12_*.bin` are raw response frames (response header +
//! body, no size prefix) that nisshi 0.7.0 sent for records librdkafka 2.16
//! produced, captured with `cargo run -p harness -- capture-fixtures --out
//! kafka-wire/tests/fixtures` (see harness/src/fixtures.rs and
//! harness/tests/interop/rdkafka.py for the content). The bytes of every batch
//! are librdkafka's own: compression, varints and headers as it writes them.
//!
//! Record `i` of every file: key `key-{i}`, value `{prefix}-value-{i}`,
//! timestamp 1_700_000_000_000 + i, headers dup=1, dup=2, null=(null).

use bytes::Bytes;
use kafka_wire::codec::decode_response;
use kafka_wire::protocol::messages::fetch_response::PartitionData;
use kafka_wire::protocol::messages::FetchRequest;
use kafka_wire::records::{BatchReader, Compression, ControlType, Header, Record, RecordBatch};

const FETCH_VERSION: i16 = 12;
const BASE_TIMESTAMP: i64 = 1_700_000_000_000;
/// The transactions run: outcome of each transaction, in log order.
const TRANSACTIONS: [(&str, ControlType); 3] = [
    ("commit", ControlType::Commit),
    ("abort", ControlType::Abort),
    ("commit", ControlType::Commit),
];

/// Loads a fixture and decodes it as a Fetch v12 response; returns its only partition.
fn partition(name: &str) -> PartitionData {
    let path = format!(
        "{}/tests/fixtures/fetch_v12_{name}.bin",
        env!("CARGO_MANIFEST_DIR")
    );
    let frame = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (_, response) = decode_response::<FetchRequest>(Bytes::from(frame), FETCH_VERSION)
        .expect("decode Fetch v12");
    assert_eq!(response.error_code, 0, "{name}: top-level error code");
    assert_eq!(response.responses.len(), 1, "{name}: topics");
    let topic = &response.responses[0];
    assert!(
        topic.topic.starts_with("fixture-"),
        "{name}: topic name {:?}",
        topic.topic
    );
    assert_eq!(topic.partitions.len(), 1, "{name}: partitions");
    let partition = topic.partitions[0].clone();
    assert_eq!(
        (partition.partition_index, partition.error_code),
        (0, 0),
        "{name}: partition"
    );
    partition
}

fn batches(name: &str, partition: &PartitionData) -> Vec<RecordBatch> {
    let records = partition.records.clone().expect("records");
    let mut reader = BatchReader::new(records);
    let batches: Vec<RecordBatch> = reader
        .by_ref()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        !reader.truncated_tail(),
        "{name}: the capture holds whole batches only"
    );
    batches
}

fn expected_headers() -> Vec<Header> {
    vec![
        Header::new("dup", "1"),
        Header::new("dup", "2"),
        Header {
            key: Bytes::from_static(b"null"),
            value: None,
        },
    ]
}

/// Checks record `i` of the deterministic content, at `offset`.
fn assert_record(record: &Record, offset: i64, prefix: &str, i: usize) {
    let what = format!("{prefix} record {i}");
    assert_eq!(record.offset, offset, "{what}: offset");
    assert_eq!(
        record.key.as_deref(),
        Some(format!("key-{i}").as_bytes()),
        "{what}: key"
    );
    assert_eq!(
        record.value.as_deref(),
        Some(format!("{prefix}-value-{i}").as_bytes()),
        "{what}: value"
    );
    assert_eq!(
        record.timestamp,
        BASE_TIMESTAMP + i as i64,
        "{what}: timestamp"
    );
    assert_eq!(
        record.headers,
        expected_headers(),
        "{what}: headers (order, duplicates, null)"
    );
}

#[test]
fn librdkafka_batches_decode_for_every_codec() {
    for codec in Compression::ALL {
        let name = codec.name();
        let partition = partition(name);
        // The log holds exactly these ten records.
        assert_eq!(
            (partition.high_watermark, partition.last_stable_offset),
            (10, 10),
            "{name}: watermarks"
        );
        let batches = batches(name, &partition);
        assert_eq!(
            batches.len(),
            1,
            "{name}: librdkafka lingered, so one batch"
        );
        let batch = &batches[0];
        let header = &batch.header;
        assert_eq!(
            header.attributes.compression, codec,
            "{name}: compression attribute"
        );
        assert!(
            !header.attributes.transactional && !header.attributes.control,
            "{name}: plain batch"
        );
        assert_eq!(
            (
                header.base_offset,
                header.last_offset_delta,
                header.records_count
            ),
            (0, 9, 10),
            "{name}"
        );
        // librdkafka 2.16 without enable.idempotence: no producer id.
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.base_sequence
            ),
            (-1, -1, -1),
            "{name}"
        );
        assert_eq!(
            (header.base_timestamp, header.max_timestamp),
            (BASE_TIMESTAMP, BASE_TIMESTAMP + 9),
            "{name}"
        );
        assert_eq!(batch.records.len(), 10, "{name}: records");
        for (i, record) in batch.records.iter().enumerate() {
            assert_record(record, i as i64, name, i);
        }
    }
}

#[test]
fn librdkafka_transactions_leave_commit_abort_commit_markers() {
    let partition = partition("transactions");
    assert_eq!(
        (partition.high_watermark, partition.last_stable_offset),
        (18, 18),
        "watermarks"
    );
    // nisshi 0.7.0 sends an empty aborted-transactions list even for the
    // aborted transaction (shared/BROKER.md): only the markers tell.
    assert_eq!(
        partition.aborted_transactions.as_deref().map(<[_]>::len),
        Some(0),
        "aborted transactions list"
    );
    let batches = batches("transactions", &partition);
    // As captured: data batch, marker, data batch, marker, data batch, marker —
    // data at offsets 0–4, 6–10, 12–16 and markers at 5, 11, 17.
    assert_eq!(batches.len(), 6, "batches");
    let producer_id = batches[0].header.producer_id;
    assert!(
        producer_id >= 0,
        "transactional batches carry a producer id, got {producer_id}"
    );
    for (t, (pair, (outcome, kind))) in batches.chunks(2).zip(TRANSACTIONS).enumerate() {
        let (data, marker) = (&pair[0], &pair[1]);
        let first = 6 * t as i64;
        // Data: transactional, one producer, sequences continuing across transactions.
        assert!(
            data.header.attributes.transactional && !data.header.attributes.control,
            "data batch {t}"
        );
        assert_eq!(
            (data.header.producer_id, data.header.producer_epoch),
            (producer_id, 0),
            "data batch {t}"
        );
        assert_eq!(
            (data.header.base_offset, data.header.base_sequence),
            (first, 5 * t as i32),
            "data batch {t}"
        );
        assert_eq!(data.records.len(), 5, "data batch {t}");
        for (i, record) in data.records.iter().enumerate() {
            assert_record(record, first + i as i64, &format!("txn{t}-{outcome}"), i);
        }
        // Marker: a transactional control batch of the same producer, one record.
        let attributes = marker.header.attributes;
        assert!(
            attributes.transactional && attributes.control,
            "marker {t} attributes"
        );
        assert_eq!(
            (marker.header.producer_id, marker.header.base_offset),
            (producer_id, first + 5),
            "marker {t}"
        );
        let control = marker
            .control_record()
            .expect("a control batch")
            .expect("a valid control record");
        assert_eq!((control.version, control.kind), (0, kind), "marker {t}");
    }
}
