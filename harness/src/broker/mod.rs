//! The local broker: nisshi 0.7.0 (formerly tansu), installed from crates.io and
//! started on a free loopback port. See shared/BROKER.md for what it enforces.
//!
//! - [`install`]: find the cached binary or build it (about 16 minutes, once).
//! - [`process`]: start, wait until ApiVersions answers, stop, kill, restart.
//! - [`state`]: the state file that lets `harness broker stop` find a broker
//!   that `harness broker start` left running.
//! - [`test_broker`]: the broker integration tests share, or `KAFKA_BOOTSTRAP`.

pub mod install;
pub mod process;
pub mod state;
pub mod test_broker;

pub use install::{broker_binary, install_broker, BROKER_VERSION};
pub use process::{Broker, BrokerOptions, Storage, TlsFiles};

/// Launcher failures, each saying what to do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// No cached binary and installing was not asked for.
    #[error("nisshi {BROKER_VERSION} is not installed at {path}. Install it once with `cargo run -p harness -- broker install` (or `.ci/install-broker`), which runs `cargo +nightly install nisshi@{BROKER_VERSION} --locked --features dynostore,libsql --root {root}`; or point tests at another broker with KAFKA_BOOTSTRAP=host:port")]
    NotInstalled {
        /// Where the binary was looked for.
        path: String,
        /// The install root.
        root: String,
    },
    /// `cargo install` failed.
    #[error("installing nisshi failed ({status}); see the cargo output above. It needs the `nightly` toolchain (rustc ≥ 1.96): `rustup toolchain install nightly`")]
    InstallFailed {
        /// Exit status.
        status: String,
    },
    /// The process did not start or exited early.
    #[error("broker process failed: {0}")]
    Process(String),
    /// The broker did not answer ApiVersions in time.
    #[error("broker at {address} did not answer ApiVersions within {seconds} s; its log: {log}")]
    NotReady {
        /// Address tried.
        address: String,
        /// How long we waited.
        seconds: u64,
        /// Log file path.
        log: String,
    },
    /// File-system errors around the working directory or state file.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

impl BrokerError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}
