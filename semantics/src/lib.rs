//! The Kafka client users hold: producer, consumer, transactions and the
//! pluggable delivery guarantees built on them.
//!
//! - [`config`]: configuration with the Kafka property names.
//! - [`cluster`]: brokers, partition leaders, one connection per broker.
//! - [`producer`]: batching, partitioning, retries, idempotence, delivery reports.
//! - [`consumer`]: fetching, read_committed, consumer groups, offsets.
//! - [`error`]: what failed and what to do about it.
//! - [`retry`]: exponential backoff with jitter (KIP-580), for the client and for applications.
#![deny(missing_docs)]

pub mod cluster;
pub mod config;
mod config_env;
pub mod consumer;
mod fast_hash;
pub mod guarantee;
pub mod health;
pub mod patterns;
pub mod producer;
pub mod retry;

pub use config::{Acks, ProducerConfig};
pub use consumer::{ConsumeError, Consumer, ConsumerConfig, ConsumerRecord, TopicPartition};
pub use guarantee::{DeliveryGuarantee, Guarantee, Promise};
/// The wire layer this client is built on.
pub use kafka_wire as wire;
pub use producer::error;
pub use producer::error::ProduceError;
pub use producer::{Delivery, DeliveryFuture, Producer, ProducerRecord};
