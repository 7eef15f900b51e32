//! `Processor::run(topics, handler)`: consume, call the handler, produce its
//! outputs — with offsets committed where the guarantee says.
//!
//! - at-most-once: the batch's offsets are committed first; a handler error
//!   loses that record (counted in `lost`), or dead-letters it.
//! - at-least-once: outputs are acknowledged, then offsets committed; a
//!   handler error commits what came before it and redelivers from the failed
//!   record, backing off per the [`OnFailure`] policy; when the policy gives
//!   up the record is dead-lettered (its DLQ write acknowledged first) or the
//!   processor stops — nothing is dropped silently.
//! - exactly-once: outputs and offsets in one transaction; a handler error
//!   aborts it and the batch is processed again; a dead-lettered record's DLQ
//!   write is part of the transaction.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::batch::{next_batch, next_offsets, recover, rewind, LoopOptions};
use super::{CommitPoint, DeliveryGuarantee, Promise};
use crate::config::ConfigError;
use crate::consumer::{ConsumeError, Consumer, ConsumerRecord, TopicPartition};
use crate::patterns::dlq::{DeadLetter, Failure, FailureClass, OnFailure};
use crate::patterns::retry::RetryPolicy;
use crate::producer::{DeliveryFuture, Producer, ProducerRecord, TransactionError};
use crate::ProduceError;

/// A handler's refusal of one record.
#[derive(Debug, Clone, thiserror::Error)]
#[error("handler failed: {0}")]
pub struct HandlerError(pub String);

/// Why the processor stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The consumer failed for good.
    #[error(transparent)]
    Consume(#[from] ConsumeError),
    /// The producer failed for good.
    #[error(transparent)]
    Produce(#[from] ProduceError),
    /// The transactional producer failed for good (fenced …).
    #[error(transparent)]
    Transaction(#[from] TransactionError),
    /// At-least-once: a record kept failing `max_attempts` times.
    #[error("record {topic}-{partition}@{offset} failed {attempts} times: {last}")]
    HandlerGaveUp {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: HandlerError,
    },
}

/// Where and how to run.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// `bootstrap.servers`.
    pub bootstrap: String,
    /// `group.id`.
    pub group_id: String,
    /// `transactional.id` for exactly-once. Default: `<group.id>-processor-`
    /// and a random suffix, a different id for every instance (with one
    /// shared default, two instances would fence each other forever). Zombie
    /// writes are fenced by the group generation (KIP-447), so a random id
    /// is safe, as in Kafka Streams' exactly-once v2; an id stable across
    /// restarts (a pod name) lets a restarted instance abort what it left
    /// open at once instead of after `transaction.timeout.ms`.
    pub transactional_id: Option<String>,
    /// Extra producer properties (the guarantee's override them).
    pub producer: Vec<(String, String)>,
    /// Extra consumer properties (the guarantee's override them).
    pub consumer: Vec<(String, String)>,
    /// Batching and idleness.
    pub batching: LoopOptions,
    /// What to do with a record whose handler failed: retry with backoff
    /// (then stop), retry then dead-letter, or skip.
    pub on_failure: OnFailure,
}

impl ProcessorConfig {
    /// Defaults around a broker and a group.
    pub fn new(bootstrap: impl Into<String>, group_id: impl Into<String>) -> Self {
        Self {
            bootstrap: bootstrap.into(),
            group_id: group_id.into(),
            transactional_id: None,
            producer: Vec::new(),
            consumer: Vec::new(),
            batching: LoopOptions::default(),
            on_failure: OnFailure::Retry(RetryPolicy {
                max_attempts: Some(10),
                ..RetryPolicy::default()
            }),
        }
    }
}

/// The configured `transactional.id`, else one of this instance's own.
fn transactional_id(config: &ProcessorConfig) -> String {
    config.transactional_id.clone().unwrap_or_else(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        format!("{}-processor-{:016x}", config.group_id, hasher.finish())
    })
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProcessorStats {
    /// Records whose processing is committed.
    pub records_committed: u64,
    /// Outputs acknowledged by the broker.
    pub outputs_sent: u64,
    /// Handler errors.
    pub handler_errors: u64,
    /// Records delivered again after an error.
    pub redeliveries: u64,
    /// At-most-once: records lost to handler or output errors.
    pub lost: u64,
    /// Records written to the dead-letter queue.
    pub dead_lettered: u64,
    /// Batches (transactions) committed.
    pub batches_committed: u64,
    /// Transactions aborted.
    pub transactions_aborted: u64,
}

/// Consumer, producer and guarantee, wired together.
pub struct Processor {
    consumer: Consumer,
    producer: Producer,
    guarantee: Arc<dyn DeliveryGuarantee>,
    config: ProcessorConfig,
    stats: ProcessorStats,
    attempts: HashMap<(TopicPartition, i64), (u32, std::time::SystemTime)>,
}

/// What to do after a handler error.
enum Next {
    /// Deliver the record again after this pause.
    Redeliver(Duration),
    /// Go on without it: dead-lettered (`Some`: the DLQ record to write) or skipped.
    Skip(Option<ProducerRecord>),
}

impl Processor {
    /// Builds the clients with the guarantee's settings (inside a tokio runtime).
    pub async fn new(
        config: ProcessorConfig,
        guarantee: Arc<dyn DeliveryGuarantee>,
    ) -> Result<Self, ProcessError> {
        let mut producer_props = vec![("bootstrap.servers".to_owned(), config.bootstrap.clone())];
        producer_props.extend(config.producer.iter().cloned());
        producer_props.extend(guarantee.producer_properties());
        let transactional = guarantee.commit_point() == CommitPoint::InTransaction;
        if transactional {
            producer_props.push(("transactional.id".into(), transactional_id(&config)));
        }
        let mut consumer_props = vec![
            ("bootstrap.servers".to_owned(), config.bootstrap.clone()),
            ("group.id".to_owned(), config.group_id.clone()),
            ("auto.offset.reset".to_owned(), "earliest".to_owned()),
        ];
        consumer_props.extend(config.consumer.iter().cloned());
        consumer_props.extend(guarantee.consumer_properties());
        let producer = Producer::from_properties(producer_props)?;
        let consumer = Consumer::from_properties(consumer_props)?;
        if transactional {
            producer.init_transactions().await?;
        }
        tracing::info!(promise = %guarantee.promise(), "processor ready");
        Ok(Self {
            consumer,
            producer,
            guarantee,
            config,
            stats: ProcessorStats::default(),
            attempts: HashMap::new(),
        })
    }

    /// What this processor promises.
    pub fn promise(&self) -> Promise {
        self.guarantee.promise()
    }

    /// Both clients' health: connected brokers, pending work, failures.
    pub async fn health(&mut self) -> (crate::health::Health, crate::health::Health) {
        (self.producer.health(), self.consumer.health().await)
    }

    /// Counts so far.
    pub fn stats(&self) -> &ProcessorStats {
        &self.stats
    }

    /// Runs `handler` over `topics` until they are idle for
    /// `batching.idle_timeout` (or forever without one).
    pub async fn run<H>(
        &mut self,
        topics: &[&str],
        mut handler: H,
    ) -> Result<ProcessorStats, ProcessError>
    where
        H: FnMut(&ConsumerRecord) -> Result<Vec<ProducerRecord>, HandlerError>,
    {
        self.consumer.subscribe(topics.iter().copied()).await?;
        loop {
            let batch = next_batch(&mut self.consumer, &self.config.batching).await?;
            if batch.is_empty() {
                return Ok(self.stats.clone());
            }
            match self.guarantee.commit_point() {
                CommitPoint::BeforeProcessing => self.at_most_once(&batch, &mut handler).await?,
                CommitPoint::AfterProcessing => self.at_least_once(&batch, &mut handler).await?,
                CommitPoint::InTransaction => self.exactly_once(&batch, &mut handler).await?,
            }
        }
    }

    /// Closes both clients.
    pub async fn close(self) {
        self.producer.close(Duration::from_secs(10)).await;
        self.consumer.close().await;
    }

    async fn at_most_once<H>(
        &mut self,
        batch: &[ConsumerRecord],
        handler: &mut H,
    ) -> Result<(), ProcessError>
    where
        H: FnMut(&ConsumerRecord) -> Result<Vec<ProducerRecord>, HandlerError>,
    {
        self.consumer.commit_offsets(next_offsets(batch)).await?;
        self.stats.batches_committed += 1;
        self.stats.records_committed += batch.len() as u64;
        let mut deliveries = Vec::new();
        for record in batch {
            match handler(record) {
                Ok(outputs) => deliveries.push(self.send_all(outputs).await?),
                Err(error) => {
                    self.stats.handler_errors += 1;
                    // No redelivery under at-most-once: dead-letter or lose it.
                    match self.dead_letter(record, &error, 1) {
                        Some(envelope) => {
                            deliveries.push(self.send_all(vec![envelope]).await?);
                            self.stats.dead_lettered += 1;
                        }
                        None => {
                            tracing::warn!(%error, offset = record.offset, "handler failed; record lost (at-most-once)");
                            self.stats.lost += 1;
                        }
                    }
                }
            }
        }
        for outputs in deliveries {
            let (sent, failed) = settle(outputs).await;
            self.stats.outputs_sent += sent;
            self.stats.lost += u64::from(failed > 0);
        }
        Ok(())
    }

    async fn at_least_once<H>(
        &mut self,
        batch: &[ConsumerRecord],
        handler: &mut H,
    ) -> Result<(), ProcessError>
    where
        H: FnMut(&ConsumerRecord) -> Result<Vec<ProducerRecord>, HandlerError>,
    {
        let mut deliveries = Vec::new();
        let mut processed = 0;
        let mut failure = None;
        for record in batch {
            match handler(record) {
                Ok(outputs) => {
                    deliveries.push(self.send_all(outputs).await?);
                    processed += 1;
                }
                Err(error) => match self.on_handler_error(record, error)? {
                    Next::Skip(envelope) => {
                        // Dead-lettered records count as processed only once
                        // the DLQ acknowledged them (awaited below).
                        deliveries.push(self.send_all(envelope.into_iter().collect()).await?);
                        processed += 1;
                    }
                    Next::Redeliver(pause) => {
                        failure = Some(pause);
                        break;
                    }
                },
            }
        }
        let mut outputs_failed = false;
        for outputs in deliveries {
            let (sent, failed) = settle(outputs).await;
            self.stats.outputs_sent += sent;
            outputs_failed |= failed > 0;
        }
        if outputs_failed {
            // Nothing committed: the whole batch comes again.
            self.stats.redeliveries += batch.len() as u64;
            rewind(&mut self.consumer, batch).await?;
            tokio::time::sleep(RetryPolicy::default().backoff(1)).await;
            return Ok(());
        }
        let done = &batch[..processed];
        if !done.is_empty() {
            self.consumer.commit_offsets(next_offsets(done)).await?;
            self.stats.batches_committed += 1;
            self.stats.records_committed += done.len() as u64;
        }
        if let Some(pause) = failure {
            self.stats.redeliveries += (batch.len() - processed) as u64;
            rewind(&mut self.consumer, &batch[processed..]).await?;
            tokio::time::sleep(pause).await;
        }
        Ok(())
    }

    async fn exactly_once<H>(
        &mut self,
        batch: &[ConsumerRecord],
        handler: &mut H,
    ) -> Result<(), ProcessError>
    where
        H: FnMut(&ConsumerRecord) -> Result<Vec<ProducerRecord>, HandlerError>,
    {
        let outcome = self.transaction(batch, handler).await;
        match outcome {
            Ok(outputs) => {
                self.stats.outputs_sent += outputs;
                self.stats.batches_committed += 1;
                self.stats.records_committed += batch.len() as u64;
                Ok(())
            }
            Err(TxnOutcome::Handler(pause)) => {
                recover(&self.producer).await?;
                self.stats.transactions_aborted += 1;
                self.stats.redeliveries += batch.len() as u64;
                rewind(&mut self.consumer, batch).await?;
                tokio::time::sleep(pause).await;
                Ok(())
            }
            Err(TxnOutcome::Failed(error)) if error.is_abortable() => {
                tracing::warn!(%error, "transaction not committed; processing the batch again");
                recover(&self.producer).await?;
                self.stats.transactions_aborted += 1;
                self.stats.redeliveries += batch.len() as u64;
                rewind(&mut self.consumer, batch).await?;
                Ok(())
            }
            Err(TxnOutcome::Failed(error)) => Err(error.into()),
            Err(TxnOutcome::Stop(error)) => {
                recover(&self.producer).await?;
                Err(error)
            }
        }
    }

    async fn transaction<H>(
        &mut self,
        batch: &[ConsumerRecord],
        handler: &mut H,
    ) -> Result<u64, TxnOutcome>
    where
        H: FnMut(&ConsumerRecord) -> Result<Vec<ProducerRecord>, HandlerError>,
    {
        self.producer
            .begin_transaction()
            .await
            .map_err(TxnOutcome::Failed)?;
        let mut sent = 0;
        for record in batch {
            let outputs = match handler(record) {
                Ok(outputs) => outputs,
                Err(error) => match self
                    .on_handler_error(record, error)
                    .map_err(TxnOutcome::Stop)?
                {
                    // The DLQ write joins the transaction: dead-lettered and
                    // committed together, or neither.
                    Next::Skip(envelope) => envelope.into_iter().collect(),
                    Next::Redeliver(pause) => return Err(TxnOutcome::Handler(pause)),
                },
            };
            for output in outputs {
                let delivery = self
                    .producer
                    .send(output)
                    .await
                    .map_err(|e| TxnOutcome::Failed(as_txn(e)))?;
                drop(delivery); // a failed record fails the commit
                sent += 1;
            }
        }
        let group = self
            .consumer
            .group_metadata()
            .await
            .map_err(|e| TxnOutcome::Failed(TransactionError::Abortable(e.to_string())))?
            .ok_or_else(|| TxnOutcome::Failed(TransactionError::Fatal("no group.id".into())))?;
        self.producer
            .send_offsets_to_transaction(&next_offsets(batch), &group)
            .await
            .map_err(TxnOutcome::Failed)?;
        self.producer
            .commit_transaction()
            .await
            .map_err(TxnOutcome::Failed)?;
        Ok(sent)
    }

    /// Applies the failure policy to a handler error on `record`.
    fn on_handler_error(
        &mut self,
        record: &ConsumerRecord,
        error: HandlerError,
    ) -> Result<Next, ProcessError> {
        self.stats.handler_errors += 1;
        let key = (
            TopicPartition::new(&*record.topic, record.partition),
            record.offset,
        );
        let entry = self
            .attempts
            .entry(key.clone())
            .or_insert((0, std::time::SystemTime::now()));
        entry.0 += 1;
        let attempts = entry.0;
        let policy = match &self.config.on_failure {
            OnFailure::Retry(policy) | OnFailure::DeadLetter { retry: policy, .. } => {
                Some(policy.clone())
            }
            OnFailure::Skip => None,
        };
        if let Some(policy) = policy.filter(|p| p.should_retry(attempts)) {
            tracing::warn!(%error, offset = record.offset, attempts, "handler failed; redelivering");
            return Ok(Next::Redeliver(policy.backoff(attempts)));
        }
        self.attempts.remove(&key);
        match &self.config.on_failure {
            OnFailure::Retry(_) => Err(ProcessError::HandlerGaveUp {
                topic: record.topic.to_string(),
                partition: record.partition,
                offset: record.offset,
                attempts,
                last: error,
            }),
            _ => {
                let envelope = self.dead_letter(record, &error, attempts);
                if envelope.is_some() {
                    self.stats.dead_lettered += 1;
                } else {
                    tracing::warn!(%error, offset = record.offset, "handler failed; record skipped (on_failure = skip)");
                    self.stats.lost += 1;
                }
                Ok(Next::Skip(envelope))
            }
        }
    }

    /// The DLQ record for `record`, when the policy has a DLQ.
    fn dead_letter(
        &self,
        record: &ConsumerRecord,
        error: &HandlerError,
        attempts: u32,
    ) -> Option<ProducerRecord> {
        let OnFailure::DeadLetter { topic, .. } = &self.config.on_failure else {
            return None;
        };
        let now = std::time::SystemTime::now();
        let first = self
            .attempts
            .get(&(
                TopicPartition::new(&*record.topic, record.partition),
                record.offset,
            ))
            .map_or(now, |(_, first)| *first);
        let failure = Failure {
            reason: error.0.clone(),
            class: if attempts > 1 {
                FailureClass::RetriesExhausted
            } else {
                FailureClass::Handler
            },
            attempts,
            first_attempt: first,
            last_attempt: now,
        };
        Some(ProducerRecord {
            topic: topic.clone(),
            ..DeadLetter::envelope(record, &failure)
        })
    }

    async fn send_all(
        &self,
        outputs: Vec<ProducerRecord>,
    ) -> Result<Vec<DeliveryFuture>, ProduceError> {
        let mut futures = Vec::with_capacity(outputs.len());
        for output in outputs {
            futures.push(self.producer.send(output).await?);
        }
        Ok(futures)
    }
}

enum TxnOutcome {
    /// A handler error to redeliver after this pause.
    Handler(Duration),
    /// The transaction failed.
    Failed(TransactionError),
    /// The failure policy gave up: stop.
    Stop(ProcessError),
}

fn as_txn(error: ProduceError) -> TransactionError {
    match error {
        ProduceError::Transaction(e) => e,
        ProduceError::Fatal(reason) => TransactionError::Fatal(reason),
        other => TransactionError::Abortable(other.to_string()),
    }
}

/// Waits for one record's outputs: (acknowledged, failed).
async fn settle(outputs: Vec<DeliveryFuture>) -> (u64, u64) {
    let (mut sent, mut failed) = (0, 0);
    for output in outputs {
        match output.await {
            Ok(_) => sent += 1,
            Err(error) => {
                tracing::warn!(%error, "output not delivered");
                failed += 1;
            }
        }
    }
    (sent, failed)
}

#[cfg(test)]
mod transactional_id_tests {
    use super::{transactional_id, ProcessorConfig};

    /// Issue 14 (16): with one shared default (`<group.id>-processor`) two
    /// instances fenced each other forever.
    #[test]
    fn every_instance_gets_a_transactional_id_of_its_own() {
        let config = ProcessorConfig::new("localhost:9092", "orders");
        let (a, b) = (transactional_id(&config), transactional_id(&config));
        assert_ne!(a, b);
        assert!(a.starts_with("orders-processor-"), "{a}");
        let mut stable = config.clone();
        stable.transactional_id = Some("orders-pod-7".into());
        assert_eq!(transactional_id(&stable), "orders-pod-7");
    }
}
