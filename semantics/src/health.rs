//! `health()`: is the client connected, and how much work is pending — for
//! readiness probes and dashboards. Every field is also a `tracing` field
//! where the client logs it.

/// A client's health at one moment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Health {
    /// Brokers with a healthy open connection.
    pub brokers_connected: usize,
    /// Brokers known from the last Metadata answer.
    pub brokers_known: usize,
    /// Work not finished yet: unsettled producer batches, or prefetched
    /// consumer bytes the application has not taken.
    pub pending: u64,
    /// Partitions assigned (consumers).
    pub partitions_assigned: usize,
    /// Why the client cannot work any more, if it cannot.
    pub failed: Option<String>,
}

impl Health {
    /// Usable: not failed, and connected to a broker once any is known.
    pub fn is_healthy(&self) -> bool {
        self.failed.is_none() && (self.brokers_known == 0 || self.brokers_connected > 0)
    }
}
