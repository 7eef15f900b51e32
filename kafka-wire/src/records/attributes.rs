//! The batch `attributes` field: compression, timestamp type, transactional, control.

use std::fmt;

use super::RecordsError;

/// Compression codec of a batch (attribute bits 0–2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression.
    #[default]
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// snappy; encoded with Java's xerial framing.
    Snappy,
    /// lz4 frame format.
    Lz4,
    /// zstd.
    Zstd,
}

impl Compression {
    /// The codec id in attribute bits 0–2.
    pub fn id(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }

    /// The codec for an id from attribute bits 0–2.
    pub fn from_id(id: u8) -> Result<Self, RecordsError> {
        Ok(match id {
            0 => Self::None,
            1 => Self::Gzip,
            2 => Self::Snappy,
            3 => Self::Lz4,
            4 => Self::Zstd,
            other => return Err(RecordsError::UnknownCompression(other)),
        })
    }

    /// The name used by `compression.type`.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }

    /// Parses a `compression.type` value.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "none" => Self::None,
            "gzip" => Self::Gzip,
            "snappy" => Self::Snappy,
            "lz4" => Self::Lz4,
            "zstd" => Self::Zstd,
            _ => return None,
        })
    }

    /// All codecs, in id order.
    pub const ALL: [Compression; 5] = [Self::None, Self::Gzip, Self::Snappy, Self::Lz4, Self::Zstd];
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the batch's timestamps were assigned (attribute bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// Set by the producer.
    #[default]
    CreateTime,
    /// Set by the broker on append; every record carries the batch's max timestamp.
    LogAppendTime,
}

/// Decoded batch attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchAttributes {
    /// Codec of the records section.
    pub compression: Compression,
    /// Who set the timestamps.
    pub timestamp_type: TimestampType,
    /// Part of a transaction (KIP-98).
    pub transactional: bool,
    /// Holds a control record (commit/abort marker), never user data.
    pub control: bool,
    /// A delete horizon is set in the base timestamp (KIP-534, compaction).
    pub delete_horizon: bool,
}

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
const DELETE_HORIZON_BIT: i16 = 0x40;

impl BatchAttributes {
    /// Encodes to the wire `attributes` value.
    pub fn to_bits(self) -> i16 {
        let mut bits = i16::from(self.compression.id());
        if self.timestamp_type == TimestampType::LogAppendTime {
            bits |= TIMESTAMP_TYPE_BIT;
        }
        if self.transactional {
            bits |= TRANSACTIONAL_BIT;
        }
        if self.control {
            bits |= CONTROL_BIT;
        }
        if self.delete_horizon {
            bits |= DELETE_HORIZON_BIT;
        }
        bits
    }

    /// Decodes the wire `attributes` value; unknown high bits are ignored as the
    /// Java client does.
    pub fn from_bits(bits: i16) -> Result<Self, RecordsError> {
        Ok(Self {
            compression: Compression::from_id((bits & COMPRESSION_MASK) as u8)?,
            timestamp_type: if bits & TIMESTAMP_TYPE_BIT != 0 {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            transactional: bits & TRANSACTIONAL_BIT != 0,
            control: bits & CONTROL_BIT != 0,
            delete_horizon: bits & DELETE_HORIZON_BIT != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_follow_the_protocol_guide() {
        let attrs = BatchAttributes {
            compression: Compression::Lz4,
            timestamp_type: TimestampType::LogAppendTime,
            transactional: true,
            control: true,
            delete_horizon: false,
        };
        assert_eq!(attrs.to_bits(), 0b0011_1011);
        assert_eq!(BatchAttributes::from_bits(0b0011_1011).unwrap(), attrs);
    }

    #[test]
    fn codec_ids_five_to_seven_are_errors() {
        for id in 5..=7 {
            assert_eq!(
                Compression::from_id(id),
                Err(RecordsError::UnknownCompression(id))
            );
        }
    }
}
