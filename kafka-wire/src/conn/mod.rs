//! Connections to one broker: transport (TCP, TLS), pipelining, SASL.
//!
//! - [`transport`]: TCP connect, plain or through [`tls`] (tokio-rustls, with
//!   the crypto provider [`tls_provider`] picks).
//! - [`connection`]: pipelined requests keyed by correlation id, per-request
//!   timeout, ApiVersions on every new connection, poisoning.
//! - [`traffic`]: requests and bytes counted across a client's connections.
//! - [`sasl`]: PLAIN and SCRAM-SHA-256/512 over SaslHandshake/SaslAuthenticate;
//!   [`scram`] holds the pure SCRAM message logic.

pub mod connection;
pub mod error;
pub mod sasl;
pub mod scram;
pub mod tls;
pub mod tls_provider;
pub mod traffic;
pub mod transport;

pub use connection::{Connection, ConnectionConfig};
pub use error::{ConnError, TlsError};
pub use sasl::{SaslConfig, SaslMechanism};
pub use tls::TlsConfig;
pub use tls_provider::TlsProvider;
pub use traffic::{Traffic, TrafficSnapshot};
pub use transport::connect;
