//! The rskafka peer of `harness bench --peers`. rskafka is a low-level
//! client: no partitioner, no batching, no idempotence (its Produce asks for
//! acks=all). The application batches per partition, as its users do:
//! records go round-robin to the partitions, each partition sends batches
//! of up to `--batch` bytes one after another.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use peers_common::{fail, record, report_consume, report_produce, Args};
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;

const CLIENT: &str = "rskafka 0.6.0";

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let client = ClientBuilder::new(args.brokers())
        .build()
        .await
        .unwrap_or_else(|e| fail(&format!("connect: {e}")));
    let topics = client
        .list_topics()
        .await
        .unwrap_or_else(|e| fail(&format!("metadata: {e}")));
    let partitions: Vec<i32> = topics
        .into_iter()
        .find(|t| t.name == args.topic)
        .map(|t| t.partitions.into_iter().collect())
        .unwrap_or_else(|| fail(&format!("no topic {}", args.topic)));
    let mut clients = Vec::new();
    for p in &partitions {
        let partition = client
            .partition_client(args.topic.clone(), *p, UnknownTopicHandling::Retry)
            .await
            .unwrap_or_else(|e| fail(&format!("partition {p}: {e}")));
        clients.push(Arc::new(partition));
    }
    match args.mode.as_str() {
        "produce" => produce(&args, clients).await,
        "consume" => consume(&args, clients).await,
        other => fail(&format!("--mode produce|consume, got {other}")),
    }
}

async fn produce(args: &Args, clients: Vec<Arc<PartitionClient>>) {
    // A Produce batch must stay under the broker's 1 MiB message limit with
    // the record overhead: 90 % of `--batch`, 20 bytes per record on top.
    let per_batch = (args.batch * 9 / 10 / (args.size + 20)).max(1);
    let partitions = clients.len();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (index, partition) in clients.into_iter().enumerate() {
        let (count, size) = (args.count, args.size);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = 0;
            let mine: Vec<usize> = (index..count).step_by(partitions).collect();
            for chunk in mine.chunks(per_batch) {
                let records = chunk
                    .iter()
                    .map(|&i| {
                        let (key, value) = record(i, size);
                        Record {
                            key: Some(key),
                            value: Some(value),
                            headers: Default::default(),
                            timestamp: chrono::Utc::now(),
                        }
                    })
                    .collect();
                let sent = Instant::now();
                let result = partition.produce(records, Compression::NoCompression).await;
                let took = sent.elapsed();
                match result {
                    Ok(_) => latencies.extend(std::iter::repeat_n(took, chunk.len())),
                    Err(_) => failed += chunk.len(),
                }
            }
            (latencies, failed)
        }));
    }
    let (mut latencies, mut failed): (Vec<Duration>, usize) = (Vec::new(), 0);
    for task in tasks {
        let (l, f) = task.await.unwrap_or_else(|e| fail(&e.to_string()));
        latencies.extend(l);
        failed += f;
    }
    report_produce(CLIENT, args, started.elapsed(), latencies, failed);
}

async fn consume(args: &Args, clients: Vec<Arc<PartitionClient>>) {
    let total = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for partition in clients {
        let (total, bytes, count) = (total.clone(), bytes.clone(), args.count);
        tasks.push(tokio::spawn(async move {
            let mut offset = 0;
            while total.load(Ordering::Relaxed) < count {
                let (records, high_watermark) = partition
                    .fetch_records(offset, 1..10_000_000, 100)
                    .await
                    .unwrap_or_else(|e| fail(&format!("fetch: {e}")));
                for r in &records {
                    bytes.fetch_add(
                        r.record.value.as_ref().map_or(0, Vec::len),
                        Ordering::Relaxed,
                    );
                    offset = r.offset + 1;
                }
                total.fetch_add(records.len(), Ordering::Relaxed);
                if records.is_empty() && offset >= high_watermark {
                    // This partition is read to its end; the others go on.
                    break;
                }
            }
        }));
    }
    let deadline = tokio::time::timeout(Duration::from_secs(120), async {
        for task in tasks {
            let _ = task.await;
        }
    });
    if deadline.await.is_err() {
        fail("consume: not every record within 120 s");
    }
    let records = total.load(Ordering::Relaxed);
    if records < args.count {
        fail(&format!("consume: {records} of {} records", args.count));
    }
    report_consume(
        CLIENT,
        records,
        bytes.load(Ordering::Relaxed),
        started.elapsed(),
    );
}
