//! What every Rust peer of `harness bench --peers` shares: its command
//! line (`--mode produce|consume --bootstrap B --topic T --count N --size S
//! --batch BYTES`), the workload's records, and the one JSON line it reports.

use std::time::Duration;

/// `--mode produce|consume --bootstrap B --topic T --count N --size S`.
#[derive(Debug, Clone)]
pub struct Args {
    /// `produce` or `consume`.
    pub mode: String,
    /// Bootstrap servers, comma-separated.
    pub bootstrap: String,
    /// The topic (created by the harness).
    pub topic: String,
    /// Records.
    pub count: usize,
    /// Value bytes per record.
    pub size: usize,
    /// Producer batch size in bytes (`batch.size`).
    pub batch: usize,
}

impl Args {
    /// From the process arguments; exits with a message when one is missing.
    pub fn parse() -> Self {
        let raw: Vec<String> = std::env::args().skip(1).collect();
        let get = |flag: &str| {
            raw.iter()
                .position(|a| a == flag)
                .and_then(|i| raw.get(i + 1))
                .cloned()
        };
        let need = |flag: &str| get(flag).unwrap_or_else(|| fail(&format!("missing {flag}")));
        let number = |flag: &str, default: usize| {
            get(flag).map_or(default, |v| {
                v.parse()
                    .unwrap_or_else(|_| fail(&format!("{flag}: not a number: {v}")))
            })
        };
        Self {
            mode: need("--mode"),
            bootstrap: need("--bootstrap"),
            topic: need("--topic"),
            count: number("--count", 1_000_000),
            size: number("--size", 100),
            batch: number("--batch", 1_000_000),
        }
    }

    /// The bootstrap servers as a list.
    pub fn brokers(&self) -> Vec<String> {
        self.bootstrap.split(',').map(str::to_owned).collect()
    }
}

/// Record `i`: key `i`, value `msg-i` padded with `.` to `size` (as
/// `harness produce` writes it).
pub fn record(i: usize, size: usize) -> (Vec<u8>, Vec<u8>) {
    let mut value = format!("msg-{i}").into_bytes();
    if value.len() < size {
        value.resize(size, b'.');
    }
    (i.to_string().into_bytes(), value)
}

/// Prints the produce report.
pub fn report_produce(
    client: &str,
    args: &Args,
    elapsed: Duration,
    mut latencies: Vec<Duration>,
    failed: usize,
) {
    latencies.sort_unstable();
    let pick = |p: f64| {
        let index = ((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    let acked = args.count - failed;
    let seconds = elapsed.as_secs_f64().max(1e-9);
    println!(
        "{}",
        serde_json::json!({
            "client": client,
            "records": acked,
            "failed": failed,
            "elapsed_ms": seconds * 1e3,
            "records_per_sec": acked as f64 / seconds,
            "mb_per_sec": (acked * args.size) as f64 / seconds / 1e6,
            "p50_ms": pick(0.5),
            "p99_ms": pick(0.99),
        })
    );
}

/// Prints the consume report.
pub fn report_consume(client: &str, records: usize, bytes: usize, elapsed: Duration) {
    let seconds = elapsed.as_secs_f64().max(1e-9);
    println!(
        "{}",
        serde_json::json!({
            "client": client,
            "records": records,
            "elapsed_ms": seconds * 1e3,
            "records_per_sec": records as f64 / seconds,
            "mb_per_sec": bytes as f64 / seconds / 1e6,
        })
    );
}

/// Prints `message` on stderr and exits with status 1.
pub fn fail(message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(1)
}
