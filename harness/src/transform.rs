//! `harness transform`: the consume → transform → produce loop with
//! exactly-once results, as a process the tests can SIGKILL and restart.
//! Input record `k`/`v` becomes output record `k`/`T:v`.

use std::time::Duration;

use bytes::Bytes;
use semantics::consumer::Consumer;
use semantics::exactly_once::{self, LoopOptions, LoopStats};
use semantics::{Producer, ProducerRecord};

/// What to transform.
#[derive(Debug, Clone)]
pub struct TransformArgs {
    /// Broker address.
    pub bootstrap: String,
    /// Input topic.
    pub input: String,
    /// Output topic.
    pub output: String,
    /// Consumer group.
    pub group: String,
    /// `transactional.id` (and the static `group.instance.id`).
    pub transactional_id: String,
    /// Input records per transaction.
    pub max_batch: usize,
    /// Stop after this long with no input.
    pub idle_timeout: Duration,
}

/// Runs the loop until the input is idle.
pub async fn run(args: &TransformArgs) -> Result<LoopStats, Box<dyn std::error::Error>> {
    let mut consumer = Consumer::from_properties([
        ("bootstrap.servers", args.bootstrap.as_str()),
        ("group.id", args.group.as_str()),
        // Static: a restarted process takes its predecessor's place at once.
        ("group.instance.id", args.transactional_id.as_str()),
        ("isolation.level", "read_committed"),
        ("enable.auto.commit", "false"),
        ("auto.offset.reset", "earliest"),
        ("session.timeout.ms", "10000"),
        ("heartbeat.interval.ms", "500"),
        ("fetch.max.wait.ms", "100"),
    ])?;
    let producer = Producer::from_properties([
        ("bootstrap.servers", args.bootstrap.as_str()),
        ("transactional.id", args.transactional_id.as_str()),
        ("linger.ms", "5"),
    ])?;
    producer.init_transactions().await?;
    consumer.subscribe([args.input.as_str()]).await?;
    let options = LoopOptions {
        max_batch: args.max_batch,
        max_wait: Duration::from_millis(50),
        idle_timeout: Some(args.idle_timeout),
    };
    let output = args.output.clone();
    let stats = exactly_once::run(&mut consumer, &producer, &options, |record| {
        let mut value = b"T:".to_vec();
        value.extend_from_slice(record.value.as_deref().unwrap_or_default());
        let mut out = ProducerRecord::new(output.as_str(), Bytes::from(value));
        if let Some(key) = &record.key {
            out = out.key(key.clone());
        }
        vec![out]
    })
    .await?;
    producer.close(Duration::from_secs(5)).await;
    consumer.close().await;
    Ok(stats)
}
