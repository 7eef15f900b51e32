//! Per-partition batches waiting to be sent.
//!
//! Records are encoded into the partition's open batch as they arrive
//! ([`BatchBuilder`]); a batch closes when it reaches `batch.size` bytes or the
//! record limit, and then waits in the partition's queue for the sender.
//! Once `linger.ms` has passed the open batch is ready, but it stays open
//! until the sender can take it: while the partition's requests are all in
//! flight it keeps filling, as in the Java client's accumulator, instead of
//! queueing one small batch per linger. Retried batches go back to the
//! front, in their original order.
//!
//! `buffer.memory` is charged for the bytes batches allocate. A batch opens
//! with [`INITIAL_ALLOCATION`] (or what its first record needs) and doubles
//! its allocation as it fills, up to `batch.size`: large batches on many
//! partitions then cost what they hold, not `batch.size` each (the Java
//! client charges `batch.size` per batch, so 32 MiB holds 32 open 1 MB
//! batches). The caller reserves what an append asks for before retrying it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use kafka_wire::records::{BatchBuilder, Compression, Header, ProducerState};

use super::delivery::{BatchOutcome, DeliveryFuture};
use crate::fast_hash::FastMap;
use crate::producer::error::ProduceError;

/// Room in a batch's order for the pieces of splits (each split at least
/// halves a batch, so twenty levels reach single records from 1M records).
const ORDER_BITS_PER_BATCH: u32 = 20;

/// What a new batch allocates (and is charged) before it grows.
pub(crate) const INITIAL_ALLOCATION: usize = 16 * 1024;

/// A batch being filled.
pub(crate) struct OpenBatch {
    builder: BatchBuilder,
    outcome: Arc<BatchOutcome>,
    created: Instant,
    /// Bytes charged to `buffer.memory` for the batch; it grows past them
    /// only after charging more.
    buffer_bytes: usize,
}

/// A closed batch, sealed (CRC, compression) on its first send.
pub(crate) struct ClosedBatch {
    pub outcome: Arc<BatchOutcome>,
    pub builder: Option<BatchBuilder>,
    pub sealed: Option<Bytes>,
    pub stamp: ProducerState,
    pub record_count: i32,
    pub created: Instant,
    pub buffer_bytes: usize,
    /// Order of creation within the partition: retries go back in this order.
    pub order: u64,
    /// Orders from `order` up to `order + order_span` belong to this batch:
    /// the pieces of a split take theirs from that range.
    pub order_span: u64,
    pub attempts: u32,
    pub retry_at: Option<Instant>,
    pub last_error: Option<String>,
    /// An attempt may have been written (its answer never came): it keeps
    /// its sequence, and a final timeout reports the outcome as unknown.
    pub in_doubt: bool,
    /// The last attempt went out with nothing else of its partition in
    /// flight (an OUT_OF_ORDER answer then speaks about the broker's state).
    pub sent_alone: bool,
    /// Handed to a request whose answer has not been read yet.
    pub awaiting_answer: bool,
}

impl ClosedBatch {
    /// Bytes the batch takes on the wire (before compression if not sealed).
    pub fn encoded_len(&self) -> usize {
        match (&self.sealed, &self.builder) {
            (Some(sealed), _) => sealed.len(),
            (None, Some(builder)) => builder.size_in_bytes(),
            (None, None) => 0,
        }
    }
}

// Nothing is lost silently: a batch dropped before it was settled (producer
// aborted, runtime shut down) fails its records with `Closed`.
impl Drop for PartitionQueue {
    fn drop(&mut self) {
        if let Some(open) = &self.open {
            if !open.outcome.is_complete() {
                open.outcome.complete(Err(ProduceError::Closed));
            }
        }
    }
}

impl Drop for ClosedBatch {
    /// A batch whose request went out unanswered, or whose earlier attempt
    /// may have been written, is reported as outcome unknown: resending it
    /// could duplicate it. Only a batch surely not written is `Closed`.
    fn drop(&mut self) {
        if self.outcome.is_complete() {
            return;
        }
        let error = if self.awaiting_answer || self.in_doubt {
            ProduceError::DeliveryTimeout {
                elapsed_ms: self.created.elapsed().as_millis(),
                last_error: "the producer was closed before the broker answered".into(),
                outcome_unknown: true,
            }
        } else {
            ProduceError::Closed
        };
        self.outcome.complete(Err(error));
    }
}

/// One partition's queue.
#[derive(Default)]
pub(crate) struct PartitionQueue {
    open: Option<OpenBatch>,
    pub closed: VecDeque<ClosedBatch>,
    pub in_flight: usize,
    next_order: u64,
}

impl PartitionQueue {
    /// Closes the open batch, if there is one: it goes behind the closed ones.
    pub fn close_open(&mut self) {
        let Some(open) = self.open.take() else { return };
        let order = self.next_order << ORDER_BITS_PER_BATCH;
        self.next_order += 1;
        self.closed.push_back(ClosedBatch {
            record_count: open.builder.record_count(),
            outcome: open.outcome,
            builder: Some(open.builder),
            sealed: None,
            stamp: ProducerState::NONE,
            created: open.created,
            buffer_bytes: open.buffer_bytes,
            order,
            order_span: 1 << ORDER_BITS_PER_BATCH,
            attempts: 0,
            retry_at: None,
            last_error: None,
            in_doubt: false,
            sent_alone: false,
            awaiting_answer: false,
        });
    }

    /// When the open batch may be sent: once `linger` has passed since it
    /// opened, at once if `force`. `None` without an open batch.
    pub fn open_ready_at(&self, linger: std::time::Duration, force: bool) -> Option<Instant> {
        let open = self.open.as_ref()?;
        Some(if force {
            open.created
        } else {
            open.created + linger
        })
    }

    /// When the open batch was opened.
    pub fn open_created(&self) -> Option<Instant> {
        self.open.as_ref().map(|open| open.created)
    }

    /// Bytes of the batch the sender would take next: the oldest closed one,
    /// or else the open one.
    pub fn next_batch_len(&self) -> Option<usize> {
        match (self.closed.front(), &self.open) {
            (Some(front), _) => Some(front.encoded_len()),
            (None, Some(open)) => Some(open.builder.size_in_bytes()),
            (None, None) => None,
        }
    }

    /// Puts a batch back for another attempt, keeping creation order.
    pub fn requeue(&mut self, batch: ClosedBatch) {
        let at = self
            .closed
            .iter()
            .position(|b| b.order > batch.order)
            .unwrap_or(self.closed.len());
        self.closed.insert(at, batch);
    }
}

/// Batch limits from the configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchLimits {
    /// `batch.size`, at most `buffer.memory`.
    pub batch_size: usize,
    /// Bytes a batch holds besides its records (header, varint slack).
    pub batch_overhead: usize,
    pub max_records: usize,
    pub compression: Compression,
    /// Batches of a transactional producer carry the transactional flag.
    pub transactional: bool,
}

impl BatchLimits {
    /// What a new batch allocates for a first record of `record_bytes`: the
    /// initial allocation, or what the record alone needs.
    pub fn new_batch_allocation(&self, record_bytes: usize) -> usize {
        INITIAL_ALLOCATION
            .min(self.batch_size)
            .max(record_bytes + self.batch_overhead)
    }
}

/// One topic's partition queues.
pub(crate) struct TopicQueues {
    pub name: Arc<str>,
    pub partitions: Vec<PartitionQueue>,
}

/// Every partition's queue.
#[derive(Default)]
pub(crate) struct Accumulator {
    pub topics: FastMap<Arc<str>, TopicQueues>,
    /// Id of the next batch to open.
    pub next_batch_id: u64,
}

/// What an append did.
pub(crate) struct Appended {
    pub future: DeliveryFuture,
    /// A batch closed because it was full: the sender has work now.
    pub batch_closed: bool,
    /// A new batch was opened (for the in-progress count).
    pub batch_opened: bool,
    /// The id of the batch the record went to.
    pub batch_id: u64,
}

impl Accumulator {
    /// The queue of `topic`/`partition`, created on first use.
    pub fn queue(&mut self, topic: &str, partition: i32) -> (&Arc<str>, &mut PartitionQueue) {
        if !self.topics.contains_key(topic) {
            let name: Arc<str> = Arc::from(topic);
            self.topics.insert(
                name.clone(),
                TopicQueues {
                    name,
                    partitions: Vec::new(),
                },
            );
        }
        let queues = self.topics.get_mut(topic).expect("inserted above");
        let index = partition as usize;
        if queues.partitions.len() <= index {
            queues
                .partitions
                .resize_with(index + 1, PartitionQueue::default);
        }
        (&queues.name, &mut queues.partitions[index])
    }

    /// Appends a record to the partition's open batch, growing it or opening
    /// a new one as needed. Growth and new batches are paid from `credit`
    /// (bytes already reserved from `buffer.memory`); when it does not cover
    /// them, nothing changes and the bytes needed are returned.
    pub fn append(
        &mut self,
        topic: &str,
        partition: i32,
        record: &RecordParts<'_>,
        limits: BatchLimits,
        credit: &mut usize,
    ) -> Result<Appended, usize> {
        let (_, queue) = self.queue(topic, partition);
        if let Some(open) = queue.open.as_mut() {
            let needed = open.builder.size_in_bytes() + record.bytes;
            if needed <= open.buffer_bytes {
                return Ok(Self::append_open(queue, record, limits, false, false));
            }
            if needed <= limits.batch_size {
                // Doubling keeps reallocations few: a batch of batch.size
                // is copied about once in all.
                let growth = open
                    .buffer_bytes
                    .max(needed - open.buffer_bytes)
                    .min(limits.batch_size - open.buffer_bytes);
                if *credit < growth {
                    return Err(growth);
                }
                *credit -= growth;
                open.buffer_bytes += growth;
                return Ok(Self::append_open(queue, record, limits, false, false));
            }
        }
        let allocation = limits.new_batch_allocation(record.bytes);
        if *credit < allocation {
            return Err(allocation);
        }
        *credit -= allocation;
        Ok(self.append_to_new(topic, partition, record, limits, allocation))
    }

    /// Closes the partition's open batch (it has no room), opens one of
    /// `allocation` bytes — already reserved from `buffer.memory` — and
    /// appends the record to it.
    fn append_to_new(
        &mut self,
        topic: &str,
        partition: i32,
        record: &RecordParts<'_>,
        limits: BatchLimits,
        allocation: usize,
    ) -> Appended {
        let id = self.next_batch_id;
        self.next_batch_id += 1;
        let (name, queue) = self.queue(topic, partition);
        let name = name.clone();
        let batch_closed = queue.open.is_some();
        queue.close_open();
        queue.open = Some(OpenBatch {
            builder: BatchBuilder::with_capacity(limits.compression, allocation)
                .transactional(limits.transactional),
            outcome: BatchOutcome::new(id, name, partition),
            created: Instant::now(),
            buffer_bytes: allocation,
        });
        Self::append_open(queue, record, limits, true, batch_closed)
    }

    fn append_open(
        queue: &mut PartitionQueue,
        record: &RecordParts<'_>,
        limits: BatchLimits,
        batch_opened: bool,
        mut batch_closed: bool,
    ) -> Appended {
        let open = queue.open.as_mut().expect("an open batch");
        let offset_delta =
            open.builder
                .append(record.timestamp, record.key, record.value, record.headers);
        let future = DeliveryFuture::pending(open.outcome.clone(), offset_delta, record.timestamp);
        let batch_id = open.outcome.id;
        let size = open.builder.size_in_bytes();
        if size >= limits.batch_size || open.builder.record_count() as usize >= limits.max_records {
            queue.close_open();
            batch_closed = true;
        }
        Appended {
            future,
            batch_closed,
            batch_opened,
            batch_id,
        }
    }
}

/// A record to append, with its size estimate (an upper bound of what it
/// adds to a batch).
pub(crate) struct RecordParts<'a> {
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [Header],
    pub bytes: usize,
}
