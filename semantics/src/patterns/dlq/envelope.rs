//! The DLQ envelope: a record plus `dlq.*` headers, and back.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{ConsumerRecord, ProducerRecord};
use kafka_wire::records::{Header, TimestampType};

use super::{Failure, FailureClass};
use header::*;

/// The header keys an envelope adds.
pub mod header {
    /// Topic the record was consumed from.
    pub const ORIGINAL_TOPIC: &str = "dlq.original.topic";
    /// Its partition.
    pub const ORIGINAL_PARTITION: &str = "dlq.original.partition";
    /// Its offset.
    pub const ORIGINAL_OFFSET: &str = "dlq.original.offset";
    /// Its timestamp, ms since the epoch.
    pub const ORIGINAL_TIMESTAMP: &str = "dlq.original.timestamp";
    /// Why it failed (free text).
    pub const FAILURE_REASON: &str = "dlq.failure.reason";
    /// [`FailureClass`](super::FailureClass), as text.
    pub const FAILURE_CLASS: &str = "dlq.failure.class";
    /// Attempts made, the first included.
    pub const ATTEMPTS: &str = "dlq.attempts";
    /// First attempt, ms since the epoch.
    pub const FIRST_ATTEMPT_MS: &str = "dlq.first.attempt.ms";
    /// Last attempt, ms since the epoch.
    pub const LAST_ATTEMPT_MS: &str = "dlq.last.attempt.ms";

    /// The headers an envelope adds, in the order it adds them.
    pub const ALL: [&str; 9] = [
        ORIGINAL_TOPIC,
        ORIGINAL_PARTITION,
        ORIGINAL_OFFSET,
        ORIGINAL_TIMESTAMP,
        FAILURE_REASON,
        FAILURE_CLASS,
        ATTEMPTS,
        FIRST_ATTEMPT_MS,
        LAST_ATTEMPT_MS,
    ];
}

/// A DLQ record read back: the record as first consumed, and its failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The original record: topic, partition, offset, timestamp, key, value
    /// and its own headers (the `dlq.*` ones the envelope added removed).
    pub original: ConsumerRecord,
    /// Why it was dead-lettered.
    pub failure: Failure,
}

/// Why a record is not a readable DLQ envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    /// A `dlq.*` header is absent: probably not a DLQ record.
    Missing(&'static str),
    /// A `dlq.*` header is null, not UTF-8, or not a valid number or time.
    Invalid {
        /// Header key.
        header: &'static str,
        /// Its value, lossily decoded.
        value: String,
    },
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(header) => write!(f, "DLQ header {header} is missing"),
            Self::Invalid { header, value } => {
                write!(f, "DLQ header {header} is invalid: {value:?}")
            }
        }
    }
}

impl std::error::Error for EnvelopeError {}

/// Pure functions between records and DLQ envelopes.
pub struct DeadLetter;

impl DeadLetter {
    /// The DLQ record for `record`: same key, value and headers, plus the
    /// [`header::ALL`]. Its topic is `<original>.DLT` (Spring's default);
    /// [`DeadLetterQueue`](super::DeadLetterQueue) sets its own. Partition
    /// and timestamp are left to the producer: the key's partition keeps
    /// per-key order, and a fresh timestamp keeps retention from deleting an
    /// old record on arrival.
    pub fn envelope(record: &ConsumerRecord, failure: &Failure) -> ProducerRecord {
        let context = [
            record.topic.to_string(),
            record.partition.to_string(),
            record.offset.to_string(),
            record.timestamp.to_string(),
            failure.reason.clone(),
            failure.class.as_str().to_owned(),
            failure.attempts.to_string(),
            epoch_ms(failure.first_attempt).to_string(),
            epoch_ms(failure.last_attempt).to_string(),
        ];
        let mut headers = record.headers.clone();
        headers.extend(ALL.iter().zip(context).map(|(k, v)| Header::new(*k, v)));
        ProducerRecord {
            topic: format!("{}.DLT", record.topic),
            partition: None,
            key: record.key.clone(),
            value: record.value.clone(),
            headers,
            timestamp: None,
        }
    }

    /// Reads a DLQ record back; `None` unless every `dlq.*` header is present
    /// and valid. See [`try_parse`](Self::try_parse) for the reason.
    pub fn parse(record: &ConsumerRecord) -> Option<Envelope> {
        Self::try_parse(record).ok()
    }

    /// Reads a DLQ record back, or says which header is missing or invalid.
    /// The last occurrence of each key counts (the envelope appends), so a
    /// record dead-lettered twice keeps its earlier context among its headers.
    pub fn try_parse(record: &ConsumerRecord) -> Result<Envelope, EnvelopeError> {
        let mut found = [None; ALL.len()];
        for (index, header) in record.headers.iter().enumerate() {
            if let Some(slot) = ALL.iter().position(|k| k.as_bytes() == &header.key[..]) {
                found[slot] = Some(index);
            }
        }
        let text = |slot: usize| -> Result<&str, EnvelopeError> {
            let header = ALL[slot];
            let index = found[slot].ok_or(EnvelopeError::Missing(header))?;
            let value = record.headers[index].value.as_deref();
            let text = value.and_then(|v| std::str::from_utf8(v).ok());
            text.ok_or_else(|| {
                invalid(header, value.map_or("null".into(), String::from_utf8_lossy))
            })
        };
        let time = |slot: usize| -> Result<SystemTime, EnvelopeError> {
            let ms = text(slot)?;
            let time = ms.parse().ok().and_then(from_epoch_ms);
            time.ok_or_else(|| invalid(ALL[slot], ms.into()))
        };
        // Read in header order, so the first bad header is the one reported.
        let original = ConsumerRecord {
            topic: Arc::from(text(0)?),
            partition: number(ORIGINAL_PARTITION, text(1)?)?,
            offset: number(ORIGINAL_OFFSET, text(2)?)?,
            timestamp: number(ORIGINAL_TIMESTAMP, text(3)?)?,
            // The envelope keeps the original's timestamp, not who set it.
            timestamp_type: TimestampType::CreateTime,
            key: record.key.clone(),
            value: record.value.clone(),
            headers: (record.headers.iter().enumerate())
                .filter(|(index, _)| !found.contains(&Some(*index)))
                .map(|(_, header)| header.clone())
                .collect(),
        };
        let failure = Failure {
            reason: text(4)?.to_owned(),
            class: FailureClass::from_header(text(5)?),
            attempts: number(ATTEMPTS, text(6)?)?,
            first_attempt: time(7)?,
            last_attempt: time(8)?,
        };
        Ok(Envelope { original, failure })
    }
}

fn invalid(header: &'static str, value: std::borrow::Cow<'_, str>) -> EnvelopeError {
    EnvelopeError::Invalid {
        header,
        value: value.into_owned(),
    }
}

/// An ASCII decimal header value.
fn number<T: std::str::FromStr>(header: &'static str, text: &str) -> Result<T, EnvelopeError> {
    text.parse().map_err(|_| invalid(header, text.into()))
}

/// Milliseconds since the epoch, negative before it, saturating.
fn epoch_ms(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

fn from_epoch_ms(ms: i64) -> Option<SystemTime> {
    let magnitude = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    }
}

#[cfg(test)]
#[path = "envelope_tests.rs"]
mod tests;
