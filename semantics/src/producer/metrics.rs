//! Producer counters: cheap atomics updated by the sender, read as a snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub records_acked: AtomicU64,
    pub records_failed: AtomicU64,
    pub batches_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub retries: AtomicU64,
    pub requests_in_flight: AtomicU64,
    pub epoch_bumps: AtomicU64,
    pub batches_split: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn sub(counter: &AtomicU64, n: u64) {
        counter.fetch_sub(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> ProducerMetrics {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ProducerMetrics {
            records_acked: read(&self.records_acked),
            records_failed: read(&self.records_failed),
            batches_sent: read(&self.batches_sent),
            bytes_sent: read(&self.bytes_sent),
            retries: read(&self.retries),
            requests_in_flight: read(&self.requests_in_flight),
            epoch_bumps: read(&self.epoch_bumps),
            batches_split: read(&self.batches_split),
        }
    }
}

/// A snapshot of the producer's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct ProducerMetrics {
    /// Records acknowledged by the broker.
    pub records_acked: u64,
    /// Records that ended in an error.
    pub records_failed: u64,
    /// Batch sends, retries included.
    pub batches_sent: u64,
    /// Batch bytes sent (compressed), retries included.
    pub bytes_sent: u64,
    /// Batches put back for another attempt.
    pub retries: u64,
    /// Produce requests awaiting their response now.
    pub requests_in_flight: u64,
    /// Producer epoch bumps (KIP-360) and re-initialisations.
    pub epoch_bumps: u64,
    /// Batches the broker refused as too large (MESSAGE_TOO_LARGE) and that
    /// were split into smaller ones and resent.
    pub batches_split: u64,
}
