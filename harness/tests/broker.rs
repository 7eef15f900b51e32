//! Wire-layer tests against Apache Kafka (the shared test cluster of
//! `harness::broker::test_broker`, or `KAFKA_BOOTSTRAP`). One test binary: the
//! cluster is started (or found) once per run.

mod compose;
mod consumer;
mod guarantees;
mod interop;
mod patterns;
mod producer;
mod rebalance;
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
        wire_ops::await_leadership(&connection, &topic, 0)
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

/// Users still run Kafka 3.x: the core checks on a one-node Apache Kafka 3.9
/// cluster (`KAFKA_3_VERSION`, default 3.9.2) — every codec through the wire
/// layer, the idempotent producer, and transactions read back under
/// read_committed (the committed set exactly, nothing aborted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_checks_pass_on_kafka_3_9() {
    use semantics::consumer::{Consumer, TopicPartition};
    use semantics::{Producer, ProducerRecord};
    if test_broker::is_external() {
        eprintln!("KAFKA_BOOTSTRAP is set: this test starts a Kafka 3.9 cluster of its own, so it runs only without it");
        return;
    }
    let version = std::env::var("KAFKA_3_VERSION").unwrap_or_else(|_| "3.9.2".into());
    let cluster = Cluster::start(harness::broker::ClusterOptions {
        version: version.clone(),
        ..test_broker::own_cluster(1)
    })
    .await
    .unwrap_or_else(|e| panic!("a Kafka {version} cluster: {e}"));
    assert_eq!(cluster.version(), version);
    let bootstrap = cluster.bootstrap();

    let report = harness::smoke::run(&bootstrap, 100)
        .await
        .expect("smoke run");
    assert!(
        report.codecs.iter().all(|c| c.verified == 100),
        "{report:?}"
    );

    let topic = unique_topic("kafka3");
    wire_ops::create_topic(&connection_to(&bootstrap).await, &topic, 1)
        .await
        .unwrap();
    let idempotent =
        Producer::from_properties([("bootstrap.servers", bootstrap.as_str())]).unwrap();
    let delivered = idempotent
        .send(ProducerRecord::new(topic.as_str(), "plain").partition(0))
        .await
        .unwrap();
    delivered.await.expect("idempotent delivery");
    idempotent.close(Duration::from_secs(5)).await;

    let transactional = Producer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("transactional.id", unique_topic("kafka3-txn").as_str()),
    ])
    .unwrap();
    transactional.init_transactions().await.unwrap();
    for (t, commit) in [(0, true), (1, false), (2, true)] {
        transactional.begin_transaction().await.unwrap();
        for i in 0..5 {
            drop(
                transactional
                    .send(ProducerRecord::new(topic.as_str(), format!("t{t}-{i}")).partition(0))
                    .await
                    .unwrap(),
            );
        }
        // On the log before the abort, so read_committed must hide them.
        transactional.flush().await;
        if commit {
            transactional.commit_transaction().await.unwrap();
        } else {
            transactional.abort_transaction().await.unwrap();
        }
    }
    transactional.close(Duration::from_secs(5)).await;

    let mut consumer = Consumer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("auto.offset.reset", "earliest"),
        ("isolation.level", "read_committed"),
        ("fetch.max.wait.ms", "100"),
    ])
    .unwrap();
    consumer
        .assign(vec![TopicPartition::new(&topic, 0)])
        .await
        .unwrap();
    let mut values = Vec::new();
    while let Some(record) = consumer.poll(Duration::from_secs(3)).await {
        let record = record.expect("no consumer error");
        values.push(String::from_utf8_lossy(&record.value.unwrap_or_default()).into_owned());
    }
    consumer.close().await;
    let expected: Vec<String> = std::iter::once("plain".to_owned())
        .chain(
            [0, 2]
                .iter()
                .flat_map(|t| (0..5).map(move |i| format!("t{t}-{i}"))),
        )
        .collect();
    assert_eq!(values, expected, "Kafka {version} under read_committed");
}

async fn connection_to(bootstrap: &str) -> Connection {
    connect(bootstrap, None, ConnectionConfig::default())
        .await
        .expect("connect")
}

/// The cluster API the fault scenarios build on, on a proxied 3-node cluster
/// of the test's own: leader and coordinator lookups, a controlled stop that
/// moves leadership, a restart that brings the node back, SIGSTOP/SIGCONT,
/// and a blackholed proxy that holds bytes without closing, then heals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_kills_moves_pauses_and_partitions_nodes() {
    use harness::broker::cluster::CoordinatorKind;
    if test_broker::is_external() {
        eprintln!("KAFKA_BOOTSTRAP is set: this test needs a cluster of its own, so it runs only without it");
        return;
    }
    let mut cluster = Cluster::start(harness::broker::ClusterOptions {
        proxied: true,
        ..test_broker::own_cluster(3)
    })
    .await
    .expect("a proxied 3-node cluster");
    let ids = cluster.node_ids();
    assert_eq!(ids, [1, 2, 3]);
    let topic = unique_topic("cluster-api");
    wire_ops::create_topic(&connection_to(&cluster.bootstrap()).await, &topic, 3)
        .await
        .unwrap();
    let leader = wait_for(|| cluster.leader_of(&topic, 0), |l| l.is_some())
        .await
        .flatten()
        .expect("a leader");
    for kind in [CoordinatorKind::Group, CoordinatorKind::Transaction] {
        let node = cluster.coordinator(kind, "cluster-api").await.unwrap();
        assert!(ids.contains(&node), "{kind:?} coordinator {node}");
    }

    // A controlled shutdown moves leadership to another replica.
    cluster.stop(leader).await;
    let moved = wait_for(
        || cluster.leader_of(&topic, 0),
        |l| l.is_some_and(|n| n != leader),
    )
    .await
    .expect("a new leader");
    assert_ne!(moved, Some(leader));
    cluster.restart(leader).await.expect("restart on its data");

    // SIGSTOP: the kernel still accepts connections, the node answers
    // nothing; SIGCONT: it answers again.
    let quick = ConnectionConfig {
        request_timeout: Duration::from_secs(1),
        ..ConnectionConfig::default()
    };
    let direct = format!("127.0.0.1:{}", cluster.node(leader).ports.client);
    assert!(cluster.pause(leader));
    assert!(connect(&direct, None, quick.clone()).await.is_err());
    assert!(cluster.resume(leader));
    connect(&direct, None, ConnectionConfig::default())
        .await
        .expect("answers once resumed");

    // A blackholed proxy holds the handshake: nothing answers, nothing closes.
    let proxy = cluster.proxy(leader).expect("proxied");
    proxy.blackhole(true);
    assert!(connect(&proxy.address(), None, quick.clone())
        .await
        .is_err());
    assert!(
        proxy
            .stats
            .blackholed_connections
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    proxy.blackhole(false);
    connect(&proxy.address(), None, quick)
        .await
        .expect("answers once healed");
}

/// Polls `probe` every 200 ms for up to 60 s until `done` holds.
async fn wait_for<T, F, Fut>(probe: F, done: impl Fn(&T) -> bool) -> Option<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, harness::broker::BrokerError>>,
{
    for _ in 0..300 {
        if let Ok(value) = probe().await {
            if done(&value) {
                return Some(value);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}
