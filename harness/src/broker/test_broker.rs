//! The cluster integration tests share, in this order:
//! 1. `KAFKA_BOOTSTRAP` when set (any external cluster);
//! 2. the cluster `harness broker start` left running (`.ci/test` starts one
//!    for every test binary of the run);
//! 3. otherwise a 3-node cluster of this test process (`KAFKA_PURE_TEST_BROKERS`
//!    nodes), started on first use.
//!
//! The per-process cluster is started from a thread that lives as long as the
//! test process, with `PR_SET_PDEATHSIG`, so it dies with the tests even when
//! they are killed. A missing Kafka is installed; one that cannot be is a
//! failure whose message says why — never a silent skip.

use std::sync::OnceLock;

use super::cluster::{Cluster, ClusterOptions};
use super::state;

/// The bootstrap list of the shared test cluster. Panics with the reason
/// when no cluster can be had.
pub fn bootstrap() -> String {
    if let Ok(address) = std::env::var("KAFKA_BOOTSTRAP") {
        return address;
    }
    if let Some(running) = state::running() {
        return running.bootstrap;
    }
    static ADDRESS: OnceLock<Result<String, String>> = OnceLock::new();
    match ADDRESS.get_or_init(start_shared) {
        Ok(address) => address.clone(),
        Err(message) => panic!("no Kafka cluster for the integration tests: {message}"),
    }
}

/// True when the tests run against an external cluster (`KAFKA_BOOTSTRAP`):
/// then tests that start clusters of their own, to kill or reconfigure
/// nodes, cannot assume Kafka is installed here and say so.
pub fn is_external() -> bool {
    std::env::var_os("KAFKA_BOOTSTRAP").is_some()
}

/// Options for a cluster a test starts for itself: dies with the test thread.
pub fn own_cluster(brokers: usize) -> ClusterOptions {
    ClusterOptions {
        brokers,
        die_with_parent: true,
        ..ClusterOptions::default()
    }
}

fn start_shared() -> Result<String, String> {
    let brokers = std::env::var("KAFKA_PURE_TEST_BROKERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("test-cluster".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            match runtime.block_on(Cluster::start(own_cluster(brokers))) {
                Ok(cluster) => {
                    let _ = sender.send(Ok(cluster.bootstrap()));
                    // Keep the cluster (and this thread, its PDEATHSIG parent) alive.
                    loop {
                        std::thread::park();
                    }
                }
                Err(error) => {
                    let _ = sender.send(Err(error.to_string()));
                }
            }
        })
        .map_err(|e| e.to_string())?;
    receiver.recv().map_err(|e| e.to_string())?
}
