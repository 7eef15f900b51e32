//! Shared by the guarantee examples: the broker address, a topic of input
//! records, and the run itself — the examples differ only in the guarantee.

use std::sync::Arc;
use std::time::Duration;

use semantics::guarantee::processor::{HandlerError, Processor, ProcessorConfig};
use semantics::{DeliveryGuarantee, Guarantee, Producer, ProducerRecord};

/// `KAFKA_BOOTSTRAP_SERVERS`, else the local broker (`harness broker start`
/// prints its address), else `localhost:9092`.
pub fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS")
        .or_else(|_| std::env::var("KAFKA_BOOTSTRAP"))
        .unwrap_or_else(|_| "localhost:9092".into())
}

/// Writes `count` records `order-i` to a new topic named after `prefix`.
pub async fn input_topic(
    bootstrap: &str,
    prefix: &str,
    count: usize,
) -> Result<String, Box<dyn std::error::Error>> {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let topic = format!("{prefix}-{millis}");
    let producer = Producer::from_properties([("bootstrap.servers", bootstrap)])?;
    let mut deliveries = Vec::new();
    for i in 0..count {
        deliveries.push(
            producer
                .send(ProducerRecord::new(topic.as_str(), format!("order-{i}")).key(i.to_string()))
                .await?,
        );
    }
    for delivery in deliveries {
        delivery.await?;
    }
    producer.close(Duration::from_secs(5)).await;
    Ok(topic)
}

/// Bills 1,000 orders under `guarantee`; one order fails the first time it
/// is seen, so the guarantee's way with failures shows in the stats.
pub async fn run(guarantee: Guarantee) -> Result<(), Box<dyn std::error::Error>> {
    let bootstrap = bootstrap();
    let input = input_topic(&bootstrap, "orders", 1_000).await?;
    let output = format!("{input}-billed");
    println!("{}", guarantee.promise());

    let mut config = ProcessorConfig::new(&bootstrap, format!("{input}-billing"));
    config.batching.idle_timeout = Some(Duration::from_secs(2));
    let mut processor = Processor::new(config, Arc::new(guarantee)).await?;
    let mut failed_once = false;
    let stats = processor
        .run(&[input.as_str()], |record| {
            let order =
                String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned();
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
