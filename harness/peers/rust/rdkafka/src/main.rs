//! The librdkafka peer of `harness bench --peers`, through the `rdkafka`
//! crate: a `ThreadedProducer` with a delivery callback and a
//! `BaseConsumer` assigned every partition — librdkafka's cheapest paths,
//! with no Python in between.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use peers_common::{fail, record, report_consume, report_produce, Args};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

fn client_name() -> String {
    format!(
        "librdkafka {} (rdkafka crate)",
        rdkafka::util::get_rdkafka_version().1
    )
}

/// Collects delivery latencies (the opaque is the send time).
#[derive(Default)]
struct Deliveries {
    latencies: Mutex<Vec<Duration>>,
    failed: AtomicUsize,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<Instant>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Self::DeliveryOpaque) {
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.latencies.lock().unwrap().push(sent.elapsed());
    }
}

fn main() {
    let args = Args::parse();
    match args.mode.as_str() {
        "produce" => produce(&args),
        "consume" => consume(&args),
        other => fail(&format!("--mode produce|consume, got {other}")),
    }
}

fn produce(args: &Args) {
    let producer: ThreadedProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("batch.size", args.batch.to_string())
        .set("queue.buffering.max.messages", "1000000")
        .create_with_context(Deliveries::default())
        .unwrap_or_else(|e| fail(&format!("producer: {e}")));
    let started = Instant::now();
    for i in 0..args.count {
        let (key, value) = record(i, args.size);
        let mut next = BaseRecord::with_opaque_to(&args.topic, Box::new(Instant::now()))
            .key(&key)
            .payload(&value);
        loop {
            match producer.send(next) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    next = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => fail(&format!("send: {e}")),
            }
        }
    }
    producer
        .flush(Timeout::Never)
        .unwrap_or_else(|e| fail(&format!("flush: {e}")));
    let elapsed = started.elapsed();
    let context = producer.context();
    let latencies = std::mem::take(&mut *context.latencies.lock().unwrap());
    let failed = context.failed.load(Ordering::Relaxed);
    report_produce(&client_name(), args, elapsed, latencies, failed);
}

fn consume(args: &Args) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("group.id", format!("bench-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .unwrap_or_else(|e| fail(&format!("consumer: {e}")));
    let metadata = consumer
        .fetch_metadata(Some(&args.topic), Duration::from_secs(20))
        .unwrap_or_else(|e| fail(&format!("metadata: {e}")));
    let mut assignment = TopicPartitionList::new();
    for topic in metadata.topics() {
        for partition in topic.partitions() {
            assignment
                .add_partition_offset(topic.name(), partition.id(), Offset::Beginning)
                .unwrap_or_else(|e| fail(&format!("assign: {e}")));
        }
    }
    let started = Instant::now();
    consumer
        .assign(&assignment)
        .unwrap_or_else(|e| fail(&format!("assign: {e}")));
    let (mut records, mut bytes) = (0, 0);
    let mut last = started;
    let deadline = started + Duration::from_secs(120);
    while records < args.count {
        if Instant::now() > deadline {
            fail(&format!(
                "consume: {records} of {} within 120 s",
                args.count
            ));
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                records += 1;
                bytes += message.payload().map_or(0, <[u8]>::len);
                last = Instant::now();
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => fail(&format!("consume: {e}")),
        }
    }
    report_consume(&client_name(), records, bytes, last - started);
}
