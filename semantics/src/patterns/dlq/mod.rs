//! Dead-letter queue: where records that failed for good go, with why.
//!
//! The envelope is the record itself plus headers, as Kafka Connect and Spring
//! Kafka do it: key, value and headers stay byte-for-byte what was consumed,
//! so a DLQ record can be replayed to the original topic as is, and tools
//! that know nothing of this module still see the original payload. The
//! context travels in `dlq.*` headers (values ASCII decimal or UTF-8),
//! appended after the original headers in the order of [`header::ALL`].
//!
//! - `envelope`: the pure record ⇄ envelope mapping ([`DeadLetter`]).
//! - [`DeadLetterQueue`]: writes envelopes and waits for the acknowledgement.
//! - [`OnFailure`]: what a processor does when its handler fails.

mod envelope;

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use crate::{ConsumerRecord, Delivery, ProduceError, Producer, ProducerRecord};

pub use envelope::{header, DeadLetter, Envelope, EnvelopeError};

use super::retry::RetryPolicy;

/// What kind of failure sent a record to the DLQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureClass {
    /// The handler failed and the policy does not retry (`handler`).
    Handler,
    /// The handler kept failing until the retry policy gave up (`retries-exhausted`).
    RetriesExhausted,
    /// The failure can never succeed on retry, e.g. undecodable input (`non-retriable`).
    NonRetriable,
    /// Any other class, as written by another tool or a later version.
    Other(String),
}

impl FailureClass {
    /// The header form: `handler`, `retries-exhausted`, `non-retriable`, or the text.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Handler => "handler",
            Self::RetriesExhausted => "retries-exhausted",
            Self::NonRetriable => "non-retriable",
            Self::Other(other) => other,
        }
    }

    /// The class a header names; unknown text becomes [`FailureClass::Other`].
    pub fn from_header(text: &str) -> Self {
        match text {
            "handler" => Self::Handler,
            "retries-exhausted" => Self::RetriesExhausted,
            "non-retriable" => Self::NonRetriable,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a record failed for good. Times travel as whole milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Human-readable cause, e.g. the handler's error message.
    pub reason: String,
    /// Kind of failure.
    pub class: FailureClass,
    /// Attempts made, the first included.
    pub attempts: u32,
    /// When the first attempt started.
    pub first_attempt: SystemTime,
    /// When the last attempt failed.
    pub last_attempt: SystemTime,
}

/// Writes failed records to one DLQ topic and waits for each to be acknowledged.
pub struct DeadLetterQueue {
    /// The producer DLQ records go through (may be shared with other writes).
    pub producer: Arc<Producer>,
    /// The DLQ topic.
    pub topic: String,
}

impl DeadLetterQueue {
    /// A DLQ writing to `topic`.
    pub fn new(producer: Arc<Producer>, topic: impl Into<String>) -> Self {
        Self {
            producer,
            topic: topic.into(),
        }
    }

    /// Sends `record`'s envelope and waits until the broker acknowledges it.
    /// An error means the record is not in the DLQ: the caller must not
    /// commit past it (a lost DLQ write would lose the record silently).
    pub async fn send(
        &self,
        record: &ConsumerRecord,
        failure: &Failure,
    ) -> Result<Delivery, ProduceError> {
        let envelope = ProducerRecord {
            topic: self.topic.clone(),
            ..DeadLetter::envelope(record, failure)
        };
        let result = async { self.producer.send(envelope).await?.await }.await;
        let (topic, partition, offset) = (&record.topic, record.partition, record.offset);
        match &result {
            Ok(at) => tracing::warn!(
                %topic, partition, offset, dlq = %self.topic, dlq_offset = at.offset,
                class = %failure.class, reason = %failure.reason, "record dead-lettered"
            ),
            Err(error) => tracing::error!(
                %topic, partition, offset, dlq = %self.topic, %error, "dead-letter write failed"
            ),
        }
        result
    }
}

/// What a processor does with a record whose handler failed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum OnFailure {
    /// Retry per the policy; when it gives up (or the failure is
    /// non-retriable) stop with the error, committing nothing past the record.
    Retry(RetryPolicy),
    /// Retry per the policy (not at all for a non-retriable failure), then
    /// write the record to the DLQ `topic` and go on; the record counts as
    /// processed only once the DLQ acknowledges it, and a failed DLQ write
    /// stops the processor like an exhausted [`OnFailure::Retry`].
    DeadLetter {
        /// Retries before dead-lettering.
        #[serde(default)]
        retry: RetryPolicy,
        /// DLQ topic.
        topic: String,
    },
    /// Log and go on: the record is dropped (at-most-once for failures).
    Skip,
}

#[cfg(test)]
mod tests;
