//! State the application handle, the driver and the group task share. Its
//! own module so that the driver, the group task and the position lookup
//! depend on it rather than on each other.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use tokio::sync::Notify;

use super::ConsumerConfig;
use crate::cluster::Cluster;

/// State shared by the application handle, the driver and the group task.
pub struct Shared {
    /// Configuration.
    pub config: ConsumerConfig,
    /// Brokers and leaders.
    pub cluster: Arc<Cluster>,
    /// Bytes handed to the application channel and not yet taken.
    pub buffered: AtomicUsize,
    /// Wakes the driver when the application takes records.
    pub taken: Notify,
    /// Group coordinator and generation, when `group.id` is set.
    pub group: Option<Arc<super::group::GroupShared>>,
    /// When the application last polled (`max.poll.interval.ms`).
    pub poll_clock: super::liveness::PollClock,
}
