//! Errors the client reports to users, each saying what to do about it.

use std::sync::Arc;

use kafka_wire::{ConnError, ErrorClass, KafkaCode};

/// Why a record (or a producer call) failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProduceError {
    /// The record alone is larger than `max.request.size`.
    #[error("record of {size} bytes exceeds max.request.size ({max} bytes)")]
    RecordTooLarge {
        /// Encoded size of the record.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The record alone needs more than `buffer.memory`: it can never be
    /// queued.
    #[error("record of {size} bytes exceeds buffer.memory ({buffer_memory} bytes)")]
    RecordLargerThanBuffer {
        /// Encoded size of the record.
        size: usize,
        /// The configured `buffer.memory`.
        buffer_memory: usize,
    },
    /// The broker answered with an error that retries could not fix (or
    /// retries were exhausted, or `delivery.timeout.ms` passed).
    #[error("broker error for {topic}-{partition}: {code}{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Broker {
        /// Topic.
        topic: Arc<str>,
        /// Partition.
        partition: i32,
        /// Kafka error code.
        code: KafkaCode,
        /// The broker's message, if any.
        message: Option<String>,
    },
    /// The topic does not exist (after metadata retries until `max.block.ms`).
    #[error("topic {topic} does not exist: {code} (retried metadata for {waited_ms} ms)")]
    UnknownTopic {
        /// Topic.
        topic: String,
        /// The last code metadata returned.
        code: KafkaCode,
        /// How long metadata was retried.
        waited_ms: u128,
    },
    /// The record names a partition the topic does not have.
    #[error(
        "topic {topic} has {partition_count} partitions; partition {partition} does not exist"
    )]
    InvalidPartition {
        /// Topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// How many the topic has.
        partition_count: i32,
    },
    /// `delivery.timeout.ms` passed before the record was acknowledged. If it
    /// was sent, it may have been written (`outcome_unknown`).
    #[error(
        "delivery timed out after {elapsed_ms} ms (delivery.timeout.ms); last error: {last_error}"
    )]
    DeliveryTimeout {
        /// Time since the record was sent.
        elapsed_ms: u128,
        /// What the last attempt ran into.
        last_error: String,
        /// Whether an attempt reached the broker, so it may have been written.
        outcome_unknown: bool,
    },
    /// No buffer space within `max.block.ms`.
    #[error("buffer.memory full for max.block.ms ({waited_ms} ms)")]
    BufferFull {
        /// How long the send waited.
        waited_ms: u128,
    },
    /// Connecting to or talking with a broker failed.
    #[error("connection: {0}")]
    Connection(#[from] ConnError),
    /// The producer cannot continue (fenced, unauthorised, unsupported).
    #[error("producer failed fatally: {0}")]
    Fatal(String),
    /// The producer was closed before the record was delivered.
    #[error("producer closed before the record was delivered")]
    Closed,
    /// A transactional call or a send inside a transaction failed; the error
    /// says whether to abort or to give up.
    #[error(transparent)]
    Transaction(#[from] super::TransactionError),
}

impl ProduceError {
    /// True when the record may have been written although this error says
    /// otherwise (the broker's answer never came).
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Self::Connection(error) => error.outcome_unknown(),
            // REQUEST_TIMED_OUT: the leader may have appended and then timed
            // out waiting for its replicas; NOT_ENOUGH_REPLICAS_AFTER_APPEND:
            // appended to the leader's log, acknowledged by too few replicas.
            // Either may be read later: resending could duplicate.
            Self::Broker { code, .. } => matches!(code.0, 7 | 20),
            Self::DeliveryTimeout {
                outcome_unknown, ..
            } => *outcome_unknown,
            _ => false,
        }
    }

    /// The class of the underlying Kafka error code, if there is one.
    pub fn class(&self) -> Option<ErrorClass> {
        match self {
            Self::Broker { code, .. } => Some(code.class()),
            Self::Fatal(_) => Some(ErrorClass::Fatal),
            Self::Transaction(e) if e.is_fatal() => Some(ErrorClass::Fatal),
            Self::Transaction(e) if e.is_abortable() => Some(ErrorClass::Abortable),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(code: i16) -> ProduceError {
        ProduceError::Broker {
            topic: Arc::from("t"),
            partition: 0,
            code: KafkaCode(code),
            message: None,
        }
    }

    /// Issue 14 (14): errors after which the record may be in the log were
    /// reported as definitely not written, inviting a duplicating resend.
    #[test]
    fn answers_that_may_follow_an_append_leave_the_outcome_unknown() {
        assert!(broker(7).outcome_unknown(), "REQUEST_TIMED_OUT");
        assert!(
            broker(20).outcome_unknown(),
            "NOT_ENOUGH_REPLICAS_AFTER_APPEND"
        );
        assert!(
            !broker(19).outcome_unknown(),
            "NOT_ENOUGH_REPLICAS: refused before the append"
        );
        assert!(!broker(10).outcome_unknown(), "MESSAGE_TOO_LARGE");
    }
}
