//! Each row of the guarantee table against the real broker: a handler that
//! fails, and a processing process SIGKILLed mid-batch and restarted. Every
//! test counts records to check the row's promise — at-most-once: never a
//! duplicate; at-least-once: never a loss; exactly-once: neither.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use harness::broker::test_broker;
use harness::fixtures::unique_topic;
use harness::wire_ops;
use kafka_wire::conn::{connect, ConnectionConfig};
use semantics::consumer::{Consumer, TopicPartition};
use semantics::guarantee::batch::LoopOptions;
use semantics::guarantee::processor::{HandlerError, Processor, ProcessorConfig};
use semantics::guarantee::Possibility;
use semantics::patterns::dlq::{DeadLetter, FailureClass, OnFailure};
use semantics::patterns::retry::RetryPolicy;
use semantics::{DeliveryGuarantee, Guarantee, Producer, ProducerRecord};

/// Input topic (2 partitions) with `count` records `in-i`, and an empty output topic.
async fn topics(bootstrap: &str, count: usize) -> (String, String) {
    let connection = connect(bootstrap, None, ConnectionConfig::default())
        .await
        .unwrap();
    let (input, output) = (unique_topic("g-in"), unique_topic("g-out"));
    wire_ops::create_topic(&connection, &input, 2)
        .await
        .unwrap();
    wire_ops::create_topic(&connection, &output, 2)
        .await
        .unwrap();
    let producer = Producer::from_properties([("bootstrap.servers", bootstrap)]).unwrap();
    let mut deliveries = Vec::with_capacity(count);
    for i in 0..count {
        let record = ProducerRecord::new(input.as_str(), format!("in-{i}")).key(i.to_string());
        deliveries.push(producer.send(record).await.unwrap());
    }
    for delivery in deliveries {
        delivery.await.expect("input delivered");
    }
    producer.close(Duration::from_secs(5)).await;
    (input, output)
}

/// How often each output value appears (read_committed, as a checker must
/// not trust the client under test to count).
async fn outputs(bootstrap: &str, topic: &str) -> HashMap<String, usize> {
    let mut consumer = Consumer::from_properties([
        ("bootstrap.servers", bootstrap),
        ("auto.offset.reset", "earliest"),
        ("isolation.level", "read_committed"),
        ("fetch.max.wait.ms", "100"),
    ])
    .unwrap();
    consumer
        .assign((0..2).map(|p| TopicPartition::new(topic, p)).collect())
        .await
        .unwrap();
    let mut seen = HashMap::new();
    while let Some(record) = consumer.poll(Duration::from_secs(3)).await {
        let record = record.expect("no consumer error");
        let value =
            String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned();
        *seen.entry(value).or_insert(0) += 1;
    }
    consumer.close().await;
    seen
}

/// (lost, duplicated) against inputs `0..count`.
fn anomalies(seen: &HashMap<String, usize>, count: usize) -> (usize, usize) {
    let lost = (0..count)
        .filter(|i| !seen.contains_key(&format!("T:in-{i}")))
        .count();
    let duplicated = seen.values().filter(|n| **n > 1).count();
    (lost, duplicated)
}

fn assert_promise(guarantee: Guarantee, lost: usize, duplicated: usize, what: &str) {
    let promise = guarantee.promise();
    if promise.duplicates == Possibility::Never {
        assert_eq!(duplicated, 0, "{}: {what}: duplicates", guarantee.name());
    }
    if promise.loss == Possibility::Never {
        assert_eq!(lost, 0, "{}: {what}: losses", guarantee.name());
    }
}

/// The handler fails once on every 50th record.
async fn failing_handler(guarantee: Guarantee) {
    const COUNT: usize = 2_000;
    let bootstrap = test_broker::bootstrap();
    let (input, output) = topics(&bootstrap, COUNT).await;
    let mut config = ProcessorConfig::new(&bootstrap, unique_topic("g-group"));
    config.batching = LoopOptions {
        max_batch: 100,
        max_wait: Duration::from_millis(20),
        idle_timeout: Some(Duration::from_secs(3)),
    };
    config.on_failure = OnFailure::Retry(RetryPolicy {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
        max_attempts: Some(10),
        ..RetryPolicy::default()
    });
    let mut processor = Processor::new(config, Arc::new(guarantee)).await.unwrap();
    let mut failed_once = std::collections::HashSet::new();
    let out = output.clone();
    let stats = processor
        .run(&[input.as_str()], |record| {
            let value =
                String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned();
            let i: usize = value[3..].parse().unwrap();
            if i % 50 == 7 && failed_once.insert(i) {
                return Err(HandlerError(format!("record {i} fails once")));
            }
            Ok(vec![ProducerRecord::new(
                out.as_str(),
                format!("T:{value}"),
            )])
        })
        .await
        .unwrap();
    processor.close().await;
    let seen = outputs(&bootstrap, &output).await;
    let (lost, duplicated) = anomalies(&seen, COUNT);
    assert_promise(guarantee, lost, duplicated, "failing handler");
    assert_eq!(stats.handler_errors, (COUNT / 50) as u64);
    match guarantee {
        // The failing records are gone, and counted as such.
        Guarantee::AtMostOnce => assert_eq!((lost as u64, stats.lost), (40, 40)),
        _ => assert_eq!(lost, 0),
    }
}

#[tokio::test]
async fn at_most_once_loses_what_the_handler_fails_never_duplicates() {
    failing_handler(Guarantee::AtMostOnce).await;
}

#[tokio::test]
async fn at_least_once_redelivers_what_the_handler_fails() {
    failing_handler(Guarantee::AtLeastOnce).await;
}

#[tokio::test]
async fn exactly_once_aborts_and_reprocesses_what_the_handler_fails() {
    failing_handler(Guarantee::ExactlyOnce).await;
}

/// `harness transform` under `guarantee`, SIGKILLed `kills` times at
/// deterministic points, then run to the end.
async fn killed_mid_batch(guarantee: Guarantee, count: usize, kills: usize) {
    let bootstrap = test_broker::bootstrap();
    let (input, output) = topics(&bootstrap, count).await;
    let group = unique_topic("g-kill");
    let transactional_id = unique_topic("g-kill-id");
    let spawn = || {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_harness"))
            .args([
                "transform",
                "--bootstrap",
                &bootstrap,
                "--input",
                &input,
                "--output",
                &output,
            ])
            .args(["--group", &group, "--transactional-id", &transactional_id])
            .args([
                "--semantics",
                guarantee.name(),
                "--max-batch",
                "500",
                "--idle-timeout-ms",
                "4000",
            ])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
    };
    let seed = 0x9e37_79b9_7f4a_7c15_u64;
    // Each run lives long enough to commit something even on a loaded
    // machine (joining the group and initialising take a second there).
    let (min, spread) = (Duration::from_millis(1_500), Duration::from_millis(2_000));
    let hits = harness::crash::kill_repeatedly(spawn, kills, seed, min, spread)
        .await
        .unwrap();
    assert_eq!(hits, kills, "a run exited before its SIGKILL");
    let last = tokio::time::timeout(
        Duration::from_secs(120),
        spawn().unwrap().wait_with_output(),
    )
    .await
    .expect("the last run finishes")
    .unwrap();
    assert!(
        last.status.success(),
        "{}",
        String::from_utf8_lossy(&last.stderr)
    );
    let stdout = String::from_utf8_lossy(&last.stdout);
    let stats: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap();
    let by_last = stats["records_committed"]
        .as_u64()
        .expect("processor stats");
    assert!(by_last < count as u64, "the killed runs committed nothing");

    let seen = outputs(&bootstrap, &output).await;
    let (lost, duplicated) = anomalies(&seen, count);
    assert_promise(guarantee, lost, duplicated, "killed mid-batch");
    if guarantee == Guarantee::ExactlyOnce {
        assert_eq!(seen.len(), count);
    }
}

#[tokio::test]
async fn at_most_once_killed_mid_batch_never_duplicates() {
    killed_mid_batch(Guarantee::AtMostOnce, 20_000, 3).await;
}

#[tokio::test]
async fn at_least_once_killed_mid_batch_never_loses() {
    killed_mid_batch(Guarantee::AtLeastOnce, 20_000, 3).await;
}

/// Consume → transform → produce over 100,000 records with the transforming
/// process SIGKILLed at random points and restarted, five times: the output
/// read with read_committed holds each input's transform exactly once.
#[tokio::test]
async fn exactly_once_killed_five_times_over_100k_records() {
    killed_mid_batch(Guarantee::ExactlyOnce, 100_000, 5).await;
}

/// `harness verify`'s whole matrix, 10,000 records per scenario: every
/// guarantee keeps its promise under every fault, and every fault hit.
#[tokio::test]
async fn the_verify_matrix_keeps_every_promise() {
    use harness::verify::{run, Scenario, Stage, VerifyOptions};
    if test_broker::is_external() {
        eprintln!("KAFKA_BOOTSTRAP is set: the matrix needs a proxied cluster of its own, so it runs only without it");
        return;
    }
    let options = VerifyOptions {
        bootstrap: None,
        brokers: 3,
        version: harness::broker::install::kafka_version(),
        records: 10_000,
        seed: 7,
        harness_exe: env!("CARGO_BIN_EXE_harness").into(),
    };
    let mut stage = Stage::start(&options)
        .await
        .expect("a proxied 3-node cluster");
    let mut failures = Vec::new();
    for guarantee in Guarantee::ALL {
        for scenario in Scenario::ALL {
            let r = run(guarantee, scenario, &options, &mut stage).await;
            let fault_missing = scenario != Scenario::NoFault && r.faults == 0;
            if !r.passed || r.skipped.is_some() || fault_missing {
                failures.push(format!("{r:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A record that always fails goes to the dead-letter queue after its
/// retries, with its context; everything else is processed, nothing lost.
async fn poison_pill_is_dead_lettered(guarantee: Guarantee) {
    const COUNT: usize = 500;
    let bootstrap = test_broker::bootstrap();
    let (input, output) = topics(&bootstrap, COUNT).await;
    let dlq = unique_topic("g-dlq");
    let connection = connect(&bootstrap, None, ConnectionConfig::default())
        .await
        .unwrap();
    wire_ops::create_topic(&connection, &dlq, 1).await.unwrap();
    let mut config = ProcessorConfig::new(&bootstrap, unique_topic("g-dlq-group"));
    config.batching.idle_timeout = Some(Duration::from_secs(3));
    config.on_failure = OnFailure::DeadLetter {
        retry: RetryPolicy {
            initial: Duration::from_millis(5),
            max_attempts: Some(3),
            ..RetryPolicy::default()
        },
        topic: dlq.clone(),
    };
    let mut processor = Processor::new(config, Arc::new(guarantee)).await.unwrap();
    let out = output.clone();
    let stats = processor
        .run(&[input.as_str()], |record| {
            let value =
                String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned();
            if value == "in-123" {
                return Err(HandlerError("cannot bill order 123".into()));
            }
            Ok(vec![ProducerRecord::new(
                out.as_str(),
                format!("T:{value}"),
            )])
        })
        .await
        .unwrap();
    processor.close().await;
    assert_eq!(stats.dead_lettered, 1, "{stats:?}");
    let seen = outputs(&bootstrap, &output).await;
    let (lost, duplicated) = anomalies(&seen, COUNT);
    assert_eq!(lost, 1, "only the poison pill is missing from the output");
    assert!(!seen.contains_key("T:in-123"));
    assert_promise(guarantee, 0, duplicated, "dead letter");

    let envelope = the_dead_letter(&bootstrap, &dlq).await;
    assert_eq!(envelope.original.value.as_deref(), Some(&b"in-123"[..]));
    assert_eq!(&*envelope.original.topic, input.as_str());
    assert_eq!(envelope.failure.reason, "cannot bill order 123");
    assert_eq!(envelope.failure.attempts, 3);
    assert_eq!(envelope.failure.class, FailureClass::RetriesExhausted);
}

/// The one record of the dead-letter topic `dlq` (read_committed), parsed.
async fn the_dead_letter(bootstrap: &str, dlq: &str) -> semantics::patterns::dlq::Envelope {
    let mut reader = Consumer::from_properties([
        ("bootstrap.servers", bootstrap),
        ("auto.offset.reset", "earliest"),
        ("isolation.level", "read_committed"),
    ])
    .unwrap();
    reader
        .assign(vec![TopicPartition::new(dlq, 0)])
        .await
        .unwrap();
    let record = reader
        .poll(Duration::from_secs(10))
        .await
        .expect("the DLQ record")
        .unwrap();
    let envelope = DeadLetter::parse(&record).expect("an envelope");
    assert!(
        reader.poll(Duration::from_secs(1)).await.is_none(),
        "dead-lettered once"
    );
    reader.close().await;
    envelope
}

#[tokio::test]
async fn at_least_once_dead_letters_a_poison_pill() {
    poison_pill_is_dead_lettered(Guarantee::AtLeastOnce).await;
}

#[tokio::test]
async fn exactly_once_dead_letters_a_poison_pill_in_the_transaction() {
    poison_pill_is_dead_lettered(Guarantee::ExactlyOnce).await;
}

/// Issue 14 (9): an output the producer refuses for good (here larger than
/// `max.request.size`) was retried forever — the processor neither moved on
/// nor said why. The failure policy now applies to it as to a handler error,
/// without retries (no retry can shrink a record): dead-lettered under a DLQ
/// policy (class `non-retriable`, in the transaction for exactly-once),
/// `OutputGaveUp` under a retry-only policy.
async fn oversized_output(guarantee: Guarantee) {
    use semantics::guarantee::processor::ProcessError;
    const COUNT: usize = 200;
    let bootstrap = test_broker::bootstrap();
    let (input, output) = topics(&bootstrap, COUNT).await;
    let dlq = unique_topic("g-big-dlq");
    let connection = connect(&bootstrap, None, ConnectionConfig::default())
        .await
        .unwrap();
    wire_ops::create_topic(&connection, &dlq, 1).await.unwrap();
    let handler = |out: String| {
        move |record: &semantics::ConsumerRecord| {
            let value =
                String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned();
            let payload = if value == "in-123" {
                vec![b'x'; 2 << 20]
            } else {
                format!("T:{value}").into_bytes()
            };
            Ok(vec![ProducerRecord::new(out.as_str(), payload)])
        }
    };

    let mut config = ProcessorConfig::new(&bootstrap, unique_topic("g-big-group"));
    config.batching.idle_timeout = Some(Duration::from_secs(3));
    config.on_failure = OnFailure::Retry(RetryPolicy {
        initial: Duration::from_millis(5),
        max_attempts: Some(3),
        ..RetryPolicy::default()
    });
    let mut processor = Processor::new(config.clone(), Arc::new(guarantee))
        .await
        .unwrap();
    let stopped = tokio::time::timeout(
        Duration::from_secs(60),
        processor.run(&[input.as_str()], handler(output.clone())),
    )
    .await
    .expect("the processor gives up instead of retrying forever");
    processor.close().await;
    match stopped {
        Err(ProcessError::OutputGaveUp { offset, .. }) => assert!(offset >= 0),
        other => panic!("expected OutputGaveUp, got {other:?}"),
    }

    config.on_failure = OnFailure::DeadLetter {
        retry: RetryPolicy {
            initial: Duration::from_millis(5),
            max_attempts: Some(3),
            ..RetryPolicy::default()
        },
        topic: dlq.clone(),
    };
    let mut processor = Processor::new(config, Arc::new(guarantee)).await.unwrap();
    let stats = tokio::time::timeout(
        Duration::from_secs(60),
        processor.run(&[input.as_str()], handler(output.clone())),
    )
    .await
    .expect("the processor moves on")
    .unwrap();
    processor.close().await;
    assert_eq!(stats.dead_lettered, 1, "{stats:?}");
    let seen = outputs(&bootstrap, &output).await;
    let (lost, duplicated) = anomalies(&seen, COUNT);
    assert_eq!(lost, 1, "only the oversized output is missing");
    assert_promise(guarantee, 0, duplicated, "oversized output");

    let envelope = the_dead_letter(&bootstrap, &dlq).await;
    assert_eq!(envelope.original.value.as_deref(), Some(&b"in-123"[..]));
    assert_eq!(envelope.failure.class, FailureClass::NonRetriable);
    assert!(
        envelope.failure.reason.contains("max.request.size"),
        "{}",
        envelope.failure.reason
    );
}

#[tokio::test]
async fn at_least_once_dead_letters_an_output_too_large_to_send() {
    oversized_output(Guarantee::AtLeastOnce).await;
}

#[tokio::test]
async fn exactly_once_dead_letters_an_output_too_large_to_send() {
    oversized_output(Guarantee::ExactlyOnce).await;
}

/// A stalled coordinator used to stop the processor: a commit that timed
/// out (ConsumeError::Timeout, retriable) ended `run` with the error — the
/// `stalled-broker` scenario failed so whenever the paused node was the
/// group coordinator. The first OffsetCommit requests are dropped before
/// the broker sees them, so each times out; the processor must process the
/// batch again and finish with every record committed and the promise kept.
async fn commit_timeouts_are_outlived(guarantee: Guarantee) {
    use harness::broker::{Cluster, ClusterOptions};
    use harness::proxy::Faults;
    const COUNT: usize = 300;
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
    let (input, output) = topics(&bootstrap, COUNT).await;
    // OffsetCommit (API key 8): the first four never reach the broker.
    cluster.set_faults(&Faults {
        drop_requests: HashMap::from([(8, (1..=4).collect())]),
        ..Faults::default()
    });
    let group = unique_topic("g-stalled-commit");
    let mut config = ProcessorConfig::new(&bootstrap, &group);
    config.consumer = vec![
        ("request.timeout.ms".into(), "1000".into()),
        ("default.api.timeout.ms".into(), "1500".into()),
    ];
    config.batching = LoopOptions {
        max_batch: 100,
        max_wait: Duration::from_millis(20),
        idle_timeout: Some(Duration::from_secs(3)),
    };
    let mut processor = Processor::new(config, Arc::new(guarantee)).await.unwrap();
    let out = output.clone();
    let stats = processor
        .run(&[input.as_str()], |record| {
            let value = String::from_utf8_lossy(record.value.as_deref().unwrap_or_default());
            Ok(vec![ProducerRecord::new(
                out.as_str(),
                format!("T:{value}"),
            )])
        })
        .await
        .unwrap_or_else(|error| panic!("the processor stopped: {error}"));
    processor.close().await;
    assert!(cluster.proxy_faults() > 0, "no commit was dropped");
    assert!(stats.batches_retried > 0, "{stats:?}");
    let seen = outputs(&bootstrap, &output).await;
    let (lost, duplicated) = anomalies(&seen, COUNT);
    assert_promise(guarantee, lost, duplicated, "commit timeouts");
    if guarantee == Guarantee::AtLeastOnce {
        assert_eq!(lost, 0);
    }
    let check = Consumer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("group.id", group.as_str()),
    ])
    .unwrap();
    let committed = check
        .committed((0..2).map(|p| TopicPartition::new(&input, p)).collect())
        .await
        .unwrap();
    let total: i64 = committed.iter().map(|(_, o)| o.unwrap_or(0)).sum();
    assert_eq!(total, COUNT as i64, "every input committed: {committed:?}");
    check.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_outlives_commit_timeouts() {
    commit_timeouts_are_outlived(Guarantee::AtLeastOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_once_outlives_commit_timeouts() {
    commit_timeouts_are_outlived(Guarantee::AtMostOnce).await;
}
