//! The state file of a cluster left running by `harness broker start`, which
//! `harness broker stop|status` and the tests (as their shared cluster) read.

use std::path::PathBuf;

use super::node::signal;
use super::BrokerError;

/// What `harness broker stop|status` needs to find the cluster.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ClusterState {
    /// Kafka version.
    pub version: String,
    /// Node process ids.
    pub pids: Vec<u32>,
    /// The client bootstrap list.
    pub bootstrap: String,
    /// Working directory.
    pub work_dir: PathBuf,
}

impl ClusterState {
    /// True while every node process exists.
    pub fn is_alive(&self) -> bool {
        !self.pids.is_empty() && self.pids.iter().all(|&pid| signal(pid, 0))
    }
}

/// `$HARNESS_STATE_DIR`, default `$KAFKA_PURE_CACHE/state` (an absolute
/// path, so test binaries find the cluster whatever their working directory).
pub fn state_dir() -> PathBuf {
    std::env::var_os("HARNESS_STATE_DIR")
        .map_or_else(|| super::install::cache_root().join("state"), PathBuf::from)
}

fn state_file() -> PathBuf {
    state_dir().join("cluster.json")
}

/// Saves the state of a started cluster.
pub fn save(state: &ClusterState) -> Result<(), BrokerError> {
    std::fs::create_dir_all(state_dir())
        .map_err(BrokerError::io("creating the state directory"))?;
    let json = serde_json::to_string_pretty(state).expect("state serialises");
    std::fs::write(state_file(), json).map_err(BrokerError::io("writing the cluster state file"))
}

/// Loads the saved state, if any.
pub fn load() -> Option<ClusterState> {
    let json = std::fs::read_to_string(state_file()).ok()?;
    serde_json::from_str(&json).ok()
}

/// The running cluster `harness broker start` left, if any.
pub fn running() -> Option<ClusterState> {
    load().filter(ClusterState::is_alive)
}

/// Forgets the saved state.
pub fn clear() {
    let _ = std::fs::remove_file(state_file());
}
