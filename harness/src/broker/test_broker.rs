//! The broker integration tests share: `KAFKA_BOOTSTRAP` when set (e.g. Apache
//! Kafka from docker-compose.yml), otherwise one local nisshi per test process.
//!
//! The local broker is started from a thread that lives as long as the test
//! process, with `PR_SET_PDEATHSIG`, so it dies with the tests even when they
//! are killed. A missing broker is a failure whose message says how to install
//! it — never a silent skip.

use std::sync::OnceLock;

use super::process::{Broker, BrokerOptions};

/// The bootstrap address of the shared test broker. Panics with install
/// instructions when no broker can be had.
pub fn bootstrap() -> String {
    if let Ok(address) = std::env::var("KAFKA_BOOTSTRAP") {
        return address;
    }
    static ADDRESS: OnceLock<Result<String, String>> = OnceLock::new();
    match ADDRESS.get_or_init(start_shared) {
        Ok(address) => address.clone(),
        Err(message) => panic!("no broker for the integration tests: {message}"),
    }
}

/// True when the tests run against an external broker (then tests that need
/// to restart or kill the broker cannot run and say so).
pub fn is_external() -> bool {
    std::env::var_os("KAFKA_BOOTSTRAP").is_some()
}

fn start_shared() -> Result<String, String> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("test-broker".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let options = BrokerOptions {
                die_with_parent: true,
                ..BrokerOptions::default()
            };
            match runtime.block_on(Broker::start(options)) {
                Ok(broker) => {
                    let _ = sender.send(Ok(broker.bootstrap()));
                    // Keep the broker (and this thread, its PDEATHSIG parent) alive.
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
