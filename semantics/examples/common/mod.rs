//! Shared by the guarantee examples: the broker address, and a topic of
//! input records to process.

use std::time::Duration;

use semantics::{Producer, ProducerRecord};

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
