//! The Kafka client users hold: producer, consumer, transactions and the
//! pluggable delivery guarantees built on them. (Grows with the producer,
//! consumer and transactions issues; today it re-exports the wire layer.)

pub use kafka_wire as wire;
