//! librdkafka as a peer client, and the captured Fetch fixtures.
//!
//! - [`rdkafka`]: runs `harness/tests/interop/rdkafka.py` (Python
//!   confluent-kafka, i.e. librdkafka) and returns its stdout.
//! - [`expected_record`] / [`expected_headers`]: the deterministic content that
//!   script writes, so that both sides compare every field.
//! - [`capture`]: librdkafka produces one topic per codec and a transactions
//!   run; the raw Fetch v12 response frames are written to files that
//!   `kafka-wire/tests/fixtures.rs` decodes without a broker.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use kafka_wire::codec::decode_response;
use kafka_wire::conn::{connect, ConnectionConfig};
use kafka_wire::protocol::messages::FetchRequest;
use kafka_wire::records::{BatchReader, Compression, Header, RecordBatch};
use kafka_wire::Connection;

use crate::wire_ops;

/// The peer script.
pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/rdkafka.py");
/// Timestamp of record 0; record `i` has `BASE_TIMESTAMP + i`.
pub const BASE_TIMESTAMP: i64 = 1_700_000_000_000;
/// Records per codec in the captured fixtures.
pub const FIXTURE_RECORDS: usize = 10;
/// The Fetch version the fixtures are captured at (the last one that names
/// topics instead of topic ids).
pub const FIXTURE_FETCH_VERSION: i16 = 12;
/// Transactions `rdkafka.py transactions` runs, in order, and records in each.
pub const TRANSACTIONS: [&str; 3] = ["commit", "abort", "commit"];
/// Records per transaction.
pub const RECORDS_PER_TRANSACTION: usize = 5;

/// Running a peer client failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The peer cannot run at all (no python3 with confluent-kafka, no
    /// Java or Kafka jars); the message says how to install it.
    #[error("the interop peer cannot run: {0}")]
    Missing(String),
    /// The peer ran and reported a failure.
    #[error("{peer} {args} failed ({status}): {stderr}")]
    Failed {
        /// Which peer (script or program).
        peer: &'static str,
        /// Command line arguments.
        args: String,
        /// Exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
}

impl PeerError {
    /// The error for a finished peer process, or `Ok(stdout)`.
    pub fn check(
        peer: &'static str,
        args: &[&str],
        output: std::process::Output,
    ) -> Result<String, PeerError> {
        if !output.status.success() {
            return Err(PeerError::Failed {
                peer,
                args: args.join(" "),
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// Key, value and timestamp of record `i` as `rdkafka.py` writes it: key
/// `key-{i}`, value `{prefix}-value-{i}` (prefix = codec name, or
/// `txn{t}-{outcome}` in the transactions run).
pub fn expected_record(prefix: &str, i: usize) -> (Bytes, Bytes, i64) {
    (
        Bytes::from(format!("key-{i}")),
        Bytes::from(format!("{prefix}-value-{i}")),
        BASE_TIMESTAMP + i as i64,
    )
}

/// Every record's headers: a repeated key and a null value, on purpose.
pub fn expected_headers() -> Vec<Header> {
    vec![
        Header::new("dup", "1"),
        Header::new("dup", "2"),
        Header {
            key: Bytes::from_static(b"null"),
            value: None,
        },
    ]
}

/// Runs `rdkafka.py` with `args`; returns its stdout. Missing Python or
/// confluent-kafka is [`PeerError::Missing`], never a silent success.
pub async fn rdkafka(args: &[&str]) -> Result<String, PeerError> {
    check_python()?;
    let output = tokio::process::Command::new("python3")
        .arg(SCRIPT)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| PeerError::Missing(format!("cannot run python3: {e}")))?;
    PeerError::check("rdkafka.py", args, output)
}

/// Checks once per process that `import confluent_kafka` works.
fn check_python() -> Result<(), PeerError> {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    let result = CHECK.get_or_init(|| {
        let output = std::process::Command::new("python3")
            .args(["-c", "import confluent_kafka"])
            .output()
            .map_err(|e| format!("cannot run python3: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            // The last line of the traceback names what is missing.
            let stderr = String::from_utf8_lossy(&output.stderr);
            Err(stderr
                .trim()
                .lines()
                .last()
                .unwrap_or("import confluent_kafka failed")
                .to_owned())
        }
    });
    result.clone().map_err(|missing| {
        PeerError::Missing(format!(
            "librdkafka needs python3 with confluent-kafka ({missing}): run `.ci/setup` or `pip install confluent-kafka`"
        ))
    })
}

/// `rdkafka.py produce`: `count` records of the deterministic content in one
/// batch with `codec`; returns the script's JSON report.
pub async fn rdkafka_produce(
    bootstrap: &str,
    topic: &str,
    codec: Compression,
    count: usize,
) -> Result<String, PeerError> {
    let count = count.to_string();
    rdkafka(&[
        "produce",
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--codec",
        codec.name(),
        "--count",
        &count,
    ])
    .await
}

/// A topic name no earlier run used (one broker serves many runs).
pub fn unique_topic(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

type Error = Box<dyn std::error::Error>;

/// Captures the fixtures into `out`: `fetch_v12_{codec}.bin` for every codec
/// and `fetch_v12_transactions.bin`. Returns each file with its size.
pub async fn capture(bootstrap: &str, out: &Path) -> Result<Vec<(PathBuf, usize)>, Error> {
    std::fs::create_dir_all(out)?;
    let connection = connect(bootstrap, None, ConnectionConfig::default()).await?;
    let mut written = Vec::new();
    for codec in Compression::ALL {
        let topic = unique_topic(&format!("fixture-{codec}"));
        wire_ops::create_topic(&connection, &topic, 1).await?;
        let leader = wire_ops::leader_connection(&connection, &topic, 0).await?;
        rdkafka_produce(bootstrap, &topic, codec, FIXTURE_RECORDS).await?;
        let frame = fetch_raw_until(&leader, &topic, |b| records_in(b) == FIXTURE_RECORDS).await?;
        written.push(write(out, &format!("fetch_v12_{codec}.bin"), &frame)?);
    }
    let topic = unique_topic("fixture-transactions");
    wire_ops::create_topic(&connection, &topic, 1).await?;
    let leader = wire_ops::leader_connection(&connection, &topic, 0).await?;
    rdkafka(&["transactions", "--bootstrap", bootstrap, "--topic", &topic]).await?;
    let markers = TRANSACTIONS.len();
    let frame = fetch_raw_until(&leader, &topic, |b| {
        b.iter().filter(|b| b.header.attributes.control).count() == markers
    })
    .await?;
    written.push(write(out, "fetch_v12_transactions.bin", &frame)?);
    Ok(written)
}

/// Fetches partition 0 from offset 0 (read_uncommitted, so markers and aborted
/// records are there) at v12 until one response holds everything `complete`
/// asks for; returns that raw response frame.
async fn fetch_raw_until(
    connection: &Connection,
    topic: &str,
    complete: impl Fn(&[RecordBatch]) -> bool,
) -> Result<Bytes, Error> {
    let request = wire_ops::fetch_request(topic, 0, 0, false);
    for _ in 0..100 {
        let frame = connection.send_raw(&request, FIXTURE_FETCH_VERSION).await?;
        if complete(&decode_batches(frame.clone())?) {
            return Ok(frame);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(
        format!("{topic}: no single Fetch v{FIXTURE_FETCH_VERSION} response held all records")
            .into(),
    )
}

/// The batches of the first partition of a raw Fetch response frame.
fn decode_batches(frame: Bytes) -> Result<Vec<RecordBatch>, Error> {
    let (_, response) = decode_response::<FetchRequest>(frame, FIXTURE_FETCH_VERSION)?;
    let partition = response
        .responses
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or("the Fetch response names no partition")?;
    if partition.error_code != 0 {
        return Err(format!("Fetch error code {}", partition.error_code).into());
    }
    Ok(
        BatchReader::new(partition.records.clone().unwrap_or_default())
            .collect::<Result<_, _>>()?,
    )
}

fn records_in(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.records.len()).sum()
}

fn write(dir: &Path, name: &str, frame: &[u8]) -> Result<(PathBuf, usize), Error> {
    let path = dir.join(name);
    std::fs::write(&path, frame)?;
    Ok((path, frame.len()))
}
