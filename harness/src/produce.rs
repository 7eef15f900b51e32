//! `harness produce`: produce N records with this project's producer and report
//! throughput, client CPU and delivery latency. Record i has key `i` and value
//! `P-i` padded with `.` to `--size` (the CLI contract of the harness issue).

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use semantics::{Producer, ProducerRecord};

/// What to produce.
#[derive(Debug, Clone)]
pub struct ProduceArgs {
    /// Broker address.
    pub bootstrap: String,
    /// Topic (created by the broker on first use when it auto-creates).
    pub topic: String,
    /// Records to send.
    pub count: usize,
    /// Value size in bytes (values are padded to it).
    pub size: usize,
    /// Value prefix.
    pub value_prefix: String,
    /// Extra producer properties (`key=value`).
    pub properties: Vec<(String, String)>,
    /// Measure the producer alone: records are built before the clock starts
    /// and every future is awaited at the end; no latency is measured.
    pub cpu_only: bool,
    /// Transactions: `(transactional.id, records per transaction, abort every Nth)`.
    pub transactions: Option<(String, usize, usize)>,
}

/// The outcome, printed as the last stdout line in JSON.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProduceReport {
    /// Records handed to the producer.
    pub sent: usize,
    /// Records acknowledged.
    pub acked: usize,
    /// Records that failed.
    pub failed: usize,
    /// Records of the transactions aborted on purpose (`--abort-every`):
    /// neither acknowledged nor failed.
    pub aborted: usize,
    /// Wall time from first send to last acknowledgement.
    pub elapsed_ms: u128,
    /// Acknowledged records per second.
    pub records_per_sec: f64,
    /// Value megabytes per second.
    pub mb_per_sec: f64,
    /// Client CPU (user + system) of this process over the run.
    pub cpu_seconds: f64,
    /// Client CPU per record.
    pub cpu_us_per_record: f64,
    /// Median send-to-acknowledgement latency.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// Worst latency.
    pub max_ms: f64,
    /// First error seen, if any.
    pub first_error: Option<String>,
}

/// Record `i`'s value: `P-i` padded with `.` to `size`.
pub fn record_value(prefix: &str, i: usize, size: usize) -> Bytes {
    let mut value = format!("{prefix}-{i}").into_bytes();
    if value.len() < size {
        value.resize(size, b'.');
    }
    Bytes::from(value)
}

/// Runs the produce workload.
pub async fn run(args: ProduceArgs) -> Result<ProduceReport, Box<dyn std::error::Error>> {
    let mut properties = vec![("bootstrap.servers".to_owned(), args.bootstrap.clone())];
    properties.extend(args.properties.iter().cloned());
    let producer = Producer::from_properties(properties)?;
    if let Some((_, txn_size, abort_every)) = &args.transactions {
        return run_transactions(&producer, &args, *txn_size, *abort_every).await;
    }
    if args.cpu_only {
        return run_cpu_only(&producer, &args).await;
    }
    // Latencies are collected as records are acknowledged, in send order.
    let (sender, mut receiver) =
        tokio::sync::mpsc::unbounded_channel::<(Instant, semantics::DeliveryFuture)>();
    let expected = args.count;
    let collector = tokio::spawn(async move {
        let mut latencies = Vec::with_capacity(expected);
        let mut outcome = Outcome::default();
        // A batch's records resolve together: read the clock when a future
        // had to wait, and reuse that reading for the ones already settled.
        let mut settled_at = Instant::now();
        while let Some((sent_at, future)) = receiver.recv().await {
            let mut future = std::pin::pin!(future);
            let result =
                match std::future::poll_fn(|cx| std::task::Poll::Ready(future.as_mut().poll(cx)))
                    .await
                {
                    std::task::Poll::Ready(result) => result,
                    std::task::Poll::Pending => {
                        let result = future.await;
                        settled_at = Instant::now();
                        result
                    }
                };
            outcome.record(result);
            latencies.push(settled_at.saturating_duration_since(sent_at));
        }
        (latencies, outcome)
    });
    let cpu_before = cpu_time();
    let started = Instant::now();
    for i in 0..args.count {
        let record = ProducerRecord::new(
            args.topic.as_str(),
            record_value(&args.value_prefix, i, args.size),
        )
        .key(Bytes::from(i.to_string()));
        let sent_at = Instant::now();
        let future = producer.send(record).await?;
        let _ = sender.send((sent_at, future));
    }
    drop(sender);
    let (mut latencies, outcome) = collector.await?;
    let elapsed = started.elapsed();
    let cpu = cpu_time() - cpu_before;
    producer.close(Duration::from_secs(10)).await;
    Ok(report(&args, outcome, elapsed, cpu, &mut latencies))
}

/// The producer's own cost: records prepared first, futures awaited last.
async fn run_cpu_only(
    producer: &Producer,
    args: &ProduceArgs,
) -> Result<ProduceReport, Box<dyn std::error::Error>> {
    let records: Vec<ProducerRecord> = (0..args.count)
        .map(|i| {
            ProducerRecord::new(
                args.topic.as_str(),
                record_value(&args.value_prefix, i, args.size),
            )
            .key(Bytes::from(i.to_string()))
        })
        .collect();
    let cpu_before = cpu_time();
    let started = Instant::now();
    let mut futures = Vec::with_capacity(args.count);
    for record in records {
        futures.push(producer.send(record).await?);
    }
    let mut outcome = Outcome::default();
    for future in futures {
        outcome.record(future.await);
    }
    let (elapsed, cpu) = (started.elapsed(), cpu_time() - cpu_before);
    producer.close(Duration::from_secs(10)).await;
    Ok(report(args, outcome, elapsed, cpu, &mut []))
}

/// Transactions of `txn_size` records; every `abort_every`-th is aborted
/// (after a flush, so its records are in the log). Latency is send to commit.
async fn run_transactions(
    producer: &Producer,
    args: &ProduceArgs,
    txn_size: usize,
    abort_every: usize,
) -> Result<ProduceReport, Box<dyn std::error::Error>> {
    producer.init_transactions().await?;
    let mut outcome = Outcome::default();
    let mut latencies = Vec::with_capacity(args.count);
    let cpu_before = cpu_time();
    let started = Instant::now();
    for (t, first) in (0..args.count).step_by(txn_size.max(1)).enumerate() {
        let last = (first + txn_size.max(1)).min(args.count);
        producer.begin_transaction().await?;
        let mut futures = Vec::with_capacity(last - first);
        for i in first..last {
            let record = ProducerRecord::new(
                args.topic.as_str(),
                record_value(&args.value_prefix, i, args.size),
            )
            .key(Bytes::from(i.to_string()));
            futures.push((Instant::now(), producer.send(record).await?));
        }
        let abort = abort_every > 0 && (t + 1) % abort_every == 0;
        if abort {
            producer.flush().await;
            producer.abort_transaction().await?;
            outcome.aborted += futures.len();
            continue;
        }
        producer.commit_transaction().await?;
        let committed = Instant::now();
        for (sent_at, future) in futures {
            outcome.record(future.await);
            latencies.push(committed - sent_at);
        }
    }
    let (elapsed, cpu) = (started.elapsed(), cpu_time() - cpu_before);
    producer.close(Duration::from_secs(10)).await;
    Ok(report(args, outcome, elapsed, cpu, &mut latencies))
}

/// Acknowledged, failed and deliberately aborted records, and the first error.
#[derive(Default)]
struct Outcome {
    acked: usize,
    failed: usize,
    aborted: usize,
    first_error: Option<String>,
}

impl Outcome {
    fn record(&mut self, result: Result<semantics::Delivery, semantics::ProduceError>) {
        match result {
            Ok(_) => self.acked += 1,
            Err(e) => {
                self.failed += 1;
                self.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

fn report(
    args: &ProduceArgs,
    outcome: Outcome,
    elapsed: Duration,
    cpu: f64,
    latencies: &mut [Duration],
) -> ProduceReport {
    latencies.sort_unstable();
    let millis = |d: &Duration| d.as_secs_f64() * 1e3;
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, millis)
    };
    let seconds = elapsed.as_secs_f64().max(1e-9);
    ProduceReport {
        sent: args.count,
        acked: outcome.acked,
        failed: outcome.failed,
        aborted: outcome.aborted,
        elapsed_ms: elapsed.as_millis(),
        records_per_sec: outcome.acked as f64 / seconds,
        mb_per_sec: (outcome.acked * args.size) as f64 / seconds / 1e6,
        cpu_seconds: cpu,
        cpu_us_per_record: cpu * 1e6 / args.count.max(1) as f64,
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
        max_ms: latencies.last().map_or(0.0, millis),
        first_error: outcome.first_error,
    }
}

/// User + system CPU seconds of this process (getrusage), all threads.
pub fn cpu_time() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
