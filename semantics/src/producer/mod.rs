//! The producer: batching, partitioning, retries, idempotence, delivery reports.
//!
//! ```text
//! send() ─► partitioner ─► accumulator (per-partition batches) ─► sender task ─► leaders
//!   │                                                                  │
//!   └─► DeliveryFuture ◄──────── batch outcome (offset or typed error) ◄┘
//! ```
//! - [`partitioner`]: Java-compatible murmur2 for keys, sticky for null keys.
//! - `accumulator`: batches closed by `batch.size`, record count, `linger.ms`.
//! - `sender`: pipelined Produce requests, retries with backoff, ordering.
//! - `request`: one Produce request: seal the batches, send, read the answers.
//! - [`sequence`]: idempotent sequence numbers as a pure state machine.
//! - `delivery`: one shared outcome per batch, a cheap future per record.
//! - [`txn`]: the transaction manager (coordinator calls, state machine);
//!   `transactional`: the producer's transactional API on top of it.

mod accumulator;
mod delivery;
pub mod error;
mod metrics;
pub mod partitioner;
mod record;
mod request;
mod sender;
pub mod sequence;
mod shared;
mod split;
mod transactional;
pub mod txn;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::task::JoinHandle;
use tracing::Instrument;

pub use delivery::DeliveryFuture;
pub use metrics::ProducerMetrics;
pub use partitioner::Partitioner;
pub use record::{Delivery, ProducerRecord};
pub use txn::TransactionError;

use accumulator::{BatchLimits, RecordParts};
use partitioner::{partition_for_key, StickyPartitioner};
use shared::Shared;

use crate::cluster::Cluster;
use crate::config::{ConfigError, ProducerConfig};
use crate::producer::error::ProduceError;

/// Bytes a record adds beyond its key, value and headers: the record's own
/// varints and attributes, at most.
const RECORD_OVERHEAD: usize = 21;
/// The batch header a lone record would need, for `max.request.size`.
const BATCH_OVERHEAD: usize = kafka_wire::records::BATCH_HEADER_LEN;

/// A Kafka producer. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Producer {
    shared: Arc<Shared>,
    sticky: Mutex<StickyPartitioner>,
    partitioner: Option<Arc<dyn Partitioner>>,
    sender: Mutex<Option<JoinHandle<()>>>,
    /// The transaction manager, with `transactional.id`.
    txn: Option<Arc<txn::TransactionManager>>,
    /// Sends inside a transaction hold it shared from the transaction check
    /// to the append; commit and abort take it exclusively to end the
    /// transaction, so a send either joins the transaction being ended
    /// (before its flush) or finds it ended and fails — never appends after.
    txn_gate: tokio::sync::RwLock<()>,
}

impl Producer {
    /// Starts a producer (and its sender task) on the current tokio runtime.
    /// Nothing is contacted until the first record.
    pub fn new(config: ProducerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let (cluster, connection) = Cluster::for_client(
            config.bootstrap_servers.clone(),
            kafka_wire::conn::ConnectionConfig {
                client_id: Some(config.client_id.clone()),
                request_timeout: config.request_timeout,
                sasl: config.sasl.clone(),
                setup_timeout: config.connection_setup_timeout,
                ..kafka_wire::conn::ConnectionConfig::default()
            },
            config.tls.clone(),
            config.allow_auto_create_topics,
            crate::cluster::ReconnectBackoff {
                base: config.reconnect_backoff,
                max: config.reconnect_backoff_max,
            },
        );
        let txn = txn::TransactionManager::new(&config, cluster.clone(), connection).map(Arc::new);
        let shared = Arc::new(Shared::new(config, cluster));
        let span = tracing::info_span!("producer", client_id = %shared.config.client_id);
        let sender = tokio::spawn(sender::Sender::new(shared.clone()).run().instrument(span));
        Ok(Self {
            shared,
            sticky: Mutex::new(StickyPartitioner::default()),
            partitioner: None,
            sender: Mutex::new(Some(sender)),
            txn,
            txn_gate: tokio::sync::RwLock::new(()),
        })
    }

    /// Starts a producer from Kafka properties (`bootstrap.servers`, `acks`, …).
    pub fn from_properties<I, K, V>(properties: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        Self::new(ProducerConfig::from_properties(properties)?)
    }

    /// Uses `partitioner` before the default one (it may decline a record).
    pub fn with_partitioner(mut self, partitioner: Arc<dyn Partitioner>) -> Self {
        self.partitioner = Some(partitioner);
        self
    }

    /// Counters: records acknowledged and failed, batches and bytes sent,
    /// retries, requests in flight, epoch bumps.
    pub fn metrics(&self) -> ProducerMetrics {
        self.shared.counters.snapshot()
    }

    /// Requests and bytes this producer exchanged with the cluster so far.
    pub fn traffic(&self) -> kafka_wire::conn::TrafficSnapshot {
        self.shared.cluster.traffic()
    }

    /// Connectivity, unsettled batches, and the fatal error if there is one.
    pub fn health(&self) -> crate::health::Health {
        let (connected, known) = self.shared.cluster.connectivity();
        let health = crate::health::Health {
            brokers_connected: connected,
            brokers_known: known,
            pending: self.shared.pending_batches() as u64,
            partitions_assigned: 0,
            failed: self.shared.fatal_error().map(|e| e.to_string()),
        };
        tracing::debug!(?health, "producer health");
        health
    }

    /// The configuration in force.
    pub fn config(&self) -> &ProducerConfig {
        &self.shared.config
    }

    /// Queues `record`. Awaiting this waits for topic metadata and for room in
    /// `buffer.memory` (at most `max.block.ms`); the returned future resolves
    /// when the record is acknowledged or has failed for good. A record that
    /// alone exceeds `max.request.size` or `buffer.memory` gets a failed
    /// future at once and affects nothing else.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture, ProduceError> {
        if let Some(error) = self.shared.fatal_error() {
            return Err(error);
        }
        if self.shared.is_closed() {
            return Err(ProduceError::Closed);
        }
        let size = record_size(&record);
        let config = &self.shared.config;
        let too_large = if size + BATCH_OVERHEAD > config.max_request_size {
            Some(ProduceError::RecordTooLarge {
                size,
                max: config.max_request_size,
            })
        } else if size + BATCH_OVERHEAD > config.buffer_memory {
            // No room will ever come: fail now rather than after max.block.ms.
            Some(ProduceError::RecordLargerThanBuffer {
                size,
                buffer_memory: config.buffer_memory,
            })
        } else {
            None
        };
        if let (Some(error), None) = (&too_large, &self.txn) {
            return Ok(DeliveryFuture::failed(error.clone()));
        }
        let partition = self.choose_partition(&record).await?;
        let _in_transaction = match &self.txn {
            Some(_) => Some(self.txn_gate.read().await),
            None => None,
        };
        if let Some(txn) = &self.txn {
            // The partition joins the transaction before its first record is sent.
            txn.ensure_partition(&record.topic, partition).await?;
            if let Some(error) = too_large {
                // The record belongs to the open transaction: failing it
                // alone would let the commit go through without it.
                self.shared.record_failed_in_transaction(&error, false);
                return Ok(DeliveryFuture::failed(error));
            }
        }
        let parts = RecordParts {
            timestamp: record.timestamp.unwrap_or_else(now_ms),
            key: record.key.as_deref(),
            value: record.value.as_deref(),
            headers: &record.headers,
            bytes: size,
        };
        let appended = self.append(&record.topic, partition, &parts).await?;
        // KIP-480: a keyless record's batch is full, so stick to another partition.
        if appended.batch_closed && record.key.is_none() && record.partition.is_none() {
            self.sticky
                .lock()
                .expect("sticky lock")
                .on_new_batch(&record.topic, partition);
        }
        // A new batch starts a linger deadline the sender must learn about.
        if appended.batch_closed || appended.batch_opened {
            self.shared.wake.notify_one();
        }
        Ok(appended.future)
    }

    /// Queues many records, in order; see [`Producer::send`].
    pub async fn send_batch(
        &self,
        records: impl IntoIterator<Item = ProducerRecord>,
    ) -> Result<Vec<DeliveryFuture>, ProduceError> {
        let mut futures = Vec::new();
        for record in records {
            futures.push(self.send(record).await?);
        }
        Ok(futures)
    }

    /// Sends everything queued now, ignoring `linger.ms`, and waits until
    /// every record sent before the call is settled (records other tasks send
    /// meanwhile do not hold it up).
    pub async fn flush(&self) {
        let _flushing = FlushGuard::new(&self.shared);
        let horizon = self
            .shared
            .accumulator
            .lock()
            .expect("accumulator lock")
            .next_batch_id;
        self.shared.wake.notify_one();
        loop {
            let idle = self.shared.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.shared.settled_before(horizon) || self.shared.fatal_error().is_some() {
                break;
            }
            idle.await;
        }
    }

    /// Graceful shutdown: flushes for at most `timeout`, then stops the sender.
    /// Records still unsettled then fail: with [`ProduceError::Closed`] if
    /// they were surely not written; with [`ProduceError::DeliveryTimeout`]
    /// and `outcome_unknown` if a request carrying them went unanswered.
    pub async fn close(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.flush()).await;
        self.shared.close();
        let sender = self.sender.lock().expect("sender lock").take();
        if let Some(mut sender) = sender {
            if tokio::time::timeout(Duration::from_millis(100), &mut sender)
                .await
                .is_err()
            {
                tracing::warn!(
                    "sender did not stop in time; unsettled records fail (outcome unknown if sent)"
                );
                sender.abort();
                // Its in-flight batches fail, outcome unknown, as the task drops them.
                let _ = sender.await;
            }
        }
        // Whatever is still queued fails as its batches drop (see ClosedBatch's Drop).
        let queued = std::mem::take(
            &mut self
                .shared
                .accumulator
                .lock()
                .expect("accumulator lock")
                .topics,
        );
        drop(queued);
        // Later sends and flushes answer at once.
        self.shared.fail(ProduceError::Closed);
    }

    async fn choose_partition(&self, record: &ProducerRecord) -> Result<i32, ProduceError> {
        if let Some(partition) = record.partition {
            // Refuse a partition the topic does not have, when we know it.
            let known = match self.shared.cluster.cached_topic(&record.topic) {
                Some(Ok(metadata)) => Some(metadata.partition_count()),
                _ => None,
            };
            return self.checked_partition(record, partition, known);
        }
        let config = &self.shared.config;
        let metadata = match self.shared.cluster.cached_topic(&record.topic) {
            Some(Ok(metadata)) => metadata,
            _ => {
                let started = std::time::Instant::now();
                let deadline = started + config.max_block;
                self.shared
                    .cluster
                    .topic(
                        &record.topic,
                        deadline,
                        &crate::retry::RetryPolicy::backoff_between(
                            config.retry_backoff,
                            config.retry_backoff_max,
                        ),
                    )
                    .await
                    .map_err(|(code, connection)| match connection {
                        Some(error) if code == kafka_wire::KafkaCode(-1) => {
                            ProduceError::Connection(error)
                        }
                        _ => ProduceError::UnknownTopic {
                            topic: record.topic.clone(),
                            code,
                            waited_ms: started.elapsed().as_millis(),
                        },
                    })?
            }
        };
        let count = metadata.partition_count();
        if let Some(partition) = self
            .partitioner
            .as_ref()
            .and_then(|p| p.partition(&record.topic, record.key.as_deref(), count))
        {
            return self.checked_partition(record, partition, Some(count));
        }
        Ok(match record.key.as_deref() {
            Some(key) => partition_for_key(key, count),
            None => self
                .sticky
                .lock()
                .expect("sticky lock")
                .partition(&record.topic, count),
        })
    }

    /// A partition must be ≥ 0, and below the partition count when it is known
    /// (explicit partitions, or what a user partitioner returned).
    fn checked_partition(
        &self,
        record: &ProducerRecord,
        partition: i32,
        count: Option<i32>,
    ) -> Result<i32, ProduceError> {
        if partition < 0 || count.is_some_and(|count| partition >= count) {
            return Err(ProduceError::InvalidPartition {
                topic: record.topic.clone(),
                partition,
                partition_count: count.unwrap_or(-1),
            });
        }
        Ok(partition)
    }

    /// Appends to the partition's open batch, first reserving from
    /// `buffer.memory` (waiting at most `max.block.ms`) what growing it or
    /// opening a new one costs.
    async fn append(
        &self,
        topic: &str,
        partition: i32,
        record: &RecordParts<'_>,
    ) -> Result<accumulator::Appended, ProduceError> {
        let limits = self.batch_limits();
        let mut credit = 0;
        loop {
            let needed = {
                let mut accumulator = self.shared.accumulator.lock().expect("accumulator lock");
                // Checked under the lock the sender exits under: either the
                // sender sees this batch, or this send sees the producer closed.
                let outcome = self
                    .refuse_if_closed()
                    .map(|()| accumulator.append(topic, partition, record, limits, &mut credit));
                match outcome {
                    Ok(Ok(appended)) => {
                        if appended.batch_opened {
                            // Counted under the lock, before the sender can settle it.
                            self.shared.batch_opened(appended.batch_id);
                        }
                        self.shared.buffer.add_permits(credit);
                        return Ok(appended);
                    }
                    Ok(Err(needed)) => needed,
                    Err(error) => {
                        self.shared.buffer.add_permits(credit);
                        return Err(error);
                    }
                }
            };
            // Another send may have grown or replaced the batch meanwhile:
            // the loop asks again with what is reserved.
            if let Err(error) = self.reserve_buffer(needed - credit.min(needed)).await {
                self.shared.buffer.add_permits(credit);
                return Err(error);
            }
            credit = credit.max(needed);
        }
    }

    fn refuse_if_closed(&self) -> Result<(), ProduceError> {
        if self.shared.is_closed() {
            return Err(self.shared.fatal_error().unwrap_or(ProduceError::Closed));
        }
        Ok(())
    }

    async fn reserve_buffer(&self, size: usize) -> Result<(), ProduceError> {
        let permits = u32::try_from(size).unwrap_or(u32::MAX);
        if let Ok(permit) = self.shared.buffer.try_acquire_many(permits) {
            permit.forget();
            return Ok(());
        }
        let wait = self.shared.config.max_block;
        match tokio::time::timeout(wait, self.shared.buffer.acquire_many(permits)).await {
            Ok(Ok(permit)) => {
                permit.forget();
                Ok(())
            }
            Ok(Err(_)) => Err(ProduceError::Closed),
            Err(_) => Err(ProduceError::BufferFull {
                waited_ms: wait.as_millis(),
            }),
        }
    }

    fn batch_limits(&self) -> BatchLimits {
        let config = &self.shared.config;
        BatchLimits {
            batch_size: config.batch_size.min(config.buffer_memory),
            batch_overhead: BATCH_OVERHEAD,
            max_records: config.batch_max_records,
            compression: config.compression,
            transactional: self.txn.is_some(),
        }
    }
}

impl Drop for Producer {
    /// Dropping without `close` lets the sender deliver what is queued, then stop.
    fn drop(&mut self) {
        self.shared.close();
    }
}

fn record_size(record: &ProducerRecord) -> usize {
    let headers: usize = record
        .headers
        .iter()
        .map(|h| h.key.len() + h.value.as_ref().map_or(0, |v| v.len()) + 10)
        .sum();
    record.key.as_ref().map_or(0, |k| k.len())
        + record.value.as_ref().map_or(0, |v| v.len())
        + headers
        + RECORD_OVERHEAD
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Counts a `flush` in progress, also when its future is dropped midway.
struct FlushGuard<'a>(&'a Shared);

impl<'a> FlushGuard<'a> {
    fn new(shared: &'a Shared) -> Self {
        shared
            .flushing
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Self(shared)
    }
}

impl Drop for FlushGuard<'_> {
    fn drop(&mut self) {
        self.0
            .flushing
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}
