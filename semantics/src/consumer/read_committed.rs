//! `isolation.level=read_committed`: hides records of aborted transactions and
//! never hands control records (commit/abort markers) to the user (KIP-98).
//!
//! Apache Kafka brokers stop a read_committed fetch at the last stable offset and
//! list the aborted transactions the returned range overlaps, so the Java client
//! only has to drop batches of producers on that list until their ABORT marker.
//! The broker this client is tested against (nisshi) always sends that list empty
//! and may return open transactions, so the filter also honours the markers in
//! the log itself: a producer's transactional batches are held until its COMMIT
//! or ABORT marker arrives, which may be in a later fetch response.
//!
//! Output keeps input (offset) order: [`ReadCommittedFilter::pop`] only releases
//! from the head, so a held batch blocks every later batch of the partition.
//! Every input batch yields exactly one [`Resolved`] item, so the consumer
//! position advances over aborted data and markers as well as delivered data.
//!
//! Both sources of abort information are used together: an aborted-list entry
//! drops a batch at once (Java's approach); a marker resolves whatever is held.
//!
//! # References
//! - KIP-98, "Exactly Once Delivery and Transactional Messaging".
//! - Java client: `CompletedFetch#nextFetchedRecord`, `abortedProducerIds`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};

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

/// A queued batch: resolved, or waiting for its producer's marker.
#[derive(Debug)]
enum Slot {
    Ready(Resolved),
    Held(RecordBatch),
}

/// Per-partition read_committed state; lives across fetches, reset on seek.
#[derive(Debug, Default)]
pub struct ReadCommittedFilter {
    /// Batches in offset order, resolved or held.
    queue: VecDeque<Slot>,
    /// Sequence number of `queue[0]`; slot `seq` sits at `seq - head_seq`.
    /// Sequence numbers keep `held_by` valid while the queue drains.
    head_seq: u64,
    /// Held slots per producer, in offset order.
    held_by: HashMap<i64, Vec<u64>>,
    /// Number of held slots.
    held: usize,
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

    /// Forgets held batches and abort state (after a seek or a partition
    /// reassignment).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Adds the aborted-transactions list of one fetch response (call before
    /// pushing that response's batches).
    pub fn add_aborted(&mut self, aborted: &[AbortedTransaction]) {
        self.pending_aborts.extend(
            aborted
                .iter()
                .map(|a| Reverse((a.first_offset, a.producer_id))),
        );
    }

    /// Feeds the next batch in offset order.
    pub fn push(&mut self, batch: RecordBatch) {
        let header = batch.header;
        self.activate_aborts_up_to(header.last_offset());
        let slot = if header.attributes.control {
            self.apply_marker(&batch);
            Slot::Ready(skip(&header))
        } else if !header.attributes.transactional || header.producer_id < 0 {
            // A transactional flag without a producer id can never be matched
            // by a marker; deliver it as Java does rather than block forever.
            Slot::Ready(Resolved::Deliver(batch))
        } else if self.aborted_producers.contains(&header.producer_id) {
            Slot::Ready(skip(&header))
        } else {
            let seq = self.head_seq + self.queue.len() as u64;
            self.held_by
                .entry(header.producer_id)
                .or_default()
                .push(seq);
            self.held += 1;
            Slot::Held(batch)
        };
        self.queue.push_back(slot);
    }

    /// Next resolved item in offset order, or `None` while the head is held
    /// waiting for its marker (or nothing is queued).
    pub fn pop(&mut self) -> Option<Resolved> {
        if !matches!(self.queue.front(), Some(Slot::Ready(_))) {
            return None;
        }
        self.head_seq += 1;
        match self.queue.pop_front() {
            Some(Slot::Ready(resolved)) => Some(resolved),
            _ => None,
        }
    }

    /// Number of batches held waiting for a marker (for metrics / memory bounds).
    pub fn held(&self) -> usize {
        self.held
    }

    /// Number of batches queued, held or resolved behind a held head (the
    /// memory the filter keeps).
    pub fn queued(&self) -> usize {
        self.queue.len()
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

    /// Resolves the held batches of the marker's producer.
    fn apply_marker(&mut self, batch: &RecordBatch) {
        let commit = match batch.control_record() {
            Some(Ok(marker)) => match marker.kind {
                ControlType::Commit => true,
                ControlType::Abort => false,
                // Unknown control types are not user data and end no transaction.
                ControlType::Unknown(_) => return,
            },
            // Unreadable or empty control batch: skip it, resolve nothing.
            Some(Err(_)) | None => return,
        };
        let producer_id = batch.header.producer_id;
        if !commit {
            self.aborted_producers.remove(&producer_id);
        }
        for seq in self.held_by.remove(&producer_id).unwrap_or_default() {
            let Some(slot) = usize::try_from(seq - self.head_seq)
                .ok()
                .and_then(|i| self.queue.get_mut(i))
            else {
                continue;
            };
            let placeholder = Slot::Ready(Resolved::Skip { next_offset: 0 });
            *slot = match std::mem::replace(slot, placeholder) {
                Slot::Held(held) => {
                    self.held -= 1;
                    Slot::Ready(if commit {
                        Resolved::Deliver(held)
                    } else {
                        skip(&held.header)
                    })
                }
                ready => ready,
            };
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
