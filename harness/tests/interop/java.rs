//! Interoperability with the Java client (kafka-clients and kafka-tools at
//! the broker's version), the reference every Kafka shop runs:
//! - bytes both ways: headers with a repeated key and a null value, null keys
//!   and values, create and log-append timestamps;
//! - transactions both ways, in every codec, read under read_committed;
//! - one consumer group of Java and this client, range and cooperative-sticky,
//!   members joining and leaving mid-stream;
//! - this project's exactly-once processor beside Java's
//!   TransactionalMessageCopier in one group, one of each killed mid-run.
//!
//! Without Java or the Kafka jars these tests fail with the install command.

use std::time::{Duration, Instant};

use harness::broker::test_broker;
use harness::fixtures::{expected_headers, unique_topic};
use harness::java;
use harness::wire_ops;
use kafka_wire::records::{Compression, TimestampType};
use semantics::consumer::{Consumer, ConsumerRecord, TopicPartition};
use semantics::{Producer, ProducerRecord};
use serde_json::{json, Value};

use super::{connection, hex, json_lines, our_transactions};

/// Records per codec in the byte-for-byte cases.
const RECORDS: usize = 20;

async fn java(args: &[&str]) -> String {
    java::run(args)
        .await
        .unwrap_or_else(|error| panic!("{error}"))
}

async fn topic(prefix: &str, partitions: i32, configs: &[(&str, &str)]) -> String {
    let topic = unique_topic(prefix);
    wire_ops::create_topic_with_configs(&connection().await, &topic, partitions, configs)
        .await
        .unwrap();
    topic
}

const LOG_APPEND_TIME: (&str, &str) = ("message.timestamp.type", "LogAppendTime");

/// Every codec on a create-time topic, then `log_append_codec` on a
/// log-append-time one: (codec, log-append time, topic configs).
fn byte_cases(
    log_append_codec: Compression,
) -> impl Iterator<Item = (Compression, bool, &'static [(&'static str, &'static str)])> {
    let create_time = Compression::ALL.into_iter().map(|c| (c, false, &[][..]));
    create_time.chain([(log_append_codec, true, &[LOG_APPEND_TIME][..])])
}

/// Every record of partition 0 of `topic` as this client's consumer reads
/// it under `isolation`: at least `count`, then everything up to the end.
async fn our_records(topic: &str, isolation: &str, count: usize) -> Vec<ConsumerRecord> {
    let bootstrap = test_broker::bootstrap();
    let mut consumer = Consumer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("isolation.level", isolation),
        ("auto.offset.reset", "earliest"),
        ("fetch.max.wait.ms", "100"),
    ])
    .unwrap();
    consumer
        .assign(vec![TopicPartition::new(topic, 0)])
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut records = Vec::new();
    loop {
        if let Some(record) = consumer.poll(Duration::from_millis(200)).await {
            records.push(record.expect("no consumer error"));
            continue;
        }
        if records.len() >= count && consumer.caught_up().await.unwrap() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}: {} of {count} records in 30 s",
            records.len()
        );
    }
    consumer.close().await;
    records
}

/// Record `i` of the Java peer's content, as its consumer prints it.
fn expected_json(prefix: &str, i: usize, timestamp: i64, timestamp_type: &str) -> Value {
    let (key, value, _) = java::expected_record(prefix, i);
    let headers: Vec<Value> = expected_headers()
        .iter()
        .map(|h| json!([String::from_utf8_lossy(&h.key), h.value.as_deref().map(hex)]))
        .collect();
    json!({
        "partition": 0,
        "offset": i,
        "timestamp": timestamp,
        "timestamp_type": timestamp_type,
        "key": key.as_deref().map(hex),
        "value": value.as_deref().map(hex),
        "headers": headers,
    })
}

/// This client's producer writes the Java peer's content (null keys, null
/// values, duplicate and null headers) in every codec, on a create-time and
/// a log-append-time topic; Java's consumer reads every field as written,
/// and on the log-append-time topic the broker's time this client's
/// delivery report gave.
#[tokio::test]
async fn java_reads_our_records_byte_for_byte() {
    let bootstrap = test_broker::bootstrap();
    let count = RECORDS.to_string();
    for (codec, log_append, configs) in byte_cases(Compression::Zstd) {
        let topic = topic(&format!("wire-to-java-{codec}"), 1, configs).await;
        let producer = Producer::from_properties([
            ("bootstrap.servers", bootstrap.as_str()),
            ("compression.type", codec.name()),
            ("linger.ms", "50"),
        ])
        .unwrap();
        let mut pending = Vec::new();
        for i in 0..RECORDS {
            let (key, value, timestamp) = java::expected_record(codec.name(), i);
            let record = ProducerRecord {
                topic: topic.clone(),
                partition: Some(0),
                key,
                value,
                headers: expected_headers(),
                timestamp: Some(timestamp),
            };
            pending.push(producer.send(record).await.unwrap());
        }
        let mut delivered = Vec::new();
        for delivery in pending {
            delivered.push(delivery.await.expect("delivered"));
        }
        producer.close(Duration::from_secs(5)).await;

        let consumed = json_lines(
            &java(&[
                "consume",
                "--bootstrap",
                &bootstrap,
                "--topic",
                &topic,
                "--count",
                &count,
            ])
            .await,
        );
        assert_eq!(consumed.len(), RECORDS, "{codec}: records Java consumed");
        for (i, line) in consumed.iter().enumerate() {
            let (timestamp, kind) = if log_append {
                assert_ne!(
                    delivered[i].timestamp,
                    java::expected_record("", i).2,
                    "the delivery report gives the log-append time"
                );
                (delivered[i].timestamp, "LogAppendTime")
            } else {
                (java::expected_record("", i).2, "CreateTime")
            };
            assert_eq!(
                line,
                &expected_json(codec.name(), i, timestamp, kind),
                "{codec} (log-append time: {log_append}): record {i} as Java read it"
            );
        }
    }
}

/// Java's producer writes its content in every codec, on a create-time and
/// a log-append-time topic; this client's consumer reads every field.
#[tokio::test]
async fn our_consumer_reads_java_records_byte_for_byte() {
    let bootstrap = test_broker::bootstrap();
    let count = RECORDS.to_string();
    for (codec, log_append, configs) in byte_cases(Compression::Lz4) {
        let topic = topic(&format!("java-to-wire-{codec}"), 1, configs).await;
        let report = java(&[
            "produce",
            "--bootstrap",
            &bootstrap,
            "--topic",
            &topic,
            "--codec",
            codec.name(),
            "--prefix",
            codec.name(),
            "--count",
            &count,
        ])
        .await;
        assert_eq!(
            json_lines(&report)[0]["offsets"],
            json!((0..RECORDS).collect::<Vec<_>>()),
            "{codec}: Java's delivered offsets"
        );

        let records = our_records(&topic, "read_uncommitted", RECORDS).await;
        assert_eq!(records.len(), RECORDS, "{codec}: records we consumed");
        let append_time = records[0].timestamp;
        for (i, record) in records.iter().enumerate() {
            let (key, value, create_time) = java::expected_record(codec.name(), i);
            let what = format!("{codec} (log-append time: {log_append}) record {i}");
            assert_eq!(record.offset, i as i64, "{what}: offset");
            assert_eq!(record.key, key, "{what}: key");
            assert_eq!(record.value, value, "{what}: value");
            assert_eq!(record.headers, expected_headers(), "{what}: headers");
            if log_append {
                assert_eq!(
                    record.timestamp_type,
                    TimestampType::LogAppendTime,
                    "{what}"
                );
                // One batch: one append time for all, the broker's, not the producer's.
                assert_eq!(record.timestamp, append_time, "{what}: timestamp");
                assert!(
                    append_time > create_time + 1_000_000,
                    "{what}: {append_time}"
                );
            } else {
                assert_eq!(record.timestamp_type, TimestampType::CreateTime, "{what}");
                assert_eq!(record.timestamp, create_time, "{what}: timestamp");
            }
        }
    }
}

/// Transactions per codec in both directions, every third aborted.
const TRANSACTIONS: usize = 6;
const PER_TRANSACTION: usize = 10;
const ABORT_EVERY: usize = 3;

fn committed_values(codec: &str) -> Vec<String> {
    (0..TRANSACTIONS)
        .filter(|t| (t + 1) % ABORT_EVERY != 0)
        .flat_map(|t| (0..PER_TRANSACTION).map(move |i| java::transaction_value(codec, t, i)))
        .collect()
}

/// Java's transactional producer aborts every third transaction; this
/// client's read_committed consumer reads exactly the committed records, in
/// order, in every codec — and under read_uncommitted the aborted ones too
/// (so they were written, not dropped before the abort).
#[tokio::test]
async fn our_read_committed_sees_exactly_javas_committed_transactions() {
    let bootstrap = test_broker::bootstrap();
    let (transactions, per_transaction, abort_every) = (
        TRANSACTIONS.to_string(),
        PER_TRANSACTION.to_string(),
        ABORT_EVERY.to_string(),
    );
    for codec in Compression::ALL {
        let topic = topic(&format!("java-txn-{codec}"), 1, &[]).await;
        java(&[
            "txn-produce",
            "--bootstrap",
            &bootstrap,
            "--topic",
            &topic,
            "--codec",
            codec.name(),
            "--transactions",
            &transactions,
            "--per-txn",
            &per_transaction,
            "--abort-every",
            &abort_every,
        ])
        .await;
        let committed = committed_values(codec.name());
        let values = |records: Vec<ConsumerRecord>| -> Vec<String> {
            records
                .iter()
                .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into())
                .collect()
        };
        let read = values(our_records(&topic, "read_committed", committed.len()).await);
        assert_eq!(read, committed, "{codec}: read_committed");
        let all = our_records(&topic, "read_uncommitted", TRANSACTIONS * PER_TRANSACTION).await;
        assert_eq!(
            all.len(),
            TRANSACTIONS * PER_TRANSACTION,
            "{codec}: read_uncommitted sees the aborted records too"
        );
    }
}

/// This client's transactional producer aborts every third transaction;
/// Java's read_committed consumer reads exactly the committed records, in
/// order, in every codec.
#[tokio::test]
async fn java_read_committed_sees_exactly_our_committed_transactions() {
    let bootstrap = test_broker::bootstrap();
    for codec in Compression::ALL {
        let topic = topic(&format!("txn-to-java-{codec}"), 1, &[]).await;
        let commits: Vec<bool> = (0..TRANSACTIONS)
            .map(|t| (t + 1) % ABORT_EVERY != 0)
            .collect();
        let written = our_transactions(&topic, codec, &commits, PER_TRANSACTION).await;
        let committed = committed_values(codec.name());
        assert_eq!(written, committed, "{codec}: what the producer committed");
        let count = committed.len().to_string();
        let consumed = json_lines(
            &java(&[
                "consume",
                "--bootstrap",
                &bootstrap,
                "--topic",
                &topic,
                "--count",
                &count,
                "--isolation",
                "read_committed",
            ])
            .await,
        );
        let values: Vec<String> = consumed
            .iter()
            .map(|r| r["value"].as_str().unwrap_or_default().to_owned())
            .collect();
        let expected: Vec<String> = committed.iter().map(|v| hex(v.as_bytes())).collect();
        assert_eq!(values, expected, "{codec}: Java under read_committed");
    }
}
