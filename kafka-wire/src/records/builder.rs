//! Building record batches: records are encoded as they are appended, so sealing
//! a batch only writes the 61-byte header (and compresses, if asked).

use bytes::{BufMut, Bytes, BytesMut};

use super::attributes::{BatchAttributes, Compression, TimestampType};
use super::compression;
use super::varint::{
    unsigned_len, varint_len, varlong_len, write_unsigned, zigzag64, MAX_VARINT_LEN,
};
use super::{
    Header, RecordsError, ATTRIBUTES_OFFSET, BATCH_HEADER_LEN, BATCH_LENGTH_OFFSET, CRC_OFFSET,
    LOG_OVERHEAD, MAGIC_V2, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, PRODUCER_ID_OFFSET,
};

/// The idempotence fields of a batch (KIP-98).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerState {
    /// Producer id from InitProducerId.
    pub producer_id: i64,
    /// Producer epoch from InitProducerId.
    pub producer_epoch: i16,
    /// Sequence of the batch's first record; a retry keeps it.
    pub base_sequence: i32,
}

impl ProducerState {
    /// No idempotence: all three fields −1.
    pub const NONE: Self = Self {
        producer_id: NO_PRODUCER_ID,
        producer_epoch: NO_PRODUCER_EPOCH,
        base_sequence: NO_SEQUENCE,
    };
}

impl Default for ProducerState {
    fn default() -> Self {
        Self::NONE
    }
}

/// Accumulates records into one batch.
#[derive(Debug)]
pub struct BatchBuilder {
    /// Header placeholder followed by the encoded records.
    buf: BytesMut,
    attributes: BatchAttributes,
    base_offset: i64,
    partition_leader_epoch: i32,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
    count: i32,
}

impl BatchBuilder {
    /// An empty batch with the given codec.
    pub fn new(compression: Compression) -> Self {
        Self::with_capacity(compression, 16 * 1024)
    }

    /// An empty batch whose buffer starts with room for `capacity` bytes.
    pub fn with_capacity(compression: Compression, capacity: usize) -> Self {
        let mut buf = BytesMut::with_capacity(capacity.max(BATCH_HEADER_LEN));
        buf.put_bytes(0, BATCH_HEADER_LEN);
        Self {
            buf,
            attributes: BatchAttributes {
                compression,
                ..BatchAttributes::default()
            },
            base_offset: 0,
            partition_leader_epoch: -1,
            base_timestamp: None,
            max_timestamp: -1,
            count: 0,
        }
    }

    /// Marks the batch transactional (KIP-98).
    pub fn transactional(mut self, transactional: bool) -> Self {
        self.attributes.transactional = transactional;
        self
    }

    /// Marks the batch as a control batch (brokers write these; tests and the
    /// scripted broker need them too).
    pub fn control(mut self, control: bool) -> Self {
        self.attributes.control = control;
        self
    }

    /// Sets the timestamp type (producers use create time).
    pub fn timestamp_type(mut self, timestamp_type: TimestampType) -> Self {
        self.attributes.timestamp_type = timestamp_type;
        self
    }

    /// Sets the base offset (0 for produce requests; brokers assign offsets).
    pub fn base_offset(mut self, base_offset: i64) -> Self {
        self.base_offset = base_offset;
        self
    }

    /// Sets the partition leader epoch (−1 for produce requests).
    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Records appended so far.
    pub fn record_count(&self) -> i32 {
        self.count
    }

    /// True when nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes the uncompressed batch occupies now.
    pub fn size_in_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Size a record would add to this batch, for `batch.size` decisions.
    pub fn record_size(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> usize {
        let base = self.base_timestamp.unwrap_or(timestamp);
        let body = 1
            + varlong_len(timestamp.wrapping_sub(base))
            + varint_len(self.count)
            + nullable_len(key)
            + nullable_len(value)
            + headers_len(headers);
        varint_len(body as i32) + body
    }

    /// Appends a record; returns its offset delta inside the batch.
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> i32 {
        let offset_delta = self.count;
        let base_timestamp = *self.base_timestamp.get_or_insert(timestamp);
        self.max_timestamp = self.max_timestamp.max(timestamp);
        let timestamp_delta = zigzag64(timestamp.wrapping_sub(base_timestamp));
        let body = 1
            + unsigned_len(timestamp_delta)
            + varint_len(offset_delta)
            + nullable_len(key)
            + nullable_len(value)
            + headers_len(headers);
        self.buf.reserve(varint_len(body as i32) + body);
        // Small fields are staged on the stack so a record costs two copies
        // into the buffer (prefix with key, then value) instead of one per field.
        let mut stage = Stage::default();
        stage.unsigned(zigzag64(body as i64));
        stage.byte(0); // record attributes: unused
        stage.unsigned(timestamp_delta);
        stage.unsigned(zigzag64(i64::from(offset_delta)));
        stage.nullable(&mut self.buf, key);
        stage.nullable_length(value);
        stage.flush(&mut self.buf);
        if let Some(value) = value {
            self.buf.extend_from_slice(value);
        }
        self.put_headers(headers);
        self.count += 1;
        offset_delta
    }

    fn put_headers(&mut self, headers: &[Header]) {
        let mut stage = Stage::default();
        stage.unsigned(zigzag64(headers.len() as i64));
        for header in headers {
            stage.nullable(&mut self.buf, Some(&header.key));
            stage.nullable(&mut self.buf, header.value.as_deref());
        }
        stage.flush(&mut self.buf);
    }

    /// Seals the batch: compresses the records section if asked, writes the
    /// header and the CRC.
    pub fn build(mut self, producer: ProducerState) -> Result<Bytes, RecordsError> {
        let records = std::mem::take(&mut self.buf);
        let mut out = match self.attributes.compression {
            Compression::None => records,
            codec => {
                let mut out = BytesMut::with_capacity(BATCH_HEADER_LEN + records.len() / 2);
                out.put_bytes(0, BATCH_HEADER_LEN);
                compression::compress(codec, &records[BATCH_HEADER_LEN..], &mut out)?;
                out
            }
        };
        self.write_header(&mut out, producer);
        Ok(out.freeze())
    }

    fn write_header(&self, out: &mut BytesMut, producer: ProducerState) {
        let batch_length = (out.len() - LOG_OVERHEAD) as i32;
        let base_timestamp = self.base_timestamp.unwrap_or(-1);
        let mut header = &mut out[..BATCH_HEADER_LEN];
        header.put_i64(self.base_offset);
        header.put_i32(batch_length);
        header.put_i32(self.partition_leader_epoch);
        header.put_i8(MAGIC_V2);
        header.put_u32(0); // CRC, written last
        header.put_i16(self.attributes.to_bits());
        header.put_i32(self.count - 1);
        header.put_i64(base_timestamp);
        header.put_i64(self.max_timestamp);
        header.put_i64(producer.producer_id);
        header.put_i16(producer.producer_epoch);
        header.put_i32(producer.base_sequence);
        header.put_i32(self.count);
        write_crc(out);
    }
}

/// Rewrites the producer id, epoch and base sequence of a sealed batch and its
/// CRC — for a KIP-360 epoch bump, which re-stamps batches not yet acknowledged.
pub fn restamp(batch: &mut [u8], producer: ProducerState) -> Result<(), RecordsError> {
    if batch.len() < BATCH_HEADER_LEN {
        return Err(RecordsError::Truncated {
            needed: BATCH_HEADER_LEN,
            available: batch.len(),
        });
    }
    let mut fields = &mut batch[PRODUCER_ID_OFFSET..PRODUCER_ID_OFFSET + 14];
    fields.put_i64(producer.producer_id);
    fields.put_i16(producer.producer_epoch);
    fields.put_i32(producer.base_sequence);
    write_crc(batch);
    Ok(())
}

fn write_crc(batch: &mut [u8]) {
    debug_assert!(
        i32::from_be_bytes(
            batch[BATCH_LENGTH_OFFSET..BATCH_LENGTH_OFFSET + 4]
                .try_into()
                .unwrap()
        ) as usize
            == batch.len() - LOG_OVERHEAD
    );
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

#[inline]
fn nullable_len(bytes: Option<&[u8]>) -> usize {
    match bytes {
        None => 1,
        Some(b) => varint_len(b.len() as i32) + b.len(),
    }
}

#[inline]
fn headers_len(headers: &[Header]) -> usize {
    let fields: usize = headers
        .iter()
        .map(|h| nullable_len(Some(&h.key)) + nullable_len(h.value.as_deref()))
        .sum();
    varint_len(headers.len() as i32) + fields
}

/// Bytes up to this size are staged with the fixed fields; larger ones are
/// copied straight into the buffer.
const STAGE_INLINE_MAX: usize = 32;

/// A stack buffer for a record's small fields.
struct Stage {
    bytes: [u8; 64],
    len: usize,
}

impl Default for Stage {
    fn default() -> Self {
        Self {
            bytes: [0; 64],
            len: 0,
        }
    }
}

impl Stage {
    #[inline]
    fn byte(&mut self, byte: u8) {
        self.bytes[self.len] = byte;
        self.len += 1;
    }

    #[inline]
    fn unsigned(&mut self, value: u64) {
        write_unsigned(&mut self.bytes, &mut self.len, value);
    }

    #[inline]
    fn nullable_length(&mut self, bytes: Option<&[u8]>) {
        match bytes {
            None => self.byte(1), // zigzag(-1)
            Some(b) => self.unsigned(zigzag64(b.len() as i64)),
        }
    }

    /// Length prefix and bytes: staged when small, else flushed around.
    #[inline]
    fn nullable(&mut self, buf: &mut BytesMut, bytes: Option<&[u8]>) {
        self.nullable_length(bytes);
        let Some(bytes) = bytes else { return };
        if bytes.len() <= STAGE_INLINE_MAX
            && self.len + bytes.len() + 2 * MAX_VARINT_LEN <= self.bytes.len()
        {
            self.bytes[self.len..self.len + bytes.len()].copy_from_slice(bytes);
            self.len += bytes.len();
        } else {
            self.flush(buf);
            buf.extend_from_slice(bytes);
        }
    }

    #[inline]
    fn flush(&mut self, buf: &mut BytesMut) {
        buf.extend_from_slice(&self.bytes[..self.len]);
        self.len = 0;
    }
}
