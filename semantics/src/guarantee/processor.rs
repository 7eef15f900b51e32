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

use super::batch::{first_record, next_offsets, recover, rest_of_batch, rewind, LoopOptions};
use super::{CommitPoint, DeliveryGuarantee, Promise};
use crate::config::ConfigError;
use crate::consumer::{ConsumeError, Consumer, ConsumerRecord, TopicPartition};
use crate::patterns::dlq::{DeadLetter, Failure, FailureClass, OnFailure};
use crate::producer::{DeliveryFuture, Producer, ProducerRecord, TransactionError};
use crate::retry::RetryPolicy;
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
    /// A record's output kept failing (or failed for good: too large,
    /// invalid, not authorised) and the failure policy has no dead-letter
    /// queue: the record is neither processed nor skipped.
    #[error("the output of record {topic}-{partition}@{offset} failed {attempts} times: {last}")]
    OutputGaveUp {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: ProduceError,
    },
}

impl ProcessError {
    /// A failure of the cluster that may pass — a coordinator or leader
    /// unreachable, a request timing out, buffers full while a broker
    /// stalls: the processor processes the batch again rather than stop.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Consume(error) => error.is_retriable() && !error.is_rebalance(),
            Self::Produce(error) => output_error_is_transient(error),
            _ => false,
        }
    }
}

/// An output the cluster could not take now but may later (no leader, a
/// timeout, full buffers): the record is not at fault, so the failure
/// policy is not charged; the batch is processed again. Anything else —
/// too large, invalid, not authorised, fatal — is the record's own.
fn output_error_is_transient(error: &ProduceError) -> bool {
    match error {
        ProduceError::BufferFull { .. }
        | ProduceError::Connection(_)
        | ProduceError::DeliveryTimeout { .. } => true,
        ProduceError::Broker { code, .. } => code.class().is_retriable(),
        _ => false,
    }
}

/// Why one input record failed.
#[derive(Debug)]
enum RecordFailure {
    /// Its handler refused it.
    Handler(HandlerError),
    /// The producer refused one of its outputs.
    Output(ProduceError),
}

impl RecordFailure {
    /// A failure no retry can fix: the output is too large, invalid or not
    /// authorised (the Kafka classes `Permanent` and `Fatal`).
    fn is_permanent(&self) -> bool {
        match self {
            Self::Handler(_) => false,
            Self::Output(error) => !output_error_is_transient(error),
        }
    }

    fn reason(&self) -> String {
        match self {
            Self::Handler(error) => error.0.clone(),
            Self::Output(error) => format!("output not delivered: {error}"),
        }
    }
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
    /// How long the processor keeps going through transient failures of the
    /// cluster (a coordinator or leader unreachable, a commit timing out,
    /// buffers full while a broker stalls) without committing a batch
    /// before it stops with the error — Kafka Streams' `task.timeout.ms`
    /// (KIP-572). Default 5 minutes.
    pub task_timeout: Duration,
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
            task_timeout: Duration::from_secs(300),
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
    /// Input records whose outputs the producer refused.
    pub output_errors: u64,
    /// Records delivered again after an error.
    pub redeliveries: u64,
    /// At-most-once: records lost to handler or output errors.
    pub lost: u64,
    /// Records written to the dead-letter queue.
    pub dead_lettered: u64,
    /// Batches (transactions) committed.
    pub batches_committed: u64,
    /// Batches processed again after a transient failure of the cluster
    /// (see [`ProcessorConfig::task_timeout`]).
    pub batches_retried: u64,
    /// Transactions aborted.
    pub transactions_aborted: u64,
    /// Batches dropped uncommitted because a rebalance took a partition
    /// away (or refused the commit) while they were processed: their records
    /// are read again by whichever member owns the partitions now.
    pub batches_rebalanced: u64,
}

/// Consumer, producer and guarantee, wired together.
pub struct Processor {
    consumer: Consumer,
    producer: Producer,
    guarantee: Arc<dyn DeliveryGuarantee>,
    config: ProcessorConfig,
    stats: ProcessorStats,
    attempts: HashMap<(TopicPartition, i64), (u32, std::time::SystemTime)>,
    /// Records the policy gave up on after their outputs failed: on their
    /// next delivery the handler is not called again; the dead-letter record
    /// (or nothing, for `OnFailure::Skip`) is written in their place.
    given_up: HashMap<(TopicPartition, i64), Option<ProducerRecord>>,
    /// Since when transient failures have kept every batch from committing.
    failing_since: Option<std::time::Instant>,
    /// A consumer error met after a batch's first record: the batch is
    /// processed, then the error is handled.
    deferred: Option<ConsumeError>,
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
            given_up: HashMap::new(),
            failing_since: None,
            deferred: None,
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
        handler: H,
    ) -> Result<ProcessorStats, ProcessError>
    where
        H: FnMut(&ConsumerRecord) -> Result<Vec<ProducerRecord>, HandlerError>,
    {
        self.run_until(topics, handler, std::future::pending::<()>())
            .await
    }

    /// As [`run`](Self::run), and also stops when `stop` completes — never
    /// while a batch is collected, processed or committed, so nothing is
    /// left half-committed and no record taken from the consumer is dropped
    /// (for a graceful shutdown on SIGTERM; then [`close`](Self::close)).
    pub async fn run_until<H, S>(
        &mut self,
        topics: &[&str],
        mut handler: H,
        stop: S,
    ) -> Result<ProcessorStats, ProcessError>
    where
        H: FnMut(&ConsumerRecord) -> Result<Vec<ProducerRecord>, HandlerError>,
        S: std::future::Future<Output = ()>,
    {
        self.consumer.subscribe(topics.iter().copied()).await?;
        let mut stop = std::pin::pin!(stop);
        loop {
            // A stop is taken only while waiting for a batch's first
            // record: once records are taken from the consumer, they are
            // processed and committed before the stop.
            let first = tokio::select! {
                biased;
                () = &mut stop => return Ok(self.stats.clone()),
                first = first_record(&mut self.consumer, &self.config.batching, &mut self.deferred) => first,
            };
            let first = match first {
                Ok(Some(first)) => first,
                Ok(None) => return Ok(self.stats.clone()),
                Err(error) => {
                    self.through_transient(error.into(), &[]).await?;
                    continue;
                }
            };
            let batch = rest_of_batch(
                &mut self.consumer,
                &self.config.batching,
                first,
                &mut self.deferred,
            )
            .await;
            let processed = match self.guarantee.commit_point() {
                CommitPoint::BeforeProcessing => self.at_most_once(&batch, &mut handler).await,
                CommitPoint::AfterProcessing => self.at_least_once(&batch, &mut handler).await,
                CommitPoint::InTransaction => self.exactly_once(&batch, &mut handler).await,
            };
            match processed {
                Ok(()) => self.failing_since = None,
                Err(error) => self.through_transient(error, &batch).await?,
            }
        }
    }

    /// A transient failure of the cluster mid-batch: nothing more of the
    /// batch counts as done; it goes back to the committed offsets and is
    /// processed again after a backoff — until `task_timeout` passes
    /// without a committed batch. Any other error stops the processor.
    async fn through_transient(
        &mut self,
        error: ProcessError,
        batch: &[ConsumerRecord],
    ) -> Result<(), ProcessError> {
        let since = *self
            .failing_since
            .get_or_insert_with(std::time::Instant::now);
        if !error.is_transient() || since.elapsed() >= self.config.task_timeout {
            return Err(error);
        }
        tracing::warn!(%error, records = batch.len(), "transient failure; the batch is processed again");
        self.stats.batches_retried += 1;
        // A transaction the failure left open is aborted first.
        recover(&self.producer).await?;
        let backoff = RetryPolicy::default();
        let mut attempt = 0;
        loop {
            attempt += 1;
            tokio::time::sleep(backoff.backoff(attempt)).await;
            match rewind(&mut self.consumer, batch).await {
                Ok(()) => return Ok(()),
                Err(error)
                    if error.is_retriable() && since.elapsed() < self.config.task_timeout =>
                {
                    tracing::debug!(%error, "rewind failed; retrying");
                }
                Err(error) => return Err(error.into()),
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
        // Committed before processing — under the generation the batch was
        // fetched in, else a partition that moved could be processed twice.
        if let Err(error) = self.commit_batch(batch).await {
            return self.unless_rebalanced(error, batch).await;
        }
        self.stats.batches_committed += 1;
        self.stats.records_committed += batch.len() as u64;
        let mut deliveries = Vec::new();
        for record in batch {
            match handler(record) {
                Ok(outputs) => deliveries.push(self.send_all(outputs).await?),
                Err(error) => {
                    self.stats.handler_errors += 1;
                    // No redelivery under at-most-once: dead-letter or lose it.
                    match self.dead_letter(record, &error.0, FailureClass::Handler) {
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
            if failed.is_some() {
                self.stats.output_errors += 1;
                self.stats.lost += 1;
            }
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
        let mut failure = None;
        for record in batch {
            let outputs = match self.outputs_of(record, handler)? {
                Ok(outputs) => outputs,
                Err(pause) => {
                    failure = Some(pause);
                    break;
                }
            };
            // Dead-lettered records count as processed only once the DLQ
            // acknowledged them (awaited below).
            deliveries.push(self.send_all(outputs).await?);
        }
        // Outputs are awaited in input order: the first input whose output
        // failed ends what can be committed.
        let mut processed = 0;
        let mut output_failure = None;
        for outputs in deliveries {
            match settle(outputs).await {
                (sent, None) => {
                    self.stats.outputs_sent += sent;
                    if output_failure.is_none() {
                        processed += 1;
                    }
                }
                (sent, Some(error)) => {
                    self.stats.outputs_sent += sent;
                    output_failure.get_or_insert(error);
                }
            }
        }
        let done = &batch[..processed];
        if !done.is_empty() {
            if let Err(error) = self.commit_batch(done).await {
                // Outputs were sent: the records come again, possibly to
                // another member (duplicates, which at-least-once allows).
                return self.unless_rebalanced(error, batch).await;
            }
            self.stats.batches_committed += 1;
            self.stats.records_committed += done.len() as u64;
            self.forget_attempts(done);
        }
        let pause = match output_failure {
            Some(error) if output_error_is_transient(&error) => {
                // Not the record's fault: processed again from here,
                // within `task_timeout`.
                self.stats.output_errors += 1;
                return Err(ProcessError::Produce(error));
            }
            Some(error) => {
                let record = &batch[processed];
                match self.on_record_failure(record, RecordFailure::Output(error))? {
                    Next::Redeliver(pause) => Some(pause),
                    Next::Skip(replacement) => {
                        self.give_up(record, replacement);
                        Some(Duration::ZERO)
                    }
                }
            }
            None => failure,
        };
        if let Some(pause) = pause {
            let rest = &batch[processed..];
            self.stats.redeliveries += rest.len() as u64;
            rewind(&mut self.consumer, rest).await?;
            tokio::time::sleep(pause).await;
        }
        Ok(())
    }

    /// What `record` turns into: the handler's outputs, or after a failure
    /// the policy's answer — `Err(pause)` to deliver it again, or the
    /// dead-letter record in its place.
    fn outputs_of<H>(
        &mut self,
        record: &ConsumerRecord,
        handler: &mut H,
    ) -> Result<Result<Vec<ProducerRecord>, Duration>, ProcessError>
    where
        H: FnMut(&ConsumerRecord) -> Result<Vec<ProducerRecord>, HandlerError>,
    {
        let key = (
            TopicPartition::new(&*record.topic, record.partition),
            record.offset,
        );
        if let Some(replacement) = self.given_up.remove(&key) {
            return Ok(Ok(replacement.into_iter().collect()));
        }
        match handler(record) {
            Ok(outputs) => Ok(Ok(outputs)),
            Err(error) => match self.on_record_failure(record, RecordFailure::Handler(error))? {
                Next::Skip(replacement) => Ok(Ok(replacement.into_iter().collect())),
                Next::Redeliver(pause) => Ok(Err(pause)),
            },
        }
    }

    /// Committed records' failures are history: their counts would only
    /// grow the map.
    fn forget_attempts(&mut self, committed: &[ConsumerRecord]) {
        if self.attempts.is_empty() {
            return;
        }
        for record in committed {
            let key = (
                TopicPartition::new(&*record.topic, record.partition),
                record.offset,
            );
            self.attempts.remove(&key);
        }
    }

    /// Remembers what to write instead of `record`'s outputs next time.
    fn give_up(&mut self, record: &ConsumerRecord, replacement: Option<ProducerRecord>) {
        let key = (
            TopicPartition::new(&*record.topic, record.partition),
            record.offset,
        );
        self.given_up.insert(key, replacement);
    }

    /// Commits `batch`'s offsets under the generation its records were
    /// fetched in.
    async fn commit_batch(&mut self, batch: &[ConsumerRecord]) -> Result<(), ConsumeError> {
        let generation = self
            .consumer
            .group_metadata()
            .await?
            .ok_or(ConsumeError::NoGroup)?;
        self.consumer
            .commit_offsets_with(next_offsets(batch), &generation)
            .await
    }

    /// A rebalance took the batch's ground away: nothing of it is committed;
    /// partitions still owned go back to their committed offsets, the others
    /// are their new owner's. Any other error stops the processor.
    async fn unless_rebalanced(
        &mut self,
        error: ConsumeError,
        batch: &[ConsumerRecord],
    ) -> Result<(), ProcessError> {
        if !error.is_rebalance() {
            return Err(error.into());
        }
        tracing::info!(%error, records = batch.len(), "batch dropped uncommitted after a rebalance");
        self.stats.batches_rebalanced += 1;
        rewind(&mut self.consumer, batch).await?;
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
                self.forget_attempts(batch);
                Ok(())
            }
            Err(TxnOutcome::Output { error, .. }) if output_error_is_transient(&error) => {
                // Not the record's fault: aborted, and processed again
                // within `task_timeout`.
                self.stats.output_errors += 1;
                self.stats.transactions_aborted += 1;
                Err(ProcessError::Produce(error))
            }
            Err(TxnOutcome::Output { index, error }) => {
                recover(&self.producer).await?;
                self.stats.transactions_aborted += 1;
                self.stats.redeliveries += batch.len() as u64;
                let record = &batch[index];
                let pause = match self.on_record_failure(record, RecordFailure::Output(error))? {
                    Next::Redeliver(pause) => pause,
                    Next::Skip(replacement) => {
                        self.give_up(record, replacement);
                        Duration::ZERO
                    }
                };
                rewind(&mut self.consumer, batch).await?;
                tokio::time::sleep(pause).await;
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
            Err(TxnOutcome::Rebalanced(error)) => {
                recover(&self.producer).await?;
                self.stats.transactions_aborted += 1;
                self.unless_rebalanced(error, batch).await
            }
            Err(TxnOutcome::Failed(error)) if error.is_abortable() => {
                tracing::warn!(%error, "transaction not committed; processing the batch again");
                recover(&self.producer).await?;
                self.stats.transactions_aborted += 1;
                self.stats.redeliveries += batch.len() as u64;
                rewind(&mut self.consumer, batch).await?;
                tokio::time::sleep(RetryPolicy::default().backoff(1)).await;
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
        let mut deliveries = Vec::new();
        for (index, record) in batch.iter().enumerate() {
            // The DLQ write joins the transaction: dead-lettered and
            // committed together, or neither.
            let outputs = match self.outputs_of(record, handler).map_err(TxnOutcome::Stop)? {
                Ok(outputs) => outputs,
                Err(pause) => return Err(TxnOutcome::Handler(pause)),
            };
            for output in outputs {
                let delivery = match self.producer.send(output).await {
                    Ok(delivery) => delivery,
                    Err(error) if RecordFailure::Output(error.clone()).is_permanent() => {
                        return Err(TxnOutcome::Output { index, error })
                    }
                    Err(error) => return Err(TxnOutcome::Failed(as_txn(error))),
                };
                deliveries.push((index, delivery));
                sent += 1;
            }
        }
        // KIP-447: the offsets go with the generation the records were
        // fetched in; a partition taken away meanwhile aborts the batch.
        let group = match self.consumer.group_metadata().await {
            Ok(Some(group)) => group,
            Ok(None) => return Err(TxnOutcome::Stop(ConsumeError::NoGroup.into())),
            Err(error) if error.is_rebalance() => return Err(TxnOutcome::Rebalanced(error)),
            Err(error) => return Err(TxnOutcome::Stop(error.into())),
        };
        self.producer
            .send_offsets_to_transaction(&next_offsets(batch), &group)
            .await
            .map_err(TxnOutcome::Failed)?;
        if let Err(error) = self.producer.commit_transaction().await {
            // A refused output fails the commit (issue 14 item 2); find the
            // input it came from so the failure policy can act on it.
            if error.is_abortable() {
                if let Some((index, error)) = first_failed_output(deliveries).await {
                    return Err(TxnOutcome::Output { index, error });
                }
            }
            return Err(TxnOutcome::Failed(error));
        }
        Ok(sent)
    }

    /// Applies the failure policy to a failure of `record`: retry with
    /// backoff while the policy allows (never for a permanent failure), then
    /// dead-letter, skip, or stop.
    fn on_record_failure(
        &mut self,
        record: &ConsumerRecord,
        failure: RecordFailure,
    ) -> Result<Next, ProcessError> {
        match &failure {
            RecordFailure::Handler(_) => self.stats.handler_errors += 1,
            RecordFailure::Output(_) => self.stats.output_errors += 1,
        }
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
        let permanent = failure.is_permanent();
        let policy = match &self.config.on_failure {
            OnFailure::Retry(policy) | OnFailure::DeadLetter { retry: policy, .. } => {
                Some(policy.clone())
            }
            OnFailure::Skip => None,
        };
        if let Some(policy) = policy.filter(|p| !permanent && p.should_retry(attempts)) {
            tracing::warn!(error = %failure.reason(), offset = record.offset, attempts, "record failed; redelivering");
            return Ok(Next::Redeliver(policy.backoff(attempts)));
        }
        let class = if permanent {
            FailureClass::NonRetriable
        } else if attempts > 1 {
            FailureClass::RetriesExhausted
        } else {
            FailureClass::Handler
        };
        let envelope = self.dead_letter(record, &failure.reason(), class);
        self.attempts.remove(&key);
        match (&self.config.on_failure, failure) {
            (OnFailure::Retry(_), RecordFailure::Handler(last)) => {
                Err(ProcessError::HandlerGaveUp {
                    topic: record.topic.to_string(),
                    partition: record.partition,
                    offset: record.offset,
                    attempts,
                    last,
                })
            }
            (OnFailure::Retry(_), RecordFailure::Output(last)) => Err(ProcessError::OutputGaveUp {
                topic: record.topic.to_string(),
                partition: record.partition,
                offset: record.offset,
                attempts,
                last,
            }),
            (_, failure) => {
                if envelope.is_some() {
                    self.stats.dead_lettered += 1;
                } else {
                    tracing::warn!(error = %failure.reason(), offset = record.offset, "record skipped (on_failure = skip)");
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
        reason: &str,
        class: FailureClass,
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
        let attempts = self
            .attempts
            .get(&(
                TopicPartition::new(&*record.topic, record.partition),
                record.offset,
            ))
            .map_or(1, |(attempts, _)| *attempts);
        let failure = Failure {
            reason: reason.to_owned(),
            class,
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
    /// The output of input `index` was refused.
    Output {
        /// Index in the batch.
        index: usize,
        /// Why.
        error: ProduceError,
    },
    /// The transaction failed.
    Failed(TransactionError),
    /// The failure policy gave up, or the consumer failed: stop.
    Stop(ProcessError),
    /// A rebalance took a partition of the batch away.
    Rebalanced(ConsumeError),
}

fn as_txn(error: ProduceError) -> TransactionError {
    match error {
        ProduceError::Transaction(e) => e,
        ProduceError::Fatal(reason) => TransactionError::Fatal(reason),
        other => TransactionError::Abortable(other.to_string()),
    }
}

/// Waits for one record's outputs: how many were acknowledged, and the
/// first error.
async fn settle(outputs: Vec<DeliveryFuture>) -> (u64, Option<ProduceError>) {
    let (mut sent, mut failed) = (0, None);
    for output in outputs {
        match output.await {
            Ok(_) => sent += 1,
            Err(error) => {
                tracing::warn!(%error, "output not delivered");
                failed.get_or_insert(error);
            }
        }
    }
    (sent, failed)
}

/// The first output of an aborted transaction that was refused for a
/// reason of its own (not merely aborted with the rest), with its input's
/// index.
async fn first_failed_output(
    deliveries: Vec<(usize, DeliveryFuture)>,
) -> Option<(usize, ProduceError)> {
    let mut first = None;
    for (index, delivery) in deliveries {
        if let Err(error) = delivery.await {
            if first.is_none() && !matches!(error, ProduceError::Transaction(_)) {
                first = Some((index, error));
            }
        }
    }
    first
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
