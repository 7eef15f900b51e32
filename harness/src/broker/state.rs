//! The state file of a broker left running by `harness broker start`.

use std::path::PathBuf;

use super::process::{signal, Storage};
use super::BrokerError;

/// What `harness broker stop|status` needs to find the broker.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BrokerState {
    /// Process id.
    pub pid: u32,
    /// Listening port.
    pub port: u16,
    /// Working directory.
    pub work_dir: PathBuf,
    /// Storage engine.
    pub storage: Storage,
}

impl BrokerState {
    /// `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// True while the process exists.
    pub fn is_alive(&self) -> bool {
        signal(self.pid, 0)
    }
}

/// `$HARNESS_STATE_DIR`, default `target/harness`.
pub fn state_dir() -> PathBuf {
    std::env::var_os("HARNESS_STATE_DIR")
        .map_or_else(|| PathBuf::from("target/harness"), PathBuf::from)
}

fn state_file() -> PathBuf {
    state_dir().join("broker.json")
}

/// Saves the state of a started broker.
pub fn save(state: &BrokerState) -> Result<(), BrokerError> {
    std::fs::create_dir_all(state_dir())
        .map_err(BrokerError::io("creating the state directory"))?;
    let json = serde_json::to_string_pretty(state).expect("state serialises");
    std::fs::write(state_file(), json).map_err(BrokerError::io("writing the broker state file"))
}

/// Loads the saved state, if any.
pub fn load() -> Option<BrokerState> {
    let json = std::fs::read_to_string(state_file()).ok()?;
    serde_json::from_str(&json).ok()
}

/// Forgets the saved state.
pub fn clear() {
    let _ = std::fs::remove_file(state_file());
}
