//! Record batches, magic 2 (the only format Kafka 4.x accepts).
//!
//! ```text
//! baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 = 2 | crc u32
//! | attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 | maxTimestamp i64
//! | producerId i64 | producerEpoch i16 | baseSequence i32 | recordsCount i32 | records…
//! ```
//! The CRC is CRC-32C over everything from `attributes` to the end of the batch.
//! With compression, everything after `recordsCount` is one compressed block.
//!
//! - [`builder`]: appends records into a batch as they arrive, then seals it.
//! - [`batch`]: decodes batches from a fetch response, zero-copy over [`bytes::Bytes`].
//! - [`control`]: commit/abort markers, whose type lives in the record *key*.
//! - [`compression`]: gzip, snappy (xerial and raw), lz4 frame, zstd — pure Rust,
//!   with an output cap on every decompressor.
//!
//! # References
//! - <https://kafka.apache.org/documentation/#recordbatch>
//! - KIP-98 (transactions and idempotence fields), KIP-82 (headers).

pub mod attributes;
pub mod batch;
pub mod builder;
pub mod compression;
pub mod control;
pub mod varint;

use bytes::Bytes;

pub use attributes::{BatchAttributes, Compression, TimestampType};
pub use batch::{BatchReader, DecodeOptions, RecordBatch};
pub use builder::{BatchBuilder, ProducerState};
pub use control::{ControlRecord, ControlType};

/// Size of the fixed batch header, from `baseOffset` to `recordsCount` inclusive.
pub const BATCH_HEADER_LEN: usize = 61;
/// Bytes before `batchLength` counts: `baseOffset` (8) + `batchLength` (4).
pub const LOG_OVERHEAD: usize = 12;
/// The only record batch format this crate speaks.
pub const MAGIC_V2: i8 = 2;
/// `producerId` of a batch written without idempotence.
pub const NO_PRODUCER_ID: i64 = -1;
/// `producerEpoch` of a batch written without idempotence.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// `baseSequence` of a batch written without idempotence.
pub const NO_SEQUENCE: i32 = -1;

// Field offsets inside a batch, from the start of `baseOffset`.
pub(crate) const BATCH_LENGTH_OFFSET: usize = 8;
pub(crate) const MAGIC_OFFSET: usize = 16;
pub(crate) const CRC_OFFSET: usize = 17;
pub(crate) const ATTRIBUTES_OFFSET: usize = 21;
pub(crate) const PRODUCER_ID_OFFSET: usize = 43;

/// One record header. Keys may repeat and values may be null, so headers are a
/// list, never a map (shared/PITFALLS.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header key: a string on the wire, kept as bytes so decoding copies nothing.
    pub key: Bytes,
    /// Header value; `None` is a null value, distinct from an empty one.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with a value.
    pub fn new(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        Self {
            key: key.into(),
            value: Some(value.into()),
        }
    }

    /// The key as UTF-8, if it is.
    pub fn key_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.key).ok()
    }
}

/// A decoded record with absolute offset and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Absolute offset: the batch's base offset plus this record's delta.
    pub offset: i64,
    /// Absolute timestamp in ms: base timestamp plus delta (or the batch's
    /// max timestamp when the batch uses log-append time).
    pub timestamp: i64,
    /// Who set `timestamp`: the producer, or the broker on append (the
    /// topic's `message.timestamp.type`).
    pub timestamp_type: TimestampType,
    /// Record key, `None` for a null key.
    pub key: Option<Bytes>,
    /// Record value, `None` for a null value (a tombstone).
    pub value: Option<Bytes>,
    /// Headers in wire order, duplicates kept.
    pub headers: Vec<Header>,
}

/// Everything that can be wrong with record batch bytes. Every variant is the
/// answer to hostile or corrupt input; none of them panics on the way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordsError {
    /// Input ended before a field was complete.
    #[error("record data truncated: needed {needed} bytes, {available} available")]
    Truncated {
        /// Bytes the decoder needed.
        needed: usize,
        /// Bytes there were.
        available: usize,
    },
    /// The batch's CRC-32C does not match its contents.
    #[error("record batch CRC mismatch at offset {base_offset}: header says {expected:#010x}, contents hash to {actual:#010x}")]
    Crc {
        /// The batch's base offset.
        base_offset: i64,
        /// CRC stored in the batch header.
        expected: u32,
        /// CRC computed over the batch.
        actual: u32,
    },
    /// Magic byte other than 2 (message sets v0/v1 are gone since Kafka 4.0).
    #[error("unsupported record batch magic {0} (only magic 2 is supported)")]
    UnsupportedMagic(i8),
    /// Compression bits outside 0..=4.
    #[error("unknown compression codec id {0}")]
    UnknownCompression(u8),
    /// A decompressor rejected its input.
    #[error("{codec} decompression failed: {reason}")]
    Decompress {
        /// Which codec.
        codec: Compression,
        /// What the decompressor said.
        reason: String,
    },
    /// A compressor failed (only on I/O-like internal errors).
    #[error("{codec} compression failed: {reason}")]
    Compress {
        /// Which codec.
        codec: Compression,
        /// What the compressor said.
        reason: String,
    },
    /// Decompressed output exceeded the configured cap (a zip bomb or a
    /// misconfigured cap).
    #[error("{codec} output exceeds the decompression cap of {cap} bytes")]
    DecompressedTooLarge {
        /// Which codec.
        codec: Compression,
        /// The cap in bytes.
        cap: usize,
    },
    /// A varint ran past its maximum length or out of range.
    #[error("malformed varint at byte {at}")]
    VarintOverflow {
        /// Position of the varint.
        at: usize,
    },
    /// A length or count field holds an impossible value.
    #[error("invalid {field}: {value}")]
    InvalidLength {
        /// Field name as the protocol guide spells it.
        field: &'static str,
        /// The value found.
        value: i64,
    },
    /// The records section holds fewer or more records than `recordsCount`,
    /// or a record's body does not match its length.
    #[error("record section malformed: {0}")]
    Malformed(&'static str),
}

#[cfg(test)]
mod tests;
