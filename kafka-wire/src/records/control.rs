//! Control records: the commit and abort markers a transaction coordinator writes.
//!
//! The marker type lives in the record **key** (int16 version, int16 type:
//! 0 = abort, 1 = commit); the value holds int16 version and int32 coordinator
//! epoch. rskafka read the type from the wrong place and failed on every
//! transactional topic (shared/PITFALLS.md).

use bytes::{BufMut, Bytes, BytesMut};

use super::{Record, RecordsError};

/// What a control record marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlType {
    /// The producer's open transaction was aborted.
    Abort,
    /// The producer's open transaction was committed.
    Commit,
    /// A type this client does not know (e.g. KRaft-internal); skip it.
    Unknown(i16),
}

impl ControlType {
    /// The wire value.
    pub fn id(self) -> i16 {
        match self {
            Self::Abort => 0,
            Self::Commit => 1,
            Self::Unknown(id) => id,
        }
    }

    fn from_id(id: i16) -> Self {
        match id {
            0 => Self::Abort,
            1 => Self::Commit,
            other => Self::Unknown(other),
        }
    }
}

/// A decoded control record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlRecord {
    /// Key schema version (0 today).
    pub version: i16,
    /// Commit, abort, or unknown.
    pub kind: ControlType,
    /// Coordinator epoch from the value, when the value is there.
    pub coordinator_epoch: Option<i32>,
}

impl ControlRecord {
    /// Parses the marker from a record of a control batch.
    pub fn from_record(record: &Record) -> Result<Self, RecordsError> {
        let key = record
            .key
            .as_deref()
            .ok_or(RecordsError::Malformed("control record without a key"))?;
        let [v0, v1, t0, t1, ..] = *key else {
            return Err(RecordsError::Truncated {
                needed: 4,
                available: key.len(),
            });
        };
        let coordinator_epoch = match record.value.as_deref() {
            Some([_, _, e0, e1, e2, e3, ..]) => Some(i32::from_be_bytes([*e0, *e1, *e2, *e3])),
            _ => None,
        };
        Ok(Self {
            version: i16::from_be_bytes([v0, v1]),
            kind: ControlType::from_id(i16::from_be_bytes([t0, t1])),
            coordinator_epoch,
        })
    }

    /// The record key as the broker writes it.
    pub fn key_bytes(&self) -> Bytes {
        let mut key = BytesMut::with_capacity(4);
        key.put_i16(self.version);
        key.put_i16(self.kind.id());
        key.freeze()
    }

    /// The record value as the broker writes it (version 0, coordinator epoch).
    pub fn value_bytes(&self) -> Bytes {
        let mut value = BytesMut::with_capacity(6);
        value.put_i16(0);
        value.put_i32(self.coordinator_epoch.unwrap_or(0));
        value.freeze()
    }
}
