//! The dead-letter queue against a real broker: a failed record goes through
//! `DeadLetterQueue`, is read back with the consumer, and parses to exactly
//! the record and failure that went in; a DLQ write that fails is an error.

mod request_reply;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use harness::broker::{test_broker, Cluster};
use harness::wire_ops;
use kafka_wire::conn::{connect, ConnectionConfig};
use kafka_wire::records::{Header, TimestampType};
use semantics::consumer::{Consumer, ConsumerRecord, TopicPartition};
use semantics::patterns::dlq::{DeadLetter, DeadLetterQueue, Envelope, Failure, FailureClass};
use semantics::{ProduceError, Producer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_record_lands_in_the_dlq_with_its_context() {
    // A cluster of its own: the topic names are fixed.
    let broker = Cluster::start(test_broker::own_cluster(1))
        .await
        .expect("start a one-node cluster");
    let bootstrap = broker.bootstrap();
    let topic = "payments.DLT";
    let connection = connect(&bootstrap, None, ConnectionConfig::default())
        .await
        .unwrap();
    wire_ops::create_topic(&connection, topic, 1).await.unwrap();

    // The record a handler gave up on, as it was consumed from `payments`.
    let original = ConsumerRecord {
        topic: Arc::from("payments"),
        partition: 5,
        offset: 1_234,
        timestamp: 1_700_000_000_000,
        timestamp_type: TimestampType::CreateTime,
        key: Some(Bytes::from_static(b"customer-9")),
        value: Some(Bytes::from_static(b"{\"amount\": \"NaN\"}")),
        headers: vec![
            Header::new("traceparent", "00-abc-def-01"),
            Header {
                key: Bytes::from_static(b"empty"),
                value: None,
            },
        ],
    };
    let failure = Failure {
        reason: "amount is not a number".into(),
        class: FailureClass::RetriesExhausted,
        attempts: 3,
        first_attempt: UNIX_EPOCH + Duration::from_millis(1_700_000_100_000),
        last_attempt: UNIX_EPOCH + Duration::from_millis(1_700_000_100_700),
    };

    let producer = Producer::from_properties([("bootstrap.servers", bootstrap.as_str())]).unwrap();
    let dlq = DeadLetterQueue::new(Arc::new(producer), topic);
    let before = SystemTime::now();
    let delivery = dlq
        .send(&original, &failure)
        .await
        .expect("DLQ write acknowledged");
    assert_eq!(
        (&*delivery.topic, delivery.partition, delivery.offset),
        (topic, 0, 0)
    );

    let mut consumer = Consumer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("auto.offset.reset", "earliest"),
    ])
    .unwrap();
    consumer
        .assign(vec![TopicPartition::new(topic, 0)])
        .await
        .unwrap();
    let read = consumer
        .poll(Duration::from_secs(30))
        .await
        .expect("a DLQ record within 30 s")
        .expect("consume the DLQ record");
    assert_eq!((&*read.topic, read.partition, read.offset), (topic, 0, 0));
    // A fresh timestamp, not the original's, so retention does not drop it early.
    let sent_ms = before.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!(
        read.timestamp >= sent_ms - 1_000,
        "{} < {sent_ms}",
        read.timestamp
    );
    assert_eq!(read.key, original.key);
    assert_eq!(read.value, original.value);

    let envelope = DeadLetter::try_parse(&read).expect("a well-formed envelope");
    assert_eq!(
        envelope,
        Envelope {
            original: original.clone(),
            failure: failure.clone()
        }
    );
    assert_eq!(&*envelope.original.topic, "payments");
    assert_eq!(
        (envelope.original.partition, envelope.original.offset),
        (5, 1_234)
    );
    assert_eq!(envelope.original.timestamp, 1_700_000_000_000);
    assert_eq!(envelope.original.headers, original.headers);
    assert_eq!(envelope.failure.reason, "amount is not a number");
    assert_eq!(envelope.failure.class, FailureClass::RetriesExhausted);
    assert_eq!(envelope.failure.attempts, 3);
    assert_eq!(envelope.failure.first_attempt, failure.first_attempt);
    assert_eq!(envelope.failure.last_attempt, failure.last_attempt);

    consumer.close().await;
    dlq.producer.close(Duration::from_secs(5)).await;

    // A DLQ write that cannot happen is reported, not swallowed.
    let producer = Producer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("allow.auto.create.topics", "false"),
        ("max.block.ms", "500"),
    ])
    .unwrap();
    let missing = DeadLetterQueue::new(Arc::new(producer), "no-such.DLT");
    let error = missing.send(&original, &failure).await.unwrap_err();
    assert!(
        matches!(error, ProduceError::UnknownTopic { .. }),
        "{error:?}"
    );
    drop(broker);
}
