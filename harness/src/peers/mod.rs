//! `harness bench --peers`: this client beside the Java client, librdkafka
//! (from Python and from the `rdkafka` crate), franz-go, Confluent's Rust
//! client, krafka and rskafka on the same cluster in the same run, each as its own
//! process, each measured the same way (CPU and peak RSS of its process from
//! the kernel; throughput and latency as the client reports them).
//!
//! - [`measure`]: run one process, reap it with `wait4`.
//! - [`clients`]: each client's command line and report format.
//! - [`chart`]: the SVG the README embeds.

pub mod chart;
pub mod clients;
pub mod measure;

use std::path::{Path, PathBuf};

use clients::Client;
use kafka_wire::conn::{connect, ConnectionConfig};

use crate::broker::install::{cache_root, kafka_version};
use crate::broker::installed_kafka;
use crate::fixtures::unique_topic;
use crate::wire_ops;

/// Produce or consume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Idempotent, acks=all, records of the harness's content.
    Produce,
    /// From the start of a topic filled beforehand, no consumer group.
    Consume,
    /// The exactly-once loop: a consumer group reads a topic filled
    /// beforehand under read_committed and copies every record to another
    /// topic in transactions that carry the group's offsets.
    Copy,
}

/// One workload.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Workload {
    /// Name in tables and charts.
    pub name: String,
    /// Produce or consume.
    pub kind: Kind,
    /// Partitions of the topic (replication factor 3).
    pub partitions: i32,
    /// Records.
    pub count: usize,
    /// Value bytes per record.
    pub size: usize,
    /// Producer `batch.size`; records per transaction for [`Kind::Copy`].
    pub batch: usize,
}

impl Workload {
    fn new(kind: Kind, partitions: i32, count: usize, size: usize, batch: usize) -> Self {
        let (amount, bytes) = (count_name(count), size_name(size));
        let name = match kind {
            Kind::Produce => format!(
                "produce {amount} × {bytes}, {partitions} partition(s), batch.size {}",
                size_name(batch)
            ),
            Kind::Consume => format!("consume {amount} × {bytes}, {partitions} partition(s)"),
            Kind::Copy => format!(
                "exactly-once copy {amount} × {bytes}, {partitions} partition(s), {} per transaction",
                count_name(batch)
            ),
        };
        Self {
            name,
            kind,
            partitions,
            count,
            size,
            batch,
        }
    }
}

fn count_name(count: usize) -> String {
    match count {
        c if c >= 1_000_000 && c % 1_000_000 == 0 => format!("{}M", c / 1_000_000),
        c if c >= 1_000 && c % 1_000 == 0 => format!("{}k", c / 1_000),
        c => c.to_string(),
    }
}

fn size_name(size: usize) -> String {
    if size >= 1_000_000 && size % 1_000_000 == 0 {
        format!("{} MB", size / 1_000_000)
    } else if size >= 1024 && size % 1024 == 0 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

/// Batches of up to 1 MB, as librdkafka's and franz-go's defaults.
const LARGE_BATCH: usize = 1_000_000;
/// The Java client's default `batch.size`: with 1 MB batches a producer
/// that reserves `batch.size` per open batch (Java, this client) keeps only
/// 32 batches open in its 32 MiB `buffer.memory`, far fewer than 100 or
/// 1,000 partitions need.
const SMALL_BATCH: usize = 16 * 1024;

/// Input records per transaction of the exactly-once loop: enough that the
/// loop measures copying, not only the four round trips of a transaction.
const RECORDS_PER_TRANSACTION: usize = 10_000;

/// The workloads at `records` (1M by default): 100-byte records on
/// 1 and 6 partitions, 10 KiB records (a tenth as many), consuming from the
/// start, the exactly-once loop (a fifth as many records), and how the cost grows from 1 to 100 and
/// 1,000 partitions.
pub fn workloads(records: usize) -> Vec<Workload> {
    use Kind::{Consume, Copy, Produce};
    vec![
        Workload::new(Produce, 1, records, 100, LARGE_BATCH),
        Workload::new(Produce, 6, records, 100, LARGE_BATCH),
        Workload::new(Produce, 6, records / 10, 10 * 1024, LARGE_BATCH),
        Workload::new(Consume, 6, records, 100, LARGE_BATCH),
        // A fifth as many: the peers copy 10k–20k records a second.
        Workload::new(Copy, 6, records / 5, 100, RECORDS_PER_TRANSACTION),
        Workload::new(Produce, 1, records, 100, SMALL_BATCH),
        Workload::new(Produce, 100, records, 100, SMALL_BATCH),
        Workload::new(Produce, 1000, records, 100, SMALL_BATCH),
        Workload::new(Consume, 1, records, 100, SMALL_BATCH),
        Workload::new(Consume, 100, records, 100, SMALL_BATCH),
        Workload::new(Consume, 1000, records, 100, SMALL_BATCH),
    ]
}

/// One client's run of one workload.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PeerResult {
    /// Workload name.
    pub workload: String,
    /// Client name.
    pub client: String,
    /// Records the client reported.
    pub records: u64,
    /// Records per second, as the client measured it (start-up excluded).
    pub records_per_sec: f64,
    /// Value megabytes per second.
    pub mb_per_sec: f64,
    /// Median send-to-acknowledgement latency (produce).
    pub p50_ms: Option<f64>,
    /// 99th percentile latency (produce).
    pub p99_ms: Option<f64>,
    /// CPU of the client's process (start-up included) per record.
    pub cpu_us_per_record: f64,
    /// Peak RSS of the client's process.
    pub peak_rss_mib: f64,
    /// Spawn to exit.
    pub wall_seconds: f64,
    /// Why the run failed, if it did.
    pub error: Option<String>,
}

/// The whole comparison.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PeerReport {
    /// The cluster: Apache Kafka version and nodes.
    pub cluster: String,
    /// Every run, workload by workload.
    pub results: Vec<PeerResult>,
    /// Clients not run, and why.
    pub not_run: Vec<(String, String)>,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The clients that can run here, and those that cannot with the reason.
pub fn clients() -> (Vec<Client>, Vec<(String, String)>) {
    let mut ready = Vec::new();
    let mut not_run = Vec::new();
    match std::env::current_exe() {
        Ok(exe) => ready.push(Client::Ours { exe }),
        Err(e) => not_run.push(("kafka-pure".into(), e.to_string())),
    }
    match installed_kafka(&kafka_version()) {
        Ok(install) => ready.push(Client::Java {
            java: install.java.clone(),
            classpath: install.classpath(),
            version: install.version.clone(),
        }),
        Err(e) => not_run.push(("Java kafka-clients".into(), e.to_string())),
    }
    let python = std::process::Command::new("python3")
        .args(["-c", "import confluent_kafka"])
        .output();
    match python {
        Ok(output) if output.status.success() => ready.push(Client::Librdkafka {
            script: PathBuf::from(crate::fixtures::SCRIPT),
        }),
        _ => not_run.push((
            "librdkafka (confluent-kafka Python)".into(),
            "python3 with confluent-kafka is missing (`pip install confluent-kafka`)".into(),
        )),
    }
    match build_franz_go() {
        Ok(exe) => ready.push(Client::FranzGo { exe }),
        Err(e) => not_run.push(("franz-go".into(), e.to_string())),
    }
    for (package, name) in RUST_PEERS {
        match build_rust_peer(package) {
            Ok(exe) => ready.push(Client::Rust { name, exe }),
            Err(e) => not_run.push((name.into(), e.to_string())),
        }
    }
    (ready, not_run)
}

/// The Rust clients of `harness/peers/rust`: package, name.
const RUST_PEERS: [(&str, &str); 4] = [
    ("rdkafka-bench", "librdkafka (rdkafka crate 0.39)"),
    ("confluent-bench", "confluent-kafka 1.0.0 (Rust)"),
    ("krafka-bench", "krafka 0.28.1"),
    ("rskafka-bench", "rskafka 0.6.0"),
];

/// Builds one package of `harness/peers/rust` (its own workspace, apart
/// from this one) into the cache.
fn build_rust_peer(package: &str) -> Result<PathBuf, Error> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/rust");
    let target = cache_root().join("peers/rust-target");
    let status = std::process::Command::new("cargo")
        .args(["build", "--release", "--locked", "-p", package])
        .current_dir(&workspace)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .map_err(|e| format!("cargo is missing ({e})"))?;
    if !status.success() {
        return Err(format!("cargo build -p {package} failed ({status})").into());
    }
    Ok(target.join("release").join(package))
}

/// Builds `harness/peers/franz-go` with the Go toolchain into the cache
/// (modules from the Go module proxy, cached under the same root).
fn build_franz_go() -> Result<PathBuf, Error> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/franz-go");
    let out = cache_root().join("peers/franz-bench");
    let status = std::process::Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(&source)
        .env("GOMODCACHE", cache_root().join("gomod"))
        .status()
        .map_err(|e| format!("the Go toolchain is missing ({e})"))?;
    if !status.success() {
        return Err(format!("go build in {} failed ({status})", source.display()).into());
    }
    Ok(out)
}

/// A run still going after this is killed and reported as failed.
const RUN_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Which workloads and clients to run: those whose name contains one of
/// the strings (all when there are none).
#[derive(Debug, Clone, Default)]
pub struct Only {
    /// Parts of workload names.
    pub workloads: Vec<String>,
    /// Parts of client names.
    pub clients: Vec<String>,
}

impl Only {
    fn matches(filters: &[String], name: &str) -> bool {
        filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
    }
}

/// Runs every workload with every client on `bootstrap` (or those `only`
/// names).
pub async fn run(
    bootstrap: &str,
    records: usize,
    cluster: String,
    only: &Only,
) -> Result<PeerReport, Error> {
    let (mut clients, mut not_run) = clients();
    clients.retain(|client| Only::matches(&only.clients, &client.name()));
    let connection = connect(bootstrap, None, ConnectionConfig::default()).await?;
    let mut results = Vec::new();
    let mut sources: Vec<(i32, usize, String)> = Vec::new();
    let chosen = workloads(records)
        .into_iter()
        .filter(|workload| Only::matches(&only.workloads, &workload.name));
    for workload in chosen {
        let source = if workload.kind == Kind::Produce {
            None
        } else {
            Some(consume_source(bootstrap, &connection, &workload, &mut sources).await?)
        };
        for client in &clients {
            let topic = match &source {
                Some(topic) => topic.clone(),
                None => {
                    let topic = unique_topic("peers");
                    wire_ops::create_topic(&connection, &topic, workload.partitions).await?;
                    topic
                }
            };
            let output = unique_topic("peers-copy");
            let Some(command) = client.command(bootstrap, &workload, &topic, &output) else {
                not_run.push((
                    client.name(),
                    format!("{}: no program for it here", workload.name),
                ));
                continue;
            };
            if workload.kind == Kind::Copy {
                wire_ops::create_topic(&connection, &output, workload.partitions).await?;
            }
            eprintln!("{} — {}", workload.name, client.name());
            let measured =
                tokio::task::spawn_blocking(move || measure::run(command, RUN_LIMIT)).await??;
            let mut outcome = result(client, &workload, &measured);
            if workload.kind == Kind::Copy {
                count_copied(bootstrap, &output, &workload, &measured, &mut outcome).await;
                wire_ops::delete_topic(&connection, &output).await?;
            }
            eprintln!("  {}", serde_json::to_string(&outcome).unwrap_or_default());
            results.push(outcome);
            // Thousands of partitions left behind would slow the brokers
            // down for every run after.
            if source.is_none() {
                wire_ops::delete_topic(&connection, &topic).await?;
            }
        }
        if let Some(topic) = &source {
            if workload.partitions > 6 {
                wire_ops::delete_topic(&connection, topic).await?;
                sources.retain(|(_, _, t)| t != topic);
            }
        }
    }
    Ok(PeerReport {
        cluster,
        results,
        not_run,
    })
}

fn result(client: &Client, workload: &Workload, measured: &measure::Measured) -> PeerResult {
    let parsed = if measured.timed_out {
        Err(format!("not done within {} s", RUN_LIMIT.as_secs()))
    } else if measured.success {
        client.parse(workload.kind, &measured.stdout, &measured.stderr)
    } else {
        Err(format!("exited with failure: {}", measured.stderr))
    };
    let (reported, error) = match parsed {
        // The exactly-once loop is counted from its output afterwards.
        Ok(reported) if workload.kind == Kind::Copy => (reported, None),
        Ok(reported) if reported.records as usize >= workload.count => (reported, None),
        Ok(reported) => {
            let short = format!("{} of {} records", reported.records, workload.count);
            (reported, Some(short))
        }
        Err(e) => (clients::Reported::default(), Some(e)),
    };
    PeerResult {
        workload: workload.name.clone(),
        client: client.name(),
        records: reported.records,
        records_per_sec: reported.records_per_sec,
        mb_per_sec: reported.mb_per_sec,
        p50_ms: reported.p50_ms,
        p99_ms: reported.p99_ms,
        cpu_us_per_record: measured.cpu_seconds * 1e6 / workload.count.max(1) as f64,
        peak_rss_mib: measured.peak_rss_mib,
        wall_seconds: measured.wall.as_secs_f64(),
        error,
    }
}

/// The exactly-once loop's figures come from its output, not from the
/// client: the records a read_committed consumer finds there (each copy
/// once; more would be duplicates), per second of the client's process
/// (start-up and group join included, alike for every client).
async fn count_copied(
    bootstrap: &str,
    output: &str,
    workload: &Workload,
    measured: &measure::Measured,
    outcome: &mut PeerResult,
) {
    let read = crate::consume::run(crate::consume::ConsumeArgs {
        bootstrap: bootstrap.to_owned(),
        topic: output.to_owned(),
        group: None,
        isolation: "read_committed".into(),
        count: None,
        idle_timeout: std::time::Duration::from_secs(3),
        print_values: false,
        properties: Vec::new(),
    })
    .await;
    let report = match read {
        Ok(report) => report,
        Err(error) => {
            outcome
                .error
                .get_or_insert(format!("reading the output: {error}"));
            return;
        }
    };
    let seconds = measured.wall.as_secs_f64().max(f64::EPSILON);
    outcome.records = report.consumed as u64;
    outcome.records_per_sec = report.consumed as f64 / seconds;
    outcome.mb_per_sec = report.bytes as f64 / seconds / 1e6;
    if report.consumed > workload.count && outcome.error.is_none() {
        outcome.error = Some(format!(
            "{} committed copies of {} records",
            report.consumed, workload.count
        ));
    } else if report.consumed < workload.count && outcome.error.is_none() {
        outcome.error = Some(format!(
            "{} of {} records copied",
            report.consumed, workload.count
        ));
    }
}

/// A topic of `workload.partitions` partitions holding `workload.count`
/// records of its size, written once by this client and read by every
/// consumer from the start.
async fn consume_source(
    bootstrap: &str,
    connection: &kafka_wire::Connection,
    workload: &Workload,
    sources: &mut Vec<(i32, usize, String)>,
) -> Result<String, Error> {
    let key = (workload.partitions, workload.count);
    if let Some((_, _, topic)) = sources.iter().find(|(p, c, _)| (*p, *c) == key) {
        return Ok(topic.clone());
    }
    let topic = unique_topic("peers-source");
    wire_ops::create_topic(connection, &topic, workload.partitions).await?;
    let report = crate::produce::run(crate::produce::ProduceArgs {
        bootstrap: bootstrap.to_owned(),
        topic: topic.clone(),
        count: workload.count,
        size: workload.size,
        value_prefix: "msg".into(),
        properties: vec![
            ("linger.ms".into(), "5".into()),
            ("batch.size".into(), "1000000".into()),
        ],
        cpu_only: true,
        transactions: None,
    })
    .await
    .map_err(|e| e.to_string())?;
    if report.acked != workload.count {
        return Err(format!(
            "filling {topic}: {} of {} acknowledged",
            report.acked, workload.count
        )
        .into());
    }
    sources.push((workload.partitions, workload.count, topic.clone()));
    Ok(topic)
}

/// A report from the result lines a run printed on stderr (`  {…}`), for
/// a run that was stopped before its end.
pub fn from_lines(text: &str, cluster: String) -> Result<PeerReport, serde_json::Error> {
    let results = text
        .lines()
        .filter_map(|line| line.strip_prefix("  {").map(|rest| format!("{{{rest}")))
        .map(|json| serde_json::from_str(&json))
        .collect::<Result<_, _>>()?;
    Ok(PeerReport {
        cluster,
        results,
        not_run: Vec::new(),
    })
}

/// The report as a Markdown table.
pub fn markdown(report: &PeerReport) -> String {
    let mut out = String::from(
        "| workload | client | records/s | MB/s | p50 ms | p99 ms | client CPU µs/record | peak RSS MiB |\n|---|---|---|---|---|---|---|---|\n",
    );
    let ms = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.0}"));
    for r in &report.results {
        if let Some(error) = &r.error {
            out.push_str(&format!(
                "| {} | {} | failed: {} | | | | | |\n",
                r.workload,
                r.client,
                error.replace('|', "/").replace('\n', " ")
            ));
            continue;
        }
        out.push_str(&format!(
            "| {} | {} | {:.2} M | {:.1} | {} | {} | {:.2} | {:.0} |\n",
            r.workload,
            r.client,
            r.records_per_sec / 1e6,
            r.mb_per_sec,
            ms(r.p50_ms),
            ms(r.p99_ms),
            r.cpu_us_per_record,
            r.peak_rss_mib
        ));
    }
    for (client, reason) in &report.not_run {
        out.push_str(&format!("\nNot run: {client} — {reason}."));
    }
    out.push('\n');
    out
}
