//! Wire-layer tests against Apache Kafka (the shared test cluster of
//! `harness::broker::test_broker`, or `KAFKA_BOOTSTRAP`). One test binary: the
//! cluster is started (or found) once per run.

mod compose;
mod consumer;
mod guarantees;
mod interop;
mod patterns;
mod producer;
mod security;
mod transactions;

use std::time::Duration;

use harness::broker::test_broker;
use harness::broker::Cluster;
use harness::fixtures::unique_topic;
use harness::wire_ops;
use kafka_wire::conn::{connect, ConnectionConfig};
use kafka_wire::protocol::messages::{FetchRequest, MetadataRequest, ProduceRequest};
use kafka_wire::records::{BatchBuilder, BatchReader, Compression, ProducerState};
use kafka_wire::Connection;

async fn connection() -> Connection {
    connect(&test_broker::bootstrap(), None, ConnectionConfig::default())
        .await
        .expect("connect to the test broker")
}

fn batch(values: &[&str], codec: Compression) -> bytes::Bytes {
    let mut builder = BatchBuilder::new(codec);
    for value in values {
        builder.append(1_700_000_000_000, None, Some(value.as_bytes()), &[]);
    }
    builder.build(ProducerState::NONE).unwrap()
}

#[tokio::test]
async fn api_versions_negotiates_the_apis_the_client_needs() {
    let connection = connection().await;
    let versions = connection.versions();
    for (api, version) in [
        ("Produce", versions.version_for::<ProduceRequest>()),
        ("Fetch", versions.version_for::<FetchRequest>()),
        ("Metadata", versions.version_for::<MetadataRequest>()),
    ] {
        let version = version.unwrap_or_else(|e| panic!("{api}: {e}"));
        assert!(version >= 3, "{api} negotiated v{version}");
    }
}

#[tokio::test]
async fn every_codec_round_trips_through_the_broker() {
    let report = harness::smoke::run(&test_broker::bootstrap(), 200)
        .await
        .expect("smoke run");
    assert_eq!(report.codecs.len(), 5);
    for codec in &report.codecs {
        assert_eq!(codec.verified, 200, "{}", codec.codec);
    }
}

#[tokio::test]
async fn pipelined_produces_get_consecutive_offsets() {
    let connection = connection().await;
    let topic = unique_topic("pipeline");
    wire_ops::create_topic(&connection, &topic, 1)
        .await
        .unwrap();
    let connection = wire_ops::leader_connection(&connection, &topic, 0)
        .await
        .unwrap();
    // Twenty requests in flight at once on one connection.
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (connection, topic, value) = (connection.clone(), topic.clone(), format!("v{i}"));
        sends.spawn(async move {
            wire_ops::produce(
                &connection,
                &topic,
                0,
                batch(&[&value, &value], Compression::None),
                -1,
                None,
            )
            .await
        });
    }
    let mut offsets: Vec<i64> = sends
        .join_all()
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    offsets.sort();
    assert_eq!(offsets, (0..20).map(|i| i * 2).collect::<Vec<_>>());
}

#[tokio::test]
async fn acks_zero_is_written_without_a_response() {
    let connection = connection().await;
    let topic = unique_topic("acks0");
    wire_ops::create_topic(&connection, &topic, 1)
        .await
        .unwrap();
    let connection = wire_ops::leader_connection(&connection, &topic, 0)
        .await
        .unwrap();
    let offset = wire_ops::produce(
        &connection,
        &topic,
        0,
        batch(&["fire", "forget"], Compression::Lz4),
        0,
        None,
    )
    .await
    .unwrap();
    assert_eq!(offset, None);
    // Nothing answers acks=0; poll until the broker has appended it.
    let mut values = Vec::new();
    for _ in 0..50 {
        let fetched = wire_ops::fetch(&connection, &topic, 0, 0, false)
            .await
            .unwrap();
        values = BatchReader::new(fetched.records)
            .flat_map(|b| b.unwrap().records)
            .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap())
            .collect();
        if !values.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(values, ["fire", "forget"]);
    assert!(!connection.is_poisoned());
}

#[tokio::test]
async fn a_node_keeps_acknowledged_records_across_sigkill() {
    if test_broker::is_external() {
        eprintln!("KAFKA_BOOTSTRAP is set: this test kills a node of its own cluster, so it runs only without it");
        return;
    }
    let mut broker = Cluster::start(test_broker::own_cluster(1))
        .await
        .expect("start a one-node cluster");
    let topic = unique_topic("durable");
    {
        let connection = connect(&broker.bootstrap(), None, ConnectionConfig::default())
            .await
            .unwrap();
        wire_ops::create_topic(&connection, &topic, 1)
            .await
            .unwrap();
        wire_ops::produce(
            &connection,
            &topic,
            0,
            batch(&["a", "b", "c"], Compression::Zstd),
            -1,
            None,
        )
        .await
        .unwrap();
    }
    broker.kill(1);
    broker.restart(1).await.expect("restart on the same data");
    let connection = connect(&broker.bootstrap(), None, ConnectionConfig::default())
        .await
        .unwrap();
    // The restarted node leads again once it has recovered its log.
    let connection = wire_ops::leader_connection(&connection, &topic, 0)
        .await
        .unwrap();
    let fetched = wire_ops::fetch(&connection, &topic, 0, 0, false)
        .await
        .unwrap();
    let values: Vec<_> = BatchReader::new(fetched.records)
        .flat_map(|b| b.unwrap().records)
        .map(|r| r.value.unwrap())
        .collect();
    assert_eq!(values, ["a", "b", "c"]);
}
