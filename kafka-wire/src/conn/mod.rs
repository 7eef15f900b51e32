//! Connections to one broker: transport (TCP, TLS), pipelining, SASL.
//!
//! - [`transport`]: TCP connect, and TLS through tokio-rustls (feature `tls`).
//! - [`connection`]: pipelined requests keyed by correlation id, per-request
//!   timeout, ApiVersions on every new connection, poisoning.
//! - [`sasl`]: PLAIN and SCRAM-SHA-256/512 over SaslHandshake/SaslAuthenticate;
//!   [`scram`] holds the pure SCRAM message logic.

pub mod connection;
pub mod error;
pub mod sasl;
pub mod scram;
pub mod transport;

pub use connection::{Connection, ConnectionConfig};
pub use error::ConnError;
pub use sasl::{SaslConfig, SaslMechanism};
pub use transport::{connect, TlsConfig};
