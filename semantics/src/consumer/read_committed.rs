//! `isolation.level=read_committed`: hides records of aborted transactions and
//! never hands control records (commit/abort markers) to the user (KIP-98).
//!
//! Kafka brokers stop a read_committed fetch at the last stable offset (LSO),
//! so every transactional batch a response carries belongs to a transaction
//! that is already decided, and the response lists the aborted transactions
//! its range overlaps (producer id, first offset). A batch is therefore
//! resolved the moment it arrives, as the Java client resolves it: dropped
//! while its producer is inside a listed aborted transaction (from the
//! entry's first offset to that producer's ABORT marker), delivered
//! otherwise. Nothing is held waiting for a marker, so the filter keeps no
//! records and read_committed buffering is the prefetch bound's alone.
//!
//! A broker that sent undecided batches or an empty aborted list (nisshi
//! 0.7.0 did both) would show aborted records here; Apache Kafka, and the
//! brokers that implement KIP-98 as it does, never do.
//!
//! Every input batch yields exactly one [`Resolved`] item, so the consumer
//! position advances over aborted data and markers as well as delivered data.
//!
//! # References
//! - KIP-98, "Exactly Once Delivery and Transactional Messaging".
//! - Java client: `CompletedFetch#nextFetchedRecord`, `abortedProducerIds`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use kafka_wire::records::batch::BatchHeader;
use kafka_wire::records::{ControlType, RecordBatch};

/// One entry of a Fetch response's aborted-transactions list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTransaction {
    /// Producer whose transaction was aborted.
    pub producer_id: i64,
    /// Offset of the transaction's first batch.
    pub first_offset: i64,
}

/// What the consumer may do next, in offset order.
#[derive(Debug)]
pub enum Resolved {
    /// Committed (or non-transactional) data: deliver these records.
    Deliver(RecordBatch),
    /// Nothing to deliver up to `next_offset` (an aborted batch, or a control
    /// marker): advance the position past it.
    Skip {
        /// Offset just past the skipped batch.
        next_offset: i64,
    },
}

impl Resolved {
    /// Offset the consumer position moves to once this item is consumed.
    pub fn next_offset(&self) -> i64 {
        match self {
            Self::Deliver(batch) => batch.header.next_offset(),
            Self::Skip { next_offset } => *next_offset,
        }
    }
}

/// read_uncommitted: every data batch is delivered, control batches are skipped.
pub fn resolve_uncommitted(batch: RecordBatch) -> Resolved {
    if batch.header.attributes.control {
        skip(&batch.header)
    } else {
        Resolved::Deliver(batch)
    }
}

/// Per-partition read_committed state; lives across fetches, reset on seek.
#[derive(Debug, Default)]
pub struct ReadCommittedFilter {
    /// Aborted-list entries not reached yet, smallest first offset first (the
    /// same priority queue as Java's): one producer may have several aborted
    /// transactions in one response, and only the one begun is active.
    pending_aborts: BinaryHeap<Reverse<(i64, i64)>>,
    /// Producers inside a listed aborted transaction, until its ABORT marker.
    aborted_producers: HashSet<i64>,
}

impl ReadCommittedFilter {
    /// An empty filter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets the abort state (after a seek or a partition reassignment).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Adds the aborted-transactions list of one fetch response (call before
    /// resolving that response's batches).
    pub fn add_aborted(&mut self, aborted: &[AbortedTransaction]) {
        self.pending_aborts.extend(
            aborted
                .iter()
                .map(|a| Reverse((a.first_offset, a.producer_id))),
        );
    }

    /// Resolves the next batch in offset order.
    pub fn resolve(&mut self, batch: RecordBatch) -> Resolved {
        let header = batch.header;
        self.activate_aborts_up_to(header.last_offset());
        if header.attributes.control {
            self.apply_marker(&batch);
            skip(&header)
        } else if header.attributes.transactional
            && header.producer_id >= 0
            && self.aborted_producers.contains(&header.producer_id)
        {
            skip(&header)
        } else {
            Resolved::Deliver(batch)
        }
    }

    /// Moves aborted-list entries that start at or before `offset` to the active
    /// set. Offsets only grow, so an entry reached by any batch is reached for
    /// its producer too.
    fn activate_aborts_up_to(&mut self, offset: i64) {
        while let Some(&Reverse((first_offset, producer_id))) = self.pending_aborts.peek() {
            if first_offset > offset {
                break;
            }
            self.pending_aborts.pop();
            self.aborted_producers.insert(producer_id);
        }
    }

    /// An ABORT marker ends its producer's aborted transaction; a COMMIT
    /// marker, an unknown control type or an unreadable control batch ends
    /// nothing (none of them is user data either).
    fn apply_marker(&mut self, batch: &RecordBatch) {
        if let Some(Ok(marker)) = batch.control_record() {
            if marker.kind == ControlType::Abort {
                self.aborted_producers.remove(&batch.header.producer_id);
            }
        }
    }
}

fn skip(header: &BatchHeader) -> Resolved {
    Resolved::Skip {
        next_offset: header.next_offset(),
    }
}

#[cfg(test)]
#[path = "read_committed_tests.rs"]
mod tests;
