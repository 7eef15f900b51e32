//! Request-reply over Kafka, wire-compatible with Spring's `ReplyingKafkaTemplate`.
//!
//! A request carries a correlation id ([`CORRELATION_ID_HEADER`], 16 bytes)
//! and the topic to answer on ([`REPLY_TOPIC_HEADER`]). [`RequestReplyClient`]
//! reads every partition of its reply topic from the end and hands each reply
//! to the request waiting for its id; replies nobody waits for are counted
//! (`expired` when their request timed out recently, `unknown` otherwise) and
//! dropped. [`serve`] is the answering side.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{
    ConsumeError, Consumer, ConsumerRecord, DeliveryFuture, ProduceError, Producer, ProducerRecord,
    TopicPartition,
};
use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod router;
pub use router::{
    correlation_id, reply_for, with_request_headers, IdGenerator, ReplyRouter, Verdict,
};

/// Header holding the correlation id (Spring's `KafkaHeaders.CORRELATION_ID`).
pub const CORRELATION_ID_HEADER: &str = "kafka_correlationId";
/// Header naming the reply topic (Spring's `KafkaHeaders.REPLY_TOPIC`).
pub const REPLY_TOPIC_HEADER: &str = "kafka_replyTopic";
/// Timed-out ids remembered to tell a late reply from an unknown one.
pub const EXPIRED_MEMORY: usize = 10_000;

/// Why a request got no reply.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No reply within the timeout; a reply arriving later counts as expired.
    #[error("no reply within {after_ms} ms")]
    Timeout {
        /// The timeout that passed.
        after_ms: u64,
    },
    /// The request (or a reply, in [`serve`]) was not written.
    #[error("produce: {0}")]
    Produce(#[from] ProduceError),
    /// The client was closed, or its reply reader stopped.
    #[error("request-reply client closed")]
    Closed,
    /// Reading replies (or requests, in [`serve`]) failed.
    #[error("consume: {0}")]
    Consume(#[from] ConsumeError),
}

/// Counters of a [`RequestReplyClient`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestReplyStats {
    /// Requests acknowledged by the broker.
    pub sent: u64,
    /// Replies handed to a waiting request.
    pub replied: u64,
    /// Requests that ended in [`RequestError::Timeout`].
    pub timed_out: u64,
    /// Dropped replies whose id was never pending here (or is long forgotten).
    pub unknown_replies: u64,
    /// Dropped replies that came after their request gave up.
    pub expired_replies: u64,
}

/// The router and the counters, under one lock: every event touches both.
#[derive(Default)]
struct State {
    router: ReplyRouter<oneshot::Sender<ConsumerRecord>>,
    stats: RequestReplyStats,
}

type Shared = Mutex<State>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, State> {
    shared.lock().expect("request-reply lock")
}

fn deliver(shared: &Shared, reply: ConsumerRecord) {
    let mut state = lock(shared);
    let (topic, partition, offset) = (reply.topic.clone(), reply.partition, reply.offset);
    match state.router.route(correlation_id(&reply.headers)) {
        Verdict::Matched(waiter) => match waiter.send(reply) {
            Ok(()) => state.stats.replied += 1,
            // The requester stopped waiting just now.
            Err(_) => state.stats.expired_replies += 1,
        },
        Verdict::Expired => {
            tracing::debug!(%topic, partition, offset, "dropping a reply that came after its request timed out");
            state.stats.expired_replies += 1;
        }
        Verdict::Unknown => {
            tracing::warn!(%topic, partition, offset, "dropping a reply with an unknown correlation id");
            state.stats.unknown_replies += 1;
        }
    }
}

/// Expires its request when dropped: on timeout, error, or a caller that stops waiting.
struct PendingGuard<'a>(&'a Shared, u128);

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(self.0).router.expire(self.1);
    }
}

/// Sends requests and awaits their replies. Share it behind an `Arc`.
pub struct RequestReplyClient {
    producer: Arc<Producer>,
    reply_topic: String,
    ids: IdGenerator,
    shared: Arc<Shared>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Consumer>,
}

impl RequestReplyClient {
    /// Reads every partition of `reply_topic` from its end, without a group
    /// (`group.id` and `auto.offset.reset` in `consumer_properties` are
    /// overridden). Returns once every position is known, so no reply to a
    /// later request can slip in before the start (waits up to `request.timeout.ms`).
    pub async fn new(
        producer: Arc<Producer>,
        consumer_properties: Vec<(String, String)>,
        reply_topic: String,
    ) -> Result<Self, RequestError> {
        let overrides = [("group.id", ""), ("auto.offset.reset", "latest")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()));
        // Later properties win.
        let consumer = Consumer::from_properties(consumer_properties.into_iter().chain(overrides))?;
        let partitions = consumer.partition_count(&reply_topic).await?;
        let all = (0..partitions).map(|p| TopicPartition::new(&reply_topic, p));
        consumer.assign(all.collect()).await?;
        let wait = consumer.config().request_timeout;
        let deadline = Instant::now() + wait;
        loop {
            let positions = consumer.assignment().await?;
            if positions.iter().all(|(_, position)| position.is_some()) {
                break;
            }
            if Instant::now() >= deadline {
                consumer.close().await;
                return Err(ConsumeError::Timeout(wait.as_millis()).into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let shared = Arc::new(Shared::default());
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(read_replies(consumer, shared.clone(), stopped));
        Ok(Self {
            producer,
            reply_topic,
            ids: IdGenerator::default(),
            shared,
            stop,
            task,
        })
    }

    /// Sends `record` with the request headers and waits for the broker's
    /// acknowledgement, then up to `timeout` for the reply.
    pub async fn request(
        &self,
        record: ProducerRecord,
        timeout: Duration,
    ) -> Result<ConsumerRecord, RequestError> {
        let id = self.ids.next_id();
        let (waiter, mut reply) = oneshot::channel();
        // Registered before sending: the reply may come before `send` returns.
        if !lock(&self.shared).router.register(id, waiter) {
            return Err(RequestError::Closed);
        }
        let _guard = PendingGuard(&self.shared, id);
        let record = with_request_headers(record, id, &self.reply_topic);
        self.producer.send(record).await?.await?;
        lock(&self.shared).stats.sent += 1;
        match tokio::time::timeout(timeout, &mut reply).await {
            Ok(result) => result.map_err(|_| RequestError::Closed),
            Err(_) => {
                // Lost the race to a reply routed meanwhile: take it.
                let mut state = lock(&self.shared);
                if !state.router.expire(id) {
                    if let Ok(record) = reply.try_recv() {
                        return Ok(record);
                    }
                }
                state.stats.timed_out += 1;
                let after_ms = timeout.as_millis() as u64;
                Err(RequestError::Timeout { after_ms })
            }
        }
    }

    /// The counters now.
    pub fn stats(&self) -> RequestReplyStats {
        lock(&self.shared).stats
    }

    /// Stops reading replies (waiting requests get [`RequestError::Closed`])
    /// and closes the reply consumer. The producer is the caller's.
    pub async fn close(self) {
        let _ = self.stop.send(());
        if let Ok(consumer) = self.task.await {
            consumer.close().await;
        }
    }
}

async fn read_replies(
    mut consumer: Consumer,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
) -> Consumer {
    loop {
        // `recv` is cancel-safe: a record it has taken stays in the consumer.
        let next = tokio::select! {
            biased;
            _ = &mut stop => break, // close(), or the client was dropped
            next = consumer.recv() => next,
        };
        match next {
            Ok(reply) => deliver(&shared, reply),
            Err(ConsumeError::Closed) => break,
            Err(error) => tracing::warn!(%error, "reading replies"),
        }
    }
    lock(&shared).router.close();
    consumer
}

/// What [`serve`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServeStats {
    /// Replies written (and acknowledged).
    pub replied: u64,
    /// Records without a reply topic or correlation id header: not requests.
    pub skipped: u64,
    /// Requests the handler chose not to answer (`None`).
    pub unanswered: u64,
}

/// Most replies awaited at once before reading on.
const MAX_UNACKED: usize = 256;

/// Answers requests from `consumer` (subscribed or assigned by the caller)
/// with `handler`'s value, to each request's reply topic, with its key and
/// correlation id. Returns once no record arrives for `idle`. Retriable read
/// errors are logged and skipped; others end it.
///
/// Replies are acknowledged before `serve` blocks for more input; with a
/// `group.id` and `enable.auto.commit=false` it then commits, so a request
/// counts as processed only once its reply is written (at least once).
pub async fn serve<H>(
    consumer: &mut Consumer,
    producer: &Producer,
    idle: Duration,
    mut handler: H,
) -> Result<ServeStats, RequestError>
where
    H: FnMut(&ConsumerRecord) -> Option<Bytes>,
{
    let mut stats = ServeStats::default();
    let mut unacked = Vec::new();
    // Records taken since replies were last settled.
    let mut dirty = false;
    loop {
        // Poll without waiting while work is pending; settle it before blocking.
        let wait = if dirty { Duration::ZERO } else { idle };
        let request = match consumer.poll(wait).await {
            Some(Ok(request)) => request,
            Some(Err(error)) if error.is_retriable() => {
                tracing::warn!(%error, "reading requests");
                continue;
            }
            Some(Err(error)) => return Err(error.into()),
            None if !dirty => return Ok(stats),
            None => {
                settle(&mut unacked).await?;
                let config = consumer.config();
                if config.group_id.is_some() && !config.enable_auto_commit {
                    consumer.commit().await?;
                }
                dirty = false;
                continue;
            }
        };
        dirty = true;
        let Some(reply) = reply_for(&request, Bytes::new()) else {
            tracing::debug!(topic = %request.topic, offset = request.offset, "skipping a record without request headers");
            stats.skipped += 1;
            continue;
        };
        match handler(&request) {
            Some(value) => {
                let reply = ProducerRecord {
                    value: Some(value),
                    ..reply
                };
                unacked.push(producer.send(reply).await?);
                stats.replied += 1;
            }
            None => stats.unanswered += 1,
        }
        if unacked.len() >= MAX_UNACKED {
            settle(&mut unacked).await?;
        }
    }
}

async fn settle(unacked: &mut Vec<DeliveryFuture>) -> Result<(), ProduceError> {
    for delivery in unacked.drain(..) {
        delivery.await?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "request_reply_tests.rs"]
mod tests;
