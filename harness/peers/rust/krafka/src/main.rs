//! The krafka peer of `harness bench --peers`: krafka's idempotent
//! `Producer` (acks=all, its default) pipelining with `enqueue`, and a
//! group-less `Consumer` that takes every partition of the topic from the
//! earliest offset.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use krafka::consumer::AutoOffsetReset;
use krafka::producer::{Acks, DeliveryHandle, RecordMetadata};
use krafka::{Kafka, Record};
use peers_common::{fail, record, report_consume, report_produce, Args};

const CLIENT: &str = "krafka 0.28.1";

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let kafka = Kafka::builder(args.bootstrap.clone())
        .client_id("krafka-bench")
        .connect()
        .await
        .unwrap_or_else(|e| fail(&format!("connect: {e}")));
    match args.mode.as_str() {
        "produce" => produce(&args, &kafka).await,
        "consume" => consume(&args, &kafka).await,
        other => fail(&format!("--mode produce|consume, got {other}")),
    }
}

/// A record's acknowledgement, resolving with the time since `start`.
struct Timed {
    start: Instant,
    handle: DeliveryHandle,
}

impl Future for Timed {
    type Output = (krafka::Result<RecordMetadata>, Duration);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let result = std::task::ready!(Pin::new(&mut self.handle).poll(cx));
        Poll::Ready((result, self.start.elapsed()))
    }
}

async fn produce(args: &Args, kafka: &Kafka) {
    let producer = kafka
        .producer()
        .idempotent(true)
        .acks(Acks::All)
        .linger(Duration::from_millis(5))
        .batch_size(args.batch)
        .build()
        .await
        .unwrap_or_else(|e| fail(&format!("producer: {e}")));

    // Acknowledgements are awaited on their own task while this one keeps
    // enqueueing, so each latency ends when its acknowledgement arrives.
    let (sent, mut handles) = tokio::sync::mpsc::unbounded_channel::<Timed>();
    let count = args.count;
    let collector = tokio::spawn(async move {
        let mut pending = FuturesUnordered::<Timed>::new();
        let mut latencies = Vec::with_capacity(count);
        let mut failed = 0usize;
        let mut open = true;
        loop {
            tokio::select! {
                next = handles.recv(), if open => match next {
                    Some(timed) => pending.push(timed),
                    None => open = false,
                },
                Some((result, latency)) = pending.next(), if !pending.is_empty() => match result {
                    Ok(_) => latencies.push(latency),
                    Err(e) => {
                        if failed == 0 {
                            eprintln!("delivery: {e}");
                        }
                        failed += 1;
                    }
                },
                else => break,
            }
        }
        (latencies, failed)
    });

    let started = Instant::now();
    for i in 0..args.count {
        let (key, value) = record(i, args.size);
        let start = Instant::now();
        let handle = producer
            .enqueue(Record::new(args.topic.as_str(), value).key(key))
            .await
            .unwrap_or_else(|e| fail(&format!("enqueue: {e}")));
        // The collector only ends once this sender is dropped.
        let _ = sent.send(Timed { start, handle });
    }
    drop(sent);
    let (latencies, failed) = collector
        .await
        .unwrap_or_else(|e| fail(&format!("collector: {e}")));
    let elapsed = started.elapsed();
    producer
        .close()
        .await
        .unwrap_or_else(|e| fail(&format!("close: {e}")));
    report_produce(CLIENT, args, elapsed, latencies, failed);
}

async fn consume(args: &Args, kafka: &Kafka) {
    // No group: `subscribe` assigns this consumer every partition of the
    // topic. `max_poll_records(-1)` hands out (and decodes) whole fetch
    // responses instead of 500 records at a time.
    let consumer = kafka
        .consumer_without_group()
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .max_poll_records(-1)
        .fetch_max_wait(Duration::from_millis(100))
        .build()
        .await
        .unwrap_or_else(|e| fail(&format!("consumer: {e}")));
    let started = Instant::now();
    consumer
        .subscribe([args.topic.as_str()])
        .await
        .unwrap_or_else(|e| fail(&format!("subscribe: {e}")));
    let (mut records, mut bytes) = (0, 0);
    let mut last = started;
    let deadline = started + Duration::from_secs(120);
    while records < args.count {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            fail(&format!(
                "consume: {records} of {} within 120 s",
                args.count
            ));
        }
        let batch = consumer
            .poll(left.min(Duration::from_secs(1)))
            .await
            .unwrap_or_else(|e| fail(&format!("poll: {e}")));
        if !batch.is_empty() {
            records += batch.len();
            bytes += batch
                .iter()
                .map(|r| r.value.as_ref().map_or(0, |v| v.len()))
                .sum::<usize>();
            last = Instant::now();
        }
    }
    consumer
        .close()
        .await
        .unwrap_or_else(|e| fail(&format!("close: {e}")));
    report_consume(CLIENT, records, bytes, last - started);
}
