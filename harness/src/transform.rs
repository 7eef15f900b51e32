//! `harness transform`: consume → transform → produce under a chosen
//! guarantee, as a process the tests can SIGKILL and restart. Input record
//! `k`/`v` becomes output record `k`/`T:v`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use semantics::consumer::ConsumerRecord;
use semantics::guarantee::batch::LoopOptions;
use semantics::guarantee::processor::{Processor, ProcessorConfig, ProcessorStats};
use semantics::{Guarantee, ProducerRecord};

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
    /// The guarantee.
    pub guarantee: Guarantee,
    /// Input records per batch (transaction).
    pub max_batch: usize,
    /// Stop after this long with no input.
    pub idle_timeout: Duration,
    /// Stop once this many input records went through the handler (their
    /// batch is committed first: the processor stops only between batches).
    pub stop_after: Option<u64>,
    /// A dynamic member: no `group.instance.id`.
    pub dynamic: bool,
    /// Producer properties over the defaults (`linger.ms=5`).
    pub producer_properties: Vec<(String, String)>,
}

/// Runs until the input is idle.
pub async fn run(args: &TransformArgs) -> Result<ProcessorStats, Box<dyn std::error::Error>> {
    let mut config = ProcessorConfig::new(&args.bootstrap, &args.group);
    config.transactional_id = Some(args.transactional_id.clone());
    let mut consumer = vec![
        ("session.timeout.ms", "10000"),
        ("heartbeat.interval.ms", "500"),
        ("fetch.max.wait.ms", "100"),
    ];
    if !args.dynamic {
        // Static: a restarted process takes its predecessor's place at once.
        consumer.push(("group.instance.id", args.transactional_id.as_str()));
    }
    config.consumer = consumer
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    config.producer = vec![("linger.ms".into(), "5".into())];
    config
        .producer
        .extend(args.producer_properties.iter().cloned());
    config.batching = LoopOptions {
        max_batch: args.max_batch,
        max_wait: Duration::from_millis(50),
        idle_timeout: Some(args.idle_timeout),
    };
    let mut processor = Processor::new(config, Arc::new(args.guarantee)).await?;
    let output = args.output.clone();
    let reached = tokio::sync::Notify::new();
    let stop = async {
        match args.stop_after {
            Some(_) => reached.notified().await,
            None => std::future::pending().await,
        }
    };
    let mut handled = 0u64;
    let stats = processor
        .run_until(
            &[args.input.as_str()],
            |record| {
                handled += 1;
                if args.stop_after == Some(handled) {
                    // A permit is stored: the stop is seen between batches.
                    reached.notify_one();
                }
                Ok(vec![transformed(record, &output)])
            },
            stop,
        )
        .await?;
    processor.close().await;
    Ok(stats)
}

/// The output of `record`: same key, value `T:` + the input value.
pub fn transformed(record: &ConsumerRecord, output: &str) -> ProducerRecord {
    let mut value = b"T:".to_vec();
    value.extend_from_slice(record.value.as_deref().unwrap_or_default());
    let mut out = ProducerRecord::new(output, Bytes::from(value));
    if let Some(key) = &record.key {
        out = out.key(key.clone());
    }
    out
}
