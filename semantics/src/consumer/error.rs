//! What a consumer call, or one partition's fetching, ran into.

use kafka_wire::{ConnError, ErrorClass, KafkaCode};

use crate::config::ConfigError;

/// Consumer errors, each saying what failed and what to do about it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A fetched batch failed to decode (bad CRC, truncated header …). The
    /// partition stops at `offset`; `seek` past it to go on.
    #[error("corrupt record batch in {topic}-{partition} at offset {offset}: {reason}")]
    Corrupt {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Fetch position where the bad batch starts.
        offset: i64,
        /// What the decoder found.
        reason: String,
    },
    /// The position is unknown or out of range and `auto.offset.reset=none`:
    /// `seek` to choose one.
    #[error("no valid offset for {topic}-{partition} and auto.offset.reset=none: {code}")]
    NoOffset {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// What the broker said (OFFSET_OUT_OF_RANGE, or NONE when nothing was committed).
        code: KafkaCode,
    },
    /// The partition's log was truncated under the consumer (an unclean
    /// leader election, KIP-320) and `auto.offset.reset=none`: the records
    /// from `divergent_offset` to `offset` that this consumer read are gone
    /// and others may take their offsets. The partition stops; `seek` to
    /// go on (to `divergent_offset` to read the new log's records there).
    /// With a reset policy the consumer moves to `divergent_offset` itself.
    #[error("log of {topic}-{partition} truncated below the position {offset}: {}", match divergent_offset {
        Some(at) => format!("the leader's log parts from the history read at offset {at}"),
        None => "where it parts from the history read is unknown".to_owned(),
    })]
    LogTruncated {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The fetch position when the truncation was found.
        offset: i64,
        /// The first offset whose record may differ from what was read
        /// (`None` when the leader cannot tell).
        divergent_offset: Option<i64>,
    },
    /// A partition-level error retries will not fix (authorization, …).
    #[error("{topic}-{partition}: {code}")]
    Partition {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Kafka error code.
        code: KafkaCode,
    },
    /// Group membership failed for good (fenced static member, authorization,
    /// inconsistent protocol). Create a new consumer.
    #[error("consumer group membership failed: {0}")]
    Group(KafkaCode),
    /// An offset commit was refused. After a rebalance (`REBALANCE_IN_PROGRESS`,
    /// `ILLEGAL_GENERATION`, `UNKNOWN_MEMBER_ID`) the partitions may belong to
    /// another member now: their records may be delivered again.
    #[error("offset commit failed: {code}")]
    Commit {
        /// Kafka error code.
        code: KafkaCode,
    },
    /// The group rebalanced while records were processed: `revoked` were
    /// taken away (empty when this member is in no generation at all, as
    /// after a lost membership). Do not commit the records returned since
    /// the last [`group_metadata`](super::Consumer::group_metadata) — abort
    /// their transaction, or drop the work — and go on polling: the
    /// partitions' owners read them again from the committed offsets.
    #[error("the group rebalanced under the records in hand; partitions taken away: {revoked:?}")]
    Rebalanced {
        /// Partitions whose records were returned and that are no longer this consumer's.
        revoked: Vec<super::TopicPartition>,
    },
    /// `subscribe` or a commit needs `group.id`.
    #[error("this call needs group.id to be set")]
    NoGroup,
    /// Talking to a broker failed; the consumer retries on its own, this is
    /// reported for calls that waited on it.
    #[error("connection: {0}")]
    Connection(#[from] ConnError),
    /// The call did not finish within its timeout.
    #[error("timed out after {0} ms")]
    Timeout(u128),
    /// The consumer was closed.
    #[error("consumer closed")]
    Closed,
}

/// OffsetCommit codes that mean "the group moved on": the member rejoins;
/// the offsets were not committed (the Java client's `CommitFailedException`
/// and `RebalanceInProgressException`).
const REBALANCE_CODES: [i16; 3] = [22, 25, 27];

impl ConsumeError {
    /// Whether a rebalance refused the commit or took records' partitions
    /// away: not a failure of the consumer — poll again and process what
    /// comes (the records may come again, here or at another member).
    pub fn is_rebalance(&self) -> bool {
        match self {
            Self::Rebalanced { .. } => true,
            Self::Commit { code } => REBALANCE_CODES.contains(&code.0),
            _ => false,
        }
    }

    /// Whether trying again later may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Connection(_) | Self::Timeout(_) => true,
            Self::Commit { code } | Self::Partition { code, .. } => {
                matches!(
                    code.class(),
                    ErrorClass::Retriable | ErrorClass::RefreshMetadata
                )
            }
            _ => false,
        }
    }
}
