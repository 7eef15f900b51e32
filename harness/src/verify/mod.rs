//! `harness verify`: each guarantee under each fault, checked by counting.
//!
//! | scenario | what goes wrong |
//! |---|---|
//! | `no-fault` | nothing |
//! | `lost-produce-response` | the proxy drops the answers to Produce requests 3, 7, 15 and 31 after the broker appended them, then resets the connection |
//! | `connection-resets` | the proxy kills every connection after 20–120 ms (seeded) |
//! | `broker-restart` | the node leading partition 0 is SIGKILLed mid-run and restarted on its data |
//! | `consumer-crash` | `harness transform` is SIGKILLed mid-batch twice and restarted |
//! | `producer-crash` | the producer is abandoned halfway (mid-transaction for exactly-once); a successor writes the rest |
//! | `zombie-producer` | an old producer keeps writing beside its successor (same `transactional.id` for exactly-once: it is fenced) |
//!
//! Every scenario asserts its guarantee's promise: at-most-once → no
//! duplicate; at-least-once → nothing lost; exactly-once → nothing lost, no
//! duplicate, no aborted record read.
//!
//! One Apache Kafka cluster serves the whole run (every node behind its own
//! fault proxy, topics at the cluster's default replication factor); each
//! scenario gets fresh topics, group and transactional ids, and sets the
//! proxies' faults afresh.

pub mod workload;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use semantics::guarantee::Possibility;
use semantics::{DeliveryGuarantee, Guarantee};

use crate::broker::{Cluster, ClusterOptions};
use crate::checker::{check, Anomalies, Sent};
use crate::proxy::Faults;
use workload::{read_back, Workload};

/// The faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Nothing goes wrong.
    NoFault,
    /// Produce answers dropped after the broker appended.
    LostProduceResponse,
    /// Connections killed after short random lifetimes.
    ConnectionResets,
    /// Broker SIGKILLed and restarted.
    BrokerRestart,
    /// The consuming process SIGKILLed mid-batch.
    ConsumerCrash,
    /// The producer abandoned halfway.
    ProducerCrash,
    /// An old producer still writing.
    ZombieProducer,
    /// Processors joining and leaving one group while batches are in flight.
    RebalanceMidBatch,
    /// The input's leader SIGKILLed mid-run, back 5 s later.
    LeaderFailover,
    /// Every node restarted in turn (SIGTERM, wait, start).
    RollingRestart,
    /// The group's and the transactional id's coordinators SIGKILLed.
    CoordinatorFailover,
    /// The leader's proxy holds all traffic for 8 s, then heals.
    NetworkPartition,
    /// The leader SIGSTOPped for 30 s.
    StalledBroker,
    /// Partition leadership moves (reassignment + preferred election), no node stops.
    LeaderMove,
    /// An EndTxn (or Produce) delivered after the client gave up on it.
    TornTransaction,
    /// Three processor processes in one group, one killed and restarted every few seconds.
    GroupChurn,
}

impl Scenario {
    /// All, in table order.
    pub const ALL: [Scenario; 16] = [
        Self::NoFault,
        Self::LostProduceResponse,
        Self::ConnectionResets,
        Self::BrokerRestart,
        Self::ConsumerCrash,
        Self::ProducerCrash,
        Self::ZombieProducer,
        Self::RebalanceMidBatch,
        Self::LeaderFailover,
        Self::RollingRestart,
        Self::CoordinatorFailover,
        Self::NetworkPartition,
        Self::StalledBroker,
        Self::LeaderMove,
        Self::TornTransaction,
        Self::GroupChurn,
    ];

    /// CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Self::NoFault => "no-fault",
            Self::LostProduceResponse => "lost-produce-response",
            Self::ConnectionResets => "connection-resets",
            Self::BrokerRestart => "broker-restart",
            Self::ConsumerCrash => "consumer-crash",
            Self::ProducerCrash => "producer-crash",
            Self::ZombieProducer => "zombie-producer",
            Self::RebalanceMidBatch => "rebalance-mid-batch",
            Self::LeaderFailover => "leader-failover",
            Self::RollingRestart => "rolling-restart",
            Self::CoordinatorFailover => "coordinator-failover",
            Self::NetworkPartition => "network-partition",
            Self::StalledBroker => "stalled-broker",
            Self::LeaderMove => "leader-move",
            Self::TornTransaction => "torn-transaction",
            Self::GroupChurn => "group-churn",
        }
    }

    /// From its CLI name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    fn needs_local_cluster(self) -> bool {
        matches!(
            self,
            Self::LostProduceResponse
                | Self::ConnectionResets
                | Self::BrokerRestart
                | Self::LeaderFailover
                | Self::RollingRestart
                | Self::CoordinatorFailover
                | Self::NetworkPartition
                | Self::StalledBroker
                | Self::TornTransaction
        )
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// An external cluster; `None` starts a local one.
    pub bootstrap: Option<String>,
    /// Nodes of the local cluster.
    pub brokers: usize,
    /// Apache Kafka version of the local cluster.
    pub version: String,
    /// Records per scenario.
    pub records: u64,
    /// Seed for fault timing.
    pub seed: u64,
    /// The `harness` executable (the consumer-crash scenario runs it).
    pub harness_exe: PathBuf,
}

/// One row of the verify table (the `--json` contract).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScenarioResult {
    /// Guarantee.
    pub semantics: String,
    /// Scenario.
    pub scenario: String,
    /// Records the scenario wrote.
    pub records: u64,
    /// Acknowledged, never read.
    pub lost: u64,
    /// Extra copies read.
    pub duplicated: u64,
    /// Read out of send order.
    pub reordered: u64,
    /// Aborted records read under read_committed.
    pub aborted_read: u64,
    /// Never acknowledged, never read (allowed).
    pub unacknowledged: u64,
    /// Faults that hit: responses dropped, connections killed, broker or
    /// process kills while work was left.
    pub faults: u64,
    /// The promise held, and the scenario's fault hit.
    pub passed: bool,
    /// Why the scenario did not run, if it did not.
    pub skipped: Option<String>,
    /// Wall time.
    pub elapsed_ms: u128,
    /// `stalled-broker`: peak resident memory of a separate producing
    /// process (`harness produce`, `buffer.memory` 32 MiB) that writes
    /// through the stall.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub producer_peak_rss_bytes: Option<u64>,
}

/// Whether `anomalies` keep `guarantee`'s promise.
pub fn keeps_promise(guarantee: Guarantee, anomalies: &Anomalies) -> bool {
    let promise = guarantee.promise();
    let no_dup = promise.duplicates != Possibility::Never || anomalies.duplicated == 0;
    let no_loss = promise.loss != Possibility::Never || anomalies.lost == 0;
    let committed_only = guarantee != Guarantee::ExactlyOnce || anomalies.aborted_read == 0;
    no_dup && no_loss && committed_only
}

/// Runs one scenario on fresh topics of `stage`.
pub async fn run(
    guarantee: Guarantee,
    scenario: Scenario,
    options: &VerifyOptions,
    stage: &mut Stage,
) -> ScenarioResult {
    let started = Instant::now();
    let mut result = ScenarioResult {
        semantics: guarantee.name().to_owned(),
        scenario: scenario.name().to_owned(),
        records: options.records,
        lost: 0,
        duplicated: 0,
        reordered: 0,
        aborted_read: 0,
        unacknowledged: 0,
        faults: 0,
        passed: false,
        skipped: None,
        elapsed_ms: 0,
        producer_peak_rss_bytes: None,
    };
    if stage.cluster.is_none() && scenario.needs_local_cluster() {
        result.skipped = Some("needs the local cluster (proxy or restart)".into());
        result.passed = true;
        return result;
    }
    stage.set_faults(None);
    stage.producer_peak_rss = None;
    let outcome = scenarios::run(guarantee, scenario, options, stage).await;
    result.producer_peak_rss_bytes = stage.producer_peak_rss.take();
    match outcome {
        Ok((anomalies, faults)) => {
            result.faults = faults;
            result.lost = anomalies.lost;
            result.duplicated = anomalies.duplicated;
            result.reordered = anomalies.reordered;
            result.aborted_read = anomalies.aborted_read;
            result.unacknowledged = anomalies.unacknowledged;
            result.passed = keeps_promise(guarantee, &anomalies);
            // A fault scenario whose fault never hit proved nothing.
            if faults == 0 && scenario != Scenario::NoFault {
                result.passed = false;
                result.skipped = Some("the fault did not hit while work was left".into());
            }
        }
        Err(error) => {
            result.skipped = Some(format!("error: {error}"));
            result.passed = false;
        }
    }
    result.elapsed_ms = started.elapsed().as_millis();
    result
}

mod pipeline;
mod scenarios;

/// The cluster the scenarios run on: a local one, each node behind its own
/// fault proxy, or an external one (`--bootstrap`).
pub struct Stage {
    cluster: Option<Cluster>,
    external: Option<String>,
    /// What a scenario measured of a producing process, for its result.
    producer_peak_rss: Option<u64>,
}

impl Stage {
    /// Starts the local cluster, unless `options.bootstrap` names one.
    pub async fn start(options: &VerifyOptions) -> Result<Self, Error> {
        if let Some(bootstrap) = &options.bootstrap {
            return Ok(Self {
                cluster: None,
                external: Some(bootstrap.clone()),
                producer_peak_rss: None,
            });
        }
        let cluster = Cluster::start(ClusterOptions {
            brokers: options.brokers,
            version: options.version.clone(),
            proxied: true,
            die_with_parent: true,
            ..ClusterOptions::default()
        })
        .await?;
        Ok(Self {
            cluster: Some(cluster),
            external: None,
            producer_peak_rss: None,
        })
    }

    /// The `broker` object of the JSON report.
    pub fn describe(&self) -> serde_json::Value {
        match &self.cluster {
            Some(cluster) => serde_json::json!({
                "kind": "apache-kafka",
                "version": cluster.version(),
                "brokers": cluster.node_ids().len(),
                "start_up_ms": cluster.start_up_time().as_millis(),
            }),
            None => serde_json::json!({
                "kind": "external",
                "bootstrap": self.external,
            }),
        }
    }

    /// The local cluster, if any.
    pub fn cluster(&mut self) -> Option<&mut Cluster> {
        self.cluster.as_mut()
    }

    /// Sets every proxy's faults (none: a clean pass-through).
    fn set_faults(&self, faults: Option<Faults>) {
        if let Some(cluster) = &self.cluster {
            cluster.set_faults(&faults.unwrap_or_default());
        }
    }

    /// Faults the proxies injected since they were last set.
    fn proxy_faults(&self) -> u64 {
        self.cluster.as_ref().map_or(0, Cluster::proxy_faults)
    }

    /// Stops injecting faults: the checker observes, it is not under test.
    fn heal(&self) {
        for proxy in self.cluster.iter().flat_map(|c| c.proxies()) {
            proxy.heal();
        }
    }

    /// Where clients connect: the proxies when local.
    fn bootstrap(&self) -> String {
        match &self.cluster {
            Some(cluster) => cluster.bootstrap(),
            None => self.external.clone().unwrap_or_default(),
        }
    }
}

/// What can stop a scenario from running.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

fn unique(prefix: &str) -> String {
    crate::fixtures::unique_topic(prefix)
}

fn workload(stage: &Stage, topic: &str, guarantee: Guarantee, records: u64) -> Workload {
    Workload {
        bootstrap: stage.bootstrap(),
        topic: topic.to_owned(),
        guarantee,
        records,
        first_id: 0,
        producer: 0,
        // 100 records per transaction, more from 100,000 records up: a
        // million records still run in a thousand transactions.
        txn_size: (records / 1000).max(100),
        transactional_id: unique("verify-txn"),
        properties: Vec::new(),
        crash_after: None,
        progress: Default::default(),
        pace: None,
    }
}

async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) -> Result<(), Error> {
    let connection = kafka_wire::conn::connect(
        bootstrap,
        None,
        kafka_wire::conn::ConnectionConfig::default(),
    )
    .await?;
    crate::wire_ops::create_topic(&connection, topic, partitions).await?;
    Ok(())
}

async fn checked(
    stage: &Stage,
    topic: &str,
    guarantee: Guarantee,
    sent: &[Sent],
) -> Result<Anomalies, Error> {
    // The checker observes; it is not under test: no faults on its reads.
    stage.heal();
    let read_committed = guarantee == Guarantee::ExactlyOnce;
    let read = read_back(
        &stage.bootstrap(),
        topic,
        read_committed,
        Duration::from_secs(3),
    )
    .await?;
    Ok(check(sent, &read, read_committed).total)
}
