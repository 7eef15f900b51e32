//! Requests and bytes on the wire, counted across every connection that
//! shares one [`Traffic`] (a client's connections share their config's).
//! Relaxed atomics: the counts are for metrics, never for control.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters.
#[derive(Debug, Default)]
pub struct Traffic {
    requests: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
}

/// What was counted so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficSnapshot {
    /// Requests written (Java: `request-total`).
    pub requests: u64,
    /// Request bytes written, size prefixes included (Java: `outgoing-byte-total`).
    pub bytes_sent: u64,
    /// Response bytes read, size prefixes included (Java: `incoming-byte-total`).
    pub bytes_received: u64,
}

impl Traffic {
    /// The counts so far.
    pub fn snapshot(&self) -> TrafficSnapshot {
        TrafficSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn sent(&self, bytes: usize) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn received(&self, bytes: usize) {
        self.bytes_received
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

impl std::ops::Sub for TrafficSnapshot {
    type Output = TrafficSnapshot;

    /// What was counted between two snapshots.
    fn sub(self, earlier: TrafficSnapshot) -> TrafficSnapshot {
        TrafficSnapshot {
            requests: self.requests.saturating_sub(earlier.requests),
            bytes_sent: self.bytes_sent.saturating_sub(earlier.bytes_sent),
            bytes_received: self.bytes_received.saturating_sub(earlier.bytes_received),
        }
    }
}
