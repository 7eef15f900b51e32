//! `harness bench`: the same records under each guarantee, same broker, one
//! run — throughput and send-to-acknowledgement latency (for exactly-once,
//! send to commit), and the client CPU spent.

use std::future::Future;
use std::time::{Duration, Instant};

use semantics::{DeliveryGuarantee, Guarantee, Producer, ProducerRecord};

use crate::produce::{cpu_time, record_value};

/// One row of the bench table (the `--json` contract).
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchResult {
    /// Guarantee.
    pub semantics: String,
    /// Records acknowledged (committed).
    pub records: u64,
    /// Records per second.
    pub records_per_sec: f64,
    /// Value megabytes per second.
    pub mb_per_sec: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// Worst latency.
    pub max_ms: f64,
    /// Client CPU per record.
    pub cpu_us_per_record: f64,
}

/// Records per transaction for exactly-once, by default.
pub const TXN_SIZE: usize = 100_000;

/// Produces `records` values of `size` bytes to `topic` under `guarantee`
/// (exactly-once: in transactions of `txn_size` records).
pub async fn run(
    bootstrap: &str,
    topic: &str,
    guarantee: Guarantee,
    records: usize,
    size: usize,
    txn_size: usize,
) -> Result<BenchResult, Box<dyn std::error::Error>> {
    let mut properties = vec![
        ("bootstrap.servers".to_owned(), bootstrap.to_owned()),
        ("linger.ms".to_owned(), "5".to_owned()),
        ("batch.size".to_owned(), "1000000".to_owned()),
    ];
    properties.extend(guarantee.producer_properties());
    if guarantee == Guarantee::ExactlyOnce {
        properties.push((
            "transactional.id".into(),
            crate::fixtures::unique_topic("bench"),
        ));
    }
    let producer = Producer::from_properties(properties)?;
    if guarantee == Guarantee::ExactlyOnce {
        producer.init_transactions().await?;
    }
    let mut latencies = Vec::with_capacity(records);
    let cpu_before = cpu_time();
    let started = Instant::now();
    let chunk = if guarantee == Guarantee::ExactlyOnce {
        txn_size.max(1)
    } else {
        records.max(1)
    };
    let mut acked = 0u64;
    for first in (0..records).step_by(chunk) {
        let last = (first + chunk).min(records);
        if guarantee == Guarantee::ExactlyOnce {
            producer.begin_transaction().await?;
        }
        let mut pending = Vec::with_capacity(last - first);
        for i in first..last {
            let record =
                ProducerRecord::new(topic, record_value("msg", i, size)).key(i.to_string());
            pending.push((Instant::now(), producer.send(record).await?));
        }
        if guarantee == Guarantee::ExactlyOnce {
            producer.commit_transaction().await?;
            let committed = Instant::now();
            for (sent_at, future) in pending {
                acked += u64::from(future.await.is_ok());
                latencies.push(committed - sent_at);
            }
        } else {
            let mut settled = Instant::now();
            for (sent_at, future) in pending {
                let mut future = std::pin::pin!(future);
                let ready =
                    std::future::poll_fn(|cx| std::task::Poll::Ready(future.as_mut().poll(cx)))
                        .await;
                let result = match ready {
                    std::task::Poll::Ready(result) => result,
                    std::task::Poll::Pending => {
                        let result = future.await;
                        settled = Instant::now();
                        result
                    }
                };
                acked += u64::from(result.is_ok());
                latencies.push(settled.saturating_duration_since(sent_at));
            }
        }
    }
    let elapsed = started.elapsed();
    let cpu = cpu_time() - cpu_before;
    producer.close(Duration::from_secs(10)).await;
    latencies.sort_unstable();
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1e3);
    let pct = |p: f64| {
        ms(latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1))))
    };
    let seconds = elapsed.as_secs_f64().max(1e-9);
    Ok(BenchResult {
        semantics: guarantee.name().to_owned(),
        records: acked,
        records_per_sec: acked as f64 / seconds,
        mb_per_sec: (acked as usize * size) as f64 / seconds / 1e6,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        max_ms: ms(latencies.last()),
        cpu_us_per_record: cpu * 1e6 / records.max(1) as f64,
    })
}
