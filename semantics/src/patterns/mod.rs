//! What applications build on Kafka, ready-made: a retry policy shared by
//! producer and handler retries, a dead-letter queue with a self-describing
//! envelope, an idempotent-consumer dedup store (in memory, or in PostgreSQL
//! with the `postgres` feature) for side effects outside Kafka, and
//! request-reply over Kafka (Spring-compatible correlation headers).

pub mod dedup;
pub mod dlq;
pub mod request_reply;
pub use crate::retry;
