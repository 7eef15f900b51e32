//! exactly-once: run a handler over a topic and see what the guarantee promises.
//!
//! ```sh
//! export KAFKA_BOOTSTRAP_SERVERS=$(cargo run -q -p harness -- broker start)
//! cargo run -p semantics --example exactly_once
//! ```

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use semantics::guarantee::processor::{HandlerError, Processor, ProcessorConfig};
use semantics::{DeliveryGuarantee, Guarantee, ProducerRecord};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bootstrap = common::bootstrap();
    let input = common::input_topic(&bootstrap, "orders", 1_000).await?;
    let output = format!("{input}-billed");

    let guarantee = Guarantee::ExactlyOnce;
    println!("{}", guarantee.promise());

    let mut config = ProcessorConfig::new(&bootstrap, format!("{input}-billing"));
    config.batching.idle_timeout = Some(Duration::from_secs(2));
    let mut processor = Processor::new(config, Arc::new(guarantee)).await?;
    let mut failed_once = false;
    let stats = processor
        .run(&[input.as_str()], |record| {
            let order =
                String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned();
            // One record fails the first time it is seen: watch what the guarantee does with it.
            if order == "order-500" && !failed_once {
                failed_once = true;
                return Err(HandlerError("billing service unavailable".into()));
            }
            Ok(vec![ProducerRecord::new(
                output.as_str(),
                format!("billed {order}"),
            )])
        })
        .await?;
    processor.close().await;
    println!("{}", serde_json::to_string_pretty(&stats)?);
    Ok(())
}
