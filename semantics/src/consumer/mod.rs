//! The consumer: fetching with prefetch, `isolation.level` (read_committed
//! honours abort markers as well as the aborted-transactions list), consumer
//! groups of the classic protocol, and offsets.
//!
//! ```no_run
//! # async fn demo() -> Result<(), semantics::consumer::ConsumeError> {
//! use semantics::consumer::Consumer;
//! let mut consumer = Consumer::from_properties([
//!     ("bootstrap.servers", "localhost:9092"),
//!     ("group.id", "billing"),
//!     ("auto.offset.reset", "earliest"),
//! ])?;
//! consumer.subscribe(["invoices"]).await?;
//! loop {
//!     let record = consumer.recv().await?;
//!     println!("{}-{}@{}", record.topic, record.partition, record.offset);
//! }
//! # }
//! ```
//!
//! The application side ([`Consumer`]) only takes records from a channel; a
//! background driver fetches, and a group task heartbeats, so neither stalls
//! while the application processes. A record counts as processed when the
//! application asks for the next one: that is the position auto-commit and
//! [`Consumer::commit`] use (the Java client's rule), so a crash never commits
//! a record that was being processed.
//!
//! Module map: [`config`] keys; `fetch` requests; `partition` positions and
//! delivery order; `read_committed`; `positions` (committed offset or reset);
//! `offsets` (ListOffsets / OffsetFetch / OffsetCommit); `group` (membership
//! state machine, coordinator, heartbeats); `assignor` (range, roundrobin,
//! cooperative-sticky); `driver` (the background task).

pub mod assignor;
pub mod config;
mod driver;
mod error;
mod fetch;
mod fetch_session;
pub mod group;
mod liveness;
mod offsets;
mod partition;
mod positions;
pub mod read_committed;
mod shared;
mod validate;

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::fast_hash::FastMap;
use bytes::Bytes;
pub use kafka_wire::records::TimestampType;
use kafka_wire::records::{Header, Record};
use tokio::sync::{mpsc, oneshot, Notify};
use tracing::Instrument;

pub use config::{ConsumerConfig, IsolationLevel, OffsetReset};
pub use error::ConsumeError;
pub use offsets::GroupMetadata;

use crate::cluster::Cluster;
use driver::{Command, Driver};
use partition::{Assignment, Cursor, Delivery};
use shared::Shared;

/// A partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`-`partition`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A record as the application sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// Timestamp in ms (create or log-append time, per the topic).
    pub timestamp: i64,
    /// Whether `timestamp` is the producer's create time or the broker's
    /// log-append time.
    pub timestamp_type: TimestampType,
    /// Key, `None` for a null key.
    pub key: Option<Bytes>,
    /// Value, `None` for a tombstone.
    pub value: Option<Bytes>,
    /// Headers in wire order, duplicates kept.
    pub headers: Vec<Header>,
}

/// Told about assignment changes, on the consumer's background task. Keep
/// the callbacks short; they delay the rebalance.
pub trait RebalanceListener: Send + Sync {
    /// Partitions now assigned to this consumer.
    fn on_assigned(&self, _partitions: &[TopicPartition]) {}
    /// Partitions taken away in an orderly rebalance (already committed when
    /// auto-commit is on).
    fn on_revoked(&self, _partitions: &[TopicPartition]) {}
    /// Partitions lost because the membership expired: another member may
    /// own them already; nothing was committed.
    fn on_lost(&self, _partitions: &[TopicPartition]) {}
}

struct CurrentChunk {
    cursor: Arc<Cursor>,
    records: std::vec::IntoIter<Record>,
    next_offset: i64,
    /// Whether a record of it was returned (its assignment is in `handed`).
    handed: bool,
}

/// A Kafka consumer. Create it inside a tokio runtime; it is a [`Stream`](futures_core::Stream)
/// of records and also offers [`recv`](Consumer::recv) and [`poll`](Consumer::poll).
pub struct Consumer {
    commands: mpsc::UnboundedSender<Command>,
    deliveries: mpsc::UnboundedReceiver<Delivery>,
    shared: Arc<Shared>,
    current: Option<CurrentChunk>,
    /// Position after the record returned last; it counts as processed when
    /// the application asks for the next one.
    returned: Option<i64>,
    /// Assignments whose records were returned since the last
    /// [`group_metadata`](Consumer::group_metadata): they must all still be
    /// this consumer's when those records' offsets are committed. One per
    /// partition, so it stays small however long the consumer runs without
    /// asking.
    handed: FastMap<TopicPartition, Arc<Assignment>>,
    driver: Option<tokio::task::JoinHandle<()>>,
}

impl Consumer {
    /// A consumer from parsed configuration.
    pub fn new(config: ConsumerConfig) -> Result<Self, ConsumeError> {
        Self::with_listener(config, None)
    }

    /// A consumer from Kafka properties (`bootstrap.servers`, `group.id` …).
    pub fn from_properties<I, K, V>(properties: I) -> Result<Self, ConsumeError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        Self::new(ConsumerConfig::from_properties(properties)?)
    }

    /// A consumer whose rebalances are reported to `listener`.
    pub fn with_listener(
        config: ConsumerConfig,
        listener: Option<Arc<dyn RebalanceListener>>,
    ) -> Result<Self, ConsumeError> {
        config.validate()?;
        // A Fetch may wait fetch.max.wait.ms at the broker before answering.
        let (cluster, connection) = Cluster::for_client(
            config.bootstrap_servers.clone(),
            kafka_wire::conn::ConnectionConfig {
                client_id: Some(config.client_id.clone()),
                request_timeout: config.request_timeout + config.fetch_max_wait,
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
        let group = group::GroupShared::new(&config, cluster.clone(), connection).map(Arc::new);
        let span = tracing::info_span!("consumer", client_id = %config.client_id, group = config.group_id.as_deref().unwrap_or(""));
        let shared = Arc::new(Shared {
            config,
            cluster,
            buffered: AtomicUsize::new(0),
            taken: Notify::new(),
            group,
            poll_clock: liveness::PollClock::default(),
        });
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (deliveries_tx, deliveries) = mpsc::unbounded_channel();
        let driver = Driver::new(shared.clone(), commands_rx, deliveries_tx, listener);
        let driver = tokio::spawn(driver.run().instrument(span));
        Ok(Self {
            commands,
            deliveries,
            shared,
            current: None,
            returned: None,
            handed: FastMap::default(),
            driver: Some(driver),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ConsumerConfig {
        &self.shared.config
    }

    /// Requests and bytes this consumer exchanged with the cluster so far
    /// (group coordinator included).
    pub fn traffic(&self) -> kafka_wire::conn::TrafficSnapshot {
        self.shared.cluster.traffic()
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, ConsumeError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .map_err(|_| ConsumeError::Closed)?;
        rx.await.map_err(|_| ConsumeError::Closed)
    }

    /// Joins the group (`group.id`) for `topics`; partitions arrive through
    /// rebalances. Calling it again changes the subscription.
    pub async fn subscribe<I, S>(&self, topics: I) -> Result<(), ConsumeError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let topics = topics.into_iter().map(Into::into).collect();
        self.call(|tx| Command::Subscribe(topics, tx)).await?
    }

    /// Consumes exactly `partitions`, without group membership. Offsets can
    /// still be committed when `group.id` is set.
    pub async fn assign(&self, partitions: Vec<TopicPartition>) -> Result<(), ConsumeError> {
        self.call(|tx| Command::Assign(partitions, tx)).await?
    }

    /// The next record. Waits while there is none; errors are per partition
    /// (the others keep flowing) unless they are [`ConsumeError::Group`].
    pub async fn recv(&mut self) -> Result<ConsumerRecord, ConsumeError> {
        let shared = self.shared.clone();
        let _waiting = liveness::WaitGuard(&shared.poll_clock);
        std::future::poll_fn(|cx| self.poll_recv(cx))
            .await
            .unwrap_or(Err(ConsumeError::Closed))
    }

    /// Poll-style: the next record, or `None` when `timeout` passes first.
    pub async fn poll(
        &mut self,
        timeout: Duration,
    ) -> Option<Result<ConsumerRecord, ConsumeError>> {
        // A record already fetched is returned without arming a timer:
        // reading the clock for each record's deadline cost more than
        // decoding it.
        let ready = std::future::poll_fn(|cx| Poll::Ready(self.poll_recv(cx))).await;
        if let Poll::Ready(record) = ready {
            return Some(record.unwrap_or(Err(ConsumeError::Closed)));
        }
        tokio::time::timeout(timeout, self.recv()).await.ok()
    }

    /// Marks what was returned so far as processed.
    fn settle(&mut self) {
        if let (Some(position), Some(current)) = (self.returned.take(), &self.current) {
            current.cursor.settle(position);
        }
    }

    /// Polls for the next record (the [`Stream`](futures_core::Stream) implementation).
    pub fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<ConsumerRecord, ConsumeError>>> {
        self.settle();
        let polled = self.next_ready(cx);
        self.shared.poll_clock.polled(polled.is_pending());
        polled
    }

    fn next_ready(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<ConsumerRecord, ConsumeError>>> {
        loop {
            if let Some(current) = &mut self.current {
                if !current.cursor.is_revoked() {
                    if let Some(record) = current.records.next() {
                        self.returned = Some(record.offset + 1);
                        // Read by a revocation, which waits for the
                        // application to be done with this record.
                        current
                            .cursor
                            .returned
                            .store(record.offset + 1, Ordering::SeqCst);
                        if !current.handed {
                            current.handed = true;
                            let assignment = &current.cursor.assignment;
                            // One entry per partition: an ended assignment
                            // stays until `group_metadata` reports it.
                            self.handed
                                .entry(assignment.tp.clone())
                                .and_modify(|held| {
                                    if !held.has_ended() {
                                        *held = assignment.clone();
                                    }
                                })
                                .or_insert_with(|| assignment.clone());
                        }
                        return Poll::Ready(Some(Ok(ConsumerRecord {
                            topic: current.cursor.topic.clone(),
                            partition: current.cursor.partition,
                            offset: record.offset,
                            timestamp: record.timestamp,
                            timestamp_type: record.timestamp_type,
                            key: record.key,
                            value: record.value,
                            headers: record.headers,
                        })));
                    }
                    // Everything up to the chunk's end (markers included) is processed.
                    current.cursor.settle(current.next_offset);
                }
                self.current = None;
            }
            match self.deliveries.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Delivery::Records {
                    cursor,
                    records,
                    next_offset,
                    bytes,
                })) => {
                    self.shared.buffered.fetch_sub(bytes, Ordering::AcqRel);
                    self.shared.taken.notify_one();
                    self.current = Some(CurrentChunk {
                        cursor,
                        records: records.into_iter(),
                        next_offset,
                        handed: false,
                    });
                }
                Poll::Ready(Some(Delivery::Error { cursor, error })) => {
                    if cursor.is_none_or(|c| !c.is_revoked()) {
                        return Poll::Ready(Some(Err(error)));
                    }
                }
            }
        }
    }

    /// Moves `partition`'s position to `offset`; records fetched before are dropped.
    pub async fn seek(
        &mut self,
        partition: TopicPartition,
        offset: i64,
    ) -> Result<(), ConsumeError> {
        self.settle();
        self.call(|tx| Command::Seek(partition, offset, tx)).await?
    }

    /// Stops handing out and fetching `partitions` until [`resume`](Self::resume).
    pub async fn pause(&mut self, partitions: Vec<TopicPartition>) -> Result<(), ConsumeError> {
        self.settle();
        self.call(|tx| Command::Pause(partitions, true, tx)).await
    }

    /// Restarts paused partitions where the application left them.
    pub async fn resume(&mut self, partitions: Vec<TopicPartition>) -> Result<(), ConsumeError> {
        self.call(|tx| Command::Pause(partitions, false, tx)).await
    }

    /// Commits the position after every record returned so far and waits
    /// for the coordinator's answer (the executor is never blocked).
    pub async fn commit(&mut self) -> Result<(), ConsumeError> {
        self.settle();
        self.call(|tx| Command::Commit(None, None, tx)).await?
    }

    /// Starts the same commit as [`commit`](Self::commit) and returns at
    /// once; the returned future tells the outcome (dropping it is fine).
    pub fn commit_async(&mut self) -> impl std::future::Future<Output = Result<(), ConsumeError>> {
        self.settle();
        let (tx, rx) = oneshot::channel();
        let sent = self.commands.send(Command::Commit(None, None, tx));
        async move {
            sent.map_err(|_| ConsumeError::Closed)?;
            rx.await.map_err(|_| ConsumeError::Closed)?
        }
    }

    /// Commits the given offsets (the next offset to read, per partition)
    /// under the group's current generation.
    pub async fn commit_offsets(
        &self,
        offsets: Vec<(TopicPartition, i64)>,
    ) -> Result<(), ConsumeError> {
        self.call(|tx| Command::Commit(Some(offsets), None, tx))
            .await?
    }

    /// Commits the given offsets under `generation`, as returned by
    /// [`group_metadata`](Self::group_metadata) for the records they cover.
    /// If the group has moved to another generation meanwhile the
    /// coordinator refuses the commit ([`ConsumeError::is_rebalance`]), so
    /// records are never committed under a generation they were not fetched in.
    pub async fn commit_offsets_with(
        &self,
        offsets: Vec<(TopicPartition, i64)>,
        generation: &GroupMetadata,
    ) -> Result<(), ConsumeError> {
        let generation = generation.clone();
        self.call(|tx| Command::Commit(Some(offsets), Some(generation), tx))
            .await?
    }

    /// The group's committed offsets (`None`: nothing committed).
    pub async fn committed(
        &self,
        partitions: Vec<TopicPartition>,
    ) -> Result<Vec<(TopicPartition, Option<i64>)>, ConsumeError> {
        self.call(|tx| Command::Committed(partitions, tx)).await?
    }

    /// The assigned partitions with their positions (`None` while unknown).
    /// The record in hand is not counted as processed: asking is not processing.
    pub async fn assignment(&self) -> Result<Vec<(TopicPartition, Option<i64>)>, ConsumeError> {
        self.call(Command::Assignment).await
    }

    /// Whether this consumer has read everything there is for now: its
    /// group (if any) is not rebalancing, and every assigned partition was
    /// fetched to its end (the high watermark; the last stable offset under
    /// read_committed) with nothing left undelivered. A consumer that saw
    /// no record for a while may still be waiting for a rebalance or a
    /// position; this tells the two apart.
    pub async fn caught_up(&self) -> Result<bool, ConsumeError> {
        self.call(Command::CaughtUp).await
    }

    /// Number of partitions of `topic`, from the cluster metadata.
    pub async fn partition_count(&self, topic: &str) -> Result<i32, ConsumeError> {
        let deadline = std::time::Instant::now() + self.shared.config.request_timeout;
        let metadata = self
            .shared
            .cluster
            .topic(topic, deadline, &self.shared.config.retry_policy())
            .await
            .map_err(|(code, _)| ConsumeError::Partition {
                topic: topic.to_owned(),
                partition: -1,
                code,
            })?;
        Ok(metadata.partition_count())
    }

    /// Connectivity, prefetched bytes not yet taken, and assigned partitions.
    pub async fn health(&self) -> crate::health::Health {
        let (connected, known) = self.shared.cluster.connectivity();
        let assigned = self.assignment().await;
        let health = crate::health::Health {
            brokers_connected: connected,
            brokers_known: known,
            pending: self.shared.buffered.load(Ordering::Acquire) as u64,
            partitions_assigned: assigned.as_ref().map_or(0, Vec::len),
            failed: assigned.err().map(|e| e.to_string()),
        };
        tracing::debug!(?health, "consumer health");
        health
    }

    /// The group generation to commit the records returned since the
    /// previous call under — for `send_offsets_to_transaction` (KIP-447) or
    /// [`commit_offsets_with`](Self::commit_offsets_with). `None` without
    /// `group.id`.
    ///
    /// Rebalances run in the background, so a partition can be taken away
    /// while its records are being processed. This fails with
    /// [`ConsumeError::Rebalanced`] when any partition whose records were
    /// returned since the previous call is no longer this consumer's, or when
    /// a subscribed consumer is in no generation: those records' offsets must
    /// not be committed (abort the transaction; their owner reads them
    /// again from the committed offset). Each call starts a new span of
    /// records to check.
    pub async fn group_metadata(&mut self) -> Result<Option<GroupMetadata>, ConsumeError> {
        // The generation first, then the ownership: a rebalance revokes
        // (eager) or lets go of (cooperative) partitions before its new
        // generation is visible here, so owned-after means owned-under.
        let (metadata, subscribed) = self.call(Command::GroupMetadata).await?;
        let handed = std::mem::take(&mut self.handed);
        // The chunk in hand goes on being handed out: its next record puts
        // its assignment back.
        if let Some(current) = self.current.as_mut() {
            current.handed = false;
        }
        let revoked: Vec<TopicPartition> = handed
            .values()
            .filter(|a| a.has_ended())
            .map(|a| a.tp.clone())
            .collect();
        let unjoined = subscribed
            && metadata
                .as_ref()
                .is_some_and(|m| m.generation_id < 0 || m.member_id.is_empty());
        if !revoked.is_empty() || unjoined {
            return Err(ConsumeError::Rebalanced { revoked });
        }
        Ok(metadata)
    }

    /// Commits (with auto-commit), leaves the group and stops the background tasks.
    pub async fn close(mut self) {
        self.settle();
        let _ = self.call(Command::Close).await;
        if let Some(driver) = self.driver.take() {
            let _ = driver.await;
        }
    }
}

impl futures_core::Stream for Consumer {
    type Item = Result<ConsumerRecord, ConsumeError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx)
    }
}
