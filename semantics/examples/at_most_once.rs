//! at-most-once: run a handler over a topic and see what the guarantee promises.
//!
//! ```sh
//! export KAFKA_BOOTSTRAP_SERVERS=$(cargo run -q -p harness -- broker start)
//! cargo run -p semantics --example at_most_once
//! ```

#[path = "common/mod.rs"]
mod common;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::run(semantics::Guarantee::AtMostOnce).await
}
