//! Producing and consuming at once, for the cluster-fault scenarios: the
//! guarantee's producer writes the input while two processors of the same
//! guarantee (dynamic members of one group) transform it into the output,
//! and the fault strikes once a third of the input is handed over. The
//! checker compares the output with what the producer was told: a record
//! lost or duplicated by either side shows.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use semantics::Guarantee;

use super::workload::produce;
use super::{checked, create_topic, unique, workload, Error, Stage, VerifyOptions};
use crate::checker::{Anomalies, Sent};

const PARTITIONS: i32 = 3;
const MEMBERS: usize = 2;

/// What a fault may need to know of the run it strikes.
pub(super) struct Run {
    /// Input topic.
    pub input: String,
    /// The processors' group.
    pub group: String,
    /// The input producer's `transactional.id` (exactly-once).
    pub transactional_id: String,
    /// Input records handed to the producer so far.
    pub produced: Arc<AtomicU64>,
    /// Input records handled by the processors so far.
    pub handled: Arc<AtomicU64>,
    /// Records in the run.
    pub records: u64,
    /// The `harness` executable, for faults that run a process of their own.
    pub harness_exe: std::path::PathBuf,
}

impl Run {
    /// Whether the run still had work when the fault struck: it counts as hit.
    pub fn busy(&self) -> bool {
        self.handled.load(Ordering::Relaxed) < self.records
    }
}

/// Runs the pipeline with `fault`; the fault returns how many faults hit.
pub(super) async fn run<F>(
    guarantee: Guarantee,
    options: &VerifyOptions,
    stage: &mut Stage,
    fault: F,
) -> Result<(Anomalies, u64), Error>
where
    F: AsyncFnOnce(&mut Stage, &Run) -> Result<u64, Error>,
{
    let (input, output) = (unique("verify-pipe-in"), unique("verify-pipe-out"));
    create_topic(&stage.bootstrap(), &input, PARTITIONS).await?;
    create_topic(&stage.bootstrap(), &output, PARTITIONS).await?;
    let mut w = workload(stage, &input, guarantee, options.records);
    // At least ~1 s of producing, so the fault lands mid-stream.
    w.pace = Some(Duration::from_millis(10));
    let run = Run {
        input: input.clone(),
        group: unique("verify-pipe-group"),
        transactional_id: w.transactional_id.clone(),
        produced: w.progress.clone(),
        handled: Arc::new(AtomicU64::new(0)),
        records: options.records,
        harness_exe: options.harness_exe.clone(),
    };
    let producer = tokio::spawn(async move { produce(&w).await });
    let mut stops = Vec::new();
    let mut members = Vec::new();
    for _ in 0..MEMBERS {
        let (stop, stopped) = tokio::sync::oneshot::channel();
        stops.push(stop);
        members.push(member(guarantee, stage, &run, &output, stopped, None));
    }
    let third = options.records / 3;
    while run.produced.load(Ordering::Relaxed) < third && !producer.is_finished() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tracing::info!(
        produced = run.produced.load(Ordering::Relaxed),
        "pipeline: fault strikes"
    );
    let faults = fault(stage, &run).await?;
    tracing::info!(
        handled = run.handled.load(Ordering::Relaxed),
        "pipeline: fault over"
    );
    let sent: Vec<Sent> = producer.await?;
    tracing::info!(
        handled = run.handled.load(Ordering::Relaxed),
        "pipeline: input written"
    );
    // The members stop once they have been idle for a while; a last one
    // finishes whatever they left.
    settle(&run.handled, Duration::from_secs(5)).await;
    for stop in stops {
        let _ = stop.send(());
    }
    for member in members {
        member.await??;
    }
    let (_keep, last) = tokio::sync::oneshot::channel();
    let finisher = member(
        guarantee,
        stage,
        &run,
        &output,
        last,
        Some(Duration::from_secs(5)),
    );
    tokio::time::timeout(Duration::from_secs(600), finisher)
        .await
        .map_err(|_| "the finishing processor did not catch up within 600 s")???;
    Ok((checked(stage, &output, guarantee, &sent).await?, faults))
}

/// Waits until `counter` has not moved for `quiet`.
async fn settle(counter: &AtomicU64, quiet: Duration) {
    let mut last = counter.load(Ordering::Relaxed);
    let mut since = Instant::now();
    while since.elapsed() < quiet {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = counter.load(Ordering::Relaxed);
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
}

fn member(
    guarantee: Guarantee,
    stage: &Stage,
    run: &Run,
    output: &str,
    stop: tokio::sync::oneshot::Receiver<()>,
    idle: Option<Duration>,
) -> tokio::task::JoinHandle<Result<(), Error>> {
    let (bootstrap, input, output, group) = (
        stage.bootstrap(),
        run.input.clone(),
        output.to_owned(),
        run.group.clone(),
    );
    let handled = run.handled.clone();
    tokio::spawn(async move {
        super::scenarios::processor_member(
            guarantee, &bootstrap, &group, &input, &output, stop, &handled, idle,
        )
        .await
    })
}
