//! One assigned partition's fetch state, and turning fetched batches into
//! deliveries in offset order (read_committed filtering included).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_wire::records::{Record, RecordBatch};

use super::read_committed::{
    resolve_uncommitted, AbortedTransaction, ReadCommittedFilter, Resolved,
};
use super::{IsolationLevel, TopicPartition};

/// One assignment of a partition to this consumer, from `assign`/a rebalance
/// until it is revoked, lost or unassigned. Cursors come and go with seeks
/// and pauses; the assignment outlives them, so records handed out under it
/// can be checked for ownership when their offsets are committed (KIP-447:
/// offsets go with the generation the records were fetched under).
#[derive(Debug)]
pub struct Assignment {
    /// The partition.
    pub tp: TopicPartition,
    /// Set when the partition was taken away from this consumer.
    pub ended: AtomicBool,
}

impl Assignment {
    fn new(tp: &TopicPartition) -> Arc<Self> {
        Arc::new(Self {
            tp: tp.clone(),
            ended: AtomicBool::new(false),
        })
    }

    /// Whether the partition is no longer this consumer's under this assignment.
    pub fn has_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }
}

/// Shared between the driver and the application side for one partition's
/// current position. Replaced (and the old one revoked) on every seek, pause
/// or reassignment, so records fetched before it are recognised as stale.
#[derive(Debug)]
pub struct Cursor {
    /// Topic name, shared by the records handed out.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset after the last record the application has processed.
    pub consumed: AtomicI64,
    /// Offset after the last record returned to the application: ahead of
    /// `consumed` while a record is in its hands.
    pub returned: AtomicI64,
    /// Set when records carrying this cursor must no longer be handed out.
    pub revoked: AtomicBool,
    /// Woken when the application settles a record of a revoked cursor.
    pub settled: tokio::sync::Notify,
    /// The assignment this cursor belongs to.
    pub assignment: Arc<Assignment>,
}

impl Cursor {
    fn new(assignment: &Arc<Assignment>, start: i64) -> Arc<Self> {
        Arc::new(Self {
            topic: assignment.tp.topic.as_str().into(),
            partition: assignment.tp.partition,
            consumed: AtomicI64::new(start),
            returned: AtomicI64::new(start),
            revoked: AtomicBool::new(false),
            settled: tokio::sync::Notify::new(),
            assignment: assignment.clone(),
        })
    }

    /// The application is done with every record returned so far: `offset`
    /// is the position after them. Called on the application's side.
    pub fn settle(&self, offset: i64) {
        // SeqCst pairs with `stop`: either the driver sees this offset, or
        // this side sees the revocation and wakes the driver.
        self.consumed.store(offset, Ordering::SeqCst);
        if self.revoked.load(Ordering::SeqCst) {
            self.settled.notify_one();
        }
    }

    /// Stops handing out this cursor's records; whether a record returned
    /// to the application is still in its hands (returned, not settled).
    pub fn stop(&self) -> bool {
        self.revoked.store(true, Ordering::SeqCst);
        self.returned.load(Ordering::SeqCst) > self.consumed.load(Ordering::SeqCst)
    }

    /// Waits until the application settles the record in its hands (it asks
    /// for the next record, or closes), at most `limit`; whether it did.
    pub async fn settled_within(&self, limit: Duration) -> bool {
        let settled = async {
            while self.returned.load(Ordering::SeqCst) > self.consumed.load(Ordering::SeqCst) {
                self.settled.notified().await;
            }
        };
        tokio::time::timeout(limit, settled).await.is_ok()
    }

    /// Offset after the last processed record (−1 before any position).
    pub fn consumed(&self) -> i64 {
        self.consumed.load(Ordering::Acquire)
    }

    /// Whether this cursor was replaced.
    pub fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Acquire)
    }
}

/// Records of one partition ready for the application, or an error for it.
#[derive(Debug)]
pub enum Delivery {
    /// Records in offset order; after them the position is `next_offset`.
    Records {
        /// The partition's cursor when they were fetched.
        cursor: Arc<Cursor>,
        /// Records (possibly none: control markers and aborted batches only move the position).
        records: Vec<Record>,
        /// Position after these records.
        next_offset: i64,
        /// Prefetch bytes to release when taken.
        bytes: usize,
    },
    /// An error for one partition (or the whole consumer when `cursor` is None).
    Error {
        /// The partition's cursor, when the error is about one partition.
        cursor: Option<Arc<Cursor>>,
        /// What happened.
        error: super::ConsumeError,
    },
}

/// Fetch state of one assigned partition.
#[derive(Debug)]
pub struct PartitionState {
    /// Current cursor.
    pub cursor: Arc<Cursor>,
    /// Next offset to fetch; `None` while the start position is looked up.
    pub fetch_offset: Option<i64>,
    /// Paused by the application.
    pub paused: bool,
    /// A fetch including this partition is in flight.
    pub in_flight: bool,
    /// Stopped after an error the application must act on (seek to resume).
    pub halted: bool,
    /// Do not fetch before this instant (after a retriable error).
    pub retry_at: Option<Instant>,
    /// Retriable errors in a row for this partition: the backoff doubles
    /// with them (KIP-580); a fetch that returns data clears it.
    pub failures: u32,
    /// Last high watermark seen.
    pub high_watermark: i64,
    /// Where reading ends for now under the isolation level (the high
    /// watermark, or the last stable offset under read_committed); -1
    /// before the first fetch answer.
    pub end_offset: i64,
    /// Offset last committed by this consumer.
    pub committed: Option<i64>,
    /// Leader epoch of the last batch fetched (−1: unknown, as after a
    /// seek): the history a new leader's log is checked against (KIP-320).
    pub fetch_epoch: i32,
    /// The leader epoch the last fetch was sent under (−1: none yet).
    pub fetched_under_epoch: i32,
    /// The position must be validated with the leader before the next
    /// fetch (the leader changed, or a fetch said the epoch moved).
    pub needs_validation: bool,
    /// An OffsetForLeaderEpoch for this partition is in flight.
    pub validating: bool,
    /// Records below this offset are dropped (a fetch from mid-batch returns the whole batch).
    floor: i64,
    filter: ReadCommittedFilter,
}

impl PartitionState {
    /// A newly assigned partition whose start position is not known yet.
    pub fn awaiting_position(tp: &TopicPartition) -> Self {
        Self::awaiting_position_in(&Assignment::new(tp))
    }

    /// A partition of `assignment` whose position must be looked up again.
    pub fn awaiting_position_in(assignment: &Arc<Assignment>) -> Self {
        Self {
            cursor: Cursor::new(assignment, -1),
            fetch_offset: None,
            paused: false,
            in_flight: false,
            halted: false,
            retry_at: None,
            failures: 0,
            high_watermark: -1,
            end_offset: -1,
            committed: None,
            fetch_epoch: -1,
            fetched_under_epoch: -1,
            needs_validation: false,
            validating: false,
            floor: 0,
            filter: ReadCommittedFilter::new(),
        }
    }

    /// Whether everything readable was fetched: nothing is waiting to be
    /// read but new writes. A paused or halted partition waits for the
    /// application, not for data, and counts as read.
    pub fn read_to_end(&self) -> bool {
        self.paused
            || self.halted
            || self
                .fetch_offset
                .is_some_and(|at| self.end_offset >= 0 && at >= self.end_offset)
    }

    /// Ends the assignment: records handed out under it may not be committed.
    pub fn end_assignment(&self) {
        self.cursor.assignment.ended.store(true, Ordering::Release);
        self.cursor.revoked.store(true, Ordering::Release);
    }

    /// Whether a fetch may include this partition now.
    pub fn fetchable(&self, now: Instant) -> bool {
        self.fetch_offset.is_some()
            && !self.paused
            && !self.in_flight
            && !self.halted
            && !self.validating
            && self.retry_at.is_none_or(|at| at <= now)
    }

    /// Moves the position to `offset`: revokes the current cursor (records
    /// already fetched will not be handed out) and starts a new one.
    pub fn reposition(&mut self, offset: i64) {
        self.cursor.revoked.store(true, Ordering::Release);
        self.cursor = Cursor::new(&self.cursor.assignment, offset);
        self.fetch_offset = Some(offset);
        self.floor = offset;
        self.halted = false;
        self.retry_at = None;
        self.failures = 0;
        // A position chosen by the application (or a reset) has no history
        // to validate (the Java client's seek likewise drops the epoch).
        self.fetch_epoch = -1;
        self.needs_validation = false;
        self.validating = false;
        self.filter.reset();
    }

    /// Moves the position back to `offset`, where the application stopped
    /// (a pause drops what was fetched beyond it), keeping the history for
    /// validation: the last fetched epoch is at or after the one at
    /// `offset` (epochs only grow along a log), so the leader's answer for
    /// it still finds a truncation below `offset`.
    pub fn rewind(&mut self, offset: i64) {
        let epoch = self.fetch_epoch;
        let needs_validation = self.needs_validation;
        self.reposition(offset);
        self.fetch_epoch = epoch;
        self.needs_validation = needs_validation;
    }

    /// Holds fetching back after a retriable error, longer each time in a row.
    pub fn back_off(&mut self, policy: &crate::retry::RetryPolicy) {
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(Instant::now() + policy.backoff(self.failures));
    }

    /// Position the application has reached: where to resume after a pause.
    pub fn resume_offset(&self) -> Option<i64> {
        Some(self.cursor.consumed())
            .filter(|&o| o >= 0)
            .or(self.fetch_offset)
    }

    /// Applies a successful fetch of this partition: advances the fetch
    /// position and returns what the application may see, in offset order.
    pub fn apply(
        &mut self,
        isolation: IsolationLevel,
        batches: Vec<RecordBatch>,
        aborted: &[AbortedTransaction],
        bytes: usize,
    ) -> Option<Delivery> {
        let from = self.fetch_offset?;
        if isolation == IsolationLevel::ReadCommitted {
            self.filter.add_aborted(aborted);
        }
        let mut records = Vec::new();
        let mut next_offset = None;
        let mut deliver = |resolved: Resolved, records: &mut Vec<Record>, floor: i64| match resolved
        {
            Resolved::Deliver(batch) => {
                let next = batch.header.next_offset();
                records.extend(batch.records.into_iter().filter(|r| r.offset >= floor));
                next_offset = Some(next);
            }
            Resolved::Skip { next_offset: next } => next_offset = Some(next),
        };
        for batch in batches {
            let next = batch.header.next_offset();
            if next <= from {
                continue; // wholly before the position: sent again from mid-batch
            }
            self.fetch_offset = Some(next);
            self.fetch_epoch = batch.header.partition_leader_epoch;
            match isolation {
                IsolationLevel::ReadUncommitted => {
                    deliver(resolve_uncommitted(batch), &mut records, self.floor)
                }
                IsolationLevel::ReadCommitted => {
                    deliver(self.filter.resolve(batch), &mut records, self.floor)
                }
            }
        }
        let next_offset = next_offset?;
        self.floor = self.floor.max(next_offset);
        Some(Delivery::Records {
            cursor: self.cursor.clone(),
            records,
            next_offset,
            bytes,
        })
    }
}
