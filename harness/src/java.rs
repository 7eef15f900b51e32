//! The Java client (kafka-clients, the interop reference) as a peer:
//! `harness/java/JavaPeer.java`, run from source by `java` on the jars
//! `harness broker install` resolved (no build step), and Kafka's own
//! `TransactionalMessageCopier` from kafka-tools.

use bytes::Bytes;

use crate::broker::install::kafka_version;
use crate::broker::installed_kafka;
use crate::fixtures::{PeerError, BASE_TIMESTAMP};

/// The peer program's source.
pub const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/java/JavaPeer.java");

/// The exactly-once copier of kafka-tools (consume, produce, commit the
/// offsets in the transaction).
pub const COPIER: &str = "org.apache.kafka.tools.TransactionalMessageCopier";

/// `java` on the Kafka jars running `main` (a source file or a class) with
/// `args`; killed when dropped. Kafka's logging is off: stdout carries only
/// the program's own output.
pub fn command(main: &str, args: &[&str]) -> Result<tokio::process::Command, PeerError> {
    let install = installed_kafka(&kafka_version()).map_err(|e| {
        PeerError::Missing(format!(
            "the Java peer needs Apache Kafka's jars and Java 17+ ({e}): run `harness broker install`"
        ))
    })?;
    let mut command = tokio::process::Command::new(&install.java);
    command
        .arg("-Dlog4j2.level=OFF")
        .arg("-cp")
        .arg(install.classpath())
        .arg(main)
        .args(args)
        .kill_on_drop(true);
    Ok(command)
}

/// Runs `JavaPeer.java` with `args` to its end; returns its stdout.
pub async fn run(args: &[&str]) -> Result<String, PeerError> {
    let output = command(PEER, args)?
        .output()
        .await
        .map_err(|e| PeerError::Missing(format!("cannot run java: {e}")))?;
    PeerError::check("JavaPeer", args, output)
}

/// Key, value and create time of record `i` as `JavaPeer produce --prefix
/// prefix` writes it: key `key-i` (null when `i % 5 == 3`), value
/// `prefix-value-i` (null when `i % 5 == 4`), time `BASE_TIMESTAMP + i`.
/// Headers are [`crate::fixtures::expected_headers`].
pub fn expected_record(prefix: &str, i: usize) -> (Option<Bytes>, Option<Bytes>, i64) {
    let key = (i % 5 != 3).then(|| Bytes::from(format!("key-{i}")));
    let value = (i % 5 != 4).then(|| Bytes::from(format!("{prefix}-value-{i}")));
    (key, value, BASE_TIMESTAMP + i as i64)
}

/// The value of record `i` of transaction `t` in `JavaPeer txn-produce`
/// (and in the tests' own transactions that Java reads).
pub fn transaction_value(codec: &str, t: usize, i: usize) -> String {
    format!("{codec}-t{t}-{i}")
}
