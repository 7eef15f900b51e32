//! Idempotent-producer sequence bookkeeping as a pure state machine (KIP-98,
//! KIP-360). No I/O: the sender asks it what to stamp and what an error means.
//!
//! ```text
//!   assign(tp, n) ──► batch carries (pid, epoch, base) ──► broker
//!        ▲                                                  │
//!        │        ack ◄──────────── success / DUPLICATE_SEQUENCE_NUMBER
//!        │        retry in order ◄─ retriable, or OUT_OF_ORDER behind another batch
//!        └── reset(tp) ◄─────────── OUT_OF_ORDER / UNKNOWN_PRODUCER_ID at the head,
//!                                   or a hole left by a batch that failed for good
//! ```
//! Sequences are per partition and wrap from `i32::MAX` to 0. A stamped batch
//! keeps its stamp until the partition is reset. A reset concerns one
//! partition only: it takes a higher epoch of the same producer id (bumped
//! locally, as the Java client does for an idempotent producer, KIP-360; the
//! broker accepts a higher epoch that starts at sequence 0) and renumbers from
//! 0. Other partitions keep their epoch and numbering: partition leaders track
//! a producer's epoch per partition. The higher epoch also fences any late
//! copy of an old attempt still on its way to the leader.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_wire::records::ProducerState;
use kafka_wire::KafkaCode;

/// A topic-partition.
pub type TopicPartition = (Arc<str>, i32);

/// What the sender should do with a batch the broker refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceVerdict {
    /// Already in the log (DUPLICATE_SEQUENCE_NUMBER): treat as written.
    AlreadyWritten,
    /// Resend with the same stamp, after the batches before it.
    RetryInOrder,
    /// The partition's leader has none of this batch or any after it under
    /// this epoch (it lost our state, or a hole precedes the batch): reset the
    /// partition — new epoch, renumber from 0 — and resend (KIP-360).
    ResetPartition,
    /// Not a sequence matter: the caller classifies the code.
    NotSequenceRelated,
}

/// Why a partition's epoch cannot be bumped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetError {
    /// The epoch reached `i16::MAX`: a new producer id is needed first.
    EpochExhausted,
}

#[derive(Debug, Clone, Copy)]
struct PartitionSequence {
    /// Producer id and epoch this partition's numbering runs under.
    producer: (i64, i16),
    /// Base sequence for the next new batch.
    next: i32,
    /// Sequence the broker expects next, i.e. last acknowledged + 1.
    acked_next: i32,
    /// A batch that may have been written failed for good; this is the
    /// sequence after it. The next batch's answer tells whether it was
    /// written (acknowledged) or not (OUT_OF_ORDER at the head).
    unresolved: Option<i32>,
    /// Nothing from this sequence on is in the log under this epoch, and
    /// the partition waits for a reset.
    unwritten_from: Option<i32>,
    /// A batch was acknowledged under this epoch: the broker holds state of
    /// the producer for this partition.
    acknowledged_any: bool,
}

impl PartitionSequence {
    fn new(producer: (i64, i16)) -> Self {
        Self {
            producer,
            next: 0,
            acked_next: 0,
            unresolved: None,
            unwritten_from: None,
            acknowledged_any: false,
        }
    }
}

/// Sequence state of one idempotent producer.
#[derive(Debug, Clone)]
pub struct Sequences {
    /// Transactional producers are fenced for good; idempotent ones re-init.
    transactional: bool,
    /// The newest producer id and epoch; new partitions start under it.
    producer_id: i64,
    producer_epoch: i16,
    partitions: HashMap<TopicPartition, PartitionSequence>,
}

/// `sequence + increment`, wrapping past `i32::MAX` to 0 as the broker does.
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

impl Sequences {
    /// State for a producer id and epoch from InitProducerId.
    pub fn new(producer_id: i64, producer_epoch: i16) -> Self {
        Self {
            transactional: false,
            producer_id,
            producer_epoch,
            partitions: HashMap::new(),
        }
    }

    /// State for a transactional producer: fencing is final.
    pub fn transactional(producer_id: i64, producer_epoch: i16) -> Self {
        Self {
            transactional: true,
            ..Self::new(producer_id, producer_epoch)
        }
    }

    /// The newest producer id and epoch.
    pub fn producer(&self) -> (i64, i16) {
        (self.producer_id, self.producer_epoch)
    }

    fn partition(&mut self, tp: &TopicPartition) -> &mut PartitionSequence {
        let producer = self.producer();
        self.partitions
            .entry(tp.clone())
            .or_insert_with(|| PartitionSequence::new(producer))
    }

    /// Stamps a new batch of `count` records for `tp`.
    pub fn assign(&mut self, tp: &TopicPartition, count: i32) -> ProducerState {
        let partition = self.partition(tp);
        let base_sequence = partition.next;
        partition.next = increment_sequence(base_sequence, count);
        ProducerState {
            producer_id: partition.producer.0,
            producer_epoch: partition.producer.1,
            base_sequence,
        }
    }

    /// Records an acknowledgement of the batch `stamp` with `count` records.
    /// A stamp from before the partition's last reset is ignored.
    pub fn acknowledge(&mut self, tp: &TopicPartition, stamp: ProducerState, count: i32) {
        if !self.is_current(tp, stamp) {
            return;
        }
        let partition = self.partition(tp);
        partition.acknowledged_any = true;
        let base = stamp.base_sequence;
        let end = increment_sequence(base, count);
        // Acks arrive in order per partition; never move backwards. A later
        // batch acknowledged does not prove the ones before it written: a
        // broker without state of this producer takes a later batch first
        // (see `verdict`).
        if base == partition.acked_next || is_after(end, partition.acked_next) {
            partition.acked_next = end;
        }
        if partition
            .unresolved
            .is_some_and(|u| base == u || is_after(base, u))
        {
            partition.unresolved = None;
        }
    }

    /// Interprets a produce error for the batch that carried `stamp`.
    /// `sent_alone`: no other batch of the partition was in flight when this
    /// one was sent, so the broker saw it right after everything acknowledged.
    pub fn verdict(
        &self,
        tp: &TopicPartition,
        stamp: ProducerState,
        code: KafkaCode,
        sent_alone: bool,
    ) -> SequenceVerdict {
        let Some(partition) = self.partitions.get(tp) else {
            return match code {
                KafkaCode(46) => SequenceVerdict::AlreadyWritten,
                _ => SequenceVerdict::NotSequenceRelated,
            };
        };
        let stale = (stamp.producer_id, stamp.producer_epoch) != partition.producer;
        // The head: the batch the broker must take next, if nothing else of
        // ours is on the way. Requests from separate tasks can reach the wire
        // out of order, so an OUT_OF_ORDER for a batch sent behind another one
        // says nothing about the broker's state.
        let base = stamp.base_sequence;
        // Behind what was acknowledged: Apache Kafka takes any first
        // sequence from a producer it holds no state for, so when this
        // batch was refused (NOT_LEADER on a new topic) and a later one
        // reached the leader first, the later one was written and this one
        // never can be under this epoch. Retried in order it came back
        // OUT_OF_ORDER forever.
        let behind = is_after(partition.acked_next, base);
        let head = sent_alone
            && (base == partition.acked_next || partition.unresolved == Some(base) || behind);
        match code {
            KafkaCode(46) => SequenceVerdict::AlreadyWritten,
            // Stamped under an epoch the partition left since: renumber it.
            KafkaCode(45 | 47 | 59) if stale => SequenceVerdict::RetryInOrder,
            KafkaCode(45 | 59) if head => SequenceVerdict::ResetPartition,
            KafkaCode(45 | 59) => SequenceVerdict::RetryInOrder,
            // The leader holds a higher epoch of our id for this partition: no
            // attempt under ours can be written there any more. A
            // transactional producer is fenced for good instead.
            KafkaCode(47 | 90) if !self.transactional => SequenceVerdict::ResetPartition,
            _ => SequenceVerdict::NotSequenceRelated,
        }
    }

    /// Nothing of `tp` is acknowledged under its epoch yet, so its next
    /// batch goes alone. Apache Kafka takes any first sequence from a
    /// producer it holds no state for: a second batch sent beside a first
    /// one that is refused (NOT_LEADER_OR_FOLLOWER on a topic created a
    /// moment before) would be written ahead of it.
    pub fn awaiting_first_ack(&self, tp: &TopicPartition) -> bool {
        self.partitions
            .get(tp)
            .is_none_or(|partition| !partition.acknowledged_any)
    }

    /// `stamp` lies before what the broker acknowledged of `tp`: a later
    /// batch was written first (see [`Sequences::verdict`]).
    pub fn is_behind(&self, tp: &TopicPartition, stamp: ProducerState) -> bool {
        self.is_current(tp, stamp)
            && self
                .partitions
                .get(tp)
                .is_some_and(|p| is_after(p.acked_next, stamp.base_sequence))
    }

    /// The broker holds nothing of `tp` from `stamp` on under its epoch:
    /// the partition waits for [`Sequences::reset`].
    pub fn request_reset(&mut self, tp: &TopicPartition, stamp: ProducerState) {
        if !self.is_current(tp, stamp) {
            return;
        }
        let partition = self.partition(tp);
        let from = stamp.base_sequence;
        partition.unwritten_from = Some(match partition.unwritten_from {
            Some(earlier) if is_after(from, earlier) => earlier,
            _ => from,
        });
    }

    /// A stamped batch failed for good. If no attempt can have been written,
    /// it leaves a hole: the partition must reset. If one may have been, the
    /// next batch's answer decides (Java's "unresolved sequence").
    pub fn failed_for_good(
        &mut self,
        tp: &TopicPartition,
        stamp: ProducerState,
        count: i32,
        maybe_written: bool,
    ) {
        if !self.is_current(tp, stamp) {
            return;
        }
        if !maybe_written {
            return self.request_reset(tp, stamp);
        }
        let partition = self.partition(tp);
        let end = increment_sequence(stamp.base_sequence, count);
        if partition.unresolved.is_none_or(|u| is_after(end, u)) {
            partition.unresolved = Some(end);
        }
    }

    /// True when `tp` waits for a reset.
    pub fn reset_requested(&self, tp: &TopicPartition) -> bool {
        self.partitions
            .get(tp)
            .is_some_and(|p| p.unwritten_from.is_some())
    }

    /// True when a batch stamped `stamp` cannot be in the log of `tp`, so
    /// renumbering it cannot write it twice.
    pub fn provably_unwritten(&self, tp: &TopicPartition, stamp: ProducerState) -> bool {
        let Some(partition) = self.partitions.get(tp) else {
            return false;
        };
        let base = stamp.base_sequence;
        self.is_current(tp, stamp)
            && partition
                .unwritten_from
                .is_some_and(|from| base == from || is_after(base, from))
    }

    /// KIP-360 for one partition: a higher epoch of the same id, numbering
    /// from 0. Every batch of `tp` stamped before is renumbered when sent.
    pub fn reset(&mut self, tp: &TopicPartition) -> Result<(i64, i16), ResetError> {
        let current = self.producer();
        let partition_producer = self.partition(tp).producer;
        if partition_producer == current {
            if current.1 == i16::MAX {
                return Err(ResetError::EpochExhausted);
            }
            self.producer_epoch += 1;
        }
        let producer = self.producer();
        *self.partition(tp) = PartitionSequence::new(producer);
        Ok(producer)
    }

    /// A new producer id (the epoch was exhausted): partitions move to it
    /// when they reset.
    pub fn adopt(&mut self, producer_id: i64, producer_epoch: i16) {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
    }

    /// True when `stamp` carries `tp`'s current producer id and epoch.
    pub fn is_current(&self, tp: &TopicPartition, stamp: ProducerState) -> bool {
        let producer = (stamp.producer_id, stamp.producer_epoch);
        match self.partitions.get(tp) {
            Some(partition) => partition.producer == producer,
            None => producer == self.producer(),
        }
    }
}

/// `a` comes after `b` in wrapping sequence space (within half the range).
fn is_after(a: i32, b: i32) -> bool {
    let distance = (i64::from(a) - i64::from(b)).rem_euclid(i64::from(i32::MAX) + 1);
    distance != 0 && distance < (1 << 30)
}

#[cfg(test)]
#[path = "sequence_tests.rs"]
mod tests;
