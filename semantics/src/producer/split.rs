//! Splitting a batch the broker refused as too large (MESSAGE_TOO_LARGE):
//! the topic's `max.message.bytes` is below `batch.size`, or compression did
//! worse than expected. The pieces take the batch's place in its partition
//! queue, its deadline and, under idempotence, its range of sequence numbers,
//! so records keep their order and nothing is renumbered — the broker wrote
//! none of the refused batch. Each split at least halves the batch; a single
//! record too large fails alone.

use kafka_wire::records::{BatchBuilder, Compression, DecodeOptions, ProducerState, RecordBatch};

use super::accumulator::ClosedBatch;
use super::delivery::BatchOutcome;
use super::sequence::increment_sequence;

/// Why a refused batch cannot be split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unsplittable {
    /// One record: nothing smaller to send.
    SingleRecord,
    /// The batch was split so often that its order range is used up.
    TooManySplits,
    /// The sealed bytes do not decode (they are this producer's own).
    Undecodable(String),
}

/// The pieces of `batch`, none larger than half of it or `batch_size`,
/// with their outcomes; the batch's own outcome is handed over to them.
pub(crate) fn split(
    batch: &ClosedBatch,
    compression: Compression,
    transactional: bool,
    batch_size: usize,
) -> Result<Vec<ClosedBatch>, Unsplittable> {
    if batch.record_count <= 1 {
        return Err(Unsplittable::SingleRecord);
    }
    let sealed = batch
        .sealed
        .as_ref()
        .ok_or_else(|| Unsplittable::Undecodable("the batch was never sealed".into()))?;
    let (decoded, _) = RecordBatch::decode(sealed, &DecodeOptions::default())
        .map_err(|e| Unsplittable::Undecodable(e.to_string()))?;
    let records = decoded.records;
    if records.len() <= 1 {
        return Err(Unsplittable::SingleRecord);
    }
    let target = (sealed.len() / 2).min(batch_size).max(1);
    let new_builder =
        || BatchBuilder::with_capacity(compression, target).transactional(transactional);
    // (first offset delta, builder) per piece.
    let mut pieces: Vec<(i32, BatchBuilder)> = vec![(0, new_builder())];
    for (index, record) in records.iter().enumerate() {
        let (key, value) = (record.key.as_deref(), record.value.as_deref());
        let (_, builder) = pieces.last_mut().expect("one piece at least");
        let size = builder.record_size(record.timestamp, key, value, &record.headers);
        let piece_is_full = !builder.is_empty() && builder.size_in_bytes() + size > target;
        // Two pieces at least, even when the records fit `target` uncompressed.
        let last_half = pieces.len() == 1 && index == records.len().div_ceil(2);
        if piece_is_full || last_half {
            pieces.push((index as i32, new_builder()));
        }
        let (_, builder) = pieces.last_mut().expect("one piece at least");
        builder.append(record.timestamp, key, value, &record.headers);
    }
    let span = batch.order_span / pieces.len() as u64;
    if span == 0 {
        return Err(Unsplittable::TooManySplits);
    }
    let outcome = &batch.outcome;
    let mut charged = 0;
    let count = pieces.len();
    let mut split = Vec::with_capacity(count);
    let mut handed_over = Vec::with_capacity(count);
    for (i, (first_delta, builder)) in pieces.into_iter().enumerate() {
        // The pieces carry the batch's charge to `buffer.memory` between them.
        let buffer_bytes = if i + 1 == count {
            batch.buffer_bytes.saturating_sub(charged)
        } else {
            builder.size_in_bytes().min(batch.buffer_bytes - charged)
        };
        charged += buffer_bytes;
        let piece_outcome = BatchOutcome::new(outcome.id, outcome.topic.clone(), outcome.partition);
        handed_over.push((first_delta, piece_outcome.clone()));
        split.push(ClosedBatch {
            outcome: piece_outcome,
            record_count: builder.record_count(),
            builder: Some(builder),
            sealed: None,
            stamp: piece_stamp(batch.stamp, first_delta),
            created: batch.created,
            buffer_bytes,
            order: batch.order + i as u64 * span,
            order_span: span,
            attempts: batch.attempts,
            retry_at: None,
            last_error: batch.last_error.clone(),
            in_doubt: batch.in_doubt,
            sent_alone: false,
            awaiting_answer: false,
        });
    }
    outcome.split_into(handed_over);
    Ok(split)
}

/// A piece's stamp: the batch's, with the sequence of its first record.
fn piece_stamp(stamp: ProducerState, first_delta: i32) -> ProducerState {
    if stamp == ProducerState::NONE {
        return stamp;
    }
    ProducerState {
        base_sequence: increment_sequence(stamp.base_sequence, first_delta),
        ..stamp
    }
}

#[cfg(test)]
#[path = "split_tests.rs"]
mod tests;
