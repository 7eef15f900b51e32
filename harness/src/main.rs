//! `harness` command line: the local broker, the smoke run, fixture capture.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use harness::broker::install::kafka_version;
use harness::broker::state::{self, ClusterState};
use harness::broker::{install_kafka, Cluster, ClusterOptions};

#[derive(Parser)]
#[command(
    name = "harness",
    about = "Prove Kafka delivery guarantees against a real broker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The local Apache Kafka cluster (KRaft, on loopback).
    Broker {
        #[command(subcommand)]
        action: BrokerAction,
    },
    /// Start a broker (unless --bootstrap), produce one batch per codec, fetch it back.
    Smoke {
        /// Use this broker instead of starting one.
        #[arg(long)]
        bootstrap: Option<String>,
        /// Records per codec.
        #[arg(long, default_value_t = 1000)]
        records: usize,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Capture Fetch v12 responses to librdkafka-produced records (one topic per
    /// codec, and a commit/abort/commit transactions run) as fixture files.
    CaptureFixtures {
        /// Use this broker instead of starting one.
        #[arg(long)]
        bootstrap: Option<String>,
        /// Directory the .bin files are written to.
        #[arg(long)]
        out: PathBuf,
    },
    /// Produce N records with this project's producer; the last stdout line is
    /// a JSON report (sent, acked, failed, records_per_sec, cpu, p50/p99 …).
    Produce {
        /// Broker address (a local broker is started when absent).
        #[arg(long)]
        bootstrap: Option<String>,
        /// Topic.
        #[arg(long)]
        topic: String,
        /// Records to send.
        #[arg(long)]
        count: usize,
        /// Value size in bytes.
        #[arg(long, default_value_t = 100)]
        size: usize,
        /// Compression: none, gzip, snappy, lz4, zstd.
        #[arg(long, default_value = "none")]
        compression: String,
        /// Value prefix: record i has value `P-i`.
        #[arg(long, default_value = "msg")]
        value_prefix: String,
        /// Measure the producer alone: records built before the clock starts,
        /// futures awaited at the end, no latency figures.
        #[arg(long)]
        cpu_only: bool,
        /// at-most-once, at-least-once or exactly-once: the guarantee's producer settings.
        #[arg(long)]
        semantics: Option<String>,
        /// Produce in transactions with this transactional.id.
        #[arg(long)]
        transactional_id: Option<String>,
        /// Records per transaction.
        #[arg(long, default_value_t = 1000)]
        txn_size: usize,
        /// Abort every Nth transaction (0: none).
        #[arg(long, default_value_t = 0)]
        abort_every: usize,
        /// Extra producer properties, e.g. `--property linger.ms=5` (repeatable).
        #[arg(long = "property", value_parser = parse_property)]
        properties: Vec<(String, String)>,
    },
    /// Consume-transform-produce under a guarantee (`k`/`v` becomes `k`/`T:v`)
    /// until the input is idle; prints the processor's counts as JSON.
    Transform {
        /// Broker address.
        #[arg(long)]
        bootstrap: String,
        /// Input topic.
        #[arg(long)]
        input: String,
        /// Output topic.
        #[arg(long)]
        output: String,
        /// Consumer group.
        #[arg(long)]
        group: String,
        /// transactional.id (also the static group.instance.id).
        #[arg(long)]
        transactional_id: String,
        /// at-most-once, at-least-once or exactly-once.
        #[arg(long, default_value = "exactly-once")]
        semantics: String,
        /// Input records per transaction.
        #[arg(long, default_value_t = 500)]
        max_batch: usize,
        /// Stop after this many ms with no input.
        #[arg(long, default_value_t = 3000)]
        idle_timeout_ms: u64,
        /// Stop once this many input records are committed (at the end of
        /// the batch that reaches it).
        #[arg(long)]
        stop_after: Option<u64>,
        /// A dynamic group member (no group.instance.id): a restart joins
        /// as a new member and rebalances the group.
        #[arg(long)]
        dynamic: bool,
        /// Extra producer properties, e.g. `--producer-property
        /// transaction.timeout.ms=10000` (repeatable).
        #[arg(long = "producer-property", value_parser = parse_property)]
        producer_properties: Vec<(String, String)>,
    },
    /// Each guarantee under each fault, checked by counting; exits non-zero
    /// when a promise is broken. Starts local brokers without --bootstrap.
    Verify {
        /// Use this cluster (scenarios that need the local one are skipped).
        #[arg(long)]
        bootstrap: Option<String>,
        /// Nodes of the local cluster.
        #[arg(long, default_value_t = 3)]
        brokers: usize,
        /// Apache Kafka version of the local cluster (default: KAFKA_VERSION, else the newest tested).
        #[arg(long)]
        version: Option<String>,
        /// at-most-once, at-least-once, exactly-once or all.
        #[arg(long, default_value = "all")]
        semantics: String,
        /// A scenario name, names separated by commas, or all.
        #[arg(long, default_value = "all")]
        scenario: String,
        /// Records per scenario.
        #[arg(long, default_value_t = 10_000)]
        records: u64,
        /// Seed for fault timing.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Last stdout line: one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Throughput and latency per guarantee: same records, same broker, one run.
    Bench {
        /// Use this broker instead of starting one.
        #[arg(long)]
        bootstrap: Option<String>,
        /// at-most-once, at-least-once, exactly-once or all.
        #[arg(long, default_value = "all")]
        semantics: String,
        /// Records per guarantee.
        #[arg(long, default_value_t = 1_000_000)]
        records: usize,
        /// Value size in bytes.
        #[arg(long, default_value_t = 100)]
        size: usize,
        /// Records per transaction (exactly-once).
        #[arg(long, default_value_t = harness::bench::TXN_SIZE)]
        txn_size: usize,
        /// Last stdout line: one JSON object.
        #[arg(long)]
        json: bool,
        /// Compare with the peer clients instead (Java, librdkafka, franz-go,
        /// the Rust clients), each workload on the same cluster; writes
        /// `peers.{json,md,svg}`.
        #[arg(long)]
        peers: bool,
        /// With --peers: no run, the report of the result lines an earlier
        /// (stopped) run printed on stderr, read from this file.
        #[arg(long, requires = "peers")]
        from_lines: Option<std::path::PathBuf>,
        /// With --peers: only the workloads whose name contains this
        /// (repeatable), e.g. `--workload "6 partition"`.
        #[arg(long = "workload", requires = "peers")]
        workloads: Vec<String>,
        /// With --peers: only the clients whose name contains this
        /// (repeatable), e.g. `--client franz`.
        #[arg(long = "client", requires = "peers")]
        clients: Vec<String>,
    },
    /// Consume a topic with this project's consumer; a JSON summary (consumed,
    /// records_per_sec, mb_per_sec, cpu …) goes to stderr.
    Consume {
        /// Broker address (a local broker is started when absent).
        #[arg(long)]
        bootstrap: Option<String>,
        /// Topic.
        #[arg(long)]
        topic: String,
        /// Consumer group; without one, every partition is assigned.
        #[arg(long)]
        group: Option<String>,
        /// read_committed or read_uncommitted.
        #[arg(long, default_value = "read_uncommitted")]
        isolation: String,
        /// Stop after this many records.
        #[arg(long)]
        count: Option<usize>,
        /// Stop after this many ms with nothing new.
        #[arg(long, default_value_t = 5000)]
        idle_timeout_ms: u64,
        /// `values`: print every value on its own line (nothing else on stdout).
        #[arg(long)]
        print: Option<String>,
        /// Extra consumer properties, e.g. `--property fetch.max.wait.ms=100` (repeatable).
        #[arg(long = "property", value_parser = parse_property)]
        properties: Vec<(String, String)>,
    },
}

fn parse_property(text: &str) -> std::result::Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not key=value"))?;
    Ok((key.trim().to_owned(), value.trim().to_owned()))
}

#[derive(Subcommand)]
enum BrokerAction {
    /// Resolve Apache Kafka's jars from Maven Central (with Maven) into the
    /// cache, unless they are there; prints the jar directory.
    Install {
        /// Apache Kafka version (default: KAFKA_VERSION, else the newest tested).
        #[arg(long)]
        version: Option<String>,
    },
    /// Start a cluster that outlives this command (installing Kafka first if
    /// needed); the last stdout line is its bootstrap list.
    Start {
        /// Nodes, each a broker and a KRaft controller.
        #[arg(long, default_value_t = 3)]
        brokers: usize,
        /// Apache Kafka version (default: KAFKA_VERSION, else the newest tested).
        #[arg(long)]
        version: Option<String>,
    },
    /// Stop the cluster `start` left running (controlled shutdowns).
    Stop,
    /// Print the running cluster's bootstrap list, or fail.
    Status,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Broker { action } => broker(action).await,
        Command::Smoke {
            bootstrap,
            records,
            json,
        } => smoke(bootstrap, records, json).await,
        Command::CaptureFixtures { bootstrap, out } => capture_fixtures(bootstrap, &out).await,
        Command::Produce {
            bootstrap,
            topic,
            count,
            size,
            compression,
            value_prefix,
            cpu_only,
            semantics,
            mut transactional_id,
            txn_size,
            abort_every,
            mut properties,
        } => {
            properties.push(("compression.type".into(), compression));
            if let Some(name) = semantics {
                let Some(guarantee) = semantics::Guarantee::from_name(&name) else {
                    eprintln!(
                        "--semantics {name}: expected at-most-once, at-least-once or exactly-once"
                    );
                    return ExitCode::FAILURE;
                };
                properties.extend(semantics::DeliveryGuarantee::producer_properties(
                    &guarantee,
                ));
                if guarantee == semantics::Guarantee::ExactlyOnce && transactional_id.is_none() {
                    transactional_id = Some(harness::fixtures::unique_topic("produce"));
                }
            }
            let transactions = transactional_id.map(|id| {
                properties.push(("transactional.id".into(), id.clone()));
                (id, txn_size, abort_every)
            });
            produce(
                bootstrap,
                harness::produce::ProduceArgs {
                    bootstrap: String::new(),
                    topic,
                    count,
                    size,
                    value_prefix,
                    properties,
                    cpu_only,
                    transactions,
                },
            )
            .await
        }
        Command::Verify {
            bootstrap,
            brokers,
            version,
            semantics,
            scenario,
            records,
            seed,
            json,
        } => {
            let options = harness::verify::VerifyOptions {
                bootstrap,
                brokers,
                version: version.unwrap_or_else(kafka_version),
                records,
                seed,
                harness_exe: match std::env::current_exe() {
                    Ok(exe) => exe,
                    Err(error) => {
                        eprintln!("error: locating the harness executable: {error}");
                        return ExitCode::FAILURE;
                    }
                },
            };
            verify(options, &semantics, &scenario, json).await
        }
        Command::Bench {
            bootstrap,
            semantics,
            records,
            size,
            txn_size,
            json,
            peers: false,
            ..
        } => bench(bootstrap, &semantics, records, size, txn_size, json).await,
        Command::Bench {
            bootstrap,
            records,
            json,
            peers: true,
            from_lines,
            workloads,
            clients,
            ..
        } => {
            let only = harness::peers::Only { workloads, clients };
            bench_peers(bootstrap, records, json, from_lines, only).await
        }
        Command::Transform {
            bootstrap,
            input,
            output,
            group,
            transactional_id,
            semantics,
            max_batch,
            idle_timeout_ms,
            stop_after,
            dynamic,
            producer_properties,
        } => {
            let Some(guarantee) = semantics::Guarantee::from_name(&semantics) else {
                eprintln!(
                    "--semantics {semantics}: expected at-most-once, at-least-once or exactly-once"
                );
                return ExitCode::FAILURE;
            };
            let args = harness::transform::TransformArgs {
                bootstrap,
                input,
                output,
                group,
                transactional_id,
                guarantee,
                max_batch,
                idle_timeout: std::time::Duration::from_millis(idle_timeout_ms),
                stop_after,
                dynamic,
                producer_properties,
            };
            match harness::transform::run(&args).await {
                Ok(stats) => serde_json::to_string(&stats)
                    .map(|line| println!("{line}"))
                    .map_err(Into::into),
                Err(error) => Err(error),
            }
        }
        Command::Consume {
            bootstrap,
            topic,
            group,
            isolation,
            count,
            idle_timeout_ms,
            print,
            properties,
        } => {
            consume(
                bootstrap,
                print.as_deref(),
                harness::consume::ConsumeArgs {
                    bootstrap: String::new(),
                    topic,
                    group,
                    isolation,
                    count,
                    idle_timeout: std::time::Duration::from_millis(idle_timeout_ms),
                    print_values: false,
                    properties,
                },
            )
            .await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

async fn broker(action: BrokerAction) -> Result<()> {
    match action {
        BrokerAction::Install { version } => {
            let install = install_kafka(&version.unwrap_or_else(kafka_version))?;
            println!("{}", install.libs.display());
        }
        BrokerAction::Start { brokers, version } => {
            if let Some(running) = state::running() {
                eprintln!("a cluster is already running (Kafka {})", running.version);
                println!("{}", running.bootstrap);
                return Ok(());
            }
            let work_dir = state::state_dir().join("cluster-data");
            let options = ClusterOptions {
                brokers,
                version: version.unwrap_or_else(kafka_version),
                work_dir: Some(work_dir.clone()),
                detach: true,
                ..ClusterOptions::default()
            };
            let cluster = Cluster::start(options).await?;
            eprintln!(
                "Apache Kafka {} cluster of {brokers} node(s) ready in {:.1} s; data in {}",
                cluster.version(),
                cluster.start_up_time().as_secs_f64(),
                work_dir.display()
            );
            let (bootstrap, version) = (cluster.bootstrap(), cluster.version().to_owned());
            let pids = cluster.detach();
            state::save(&ClusterState {
                version,
                pids,
                bootstrap: bootstrap.clone(),
                work_dir,
            })?;
            println!("{bootstrap}");
        }
        BrokerAction::Stop => match state::load() {
            Some(running) if running.is_alive() => {
                stop_cluster(&running.pids).await;
                state::clear();
                println!("stopped the cluster (pids {:?})", running.pids);
            }
            _ => {
                state::clear();
                println!("no cluster running");
            }
        },
        BrokerAction::Status => match state::running() {
            Some(running) => println!("{}", running.bootstrap),
            None => return Err("no cluster running (start one with `harness broker start`)".into()),
        },
    }
    Ok(())
}

/// SIGTERM to every node (controlled shutdowns), SIGKILL to any still
/// running after 30 s.
async fn stop_cluster(pids: &[u32]) {
    use harness::broker::signal;
    for &pid in pids {
        signal(pid, libc::SIGCONT);
        signal(pid, libc::SIGTERM);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while pids.iter().any(|&pid| signal(pid, 0)) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for &pid in pids {
        signal(pid, libc::SIGKILL);
    }
}

/// The cluster to use: `bootstrap` if given, else the one `harness broker
/// start` left running, else a local 3-node cluster that lives as long as
/// the returned handle.
async fn broker_address(bootstrap: Option<String>) -> Result<(String, Option<Cluster>)> {
    if let Some(address) = bootstrap {
        return Ok((address, None));
    }
    if let Some(running) = state::running() {
        return Ok((running.bootstrap, None));
    }
    let cluster = Cluster::start(ClusterOptions {
        die_with_parent: true,
        ..ClusterOptions::default()
    })
    .await?;
    Ok((cluster.bootstrap(), Some(cluster)))
}

async fn capture_fixtures(bootstrap: Option<String>, out: &std::path::Path) -> Result<()> {
    let (address, _broker) = broker_address(bootstrap).await?;
    for (path, size) in harness::fixtures::capture(&address, out).await? {
        println!("{:>7} bytes  {}", size, path.display());
    }
    Ok(())
}

async fn smoke(bootstrap: Option<String>, records: usize, json: bool) -> Result<()> {
    let (address, _broker) = broker_address(bootstrap).await?;
    let report = harness::smoke::run(&address, records).await?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "smoke run against {} (topic {})",
            report.bootstrap, report.topic
        );
        println!(
            "{:<8} {:>9} {:>9} {:>12}",
            "codec", "produced", "verified", "base offset"
        );
        for codec in &report.codecs {
            println!(
                "{:<8} {:>9} {:>9} {:>12}",
                codec.codec, codec.produced, codec.verified, codec.base_offset
            );
        }
        println!("all codecs verified in {} ms", report.elapsed_ms);
    }
    Ok(())
}

async fn produce(bootstrap: Option<String>, mut args: harness::produce::ProduceArgs) -> Result<()> {
    let (address, _broker) = broker_address(bootstrap).await?;
    args.bootstrap = address;
    let report = harness::produce::run(args).await?;
    println!("{}", serde_json::to_string(&report)?);
    if report.failed > 0 {
        let reason = report
            .first_error
            .unwrap_or_else(|| "the producer reported no reason".to_owned());
        return Err(format!("{} records failed: {reason}", report.failed).into());
    }
    Ok(())
}

async fn consume(
    bootstrap: Option<String>,
    print: Option<&str>,
    mut args: harness::consume::ConsumeArgs,
) -> Result<()> {
    args.print_values = match print {
        None => false,
        Some("values") => true,
        Some(other) => return Err(format!("--print {other}: expected `values`").into()),
    };
    let (address, _broker) = broker_address(bootstrap).await?;
    args.bootstrap = address;
    let report = harness::consume::run(args).await?;
    eprintln!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn guarantees(name: &str) -> Result<Vec<semantics::Guarantee>> {
    if name == "all" {
        return Ok(semantics::Guarantee::ALL.to_vec());
    }
    semantics::Guarantee::from_name(name)
        .map(|g| vec![g])
        .ok_or_else(|| {
            format!("--semantics {name}: expected at-most-once, at-least-once, exactly-once or all")
                .into()
        })
}

/// `target/harness/` (or `$CARGO_TARGET_DIR/harness/`): run reports.
fn report_dir() -> std::path::PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    target.join("harness")
}

fn write_report(name: &str, json: &serde_json::Value, markdown: &str) -> Result<()> {
    let dir = report_dir();
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join(format!("{name}.json")),
        serde_json::to_string_pretty(json)?,
    )?;
    std::fs::write(dir.join(format!("{name}.md")), markdown)?;
    eprintln!("report: {}", dir.join(format!("{name}.md")).display());
    Ok(())
}

async fn verify(
    options: harness::verify::VerifyOptions,
    semantics: &str,
    scenario: &str,
    json: bool,
) -> Result<()> {
    use harness::verify::{run, Scenario, Stage};
    let records = options.records;
    let scenarios = if scenario == "all" {
        Scenario::ALL.to_vec()
    } else {
        scenario
            .split(',')
            .map(|name| {
                Scenario::from_name(name.trim()).ok_or_else(|| {
                    let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
                    format!(
                        "--scenario {name}: expected one of {}, a comma-separated list, or all",
                        names.join(", ")
                    )
                })
            })
            .collect::<std::result::Result<Vec<_>, String>>()?
    };
    let mut stage = Stage::start(&options).await.map_err(|e| e.to_string())?;
    let mut results = Vec::new();
    let header = format!(
        "| {:<14} | {:<22} | {:>8} | {:>6} | {:>6} | {:>10} | {:>9} | {:>12} | {:>14} | {:<6} |",
        "semantics",
        "scenario",
        "records",
        "faults",
        "lost",
        "duplicated",
        "reordered",
        "aborted_read",
        "unacknowledged",
        "result"
    );
    let mut table = vec![header.clone(), format!("|{}|", ["---"; 10].join("|"))];
    if !json {
        println!("{header}");
    }
    for guarantee in guarantees(semantics)? {
        for &scenario in &scenarios {
            eprintln!(
                "running {} / {} ({} records)…",
                semantics::DeliveryGuarantee::name(&guarantee),
                scenario.name(),
                records
            );
            let r = run(guarantee, scenario, &options, &mut stage).await;
            let mut verdict = match (&r.skipped, r.passed) {
                (Some(reason), true) => format!("skipped ({reason})"),
                (Some(reason), false) => format!("FAILED ({reason})"),
                (None, true) => "passed".to_owned(),
                (None, false) => "FAILED".to_owned(),
            };
            if let Some(rss) = r.producer_peak_rss_bytes {
                verdict.push_str(&format!(
                    " (producer peak RSS {:.1} MiB)",
                    rss as f64 / 1048576.0
                ));
            }
            let row = format!(
                "| {:<14} | {:<22} | {:>8} | {:>6} | {:>6} | {:>10} | {:>9} | {:>12} | {:>14} | {:<6} |",
                r.semantics, r.scenario, r.records, r.faults, r.lost, r.duplicated, r.reordered, r.aborted_read, r.unacknowledged, verdict
            );
            if !json {
                println!("{row}");
            }
            table.push(row);
            results.push(r);
        }
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    let summary = serde_json::json!({
        "scenarios": results,
        "failed": failed,
        "passed": failed == 0,
        "broker": stage.describe(),
    });
    write_report("verify", &summary, &(table.join("\n") + "\n"))?;
    if json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("{} scenarios, {} failed", results.len(), failed);
    }
    if failed > 0 {
        return Err(format!("{failed} scenario(s) broke their guarantee's promise").into());
    }
    Ok(())
}

/// `bench --peers`: every client, every workload, one cluster.
async fn bench_peers(
    bootstrap: Option<String>,
    records: usize,
    json: bool,
    from_lines: Option<std::path::PathBuf>,
    only: harness::peers::Only,
) -> Result<()> {
    if let Some(path) = from_lines {
        let text = std::fs::read_to_string(&path)?;
        let report = harness::peers::from_lines(&text, format!("results of {}", path.display()))?;
        return write_peers(&report, json);
    }
    let (address, broker) = broker_address(bootstrap).await?;
    let cluster = match &broker {
        Some(cluster) => format!(
            "Apache Kafka {}, {} nodes (started for this run)",
            harness::broker::install::kafka_version(),
            cluster.bootstrap().split(',').count()
        ),
        None => format!("the cluster at {address}"),
    };
    let report = harness::peers::run(&address, records, cluster, &only)
        .await
        .map_err(|e| -> Box<dyn std::error::Error> { e.to_string().into() })?;
    write_peers(&report, json)
}

fn write_peers(report: &harness::peers::PeerReport, json: bool) -> Result<()> {
    let markdown = harness::peers::markdown(report);
    let value = serde_json::to_value(report)?;
    write_report("peers", &value, &markdown)?;
    std::fs::write(
        report_dir().join("peers.svg"),
        harness::peers::chart::svg(&report.results),
    )?;
    if json {
        println!("{}", serde_json::to_string(&value)?);
    } else {
        print!("{markdown}");
    }
    Ok(())
}

async fn bench(
    bootstrap: Option<String>,
    semantics: &str,
    records: usize,
    size: usize,
    txn_size: usize,
    json: bool,
) -> Result<()> {
    let (address, _broker) = broker_address(bootstrap).await?;
    let mut results = Vec::new();
    let header = format!(
        "| {:<14} | {:>10} | {:>12} | {:>8} | {:>8} | {:>8} | {:>8} | {:>11} |",
        "semantics", "records", "records/s", "MB/s", "p50 ms", "p99 ms", "max ms", "CPU µs/rec"
    );
    let mut table = vec![header.clone(), format!("|{}|", ["---"; 8].join("|"))];
    if !json {
        println!("{header}");
    }
    for guarantee in guarantees(semantics)? {
        let topic = harness::fixtures::unique_topic("bench");
        eprintln!(
            "bench {} ({records} records of {size} bytes)…",
            semantics::DeliveryGuarantee::name(&guarantee)
        );
        let r = harness::bench::run(&address, &topic, guarantee, records, size, txn_size).await?;
        let row = format!(
            "| {:<14} | {:>10} | {:>12.0} | {:>8.1} | {:>8.1} | {:>8.1} | {:>8.1} | {:>11.2} |",
            r.semantics,
            r.records,
            r.records_per_sec,
            r.mb_per_sec,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.cpu_us_per_record
        );
        if !json {
            println!("{row}");
        }
        table.push(row);
        results.push(r);
    }
    let summary = serde_json::json!({ "semantics": results });
    write_report("bench", &summary, &(table.join("\n") + "\n"))?;
    if json {
        println!("{}", serde_json::to_string(&summary)?);
    }
    Ok(())
}
