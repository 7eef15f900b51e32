//! The local broker: an Apache Kafka cluster in KRaft mode on loopback, its
//! jars resolved from Maven Central by Maven and cached.
//!
//! - [`install`]: find the cached jars for a Kafka version, or resolve them.
//! - [`config`]: each node's `server.properties` (pure text, unit-tested).
//! - [`node`]: one node's JVM process: start, kill, stop, pause, resume.
//! - [`cluster`]: N nodes started together, optionally each behind its own
//!   fault proxy; which node leads a partition or coordinates a group.
//! - [`state`]: the state file that lets `harness broker stop` find a cluster
//!   that `harness broker start` left running.
//! - [`test_broker`]: the cluster integration tests share, or `KAFKA_BOOTSTRAP`.

pub mod cluster;
pub mod config;
pub mod install;
pub mod node;
pub mod state;
pub mod test_broker;

pub use cluster::{Cluster, ClusterOptions, SaslUser, TlsFiles};
pub use install::{install_kafka, installed_kafka, KafkaInstall, DEFAULT_KAFKA_VERSION};
pub use node::signal;

/// Launcher failures, each saying what to do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The jars of this Kafka version are not in the cache and installing was not asked for.
    #[error("Apache Kafka {version} is not installed at {path}. Install it once with `cargo run -p harness -- broker install --version {version}` (Maven resolves it from Maven Central); or point tests at another cluster with KAFKA_BOOTSTRAP=host:port[,host:port]")]
    NotInstalled {
        /// Kafka version.
        version: String,
        /// Where the jars were looked for.
        path: String,
    },
    /// A tool the launcher needs is missing or too old.
    #[error("{0}")]
    MissingTool(String),
    /// Maven could not resolve the jars.
    #[error("resolving Apache Kafka {version} from Maven Central failed ({status}); Maven's output is above. Is `{version}` a published version of org.apache.kafka:kafka_2.13?")]
    InstallFailed {
        /// Kafka version.
        version: String,
        /// Exit status.
        status: String,
    },
    /// A process did not start or exited early.
    #[error("broker process failed: {0}")]
    Process(String),
    /// The cluster did not become ready in time.
    #[error("{what} not ready within {seconds} s; node logs: {logs}")]
    NotReady {
        /// What was waited for.
        what: String,
        /// How long we waited.
        seconds: u64,
        /// Log files.
        logs: String,
    },
    /// A lookup against the running cluster failed.
    #[error("{0}")]
    Lookup(String),
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
