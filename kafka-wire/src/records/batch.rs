//! Decoding record batches, zero-copy over [`Bytes`].
//!
//! A fetch response's `records` field is a sequence of batches. The broker cuts
//! it at `max.bytes`, so the last batch may be incomplete: [`BatchReader`] stops
//! there without an error and reports it through [`BatchReader::truncated_tail`].

use bytes::Bytes;

use super::attributes::BatchAttributes;
use super::compression;
use super::control::ControlRecord;
use super::varint::{get_varint, get_varlong};
use super::{
    Header, Record, RecordsError, TimestampType, ATTRIBUTES_OFFSET, BATCH_HEADER_LEN,
    BATCH_LENGTH_OFFSET, CRC_OFFSET, LOG_OVERHEAD, MAGIC_OFFSET, MAGIC_V2,
};

/// Smallest possible encoded record: length, attributes, timestamp delta, offset
/// delta, key length, value length, header count — one byte each.
const MIN_RECORD_LEN: usize = 7;

/// Limits applied while decoding untrusted batches.
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions {
    /// Upper bound on one batch's decompressed records section.
    pub max_decompressed_bytes: usize,
    /// Verify CRC-32C (on by default; off only for benchmarks of the parser).
    pub verify_crc: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            max_decompressed_bytes: 128 * 1024 * 1024,
            verify_crc: true,
        }
    }
}

/// The fixed fields of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Leader epoch of the partition when the batch was written.
    pub partition_leader_epoch: i32,
    /// Compression, timestamp type, transactional and control flags.
    pub attributes: BatchAttributes,
    /// Offset delta of the last record the batch was written with (it can
    /// exceed the records present after compaction).
    pub last_offset_delta: i32,
    /// Timestamp of the first record (or the delete horizon, KIP-534).
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Idempotent/transactional producer id, −1 without one.
    pub producer_id: i64,
    /// Producer epoch, −1 without one.
    pub producer_epoch: i16,
    /// Sequence of the first record, −1 without idempotence.
    pub base_sequence: i32,
    /// Number of records the batch declares.
    pub records_count: i32,
    /// CRC-32C stored in the batch.
    pub crc: u32,
}

impl BatchHeader {
    /// Offset to fetch next: `baseOffset + lastOffsetDelta + 1`, which is right
    /// even when compaction removed the last records.
    pub fn next_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
            .saturating_add(1)
    }

    /// Offset of the batch's last record as written.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }
}

/// A decoded batch: its header and its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    /// Fixed fields.
    pub header: BatchHeader,
    /// Records with absolute offsets and timestamps.
    pub records: Vec<Record>,
}

impl RecordBatch {
    /// Decodes one complete batch at the start of `input`; returns it and the
    /// bytes it occupied. A short input is [`RecordsError::Truncated`].
    pub fn decode(input: &Bytes, options: &DecodeOptions) -> Result<(Self, usize), RecordsError> {
        let batch_len = complete_batch_len(input)?.ok_or(RecordsError::Truncated {
            needed: required_len(input),
            available: input.len(),
        })?;
        let batch = input.slice(..batch_len);
        let header = decode_header(&batch, options)?;
        let records = decode_records(&header, batch.slice(BATCH_HEADER_LEN..), options)?;
        Ok((Self { header, records }, batch_len))
    }

    /// The commit/abort marker this batch carries, if it is a control batch.
    pub fn control_record(&self) -> Option<Result<ControlRecord, RecordsError>> {
        if !self.header.attributes.control {
            return None;
        }
        let record = self.records.first()?;
        Some(ControlRecord::from_record(record))
    }
}

/// Length of the complete batch at the start of `input`, `None` when the input
/// holds only part of it.
fn complete_batch_len(input: &[u8]) -> Result<Option<usize>, RecordsError> {
    if input.len() < LOG_OVERHEAD {
        return Ok(None);
    }
    let batch_length = read_i32(input, BATCH_LENGTH_OFFSET);
    let min_body = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;
    if batch_length < min_body {
        return Err(RecordsError::InvalidLength {
            field: "batchLength",
            value: batch_length.into(),
        });
    }
    // Check magic before trusting the rest: old message sets have another layout.
    if let Some(&magic) = input.get(MAGIC_OFFSET) {
        if magic as i8 != MAGIC_V2 {
            return Err(RecordsError::UnsupportedMagic(magic as i8));
        }
    }
    let total = LOG_OVERHEAD + batch_length as usize;
    Ok((input.len() >= total).then_some(total))
}

fn required_len(input: &[u8]) -> usize {
    if input.len() < LOG_OVERHEAD {
        return LOG_OVERHEAD;
    }
    LOG_OVERHEAD + read_i32(input, BATCH_LENGTH_OFFSET).max(0) as usize
}

fn decode_header(batch: &[u8], options: &DecodeOptions) -> Result<BatchHeader, RecordsError> {
    let header = BatchHeader {
        base_offset: read_i64(batch, 0),
        partition_leader_epoch: read_i32(batch, 12),
        crc: read_i32(batch, CRC_OFFSET) as u32,
        attributes: BatchAttributes::from_bits(read_i16(batch, ATTRIBUTES_OFFSET))?,
        last_offset_delta: read_i32(batch, 23),
        base_timestamp: read_i64(batch, 27),
        max_timestamp: read_i64(batch, 35),
        producer_id: read_i64(batch, 43),
        producer_epoch: read_i16(batch, 51),
        base_sequence: read_i32(batch, 53),
        records_count: read_i32(batch, 57),
    };
    if options.verify_crc {
        let actual = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
        if actual != header.crc {
            return Err(RecordsError::Crc {
                base_offset: header.base_offset,
                expected: header.crc,
                actual,
            });
        }
    }
    if header.records_count < 0 {
        return Err(RecordsError::InvalidLength {
            field: "recordsCount",
            value: header.records_count.into(),
        });
    }
    Ok(header)
}

fn decode_records(
    header: &BatchHeader,
    section: Bytes,
    options: &DecodeOptions,
) -> Result<Vec<Record>, RecordsError> {
    let codec = header.attributes.compression;
    let data = compression::decompress(codec, section, options.max_decompressed_bytes)?;
    let count = header.records_count as usize;
    // Never trust the count for the allocation: each record takes ≥ 7 bytes.
    let mut records = Vec::with_capacity(count.min(data.len() / MIN_RECORD_LEN));
    let mut pos = 0;
    for _ in 0..count {
        records.push(decode_record(header, &data, &mut pos)?);
    }
    if pos != data.len() {
        return Err(RecordsError::Malformed(
            "bytes left after the last declared record",
        ));
    }
    Ok(records)
}

fn decode_record(
    header: &BatchHeader,
    data: &Bytes,
    pos: &mut usize,
) -> Result<Record, RecordsError> {
    let length = get_varint(data, pos)?;
    let body_len = usize::try_from(length).map_err(|_| RecordsError::InvalidLength {
        field: "record length",
        value: length.into(),
    })?;
    let end = pos
        .checked_add(body_len)
        .filter(|&end| end <= data.len())
        .ok_or(RecordsError::Truncated {
            needed: *pos + body_len,
            available: data.len(),
        })?;
    // Parse within this record's bounds; only key, value and headers become
    // `Bytes` handles into `data`.
    let body = Body { data, end };
    *pos += 1; // record attributes: unused, always 0
    let timestamp_delta = get_varlong(body.bytes(), pos)?;
    let offset_delta = get_varint(body.bytes(), pos)?;
    let key = body.nullable_bytes(pos, "keyLength")?;
    let value = body.nullable_bytes(pos, "valueLength")?;
    let headers = body.headers(pos)?;
    if *pos != end {
        return Err(RecordsError::Malformed(
            "record body length does not match its fields",
        ));
    }
    let timestamp = match header.attributes.timestamp_type {
        TimestampType::LogAppendTime => header.max_timestamp,
        TimestampType::CreateTime => header.base_timestamp.wrapping_add(timestamp_delta),
    };
    Ok(Record {
        offset: header.base_offset.wrapping_add(i64::from(offset_delta)),
        timestamp,
        timestamp_type: header.attributes.timestamp_type,
        key,
        value,
        headers,
    })
}

/// One record's bytes: `data[..end]`, positions absolute in `data`.
struct Body<'a> {
    data: &'a Bytes,
    end: usize,
}

impl Body<'_> {
    fn bytes(&self) -> &[u8] {
        &self.data[..self.end]
    }

    fn headers(&self, pos: &mut usize) -> Result<Vec<Header>, RecordsError> {
        let count = get_varint(self.bytes(), pos)?;
        if count == 0 {
            return Ok(Vec::new());
        }
        let count = usize::try_from(count).map_err(|_| RecordsError::InvalidLength {
            field: "headers count",
            value: count.into(),
        })?;
        // Each header takes at least two bytes (key length, value length).
        let mut headers = Vec::with_capacity(count.min(self.end.saturating_sub(*pos) / 2));
        for _ in 0..count {
            let key = self.nullable_bytes(pos, "headerKeyLength")?.ok_or(
                RecordsError::InvalidLength {
                    field: "headerKeyLength",
                    value: -1,
                },
            )?;
            let value = self.nullable_bytes(pos, "headerValueLength")?;
            headers.push(Header { key, value });
        }
        Ok(headers)
    }

    fn nullable_bytes(
        &self,
        pos: &mut usize,
        field: &'static str,
    ) -> Result<Option<Bytes>, RecordsError> {
        let length = get_varint(self.bytes(), pos)?;
        if length == -1 {
            return Ok(None);
        }
        let len = usize::try_from(length).map_err(|_| RecordsError::InvalidLength {
            field,
            value: length.into(),
        })?;
        let end =
            pos.checked_add(len)
                .filter(|&end| end <= self.end)
                .ok_or(RecordsError::Truncated {
                    needed: *pos + len,
                    available: self.end,
                })?;
        let bytes = self.data.slice(*pos..end);
        *pos = end;
        Ok(Some(bytes))
    }
}

/// Iterates over the batches of a fetch response's `records` field.
///
/// Yields each complete batch; stops silently at an incomplete trailing batch
/// (the broker cut the response at `max.bytes`), and stops after the first
/// error, which it yields.
#[derive(Debug)]
pub struct BatchReader {
    data: Bytes,
    pos: usize,
    options: DecodeOptions,
    finished: bool,
    truncated_tail: bool,
}

impl BatchReader {
    /// Reads batches from `data` with default limits.
    pub fn new(data: Bytes) -> Self {
        Self::with_options(data, DecodeOptions::default())
    }

    /// Reads batches from `data` with the given limits.
    pub fn with_options(data: Bytes, options: DecodeOptions) -> Self {
        Self {
            data,
            pos: 0,
            options,
            finished: false,
            truncated_tail: false,
        }
    }

    /// True once the reader stopped at an incomplete trailing batch.
    pub fn truncated_tail(&self) -> bool {
        self.truncated_tail
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>, RecordsError> {
        let rest = self.data.slice(self.pos..);
        if rest.is_empty() {
            return Ok(None);
        }
        if complete_batch_len(&rest)?.is_none() {
            self.truncated_tail = true;
            return Ok(None);
        }
        let (batch, used) = RecordBatch::decode(&rest, &self.options)?;
        self.pos += used;
        Ok(Some(batch))
    }
}

impl Iterator for BatchReader {
    type Item = Result<RecordBatch, RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let result = self.next_batch().transpose();
        if !matches!(result, Some(Ok(_))) {
            self.finished = true;
        }
        result
    }
}

/// Decodes every complete batch in `data`.
pub fn decode_all(data: Bytes, options: &DecodeOptions) -> Result<Vec<RecordBatch>, RecordsError> {
    BatchReader::with_options(data, *options).collect()
}

// Callers guarantee `at + N <= input.len()` (the batch is known complete).
fn read_i64(input: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(input[at..at + 8].try_into().expect("8 bytes"))
}

fn read_i32(input: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(input[at..at + 4].try_into().expect("4 bytes"))
}

fn read_i16(input: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(input[at..at + 2].try_into().expect("2 bytes"))
}
