//! The consumer against the real broker: group split and takeover, resume
//! from committed offsets, read_committed against librdkafka's transactions,
//! and a mixed group with a librdkafka member.

use std::collections::{BTreeSet, HashMap};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::broker::test_broker;
use harness::broker::{Cluster, ClusterOptions};
use harness::fixtures::{rdkafka, unique_topic, SCRIPT};
use harness::wire_ops;
use kafka_wire::conn::{connect, ConnectionConfig};
use semantics::consumer::{ConsumeError, Consumer, TopicPartition};
use semantics::{Producer, ProducerRecord};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

async fn topic_with_partitions(bootstrap: &str, prefix: &str, partitions: i32) -> String {
    let topic = unique_topic(prefix);
    let connection = connect(bootstrap, None, ConnectionConfig::default())
        .await
        .unwrap();
    wire_ops::create_topic(&connection, &topic, partitions)
        .await
        .unwrap();
    topic
}

/// Produces `per_partition` records `p-i` to every partition.
pub(crate) async fn fill(bootstrap: &str, topic: &str, partitions: i32, per_partition: usize) {
    let producer =
        Producer::from_properties([("bootstrap.servers", bootstrap), ("linger.ms", "2")]).unwrap();
    let mut pending = Vec::new();
    for p in 0..partitions {
        for i in 0..per_partition {
            let record = ProducerRecord::new(topic, format!("{p}-{i}")).partition(p);
            pending.push(producer.send(record).await.unwrap());
        }
    }
    for delivery in pending {
        delivery.await.expect("delivered");
    }
    producer.close(Duration::from_secs(10)).await;
}

fn consumer(bootstrap: &str, extra: &[(&str, &str)]) -> Consumer {
    let mut properties: HashMap<&str, &str> = HashMap::from([
        ("bootstrap.servers", bootstrap),
        ("auto.offset.reset", "earliest"),
        ("heartbeat.interval.ms", "300"),
        ("session.timeout.ms", "6000"),
        ("fetch.max.wait.ms", "100"),
    ]);
    properties.extend(extra.iter().copied());
    Consumer::from_properties(properties).expect("valid consumer configuration")
}

async fn partitions_of(consumer: &mut Consumer) -> BTreeSet<TopicPartition> {
    consumer
        .assignment()
        .await
        .unwrap()
        .into_iter()
        .map(|(tp, _)| tp)
        .collect()
}

/// Waits until `check` holds for the consumers' assignments, receiving
/// records meanwhile so the consumers make progress.
async fn wait_for_assignments(
    consumers: &mut [&mut Consumer],
    what: &str,
    check: impl Fn(&[BTreeSet<TopicPartition>]) -> bool,
) -> Vec<BTreeSet<TopicPartition>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut sets = Vec::new();
        for consumer in consumers.iter_mut() {
            let _ = consumer.poll(Duration::from_millis(50)).await;
            sets.push(partitions_of(consumer).await);
        }
        if check(&sets) {
            return sets;
        }
        assert!(Instant::now() < deadline, "{what}: assignments {sets:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn two_members_split_four_partitions_then_one_takes_all() {
    let bootstrap = test_broker::bootstrap();
    let topic = topic_with_partitions(&bootstrap, "group-split", 4).await;
    let group = unique_topic("group");
    let extra = [("group.id", group.as_str())];
    let mut first = consumer(&bootstrap, &extra);
    let mut second = consumer(&bootstrap, &extra);
    first.subscribe([topic.as_str()]).await.unwrap();
    second.subscribe([topic.as_str()]).await.unwrap();

    let sets = wait_for_assignments(&mut [&mut first, &mut second], "split", |sets| {
        sets.iter().all(|s| s.len() == 2)
    })
    .await;
    assert!(sets[0].is_disjoint(&sets[1]), "assigned twice: {sets:?}");

    second.close().await;
    let sets = wait_for_assignments(&mut [&mut first], "takeover", |sets| sets[0].len() == 4).await;
    let expected: BTreeSet<_> = (0..4).map(|p| TopicPartition::new(&topic, p)).collect();
    assert_eq!(sets[0], expected);
    first.close().await;
}

#[tokio::test]
async fn a_restarted_consumer_resumes_from_its_committed_offset() {
    let bootstrap = test_broker::bootstrap();
    let topic = topic_with_partitions(&bootstrap, "resume", 1).await;
    fill(&bootstrap, &topic, 1, 100).await;
    let group = unique_topic("resume-group");
    let extra = [
        ("group.id", group.as_str()),
        ("enable.auto.commit", "false"),
    ];

    let mut consumer_a = consumer(&bootstrap, &extra);
    consumer_a.subscribe([topic.as_str()]).await.unwrap();
    for i in 0..40 {
        let record = consumer_a.recv().await.unwrap();
        assert_eq!(record.offset, i);
        assert_eq!(record.value.as_deref(), Some(format!("0-{i}").as_bytes()));
    }
    consumer_a.commit().await.unwrap();
    let committed = consumer_a
        .committed(vec![TopicPartition::new(&topic, 0)])
        .await
        .unwrap();
    assert_eq!(committed, [(TopicPartition::new(&topic, 0), Some(40))]);
    consumer_a.close().await;

    let mut consumer_b = consumer(&bootstrap, &extra);
    consumer_b.subscribe([topic.as_str()]).await.unwrap();
    for i in 40..100 {
        let record = consumer_b.recv().await.unwrap();
        assert_eq!(
            record.offset, i,
            "resumed in order from the committed offset"
        );
    }
    consumer_b.close().await;
}

#[tokio::test]
async fn manual_assignment_seek_and_pause() {
    let bootstrap = test_broker::bootstrap();
    let topic = topic_with_partitions(&bootstrap, "seek", 2).await;
    fill(&bootstrap, &topic, 2, 50).await;
    let mut consumer = consumer(&bootstrap, &[]);
    let (p0, p1) = (
        TopicPartition::new(&topic, 0),
        TopicPartition::new(&topic, 1),
    );
    consumer.assign(vec![p0.clone(), p1.clone()]).await.unwrap();
    consumer.pause(vec![p1.clone()]).await.unwrap();
    consumer.seek(p0.clone(), 45).await.unwrap();
    let offsets: Vec<i64> = futures_take(&mut consumer, 5)
        .await
        .iter()
        .map(|r| (r.partition, r.offset))
        .map(|(p, o)| {
            assert_eq!(p, 0, "paused partition 1 delivered a record");
            o
        })
        .collect();
    assert_eq!(offsets, [45, 46, 47, 48, 49]);
    assert!(
        consumer.poll(Duration::from_millis(500)).await.is_none(),
        "p1 is paused"
    );
    consumer.resume(vec![p1.clone()]).await.unwrap();
    let resumed = futures_take(&mut consumer, 50).await;
    assert!(resumed.iter().all(|r| r.partition == 1));
    assert_eq!(resumed.first().map(|r| r.offset), Some(0));
    assert!(matches!(
        consumer.commit().await,
        Err(ConsumeError::NoGroup)
    ));
    consumer.close().await;
}

async fn futures_take(consumer: &mut Consumer, n: usize) -> Vec<semantics::ConsumerRecord> {
    let mut out = Vec::new();
    while out.len() < n {
        let record = tokio::time::timeout(Duration::from_secs(20), consumer.recv())
            .await
            .expect("records within 20 s")
            .expect("no consumer error");
        out.push(record);
    }
    out
}

/// Reads `topic` partition 0 from the start until `idle` passes with nothing new.
async fn read_all(bootstrap: &str, topic: &str, isolation: &str, idle: Duration) -> Vec<String> {
    let mut consumer = consumer(bootstrap, &[("isolation.level", isolation)]);
    consumer
        .assign(vec![TopicPartition::new(topic, 0)])
        .await
        .unwrap();
    let mut values = Vec::new();
    while let Some(record) = consumer.poll(idle).await {
        let record = record.expect("no consumer error");
        values.push(
            String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned(),
        );
    }
    consumer.close().await;
    values
}

/// Kafka names librdkafka's aborted transactions in every read_committed
/// Fetch response; the consumer must hide exactly those records.
#[tokio::test]
async fn read_committed_hides_librdkafka_aborted_transactions() {
    let bootstrap = test_broker::bootstrap();
    let topic = topic_with_partitions(&bootstrap, "read-committed", 1).await;
    let out = rdkafka(&["transactions", "--bootstrap", &bootstrap, "--topic", &topic])
        .await
        .expect("librdkafka transactions");
    assert!(out.contains("offsets"), "{out}");

    let committed = read_all(&bootstrap, &topic, "read_committed", Duration::from_secs(3)).await;
    let uncommitted = read_all(
        &bootstrap,
        &topic,
        "read_uncommitted",
        Duration::from_secs(3),
    )
    .await;
    // Three transactions of five records: commit, abort, commit.
    assert_eq!(committed.len(), 10, "{committed:?}");
    assert_eq!(uncommitted.len(), 15, "{uncommitted:?}");
    assert!(
        committed
            .iter()
            .all(|v| v.starts_with("txn") && v.contains("-commit-")),
        "read_committed showed an aborted record: {committed:?}"
    );
    assert!(
        uncommitted.iter().any(|v| v.contains("-abort-")),
        "read_uncommitted should show the aborted records: {uncommitted:?}"
    );
    assert_eq!(
        committed,
        uncommitted
            .iter()
            .filter(|v| v.contains("-commit-"))
            .cloned()
            .collect::<Vec<_>>(),
        "committed records in order, each once"
    );
}

/// A librdkafka member and ours in one group split the partitions, each
/// partition assigned once. Ours joins first, so it leads and assigns.
#[tokio::test]
async fn a_librdkafka_member_follows_our_leader() {
    mixed_group(false).await;
}

/// The same with librdkafka leading: it joins alone first and takes every
/// partition, then hands two over when ours joins.
#[tokio::test]
async fn our_member_follows_a_librdkafka_leader() {
    mixed_group(true).await;
}

async fn mixed_group(librdkafka_leads: bool) {
    let bootstrap = test_broker::bootstrap();
    let topic = topic_with_partitions(&bootstrap, "mixed-group", 4).await;
    fill(&bootstrap, &topic, 4, 10).await;
    let group = unique_topic("mixed");

    let mut peer = tokio::process::Command::new("python3")
        .args([
            SCRIPT,
            "group-member",
            "--bootstrap",
            &bootstrap,
            "--topic",
            &topic,
        ])
        .args(["--group", &group, "--seconds", "25"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 with confluent-kafka");
    let events = Arc::new(Mutex::new(Vec::<Value>::new()));
    let mut lines = BufReader::new(peer.stdout.take().unwrap()).lines();
    let sink = events.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(value) = serde_json::from_str(&line) {
                sink.lock().unwrap().push(value);
            }
        }
    });
    let peer_assignment = || {
        let mut owned = BTreeSet::new();
        for event in events.lock().unwrap().iter() {
            let parts = event["partitions"].as_array().cloned().unwrap_or_default();
            let parts = parts.iter().map(|p| {
                TopicPartition::new(p[0].as_str().unwrap(), p[1].as_i64().unwrap() as i32)
            });
            match event["event"].as_str() {
                Some("assigned") => owned.extend(parts),
                Some("revoked") => parts.for_each(|p| {
                    owned.remove(&p);
                }),
                _ => {}
            }
        }
        owned
    };

    if librdkafka_leads {
        let deadline = Instant::now() + Duration::from_secs(20);
        while peer_assignment().len() != 4 {
            assert!(
                Instant::now() < deadline,
                "librdkafka alone: {:?}",
                peer_assignment()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let mut ours = consumer(&bootstrap, &[("group.id", group.as_str())]);
    ours.subscribe([topic.as_str()]).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mine, theirs) = loop {
        let _ = ours.poll(Duration::from_millis(100)).await;
        let mine = partitions_of(&mut ours).await;
        let theirs = peer_assignment();
        if mine.len() == 2 && theirs.len() == 2 {
            break (mine, theirs);
        }
        assert!(
            Instant::now() < deadline,
            "ours {mine:?}, librdkafka {theirs:?}"
        );
    };
    assert!(
        mine.is_disjoint(&theirs),
        "assigned twice: ours {mine:?}, librdkafka {theirs:?}"
    );
    assert_eq!(mine.union(&theirs).count(), 4);
    ours.close().await;
    let _ = peer.kill().await;
}

/// A Fetch response whose last batch fails its CRC: the batches before it
/// are delivered, then the partition reports `Corrupt` and stops — no panic,
/// no silent skip — until the application seeks.
#[tokio::test]
async fn a_corrupt_batch_is_an_error_for_its_partition() {
    if test_broker::is_external() {
        eprintln!("KAFKA_BOOTSTRAP is set: this test needs a proxied cluster of its own, so it runs only without it");
        return;
    }
    let cluster = Cluster::start(ClusterOptions {
        proxied: true,
        ..test_broker::own_cluster(1)
    })
    .await
    .expect("a proxied one-node cluster");
    let bootstrap = cluster.bootstrap();
    let topic = topic_with_partitions(&bootstrap, "corrupt", 1).await;
    // Three batches: 0–9, 10–19, 20–29.
    for batch in 0..3 {
        fill_range(&bootstrap, &topic, batch * 10..batch * 10 + 10).await;
    }
    cluster.set_faults(&harness::proxy::Faults {
        corrupt_responses: HashMap::from([(1, vec![1])]), // the first Fetch
        ..Default::default()
    });

    let mut consumer = consumer(&bootstrap, &[]);
    let tp = TopicPartition::new(&topic, 0);
    consumer.assign(vec![tp.clone()]).await.unwrap();
    let mut offsets = Vec::new();
    let error = loop {
        match tokio::time::timeout(Duration::from_secs(20), consumer.recv())
            .await
            .expect("an answer")
        {
            Ok(record) => offsets.push(record.offset),
            Err(error) => break error,
        }
    };
    assert_eq!(
        offsets,
        (0..20).collect::<Vec<_>>(),
        "the good batches come first"
    );
    match &error {
        ConsumeError::Corrupt {
            topic: t,
            partition: 0,
            offset: 20,
            reason,
        } => {
            assert_eq!(t, &topic);
            assert!(reason.to_lowercase().contains("crc"), "{reason}");
        }
        other => panic!("expected Corrupt at offset 20, got {other:?}"),
    }
    assert_eq!(
        cluster
            .proxy(1)
            .expect("proxied")
            .stats
            .corrupted_responses
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert!(
        consumer.poll(Duration::from_millis(700)).await.is_none(),
        "halted until seek"
    );

    consumer.seek(tp, 20).await.unwrap();
    let rest = futures_take(&mut consumer, 10).await;
    assert_eq!(
        rest.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (20..30).collect::<Vec<_>>()
    );
    consumer.close().await;
}

/// Produces values `0-i` for `range` to partition 0 as one batch.
async fn fill_range(bootstrap: &str, topic: &str, range: std::ops::Range<usize>) {
    let producer =
        Producer::from_properties([("bootstrap.servers", bootstrap), ("linger.ms", "50")]).unwrap();
    let mut pending = Vec::new();
    for i in range {
        pending.push(
            producer
                .send(ProducerRecord::new(topic, format!("0-{i}")).partition(0))
                .await
                .unwrap(),
        );
    }
    for delivery in pending {
        delivery.await.expect("delivered");
    }
    producer.close(Duration::from_secs(10)).await;
}

#[derive(Default)]
struct Recorded(Mutex<Vec<(&'static str, Vec<TopicPartition>)>>);

impl semantics::consumer::RebalanceListener for Recorded {
    fn on_assigned(&self, partitions: &[TopicPartition]) {
        self.0
            .lock()
            .unwrap()
            .push(("assigned", partitions.to_vec()));
    }
    fn on_revoked(&self, partitions: &[TopicPartition]) {
        self.0
            .lock()
            .unwrap()
            .push(("revoked", partitions.to_vec()));
    }
    fn on_lost(&self, partitions: &[TopicPartition]) {
        self.0.lock().unwrap().push(("lost", partitions.to_vec()));
    }
}

fn static_member(
    bootstrap: &str,
    group: &str,
    instance: &str,
    listener: Arc<Recorded>,
) -> Consumer {
    let config = semantics::ConsumerConfig::from_properties([
        ("bootstrap.servers", bootstrap),
        ("group.id", group),
        ("group.instance.id", instance),
        ("heartbeat.interval.ms", "300"),
        ("session.timeout.ms", "10000"),
        ("partition.assignment.strategy", "cooperative-sticky"),
    ])
    .unwrap();
    Consumer::with_listener(config, Some(listener)).unwrap()
}

/// KIP-345 and KIP-429: static members under cooperative-sticky. A static
/// member that restarts within `session.timeout.ms` gets its partitions back,
/// and the other member never has anything revoked.
#[tokio::test]
async fn a_static_member_restarts_into_its_old_partitions() {
    let bootstrap = test_broker::bootstrap();
    let topic = topic_with_partitions(&bootstrap, "static", 4).await;
    let group = unique_topic("static-group");
    let (events_a, events_b) = (Arc::new(Recorded::default()), Arc::new(Recorded::default()));
    let mut a = static_member(&bootstrap, &group, "a", events_a.clone());
    a.subscribe([topic.as_str()]).await.unwrap();
    wait_for_assignments(&mut [&mut a], "a alone", |s| s[0].len() == 4).await;
    let mut b = static_member(&bootstrap, &group, "b", events_b.clone());
    b.subscribe([topic.as_str()]).await.unwrap();
    let before = wait_for_assignments(&mut [&mut a, &mut b], "split", |s| {
        s[0].len() == 2 && s[1].len() == 2
    })
    .await;
    assert!(before[0].is_disjoint(&before[1]));
    // Cooperative: `a` gave up exactly the two partitions `b` got, nothing more.
    let revoked_from_a: BTreeSet<TopicPartition> = events_a
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(kind, _)| *kind == "revoked")
        .flat_map(|(_, p)| p.clone())
        .collect();
    assert_eq!(
        revoked_from_a, before[1],
        "cooperative revocation moves only what b takes"
    );

    a.close().await; // a static member does not leave the group
    let mut a = static_member(&bootstrap, &group, "a", events_a.clone());
    a.subscribe([topic.as_str()]).await.unwrap();
    let after = wait_for_assignments(&mut [&mut a, &mut b], "restart", |s| {
        s[0].len() == 2 && s[1].len() == 2
    })
    .await;
    assert_eq!(
        after, before,
        "the restarted static member got its partitions back"
    );
    let revoked_from_b = events_b
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(kind, _)| *kind != "assigned")
        .count();
    assert_eq!(
        revoked_from_b,
        0,
        "b never lost a partition: {:?}",
        events_b.0.lock().unwrap()
    );
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn health_reports_connectivity_pending_work_and_assignment() {
    let bootstrap = test_broker::bootstrap();
    let topic = topic_with_partitions(&bootstrap, "health", 2).await;
    let producer = Producer::from_properties([("bootstrap.servers", bootstrap.as_str())]).unwrap();
    assert!(
        producer.health().is_healthy(),
        "nothing known yet is not unhealthy"
    );
    producer
        .send(ProducerRecord::new(topic.as_str(), "x").partition(0))
        .await
        .unwrap()
        .await
        .unwrap();
    let health = producer.health();
    assert!(
        health.brokers_connected >= 1 && health.brokers_known >= 1,
        "{health:?}"
    );
    assert_eq!(health.pending, 0, "{health:?}");
    producer.close(Duration::from_secs(5)).await;
    assert!(
        !producer.health().is_healthy(),
        "a closed producer is not healthy"
    );

    let mut consumer = consumer(&bootstrap, &[]);
    consumer
        .assign((0..2).map(|p| TopicPartition::new(&topic, p)).collect())
        .await
        .unwrap();
    consumer.recv().await.unwrap();
    let health = consumer.health().await;
    assert_eq!(health.partitions_assigned, 2, "{health:?}");
    assert!(health.is_healthy(), "{health:?}");
    consumer.close().await;
}

/// Produces `prefix-0` … `prefix-{count-1}` to partition 0 and waits for every acknowledgement.
async fn produce_values(bootstrap: &str, topic: &str, prefix: &str, count: usize) {
    let producer = Producer::from_properties([
        ("bootstrap.servers", bootstrap),
        ("linger.ms", "2"),
        ("request.timeout.ms", "20000"),
        ("delivery.timeout.ms", "90000"),
    ])
    .unwrap();
    let mut pending = Vec::new();
    for i in 0..count {
        let record = ProducerRecord::new(topic, format!("{prefix}-{i}")).partition(0);
        pending.push(producer.send(record).await.unwrap());
    }
    for delivery in pending {
        delivery.await.expect("delivered");
    }
    producer.close(Duration::from_secs(10)).await;
}

async fn take_values(consumer: &mut Consumer, n: usize) -> Vec<String> {
    futures_take(consumer, n)
        .await
        .into_iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

/// KIP-320 on Apache Kafka. A partition on nodes A (leader) and B: B is
/// stopped, 50 records go to A alone, A is stopped and B made leader by an
/// unclean election — the 50 records are gone and the next 70 take their
/// offsets (100 on). Consumers positioned at 150 (they read the lost 50)
/// must notice: with `auto.offset.reset=earliest` the consumer goes back to
/// offset 100 and reads all 70 new records (fetching from 150, as before
/// KIP-320, skipped the first 50 of them silently); with `none` it stops
/// with `LogTruncated` naming both offsets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_truncated_under_the_consumer_is_found_not_skipped() {
    let mut cluster = Cluster::start(test_broker::own_cluster(3))
        .await
        .expect("a 3-node cluster");
    // The truncation is made with pauses and timing; on a loaded machine B
    // can still receive what A took while it was paused. Such an attempt
    // has nothing to find and is made again on a fresh topic.
    for _ in 0..3 {
        if truncation_found(&mut cluster).await {
            return;
        }
    }
    panic!("three attempts in a row failed to truncate the log under the consumers");
}

/// One attempt: false when the setup did not truncate the log.
async fn truncation_found(cluster: &mut Cluster) -> bool {
    let ids = cluster.node_ids();
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    let address = |id: usize| format!("127.0.0.1:{}", cluster.node(id).ports.client);
    // Every step talks to C, which is never stopped.
    let bootstrap_c = address(c);
    let address_b = address(b);
    let bootstrap_ab = format!("{},{},{}", address(a), address(b), address(c));
    let admin = connect(&bootstrap_c, None, ConnectionConfig::default())
        .await
        .unwrap();
    let topic = unique_topic("truncated");
    wire_ops::create_topic_on_replicas(
        &admin,
        &topic,
        &[a as i32, b as i32],
        &[("min.insync.replicas", "1")],
    )
    .await
    .unwrap();
    wire_ops::leader_connection(&admin, &topic, 0)
        .await
        .unwrap();
    produce_values(&bootstrap_c, &topic, "old", 100).await;

    let tp = TopicPartition::new(&topic, 0);
    let quick = [
        ("request.timeout.ms", "3000"),
        ("retry.backoff.ms", "100"),
        ("reconnect.backoff.max.ms", "500"),
    ];
    let mut resetting = consumer(&bootstrap_ab, &quick);
    let mut strict = consumer(
        &bootstrap_ab,
        &[quick.as_slice(), &[("auto.offset.reset", "none")]].concat(),
    );
    resetting.assign(vec![tp.clone()]).await.unwrap();
    strict.assign(vec![tp.clone()]).await.unwrap();
    strict.seek(tp.clone(), 0).await.unwrap();
    for consumer in [&mut resetting, &mut strict] {
        assert_eq!(
            take_values(consumer, 100).await.last().map(String::as_str),
            Some("old-99")
        );
    }

    // B stops: the controller fences it and takes it out of the ISR, so A
    // alone acknowledges the next 50 records.
    assert!(cluster.pause(b));
    // B's last replica fetch is parked at A (up to replica.fetch.wait.max.ms,
    // 500 ms): once A answers it empty, B sends no other. Records written
    // before that would sit in B's socket buffer and reach its log when it
    // resumes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    produce_values(&bootstrap_c, &topic, "lost", 50).await;
    for consumer in [&mut resetting, &mut strict] {
        assert_eq!(
            take_values(consumer, 50).await.last().map(String::as_str),
            Some("lost-49")
        );
        // Held at 150 until the new log has records past it: a fetch at
        // 150 then finds records there instead of running off the end
        // (OFFSET_OUT_OF_RANGE, which a reset policy would handle anyway).
        consumer.pause(vec![tp.clone()]).await.unwrap();
    }

    // A stops, B comes back (the controllers keep a quorum: B and C), and
    // B, out of sync, is elected: its log ends at 100.
    assert!(cluster.pause(a));
    assert!(cluster.resume(b));
    wire_ops::elect_unclean(&bootstrap_c, &topic, 0, b as i32)
        .await
        .expect("B elected");
    let leader_b = connect(&address_b, None, ConnectionConfig::default())
        .await
        .unwrap();
    wire_ops::await_leadership(&leader_b, &topic, 0)
        .await
        .expect("B leads");
    let end = wire_ops::list_offset(&leader_b, &topic, 0, -1)
        .await
        .unwrap();
    if end != 100 {
        eprintln!("B's log ends at {end}, not 100: it kept what A took while it was paused; again");
        resetting.close().await;
        strict.close().await;
        cluster.resume(a);
        return false;
    }
    produce_values(&bootstrap_c, &topic, "new", 70).await;

    for consumer in [&mut resetting, &mut strict] {
        consumer.resume(vec![tp.clone()]).await.unwrap();
    }
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen.iter().any(|v| v == "new-69") {
        assert!(
            Instant::now() < deadline,
            "new-69 not read within 60 s; read {seen:?}"
        );
        seen.extend(take_values(&mut resetting, 1).await);
    }
    let missing: Vec<String> = (0..70)
        .map(|i| format!("new-{i}"))
        .filter(|v| !seen.contains(v))
        .collect();
    assert!(
        missing.is_empty(),
        "skipped after the truncation: {missing:?}"
    );
    assert!(!seen.iter().any(|v| v.starts_with("lost")), "{seen:?}");

    let error = tokio::time::timeout(Duration::from_secs(60), strict.recv())
        .await
        .expect("an answer within 60 s")
        .expect_err("the truncation is an error under auto.offset.reset=none");
    assert!(
        matches!(
            error,
            ConsumeError::LogTruncated {
                offset: 150,
                divergent_offset: Some(100),
                ..
            }
        ),
        "{error}"
    );
    resetting.close().await;
    strict.close().await;
    cluster.resume(a);
    true
}

/// Reads every record of `topic` (`partitions` × `per_partition`, filled by
/// [`fill`]) with all partitions assigned, checks each arrived once, then
/// stays idle for `idle` and returns what the idle fetches cost: requests
/// and request bytes.
async fn read_all_then_idle(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    per_partition: usize,
    sessions: &str,
) -> (u64, u64) {
    let mut consumer = consumer(bootstrap, &[("enable.fetch.sessions", sessions)]);
    let assigned = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(assigned).await.unwrap();
    let expected = partitions as usize * per_partition;
    let mut seen = BTreeSet::new();
    while seen.len() < expected {
        let record = consumer
            .poll(Duration::from_secs(20))
            .await
            .expect("every record within 20 s")
            .expect("no error");
        let value = String::from_utf8(record.value.unwrap().to_vec()).unwrap();
        assert_eq!(
            value.split('-').next(),
            Some(record.partition.to_string().as_str())
        );
        assert!(seen.insert(value), "a record delivered twice");
    }
    let before = consumer.traffic();
    assert!(
        consumer.poll(Duration::from_secs(2)).await.is_none(),
        "nothing more"
    );
    let idle = consumer.traffic() - before;
    consumer.close().await;
    (idle.requests, idle.bytes_sent)
}

/// KIP-227: in a fetch session the idle consumer's requests name no
/// partition, and every record still arrives once; without sessions each
/// request names all 200 partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_session_names_only_the_partitions_that_moved() {
    const PARTITIONS: i32 = 200;
    let bootstrap = test_broker::bootstrap();
    let topic = topic_with_partitions(&bootstrap, "sessions", PARTITIONS).await;
    fill(&bootstrap, &topic, PARTITIONS, 5).await;
    let (requests, bytes) = read_all_then_idle(&bootstrap, &topic, PARTITIONS, 5, "true").await;
    let (full_requests, full_bytes) =
        read_all_then_idle(&bootstrap, &topic, PARTITIONS, 5, "false").await;
    let per_request = bytes / requests.max(1);
    let full_per_request = full_bytes / full_requests.max(1);
    // A request goes to each of the 3 brokers, naming the ~67 partitions
    // it leads at about 30 bytes each; a session's idle request is its
    // header alone.
    assert!(
        full_per_request > 1_500,
        "without sessions: {full_per_request} bytes a request"
    );
    assert!(
        per_request * 10 < full_per_request,
        "in a session: {per_request} bytes a request, {full_per_request} without"
    );
}

/// Starting positions on 200 partitions take one ListOffsets per leader,
/// not one per partition (200 round trips before the first fetch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_positions_are_looked_up_once_per_leader() {
    const PARTITIONS: i32 = 200;
    let bootstrap = test_broker::bootstrap();
    let topic = topic_with_partitions(&bootstrap, "positions", PARTITIONS).await;
    fill(&bootstrap, &topic, PARTITIONS, 1).await;
    let mut consumer = consumer(&bootstrap, &[("fetch.max.wait.ms", "1000")]);
    let assigned = (0..PARTITIONS)
        .map(|p| TopicPartition::new(&topic, p))
        .collect();
    consumer.assign(assigned).await.unwrap();
    let mut seen = 0;
    while seen < PARTITIONS {
        consumer
            .poll(Duration::from_secs(20))
            .await
            .expect("every record within 20 s")
            .expect("no error");
        seen += 1;
    }
    let traffic = consumer.traffic();
    consumer.close().await;
    // ApiVersions and Metadata, 3 ListOffsets, a few fetches per broker.
    assert!(
        traffic.requests < 60,
        "{} requests to read one record from each of {PARTITIONS} partitions",
        traffic.requests
    );
}
