//! Transactions against Apache Kafka: on the shared test cluster, except
//! where a test needs a fault proxy in front of a cluster of its own.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use harness::broker::{test_broker, Cluster, ClusterOptions};
use harness::fixtures::unique_topic;
use harness::proxy::FaultProxy;
use harness::wire_ops;
use kafka_wire::conn::{connect, ConnectionConfig};
use kafka_wire::records::BatchReader;
use semantics::consumer::{Consumer, GroupMetadata, TopicPartition};
use semantics::producer::TransactionError;
use semantics::{Producer, ProducerRecord};

/// A one-node cluster of the test's own behind a fault proxy.
async fn proxied_cluster() -> Cluster {
    Cluster::start(ClusterOptions {
        proxied: true,
        ..test_broker::own_cluster(1)
    })
    .await
    .expect("a proxied one-node cluster")
}

async fn topic(bootstrap: &str, prefix: &str) -> String {
    let topic = unique_topic(prefix);
    let connection = connect(bootstrap, None, ConnectionConfig::default())
        .await
        .unwrap();
    wire_ops::create_topic(&connection, &topic, 1)
        .await
        .unwrap();
    topic
}

fn transactional(bootstrap: &str, id: &str, extra: &[(&str, &str)]) -> Producer {
    let mut properties: HashMap<&str, &str> = HashMap::from([
        ("bootstrap.servers", bootstrap),
        ("transactional.id", id),
        ("linger.ms", "5"),
    ]);
    properties.extend(extra.iter().copied());
    Producer::from_properties(properties).expect("valid producer configuration")
}

/// Every value of partition 0, from the start, until 3 s pass with nothing new.
async fn read(bootstrap: &str, topic: &str, isolation: &str) -> Vec<String> {
    let mut consumer = Consumer::from_properties([
        ("bootstrap.servers", bootstrap),
        ("auto.offset.reset", "earliest"),
        ("isolation.level", isolation),
        ("fetch.max.wait.ms", "100"),
    ])
    .unwrap();
    consumer
        .assign(vec![TopicPartition::new(topic, 0)])
        .await
        .unwrap();
    let mut values = Vec::new();
    while let Some(record) = consumer.poll(Duration::from_secs(3)).await {
        let record = record.expect("no consumer error");
        values.push(
            String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned(),
        );
    }
    consumer.close().await;
    values
}

async fn send_all(producer: &Producer, topic: &str, values: impl IntoIterator<Item = String>) {
    for value in values {
        let _delivery = producer
            .send(ProducerRecord::new(topic, value).partition(0))
            .await
            .expect("queued");
    }
}

#[tokio::test]
async fn a_hundred_transactions_every_third_aborted() {
    let bootstrap = test_broker::bootstrap();
    let topic = topic(&bootstrap, "txn-100").await;
    let producer = transactional(&bootstrap, &unique_topic("txn"), &[]);
    producer.init_transactions().await.unwrap();
    for t in 0..100 {
        producer.begin_transaction().await.unwrap();
        send_all(&producer, &topic, (0..100).map(|i| format!("t{t}-{i}"))).await;
        if t % 3 == 2 {
            producer.abort_transaction().await.unwrap();
        } else {
            producer.commit_transaction().await.unwrap();
        }
    }
    producer.close(Duration::from_secs(5)).await;

    let committed = read(&bootstrap, &topic, "read_committed").await;
    assert_eq!(committed.len(), 6_700, "67 committed transactions of 100");
    let unique: BTreeSet<&String> = committed.iter().collect();
    assert_eq!(unique.len(), 6_700, "no duplicate");
    for value in &committed {
        let t: usize = value[1..value.find('-').unwrap()].parse().unwrap();
        assert_ne!(
            t % 3,
            2,
            "aborted record {value} shown under read_committed"
        );
    }
    let everything = read(&bootstrap, &topic, "read_uncommitted").await;
    assert_eq!(everything.len(), 10_000, "aborted records are in the log");
}

/// A second producer with the same transactional id fences the first: its
/// next send fails, its abort finds it fenced, every later call fails
/// fatally, and nothing it wrote reaches read_committed. (nisshi answers a fenced producer's *Produce*
/// with PRODUCER_FENCED but drops the connection on its EndTxn; the EndTxn
/// classification is covered by the scripted-broker test below.)
#[tokio::test]
async fn a_zombie_producer_is_fenced() {
    let bootstrap = test_broker::bootstrap();
    let topic = topic(&bootstrap, "txn-zombie").await;
    let id = unique_topic("zombie");
    let zombie = transactional(&bootstrap, &id, &[]);
    zombie.init_transactions().await.unwrap();
    zombie.begin_transaction().await.unwrap();
    send_all(&zombie, &topic, (0..10).map(|i| format!("zombie-{i}"))).await;
    zombie.flush().await; // its records are in the log, uncommitted

    let successor = transactional(&bootstrap, &id, &[]);
    successor.init_transactions().await.unwrap();

    let late = zombie
        .send(ProducerRecord::new(topic.as_str(), "zombie-late").partition(0))
        .await
        .unwrap();
    let error = late.await.unwrap_err();
    assert!(
        error.to_string().contains("FENCED") || error.to_string().contains("EPOCH"),
        "{error}"
    );
    // A Produce answered INVALID_PRODUCER_EPOCH cannot tell a rival from the
    // coordinator's own timeout abort (KIP-588): the commit is abortable,
    // and the abort, presenting the old epoch, learns of the rival.
    let error = zombie.commit_transaction().await.unwrap_err();
    assert!(error.is_abortable(), "{error:?}");
    let error = zombie.abort_transaction().await.unwrap_err();
    assert!(
        error.is_fatal(),
        "after fencing every call is fatal: {error:?}"
    );
    let error = zombie.begin_transaction().await.unwrap_err();
    assert!(error.is_fatal(), "{error:?}");

    successor.begin_transaction().await.unwrap();
    send_all(
        &successor,
        &topic,
        (0..10).map(|i| format!("successor-{i}")),
    )
    .await;
    successor.commit_transaction().await.unwrap();
    successor.close(Duration::from_secs(5)).await;

    let committed = read(&bootstrap, &topic, "read_committed").await;
    assert!(
        committed.iter().all(|v| v.starts_with("successor-")),
        "a zombie record reached read_committed: {committed:?}"
    );
    assert_eq!(committed.len(), 10, "{committed:?}");
}

/// Issue 14 (3): a transaction of consumer offsets and no records (a
/// processor whose handler filtered everything out) must still end with
/// EndTxn. Before the fix the commit skipped it: the offsets stayed pending
/// at the coordinator and the group never saw them committed.
#[tokio::test]
async fn a_transaction_of_offsets_alone_commits_them() {
    let bootstrap = test_broker::bootstrap();
    let topic = topic(&bootstrap, "txn-offsets-only").await;
    let group = unique_topic("offsets-only-group");
    let producer = transactional(&bootstrap, &unique_topic("offsets-only"), &[]);
    producer.init_transactions().await.unwrap();
    producer.begin_transaction().await.unwrap();
    let metadata = GroupMetadata {
        group_id: group.clone(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
    };
    let tp = TopicPartition::new(&topic, 0);
    producer
        .send_offsets_to_transaction(&[(tp.clone(), 42)], &metadata)
        .await
        .unwrap();
    producer.commit_transaction().await.unwrap();
    producer.close(Duration::from_secs(5)).await;

    let consumer = Consumer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("group.id", group.as_str()),
    ])
    .unwrap();
    let committed = tokio::time::timeout(
        Duration::from_secs(40),
        consumer.committed(vec![tp.clone()]),
    )
    .await
    .expect("OffsetFetch answers")
    .expect("the offsets are stable once the transaction ended");
    assert_eq!(committed, [(tp, Some(42))]);
}

/// Issue 14 (2): a record over `max.request.size` fails its transaction:
/// the commit is refused (abortable) and nothing of the transaction is
/// readable under read_committed. Before the fix the record's future failed
/// alone and the commit went through without it.
#[tokio::test]
async fn a_record_over_max_request_size_fails_its_transaction() {
    let bootstrap = test_broker::bootstrap();
    let topic = topic(&bootstrap, "txn-too-large").await;
    let settings = [("max.request.size", "10000")];
    let producer = transactional(&bootstrap, &unique_topic("too-large"), &settings);
    producer.init_transactions().await.unwrap();
    producer.begin_transaction().await.unwrap();
    send_all(&producer, &topic, (0..5).map(|i| format!("small-{i}"))).await;
    let big = producer
        .send(ProducerRecord::new(topic.as_str(), "x".repeat(20_000)).partition(0))
        .await
        .expect("queued (and failed alone)");
    assert!(big.await.is_err(), "a record over max.request.size fails");
    let error = producer.commit_transaction().await.unwrap_err();
    assert!(error.is_abortable(), "{error:?}");
    producer.abort_transaction().await.unwrap();

    producer.begin_transaction().await.unwrap();
    send_all(&producer, &topic, ["after".to_owned()]).await;
    producer.commit_transaction().await.unwrap();
    producer.close(Duration::from_secs(5)).await;
    assert_eq!(read(&bootstrap, &topic, "read_committed").await, ["after"]);
}

/// The torn-transaction guard: every EndTxn answer is lost (the proxy drops
/// them after the broker applied the first) until the call gives up. The
/// commit reports an unknown outcome and the next transaction runs on a new
/// epoch, so a late EndTxn of the old one cannot touch it.
#[tokio::test]
async fn an_unknown_commit_outcome_forces_a_new_epoch() {
    let cluster = proxied_cluster().await;
    let proxy: &FaultProxy = cluster.proxy(1).expect("proxied");
    let bootstrap = cluster.bootstrap();
    let topic = topic(&bootstrap, "txn-torn").await;
    let settings = [
        ("request.timeout.ms", "1000"),
        ("delivery.timeout.ms", "2500"),
    ];
    let producer = transactional(&bootstrap, &unique_topic("torn"), &settings);
    producer.init_transactions().await.unwrap();

    producer.begin_transaction().await.unwrap();
    send_all(&producer, &topic, (0..5).map(|i| format!("first-{i}"))).await;
    proxy.drop_all_responses(26, true); // EndTxn
    let error = producer.commit_transaction().await.unwrap_err();
    assert!(
        matches!(error, TransactionError::OutcomeUnknown(_)),
        "{error:?}"
    );
    let dropped = proxy
        .stats
        .dropped_responses
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        dropped >= 2,
        "EndTxn retried on the same epoch first ({dropped} dropped)"
    );
    proxy.drop_all_responses(26, false);

    producer.begin_transaction().await.unwrap();
    send_all(&producer, &topic, (0..5).map(|i| format!("second-{i}"))).await;
    producer.commit_transaction().await.unwrap();
    producer.close(Duration::from_secs(5)).await;

    // The log: the second transaction's batches carry a higher epoch.
    let (first, second) = first_and_second_epochs(&bootstrap, &topic).await;
    assert!(
        second > first,
        "second transaction on epoch {second}, first on {first}"
    );
    // The lost answer was a commit the broker applied.
    let committed = read(&bootstrap, &topic, "read_committed").await;
    assert_eq!(committed.len(), 10, "{committed:?}");
}

/// The producer epochs of the batches whose first value starts with
/// "first-" and "second-", from partition 0's log.
async fn first_and_second_epochs(bootstrap: &str, topic: &str) -> (i16, i16) {
    let connection = connect(bootstrap, None, ConnectionConfig::default())
        .await
        .unwrap();
    let fetched = wire_ops::fetch(&connection, topic, 0, 0, false)
        .await
        .unwrap();
    let epochs: Vec<(String, i16)> = BatchReader::new(fetched.records)
        .map(|b| b.unwrap())
        .filter(|b| !b.header.attributes.control)
        .map(|b| {
            let value = b.records[0].value.clone().unwrap_or_default();
            (
                String::from_utf8_lossy(&value).into_owned(),
                b.header.producer_epoch,
            )
        })
        .collect();
    let epoch_of = |prefix: &str| {
        epochs
            .iter()
            .find(|(v, _)| v.starts_with(prefix))
            .map(|(_, e)| *e)
            .unwrap_or_else(|| panic!("no batch starting with {prefix}: {epochs:?}"))
    };
    (epoch_of("first-"), epoch_of("second-"))
}

/// Issue 14 item 5: the first EndTxn's answer is lost, its retry is
/// answered. The commit succeeds, but the lost attempt may still be on its
/// way: the next transaction must run on a new epoch so that it cannot land
/// on it. Before the fix the second transaction ran on the same epoch.
#[tokio::test]
async fn an_end_txn_answered_only_on_retry_still_forces_a_new_epoch() {
    let cluster = proxied_cluster().await;
    let bootstrap = cluster.bootstrap();
    let topic = topic(&bootstrap, "txn-retried-end").await;
    let producer = transactional(&bootstrap, &unique_topic("retried-end"), &[]);
    producer.init_transactions().await.unwrap();
    producer.begin_transaction().await.unwrap();
    send_all(&producer, &topic, (0..5).map(|i| format!("first-{i}"))).await;
    cluster.set_faults(&harness::proxy::Faults {
        drop_responses: HashMap::from([(26, vec![1])]), // the first EndTxn
        ..Default::default()
    });
    producer
        .commit_transaction()
        .await
        .expect("the retry is answered");
    assert!(
        cluster.proxy_faults() >= 1,
        "the first EndTxn answer was dropped"
    );
    producer.begin_transaction().await.unwrap();
    send_all(&producer, &topic, (0..5).map(|i| format!("second-{i}"))).await;
    producer.commit_transaction().await.unwrap();
    producer.close(Duration::from_secs(5)).await;
    let (first, second) = first_and_second_epochs(&bootstrap, &topic).await;
    assert!(
        second > first,
        "second transaction on epoch {second}, first on {first}"
    );
    let committed = read(&bootstrap, &topic, "read_committed").await;
    assert_eq!(committed.len(), 10, "{committed:?}");
}

/// Issue 14 item 15 (KIP-588): the coordinator aborts a transaction that
/// outlives `transaction.timeout.ms` and bumps the epoch; the next record of
/// the transaction is refused with INVALID_PRODUCER_EPOCH. That makes the
/// transaction abortable, not the producer fatal: after the abort the
/// producer re-initialises and the next transaction commits. Before the fix
/// the producer failed for good.
#[tokio::test]
async fn a_transaction_outliving_its_timeout_is_abortable() {
    let bootstrap = test_broker::bootstrap();
    let topic = topic(&bootstrap, "txn-timeout").await;
    let producer = transactional(
        &bootstrap,
        &unique_topic("txn-timeout"),
        &[("transaction.timeout.ms", "1000")],
    );
    producer.init_transactions().await.unwrap();
    producer.begin_transaction().await.unwrap();
    // The coordinator looks for expired transactions every 10 s
    // (transaction.abort.timed.out.transaction.cleanup.interval.ms).
    let started = std::time::Instant::now();
    let refused = loop {
        let delivery = producer
            .send(ProducerRecord::new(topic.as_str(), "aborted").partition(0))
            .await
            .expect("queued");
        if let Err(error) = delivery.await {
            break error;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the coordinator never aborted the expired transaction"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        matches!(
            refused,
            semantics::ProduceError::Broker {
                code: kafka_wire::KafkaCode(47),
                ..
            }
        ),
        "{refused:?}"
    );
    let error = producer.commit_transaction().await.unwrap_err();
    assert!(error.is_abortable(), "{error:?}");
    producer
        .abort_transaction()
        .await
        .expect("abort after the timeout");
    producer.begin_transaction().await.unwrap();
    send_all(&producer, &topic, ["after".to_owned()]).await;
    producer.commit_transaction().await.unwrap();
    producer.close(Duration::from_secs(5)).await;
    assert_eq!(read(&bootstrap, &topic, "read_committed").await, ["after"]);
}

/// nisshi drops the connection on a fenced producer's EndTxn instead of
/// answering PRODUCER_FENCED (README, broker notes), so the classification of
/// EndTxn answers is proven against the scripted broker: fencing is fatal at
/// once, CONCURRENT_TRANSACTIONS is retried on the same epoch.
#[tokio::test]
async fn end_txn_answers_by_class_on_the_scripted_broker() {
    use harness::scripted_broker::{Event, ScriptedBroker};
    for (script, fatal) in [(vec![90], true), (vec![47], true), (vec![51, 51, 0], false)] {
        let broker = ScriptedBroker::start([]).await.unwrap();
        broker.script_end_txn(script.clone());
        let producer = transactional(
            &broker.address(),
            "scripted",
            &[
                ("delivery.timeout.ms", "5000"),
                ("request.timeout.ms", "1000"),
            ],
        );
        producer.init_transactions().await.unwrap();
        producer.begin_transaction().await.unwrap();
        let delivery = producer
            .send(ProducerRecord::new("t", "v").partition(0))
            .await
            .unwrap();
        let result = producer.commit_transaction().await;
        let end_txns: Vec<i16> = broker
            .log()
            .into_iter()
            .filter_map(|e| match e {
                Event::EndTxn {
                    committed: true,
                    answered,
                    ..
                } => Some(answered),
                _ => None,
            })
            .collect();
        if fatal {
            let error = result.unwrap_err();
            assert!(error.is_fatal(), "{script:?}: {error:?}");
            assert_eq!(end_txns, script, "fencing is not retried");
            assert!(producer.begin_transaction().await.unwrap_err().is_fatal());
        } else {
            result.unwrap_or_else(|e| panic!("{script:?}: {e:?}"));
            assert_eq!(
                end_txns, script,
                "retried on the same epoch until it succeeded"
            );
            delivery.await.expect("delivered");
        }
    }
}

/// Issue 14 item 6: on a shared producer a send that passed the transaction
/// check but waits for `buffer.memory` races `commit_transaction`. It must
/// join the transaction being committed (the commit waits for it) or fail
/// with a typed error — never be appended after the commit's flush. Before
/// the fix the commit returned while that record was still unanswered, and
/// its batch could reach the broker after the EndTxn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_racing_the_commit_joins_it_or_fails() {
    use harness::scripted_broker::{Event, ScriptedBroker};
    let broker = ScriptedBroker::start([]).await.unwrap();
    broker.set_produce_delay(Duration::from_millis(400));
    let producer = std::sync::Arc::new(transactional(
        &broker.address(),
        "racing",
        &[("linger.ms", "0"), ("buffer.memory", "1024")],
    ));
    producer.init_transactions().await.unwrap();
    producer.begin_transaction().await.unwrap();
    let big = || ProducerRecord::new("t", vec![7u8; 600]).partition(0);
    let first = producer.send(big()).await.unwrap();
    // The second needs the first's buffer space: it waits for its answer.
    let racing = tokio::spawn({
        let producer = producer.clone();
        async move { producer.send(big()).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    producer.commit_transaction().await.unwrap();
    first.await.expect("the first record is committed");
    match racing.await.unwrap() {
        Ok(delivery) => {
            let settled = tokio::time::timeout(Duration::ZERO, delivery).await;
            assert!(
                matches!(settled, Ok(Ok(_))),
                "the commit returned before the racing record was answered: {settled:?}"
            );
        }
        Err(error) => assert!(
            matches!(error, semantics::ProduceError::Transaction(_)),
            "{error:?}"
        ),
    }
    let log = broker.log();
    let end = log
        .iter()
        .position(|e| matches!(e, Event::EndTxn { .. }))
        .expect("an EndTxn");
    assert!(
        !log[end..]
            .iter()
            .any(|e| matches!(e, Event::Produce { .. })),
        "a record was produced after the commit: {log:?}"
    );
}

/// Issue 14 (19): `harness produce --abort-every N` aborts on purpose; those
/// records are reported as aborted, not failed, and the command succeeds.
/// Before the fix it printed "error: 1000 records failed: " (no reason) and
/// exited 1.
#[tokio::test]
async fn harness_produce_counts_deliberate_aborts_apart_from_failures() {
    let bootstrap = test_broker::bootstrap();
    let topic = topic(&bootstrap, "txn-cli-aborts").await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["produce", "--bootstrap", &bootstrap, "--topic", &topic])
        .args([
            "--count",
            "3000",
            "--txn-size",
            "1000",
            "--abort-every",
            "3",
        ])
        .args(["--transactional-id", &unique_topic("cli-aborts")])
        .output()
        .await
        .expect("run harness produce");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("a report line")).unwrap();
    assert_eq!(
        (&report["acked"], &report["failed"], &report["aborted"]),
        (&2000.into(), &0.into(), &1000.into()),
        "{report}"
    );
    assert_eq!(read(&bootstrap, &topic, "read_committed").await.len(), 2000);
}
