//! Groups shared with the Java client: consumers of both clients in one
//! group, and this project's exactly-once processor beside Java's
//! TransactionalMessageCopier.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::broker::test_broker;
use harness::fixtures::unique_topic;
use harness::java;
use semantics::consumer::{Consumer, TopicPartition};
use semantics::{Producer, ProducerRecord};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};

use super::connection;

const PARTITIONS: i32 = 6;

/// (member, partition, offset, value) of every record a member processed.
type Processed = Arc<Mutex<Vec<(String, i32, i64, String)>>>;

async fn topic(prefix: &str, partitions: i32) -> String {
    let topic = unique_topic(prefix);
    harness::wire_ops::create_topic(&connection().await, &topic, partitions)
        .await
        .unwrap();
    topic
}

/// `JavaPeer group-member`: commits after processing, until told to stop.
struct JavaMember {
    name: String,
    child: Child,
    stdin: ChildStdin,
    owned: Arc<Mutex<BTreeSet<i32>>>,
}

impl JavaMember {
    fn start(topic: &str, group: &str, assignor: &str, name: &str, processed: &Processed) -> Self {
        let bootstrap = test_broker::bootstrap();
        let mut child = java::command(
            java::PEER,
            &[
                "group-member",
                "--bootstrap",
                &bootstrap,
                "--topic",
                topic,
                "--group",
                group,
                "--assignor",
                assignor,
                "--name",
                name,
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("java");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let owned = Arc::new(Mutex::new(BTreeSet::new()));
        let (sink, owned_sink, member) = (processed.clone(), owned.clone(), name.to_owned());
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(event) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let partitions = || {
                    let list = event["partitions"].as_array().cloned().unwrap_or_default();
                    list.into_iter()
                        .filter_map(|p| p.as_i64().map(|p| p as i32))
                };
                match event["event"].as_str() {
                    Some("record") => sink.lock().unwrap().push((
                        member.clone(),
                        event["partition"].as_i64().unwrap() as i32,
                        event["offset"].as_i64().unwrap(),
                        event["value"].as_str().unwrap().to_owned(),
                    )),
                    Some("assigned") => owned_sink.lock().unwrap().extend(partitions()),
                    Some("revoked" | "lost") => partitions().for_each(|p| {
                        owned_sink.lock().unwrap().remove(&p);
                    }),
                    _ => {}
                }
            }
        });
        Self {
            name: name.to_owned(),
            child,
            stdin,
            owned,
        }
    }

    fn owned(&self) -> BTreeSet<i32> {
        self.owned.lock().unwrap().clone()
    }

    /// Leaves the group (offsets committed) and exits.
    async fn stop(mut self) {
        self.stdin.write_all(b"stop\n").await.unwrap();
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not stop within 30 s", self.name))
            .unwrap();
        assert!(status.success(), "{} exited with {status}", self.name);
    }
}

/// This client's consumer as a member: records are processed (recorded)
/// one by one; what was processed is committed by auto-commit, before a
/// rebalance takes partitions away and on close.
struct OurMember {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    owned: Arc<Mutex<BTreeSet<i32>>>,
}

impl OurMember {
    async fn start(
        topic: &str,
        group: &str,
        assignor: &str,
        name: &str,
        processed: &Processed,
    ) -> Self {
        let bootstrap = test_broker::bootstrap();
        let mut consumer = Consumer::from_properties([
            ("bootstrap.servers", bootstrap.as_str()),
            ("group.id", group),
            ("client.id", name),
            ("partition.assignment.strategy", assignor),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "true"),
            ("auto.commit.interval.ms", "200"),
            ("session.timeout.ms", "10000"),
            ("heartbeat.interval.ms", "500"),
            ("fetch.max.wait.ms", "100"),
        ])
        .unwrap();
        consumer.subscribe([topic]).await.unwrap();
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let owned = Arc::new(Mutex::new(BTreeSet::new()));
        let (sink, owned_sink, member) = (processed.clone(), owned.clone(), name.to_owned());
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    record = consumer.poll(Duration::from_millis(200)) => {
                        if let Some(record) = record {
                            let record = record.expect("no consumer error");
                            let value = String::from_utf8_lossy(record.value.as_deref().unwrap_or_default());
                            sink.lock().unwrap().push((member.clone(), record.partition, record.offset, value.into()));
                        }
                        let assigned = consumer.assignment().await.unwrap();
                        *owned_sink.lock().unwrap() = assigned.iter().map(|(tp, _)| tp.partition).collect();
                    }
                }
            }
            consumer.close().await;
        });
        Self { stop, task, owned }
    }

    fn owned(&self) -> BTreeSet<i32> {
        self.owned.lock().unwrap().clone()
    }

    /// Commits what was processed, leaves the group.
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("our member ran without a panic");
    }
}

/// Produces `total` records `r-i` round-robin over the partitions; `paced`
/// spreads them over a few seconds so that members join and leave
/// mid-stream.
fn produce(topic: &str, total: usize, paced: bool) -> tokio::task::JoinHandle<()> {
    let (bootstrap, topic) = (test_broker::bootstrap(), topic.to_owned());
    tokio::spawn(async move {
        let producer = Producer::from_properties([
            ("bootstrap.servers", bootstrap.as_str()),
            ("linger.ms", "5"),
        ])
        .unwrap();
        let mut pending = Vec::new();
        for i in 0..total {
            let record = ProducerRecord::new(topic.as_str(), format!("r-{i}"))
                .partition(i as i32 % PARTITIONS);
            pending.push(producer.send(record).await.unwrap());
            if paced && i % 100 == 99 {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        for delivery in pending {
            delivery.await.expect("delivered");
        }
        producer.close(Duration::from_secs(10)).await;
    })
}

async fn wait_until(what: &str, seconds: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done() {
        assert!(Instant::now() < deadline, "within {seconds} s: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Java's consumers and this client's in one group on a 6-partition topic,
/// joining and leaving while records arrive, committing after processing:
/// every record is processed exactly once across the members, partitions
/// that change hands between the two clients go on from the offset the
/// other one committed, and the group ends committed at the log end.
async fn mixed_group(assignor: &str) {
    const TOTAL: usize = 12_000;
    let bootstrap = test_broker::bootstrap();
    let topic = topic(&format!("java-mixed-{assignor}"), PARTITIONS).await;
    let group = unique_topic("java-mixed");
    let processed: Processed = Arc::default();
    let producing = produce(&topic, TOTAL, true);

    let java_a = JavaMember::start(&topic, &group, assignor, "java-a", &processed);
    wait_until("java-a owns partitions", 60, || !java_a.owned().is_empty()).await;
    let ours_x = OurMember::start(&topic, &group, assignor, "ours-x", &processed).await;
    wait_until("ours-x owns partitions", 60, || !ours_x.owned().is_empty()).await;
    let java_b = JavaMember::start(&topic, &group, assignor, "java-b", &processed);
    let ours_y = OurMember::start(&topic, &group, assignor, "ours-y", &processed).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sets = [
            java_a.owned(),
            ours_x.owned(),
            java_b.owned(),
            ours_y.owned(),
        ];
        if sets.iter().all(|s| !s.is_empty()) && sets.iter().map(|s| s.len()).sum::<usize>() == 6 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{assignor}: four members never shared the partitions: java-a, ours-x, java-b, ours-y own {sets:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let midway = processed.lock().unwrap().len();
    // One of each leaves while records still arrive.
    java_a.stop().await;
    ours_x.stop().await;
    producing.await.unwrap();
    wait_until("every record processed", 90, || {
        let seen: BTreeSet<String> = processed
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.3.clone())
            .collect();
        seen.len() == TOTAL
    })
    .await;
    // Time for a duplicate to show up, were one coming.
    tokio::time::sleep(Duration::from_secs(2)).await;
    java_b.stop().await;
    ours_y.stop().await;

    let processed = processed.lock().unwrap().clone();
    let mut copies: HashMap<&str, Vec<(&str, i32, i64)>> = HashMap::new();
    for (member, partition, offset, value) in &processed {
        copies
            .entry(value.as_str())
            .or_default()
            .push((member.as_str(), *partition, *offset));
    }
    let duplicated: Vec<_> = copies
        .iter()
        .filter(|(_, m)| m.len() > 1)
        .take(10)
        .collect();
    assert!(
        duplicated.is_empty(),
        "{assignor}: {} records processed more than once, e.g. {duplicated:?}",
        copies.values().filter(|m| m.len() > 1).count()
    );
    assert_eq!(copies.len(), TOTAL, "{assignor}: records processed");
    assert!(
        midway < TOTAL,
        "members left mid-stream ({midway} of {TOTAL} processed)"
    );
    // Hand-overs between the clients happened: a partition read by both.
    let mut readers: BTreeMap<i32, BTreeSet<&str>> = BTreeMap::new();
    for (member, partition, _, _) in &processed {
        readers
            .entry(*partition)
            .or_default()
            .insert(if member.starts_with("java") {
                "java"
            } else {
                "ours"
            });
    }
    assert!(
        readers.values().any(|clients| clients.len() == 2),
        "{assignor}: no partition changed hands between Java and this client: {readers:?}"
    );

    let checker = Consumer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("group.id", group.as_str()),
    ])
    .unwrap();
    let partitions: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(&topic, p))
        .collect();
    let committed = checker.committed(partitions).await.unwrap();
    let per_partition = (TOTAL / PARTITIONS as usize) as i64;
    for (tp, offset) in committed {
        assert_eq!(
            offset,
            Some(per_partition),
            "{assignor}: committed offset of {tp:?}"
        );
    }
    checker.close().await;
}

#[tokio::test]
async fn a_group_of_java_and_our_consumers_processes_each_record_once_range() {
    mixed_group("range").await;
}

#[tokio::test]
async fn a_group_of_java_and_our_consumers_processes_each_record_once_cooperative_sticky() {
    mixed_group("cooperative-sticky").await;
}

/// Records written to `topic` so far (committed or not): the log ends summed.
async fn records_in(topic: &str) -> usize {
    let connection = connection().await;
    let mut total = 0;
    for p in 0..PARTITIONS {
        let leader = harness::wire_ops::leader_connection(&connection, topic, p)
            .await
            .unwrap();
        let end = harness::wire_ops::list_offset(&leader, topic, p, -1)
            .await
            .unwrap();
        total += end as usize;
    }
    total
}

/// This project's exactly-once processor (`harness transform`, two
/// processes) and Java's TransactionalMessageCopier (two processes, KIP-447
/// group metadata) share one group copying one input topic; one of each is
/// SIGKILLed mid-run. Under read_committed the output holds every input
/// record exactly once (ours write `T:v`, Java's copy `v` as it is).
#[tokio::test]
async fn our_processor_and_javas_copier_copy_exactly_once_side_by_side() {
    const TOTAL: usize = 200_000;
    let bootstrap = test_broker::bootstrap();
    let input = topic("eos-side-in", PARTITIONS).await;
    let output = topic("eos-side-out", PARTITIONS).await;
    let group = unique_topic("eos-side");
    produce(&input, TOTAL, false).await.unwrap();

    let copier = |name: &str| {
        java::command(
            java::COPIER,
            &[
                "--broker-list",
                &bootstrap,
                "--input-topic",
                &input,
                "--input-partition",
                "0",
                "--output-topic",
                &output,
                "--consumer-group",
                &group,
                "--transactional-id",
                &unique_topic(name),
                "--transaction-timeout",
                "10000",
                "--group-mode",
                "--use-group-metadata",
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .stdout(Stdio::null())
        .spawn()
        .expect("java")
    };
    let processor = |name: &str| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_harness"))
            .args(["transform", "--bootstrap", &bootstrap, "--input", &input])
            .args(["--output", &output, "--group", &group, "--dynamic"])
            .args(["--transactional-id", &unique_topic(name)])
            .args(["--semantics", "exactly-once", "--idle-timeout-ms", "120000"])
            .args(["--producer-property", "transaction.timeout.ms=10000"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("harness transform")
    };
    let mut members = vec![
        ("java-1", copier("java-1")),
        ("ours-1", processor("ours-1")),
        ("java-2", copier("java-2")),
        ("ours-2", processor("ours-2")),
    ];
    wait_until_async(
        "a tenth of the input copied",
        120,
        || records_in(&output),
        |n| n >= TOTAL / 10,
    )
    .await;
    for (name, member) in members.iter_mut().filter(|(n, _)| n.ends_with("-1")) {
        member
            .start_kill()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let at_kill = records_in(&output).await;
    assert!(
        at_kill < TOTAL,
        "the kills came after the copy ended ({at_kill})"
    );

    // The survivors (and the members the group hands the dead ones'
    // partitions to) copy the rest; Java's copiers exit when their
    // partitions are done, ours are stopped once the output is complete.
    let deadline = Instant::now() + Duration::from_secs(240);
    while committed_values(&output).await.len() < TOTAL && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    for (_, member) in &mut members {
        let _ = member.start_kill();
    }
    let values = committed_values(&output).await;

    let mut copies: HashMap<String, usize> = HashMap::new();
    let (mut ours, mut javas) = (0, 0);
    for value in &values {
        let original = match value.strip_prefix("T:") {
            Some(original) => {
                ours += 1;
                original
            }
            None => {
                javas += 1;
                value.as_str()
            }
        };
        *copies.entry(original.to_owned()).or_default() += 1;
    }
    let duplicated = copies.values().filter(|&&n| n > 1).count();
    let lost = (0..TOTAL)
        .filter(|i| !copies.contains_key(&format!("r-{i}")))
        .count();
    assert_eq!(
        (lost, duplicated, values.len()),
        (0, 0, TOTAL),
        "lost, duplicated, output records (ours {ours}, Java's {javas})"
    );
    assert!(
        ours > 0 && javas > 0,
        "both clients copied: ours {ours}, Java's {javas}"
    );
    println!("copied {TOTAL}: ours {ours}, Java's {javas}; {at_kill} written when one of each was killed");
}

/// Every value of `topic` under read_committed, all partitions from the start.
async fn committed_values(topic: &str) -> Vec<String> {
    let bootstrap = test_broker::bootstrap();
    let mut consumer = Consumer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("isolation.level", "read_committed"),
        ("auto.offset.reset", "earliest"),
        ("fetch.max.wait.ms", "100"),
    ])
    .unwrap();
    let partitions = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(partitions).await.unwrap();
    let mut values = Vec::new();
    loop {
        match consumer.poll(Duration::from_millis(300)).await {
            Some(record) => {
                let record = record.expect("no consumer error");
                values.push(
                    String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into(),
                );
            }
            None if consumer.caught_up().await.unwrap() => break,
            None => {}
        }
    }
    consumer.close().await;
    values
}

async fn wait_until_async<F, T>(
    what: &str,
    seconds: u64,
    mut probe: impl FnMut() -> F,
    done: impl Fn(T) -> bool,
) where
    F: std::future::Future<Output = T>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done(probe().await) {
        assert!(Instant::now() < deadline, "within {seconds} s: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
