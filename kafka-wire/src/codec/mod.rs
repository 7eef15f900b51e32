//! Pure protocol encoding: bytes in, values out. No sockets, no clocks.
//!
//! - [`frame`]: size-prefixed frames with a maximum size checked before allocating.
//! - [`header`]: request header v1/v2, response header v0/v1 (tagged fields).
//! - [`message`]: whole requests and responses, bodies from `kafka-protocol`.
//! - [`versions`]: ApiVersions negotiation.
//! - [`consumer_protocol`]: subscription and assignment metadata of consumer groups.

pub mod consumer_protocol;
pub mod frame;
pub mod header;
pub mod message;
pub mod versions;

pub use frame::{FrameDecoder, DEFAULT_MAX_FRAME_SIZE};
pub use header::{RequestHeader, ResponseHeader};
pub use message::{decode_response, encode_request};
pub use versions::{ApiVersionRange, NegotiatedVersions, VersionError};

/// Errors from encoding or decoding protocol bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// A frame's size prefix exceeds the configured maximum.
    #[error("frame of {size} bytes exceeds the maximum frame size of {max} bytes")]
    FrameTooLarge {
        /// Declared size.
        size: usize,
        /// Configured maximum (`socket.request.max.bytes` equivalent).
        max: usize,
    },
    /// A frame's size prefix is negative.
    #[error("negative frame size {0}")]
    NegativeFrameSize(i32),
    /// Input ended inside a header field.
    #[error("truncated {what}: needed {needed} bytes, {available} available")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes there were.
        available: usize,
    },
    /// A malformed unsigned varint or tagged field section.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// `kafka-protocol` could not decode a message body.
    #[error("cannot decode {api} v{version} response: {reason}")]
    Decode {
        /// API name.
        api: &'static str,
        /// Version used.
        version: i16,
        /// Decoder's reason.
        reason: String,
    },
    /// `kafka-protocol` could not encode a message body (e.g. a field that the
    /// chosen version cannot carry).
    #[error("cannot encode {api} v{version} request: {reason}")]
    Encode {
        /// API name.
        api: &'static str,
        /// Version used.
        version: i16,
        /// Encoder's reason.
        reason: String,
    },
}

/// The protocol guide's name for an API key, e.g. `Produce`.
pub fn api_name(api_key: i16) -> &'static str {
    kafka_protocol::messages::ApiKey::try_from(api_key)
        .map(api_key_name)
        .unwrap_or("UnknownApi")
}

fn api_key_name(key: kafka_protocol::messages::ApiKey) -> &'static str {
    use kafka_protocol::messages::ApiKey::*;
    match key {
        Produce => "Produce",
        Fetch => "Fetch",
        ListOffsets => "ListOffsets",
        Metadata => "Metadata",
        OffsetCommit => "OffsetCommit",
        OffsetFetch => "OffsetFetch",
        FindCoordinator => "FindCoordinator",
        JoinGroup => "JoinGroup",
        Heartbeat => "Heartbeat",
        LeaveGroup => "LeaveGroup",
        SyncGroup => "SyncGroup",
        DescribeGroups => "DescribeGroups",
        ListGroups => "ListGroups",
        SaslHandshake => "SaslHandshake",
        ApiVersions => "ApiVersions",
        CreateTopics => "CreateTopics",
        DeleteTopics => "DeleteTopics",
        DeleteRecords => "DeleteRecords",
        InitProducerId => "InitProducerId",
        AddPartitionsToTxn => "AddPartitionsToTxn",
        AddOffsetsToTxn => "AddOffsetsToTxn",
        EndTxn => "EndTxn",
        TxnOffsetCommit => "TxnOffsetCommit",
        DescribeConfigs => "DescribeConfigs",
        SaslAuthenticate => "SaslAuthenticate",
        CreatePartitions => "CreatePartitions",
        _ => "OtherApi",
    }
}
