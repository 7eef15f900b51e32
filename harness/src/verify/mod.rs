//! `harness verify`: each guarantee under each fault, checked by counting.
//!
//! | scenario | what goes wrong |
//! |---|---|
//! | `no-fault` | nothing |
//! | `lost-produce-response` | the proxy drops the answers to Produce requests 3, 7, 15 and 31 after the broker appended them, then resets the connection |
//! | `connection-resets` | the proxy kills every connection after 20–120 ms (seeded) |
//! | `broker-restart` | the broker (sqlite storage) is SIGKILLed mid-run and restarted |
//! | `consumer-crash` | `harness transform` is SIGKILLed mid-batch twice and restarted |
//! | `producer-crash` | the producer is abandoned halfway (mid-transaction for exactly-once); a successor writes the rest |
//! | `zombie-producer` | an old producer keeps writing beside its successor (same `transactional.id` for exactly-once: it is fenced) |
//!
//! Every scenario asserts its guarantee's promise: at-most-once → no
//! duplicate; at-least-once → nothing lost; exactly-once → nothing lost, no
//! duplicate, no aborted record read.

pub mod workload;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use semantics::guarantee::Possibility;
use semantics::{DeliveryGuarantee, Guarantee};

use crate::broker::{Broker, BrokerOptions, Storage};
use crate::checker::{check, Anomalies, Sent};
use crate::proxy::{reserve_port, FaultProxy, Faults};
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
}

impl Scenario {
    /// All, in table order.
    pub const ALL: [Scenario; 7] = [
        Self::NoFault,
        Self::LostProduceResponse,
        Self::ConnectionResets,
        Self::BrokerRestart,
        Self::ConsumerCrash,
        Self::ProducerCrash,
        Self::ZombieProducer,
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
        }
    }

    /// From its CLI name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    fn needs_local_broker(self) -> bool {
        matches!(
            self,
            Self::LostProduceResponse | Self::ConnectionResets | Self::BrokerRestart
        )
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// An external broker; `None` starts local ones.
    pub bootstrap: Option<String>,
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
    /// The promise held.
    pub passed: bool,
    /// Why the scenario did not run, if it did not.
    pub skipped: Option<String>,
    /// Wall time.
    pub elapsed_ms: u128,
}

/// Whether `anomalies` keep `guarantee`'s promise.
pub fn keeps_promise(guarantee: Guarantee, anomalies: &Anomalies) -> bool {
    let promise = guarantee.promise();
    let no_dup = promise.duplicates != Possibility::Never || anomalies.duplicated == 0;
    let no_loss = promise.loss != Possibility::Never || anomalies.lost == 0;
    let committed_only = guarantee != Guarantee::ExactlyOnce || anomalies.aborted_read == 0;
    no_dup && no_loss && committed_only
}

/// Runs one scenario on a fresh topic (and a fresh local broker without `bootstrap`).
pub async fn run(
    guarantee: Guarantee,
    scenario: Scenario,
    options: &VerifyOptions,
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
    };
    if options.bootstrap.is_some() && scenario.needs_local_broker() {
        result.skipped = Some("needs the local broker (proxy or restart)".into());
        result.passed = true;
        return result;
    }
    match scenarios::run(guarantee, scenario, options).await {
        Ok((anomalies, faults)) => {
            result.faults = faults;
            result.lost = anomalies.lost;
            result.duplicated = anomalies.duplicated;
            result.reordered = anomalies.reordered;
            result.aborted_read = anomalies.aborted_read;
            result.unacknowledged = anomalies.unacknowledged;
            result.passed = keeps_promise(guarantee, &anomalies);
        }
        Err(error) => {
            result.skipped = Some(format!("error: {error}"));
            result.passed = false;
        }
    }
    result.elapsed_ms = started.elapsed().as_millis();
    result
}

mod scenarios;

/// A broker for one scenario: local (optionally behind a proxy) or external.
struct Stage {
    broker: Option<Broker>,
    proxy: Option<FaultProxy>,
    direct: String,
}

impl Stage {
    async fn new(
        options: &VerifyOptions,
        faults: Option<Faults>,
        storage: Storage,
    ) -> Result<Self, Error> {
        if let Some(bootstrap) = &options.bootstrap {
            return Ok(Self {
                broker: None,
                proxy: None,
                direct: bootstrap.clone(),
            });
        }
        let proxy_port = faults.as_ref().map(|_| reserve_port()).transpose()?;
        let broker = Broker::start(BrokerOptions {
            storage,
            advertised_port: proxy_port,
            die_with_parent: true,
            ..Default::default()
        })
        .await?;
        let proxy = match (faults, proxy_port) {
            (Some(faults), Some(port)) => {
                Some(FaultProxy::start(port, broker.bootstrap(), faults, options.seed).await?)
            }
            _ => None,
        };
        Ok(Self {
            direct: broker.bootstrap(),
            broker: Some(broker),
            proxy,
        })
    }

    /// Faults the proxy injected so far.
    fn proxy_faults(&self) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        self.proxy.as_ref().map_or(0, |p| {
            p.stats.dropped_responses.load(Relaxed) + p.stats.chaos_kills.load(Relaxed)
        })
    }

    /// Where clients connect: the proxy when there is one.
    fn bootstrap(&self) -> String {
        self.proxy
            .as_ref()
            .map_or_else(|| self.direct.clone(), FaultProxy::address)
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
        txn_size: 100,
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
    if let Some(proxy) = &stage.proxy {
        proxy.heal();
    }
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
