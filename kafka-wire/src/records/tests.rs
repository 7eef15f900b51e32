//! Record batch tests: round trips, hostile bytes, control records.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::batch::{decode_all, DecodeOptions};
use super::builder::restamp;
use super::*;

/// Timestamp, key, value, headers.
type Row<'a> = (i64, Option<&'a [u8]>, Option<&'a [u8]>, Vec<Header>);

fn build(records: &[Row<'_>], codec: Compression, producer: ProducerState) -> Bytes {
    let mut builder = BatchBuilder::new(codec);
    for (timestamp, key, value, headers) in records {
        builder.append(*timestamp, *key, *value, headers);
    }
    builder.build(producer).unwrap()
}

fn decode_one(bytes: &Bytes) -> RecordBatch {
    let mut batches = decode_all(bytes.clone(), &DecodeOptions::default()).unwrap();
    assert_eq!(batches.len(), 1);
    batches.remove(0)
}

#[test]
fn headers_keep_duplicates_and_nulls() {
    let headers = vec![
        Header::new("trace", "a"),
        Header::new("trace", "b"),
        Header {
            key: Bytes::from_static(b"empty"),
            value: None,
        },
    ];
    let bytes = build(
        &[(1_000, Some(b"k"), None, headers.clone())],
        Compression::None,
        ProducerState::NONE,
    );
    let batch = decode_one(&bytes);
    assert_eq!(batch.records[0].headers, headers);
    assert_eq!(batch.records[0].value, None);
}

#[test]
fn timestamp_delta_beyond_i32_is_a_varlong() {
    // 40 days between records: more than an i32 of milliseconds (PITFALLS.md).
    let later = 1_700_000_000_000 + 40 * 24 * 3_600_000;
    let bytes = build(
        &[
            (1_700_000_000_000, None, Some(b"a"), vec![]),
            (later, None, Some(b"b"), vec![]),
        ],
        Compression::None,
        ProducerState::NONE,
    );
    let batch = decode_one(&bytes);
    assert_eq!(batch.records[1].timestamp, later);
    assert_eq!(batch.header.max_timestamp, later);
}

#[test]
fn producer_fields_and_offsets() {
    let producer = ProducerState {
        producer_id: 42,
        producer_epoch: 3,
        base_sequence: 1_000,
    };
    let mut builder = BatchBuilder::new(Compression::None)
        .base_offset(500)
        .transactional(true);
    builder.append(5, None, Some(b"x"), &[]);
    builder.append(6, None, Some(b"y"), &[]);
    let batch = decode_one(&builder.build(producer).unwrap());
    assert_eq!(batch.header.producer_id, 42);
    assert_eq!(batch.header.producer_epoch, 3);
    assert_eq!(batch.header.base_sequence, 1_000);
    assert!(batch.header.attributes.transactional);
    assert_eq!(
        batch.records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        [500, 501]
    );
    assert_eq!(batch.header.next_offset(), 502);
}

#[test]
fn restamp_changes_producer_fields_and_keeps_the_crc_valid() {
    let bytes = build(
        &[(1, None, Some(b"v"), vec![])],
        Compression::Lz4,
        ProducerState::NONE,
    );
    let mut raw = BytesMut::from(&bytes[..]);
    let bumped = ProducerState {
        producer_id: 7,
        producer_epoch: 1,
        base_sequence: 0,
    };
    restamp(&mut raw, bumped).unwrap();
    let batch = decode_one(&raw.freeze());
    assert_eq!(
        (
            batch.header.producer_id,
            batch.header.producer_epoch,
            batch.header.base_sequence
        ),
        (7, 1, 0)
    );
}

#[test]
fn log_append_time_gives_every_record_the_max_timestamp() {
    let mut builder =
        BatchBuilder::new(Compression::None).timestamp_type(TimestampType::LogAppendTime);
    builder.append(10, None, Some(b"a"), &[]);
    builder.append(20, None, Some(b"b"), &[]);
    let batch = decode_one(&builder.build(ProducerState::NONE).unwrap());
    assert!(batch.records.iter().all(|r| r.timestamp == 20));
}

#[test]
fn control_type_comes_from_the_key() {
    for kind in [ControlType::Commit, ControlType::Abort] {
        let marker = ControlRecord {
            version: 0,
            kind,
            coordinator_epoch: Some(9),
        };
        let mut builder = BatchBuilder::new(Compression::None)
            .control(true)
            .transactional(true);
        builder.append(
            0,
            Some(&marker.key_bytes()),
            Some(&marker.value_bytes()),
            &[],
        );
        let batch = decode_one(
            &builder
                .build(ProducerState {
                    producer_id: 1,
                    producer_epoch: 0,
                    base_sequence: -1,
                })
                .unwrap(),
        );
        assert_eq!(batch.control_record().unwrap().unwrap(), marker);
    }
}

#[test]
fn control_record_with_a_short_key_is_an_error() {
    let mut builder = BatchBuilder::new(Compression::None).control(true);
    builder.append(0, Some(&[0, 0]), None, &[]);
    let batch = decode_one(&builder.build(ProducerState::NONE).unwrap());
    assert!(batch.control_record().unwrap().is_err());
}

#[test]
fn a_truncated_trailing_batch_is_skipped_not_an_error() {
    let first = build(
        &[(1, None, Some(b"one"), vec![])],
        Compression::None,
        ProducerState::NONE,
    );
    let second = build(
        &[(2, None, Some(b"two"), vec![])],
        Compression::None,
        ProducerState::NONE,
    );
    for cut in 1..second.len() {
        let mut data = BytesMut::from(&first[..]);
        data.extend_from_slice(&second[..cut]);
        let mut reader = BatchReader::new(data.freeze());
        assert_eq!(
            reader.next().unwrap().unwrap().records[0].value.as_deref(),
            Some(&b"one"[..])
        );
        assert!(reader.next().is_none(), "cut at {cut}");
        assert!(reader.truncated_tail());
    }
}

#[test]
fn a_flipped_bit_is_a_crc_error() {
    let bytes = build(
        &[(1, Some(b"key"), Some(b"value"), vec![])],
        Compression::None,
        ProducerState::NONE,
    );
    let mut corrupt = bytes.to_vec();
    let last = corrupt.len() - 2;
    corrupt[last] ^= 0x01;
    let result = RecordBatch::decode(&Bytes::from(corrupt), &DecodeOptions::default());
    assert!(
        matches!(result, Err(RecordsError::Crc { .. })),
        "{result:?}"
    );
}

#[test]
fn old_magic_is_refused() {
    let bytes = build(
        &[(1, None, Some(b"v"), vec![])],
        Compression::None,
        ProducerState::NONE,
    );
    let mut old = bytes.to_vec();
    old[MAGIC_OFFSET] = 1;
    let mut reader = BatchReader::new(Bytes::from(old));
    assert_eq!(reader.next(), Some(Err(RecordsError::UnsupportedMagic(1))));
    assert_eq!(reader.next(), None);
}

#[test]
fn huge_record_count_does_not_allocate_from_the_field() {
    let bytes = build(
        &[(1, None, Some(b"v"), vec![])],
        Compression::None,
        ProducerState::NONE,
    );
    let mut forged = bytes.to_vec();
    forged[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    let crc = crc32c::crc32c(&forged[ATTRIBUTES_OFFSET..]);
    forged[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    let result = RecordBatch::decode(&Bytes::from(forged), &DecodeOptions::default());
    assert!(
        matches!(result, Err(RecordsError::Truncated { .. })),
        "{result:?}"
    );
}

fn arb_header() -> impl Strategy<Value = Header> {
    (
        proptest::collection::vec(any::<u8>(), 0..8),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
    )
        .prop_map(|(key, value)| Header {
            key: Bytes::from(key),
            value: value.map(Bytes::from),
        })
}

type ArbRecord = (i64, Option<Vec<u8>>, Option<Vec<u8>>, Vec<Header>);

fn arb_record() -> impl Strategy<Value = ArbRecord> {
    (
        -1i64..4_000_000_000_000,
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..32)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
        proptest::collection::vec(arb_header(), 0..4),
    )
}

proptest! {
    #[test]
    fn batches_round_trip(
        records in proptest::collection::vec(arb_record(), 1..40),
        codec in 0u8..5,
        base_offset in 0i64..1 << 40,
        producer_id in -1i64..1 << 40,
        base_sequence in -1i32..i32::MAX,
    ) {
        let codec = Compression::from_id(codec).unwrap();
        let producer = ProducerState { producer_id, producer_epoch: 5, base_sequence };
        let mut builder = BatchBuilder::new(codec).base_offset(base_offset);
        for (timestamp, key, value, headers) in &records {
            builder.append(*timestamp, key.as_deref(), value.as_deref(), headers);
        }
        let batch = decode_one(&builder.build(producer).unwrap());
        prop_assert_eq!(batch.header.records_count as usize, records.len());
        prop_assert_eq!(batch.header.attributes.compression, codec);
        prop_assert_eq!(batch.header.producer_id, producer_id);
        prop_assert_eq!(batch.header.base_sequence, base_sequence);
        prop_assert_eq!(batch.header.last_offset_delta as usize, records.len() - 1);
        for (index, (decoded, (timestamp, key, value, headers))) in batch.records.iter().zip(&records).enumerate() {
            prop_assert_eq!(decoded.offset, base_offset + index as i64);
            prop_assert_eq!(decoded.timestamp, *timestamp);
            prop_assert_eq!(decoded.key.as_deref(), key.as_deref());
            prop_assert_eq!(decoded.value.as_deref(), value.as_deref());
            prop_assert_eq!(&decoded.headers, headers);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let options = DecodeOptions { max_decompressed_bytes: 1 << 16, verify_crc: false };
        for _ in BatchReader::with_options(Bytes::from(data), options) {}
    }

    #[test]
    fn mutated_batches_never_panic(
        records in proptest::collection::vec(arb_record(), 1..5),
        codec in 0u8..5,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let codec = Compression::from_id(codec).unwrap();
        let mut builder = BatchBuilder::new(codec);
        for (timestamp, key, value, headers) in &records {
            builder.append(*timestamp, key.as_deref(), value.as_deref(), headers);
        }
        let mut bytes = builder.build(ProducerState::NONE).unwrap().to_vec();
        for (index, value) in flips {
            let at = index.index(bytes.len());
            bytes[at] = value;
        }
        let options = DecodeOptions { max_decompressed_bytes: 1 << 16, verify_crc: false };
        for _ in BatchReader::with_options(Bytes::from(bytes), options) {}
    }
}
