//! `harness consume`: read a topic with this project's consumer and report
//! throughput and client CPU. With `--print values` every value goes to
//! stdout on its own line and the JSON summary to stderr (the CLI contract).

use std::io::Write;
use std::time::{Duration, Instant};

use semantics::consumer::{Consumer, TopicPartition};

use crate::produce::cpu_time;

/// What to consume.
#[derive(Debug, Clone)]
pub struct ConsumeArgs {
    /// Broker address.
    pub bootstrap: String,
    /// Topic.
    pub topic: String,
    /// Consumer group; without one every partition is assigned manually.
    pub group: Option<String>,
    /// `read_committed` or `read_uncommitted`.
    pub isolation: String,
    /// Stop after this many records.
    pub count: Option<usize>,
    /// Stop after this long with nothing new.
    pub idle_timeout: Duration,
    /// Print every value on stdout.
    pub print_values: bool,
    /// Extra consumer properties (`key=value`).
    pub properties: Vec<(String, String)>,
}

/// The outcome, printed as JSON.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConsumeReport {
    /// Records received.
    pub consumed: usize,
    /// Value bytes received.
    pub bytes: usize,
    /// From subscribing to the last record.
    pub elapsed_ms: u128,
    /// Records per second over `elapsed_ms`.
    pub records_per_sec: f64,
    /// Value megabytes per second.
    pub mb_per_sec: f64,
    /// Client CPU (user + system) of this process over the run.
    pub cpu_seconds: f64,
    /// Client CPU per record.
    pub cpu_us_per_record: f64,
    /// Requests the consumer sent (fetches, and metadata, offsets, group).
    pub requests: u64,
    /// Request bytes it sent.
    pub request_bytes: u64,
    /// Response bytes it read.
    pub response_bytes: u64,
    /// First error the consumer reported, if any.
    pub first_error: Option<String>,
}

/// Runs the consume workload.
pub async fn run(args: ConsumeArgs) -> Result<ConsumeReport, Box<dyn std::error::Error>> {
    let mut properties = vec![
        ("bootstrap.servers".to_owned(), args.bootstrap.clone()),
        ("auto.offset.reset".to_owned(), "earliest".to_owned()),
        ("isolation.level".to_owned(), args.isolation.clone()),
    ];
    if let Some(group) = &args.group {
        properties.push(("group.id".to_owned(), group.clone()));
    }
    properties.extend(args.properties.iter().cloned());
    let mut consumer = Consumer::from_properties(properties)?;
    let cpu_before = cpu_time();
    let started = Instant::now();
    match &args.group {
        Some(_) => consumer.subscribe([args.topic.as_str()]).await?,
        None => {
            let count = consumer.partition_count(&args.topic).await?;
            let partitions = (0..count)
                .map(|p| TopicPartition::new(&args.topic, p))
                .collect();
            consumer.assign(partitions).await?;
        }
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let (mut consumed, mut bytes, mut first_error) = (0usize, 0usize, None);
    // The clock is read once at the end, not per record: a run that ends
    // idle ended `idle_timeout` after its last record.
    let mut idle = false;
    let wanted = args.count.unwrap_or(usize::MAX);
    while consumed < wanted {
        match consumer.poll(args.idle_timeout).await {
            None => {
                idle = consumed > 0;
                break;
            }
            Some(Ok(record)) => {
                consumed += 1;
                let value = record.value.as_deref().unwrap_or_default();
                bytes += value.len();
                if args.print_values {
                    out.write_all(value)?;
                    out.write_all(b"\n")?;
                }
            }
            Some(Err(error)) => {
                tracing::warn!(%error, "consumer error");
                first_error.get_or_insert_with(|| error.to_string());
                if !error.is_retriable() && matches!(error, semantics::ConsumeError::Group(_)) {
                    break;
                }
            }
        }
    }
    out.flush()?;
    let last_record_at = if idle {
        Instant::now()
            .checked_sub(args.idle_timeout)
            .unwrap_or(started)
    } else {
        Instant::now()
    };
    let elapsed = last_record_at.saturating_duration_since(started);
    let cpu = cpu_time() - cpu_before;
    let traffic = consumer.traffic();
    consumer.close().await;
    let seconds = elapsed.as_secs_f64().max(1e-9);
    Ok(ConsumeReport {
        consumed,
        bytes,
        elapsed_ms: elapsed.as_millis(),
        records_per_sec: consumed as f64 / seconds,
        mb_per_sec: bytes as f64 / seconds / 1e6,
        cpu_seconds: cpu,
        cpu_us_per_record: cpu * 1e6 / consumed.max(1) as f64,
        requests: traffic.requests,
        request_bytes: traffic.bytes_sent,
        response_bytes: traffic.bytes_received,
        first_error,
    })
}
