//! Connection-layer errors.

use std::path::PathBuf;
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
    Tls(#[from] TlsError),
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
    /// The TCP connect and TLS handshake to `address` took longer than
    /// `socket.connection.setup.timeout.ms`: the broker is down or
    /// unreachable (packets dropped). Retriable: try again after the
    /// reconnect backoff, or another broker.
    #[error(
        "connection to {address} not set up within {after:?} (socket.connection.setup.timeout.ms)"
    )]
    SetupTimeout {
        /// The address tried.
        address: String,
        /// The timeout.
        after: Duration,
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

/// Why TLS with a broker failed, saying which side has to change what.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// No crypto provider of this build can run here; `reason` names the
    /// cargo feature to enable.
    #[error("no usable crypto provider: {reason}")]
    NoProvider {
        /// Which provider cannot run, why, and what to build instead.
        reason: String,
    },
    /// CA check: the broker's certificate does not chain to a certificate
    /// of `ssl.ca.location`.
    #[error(
        "the broker's certificate (for `{server_name}`) is not signed by a CA of ssl.ca.location ({})",
        ca_location.display()
    )]
    UntrustedCertificate {
        /// The name checked.
        server_name: String,
        /// The trusted certificates' file.
        ca_location: PathBuf,
    },
    /// Server name check: the broker's certificate does not name the host
    /// connected to (or the configured server name).
    #[error(
        "the broker's certificate is not valid for `{server_name}`{}: the name clients \
         connect by (bootstrap.servers, the brokers' advertised.listeners) must be in it",
        names(presented)
    )]
    NameMismatch {
        /// The name checked.
        server_name: String,
        /// The names the certificate holds (empty when rustls did not say).
        presented: Vec<String>,
    },
    /// Another certificate problem: expired, not yet valid, wrong purpose …
    #[error("the broker's certificate (for `{server_name}`) was rejected: {reason}")]
    BadCertificate {
        /// The name checked.
        server_name: String,
        /// rustls' reason.
        reason: String,
    },
    /// The broker ended the TLS session with a fatal alert.
    #[error(
        "the broker refused the TLS session (alert {alert}){}",
        refusal_hint(alert)
    )]
    RefusedByBroker {
        /// The alert's name, as rustls spells it (`CertificateRequired` …).
        alert: String,
    },
    /// Any other TLS failure.
    #[error("{0}")]
    Other(String),
}

fn names(presented: &[String]) -> String {
    match presented {
        [] => String::new(),
        names => format!(" (it names {})", names.join(", ")),
    }
}

/// Alerts a broker with `ssl.client.auth=required` sends about the client's
/// certificate (RFC 8446 §6.2; Java sends `bad_certificate` for a missing one
/// in TLS 1.2).
fn refusal_hint(alert: &str) -> &'static str {
    match alert {
        "CertificateRequired"
        | "BadCertificate"
        | "UnknownCA"
        | "CertificateUnknown"
        | "AccessDenied" => {
            ": a broker that requires client certificates (ssl.client.auth=required) refuses \
             a client without ssl.certificate.location and ssl.key.location, or with a \
             certificate its truststore does not trust"
        }
        _ => "",
    }
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
        // TLS 1.3 ends the client's handshake before the broker has checked
        // the client's certificate: its refusal arrives on the first read.
        #[cfg(feature = "tls")]
        if let Some(tokio_rustls::rustls::Error::AlertReceived(alert)) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<tokio_rustls::rustls::Error>())
        {
            return Self::Tls(TlsError::RefusedByBroker {
                alert: format!("{alert:?}"),
            });
        }
        Self::Io {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}
