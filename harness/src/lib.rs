//! `harness`: proof that the delivery guarantees hold against a real broker.
//!
//! - [`broker`]: the local Apache Kafka cluster — install from Maven Central,
//!   start N KRaft nodes, kill, stop, pause and restart any node, find leaders
//!   and coordinators.
//! - [`checker`]: counts lost, duplicated, reordered, aborted-read records.
//! - [`proxy`]: fault-injecting Kafka-aware TCP proxy.
//! - [`scripted_broker`]: an in-process broker answering Produce from a script.
//! - [`wire_ops`]: single wire-level operations (create topic, produce, fetch).
//! - [`smoke`]: the smoke run: start the broker, produce and fetch a batch.
//! - [`fixtures`]: librdkafka (Python confluent-kafka) as the interop peer, and
//!   the captured Fetch fixtures.
//! - [`java`]: the Java client (kafka-clients, kafka-tools) as the interop peer.
//!
//! The fault proxy, the checker, the scenario matrix and the benchmarks grow
//! here with the producer, consumer and transactions.

pub mod bench;
pub mod broker;
pub mod checker;
pub mod consume;
pub mod crash;
pub mod fixtures;
pub mod java;
pub mod peers;
pub mod produce;
pub mod proxy;
pub mod scripted_broker;
pub mod smoke;
pub mod transform;
pub mod verify;
pub mod wire_ops;
