//! `kafka-wire`: everything about Kafka bytes and connections, in pure Rust.
//!
//! | module      | job                                                             | I/O |
//! |-------------|-----------------------------------------------------------------|-----|
//! | [`codec`]   | frames, request/response headers, ApiVersions negotiation       | no  |
//! | [`records`] | record batch v2: varints, CRC-32C, headers, control, compression | no  |
//! | [`conn`]    | TCP/TLS transport, pipelined connections, SASL                  | yes |
//! | [`error`]   | Kafka error codes and their classification                      | no  |
//!
//! Message bodies are the `kafka-protocol` crate's structs (re-exported as
//! [`protocol`]); record batches are this crate's own. `codec` and `records`
//! never touch sockets or clocks; `conn` is the only module that does.
//!
//! kafka-wire reports facts (this response carried error code 45 for
//! partition 3); the `semantics` crate decides what to do about them.
//!
//! # Features
//! - `graviola` (default): TLS through rustls with graviola's cryptography,
//!   so the default build compiles no C. It runs on x86_64 and aarch64 CPUs
//!   with the extensions graviola needs ([`conn::tls_provider`]).
//! - `ring`, `aws-lc-rs`: the other rustls providers, compiling C; used
//!   where graviola cannot run, or alone with `default-features = false`.
//!
//! # References
//! - Kafka protocol guide: <https://kafka.apache.org/protocol>
//! - Record batch format: <https://kafka.apache.org/documentation/#recordbatch>
//! - KIP-482 (flexible versions, tagged fields), KIP-511 (ApiVersions client
//!   name), KIP-896 (versions removed in Kafka 4.0), KIP-98 (idempotence and
//!   transactions), KIP-152 (SaslAuthenticate), RFC 5802 / RFC 7677 (SCRAM),
//!   RFC 8446 (TLS 1.3: alerts a broker sends after the handshake).
#![deny(missing_docs)]

pub mod codec;
pub mod conn;
pub mod error;
pub mod records;

/// The `kafka-protocol` crate, whose message structs this crate sends.
pub use kafka_protocol as protocol;

pub use conn::{ConnError, Connection, ConnectionConfig};
pub use error::{ErrorClass, KafkaCode};
