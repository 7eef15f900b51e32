//! How each scenario injects its fault.

use std::collections::HashMap;
use std::time::Duration;

use semantics::{DeliveryGuarantee, Guarantee};

use super::workload::produce;
use super::{checked, create_topic, unique, workload, Error, Scenario, Stage, VerifyOptions};
use crate::checker::{Anomalies, Sent};
use crate::proxy::Faults;

const PARTITIONS: i32 = 3;

/// The anomalies, and how many faults hit.
pub(super) async fn run(
    guarantee: Guarantee,
    scenario: Scenario,
    options: &VerifyOptions,
    stage: &mut Stage,
) -> Result<(Anomalies, u64), Error> {
    match scenario {
        Scenario::NoFault => simple(guarantee, options, stage, None).await,
        Scenario::LostProduceResponse => {
            let faults = Faults {
                drop_responses: HashMap::from([(0, vec![2, 4, 6, 8])]),
                ..Faults::default()
            };
            simple(guarantee, options, stage, Some(faults)).await
        }
        Scenario::ConnectionResets => {
            let faults = Faults {
                chaos: Some((Duration::from_millis(20), Duration::from_millis(120))),
                ..Faults::default()
            };
            simple(guarantee, options, stage, Some(faults)).await
        }
        Scenario::BrokerRestart => broker_restart(guarantee, options, stage).await,
        Scenario::ConsumerCrash => consumer_crash(guarantee, options, stage).await,
        Scenario::ProducerCrash => producer_crash(guarantee, options, stage).await,
        Scenario::ZombieProducer => zombie(guarantee, options, stage).await,
        Scenario::RebalanceMidBatch => rebalance_mid_batch(guarantee, options, stage).await,
    }
}

async fn simple(
    guarantee: Guarantee,
    options: &VerifyOptions,
    stage: &mut Stage,
    faults: Option<Faults>,
) -> Result<(Anomalies, u64), Error> {
    let topic = unique("verify");
    create_topic(&stage.bootstrap(), &topic, PARTITIONS).await?;
    let mut w = workload(stage, &topic, guarantee, options.records);
    // A run of at least ~1 s: the proxy's faults land mid-stream.
    w.pace = faults.as_ref().map(|_| Duration::from_millis(10));
    stage.set_faults(faults);
    let sent = produce(&w).await;
    let injected = stage.proxy_faults();
    Ok((checked(stage, &topic, guarantee, &sent).await?, injected))
}

async fn broker_restart(
    guarantee: Guarantee,
    options: &VerifyOptions,
    stage: &mut Stage,
) -> Result<(Anomalies, u64), Error> {
    let topic = unique("verify-restart");
    create_topic(&stage.bootstrap(), &topic, PARTITIONS).await?;
    let w = workload(stage, &topic, guarantee, options.records);
    let progress = w.progress.clone();
    let writer = tokio::spawn(async move { produce(&w).await });
    // Kill once a third of the records are handed over: the rest is in flight.
    let third = options.records / 3;
    while progress.load(std::sync::atomic::Ordering::Relaxed) < third && !writer.is_finished() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut faults = 0;
    if let Some(cluster) = stage.cluster() {
        // The node leading partition 0: its clients must move to the new leader.
        let victim = cluster.leader_of(&topic, 0).await?.unwrap_or(1);
        if !writer.is_finished() {
            faults += 1;
        }
        cluster.kill(victim);
        cluster.restart(victim).await?;
    }
    let sent = writer.await?;
    Ok((checked(stage, &topic, guarantee, &sent).await?, faults))
}

/// Input written cleanly; `harness transform` SIGKILLed twice mid-batch, then
/// run to the end; the checker reads the output.
async fn consumer_crash(
    guarantee: Guarantee,
    options: &VerifyOptions,
    stage: &mut Stage,
) -> Result<(Anomalies, u64), Error> {
    let (input, output) = (unique("verify-in"), unique("verify-out"));
    create_topic(&stage.bootstrap(), &input, PARTITIONS).await?;
    create_topic(&stage.bootstrap(), &output, PARTITIONS).await?;
    // The input is written at-least-once; the guarantee under test is the processor's.
    let clean = workload(stage, &input, Guarantee::AtLeastOnce, options.records);
    let sent: Vec<Sent> = produce(&clean).await;
    let bootstrap = stage.bootstrap();
    let (group, id) = (unique("verify-group"), unique("verify-transform"));
    let spawn = || {
        tokio::process::Command::new(&options.harness_exe)
            .args([
                "transform",
                "--bootstrap",
                &bootstrap,
                "--input",
                &input,
                "--output",
                &output,
            ])
            .args([
                "--group",
                &group,
                "--transactional-id",
                &id,
                "--semantics",
                guarantee.name(),
            ])
            .args(["--max-batch", "500", "--idle-timeout-ms", "3000"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
    };
    let kills = crate::crash::kill_repeatedly(
        spawn,
        2,
        options.seed,
        Duration::from_millis(300),
        Duration::from_millis(600),
    )
    .await? as u64;
    let status = tokio::time::timeout(Duration::from_secs(300), spawn()?.wait()).await??;
    if !status.success() {
        return Err(format!("harness transform exited with {status}").into());
    }
    Ok((checked(stage, &output, guarantee, &sent).await?, kills))
}

/// The first producer is abandoned halfway (mid-transaction for
/// exactly-once); a successor (same transactional id) writes the rest.
async fn producer_crash(
    guarantee: Guarantee,
    options: &VerifyOptions,
    stage: &mut Stage,
) -> Result<(Anomalies, u64), Error> {
    let topic = unique("verify-crash");
    create_topic(&stage.bootstrap(), &topic, PARTITIONS).await?;
    let half = options.records / 2;
    let mut first = workload(stage, &topic, guarantee, options.records);
    first.crash_after = Some(half + first.txn_size / 2);
    let mut sent = produce(&first).await;
    let mut successor = first.clone();
    successor.crash_after = None;
    successor.first_id = options.records * 2; // ids of its own
    successor.producer = 1;
    successor.records = options.records - half;
    sent.extend(produce(&successor).await);
    Ok((checked(stage, &topic, guarantee, &sent).await?, 1))
}

/// An old producer goes on writing beside its successor. With a
/// transactional id the successor fences it: its open transaction is aborted
/// and everything it tries afterwards fails.
async fn zombie(
    guarantee: Guarantee,
    options: &VerifyOptions,
    stage: &mut Stage,
) -> Result<(Anomalies, u64), Error> {
    let topic = unique("verify-zombie");
    create_topic(&stage.bootstrap(), &topic, PARTITIONS).await?;
    let old = workload(stage, &topic, guarantee, options.records / 2);
    let mut successor = old.clone();
    successor.first_id = options.records * 2;
    successor.producer = 1;
    successor.records = options.records - options.records / 2;
    let zombie = {
        let old = old.clone();
        tokio::spawn(async move { produce(&old).await })
    };
    // Let the old one get going, then start its successor.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut sent = produce(&successor).await;
    // For exactly-once, what the fenced producer did not see committed is
    // marked aborted: reading it would be an `aborted_read`.
    sent.extend(zombie.await?);
    Ok((checked(stage, &topic, guarantee, &sent).await?, 1))
}

/// Input written cleanly; processors (dynamic members of one group) join and
/// leave while batches are in flight — two from the start, a third and
/// fourth joining, the first two leaving (between batches, as on SIGTERM) —
/// then a last member finishes what is left. The checker reads the output.
async fn rebalance_mid_batch(
    guarantee: Guarantee,
    options: &VerifyOptions,
    stage: &mut Stage,
) -> Result<(Anomalies, u64), Error> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    let (input, output) = (unique("verify-rb-in"), unique("verify-rb-out"));
    create_topic(&stage.bootstrap(), &input, 6).await?;
    create_topic(&stage.bootstrap(), &output, PARTITIONS).await?;
    let clean = workload(stage, &input, Guarantee::AtLeastOnce, options.records);
    let sent: Vec<Sent> = produce(&clean).await;
    let group = unique("verify-rb-group");
    let handled = Arc::new(AtomicU64::new(0));
    let member = |stop: tokio::sync::oneshot::Receiver<()>| {
        let (bootstrap, input, output, group) = (
            stage.bootstrap(),
            input.clone(),
            output.clone(),
            group.clone(),
        );
        let handled = handled.clone();
        tokio::spawn(async move {
            rebalancing_member(
                guarantee, &bootstrap, &group, &input, &output, stop, &handled,
            )
            .await
        })
    };
    // (fraction of the input handled, member to start (Some) or stop (None)).
    let schedule: [(u64, Option<usize>); 4] =
        [(15, Some(2)), (35, None), (55, Some(3)), (75, None)];
    let mut stops = Vec::new();
    let mut members = Vec::new();
    for _ in 0..2 {
        let (tx, rx) = tokio::sync::oneshot::channel();
        stops.push(Some(tx));
        members.push(member(rx));
    }
    let mut changes = 0;
    let mut to_stop = 0;
    for (percent, change) in schedule {
        let at = options.records * percent / 100;
        while handled.load(Ordering::Relaxed) < at && members.iter().any(|m| !m.is_finished()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if members.iter().all(|m| m.is_finished()) {
            break;
        }
        changes += 1;
        match change {
            Some(_) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                stops.push(Some(tx));
                members.push(member(rx));
            }
            None => {
                if let Some(stop) = stops[to_stop].take() {
                    let _ = stop.send(());
                }
                to_stop += 1;
            }
        }
    }
    for member in members {
        member.await??;
    }
    // Whatever the members left (one may idle out mid-rebalance) is finished
    // by a last one; the promise is about what ends in the output.
    let (_keep, last) = tokio::sync::oneshot::channel();
    member(last).await??;
    Ok((checked(stage, &output, guarantee, &sent).await?, changes))
}

/// One processor of the rebalance scenario, until idle or told to stop.
async fn rebalancing_member(
    guarantee: Guarantee,
    bootstrap: &str,
    group: &str,
    input: &str,
    output: &str,
    stop: tokio::sync::oneshot::Receiver<()>,
    handled: &std::sync::atomic::AtomicU64,
) -> Result<(), Error> {
    use semantics::guarantee::batch::LoopOptions;
    use semantics::guarantee::processor::{Processor, ProcessorConfig};

    let mut config = ProcessorConfig::new(bootstrap, group);
    config.consumer = [
        ("session.timeout.ms", "10000"),
        ("heartbeat.interval.ms", "300"),
        ("fetch.max.wait.ms", "100"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    config.producer = vec![("linger.ms".into(), "5".into())];
    config.batching = LoopOptions {
        max_batch: 500,
        max_wait: Duration::from_millis(50),
        idle_timeout: Some(Duration::from_secs(5)),
    };
    let mut processor = Processor::new(config, std::sync::Arc::new(guarantee)).await?;
    let stopped = async {
        let _ = stop.await;
    };
    let result = processor
        .run_until(
            &[input],
            |record| {
                handled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(vec![crate::transform::transformed(record, output)])
            },
            stopped,
        )
        .await;
    processor.close().await;
    result?;
    Ok(())
}
