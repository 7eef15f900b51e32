//! The sender: one background task that drains closed batches to partition
//! leaders, pipelines Produce requests, and settles every batch — acknowledged,
//! retried, or failed with a typed error.
//!
//! Ordering: a partition has at most `max.in.flight.requests.per.connection`
//! batches in flight; a batch that must be retried goes back to the front of
//! its partition in creation order and is resent only once that partition has
//! nothing in flight, so with idempotence retries cannot reorder records.
//!
//! Idempotence (KIP-360): a stamped batch keeps its sequence until it is
//! answered. A partition whose sequence broke is reset on its own (see
//! [`Sequences`]) once it has nothing in flight and none of its batches that
//! may already be in the log would be renumbered; other partitions go on.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_wire::protocol::messages::{InitProducerIdRequest, ProduceResponse};
use kafka_wire::records::ProducerState;
use kafka_wire::{ErrorClass, KafkaCode};
use tokio::task::JoinSet;
use tracing::{debug, warn, Instrument};

use super::accumulator::ClosedBatch;
use super::delivery::BatchAck;
use super::metrics::Counters;
use super::request::{
    complete_request, dispatch_request, partition_answers, Outbound, PartitionAnswer,
};
use super::sequence::{ResetError, SequenceVerdict, Sequences};
use super::shared::Shared;
use super::split::split;
use crate::config::Acks;
use crate::producer::error::ProduceError;

/// The batch is larger than the topic's `max.message.bytes` (or the broker's).
const MESSAGE_TOO_LARGE: KafkaCode = KafkaCode(10);

/// Upper bounds of what a Produce request adds around its batches: header,
/// transactional id, acks, timeout; and per partition (topic name, index,
/// records length). Only used to keep requests within `max.request.size`.
const REQUEST_OVERHEAD: usize = 512;
const PARTITION_OVERHEAD: usize = 320;

/// What one Produce request came back with.
struct Returned {
    broker: i32,
    batches: Vec<Outbound>,
    result: Result<Option<ProduceResponse>, ProduceError>,
}

pub(crate) struct Sender {
    shared: Arc<Shared>,
    sequences: Option<Sequences>,
    in_flight: JoinSet<Returned>,
    broker_in_flight: HashMap<i32, usize>,
    refreshing: Option<tokio::task::JoinHandle<()>>,
    /// InitProducerId retries: when to try next, how many so far.
    next_init_at: Instant,
    init_attempts: u32,
    /// The epoch of the held id is exhausted: ask for a new id.
    fresh_id_needed: bool,
    /// Brokers a connection is being opened to; their batches wait, so that
    /// every request is queued on an open connection in dispatch order.
    connecting: Arc<std::sync::Mutex<std::collections::HashSet<i32>>>,
}

impl Sender {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            sequences: None,
            in_flight: JoinSet::new(),
            broker_in_flight: HashMap::new(),
            refreshing: None,
            next_init_at: Instant::now(),
            init_attempts: 0,
            fresh_id_needed: false,
            connecting: Arc::default(),
        }
    }

    pub async fn run(mut self) {
        loop {
            self.take_assigned_producer();
            if self.needs_producer_id() && Instant::now() >= self.next_init_at {
                match self.init_producer_id().await {
                    Ok(true) => self.init_attempts = 0,
                    // Retriable (broker down, coordinator moving): try again
                    // later; queued batches still expire by delivery.timeout.ms.
                    Ok(false) => {
                        self.init_attempts += 1;
                        self.next_init_at =
                            Instant::now() + self.shared.backoff(self.init_attempts);
                    }
                    Err(error) => {
                        self.fail_everything(error);
                        return;
                    }
                }
            }
            let mut wake_at = self.drain();
            if self.needs_producer_id() {
                wake_at = wake_at.min(self.next_init_at);
            }
            if self.may_exit() {
                return;
            }
            tokio::select! {
                _ = self.shared.wake.notified() => {}
                Some(returned) = self.in_flight.join_next(), if !self.in_flight.is_empty() => {
                    match returned {
                        Ok(returned) => self.settle(returned),
                        Err(panic) => warn!(%panic, "produce request task failed"),
                    }
                }
                _ = tokio::time::sleep_until(wake_at.into()) => {}
            }
        }
    }

    /// Closed with nothing left. Decided under the accumulator lock, which
    /// `send` holds while it checks for close and appends.
    fn may_exit(&self) -> bool {
        let _accumulator = self.shared.accumulator.lock().expect("accumulator lock");
        self.shared.is_closed() && self.shared.pending_batches() == 0 && self.in_flight.is_empty()
    }

    /// Transactional producers get their id from the transaction manager
    /// (InitProducerId with the transactional id); a new one renumbers from 0.
    fn take_assigned_producer(&mut self) {
        let Some(txn) = &self.shared.txn else { return };
        let assigned = txn.assigned_producer.lock().expect("txn lock").take();
        if let Some((id, epoch)) = assigned {
            self.sequences = Some(Sequences::transactional(id, epoch));
        }
    }

    fn needs_producer_id(&self) -> bool {
        self.shared.txn.is_none()
            && self.shared.config.enable_idempotence
            && (self.sequences.is_none() || self.fresh_id_needed)
    }

    /// One InitProducerId for a new id: at start, and when the epoch of the
    /// held id is exhausted. Epoch bumps are local (KIP-360): Apache Kafka
    /// answers an idempotent producer's InitProducerId with a new id anyway,
    /// and a new id would not fence late copies of old attempts.
    /// `Ok(false)`: a retriable failure, try again after a backoff.
    async fn init_producer_id(&mut self) -> Result<bool, ProduceError> {
        let config = &self.shared.config;
        let result = async {
            let connection = self.shared.cluster.any_connection().await?;
            let timeout_ms =
                i32::try_from(config.transaction_timeout.as_millis()).unwrap_or(i32::MAX);
            let request = idempotent_init_request(timeout_ms);
            Ok::<_, ProduceError>(connection.send(&request).await?)
        }
        .await;
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                debug!(%error, "InitProducerId failed; retrying");
                return Ok(false);
            }
        };
        match KafkaCode(response.error_code) {
            KafkaCode::NONE => {
                let (new_id, new_epoch) = (response.producer_id.0, response.producer_epoch);
                debug!(
                    producer_id = new_id,
                    epoch = new_epoch,
                    "producer id initialised"
                );
                match &mut self.sequences {
                    Some(sequences) => sequences.adopt(new_id, new_epoch),
                    None => self.sequences = Some(Sequences::new(new_id, new_epoch)),
                }
                self.fresh_id_needed = false;
                Ok(true)
            }
            code if code.class().is_retriable() => Ok(false),
            code => Err(ProduceError::Fatal(format!("InitProducerId: {code}"))),
        }
    }

    /// Closes due batches, fails expired ones, and sends what may be sent.
    /// Returns when to look again.
    fn drain(&mut self) -> Instant {
        let now = Instant::now();
        let shared = self.shared.clone();
        let config = &shared.config;
        let force = shared.flushing.load(Ordering::Acquire) > 0 || shared.is_closed();
        let mut wake_at = now + Duration::from_millis(100);
        let mut requests: HashMap<i32, Vec<Outbound>> = HashMap::new();
        let mut request_bytes: HashMap<i32, usize> = HashMap::new();
        let mut unknown_leaders = Vec::new();
        let mut connect_to = Vec::new();
        let mut expired = Vec::new();
        {
            let mut accumulator = shared.accumulator.lock().expect("accumulator lock");
            for topic in accumulator.topics.values_mut() {
                for (index, queue) in topic.partitions.iter_mut().enumerate() {
                    let partition = index as i32;
                    // An open batch past its delivery timeout closes, to expire.
                    if queue
                        .open_created()
                        .is_some_and(|created| created + config.delivery_timeout <= now)
                    {
                        queue.close_open();
                    }
                    while queue
                        .closed
                        .front()
                        .is_some_and(|b| b.created + config.delivery_timeout <= now)
                    {
                        expired.push(queue.closed.pop_front().expect("checked"));
                    }
                    let open_ready = match queue.open_ready_at(config.linger, force) {
                        Some(ready_at) if ready_at > now => {
                            wake_at = wake_at.min(ready_at);
                            false
                        }
                        Some(_) => true,
                        None => false,
                    };
                    if queue.closed.is_empty() && !open_ready {
                        continue;
                    }
                    let waiting_for_id = config.enable_idempotence && self.sequences.is_none();
                    if waiting_for_id || queue.in_flight >= config.max_in_flight {
                        continue;
                    }
                    if queue.in_flight > 0
                        && self
                            .sequences
                            .as_ref()
                            .is_some_and(|s| s.awaiting_first_ack(&(topic.name.clone(), partition)))
                    {
                        continue;
                    }
                    if !self.ready_after_reset(&topic.name, partition, queue) {
                        continue;
                    }
                    if let Some(front) = queue.closed.front() {
                        if let Some(retry_at) = front.retry_at.filter(|&at| at > now) {
                            wake_at = wake_at.min(retry_at);
                            continue;
                        }
                        // A retry waits for the partition's in-flight batches: order first.
                        if front.attempts > 0 && queue.in_flight > 0 {
                            continue;
                        }
                    }
                    let Some(leader) = shared.cluster.leader(&topic.name, partition) else {
                        unknown_leaders.push(topic.name.to_string());
                        continue;
                    };
                    if shared.cluster.healthy(leader).is_none() {
                        connect_to.push(leader);
                        continue;
                    }
                    if self.broker_in_flight.get(&leader).copied().unwrap_or(0)
                        >= config.max_in_flight
                    {
                        continue;
                    }
                    // max.request.size bounds the request, not only a record:
                    // a batch that does not fit goes in the next request.
                    let bytes = request_bytes.entry(leader).or_insert(REQUEST_OVERHEAD);
                    let batch_bytes = queue.next_batch_len().unwrap_or(0) + PARTITION_OVERHEAD;
                    if *bytes > REQUEST_OVERHEAD && *bytes + batch_bytes > config.max_request_size {
                        wake_at = now;
                        continue;
                    }
                    *bytes += batch_bytes;
                    // The open batch closes only now that it can go: until
                    // then it kept filling.
                    if queue.closed.is_empty() {
                        queue.close_open();
                    }
                    let request = requests.entry(leader).or_default();
                    let mut batch = queue.closed.pop_front().expect("checked");
                    let restamp = self.stamp(&topic.name, partition, &mut batch);
                    batch.sent_alone = queue.in_flight == 0;
                    batch.awaiting_answer = true;
                    queue.in_flight += 1;
                    request.push(Outbound {
                        topic: topic.name.clone(),
                        partition,
                        batch,
                        restamp,
                    });
                }
            }
        }
        for batch in expired {
            self.expire(batch, now);
        }
        // metadata.max.age.ms: leadership moves without any error reaching
        // this producer (a rolling restart of an idle producer's leaders).
        let max_age = config.metadata_max_age;
        match shared.cluster.last_refresh() {
            Some(refreshed) if refreshed + max_age > now => {
                wake_at = wake_at.min(refreshed + max_age);
            }
            Some(_) => unknown_leaders.extend(shared.cluster.known_topics()),
            None => {}
        }
        if !unknown_leaders.is_empty() {
            self.refresh_metadata(unknown_leaders);
        }
        for broker in connect_to {
            self.open_connection(broker);
        }
        for (broker, batches) in requests.into_iter().filter(|(_, b)| !b.is_empty()) {
            self.dispatch(broker, batches);
        }
        wake_at
    }

    /// A partition waiting for its KIP-360 reset may send only when the
    /// reset has been done or when its front batch must keep its stamp.
    /// The reset waits until the partition has nothing in flight (every
    /// attempt answered) and renumbers no batch that may be in the log:
    /// such a batch is resent with its old stamp until the broker answers
    /// for it (acknowledged, duplicate, or refused at the head).
    fn ready_after_reset(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        queue: &super::accumulator::PartitionQueue,
    ) -> bool {
        let Some(sequences) = self.sequences.as_mut() else {
            return true;
        };
        let tp = (topic.clone(), partition);
        if !sequences.reset_requested(&tp) {
            return true;
        }
        if queue.in_flight > 0 {
            return false;
        }
        let renumbering_is_safe = queue.closed.iter().all(|batch| {
            batch.stamp == ProducerState::NONE
                || !batch.in_doubt
                || !sequences.is_current(&tp, batch.stamp)
                || sequences.provably_unwritten(&tp, batch.stamp)
        });
        if !renumbering_is_safe {
            return true;
        }
        match sequences.reset(&tp) {
            Ok((producer_id, epoch)) => {
                warn!(topic = %topic, partition, producer_id, epoch, "partition reset under a new epoch (KIP-360)");
                Counters::add(&self.shared.counters.epoch_bumps, 1);
                true
            }
            Err(ResetError::EpochExhausted) => {
                self.fresh_id_needed = true;
                false
            }
        }
    }

    /// Gives a batch its sequence on first send, or a new one after its
    /// partition was reset. Returns whether sealed bytes need restamping.
    fn stamp(&mut self, topic: &Arc<str>, partition: i32, batch: &mut ClosedBatch) -> bool {
        let Some(sequences) = self.sequences.as_mut() else {
            return false;
        };
        let tp = (topic.clone(), partition);
        if batch.stamp != ProducerState::NONE && sequences.is_current(&tp, batch.stamp) {
            return false;
        }
        batch.stamp = sequences.assign(&tp, batch.record_count);
        batch.sealed.is_some()
    }

    fn dispatch(&mut self, broker: i32, batches: Vec<Outbound>) {
        *self.broker_in_flight.entry(broker).or_default() += 1;
        let counters = &self.shared.counters;
        Counters::add(&counters.requests_in_flight, 1);
        Counters::add(&counters.batches_sent, batches.len() as u64);
        let span = tracing::debug_span!("produce", broker, batches = batches.len());
        let shared = self.shared.clone();
        let mut batches = batches;
        let in_flight = dispatch_request(&shared, broker, &mut batches);
        self.in_flight.spawn(
            async move {
                let result = complete_request(in_flight).await;
                let bytes: usize = batches
                    .iter()
                    .filter_map(|b| b.batch.sealed.as_ref())
                    .map(|b| b.len())
                    .sum();
                Counters::add(&shared.counters.bytes_sent, bytes as u64);
                Returned {
                    broker,
                    batches,
                    result,
                }
            }
            .instrument(span),
        );
    }

    /// Opens a connection to `broker` in the background (one attempt at a
    /// time), then wakes the sender.
    fn open_connection(&mut self, broker: i32) {
        if !self
            .connecting
            .lock()
            .expect("connecting lock")
            .insert(broker)
        {
            return;
        }
        let shared = self.shared.clone();
        let connecting = self.connecting.clone();
        tokio::spawn(async move {
            match shared.cluster.connection(broker).await {
                Ok(_) => {}
                // Refused without I/O: the broker failed a moment ago and the
                // refresh after that failure was made already.
                Err(kafka_wire::ConnError::Backoff { retry_in, .. }) => {
                    tokio::time::sleep(retry_in).await;
                }
                Err(error) => {
                    debug!(broker, %error, "connecting to broker failed");
                    // The broker may be gone for good. Its partitions get new
                    // leaders only once the controller notices, after the refresh
                    // that followed the broken connection: look again after every
                    // failed connect, as the Java client does.
                    let topics = shared.cluster.known_topics();
                    if let Err(error) = shared.cluster.refresh(&topics).await {
                        debug!(%error, "metadata refresh after a failed connect failed");
                    }
                    tokio::time::sleep(shared.config.retry_backoff).await;
                }
            }
            connecting.lock().expect("connecting lock").remove(&broker);
            shared.wake.notify_one();
        });
    }

    fn refresh_metadata(&mut self, topics: Vec<String>) {
        if self
            .refreshing
            .as_ref()
            .is_some_and(|task| !task.is_finished())
        {
            return;
        }
        let shared = self.shared.clone();
        self.refreshing = Some(tokio::spawn(async move {
            if let Err(error) = shared.cluster.refresh(&topics).await {
                debug!(%error, "metadata refresh failed");
                tokio::time::sleep(shared.config.retry_backoff).await;
            }
            shared.wake.notify_one();
        }));
    }

    /// Settles every batch of a returned request.
    fn settle(&mut self, returned: Returned) {
        Counters::sub(&self.shared.counters.requests_in_flight, 1);
        if let Some(count) = self.broker_in_flight.get_mut(&returned.broker) {
            *count = count.saturating_sub(1);
        }
        let acks_none = self.shared.config.acks == Acks::None;
        match returned.result {
            Err(error) => {
                // Disconnected or timed out: leaders may have moved.
                let topics: Vec<String> = returned
                    .batches
                    .iter()
                    .map(|b| b.topic.to_string())
                    .collect();
                self.refresh_metadata(topics);
                for outbound in returned.batches {
                    self.retry_or_fail(outbound, error.clone(), true);
                }
            }
            Ok(None) if acks_none => {
                for outbound in returned.batches {
                    self.finish(
                        outbound,
                        Ok(BatchAck {
                            base_offset: -1,
                            log_append_time: None,
                        }),
                    );
                }
            }
            Ok(response) => {
                let (answers, brokers) = partition_answers(response.unwrap_or_default());
                if !brokers.is_empty() {
                    self.shared.cluster.learn_brokers(brokers);
                }
                for outbound in returned.batches {
                    let answer = answers
                        .get(&(outbound.topic.clone(), outbound.partition))
                        .cloned();
                    self.settle_partition(outbound, answer);
                }
            }
        }
    }

    fn settle_partition(&mut self, outbound: Outbound, answer: Option<PartitionAnswer>) {
        let Some(answer) = answer else {
            let error =
                ProduceError::Fatal("the produce response omitted a partition it was sent".into());
            return self.retry_or_fail(outbound, error, true);
        };
        let code = KafkaCode(answer.error_code);
        if code.is_ok() {
            return self.acknowledge(outbound, answer.base_offset, answer.log_append_time);
        }
        let answer_hint = answer.leader_hint;
        if code == MESSAGE_TOO_LARGE && outbound.batch.record_count > 1 {
            return self.split_and_requeue(outbound, answer.message);
        }
        let verdict = self
            .sequences
            .as_ref()
            .map_or(SequenceVerdict::NotSequenceRelated, |s| {
                s.verdict(
                    &(outbound.topic.clone(), outbound.partition),
                    outbound.batch.stamp,
                    code,
                    outbound.batch.sent_alone,
                )
            });
        let error = ProduceError::Broker {
            topic: outbound.topic.clone(),
            partition: outbound.partition,
            code,
            message: answer.message,
        };
        if self.shared.txn.is_some() && verdict != SequenceVerdict::AlreadyWritten {
            return self.settle_transactional_error(outbound, error, code, verdict, answer_hint);
        }
        match verdict {
            SequenceVerdict::AlreadyWritten => self.acknowledge(outbound, answer.base_offset, None),
            // After 47/90 an earlier attempt of a batch in doubt may be in the
            // log: keep its stamp and let delivery.timeout.ms report it as
            // unknown rather than renumber it.
            SequenceVerdict::ResetPartition
                if outbound.batch.in_doubt && matches!(code.0, 47 | 90) =>
            {
                self.retry_or_fail(outbound, error, true)
            }
            SequenceVerdict::ResetPartition => {
                let mut outbound = outbound;
                let tp = (outbound.topic.clone(), outbound.partition);
                // At the head the leader has no attempt of this batch, nor of
                // any after it. Behind a later batch it took first, an older
                // attempt may still be in its log: the batch stays in doubt
                // and keeps its stamp (see `ready_after_reset`).
                let behind = self
                    .sequences
                    .as_ref()
                    .is_some_and(|s| s.is_behind(&tp, outbound.batch.stamp));
                if !behind {
                    outbound.batch.in_doubt = false;
                }
                warn!(topic = %outbound.topic, partition = outbound.partition, %code, "partition needs a new epoch (KIP-360)");
                // In doubt, it is not renumbered: delivery.timeout.ms ends it
                // as outcome unknown.
                if !outbound.batch.in_doubt {
                    if let Some(sequences) = self.sequences.as_mut() {
                        sequences.request_reset(&tp, outbound.batch.stamp);
                    }
                }
                // Resent with its stamp, it would get the same answer at once.
                let backoff = outbound.batch.in_doubt;
                self.requeue(outbound, error, backoff);
            }
            // Behind a batch that failed, it goes right after it. Sent
            // alone, the same attempt would get the same answer: back off.
            SequenceVerdict::RetryInOrder => {
                let alone = outbound.batch.sent_alone;
                self.requeue(outbound, error, alone)
            }
            SequenceVerdict::NotSequenceRelated => {
                if code.class() == ErrorClass::RefreshMetadata {
                    self.follow_leader(&outbound, answer_hint);
                }
                let retriable = code.class().is_retriable();
                self.retry_or_fail(outbound, error, retriable);
            }
        }
    }

    /// Inside a transaction a sequence problem is not repaired by the sender:
    /// the transaction fails (abortable) and the manager bumps the epoch when
    /// it is aborted. PRODUCER_FENCED is fatal; INVALID_PRODUCER_EPOCH is
    /// abortable (KIP-588): the coordinator bumped the epoch when it aborted a
    /// transaction that outlived `transaction.timeout.ms`, and re-initialising
    /// after the abort recovers. Once the transaction has failed, later
    /// batches are not retried either: the abort discards them anyway.
    fn settle_transactional_error(
        &mut self,
        outbound: Outbound,
        error: ProduceError,
        code: KafkaCode,
        verdict: SequenceVerdict,
        answer_hint: Option<(i32, i32)>,
    ) {
        if code == KafkaCode(90) {
            warn!(%code, "transactional producer fenced");
            self.finish(outbound, Err(error.clone()));
            return self.fail_everything(ProduceError::Fatal(format!("fenced: {code}")));
        }
        if code == KafkaCode(47) {
            warn!(%code, "the coordinator moved to a newer epoch (transaction timed out?): the transaction must be aborted (KIP-588)");
            if let Some(txn) = &self.shared.txn {
                txn.epoch_bumped_by_coordinator
                    .store(true, std::sync::atomic::Ordering::Release);
            }
            return self.finish(outbound, Err(error));
        }
        let failed_already = self
            .shared
            .txn
            .as_ref()
            .is_some_and(|t| t.failure.lock().expect("txn lock").is_some());
        match verdict {
            SequenceVerdict::RetryInOrder if !failed_already => {
                self.requeue(outbound, error, false)
            }
            SequenceVerdict::NotSequenceRelated if !failed_already => {
                if code.class() == ErrorClass::RefreshMetadata {
                    self.follow_leader(&outbound, answer_hint);
                }
                let retriable = code.class().is_retriable();
                self.retry_or_fail(outbound, error, retriable);
            }
            _ => self.finish(outbound, Err(error)),
        }
    }

    /// The batch's broker does not lead its partition (any more): take the
    /// leader the answer named (KIP-951), or forget the topic's leaders and
    /// ask Metadata.
    fn follow_leader(&mut self, outbound: &Outbound, hint: Option<(i32, i32)>) {
        let hinted = hint.is_some_and(|(leader, epoch)| {
            self.shared.cluster.apply_leader_hint(
                &outbound.topic,
                outbound.partition,
                leader,
                epoch,
            )
        });
        if !hinted {
            self.shared.cluster.invalidate(&outbound.topic);
            self.refresh_metadata(vec![outbound.topic.to_string()]);
        }
    }

    fn acknowledge(&mut self, outbound: Outbound, base_offset: i64, log_append_time: Option<i64>) {
        if let Some(sequences) = self.sequences.as_mut() {
            sequences.acknowledge(
                &(outbound.topic.clone(), outbound.partition),
                outbound.batch.stamp,
                outbound.batch.record_count,
            );
        }
        self.finish(
            outbound,
            Ok(BatchAck {
                base_offset,
                log_append_time,
            }),
        );
    }

    /// MESSAGE_TOO_LARGE for a batch of several records: the broker wrote
    /// none of it, so its pieces are resent in its place, with its sequences.
    /// Later batches of the partition already in flight come back
    /// OUT_OF_ORDER and are resent after the pieces.
    fn split_and_requeue(&mut self, outbound: Outbound, message: Option<String>) {
        let config = &self.shared.config;
        let pieces = split(
            &outbound.batch,
            config.compression,
            self.shared.txn.is_some(),
            config.batch_size,
        );
        let pieces = match pieces {
            Ok(pieces) => pieces,
            Err(why) => {
                debug!(?why, "a batch refused as too large cannot be split");
                let error = ProduceError::Broker {
                    topic: outbound.topic.clone(),
                    partition: outbound.partition,
                    code: MESSAGE_TOO_LARGE,
                    message,
                };
                return self.finish(outbound, Err(error));
            }
        };
        debug!(topic = %outbound.topic, partition = outbound.partition, pieces = pieces.len(), "batch refused as too large: split");
        Counters::add(&self.shared.counters.batches_split, 1);
        self.shared
            .batches_added(outbound.batch.outcome.id, pieces.len() - 1);
        let mut accumulator = self.shared.accumulator.lock().expect("accumulator lock");
        let (_, queue) = accumulator.queue(&outbound.topic, outbound.partition);
        queue.in_flight = queue.in_flight.saturating_sub(1);
        for piece in pieces {
            queue.requeue(piece);
        }
        // The refused batch is settled through its pieces: dropping it
        // reports nothing.
    }

    fn retry_or_fail(&mut self, outbound: Outbound, error: ProduceError, retriable: bool) {
        let config = &self.shared.config;
        let attempts = outbound.batch.attempts + 1;
        let timed_out = outbound.batch.created + config.delivery_timeout <= Instant::now();
        if !retriable || attempts > config.retries || timed_out {
            let error = if timed_out && retriable {
                self.timeout_error(&outbound.batch, error.to_string())
            } else {
                error
            };
            return self.finish(outbound, Err(error));
        }
        self.requeue(outbound, error, true);
    }

    fn requeue(&mut self, mut outbound: Outbound, error: ProduceError, backoff: bool) {
        Counters::add(&self.shared.counters.retries, 1);
        outbound.batch.attempts += 1;
        outbound.batch.awaiting_answer = false;
        outbound.batch.in_doubt |= error.outcome_unknown();
        outbound.batch.last_error = Some(error.to_string());
        outbound.batch.retry_at =
            backoff.then(|| Instant::now() + self.shared.backoff(outbound.batch.attempts));
        let mut accumulator = self.shared.accumulator.lock().expect("accumulator lock");
        let (_, queue) = accumulator.queue(&outbound.topic, outbound.partition);
        queue.in_flight = queue.in_flight.saturating_sub(1);
        queue.requeue(outbound.batch);
    }

    fn finish(&mut self, outbound: Outbound, result: Result<BatchAck, ProduceError>) {
        {
            let mut accumulator = self.shared.accumulator.lock().expect("accumulator lock");
            let (_, queue) = accumulator.queue(&outbound.topic, outbound.partition);
            queue.in_flight = queue.in_flight.saturating_sub(1);
        }
        if result.is_err() {
            self.after_sequence_gap(&outbound.batch);
        }
        self.shared.complete_batch(&outbound.batch, result);
    }

    /// A stamped batch that failed for good leaves a hole in its partition's
    /// sequence: every later batch would be OUT_OF_ORDER. That partition (only)
    /// restarts at 0 under a new epoch, as the Java producer does (KIP-360).
    fn after_sequence_gap(&mut self, batch: &ClosedBatch) {
        // Transactional producers re-initialise when the transaction aborts.
        if self.shared.txn.is_some() || batch.stamp == ProducerState::NONE {
            return;
        }
        if let Some(sequences) = self.sequences.as_mut() {
            let tp = (batch.outcome.topic.clone(), batch.outcome.partition);
            sequences.failed_for_good(&tp, batch.stamp, batch.record_count, batch.in_doubt);
        }
    }

    fn timeout_error(&self, batch: &ClosedBatch, last_error: String) -> ProduceError {
        ProduceError::DeliveryTimeout {
            elapsed_ms: batch.created.elapsed().as_millis(),
            last_error,
            outcome_unknown: batch.in_doubt,
        }
    }

    fn expire(&mut self, batch: ClosedBatch, _now: Instant) {
        let last = batch
            .last_error
            .clone()
            .unwrap_or_else(|| "never sent (no leader or no buffer)".into());
        let error = self.timeout_error(&batch, last);
        self.after_sequence_gap(&batch);
        self.shared.complete_batch(&batch, Err(error));
    }

    fn fail_everything(&mut self, error: ProduceError) {
        // Closed first, so no send appends behind the drain below.
        self.shared.fail(error.clone());
        let batches: Vec<ClosedBatch> = {
            let mut accumulator = self.shared.accumulator.lock().expect("accumulator lock");
            let mut all = Vec::new();
            for topic in accumulator.topics.values_mut() {
                for queue in &mut topic.partitions {
                    queue.close_open();
                    all.extend(queue.closed.drain(..));
                }
            }
            all
        };
        for batch in batches {
            self.shared.complete_batch(&batch, Err(error.clone()));
        }
    }
}

/// InitProducerId of an idempotent (non-transactional) producer, for a new
/// id. The transactional id is null, not the empty string the message's
/// default holds: Apache Kafka refuses an empty one with INVALID_REQUEST.
fn idempotent_init_request(timeout_ms: i32) -> InitProducerIdRequest {
    InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(timeout_ms)
        .with_producer_id((-1).into())
        .with_producer_epoch(-1)
}

#[cfg(test)]
mod init_request_tests {
    use super::idempotent_init_request;

    /// Found on Apache Kafka: the default held `Some("")`, which Kafka
    /// answers with INVALID_REQUEST (nisshi accepted it).
    #[test]
    fn an_idempotent_producer_sends_a_null_transactional_id() {
        let request = idempotent_init_request(60_000);
        assert_eq!(request.transactional_id, None);
        assert_eq!(request.producer_id.0, -1);
        assert_eq!(request.producer_epoch, -1);
    }
}
