//! State shared by the producer handle (user tasks) and the sender task.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use super::accumulator::{Accumulator, ClosedBatch};
use super::delivery::BatchAck;
use super::metrics::Counters;
use crate::cluster::Cluster;
use crate::config::ProducerConfig;
use crate::producer::error::ProduceError;

pub(crate) struct Shared {
    pub config: ProducerConfig,
    pub cluster: Arc<Cluster>,
    pub accumulator: Mutex<Accumulator>,
    /// Wakes the sender: a batch closed, a flush began, metadata arrived.
    pub wake: Notify,
    /// `buffer.memory`: permits for the bytes open and queued batches allocated.
    pub buffer: Semaphore,
    /// Batches opened and not yet settled.
    pending: AtomicUsize,
    /// Ids of batches opened and not yet settled, oldest first, with how
    /// many pieces of each are unsettled (more than one once split).
    unsettled: Mutex<BTreeMap<u64, usize>>,
    /// Signalled whenever a batch settles.
    pub idle: Notify,
    /// Callers inside `flush()`: linger is ignored while there are any.
    pub flushing: AtomicUsize,
    closed: AtomicBool,
    fatal: OnceLock<ProduceError>,
    pub counters: Counters,
    /// Transactional producers: the first record failure of the open
    /// transaction, whether a failed record's outcome is unknown, and the
    /// producer id the transaction manager handed the sender.
    pub txn: Option<TxnShared>,
    retry_policy: crate::retry::RetryPolicy,
}

/// What the sender and the transaction manager tell each other.
#[derive(Default)]
pub(crate) struct TxnShared {
    pub failure: Mutex<Option<String>>,
    pub in_doubt: AtomicBool,
    /// A Produce of the open transaction was answered INVALID_PRODUCER_EPOCH:
    /// the coordinator aborted the transaction and bumped the epoch (KIP-588).
    pub epoch_bumped_by_coordinator: AtomicBool,
    pub assigned_producer: Mutex<Option<(i64, i16)>>,
}

impl Shared {
    pub fn new(config: ProducerConfig, cluster: Arc<Cluster>) -> Self {
        let buffer = Semaphore::new(config.buffer_memory.min(Semaphore::MAX_PERMITS));
        let txn = config
            .transactional_id
            .as_ref()
            .map(|_| TxnShared::default());
        let retry_policy = crate::retry::RetryPolicy::for_producer(&config);
        Self {
            config,
            cluster,
            accumulator: Mutex::new(Accumulator::default()),
            wake: Notify::new(),
            buffer,
            pending: AtomicUsize::new(0),
            unsettled: Mutex::new(BTreeMap::new()),
            idle: Notify::new(),
            flushing: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            txn,
            retry_policy,
            fatal: OnceLock::new(),
            counters: Counters::default(),
        }
    }

    /// Counts a newly opened batch (called under the accumulator lock).
    pub fn batch_opened(&self, id: u64) {
        self.batches_added(id, 1);
    }

    /// Counts `count` more unsettled batches under `id`: a new batch, or the
    /// extra pieces of a split one.
    pub fn batches_added(&self, id: u64, count: usize) {
        self.pending.fetch_add(count, Ordering::AcqRel);
        *self
            .unsettled
            .lock()
            .expect("unsettled lock")
            .entry(id)
            .or_default() += count;
    }

    /// True once every batch opened before `id` is settled.
    pub fn settled_before(&self, id: u64) -> bool {
        self.unsettled
            .lock()
            .expect("unsettled lock")
            .first_key_value()
            .is_none_or(|(&oldest, _)| oldest >= id)
    }

    pub fn pending_batches(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Transactional producers: a record of the open transaction failed, so
    /// the transaction can only abort (the first failure is the reason).
    pub fn record_failed_in_transaction(&self, error: &ProduceError, in_doubt: bool) {
        if let Some(txn) = &self.txn {
            txn.failure
                .lock()
                .expect("txn lock")
                .get_or_insert_with(|| error.to_string());
            if error.outcome_unknown() || in_doubt {
                txn.in_doubt.store(true, Ordering::Release);
            }
        }
    }

    /// Settles a batch: its futures resolve, its buffer space returns.
    pub fn complete_batch(&self, batch: &ClosedBatch, result: Result<BatchAck, ProduceError>) {
        let records = batch.record_count as u64;
        match &result {
            Ok(_) => Counters::add(&self.counters.records_acked, records),
            Err(error) => {
                Counters::add(&self.counters.records_failed, records);
                self.record_failed_in_transaction(error, batch.in_doubt);
            }
        }
        batch.outcome.complete(result);
        self.buffer.add_permits(batch.buffer_bytes);
        {
            let mut unsettled = self.unsettled.lock().expect("unsettled lock");
            if let Some(count) = unsettled.get_mut(&batch.outcome.id) {
                *count -= 1;
                if *count == 0 {
                    unsettled.remove(&batch.outcome.id);
                }
            }
        }
        self.pending.fetch_sub(1, Ordering::AcqRel);
        // Flushes wait for the batches opened before them: wake them to look.
        self.idle.notify_waiters();
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Records a fatal error: every later send fails with it.
    pub fn fail(&self, error: ProduceError) {
        let _ = self.fatal.set(error);
        self.closed.store(true, Ordering::Release);
        self.idle.notify_waiters();
    }

    pub fn fatal_error(&self) -> Option<ProduceError> {
        self.fatal.get().cloned()
    }

    /// Exponential backoff with jitter: `retry.backoff.ms` doubling up to
    /// `retry.backoff.max.ms`, ±20 % (KIP-580) — the same [`RetryPolicy`]
    /// the processor's handler retries use.
    ///
    /// [`RetryPolicy`]: crate::retry::RetryPolicy
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.retry_policy.backoff(attempt)
    }
}
