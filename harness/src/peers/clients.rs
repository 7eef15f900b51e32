//! The clients `harness bench --peers` compares, each as its own process:
//! how to run a workload with it and how to read what it reports.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use super::{Kind, Workload};

/// Linger every producer gets (batch sizes come with the workload), so
/// batching is alike.
const LINGER_MS: &str = "5";

/// One client under comparison.
#[derive(Debug, Clone)]
pub enum Client {
    /// This project (`harness produce` / `harness consume`).
    Ours {
        /// The harness executable.
        exe: PathBuf,
    },
    /// The Java client through kafka-tools' ProducerPerformance and
    /// ConsumerPerformance.
    Java {
        /// `java`.
        java: PathBuf,
        /// The Kafka jars' class path.
        classpath: String,
        /// kafka-clients version.
        version: String,
    },
    /// librdkafka through Python confluent-kafka (`rdkafka.py bench-*`).
    Librdkafka {
        /// The peer script.
        script: PathBuf,
    },
    /// franz-go (`harness/peers/franz-go`, built with the Go toolchain).
    FranzGo {
        /// The built program.
        exe: PathBuf,
    },
    /// A Rust client of `harness/peers/rust` (rdkafka, confluent-kafka,
    /// krafka, rskafka): `--mode … --bootstrap … --topic … --count …
    /// --size … --batch …`, one JSON line.
    Rust {
        /// Client name.
        name: &'static str,
        /// The built program.
        exe: PathBuf,
    },
}

/// What a client reported of one run.
#[derive(Debug, Clone, Default)]
pub struct Reported {
    /// Records produced or consumed.
    pub records: u64,
    /// Its own throughput figure (start-up excluded).
    pub records_per_sec: f64,
    /// Value megabytes per second.
    pub mb_per_sec: f64,
    /// Median send-to-acknowledgement latency (produce).
    pub p50_ms: Option<f64>,
    /// 99th percentile latency (produce).
    pub p99_ms: Option<f64>,
}

impl Client {
    /// Name in tables and charts.
    pub fn name(&self) -> String {
        match self {
            Client::Ours { .. } => "kafka-pure (this client)".into(),
            Client::Java { version, .. } => format!("Java kafka-clients {version}"),
            Client::Librdkafka { .. } => "librdkafka (confluent-kafka Python)".into(),
            Client::FranzGo { .. } => "franz-go v1.22.3".into(),
            Client::Rust { name, .. } => (*name).into(),
        }
    }

    /// The command that runs `workload` on `topic` (copying to `output`);
    /// `None` when the bench has no program for this client and workload.
    pub fn command(
        &self,
        bootstrap: &str,
        workload: &Workload,
        topic: &str,
        output: &str,
    ) -> Option<Command> {
        if workload.kind == Kind::Copy {
            return self.copy_command(bootstrap, workload, topic, output);
        }
        Some(self.produce_or_consume(bootstrap, workload, topic))
    }

    /// The exactly-once loop: this client's `Processor`, the Java client's
    /// transactional copy loop (`JavaPeer copy`), franz-go's
    /// GroupTransactSession. The group and transactional id derive from the
    /// (fresh) output topic.
    fn copy_command(
        &self,
        bootstrap: &str,
        workload: &Workload,
        input: &str,
        output: &str,
    ) -> Option<Command> {
        let (count, per_transaction) = (workload.count.to_string(), workload.batch.to_string());
        let group = format!("{output}-group");
        let transactional_id = format!("{output}-txn");
        match self {
            Client::Ours { exe } => {
                let mut command = Command::new(exe);
                command.args(["transform", "--bootstrap", bootstrap, "--input", input]);
                command.args(["--output", output, "--group", &group, "--dynamic"]);
                command.args(["--transactional-id", &transactional_id]);
                command.args(["--semantics", "exactly-once", "--stop-after", &count]);
                command.args([
                    "--max-batch",
                    &per_transaction,
                    "--idle-timeout-ms",
                    "60000",
                ]);
                Some(command)
            }
            Client::Java {
                java, classpath, ..
            } => {
                // A loop of the project's: kafka-tools' TransactionalMessageCopier
                // is a system-test tool (51k records in 100 s here).
                let mut command = Command::new(java);
                command.args(["-Dlog4j2.level=OFF", "-cp", classpath]);
                command.arg(crate::java::PEER);
                command.args(["copy", "--bootstrap", bootstrap, "--topic", input]);
                command.args(["--output", output, "--group", &group]);
                command.args(["--count", &count, "--per-txn", &per_transaction]);
                Some(command)
            }
            Client::FranzGo { exe } => {
                let mut command = Command::new(exe);
                command.args(["-mode", "copy", "-bootstrap", bootstrap, "-topic", input]);
                command.args(["-output", output, "-group", &group]);
                command.args(["-count", &count, "-batch", &per_transaction]);
                Some(command)
            }
            Client::Librdkafka { .. } | Client::Rust { .. } => None,
        }
    }

    fn produce_or_consume(&self, bootstrap: &str, workload: &Workload, topic: &str) -> Command {
        let (count, size) = (workload.count.to_string(), workload.size.to_string());
        let batch = workload.batch.to_string();
        match (self, workload.kind == Kind::Produce) {
            (Client::Ours { exe }, true) => {
                let mut command = Command::new(exe);
                command.args(["produce", "--bootstrap", bootstrap, "--topic", topic]);
                command.args(["--count", &count, "--size", &size]);
                for property in [
                    "acks=all".to_owned(),
                    "enable.idempotence=true".to_owned(),
                    format!("linger.ms={LINGER_MS}"),
                    format!("batch.size={batch}"),
                ] {
                    command.args(["--property", &property]);
                }
                command
            }
            (Client::Ours { exe }, false) => {
                let mut command = Command::new(exe);
                command.args(["consume", "--bootstrap", bootstrap, "--topic", topic]);
                command.args(["--count", &count]);
                command
            }
            (
                Client::Java {
                    java, classpath, ..
                },
                produce,
            ) => {
                let mut command = Command::new(java);
                command.args(["-Dlog4j2.level=OFF", "-cp", classpath]);
                if produce {
                    command.arg("org.apache.kafka.tools.ProducerPerformance");
                    command.args(["--topic", topic, "--num-records", &count]);
                    command.args(["--record-size", &size, "--throughput", "-1"]);
                    command.args([
                        "--producer-props".to_owned(),
                        format!("bootstrap.servers={bootstrap}"),
                        "acks=all".to_owned(),
                        "enable.idempotence=true".to_owned(),
                        format!("linger.ms={LINGER_MS}"),
                        format!("batch.size={batch}"),
                    ]);
                } else {
                    command.arg("org.apache.kafka.tools.ConsumerPerformance");
                    command.args(["--bootstrap-server", bootstrap, "--topic", topic]);
                    command.args(["--num-records", &count, "--timeout", "120000"]);
                }
                command
            }
            (Client::Librdkafka { script }, produce) => {
                let mut command = Command::new("python3");
                command.arg(script);
                if produce {
                    command.args(["bench-produce", "--size", &size, "--batch-size", &batch]);
                } else {
                    command.arg("bench-consume");
                }
                command.args([
                    "--bootstrap",
                    bootstrap,
                    "--topic",
                    topic,
                    "--count",
                    &count,
                ]);
                command
            }
            // The same flags; Go's flag package spells them with one dash.
            (Client::FranzGo { exe }, produce) | (Client::Rust { exe, .. }, produce) => {
                let dash = if matches!(self, Client::FranzGo { .. }) {
                    "-"
                } else {
                    "--"
                };
                let mode = if produce { "produce" } else { "consume" };
                let mut command = Command::new(exe);
                for (flag, value) in [
                    ("mode", mode),
                    ("bootstrap", bootstrap),
                    ("topic", topic),
                    ("count", count.as_str()),
                    ("size", size.as_str()),
                    ("batch", batch.as_str()),
                ] {
                    command.arg(format!("{dash}{flag}")).arg(value);
                }
                command
            }
        }
    }

    /// Reads the client's own report from its output. The exactly-once
    /// loop is not read from the client: the harness counts the committed
    /// output itself.
    pub fn parse(&self, kind: Kind, stdout: &str, stderr: &str) -> Result<Reported, String> {
        if kind == Kind::Copy {
            return Ok(Reported::default());
        }
        match self {
            // `harness consume` keeps stdout for records (`--print`).
            Client::Ours { .. } if kind == Kind::Consume => json_report(stderr),
            Client::Java { .. } => match kind {
                Kind::Produce => java_producer_performance(stdout),
                _ => java_consumer_performance(stdout),
            },
            _ => json_report(stdout),
        }
    }
}

/// The last JSON line: `harness produce|consume`, `rdkafka.py`, franz-bench.
fn json_report(stdout: &str) -> Result<Reported, String> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or("no JSON report on stdout")?;
    let value: Value = serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
    let number = |key: &str| value[key].as_f64();
    let records = ["acked", "consumed", "records"]
        .iter()
        .find_map(|key| value[*key].as_u64())
        .ok_or_else(|| format!("no record count in {line}"))?;
    Ok(Reported {
        records,
        records_per_sec: number("records_per_sec").ok_or("no records_per_sec")?,
        mb_per_sec: number("mb_per_sec").unwrap_or_default(),
        p50_ms: number("p50_ms"),
        p99_ms: number("p99_ms"),
    })
}

/// ProducerPerformance's summary: `N records sent, R records/sec (M MB/sec),
/// A ms avg latency, X ms max latency, P ms 50th, Q ms 95th, S ms 99th, …`.
fn java_producer_performance(stdout: &str) -> Result<Reported, String> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.contains("records sent") && l.contains("50th"))
        .ok_or("no ProducerPerformance summary on stdout")?;
    let fields: Vec<&str> = line.split(", ").collect();
    let first_number = |field: &str| -> Option<f64> {
        field
            .split([' ', '('])
            .find_map(|word| word.parse::<f64>().ok())
    };
    let find = |suffix: &str| {
        fields
            .iter()
            .find(|f| f.contains(suffix))
            .and_then(|f| first_number(f))
    };
    let mb = fields
        .iter()
        .find(|f| f.contains("records/sec"))
        .and_then(|f| f.split('(').nth(1))
        .and_then(first_number);
    Ok(Reported {
        records: find("records sent").ok_or("no record count")? as u64,
        records_per_sec: find("records/sec").ok_or("no records/sec")?,
        mb_per_sec: mb.unwrap_or_default(),
        p50_ms: find("50th"),
        p99_ms: fields
            .iter()
            .find(|f| f.ends_with("99th"))
            .and_then(|f| first_number(f)),
    })
}

/// ConsumerPerformance's CSV line: `start.time, end.time, MB, MB.sec, nMsg,
/// nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec`.
/// The fetch figures leave the group join out, as the others have none.
fn java_consumer_performance(stdout: &str) -> Result<Reported, String> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.split(", ").count() == 10 && !l.starts_with("start.time"))
        .ok_or("no ConsumerPerformance line on stdout")?;
    let fields: Vec<&str> = line.split(", ").collect();
    let number = |i: usize| {
        fields[i]
            .trim()
            .parse::<f64>()
            .map_err(|e| format!("{e}: {line}"))
    };
    Ok(Reported {
        records: number(4)? as u64,
        records_per_sec: number(9)?,
        mb_per_sec: number(8)?,
        p50_ms: None,
        p99_ms: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_summaries_are_read() {
        let produced = java_producer_performance(
            "100 records sent, 20.0 records/sec\n1000000 records sent, 251004.016064 records/sec (23.94 MB/sec), 812.33 ms avg latency, 1456.00 ms max latency, 801 ms 50th, 1320 ms 95th, 1410 ms 99th, 1450 ms 99.9th.\n",
        )
        .unwrap();
        assert_eq!(produced.records, 1_000_000);
        assert!((produced.records_per_sec - 251_004.016064).abs() < 1e-6);
        assert_eq!(produced.mb_per_sec, 23.94);
        assert_eq!(
            (produced.p50_ms, produced.p99_ms),
            (Some(801.0), Some(1410.0))
        );

        let consumed = java_consumer_performance(
            "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n2026-12-03 14:00:00:000, 2026-12-03 14:00:04:000, 95.3674, 23.8419, 1000000, 250000.0000, 3000, 1000, 95.3674, 1000000.0000\n",
        )
        .unwrap();
        assert_eq!(consumed.records, 1_000_000);
        assert_eq!(consumed.records_per_sec, 1_000_000.0);
    }

    #[test]
    fn json_reports_are_read() {
        let ours = json_report("log line\n{\"acked\": 10, \"records_per_sec\": 5.0, \"mb_per_sec\": 1.0, \"p50_ms\": 2.0, \"p99_ms\": 3.0}\n").unwrap();
        assert_eq!((ours.records, ours.p99_ms), (10, Some(3.0)));
        assert!(json_report("no report").is_err());
    }
}
