//! Consumer groups under rebalances on the real broker (issue 14): records
//! of a partition taken away are never committed, commits refused by a
//! rebalance do not stop anything, commit bookkeeping follows the answers,
//! and the group's liveness rules (max.poll.interval.ms, new topics, open
//! transactions on the offsets) hold.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use harness::broker::test_broker;
use harness::broker::{Cluster, ClusterOptions};
use harness::fixtures::unique_topic;
use harness::proxy::Faults;
use harness::wire_ops;
use kafka_wire::conn::{connect, ConnectionConfig};
use semantics::consumer::{ConsumeError, Consumer, TopicPartition};
use semantics::Producer;

use crate::consumer::fill;

async fn create(bootstrap: &str, topic: &str, partitions: i32) {
    let connection = connect(bootstrap, None, ConnectionConfig::default())
        .await
        .unwrap();
    wire_ops::create_topic(&connection, topic, partitions)
        .await
        .unwrap();
}

fn member(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> Consumer {
    let mut properties: HashMap<&str, &str> = HashMap::from([
        ("bootstrap.servers", bootstrap),
        ("group.id", group),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
        ("heartbeat.interval.ms", "300"),
        ("session.timeout.ms", "6000"),
        ("fetch.max.wait.ms", "100"),
    ]);
    properties.extend(extra.iter().copied());
    Consumer::from_properties(properties).expect("valid consumer configuration")
}

async fn next(consumer: &mut Consumer) -> semantics::ConsumerRecord {
    consumer
        .poll(Duration::from_secs(30))
        .await
        .expect("a record within 30 s")
        .expect("no consumer error")
}

/// Polls `check` every 100 ms for up to 30 s.
async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn assigned(consumer: &Consumer) -> usize {
    consumer.assignment().await.map_or(0, |a| a.len())
}

/// Issue 14 (1): a rebalance completed in the background while a record was
/// in hand. `group_metadata` used to hand out the new generation, so the
/// record was committed (or sent to a transaction) under a generation it
/// was not fetched in, although its partition was re-read from the
/// committed offset — a duplicate under at-most-once and exactly-once.
/// (10): a commit under the old generation is refused as a rebalance, which
/// the caller goes on from; the member stays in the group.
#[tokio::test]
async fn records_of_a_partition_taken_away_mid_batch_are_never_committed() {
    let bootstrap = test_broker::bootstrap();
    let topic = unique_topic("rb-taken");
    create(&bootstrap, &topic, 2).await;
    fill(&bootstrap, &topic, 2, 20).await;
    let group = unique_topic("rb-taken-group");
    let mut first = member(&bootstrap, &group, &[]);
    first.subscribe([topic.as_str()]).await.unwrap();
    next(&mut first).await;
    let before = first
        .group_metadata()
        .await
        .expect("nothing moved yet")
        .expect("group.id is set");
    assert!(before.generation_id >= 0, "{before:?}");
    let in_hand = next(&mut first).await;

    let mut second = member(&bootstrap, &group, &[]);
    second.subscribe([topic.as_str()]).await.unwrap();
    next(&mut second).await;
    eventually("the first member's share of two", || async {
        assigned(&first).await == 1
    })
    .await;

    let refused = first.group_metadata().await.unwrap_err();
    assert!(
        matches!(&refused, ConsumeError::Rebalanced { revoked } if revoked.contains(&TopicPartition::new(&topic, in_hand.partition))),
        "{refused:?}"
    );
    assert!(refused.is_rebalance());
    let stale = first
        .commit_offsets_with(
            vec![(
                TopicPartition::new(&topic, in_hand.partition),
                in_hand.offset + 1,
            )],
            &before,
        )
        .await
        .unwrap_err();
    assert!(stale.is_rebalance(), "{stale:?}");
    // Nothing of it was committed, and the member goes on.
    let committed = first
        .committed(vec![TopicPartition::new(&topic, in_hand.partition)])
        .await
        .unwrap();
    assert_eq!(committed[0].1, None, "{committed:?}");
    next(&mut first).await;
    let now = first.group_metadata().await.expect("owned again").unwrap();
    assert!(
        now.generation_id > before.generation_id,
        "{now:?} after {before:?}"
    );
    first.close().await;
    second.close().await;
}

/// Issue 14 (17): the commit bookkeeping recorded an offset as committed
/// when the commit was sent, so an auto-commit that failed was never sent
/// again. Every OffsetCommit request is dropped before the broker sees it
/// for a while, then the proxy heals: the next auto-commit must land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_auto_commit_is_sent_again() {
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
    let topic = unique_topic("rb-autocommit");
    create(&bootstrap, &topic, 1).await;
    fill(&bootstrap, &topic, 1, 10).await;
    let group = unique_topic("rb-autocommit-group");
    let mut consumer = member(
        &bootstrap,
        &group,
        &[
            ("enable.auto.commit", "true"),
            ("auto.commit.interval.ms", "300"),
            ("request.timeout.ms", "1000"),
        ],
    );
    consumer.subscribe([topic.as_str()]).await.unwrap();
    for _ in 0..10 {
        next(&mut consumer).await;
    }
    // OffsetCommit (API key 8): every request dropped.
    cluster.set_faults(&Faults {
        drop_requests: HashMap::from([(8, (1..=10_000).collect())]),
        ..Faults::default()
    });
    // The record in hand counts as processed once the next is asked for.
    assert!(consumer.poll(Duration::from_millis(200)).await.is_none());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        cluster.proxy_faults() > 0,
        "no commit was attempted meanwhile"
    );
    cluster.set_faults(&Faults::default());
    let tp = TopicPartition::new(&topic, 0);
    eventually("the auto-commit after healing", || async {
        consumer
            .committed(vec![tp.clone()])
            .await
            .is_ok_and(|c| c[0].1 == Some(10))
    })
    .await;
    consumer.close().await;
}

/// Issue 14 (17): `assignment()` (and `health()`, which asks it) marked the
/// record in hand as processed, so an auto-commit right after committed it
/// before the application was done with it.
#[tokio::test]
async fn asking_for_the_assignment_does_not_mark_the_record_in_hand_processed() {
    let bootstrap = test_broker::bootstrap();
    let topic = unique_topic("rb-in-hand");
    create(&bootstrap, &topic, 1).await;
    fill(&bootstrap, &topic, 1, 5).await;
    let group = unique_topic("rb-in-hand-group");
    let mut consumer = member(&bootstrap, &group, &[]);
    consumer.subscribe([topic.as_str()]).await.unwrap();
    let first = next(&mut consumer).await;
    let second = next(&mut consumer).await;
    assert_eq!((first.offset, second.offset), (0, 1));
    // Processed: offset 0; in hand: offset 1.
    let processed = [(TopicPartition::new(&topic, 0), Some(1))];
    assert_eq!(consumer.assignment().await.unwrap(), processed);
    let _ = consumer.health().await;
    assert_eq!(consumer.assignment().await.unwrap(), processed);
    consumer.close().await;
}

/// A partition revoked while the application is processing one of its
/// records (here: awaiting something else) is given up only once the
/// application asks for its next record, and that record is committed with
/// it: the next owner starts after it, as with the Java consumer, whose
/// rebalances run inside `poll()`. Found by the mixed group with Java's
/// consumers: the revocation committed the position before the record in
/// hand, and the next owner processed it again.
#[tokio::test]
async fn a_record_in_hand_is_committed_before_its_partition_moves() {
    let bootstrap = test_broker::bootstrap();
    let topic = unique_topic("rb-hand-over");
    create(&bootstrap, &topic, 1).await;
    fill(&bootstrap, &topic, 1, 10).await;
    let group = unique_topic("rb-hand-over-group");
    // Auto-commit on: the revocation commits what was processed.
    let settings = [
        ("enable.auto.commit", "true"),
        ("auto.commit.interval.ms", "60000"),
        ("session.timeout.ms", "20000"),
    ];
    let mut first = member(&bootstrap, &group, &settings);
    first.subscribe([topic.as_str()]).await.unwrap();
    let in_hand = next(&mut first).await;

    let mut second = member(&bootstrap, &group, &settings);
    second.subscribe([topic.as_str()]).await.unwrap();
    // Processing takes a while; the second member's join starts a
    // rebalance meanwhile (heartbeats every 300 ms).
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        assigned(&first).await,
        1,
        "the partition stays while its record is processed"
    );

    // Done: whoever owns the partition next reads on after the record.
    let following = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::select! {
            record = first.recv() => record.unwrap(),
            record = second.recv() => record.unwrap(),
        }
    })
    .await
    .expect("a record within 30 s");
    assert_eq!(
        following.offset,
        in_hand.offset + 1,
        "the record in hand was processed once"
    );
    first.close().await;
    second.close().await;
}

/// Issue 14 (11): offsets sent to a transaction that is still open answer
/// UNSTABLE_OFFSET_COMMIT. The consumer gave up after `request.timeout.ms`
/// and halted the partition; it must wait for the transaction to end and
/// then start from the offset it committed.
#[tokio::test]
async fn a_new_owner_waits_for_the_open_transaction_holding_its_offsets() {
    let bootstrap = test_broker::bootstrap();
    let topic = unique_topic("rb-unstable");
    create(&bootstrap, &topic, 1).await;
    fill(&bootstrap, &topic, 1, 10).await;
    let group = unique_topic("rb-unstable-group");
    let tp = TopicPartition::new(&topic, 0);

    let producer = Producer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("transactional.id", unique_topic("rb-unstable-txn").as_str()),
    ])
    .unwrap();
    producer.init_transactions().await.unwrap();
    producer.begin_transaction().await.unwrap();
    let outside_any_generation = semantics::consumer::GroupMetadata {
        group_id: group.clone(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
    };
    producer
        .send_offsets_to_transaction(&[(tp.clone(), 5)], &outside_any_generation)
        .await
        .unwrap();

    // A short request timeout: the old code halted after it.
    let mut consumer = member(&bootstrap, &group, &[("request.timeout.ms", "1500")]);
    consumer.assign(vec![tp.clone()]).await.unwrap();
    assert!(
        consumer.poll(Duration::from_secs(4)).await.is_none(),
        "nothing may be read while the transaction holds the offsets"
    );
    producer.commit_transaction().await.unwrap();
    let first = next(&mut consumer).await;
    assert_eq!(first.offset, 5, "starts where the transaction committed");
    producer.close(Duration::from_secs(5)).await;
    consumer.close().await;
}

/// Issue 14 (12): heartbeats come from a task of their own, so a member
/// whose application stopped polling kept its partitions forever. After
/// `max.poll.interval.ms` it must leave, its partitions go to the member
/// that polls, and its records in hand may no longer be committed.
#[tokio::test]
async fn a_member_that_stops_polling_gives_its_partitions_up() {
    let bootstrap = test_broker::bootstrap();
    let topic = unique_topic("rb-stuck");
    create(&bootstrap, &topic, 2).await;
    fill(&bootstrap, &topic, 2, 50).await;
    let group = unique_topic("rb-stuck-group");
    let settings = [("max.poll.interval.ms", "3000")];
    let mut stuck = member(&bootstrap, &group, &settings);
    let mut polling = member(&bootstrap, &group, &settings);
    stuck.subscribe([topic.as_str()]).await.unwrap();
    polling.subscribe([topic.as_str()]).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while assigned(&stuck).await != 1 || assigned(&polling).await != 1 {
        assert!(
            Instant::now() < deadline,
            "the two members never split the topic"
        );
        let _ = stuck.poll(Duration::from_millis(100)).await;
        let _ = polling.poll(Duration::from_millis(100)).await;
    }
    // The stuck member's handler hangs with a record in hand.
    next(&mut stuck).await;
    let _ = stuck.group_metadata().await;
    next(&mut stuck).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while assigned(&polling).await != 2 {
        assert!(
            Instant::now() < deadline,
            "the polling member never got the stuck member's partition"
        );
        let _ = polling.poll(Duration::from_millis(100)).await;
    }
    assert_eq!(assigned(&stuck).await, 0);
    let refused = stuck.group_metadata().await.unwrap_err();
    assert!(refused.is_rebalance(), "{refused:?}");
    // Polling again, it rejoins and gets a share back.
    let deadline = Instant::now() + Duration::from_secs(30);
    while assigned(&stuck).await == 0 {
        assert!(Instant::now() < deadline, "the member never rejoined");
        let _ = stuck.poll(Duration::from_millis(100)).await;
        let _ = polling.poll(Duration::from_millis(100)).await;
    }
    stuck.close().await;
    polling.close().await;
}

/// Issue 14 (18): the group leader waited for a subscribed topic that did
/// not exist (up to `request.timeout.ms`, heartbeats stopped) before
/// assigning anything, and a topic created later was never assigned.
#[tokio::test]
async fn a_missing_topic_neither_blocks_the_group_nor_stays_unassigned() {
    let bootstrap = test_broker::bootstrap();
    let (present, later) = (unique_topic("rb-present"), unique_topic("rb-later"));
    create(&bootstrap, &present, 1).await;
    fill(&bootstrap, &present, 1, 1).await;
    let group = unique_topic("rb-later-group");
    let mut consumer = member(
        &bootstrap,
        &group,
        &[
            ("request.timeout.ms", "20000"),
            ("metadata.max.age.ms", "1000"),
        ],
    );
    let started = Instant::now();
    consumer
        .subscribe([present.as_str(), later.as_str()])
        .await
        .unwrap();
    let first = next(&mut consumer).await;
    assert_eq!(&*first.topic, present);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the first record took {:?}",
        started.elapsed()
    );
    // Committed: the rebalance the new topic brings starts `present` after it.
    consumer.commit().await.unwrap();
    create(&bootstrap, &later, 1).await;
    fill(&bootstrap, &later, 1, 1).await;
    let second = next(&mut consumer).await;
    assert_eq!(&*second.topic, later, "the topic created later is consumed");
    consumer.close().await;
}
