//! How each scenario injects its fault.

use std::collections::HashMap;
use std::time::Duration;

use semantics::{DeliveryGuarantee, Guarantee};

use super::pipeline::{self, Run};
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
        Scenario::LeaderFailover => pipeline::run(guarantee, options, stage, leader_failover).await,
        Scenario::RollingRestart => pipeline::run(guarantee, options, stage, rolling_restart).await,
        Scenario::CoordinatorFailover => {
            pipeline::run(guarantee, options, stage, coordinator_failover).await
        }
        Scenario::NetworkPartition => {
            pipeline::run(guarantee, options, stage, network_partition).await
        }
        Scenario::StalledBroker => pipeline::run(guarantee, options, stage, stalled_broker).await,
        Scenario::LeaderMove => pipeline::run(guarantee, options, stage, leader_move).await,
        Scenario::GroupChurn => group_churn(guarantee, options, stage).await,
        Scenario::TornTransaction => {
            // A request that reaches the broker after the client gave up on
            // it (7 s > the workload's 5 s request.timeout.ms) and moved on:
            // EndTxn (API 26) under exactly-once — the late commit must not
            // end the next transaction (KAFKA-17754) — and Produce (API 0)
            // otherwise.
            let api = if guarantee == Guarantee::ExactlyOnce {
                26
            } else {
                0
            };
            let faults = Faults {
                delay_requests: HashMap::from([(api, (vec![3, 7], Duration::from_secs(7)))]),
                ..Faults::default()
            };
            simple(guarantee, options, stage, Some(faults)).await
        }
    }
}

/// Leadership of every input partition moves to another in-sync replica,
/// twice over, one partition at a time; no node stops.
async fn leader_move(stage: &mut Stage, run: &Run) -> Result<u64, Error> {
    let connection = kafka_wire::conn::connect(
        &stage.bootstrap(),
        None,
        kafka_wire::conn::ConnectionConfig::default(),
    )
    .await?;
    let mut hit = 0;
    for _ in 0..2 {
        for partition in 0..PARTITIONS {
            hit += u64::from(run.busy());
            crate::wire_ops::move_leadership(&connection, &run.input, partition).await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(hit)
}

/// The node leading partition 0 of the run's input.
async fn input_leader(stage: &mut Stage, run: &Run) -> Result<usize, Error> {
    let cluster = stage.cluster().ok_or("needs the local cluster")?;
    Ok(cluster.leader_of(&run.input, 0).await?.unwrap_or(1))
}

/// SIGKILL the input's leader; it comes back 5 s later on its data.
async fn leader_failover(stage: &mut Stage, run: &Run) -> Result<u64, Error> {
    let victim = input_leader(stage, run).await?;
    let hit = u64::from(run.busy());
    let cluster = stage.cluster().ok_or("needs the local cluster")?;
    cluster.kill(victim);
    tokio::time::sleep(Duration::from_secs(5)).await;
    cluster.restart(victim).await?;
    Ok(hit)
}

/// Every node in turn: SIGTERM, wait for it to stop, start it, give it a
/// few seconds to catch up, as an operator's upgrade does.
async fn rolling_restart(stage: &mut Stage, run: &Run) -> Result<u64, Error> {
    let cluster = stage.cluster().ok_or("needs the local cluster")?;
    let mut hit = 0;
    for id in cluster.node_ids() {
        hit += u64::from(run.busy());
        cluster.stop(id).await;
        cluster.restart(id).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    Ok(hit)
}

/// SIGKILL the node coordinating the processors' group and the one
/// coordinating the input producer's transactional id; back 5 s later.
async fn coordinator_failover(stage: &mut Stage, run: &Run) -> Result<u64, Error> {
    use crate::broker::cluster::CoordinatorKind;
    let cluster = stage.cluster().ok_or("needs the local cluster")?;
    let mut victims = vec![
        cluster
            .coordinator(CoordinatorKind::Group, &run.group)
            .await?,
    ];
    let txn = cluster
        .coordinator(CoordinatorKind::Transaction, &run.transactional_id)
        .await?;
    if !victims.contains(&txn) {
        victims.push(txn);
    }
    // Two of three nodes down would leave no quorum: one at a time then.
    let hit = u64::from(run.busy());
    for victim in victims {
        cluster.kill(victim);
        tokio::time::sleep(Duration::from_secs(5)).await;
        cluster.restart(victim).await?;
    }
    Ok(hit)
}

/// The input leader's proxy holds every byte both ways (no reset, no FIN)
/// for longer than the producer's `request.timeout.ms` (5 s), then heals.
async fn network_partition(stage: &mut Stage, run: &Run) -> Result<u64, Error> {
    let victim = input_leader(stage, run).await?;
    let cluster = stage.cluster().ok_or("needs the local cluster")?;
    let proxy = cluster.proxy(victim).ok_or("needs the proxied cluster")?;
    let hit = u64::from(run.busy());
    proxy.blackhole(true);
    tokio::time::sleep(Duration::from_secs(8)).await;
    proxy.blackhole(false);
    Ok(hit)
}

/// SIGSTOP the input leader for 30 s, then SIGCONT. Meanwhile a separate
/// `harness produce` process writes 100 MB (100,000 × 1 KB, at-least-once
/// settings, `buffer.memory` 32 MiB) to a topic the stalled node leads a
/// partition of: its peak resident memory is measured throughout.
async fn stalled_broker(stage: &mut Stage, run: &Run) -> Result<u64, Error> {
    let victim = input_leader(stage, run).await?;
    let topic = unique("verify-stall");
    create_topic(&stage.bootstrap(), &topic, PARTITIONS).await?;
    let mut producer = tokio::process::Command::new(&run.harness_exe)
        .args([
            "produce",
            "--bootstrap",
            &stage.bootstrap(),
            "--topic",
            &topic,
        ])
        .args([
            "--count",
            "100000",
            "--size",
            "1000",
            "--semantics",
            "at-least-once",
        ])
        .args(["--property", "buffer.memory=33554432"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = producer.id().ok_or("the producing process did not start")?;
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            // VmHWM is the kernel's own peak; sampled until the process is gone.
            while let Some(bytes) = peak_rss(pid) {
                peak.fetch_max(bytes, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let cluster = stage.cluster().ok_or("needs the local cluster")?;
    let hit = u64::from(run.busy());
    cluster.pause(victim);
    tokio::time::sleep(Duration::from_secs(30)).await;
    cluster.resume(victim);
    let status = tokio::time::timeout(Duration::from_secs(300), producer.wait()).await??;
    sampler.abort();
    if !status.success() {
        return Err(format!("harness produce through the stall exited with {status}").into());
    }
    stage.producer_peak_rss = Some(peak.load(std::sync::atomic::Ordering::Relaxed));
    Ok(hit)
}

/// The peak resident set of process `pid` (VmHWM), while it runs.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
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
            processor_member(
                guarantee,
                &bootstrap,
                &group,
                &input,
                &output,
                stop,
                &handled,
                Some(Duration::from_secs(5)),
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

/// One processor (a dynamic group member), until idle for `idle` or told
/// to stop.
#[allow(clippy::too_many_arguments)]
pub(super) async fn processor_member(
    guarantee: Guarantee,
    bootstrap: &str,
    group: &str,
    input: &str,
    output: &str,
    stop: tokio::sync::oneshot::Receiver<()>,
    handled: &std::sync::atomic::AtomicU64,
    idle: Option<Duration>,
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
        idle_timeout: idle,
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

/// A processor process that was not killed must have ended without error: a
/// failure would otherwise show only as lost records.
fn exited_cleanly(status: std::process::ExitStatus) -> Result<(), Error> {
    if status.success() {
        Ok(())
    } else {
        Err(format!("harness transform exited with {status}").into())
    }
}

/// Input written cleanly; three `harness transform --dynamic` processes in
/// one group, one of them SIGKILLed and restarted (same transactional id)
/// every 1.5–3 s, six times, so members keep joining and leaving; then the
/// survivors run until idle and a last process finishes the rest.
async fn group_churn(
    guarantee: Guarantee,
    options: &VerifyOptions,
    stage: &mut Stage,
) -> Result<(Anomalies, u64), Error> {
    const MEMBERS: usize = 3;
    let (input, output) = (unique("verify-churn-in"), unique("verify-churn-out"));
    create_topic(&stage.bootstrap(), &input, 6).await?;
    create_topic(&stage.bootstrap(), &output, PARTITIONS).await?;
    let clean = workload(stage, &input, Guarantee::AtLeastOnce, options.records);
    let sent: Vec<Sent> = produce(&clean).await;
    let bootstrap = stage.bootstrap();
    let group = unique("verify-churn-group");
    let ids: Vec<String> = (0..MEMBERS).map(|_| unique("verify-churn-txn")).collect();
    let spawn = |id: &str| {
        tokio::process::Command::new(&options.harness_exe)
            .args(["transform", "--bootstrap", &bootstrap, "--input", &input])
            .args([
                "--output",
                &output,
                "--group",
                &group,
                "--transactional-id",
                id,
            ])
            .args(["--semantics", guarantee.name(), "--dynamic"])
            .args(["--max-batch", "500", "--idle-timeout-ms", "5000"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
    };
    let mut children = ids
        .iter()
        .map(|id| spawn(id))
        .collect::<Result<Vec<_>, _>>()?;
    let mut state = options.seed | 1;
    let mut kills = 0;
    for _ in 0..6 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        tokio::time::sleep(Duration::from_millis(1500 + state % 1500)).await;
        let victim = (state % MEMBERS as u64) as usize;
        match children[victim].try_wait()? {
            None => {
                kills += 1;
                children[victim].kill().await?; // SIGKILL, then reaped
            }
            // It ran out of input; a restarted one finds nothing to do.
            Some(status) => exited_cleanly(status)?,
        }
        children[victim] = spawn(&ids[victim])?;
    }
    for child in &mut children {
        exited_cleanly(tokio::time::timeout(Duration::from_secs(600), child.wait()).await??)?;
    }
    let last = tokio::time::timeout(Duration::from_secs(600), spawn(&ids[0])?.wait()).await??;
    exited_cleanly(last)?;
    Ok((checked(stage, &output, guarantee, &sent).await?, kills))
}
