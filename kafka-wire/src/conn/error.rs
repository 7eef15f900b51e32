//! Connection-layer errors.

use std::sync::Arc;
use std::time::Duration;

use crate::codec::{CodecError, VersionError};
use crate::error::KafkaCode;

use super::scram::SaslError;

/// Why a request on a connection failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConnError {
    /// Socket error (connect, read or write).
    #[error("I/O error: {message}")]
    Io {
        /// Kind, for matching.
        kind: std::io::ErrorKind,
        /// The OS's message.
        message: String,
    },
    /// The broker closed the connection.
    #[error("connection closed by the broker")]
    Closed,
    /// A frame or header could not be decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// No version both sides speak.
    #[error(transparent)]
    Version(#[from] VersionError),
    /// The broker did not answer within `request.timeout.ms`. The request may
    /// have been processed: the outcome is unknown.
    #[error("{api} request (correlation id {correlation_id}) timed out after {after:?}")]
    Timeout {
        /// API name.
        api: &'static str,
        /// Correlation id.
        correlation_id: i32,
        /// The timeout.
        after: Duration,
    },
    /// A response arrived for no request in flight: the stream is out of step.
    #[error("response with unexpected correlation id {received}")]
    UnexpectedCorrelationId {
        /// The id found.
        received: i32,
    },
    /// The connection failed earlier; `cause` is that failure, shared by every
    /// request that was in flight. `sent` tells whether this request reached
    /// the socket (then it may have been processed).
    #[error("connection poisoned ({}): {cause}", if *sent { "request was in flight" } else { "request not sent" })]
    Poisoned {
        /// The original failure.
        cause: Arc<ConnError>,
        /// Whether this request was written before the failure.
        sent: bool,
    },
    /// The broker answered the handshake with an error code.
    #[error("broker refused the connection handshake: {0}")]
    Handshake(KafkaCode),
    /// SASL authentication failed.
    #[error(transparent)]
    Sasl(#[from] SaslError),
    /// TLS setup or handshake failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// The broker's last connection attempt failed and its reconnect
    /// backoff (`reconnect.backoff.ms`, doubling up to
    /// `reconnect.backoff.max.ms`) has not passed: not tried, retry later.
    #[error(
        "broker {broker} is backing off after a failed connection; next attempt in {retry_in:?}"
    )]
    Backoff {
        /// The broker id.
        broker: i32,
        /// Time left.
        retry_in: Duration,
    },
    /// Bad connection configuration.
    #[error("invalid configuration `{key}`: {reason}")]
    Config {
        /// The configuration key.
        key: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },
}

impl ConnError {
    /// True when the request may have been processed by the broker although no
    /// answer came: only idempotence makes retrying such a request safe.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Self::Timeout { .. } => true,
            Self::Poisoned { sent, .. } => *sent,
            _ => false,
        }
    }

    /// The root cause, looking through [`ConnError::Poisoned`].
    pub fn root(&self) -> &ConnError {
        match self {
            Self::Poisoned { cause, .. } => cause.root(),
            other => other,
        }
    }
}

impl From<std::io::Error> for ConnError {
    fn from(e: std::io::Error) -> Self {
        Self::Io {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}
