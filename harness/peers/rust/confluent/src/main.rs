//! The confluent-kafka peer of `harness bench --peers`: Confluent's native
//! Rust client (`confluent-kafka` 1.0.0, a translation of the Java client).
//! An idempotent `KafkaProducer` timed by per-record completion callbacks,
//! and a `KafkaConsumer` with no group, assigned every partition from the
//! beginning.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use confluent_kafka::common::serialization::{ByteArrayDeserializer, ByteArraySerializer};
use confluent_kafka::common::TopicPartition;
use confluent_kafka::consumer::{Consumer, ConsumerConfig, KafkaConsumer};
use confluent_kafka::producer::{
    callback, Callback, KafkaProducer, Producer, ProducerConfig, ProducerRecord,
};
use peers_common::{record, report_consume, report_produce, Args};

const CLIENT: &str = "confluent-kafka 1.0.0 (Rust)";

fn props(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::main]
async fn main() {
    if let Err(message) = run().await {
        eprintln!("{message}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let args = Args::parse();
    match args.mode.as_str() {
        "produce" => produce(&args).await,
        "consume" => consume(&args).await,
        other => Err(format!("--mode produce|consume, got {other}")),
    }
}

/// What the completion callbacks record.
struct Acks {
    latencies: Mutex<Vec<Duration>>,
    failed: AtomicUsize,
}

async fn produce(args: &Args) -> Result<(), String> {
    let batch = args.batch.to_string();
    let config = ProducerConfig::new(&props(&[
        ("bootstrap.servers", args.bootstrap.as_str()),
        ("enable.idempotence", "true"),
        ("acks", "all"),
        ("linger.ms", "5"),
        ("batch.size", batch.as_str()),
    ]))
    .map_err(|e| format!("producer config: {e}"))?;
    let producer = KafkaProducer::<Vec<u8>, Vec<u8>>::new(
        config,
        ByteArraySerializer::new(),
        ByteArraySerializer::new(),
    )
    .map_err(|e| format!("producer: {e}"))?;
    // Fetch the topic's metadata up front: a missing topic or an unreachable
    // cluster fails here, once, rather than in every record's callback.
    producer
        .partitions_for(&args.topic)
        .await
        .map_err(|e| format!("metadata: {e}"))?;

    let acks = Arc::new(Acks {
        latencies: Mutex::new(Vec::with_capacity(args.count)),
        failed: AtomicUsize::new(0),
    });
    let started = Instant::now();
    for i in 0..args.count {
        let (key, value) = record(i, args.size);
        let sent = Instant::now();
        let sink = Arc::clone(&acks);
        let on_ack: Box<dyn Callback> = Box::new(callback::new(move |_, error| {
            if let Some(error) = error {
                if sink.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!("delivery: {error}");
                }
            }
            sink.latencies
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(sent.elapsed());
        }));
        // The byte-slice `send` (inherent on `KafkaProducer<Vec<u8>, Vec<u8>>`)
        // copies key and value straight into the batch; it returns once the
        // record is appended, with the acknowledgement still to come.
        let record = ProducerRecord::with_key(
            args.topic.clone(),
            Some(key.as_slice()),
            Some(value.as_slice()),
        );
        producer
            .send(record, Some(on_ack))
            .await
            .map_err(|e| format!("send: {e}"))?;
    }
    // Afterwards every record's callback has run.
    producer.flush().await.map_err(|e| format!("flush: {e}"))?;
    let elapsed = started.elapsed();
    producer.close().await.map_err(|e| format!("close: {e}"))?;

    let latencies = std::mem::take(
        &mut *acks
            .latencies
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    report_produce(
        CLIENT,
        args,
        elapsed,
        latencies,
        acks.failed.load(Ordering::Relaxed),
    );
    Ok(())
}

async fn consume(args: &Args) -> Result<(), String> {
    // Without a `group.id` nothing is committed and no group is joined; the
    // KIP-848 protocol is set because the default, `classic`, is refused.
    let config = ConsumerConfig::new(&props(&[
        ("bootstrap.servers", args.bootstrap.as_str()),
        ("group.protocol", "consumer"),
        ("auto.offset.reset", "earliest"),
        ("fetch.max.wait.ms", "100"),
    ]))
    .map_err(|e| format!("consumer config: {e}"))?;
    let mut consumer = KafkaConsumer::<Vec<u8>, Vec<u8>>::new(
        config,
        ByteArrayDeserializer::new(),
        ByteArrayDeserializer::new(),
    )
    .map_err(|e| format!("consumer: {e}"))?;
    let partitions: Vec<TopicPartition> = consumer
        .partitions_for(&args.topic)
        .await
        .map_err(|e| format!("metadata: {e}"))?
        .iter()
        .map(|p| TopicPartition::new(args.topic.as_str(), p.partition()))
        .collect();
    if partitions.is_empty() {
        return Err(format!("topic {} has no partitions", args.topic));
    }

    let started = Instant::now();
    consumer
        .assign(partitions.clone())
        .await
        .map_err(|e| format!("assign: {e}"))?;
    consumer
        .seek_to_beginning(&partitions)
        .await
        .map_err(|e| format!("seek: {e}"))?;
    let (mut records, mut bytes, mut last) = (0usize, 0usize, started);
    let deadline = started + Duration::from_secs(120);
    while records < args.count {
        if Instant::now() > deadline {
            return Err(format!("consume: {records} of {} within 120 s", args.count));
        }
        let batch = consumer
            .poll(Duration::from_millis(100))
            .await
            .map_err(|e| format!("poll: {e}"))?;
        if batch.is_empty() {
            continue;
        }
        for record in &batch {
            records += 1;
            bytes += record.value().map_or(0, Vec::len);
        }
        last = Instant::now();
    }
    report_consume(CLIENT, records, bytes, last - started);
    // The report is out; a failure to leave cleanly changes nothing in it.
    let _ = consumer.close().await;
    Ok(())
}
