//! The pure part of request-reply: correlation ids, the request and reply
//! headers, and the router that matches replies to waiting requests.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{ConsumerRecord, ProducerRecord};
use bytes::Bytes;
use kafka_wire::records::Header;

use super::{CORRELATION_ID_HEADER, EXPIRED_MEMORY, REPLY_TOPIC_HEADER};

/// What to do with a reply, per [`ReplyRouter::route`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict<T> {
    /// A request is waiting: here is its waiter (now removed).
    Matched(T),
    /// Its request gave up recently.
    Expired,
    /// No such request (or no usable correlation id).
    Unknown,
}

/// Pending requests and recently expired ids; pure, so it is tested without Kafka.
#[derive(Debug)]
pub struct ReplyRouter<T> {
    pending: HashMap<u128, T>,
    expired: HashSet<u128>,
    /// Expiry order, to forget the oldest first.
    expired_order: VecDeque<u128>,
    capacity: usize,
    closed: bool,
}

impl<T> Default for ReplyRouter<T> {
    /// Remembers the last [`EXPIRED_MEMORY`] expired ids.
    fn default() -> Self {
        Self::new(EXPIRED_MEMORY)
    }
}

impl<T> ReplyRouter<T> {
    /// A router remembering at most `capacity` expired ids.
    pub fn new(capacity: usize) -> Self {
        Self {
            pending: HashMap::new(),
            expired: HashSet::new(),
            expired_order: VecDeque::new(),
            capacity,
            closed: false,
        }
    }

    /// Makes `waiter` wait for `id`; false (and nothing registered) once closed.
    pub fn register(&mut self, id: u128, waiter: T) -> bool {
        if !self.closed {
            self.pending.insert(id, waiter);
        }
        !self.closed
    }

    /// Gives up on `id`: true if it was pending, and then a late reply is `Expired`.
    pub fn expire(&mut self, id: u128) -> bool {
        if self.pending.remove(&id).is_none() {
            return false;
        }
        if self.capacity > 0 && self.expired.insert(id) {
            self.expired_order.push_back(id);
            while self.expired_order.len() > self.capacity {
                let oldest = self.expired_order.pop_front().expect("non-empty");
                self.expired.remove(&oldest);
            }
        }
        true
    }

    /// Classifies a reply with correlation id `id` (`None`: absent or malformed).
    pub fn route(&mut self, id: Option<u128>) -> Verdict<T> {
        let Some(id) = id else {
            return Verdict::Unknown;
        };
        match self.pending.remove(&id) {
            Some(waiter) => Verdict::Matched(waiter),
            None if self.expired.contains(&id) => Verdict::Expired,
            None => Verdict::Unknown,
        }
    }

    /// Refuses new requests and drops every waiter (they see the channel close).
    pub fn close(&mut self) {
        self.closed = true;
        self.pending.clear();
    }
}

/// The correlation id of `headers` (the last one, as Kafka's `lastHeader`):
/// `None` when absent or not 16 bytes, as no id of ours can be.
pub fn correlation_id(headers: &[Header]) -> Option<u128> {
    let value = last_header(headers, CORRELATION_ID_HEADER)?;
    Some(u128::from_be_bytes(value.as_ref().try_into().ok()?))
}

fn last_header<'a>(headers: &'a [Header], key: &str) -> Option<&'a Bytes> {
    headers
        .iter()
        .rev()
        .find(|h| h.key == key.as_bytes())?
        .value
        .as_ref()
}

/// `record` with our correlation id and reply topic; same-named headers the
/// caller set are replaced, so the reply cannot go astray.
pub fn with_request_headers(
    mut record: ProducerRecord,
    id: u128,
    reply_topic: &str,
) -> ProducerRecord {
    let ours = [CORRELATION_ID_HEADER, REPLY_TOPIC_HEADER].map(str::as_bytes);
    record.headers.retain(|h| !ours.contains(&h.key.as_ref()));
    record
        .header(CORRELATION_ID_HEADER, id.to_be_bytes().to_vec())
        .header(REPLY_TOPIC_HEADER, reply_topic.to_owned())
}

/// The reply to `request` carrying `value`: to its reply topic, same key and
/// correlation id. `None` when the request lacks either header.
pub fn reply_for(request: &ConsumerRecord, value: Bytes) -> Option<ProducerRecord> {
    let topic = std::str::from_utf8(last_header(&request.headers, REPLY_TOPIC_HEADER)?).ok()?;
    let id = last_header(&request.headers, CORRELATION_ID_HEADER)?.clone();
    let mut reply = ProducerRecord::new(topic, value).header(CORRELATION_ID_HEADER, id);
    reply.key = request.key.clone();
    Some(reply)
}

/// Unique correlation ids: a random 64-bit prefix per generator (tells
/// clients apart) above a counter (never repeats within one).
#[derive(Debug)]
pub struct IdGenerator {
    prefix: u64,
    counter: AtomicU64,
}

impl Default for IdGenerator {
    fn default() -> Self {
        use std::hash::BuildHasher;
        // RandomState is randomly keyed per instance: random bits without an RNG crate.
        let random = std::collections::hash_map::RandomState::new();
        Self {
            prefix: random.hash_one(std::time::SystemTime::now()),
            counter: AtomicU64::new(0),
        }
    }
}

impl IdGenerator {
    /// The next id.
    pub fn next_id(&self) -> u128 {
        (u128::from(self.prefix) << 64) | u128::from(self.counter.fetch_add(1, Ordering::Relaxed))
    }
}
