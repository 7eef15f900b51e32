//! The consumer's background task: it owns the assignment and the fetch
//! positions, keeps one fetch in flight per broker while the application
//! processes (prefetch, bounded by `queued.max.messages.kbytes`), looks up
//! start positions, commits, and applies what the group task decides.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_wire::records::DecodeOptions;
use kafka_wire::{ConnError, ErrorClass, KafkaCode};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::fetch::{
    build_request, build_session_request, decode_response, FetchTarget, PartitionFetch,
};
use super::fetch_session::{FetchSession, SessionAnswer, FIRST_SESSION_VERSION};
use super::group::{GroupEvent, GroupLink};
use super::offsets::GroupMetadata;
use super::partition::{Delivery, PartitionState};
use super::positions::resolve_positions;
use super::shared::Shared;
use super::validate::{Validation, ValidationTarget};

mod validation;
use super::{ConsumeError, RebalanceListener, TopicPartition};
use crate::fast_hash::FastMap;

/// Committed offsets per partition, `None` where nothing was committed.
pub type CommittedOffsets = Result<Vec<(TopicPartition, Option<i64>)>, ConsumeError>;

/// Requests from the application handle.
pub enum Command {
    /// Join the group with these topics.
    Subscribe(Vec<String>, oneshot::Sender<Result<(), ConsumeError>>),
    /// Manual assignment.
    Assign(
        Vec<TopicPartition>,
        oneshot::Sender<Result<(), ConsumeError>>,
    ),
    /// Move a partition's position.
    Seek(
        TopicPartition,
        i64,
        oneshot::Sender<Result<(), ConsumeError>>,
    ),
    /// Stop (true) or restart (false) fetching partitions.
    Pause(Vec<TopicPartition>, bool, oneshot::Sender<()>),
    /// Commit the consumed positions, or the given offsets (under the given
    /// generation, else the current one).
    Commit(
        Option<Vec<(TopicPartition, i64)>>,
        Option<GroupMetadata>,
        oneshot::Sender<Result<(), ConsumeError>>,
    ),
    /// Committed offsets, from the coordinator.
    Committed(Vec<TopicPartition>, oneshot::Sender<CommittedOffsets>),
    /// The current assignment with the positions.
    Assignment(oneshot::Sender<Vec<(TopicPartition, Option<i64>)>>),
    /// Whether the consumer is caught up: see `Consumer::caught_up`.
    CaughtUp(oneshot::Sender<bool>),
    /// Group generation, for transactional offset commits, and whether the
    /// consumer is subscribed (a subscribed consumer needs a generation).
    GroupMetadata(oneshot::Sender<(Option<GroupMetadata>, bool)>),
    /// Commit (with auto-commit), leave the group and stop.
    Close(oneshot::Sender<()>),
}

enum Internal {
    Fetched {
        broker: i32,
        targets: Vec<(FetchTarget, Arc<super::partition::Cursor>)>,
        result: Result<Vec<(TopicPartition, PartitionFetch)>, FetchFailure>,
        /// The broker's fetch session, back from the fetch that used it.
        session: FetchSession,
    },
    Positions(
        Vec<(
            TopicPartition,
            Arc<super::partition::Cursor>,
            Result<i64, ConsumeError>,
        )>,
    ),
    /// OffsetForLeaderEpoch answered (or failed) for positions to validate.
    Validated {
        targets: Vec<(ValidationTarget, Arc<super::partition::Cursor>)>,
        result: Result<Vec<(TopicPartition, Validation)>, FetchFailure>,
    },
    MetadataRefreshed,
    /// A commit succeeded with these offsets.
    Committed(FastMap<TopicPartition, i64>),
    /// An auto-commit ended, well or not: the next may be queued.
    AutoCommitEnded,
    /// The application is done with the records it held of partitions
    /// being revoked (or took too long): the revocation can finish.
    RevocationReady {
        partitions: Vec<TopicPartition>,
        ack: oneshot::Sender<()>,
    },
}

/// One offset commit, queued.
struct CommitJob {
    offsets: FastMap<TopicPartition, i64>,
    generation: Option<GroupMetadata>,
    reply: Option<oneshot::Sender<Result<(), ConsumeError>>>,
    /// Queued by the auto-commit timer.
    auto: bool,
}

enum FetchFailure {
    Connection(ConnError),
    Broker(KafkaCode),
}

/// The background task.
pub struct Driver {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedReceiver<Command>,
    deliveries: mpsc::UnboundedSender<Delivery>,
    internal_tx: mpsc::UnboundedSender<Internal>,
    internal: mpsc::UnboundedReceiver<Internal>,
    partitions: FastMap<TopicPartition, PartitionState>,
    brokers_busy: HashSet<i32>,
    /// Each broker's fetch session (KIP-227), while no fetch has it out.
    sessions: HashMap<i32, FetchSession>,
    broker_retry_at: HashMap<i32, Instant>,
    /// Failed fetches in a row per broker: its backoff doubles with them.
    broker_failures: HashMap<i32, u32>,
    /// `retry.backoff.ms` doubling to `retry.backoff.max.ms` (KIP-580).
    retry: crate::retry::RetryPolicy,
    refreshing_metadata: bool,
    group: Option<GroupLink>,
    listener: Option<Arc<dyn RebalanceListener>>,
    decode: DecodeOptions,
    next_auto_commit: Instant,
    /// An auto-commit is queued or running. While the coordinator is away a
    /// commit can retry for `default.api.timeout.ms`; one per interval
    /// would pile up, each sending stale offsets after the outage.
    auto_commit_in_flight: bool,
    /// Commits run one at a time in the order asked: a retried commit can
    /// never land after a later one and move the committed offset back.
    commits: Option<mpsc::UnboundedSender<CommitJob>>,
}

impl Driver {
    /// A driver; `deliveries` goes to the application handle.
    pub fn new(
        shared: Arc<Shared>,
        commands: mpsc::UnboundedReceiver<Command>,
        deliveries: mpsc::UnboundedSender<Delivery>,
        listener: Option<Arc<dyn RebalanceListener>>,
    ) -> Self {
        let (internal_tx, internal) = mpsc::unbounded_channel();
        let decode = DecodeOptions {
            verify_crc: shared.config.check_crcs,
            ..DecodeOptions::default()
        };
        let next_auto_commit = Instant::now() + shared.config.auto_commit_interval;
        let retry = shared.config.retry_policy();
        let commits = shared
            .group
            .clone()
            .map(|group| spawn_committer(group, internal_tx.clone()));
        Self {
            shared,
            commands,
            deliveries,
            internal_tx,
            internal,
            partitions: FastMap::default(),
            brokers_busy: HashSet::new(),
            sessions: HashMap::new(),
            broker_retry_at: HashMap::new(),
            broker_failures: HashMap::new(),
            retry,
            refreshing_metadata: false,
            group: None,
            listener,
            decode,
            next_auto_commit,
            auto_commit_in_flight: false,
            commits,
        }
    }

    /// Runs until the handle closes the consumer (or is dropped).
    pub async fn run(mut self) {
        loop {
            self.start_fetches();
            let wake_at = self.next_wake();
            let shared = self.shared.clone();
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Close(reply)) => {
                        self.close().await;
                        let _ = reply.send(());
                        return;
                    }
                    Some(command) => self.command(command).await,
                    None => {
                        self.close().await;
                        return;
                    }
                },
                Some(internal) = self.internal.recv() => self.internal(internal).await,
                Some(event) = recv_group(&mut self.group) => self.group_event(event).await,
                _ = shared.taken.notified() => {}
                _ = tokio::time::sleep_until(wake_at.into()) => self.on_timer(),
            }
        }
    }

    fn next_wake(&self) -> Instant {
        let mut at = Instant::now() + Duration::from_secs(1);
        if self.auto_commit_enabled() {
            at = at.min(self.next_auto_commit);
        }
        // A backoff already over must not wake the loop at once, over and over.
        let now = Instant::now();
        let retries = self
            .partitions
            .values()
            .filter_map(|p| p.retry_at)
            .filter(|at| *at > now);
        at.min(
            retries
                .chain(self.broker_retry_at.values().copied())
                .min()
                .unwrap_or(at),
        )
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        self.broker_retry_at.retain(|_, at| *at > now);
        if self.auto_commit_enabled() && now >= self.next_auto_commit && !self.auto_commit_in_flight
        {
            self.next_auto_commit = now + self.shared.config.auto_commit_interval;
            let offsets = self.consumed_offsets(None);
            if !offsets.is_empty() {
                self.auto_commit_in_flight = true;
                self.queue_job(CommitJob {
                    offsets,
                    generation: None,
                    reply: None,
                    auto: true,
                });
            }
        }
    }

    fn auto_commit_enabled(&self) -> bool {
        self.shared.config.enable_auto_commit && self.shared.group.is_some()
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Subscribe(topics, reply) => {
                let result = self.subscribe(topics).await;
                let _ = reply.send(result);
            }
            Command::Assign(partitions, reply) => {
                self.assign_manually(partitions);
                let _ = reply.send(Ok(()));
            }
            Command::Seek(tp, offset, reply) => {
                let result = match self.partitions.get_mut(&tp) {
                    Some(state) => {
                        state.reposition(offset);
                        Ok(())
                    }
                    None => Err(ConsumeError::Partition {
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        code: KafkaCode(3),
                    }),
                };
                let _ = reply.send(result);
            }
            Command::Pause(tps, pause, reply) => {
                self.pause(&tps, pause);
                let _ = reply.send(());
            }
            Command::Commit(offsets, generation, reply) => {
                let offsets = match offsets {
                    Some(given) => given.into_iter().collect(),
                    None => self.consumed_offsets(None),
                };
                self.queue_commit(offsets, generation, Some(reply));
            }
            Command::Committed(tps, reply) => {
                let group = self.shared.group.clone();
                tokio::spawn(async move {
                    let result = match group {
                        Some(group) => group.fetch_committed(&tps).await,
                        None => Err(ConsumeError::NoGroup),
                    };
                    let _ = reply.send(result);
                });
            }
            Command::Assignment(reply) => {
                let mut list: Vec<_> = self
                    .partitions
                    .iter()
                    .map(|(tp, s)| (tp.clone(), s.resume_offset()))
                    .collect();
                list.sort();
                let _ = reply.send(list);
            }
            Command::CaughtUp(reply) => {
                let group_stable = self.shared.group.as_ref().is_none_or(|g| g.is_stable());
                let caught_up = group_stable
                    && self.shared.buffered.load(Ordering::Acquire) == 0
                    && self.partitions.values().all(PartitionState::read_to_end);
                let _ = reply.send(caught_up);
            }
            Command::GroupMetadata(reply) => {
                let metadata = self.shared.group.as_ref().map(|g| g.metadata());
                let _ = reply.send((metadata, self.group.is_some()));
            }
            Command::Close(_) => unreachable!("handled in run"),
        }
    }

    fn pause(&mut self, tps: &[TopicPartition], pause: bool) {
        for tp in tps {
            let Some(state) = self.partitions.get_mut(tp) else {
                continue;
            };
            if pause && !state.paused {
                // Records already fetched are withheld; fetching resumes where
                // the application stopped.
                if let Some(offset) = state.resume_offset() {
                    state.rewind(offset);
                }
            }
            state.paused = pause;
        }
    }

    async fn subscribe(&mut self, topics: Vec<String>) -> Result<(), ConsumeError> {
        let Some(group) = self.shared.group.clone() else {
            return Err(ConsumeError::NoGroup);
        };
        match &self.group {
            Some(link) => link.set_subscription(topics),
            None => self.group = Some(GroupLink::start(group, self.shared.clone(), topics)),
        }
        Ok(())
    }

    fn assign_manually(&mut self, partitions: Vec<TopicPartition>) {
        let removed: Vec<TopicPartition> = self
            .partitions
            .keys()
            .filter(|tp| !partitions.contains(tp))
            .cloned()
            .collect();
        self.remove(&removed);
        self.add(partitions);
    }

    fn add(&mut self, partitions: Vec<TopicPartition>) {
        let mut lookup = Vec::new();
        for tp in partitions {
            if self.partitions.contains_key(&tp) {
                continue;
            }
            let state = PartitionState::awaiting_position(&tp);
            lookup.push((tp.clone(), state.cursor.clone()));
            self.partitions.insert(tp, state);
        }
        if lookup.is_empty() {
            return;
        }
        let shared = self.shared.clone();
        let tx = self.internal_tx.clone();
        tokio::spawn(async move {
            let tps: Vec<TopicPartition> = lookup.iter().map(|(tp, _)| tp.clone()).collect();
            let mut results = resolve_positions(&shared, &tps).await;
            let resolved = lookup
                .into_iter()
                .map(|(tp, cursor)| {
                    let result = results.remove(&tp).unwrap_or(Err(ConsumeError::Closed));
                    (tp, cursor, result)
                })
                .collect();
            let _ = tx.send(Internal::Positions(resolved));
        });
    }

    fn remove(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            if let Some(state) = self.partitions.remove(tp) {
                state.end_assignment();
            }
        }
    }

    /// Consumed positions not yet committed (of `only`, or of every partition).
    fn consumed_offsets(&self, only: Option<&[TopicPartition]>) -> FastMap<TopicPartition, i64> {
        self.partitions
            .iter()
            .filter(|(tp, _)| only.is_none_or(|o| o.contains(tp)))
            .filter_map(|(tp, s)| {
                let consumed = s.cursor.consumed();
                (consumed >= 0 && s.committed != Some(consumed)).then(|| (tp.clone(), consumed))
            })
            .collect()
    }

    fn queue_commit(
        &mut self,
        offsets: FastMap<TopicPartition, i64>,
        generation: Option<GroupMetadata>,
        reply: Option<oneshot::Sender<Result<(), ConsumeError>>>,
    ) {
        self.queue_job(CommitJob {
            offsets,
            generation,
            reply,
            auto: false,
        });
    }

    fn queue_job(&mut self, job: CommitJob) {
        let Some(commits) = &self.commits else {
            if let Some(reply) = job.reply {
                let _ = reply.send(Err(ConsumeError::NoGroup));
            }
            return;
        };
        if let Err(mpsc::error::SendError(job)) = commits.send(job) {
            if let Some(reply) = job.reply {
                let _ = reply.send(Err(ConsumeError::Closed));
            }
        }
    }

    async fn internal(&mut self, internal: Internal) {
        match internal {
            Internal::RevocationReady { partitions, ack } => {
                self.finish_revocation(&partitions).await;
                let _ = ack.send(());
            }
            Internal::Fetched {
                broker,
                targets,
                result,
                session,
            } => {
                self.sessions.insert(broker, session);
                self.on_fetched(broker, targets, result);
            }
            Internal::Positions(resolved) => {
                for (tp, cursor, result) in resolved {
                    let Some(state) = self.partitions.get_mut(&tp) else {
                        continue;
                    };
                    if !Arc::ptr_eq(&state.cursor, &cursor) {
                        continue; // seeked or reassigned meanwhile
                    }
                    match result {
                        Ok(offset) => state.reposition(offset),
                        Err(error) => {
                            state.halted = true;
                            self.deliver(Delivery::Error {
                                cursor: Some(cursor),
                                error,
                            });
                        }
                    }
                }
            }
            Internal::Validated { targets, result } => self.on_validated(targets, result),
            Internal::MetadataRefreshed => self.refreshing_metadata = false,
            // Recorded only once the coordinator took it: a failed commit is
            // tried again by the next auto-commit.
            Internal::AutoCommitEnded => self.auto_commit_in_flight = false,
            Internal::Committed(offsets) => {
                for (tp, offset) in offsets {
                    if let Some(state) = self.partitions.get_mut(&tp) {
                        // Commits are sent one at a time in order: the last
                        // to succeed is what the group holds, even when the
                        // application committed backwards after a seek.
                        state.committed = Some(offset);
                    }
                }
            }
        }
    }

    fn deliver(&mut self, delivery: Delivery) {
        if let Delivery::Records { bytes, .. } = &delivery {
            self.shared.buffered.fetch_add(*bytes, Ordering::AcqRel);
        }
        let _ = self.deliveries.send(delivery);
    }

    /// Starts a fetch to every broker that leads a fetchable partition and has
    /// none in flight, while the prefetched bytes are under the limit; first
    /// validates positions whose leader changed (KIP-320).
    fn start_fetches(&mut self) {
        if self.shared.buffered.load(Ordering::Acquire) >= self.shared.config.max_prefetch_bytes {
            return;
        }
        let now = Instant::now();
        let mut per_broker: HashMap<i32, Vec<(TopicPartition, i32)>> = HashMap::new();
        let mut to_validate: HashMap<i32, Vec<(ValidationTarget, Arc<super::partition::Cursor>)>> =
            HashMap::new();
        let mut missing_leader = false;
        for (tp, state) in &mut self.partitions {
            if !state.fetchable(now) {
                continue;
            }
            let Some((leader, epoch)) = self
                .shared
                .cluster
                .leader_and_epoch(&tp.topic, tp.partition)
            else {
                missing_leader = true;
                continue;
            };
            if epoch > state.fetched_under_epoch && state.fetched_under_epoch >= 0 {
                // A new leader: the history read so far must be in its log.
                state.needs_validation = true;
            }
            if state.needs_validation && state.fetch_epoch < 0 {
                state.needs_validation = false; // nothing read yet to check
            }
            if state.needs_validation {
                let Some(offset) = state.fetch_offset else {
                    continue;
                };
                state.validating = true;
                to_validate.entry(leader).or_default().push((
                    ValidationTarget {
                        tp: tp.clone(),
                        offset,
                        last_fetched_epoch: state.fetch_epoch,
                        current_leader_epoch: epoch,
                    },
                    state.cursor.clone(),
                ));
                continue;
            }
            if !self.brokers_busy.contains(&leader) && !self.broker_retry_at.contains_key(&leader) {
                per_broker
                    .entry(leader)
                    .or_default()
                    .push((tp.clone(), epoch));
            }
        }
        if missing_leader {
            self.refresh_metadata();
        }
        for (broker, targets) in to_validate {
            self.start_validation(broker, targets);
        }
        for (broker, tps) in per_broker {
            self.start_fetch(broker, tps);
        }
    }

    fn start_fetch(&mut self, broker: i32, tps: Vec<(TopicPartition, i32)>) {
        let mut targets = Vec::with_capacity(tps.len());
        for (tp, leader_epoch) in tps {
            let Some(state) = self.partitions.get_mut(&tp) else {
                continue;
            };
            let Some(offset) = state.fetch_offset else {
                continue;
            };
            state.in_flight = true;
            state.fetched_under_epoch = leader_epoch;
            let target = FetchTarget {
                tp,
                offset,
                current_leader_epoch: leader_epoch,
                last_fetched_epoch: state.fetch_epoch,
            };
            targets.push((target, state.cursor.clone()));
        }
        self.brokers_busy.insert(broker);
        // One fetch per broker at a time: the session travels with it.
        let mut session = self.sessions.remove(&broker).unwrap_or_default();
        let shared = self.shared.clone();
        let tx = self.internal_tx.clone();
        let decode = self.decode;
        tokio::spawn(async move {
            let result = fetch_from(&shared, broker, &targets, &mut session, &decode).await;
            let _ = tx.send(Internal::Fetched {
                broker,
                targets,
                result,
                session,
            });
        });
    }

    fn refresh_metadata(&mut self) {
        if self.refreshing_metadata {
            return;
        }
        self.refreshing_metadata = true;
        let mut topics: Vec<String> = self.partitions.keys().map(|tp| tp.topic.clone()).collect();
        topics.sort();
        topics.dedup();
        let shared = self.shared.clone();
        let tx = self.internal_tx.clone();
        tokio::spawn(async move {
            if let Err(e) = shared.cluster.refresh(&topics).await {
                debug!(error = %e, "metadata refresh failed");
            }
            tokio::time::sleep(shared.config.retry_backoff).await;
            let _ = tx.send(Internal::MetadataRefreshed);
        });
    }

    fn on_fetched(
        &mut self,
        broker: i32,
        targets: Vec<(FetchTarget, Arc<super::partition::Cursor>)>,
        result: Result<Vec<(TopicPartition, PartitionFetch)>, FetchFailure>,
    ) {
        self.brokers_busy.remove(&broker);
        for (target, _) in &targets {
            if let Some(state) = self.partitions.get_mut(&target.tp) {
                state.in_flight = false;
            }
        }
        let partitions = match result {
            Ok(partitions) => partitions,
            Err(failure) => {
                match failure {
                    FetchFailure::Connection(e) => debug!(broker, error = %e, "fetch failed"),
                    FetchFailure::Broker(code) => debug!(broker, %code, "fetch refused"),
                }
                let failures = self.broker_failures.entry(broker).or_default();
                *failures = failures.saturating_add(1);
                let backoff = self.retry.backoff(*failures);
                self.broker_retry_at
                    .insert(broker, Instant::now() + backoff);
                self.refresh_metadata();
                return;
            }
        };
        self.broker_failures.remove(&broker);
        let current: HashMap<&TopicPartition, (&Arc<super::partition::Cursor>, i64)> = targets
            .iter()
            .map(|(t, c)| (&t.tp, (c, t.offset)))
            .collect();
        let mut deliveries = Vec::new();
        for (tp, fetched) in partitions {
            let Some(&(cursor, offset)) = current.get(&tp) else {
                continue;
            };
            let Some(state) = self.partitions.get_mut(&tp) else {
                continue;
            };
            if !Arc::ptr_eq(&state.cursor, cursor) || state.fetch_offset != Some(offset) {
                continue; // repositioned while the fetch was out
            }
            deliveries.extend(self.apply_partition(&tp, offset, fetched));
        }
        for delivery in deliveries {
            self.deliver(delivery);
        }
    }

    fn apply_partition(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        fetched: PartitionFetch,
    ) -> Vec<Delivery> {
        let isolation = self.shared.config.isolation_level;
        let reset = self.shared.config.auto_offset_reset;
        let Some(state) = self.partitions.get_mut(tp) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match fetched {
            PartitionFetch::Data {
                batches,
                corrupt,
                aborted,
                high_watermark,
                last_stable_offset,
                bytes,
                diverging,
            } => {
                if let Some(end) = diverging {
                    // Fetch v12: the leader found its log parts from the
                    // history this consumer read (KIP-320).
                    return self
                        .truncated(tp, offset, Some(end.end_offset))
                        .into_iter()
                        .collect();
                }
                state.failures = 0;
                state.high_watermark = high_watermark;
                state.end_offset = match isolation {
                    super::IsolationLevel::ReadCommitted if last_stable_offset >= 0 => {
                        last_stable_offset
                    }
                    _ => high_watermark,
                };
                out.extend(state.apply(isolation, batches, &aborted, bytes));
                if let Some((at, reason)) = corrupt {
                    // Never skipped silently: the partition stops here until
                    // the application seeks past the bad batch.
                    state.halted = true;
                    out.push(Delivery::Error {
                        cursor: Some(state.cursor.clone()),
                        error: ConsumeError::Corrupt {
                            topic: tp.topic.clone(),
                            partition: tp.partition,
                            offset: if at < 0 { offset } else { at },
                            reason,
                        },
                    });
                }
            }
            PartitionFetch::Error(code, _) if code.0 == 1 => {
                // OFFSET_OUT_OF_RANGE: reset per auto.offset.reset.
                if reset == super::OffsetReset::None {
                    state.halted = true;
                    out.push(Delivery::Error {
                        cursor: Some(state.cursor.clone()),
                        error: ConsumeError::NoOffset {
                            topic: tp.topic.clone(),
                            partition: tp.partition,
                            code,
                        },
                    });
                } else {
                    // Still this consumer's partition: the assignment carries over.
                    let assignment = state.cursor.assignment.clone();
                    state.cursor.revoked.store(true, Ordering::Release);
                    self.partitions.remove(tp);
                    self.add_reset(tp.clone(), &assignment);
                }
            }
            PartitionFetch::Error(code, hint) => match code.class() {
                ErrorClass::Retriable | ErrorClass::RefreshMetadata => {
                    debug!(%tp, %code, ?hint, "fetch error; retrying");
                    // FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH: the
                    // leadership moved; check the position with the leader
                    // before fetching again (KIP-320).
                    if code.0 == 74 || code.0 == 75 {
                        state.needs_validation = true;
                    }
                    // KIP-951: the broker named the new leader; go there
                    // at once instead of waiting for Metadata.
                    let hinted = hint.is_some_and(|(leader, epoch)| {
                        self.shared.cluster.apply_leader_hint(
                            &tp.topic,
                            tp.partition,
                            leader,
                            epoch,
                        )
                    });
                    if !hinted {
                        state.back_off(&self.retry);
                        self.shared.cluster.invalidate(&tp.topic);
                        self.refresh_metadata();
                    }
                }
                _ => {
                    state.halted = true;
                    out.push(Delivery::Error {
                        cursor: Some(state.cursor.clone()),
                        error: ConsumeError::Partition {
                            topic: tp.topic.clone(),
                            partition: tp.partition,
                            code,
                        },
                    });
                }
            },
        }
        out
    }

    /// Re-adds `tp` so its position is looked up again (offset out of range).
    fn add_reset(&mut self, tp: TopicPartition, assignment: &Arc<super::partition::Assignment>) {
        let state = PartitionState::awaiting_position_in(assignment);
        let cursor = state.cursor.clone();
        self.partitions.insert(tp.clone(), state);
        let shared = self.shared.clone();
        let tx = self.internal_tx.clone();
        tokio::spawn(async move {
            let result = super::positions::reset_position(&shared, &tp).await;
            let _ = tx.send(Internal::Positions(vec![(tp, cursor, result)]));
        });
    }

    async fn group_event(&mut self, event: GroupEvent) {
        match event {
            GroupEvent::Assigned { partitions, ack } => {
                debug!(?partitions, "partitions assigned");
                self.add(partitions.clone());
                if let Some(listener) = &self.listener {
                    listener.on_assigned(&partitions);
                }
                let _ = ack.send(());
            }
            GroupEvent::Revoked {
                partitions,
                lost: true,
                ack,
            } => {
                debug!(?partitions, "partitions lost");
                if let Some(listener) = &self.listener {
                    listener.on_lost(&partitions);
                }
                self.remove(&partitions);
                let _ = ack.send(());
            }
            GroupEvent::Revoked {
                partitions,
                lost: false,
                ack,
            } => self.revoke(partitions, ack).await,
            GroupEvent::Fatal(code) => {
                self.group = None;
                self.deliver(Delivery::Error {
                    cursor: None,
                    error: ConsumeError::Group(code),
                });
            }
        }
    }

    /// Starts an orderly revocation. The Java consumer revokes inside
    /// `poll()`, so every record it returned before was processed; here the
    /// group runs beside the application, which may be processing a record
    /// of a revoked partition right now. No further record of them is handed
    /// out, and the revocation (commit, listener, giving the partitions up)
    /// waits until the application asks for its next record — at most half
    /// the session timeout, so a cooperative member still heartbeats in time.
    /// Past that, the record in hand is left uncommitted for the next owner.
    async fn revoke(&mut self, partitions: Vec<TopicPartition>, ack: oneshot::Sender<()>) {
        debug!(?partitions, "partitions revoked");
        let in_hand: Vec<Arc<super::partition::Cursor>> = partitions
            .iter()
            .filter_map(|tp| self.partitions.get(tp))
            .filter(|state| state.cursor.stop())
            .map(|state| state.cursor.clone())
            .collect();
        if in_hand.is_empty() {
            self.finish_revocation(&partitions).await;
            let _ = ack.send(());
            return;
        }
        let limit = self.shared.config.session_timeout / 2;
        let internal = self.internal_tx.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + limit;
            for cursor in in_hand {
                let left = deadline.saturating_duration_since(Instant::now());
                if !cursor.settled_within(left).await {
                    warn!(
                        topic = %cursor.topic,
                        partition = cursor.partition,
                        "the application held a record of a revoked partition past half the session timeout; it is left uncommitted"
                    );
                }
            }
            let _ = internal.send(Internal::RevocationReady { partitions, ack });
        });
    }

    /// Commits what was processed of `partitions` (with auto-commit), tells
    /// the listener and gives them up.
    async fn finish_revocation(&mut self, partitions: &[TopicPartition]) {
        if self.auto_commit_enabled() {
            self.commit_now(partitions).await;
        }
        if let Some(listener) = &self.listener {
            listener.on_revoked(partitions);
        }
        self.remove(partitions);
    }

    /// Commits what was consumed of `partitions` and waits for the answer
    /// (behind any commit queued before).
    async fn commit_now(&mut self, partitions: &[TopicPartition]) {
        let offsets = self.consumed_offsets(Some(partitions));
        if offsets.is_empty() {
            return;
        }
        let (reply, answer) = oneshot::channel();
        self.queue_commit(offsets.clone(), None, Some(reply));
        match answer.await {
            Ok(Ok(())) => {
                for (tp, offset) in offsets {
                    if let Some(state) = self.partitions.get_mut(&tp) {
                        state.committed = Some(offset);
                    }
                }
            }
            Ok(Err(e)) => warn!(error = %e, "commit before revocation failed"),
            Err(_) => {}
        }
    }

    async fn close(&mut self) {
        if self.auto_commit_enabled() {
            let all: Vec<TopicPartition> = self.partitions.keys().cloned().collect();
            self.commit_now(&all).await;
        }
        if let Some(group) = self.group.take() {
            group.leave().await;
        }
        let all: Vec<TopicPartition> = self.partitions.keys().cloned().collect();
        self.remove(&all);
    }
}

/// The task that runs queued commits in order.
fn spawn_committer(
    group: Arc<super::group::GroupShared>,
    internal: mpsc::UnboundedSender<Internal>,
) -> mpsc::UnboundedSender<CommitJob> {
    let (tx, mut jobs) = mpsc::unbounded_channel::<CommitJob>();
    tokio::spawn(async move {
        while let Some(job) = jobs.recv().await {
            let result = group.commit(&job.offsets, job.generation.as_ref()).await;
            match &result {
                Ok(()) => {
                    let _ = internal.send(Internal::Committed(job.offsets));
                }
                Err(e) => warn!(error = %e, "offset commit failed"),
            }
            if job.auto {
                let _ = internal.send(Internal::AutoCommitEnded);
            }
            if let Some(reply) = job.reply {
                let _ = reply.send(result);
            }
        }
    });
    tx
}

async fn recv_group(group: &mut Option<GroupLink>) -> Option<GroupEvent> {
    match group {
        Some(link) => link.events.recv().await,
        None => std::future::pending().await,
    }
}

/// One Fetch to `broker`: within its session (KIP-227) when the broker
/// speaks Fetch v7+ and sessions are on, else naming every partition.
async fn fetch_from(
    shared: &Shared,
    broker: i32,
    targets: &[(FetchTarget, Arc<super::partition::Cursor>)],
    session: &mut FetchSession,
    decode: &kafka_wire::records::DecodeOptions,
) -> Result<Vec<(TopicPartition, PartitionFetch)>, FetchFailure> {
    let connection = shared
        .cluster
        .connection(broker)
        .await
        .map_err(FetchFailure::Connection)?;
    let version = connection
        .versions()
        .version_for::<kafka_wire::protocol::messages::FetchRequest>()
        .unwrap_or(-1);
    let targets: Vec<FetchTarget> = targets.iter().map(|(t, _)| t.clone()).collect();
    let in_session = shared.config.fetch_sessions && version >= FIRST_SESSION_VERSION;
    let request = if in_session {
        build_session_request(&shared.config, &session.next_request(&targets), version)
    } else {
        build_request(&shared.config, &targets, version)
    };
    let response = match connection.send(&request).await {
        Ok(response) => response,
        Err(error) => {
            session.on_failure();
            return Err(FetchFailure::Connection(error));
        }
    };
    if in_session {
        let code = kafka_wire::KafkaCode(response.error_code);
        if session.on_answer(code, response.session_id) == SessionAnswer::Restart {
            debug!(broker, %code, "fetch session lost; starting a new one");
            return Ok(Vec::new());
        }
    }
    decode_response(response, decode).map_err(FetchFailure::Broker)
}
