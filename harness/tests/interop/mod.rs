//! Interoperability with librdkafka (Python confluent-kafka, `rdkafka.py` next
//! to this file) both ways, against the real broker:
//! - librdkafka produces, kafka-wire fetches and decodes every field;
//! - kafka-wire produces, librdkafka consumes and reports every field;
//! - librdkafka runs transactions, kafka-wire decodes the broker's markers;
//! - this client runs transactions with aborts, librdkafka's read_committed
//!   consumer reads exactly the committed records, in every codec.
//!
//! Without python3 + confluent-kafka these tests fail with the setup command:
//! a skipped interop proof would read as a passed one.

mod java;
mod java_group;

use std::time::Duration;

use harness::broker::test_broker;
use harness::fixtures::{
    expected_headers, expected_record, rdkafka, rdkafka_produce, RECORDS_PER_TRANSACTION,
    TRANSACTIONS,
};
use harness::wire_ops;
use kafka_wire::records::{
    BatchBuilder, BatchReader, Compression, ControlType, ProducerState, Record, RecordBatch,
};
use kafka_wire::Connection;
use serde_json::{json, Value};

use super::{connection, unique_topic};

/// Records per codec in both directions.
const RECORDS: usize = 50;

/// Runs the peer script; a failure (including missing Python) is a test failure.
async fn peer(args: &[&str]) -> String {
    rdkafka(args)
        .await
        .unwrap_or_else(|error| panic!("{error}"))
}

/// `count` records of `topic` as librdkafka's consumer reads them under
/// `isolation`, one JSON value each.
async fn rdkafka_consume(bootstrap: &str, topic: &str, count: &str, isolation: &str) -> Vec<Value> {
    json_lines(
        &peer(&[
            "consume",
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--count",
            count,
            "--isolation",
            isolation,
        ])
        .await,
    )
}

/// One JSON value per stdout line.
fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// Fetches partition 0 from offset 0, batch after batch, until `done` is
/// satisfied (a produce acknowledged with acks=all can still take a fetch or
/// two to show up on some brokers).
async fn fetch_until(
    connection: &Connection,
    topic: &str,
    done: impl Fn(&[RecordBatch]) -> bool,
) -> Vec<RecordBatch> {
    let mut batches: Vec<RecordBatch> = Vec::new();
    let mut offset = 0;
    for _ in 0..100 {
        if done(&batches) {
            return batches;
        }
        let fetched = wire_ops::fetch(connection, topic, 0, offset, false)
            .await
            .expect("fetch");
        let new: Vec<RecordBatch> = BatchReader::new(fetched.records)
            .collect::<Result<_, _>>()
            .expect("decode");
        match new.last() {
            Some(last) => offset = last.header.next_offset(),
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
        batches.extend(new);
    }
    panic!(
        "{topic}: fetched {} batches, never the expected set: {batches:#?}",
        batches.len()
    );
}

fn records_in(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.records.len()).sum()
}

/// Checks one decoded record against record `i` of `rdkafka.py`'s content.
fn assert_record(record: &Record, offset: i64, prefix: &str, i: usize) {
    let (key, value, timestamp) = expected_record(prefix, i);
    let what = format!("{prefix} record {i}");
    assert_eq!(record.offset, offset, "{what}: offset");
    assert_eq!(record.key.as_ref(), Some(&key), "{what}: key");
    assert_eq!(record.value.as_ref(), Some(&value), "{what}: value");
    assert_eq!(record.timestamp, timestamp, "{what}: timestamp");
    assert_eq!(
        record.headers,
        expected_headers(),
        "{what}: headers (order, duplicates, null)"
    );
}

/// Record `i` as `rdkafka.py consume` prints it: bytes as hex, null as null.
fn expected_json(prefix: &str, i: usize, offset: i64) -> Value {
    let (key, value, timestamp) = expected_record(prefix, i);
    let headers: Vec<Value> = expected_headers()
        .iter()
        .map(|h| json!([String::from_utf8_lossy(&h.key), h.value.as_deref().map(hex)]))
        .collect();
    json!({
        "partition": 0,
        "offset": offset,
        "timestamp": timestamp,
        "key": hex(&key),
        "value": hex(&value),
        "headers": headers,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn librdkafka_batches_decode_field_by_field() {
    let bootstrap = test_broker::bootstrap();
    let connection = connection().await;
    for codec in Compression::ALL {
        let topic = unique_topic(&format!("rdk-to-wire-{codec}"));
        wire_ops::create_topic(&connection, &topic, 1)
            .await
            .unwrap();
        let leader = wire_ops::leader_connection(&connection, &topic, 0)
            .await
            .unwrap();
        let report = rdkafka_produce(&bootstrap, &topic, codec, RECORDS)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let delivered = &json_lines(&report)[0]["offsets"];
        assert_eq!(
            delivered,
            &json!((0..RECORDS).collect::<Vec<_>>()),
            "{codec}: librdkafka's delivered offsets"
        );

        let batches = fetch_until(&leader, &topic, |b| records_in(b) >= RECORDS).await;
        // rdkafka.py lingers 10 s and then flushes: all records in one batch.
        assert_eq!(
            batches.len(),
            1,
            "{codec}: librdkafka wrote {} batches",
            batches.len()
        );
        let batch = &batches[0];
        assert_eq!(
            batch.header.attributes.compression, codec,
            "{codec}: batch compression attribute"
        );
        assert_eq!(
            batch.records.len(),
            RECORDS,
            "{codec}: records in the batch"
        );
        for (i, record) in batch.records.iter().enumerate() {
            assert_record(record, i as i64, codec.name(), i);
        }
    }
}

#[tokio::test]
async fn kafka_wire_batches_are_read_by_librdkafka() {
    let bootstrap = test_broker::bootstrap();
    let connection = connection().await;
    let count = RECORDS.to_string();
    for codec in Compression::ALL {
        let topic = unique_topic(&format!("wire-to-rdk-{codec}"));
        wire_ops::create_topic(&connection, &topic, 1)
            .await
            .unwrap();
        let leader = wire_ops::leader_connection(&connection, &topic, 0)
            .await
            .unwrap();
        let mut builder = BatchBuilder::new(codec);
        for i in 0..RECORDS {
            let (key, value, timestamp) = expected_record(codec.name(), i);
            builder.append(timestamp, Some(&key), Some(&value), &expected_headers());
        }
        let batch = builder.build(ProducerState::NONE).unwrap();
        let base = wire_ops::produce(&leader, &topic, 0, batch, -1, None)
            .await
            .unwrap();
        assert_eq!(base, Some(0), "{codec}: base offset of the only batch");

        let consumed = rdkafka_consume(&bootstrap, &topic, &count, "read_uncommitted").await;
        assert_eq!(
            consumed.len(),
            RECORDS,
            "{codec}: records librdkafka consumed"
        );
        for (i, line) in consumed.iter().enumerate() {
            assert_eq!(
                line,
                &expected_json(codec.name(), i, i as i64),
                "{codec}: record {i} as librdkafka read it"
            );
        }
    }
}

#[tokio::test]
async fn librdkafka_transaction_markers_decode_in_order() {
    let bootstrap = test_broker::bootstrap();
    let connection = connection().await;
    let topic = unique_topic("rdk-transactions");
    wire_ops::create_topic(&connection, &topic, 1)
        .await
        .unwrap();
    let leader = wire_ops::leader_connection(&connection, &topic, 0)
        .await
        .unwrap();
    peer(&["transactions", "--bootstrap", &bootstrap, "--topic", &topic]).await;

    let batches = fetch_until(&leader, &topic, |b| {
        b.iter().filter(|b| b.header.attributes.control).count() == TRANSACTIONS.len()
    })
    .await;
    let marker_batch = batches
        .iter()
        .find(|b| b.header.attributes.control)
        .unwrap();
    let (producer_id, epoch) = (
        marker_batch.header.producer_id,
        marker_batch.header.producer_epoch,
    );
    assert!(
        producer_id >= 0,
        "markers carry the transactional producer id, got {producer_id}"
    );

    // Walk the log in order: data records belong to the transaction whose
    // marker comes next.
    let (mut transaction, mut in_transaction) = (0, 0);
    let (mut data_offsets, mut marker_offsets) = (Vec::new(), Vec::new());
    for batch in &batches {
        let header = &batch.header;
        assert_eq!(
            (header.producer_id, header.producer_epoch),
            (producer_id, epoch),
            "batch at {}",
            header.base_offset
        );
        assert!(
            header.attributes.transactional,
            "batch at {} is not transactional",
            header.base_offset
        );
        if let Some(marker) = batch.control_record() {
            let expected = if TRANSACTIONS[transaction] == "commit" {
                ControlType::Commit
            } else {
                ControlType::Abort
            };
            assert_eq!(
                marker.expect("control record").kind,
                expected,
                "marker {transaction}"
            );
            assert_eq!(
                in_transaction, RECORDS_PER_TRANSACTION,
                "records before marker {transaction}"
            );
            marker_offsets.push(header.base_offset);
            (transaction, in_transaction) = (transaction + 1, 0);
            continue;
        }
        for record in &batch.records {
            let prefix = format!("txn{transaction}-{}", TRANSACTIONS[transaction]);
            assert_record(record, record.offset, &prefix, in_transaction);
            data_offsets.push(record.offset);
            in_transaction += 1;
        }
    }
    // Each marker takes the offset right after its transaction's five
    // records (Apache Kafka writes it once the transaction ends).
    let expected_data: Vec<i64> = [0..5, 6..11, 12..17].into_iter().flatten().collect();
    assert_eq!(data_offsets, expected_data, "data record offsets");
    assert_eq!(marker_offsets, [5, 11, 17], "marker offsets");
}

/// This client's transactional producer (compression `codec`) commits,
/// aborts and commits three transactions; librdkafka's read_committed
/// consumer must read exactly the committed records, none of the aborted ones.
#[tokio::test]
async fn librdkafka_read_committed_sees_exactly_our_committed_transactions() {
    const PER_TRANSACTION: usize = 20;
    let bootstrap = test_broker::bootstrap();
    let connection = connection().await;
    for codec in Compression::ALL {
        let topic = unique_topic(&format!("our-txn-to-rdk-{codec}"));
        wire_ops::create_topic(&connection, &topic, 1)
            .await
            .unwrap();
        let committed: Vec<String> =
            our_transactions(&topic, codec, &[true, false, true], PER_TRANSACTION)
                .await
                .iter()
                .map(|value| hex(value.as_bytes()))
                .collect();

        let count = committed.len().to_string();
        let consumed = rdkafka_consume(&bootstrap, &topic, &count, "read_committed").await;
        let values: Vec<String> = consumed
            .iter()
            .map(|record| record["value"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(
            values, committed,
            "{codec}: librdkafka under read_committed"
        );
    }
}

/// This client's transactional producer (compression `codec`) runs one
/// transaction per entry of `commits` (true: commit, false: abort) of
/// `per_transaction` records `{codec}-t{t}-{i}` on partition 0 of `topic`;
/// the aborted records are flushed to the log before their abort marker.
/// Returns the committed values in order.
async fn our_transactions(
    topic: &str,
    codec: Compression,
    commits: &[bool],
    per_transaction: usize,
) -> Vec<String> {
    use semantics::{Producer, ProducerRecord};
    let bootstrap = test_broker::bootstrap();
    let producer = Producer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("transactional.id", unique_topic("our-txn").as_str()),
        ("compression.type", codec.name()),
        ("linger.ms", "5"),
    ])
    .unwrap();
    producer.init_transactions().await.unwrap();
    let mut committed = Vec::new();
    for (t, &commit) in commits.iter().enumerate() {
        producer.begin_transaction().await.unwrap();
        for i in 0..per_transaction {
            let value = harness::java::transaction_value(codec.name(), t, i);
            let record = ProducerRecord::new(topic, value.clone()).partition(0);
            drop(producer.send(record).await.unwrap());
            if commit {
                committed.push(value);
            }
        }
        producer.flush().await;
        if commit {
            producer.commit_transaction().await.unwrap();
        } else {
            producer.abort_transaction().await.unwrap();
        }
    }
    producer.close(Duration::from_secs(5)).await;
    committed
}
