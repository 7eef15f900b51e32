use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use kafka_wire::records::{BatchBuilder, Compression, DecodeOptions, ProducerState, RecordBatch};

use super::{split, Unsplittable};
use crate::producer::accumulator::ClosedBatch;
use crate::producer::delivery::{BatchAck, BatchOutcome, DeliveryFuture};

const SPAN: u64 = 1 << 20;

/// A sealed batch of `count` records of 100-byte values, stamped at `base`.
fn sealed_batch(count: usize, base_sequence: i32) -> ClosedBatch {
    let mut builder = BatchBuilder::new(Compression::None);
    for i in 0..count {
        let value = format!("{i:0>100}");
        builder.append(1_000 + i as i64, Some(b"k"), Some(value.as_bytes()), &[]);
    }
    let stamp = ProducerState {
        producer_id: 7,
        producer_epoch: 3,
        base_sequence,
    };
    let sealed = builder.build(stamp).unwrap();
    ClosedBatch {
        outcome: BatchOutcome::new(42, Arc::from("t"), 1),
        builder: None,
        buffer_bytes: sealed.len(),
        sealed: Some(sealed),
        stamp,
        record_count: count as i32,
        created: Instant::now(),
        order: 5 * SPAN,
        order_span: SPAN,
        attempts: 1,
        retry_at: None,
        last_error: None,
        in_doubt: false,
        sent_alone: true,
        awaiting_answer: true,
    }
}

fn values(batch: ClosedBatch) -> (ProducerState, Vec<Bytes>) {
    let mut batch = batch;
    let stamp = batch.stamp;
    let bytes = batch.builder.take().unwrap().build(stamp).unwrap();
    batch
        .outcome
        .complete(Err(crate::producer::error::ProduceError::Closed));
    let (decoded, _) = RecordBatch::decode(&bytes, &DecodeOptions::default()).unwrap();
    let values = decoded
        .records
        .into_iter()
        .map(|r| r.value.unwrap())
        .collect();
    let header = decoded.header;
    let stamp = ProducerState {
        producer_id: header.producer_id,
        producer_epoch: header.producer_epoch,
        base_sequence: header.base_sequence,
    };
    (stamp, values)
}

#[test]
fn pieces_keep_order_sequences_and_the_memory_charge() {
    let batch = sealed_batch(100, i32::MAX - 10);
    let pieces = split(&batch, Compression::None, false, 16_384).unwrap();
    assert!(pieces.len() >= 2);
    let half = batch.sealed.as_ref().unwrap().len() / 2;
    let charged: usize = pieces.iter().map(|p| p.buffer_bytes).sum();
    assert_eq!(charged, batch.buffer_bytes);
    let mut expected_sequence = i32::MAX - 10;
    let mut seen = Vec::new();
    let mut last_order = None;
    for piece in pieces {
        assert!(piece.builder.as_ref().unwrap().size_in_bytes() <= half);
        assert!(piece.order >= batch.order && piece.order < batch.order + SPAN);
        assert!(last_order < Some(piece.order));
        last_order = Some(piece.order);
        let count = piece.record_count;
        let (stamp, values) = values(piece);
        assert_eq!(
            stamp.base_sequence, expected_sequence,
            "sequences wrap at i32::MAX"
        );
        assert_eq!((stamp.producer_id, stamp.producer_epoch), (7, 3));
        expected_sequence = crate::producer::sequence::increment_sequence(expected_sequence, count);
        seen.extend(values);
    }
    let original: Vec<Bytes> = (0..100)
        .map(|i| Bytes::from(format!("{i:0>100}")))
        .collect();
    assert_eq!(seen, original);
}

#[test]
fn a_single_record_cannot_be_split() {
    let batch = sealed_batch(1, 0);
    assert_eq!(
        split(&batch, Compression::None, false, 16_384).err(),
        Some(Unsplittable::SingleRecord)
    );
}

#[tokio::test]
async fn futures_of_a_split_batch_resolve_through_its_pieces_twice_over() {
    let batch = sealed_batch(8, 0);
    let futures: Vec<DeliveryFuture> = (0..8)
        .map(|i| DeliveryFuture::pending(batch.outcome.clone(), i, 1_000 + i64::from(i)))
        .collect();
    let mut pieces = split(&batch, Compression::None, false, 16_384).unwrap();
    assert!(batch.outcome.is_complete(), "handed over to the pieces");
    drop(batch);
    // Split the first piece again, as a second MESSAGE_TOO_LARGE would.
    let mut first = pieces.remove(0);
    let stamp = first.stamp;
    first.sealed = Some(first.builder.take().unwrap().build(stamp).unwrap());
    let again = split(&first, Compression::None, false, 16_384).unwrap();
    drop(first);
    let mut base_offset = 100;
    for piece in again.iter().chain(pieces.iter()) {
        piece.outcome.complete(Ok(BatchAck {
            base_offset,
            log_append_time: None,
        }));
        base_offset += i64::from(piece.record_count) * 10;
    }
    let mut offsets = Vec::new();
    for future in futures {
        offsets.push(future.await.unwrap().offset);
    }
    let mut expected = Vec::new();
    let mut base_offset = 100;
    for piece in again.iter().chain(pieces.iter()) {
        expected.extend((0..i64::from(piece.record_count)).map(|d| base_offset + d));
        base_offset += i64::from(piece.record_count) * 10;
    }
    assert_eq!(offsets, expected);
}
