//! The produce side of a scenario: records with unique ids written under a
//! guarantee's producer settings, every outcome noted for the checker; and
//! the read-back by a separate consumer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use semantics::consumer::{Consumer, TopicPartition};
use semantics::{DeliveryFuture, DeliveryGuarantee, Guarantee, Producer, ProducerRecord};

use crate::checker::{Read, Sent};

/// One producer's share of a scenario.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Where to write.
    pub bootstrap: String,
    /// Topic.
    pub topic: String,
    /// The guarantee whose producer settings apply.
    pub guarantee: Guarantee,
    /// Records to write.
    pub records: u64,
    /// First id (ids are unique across producers of one scenario).
    pub first_id: u64,
    /// Which producer this is (for reorder checks).
    pub producer: u32,
    /// Records per transaction (exactly-once).
    pub txn_size: u64,
    /// `transactional.id` (exactly-once).
    pub transactional_id: String,
    /// Extra producer properties.
    pub properties: Vec<(String, String)>,
    /// Crash (abandon the producer) after sending this many records: an
    /// open transaction stays open, records in flight are never awaited.
    pub crash_after: Option<u64>,
    /// Counts records handed to the producer (for faults timed by progress).
    pub progress: Arc<AtomicU64>,
    /// Sleep this long a hundred times over the run, so that a fault timed
    /// by the clock lands mid-stream.
    pub pace: Option<Duration>,
}

async fn pace(w: &Workload, sent_so_far: u64) {
    let every = (w.records / 100).max(1);
    if let Some(pause) = w.pace.filter(|_| sent_so_far % every == every - 1) {
        tokio::time::sleep(pause).await;
    }
}

fn properties(w: &Workload) -> Vec<(String, String)> {
    let mut props = vec![
        ("bootstrap.servers".to_owned(), w.bootstrap.clone()),
        ("linger.ms".to_owned(), "5".to_owned()),
        ("request.timeout.ms".to_owned(), "5000".to_owned()),
        ("delivery.timeout.ms".to_owned(), "30000".to_owned()),
    ];
    props.extend(w.properties.iter().cloned());
    props.extend(w.guarantee.producer_properties());
    if w.guarantee == Guarantee::ExactlyOnce {
        props.push(("transactional.id".into(), w.transactional_id.clone()));
    }
    props
}

fn record(w: &Workload, id: u64) -> ProducerRecord {
    ProducerRecord::new(w.topic.as_str(), id.to_string()).key(id.to_string())
}

/// Writes the workload (crashing mid-way when `crash_after` says so).
pub async fn produce(w: &Workload) -> Vec<Sent> {
    let producer = match Producer::from_properties(properties(w)) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(%e, "producer configuration");
            return Vec::new();
        }
    };
    let (sent, crashed) = if w.guarantee == Guarantee::ExactlyOnce {
        transactional(w, &producer).await
    } else {
        plain(w, &producer).await
    };
    if !crashed {
        producer.close(Duration::from_secs(10)).await;
    }
    sent
}

fn crash_now(w: &Workload, sent_so_far: u64) -> bool {
    w.crash_after.is_some_and(|n| sent_so_far >= n)
}

async fn plain(w: &Workload, producer: &Producer) -> (Vec<Sent>, bool) {
    let mut pending: Vec<(u64, Option<DeliveryFuture>)> = Vec::new();
    let mut crashed = false;
    for sequence in 0..w.records {
        if crash_now(w, sequence) {
            crashed = true;
            break;
        }
        let id = w.first_id + sequence;
        pending.push((id, producer.send(record(w, id)).await.ok()));
        w.progress.fetch_add(1, Ordering::Relaxed);
        pace(w, sequence).await;
    }
    let mut sent = Vec::with_capacity(pending.len());
    for (sequence, (id, future)) in pending.into_iter().enumerate() {
        // A crashed producer never learns its outcomes.
        let acknowledged = match future {
            Some(future) if !crashed => future
                .await
                .ok()
                .map(|d| (d.topic.to_string(), d.partition)),
            _ => None,
        };
        sent.push(Sent {
            id,
            producer: w.producer,
            sequence: sequence as u64,
            acknowledged,
            aborted: false,
        });
    }
    (sent, crashed)
}

async fn transactional(w: &Workload, producer: &Producer) -> (Vec<Sent>, bool) {
    let mut sent = Vec::new();
    if let Err(e) = producer.init_transactions().await {
        tracing::warn!(%e, "init_transactions");
        return (sent, false);
    }
    let mut next_id = w.first_id;
    let mut written = 0;
    while written < w.records {
        let size = w.txn_size.min(w.records - written);
        let ids: Vec<u64> = (next_id..next_id + size).collect();
        next_id += size;
        if producer.begin_transaction().await.is_err() {
            break;
        }
        let mut futures = Vec::new();
        for (i, &id) in ids.iter().enumerate() {
            if crash_now(w, written + i as u64) {
                // Crash mid-transaction: never committed; the coordinator
                // aborts it when the successor initialises.
                let base = sent.len() as u64;
                sent.extend(ids.iter().map(|&id| aborted(w, id, base)));
                producer.flush().await; // what was sent reaches the log
                return (sent, true);
            }
            futures.push(producer.send(record(w, id)).await.ok());
            w.progress.fetch_add(1, Ordering::Relaxed);
            pace(w, written + i as u64).await;
        }
        let sequence_base = sent.len() as u64;
        match producer.commit_transaction().await {
            Ok(()) => {
                written += size;
                for (i, (id, future)) in ids.iter().zip(futures).enumerate() {
                    let acknowledged = match future {
                        Some(f) => f.await.ok().map(|d| (d.topic.to_string(), d.partition)),
                        None => None,
                    };
                    sent.push(Sent {
                        id: *id,
                        producer: w.producer,
                        sequence: sequence_base + i as u64,
                        acknowledged,
                        aborted: false,
                    });
                }
            }
            Err(e) if e.is_fatal() => {
                tracing::warn!(%e, "transactional producer failed");
                sent.extend(ids.iter().map(|&id| aborted(w, id, sequence_base)));
                break;
            }
            Err(e) => {
                tracing::info!(%e, "transaction not committed; writing its records again under new ids");
                let unknown = matches!(e, semantics::producer::TransactionError::OutcomeUnknown(_));
                if !unknown {
                    let _ = producer.abort_transaction().await;
                }
                sent.extend(ids.iter().enumerate().map(|(i, &id)| Sent {
                    id,
                    producer: w.producer,
                    sequence: sequence_base + i as u64,
                    acknowledged: None,
                    // Unknown: may be committed; not acknowledged, so never "lost".
                    aborted: !unknown,
                }));
            }
        }
    }
    (sent, false)
}

fn aborted(w: &Workload, id: u64, sequence: u64) -> Sent {
    Sent {
        id,
        producer: w.producer,
        sequence,
        acknowledged: None,
        aborted: true,
    }
}

/// Reads every partition of `topic` from the start until `idle` passes with
/// nothing new; values are ids (or `T:<id>` outputs of the transformer).
pub async fn read_back(
    bootstrap: &str,
    topic: &str,
    read_committed: bool,
    idle: Duration,
) -> Result<Vec<Read>, semantics::ConsumeError> {
    let isolation = if read_committed {
        "read_committed"
    } else {
        "read_uncommitted"
    };
    let mut consumer = Consumer::from_properties([
        ("bootstrap.servers", bootstrap),
        ("auto.offset.reset", "earliest"),
        ("isolation.level", isolation),
        ("fetch.max.wait.ms", "100"),
    ])?;
    let count = consumer.partition_count(topic).await?;
    consumer
        .assign((0..count).map(|p| TopicPartition::new(topic, p)).collect())
        .await?;
    let mut read = Vec::new();
    while let Some(record) = consumer.poll(idle).await {
        let record = record?;
        let text =
            String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned();
        let Ok(id) = text.trim_start_matches("T:").parse::<u64>() else {
            continue;
        };
        read.push(Read {
            partition: (record.topic.to_string(), record.partition),
            offset: record.offset,
            id,
        });
    }
    consumer.close().await;
    Ok(read)
}
