//! Fetch requests for the partitions one broker leads, and their answers
//! decoded per partition. No I/O and no policy here: the driver decides
//! what an error means.

use kafka_wire::protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_wire::protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_wire::protocol::protocol::StrBytes;
use kafka_wire::records::{BatchReader, DecodeOptions, RecordBatch};
use kafka_wire::KafkaCode;

use super::read_committed::AbortedTransaction;
use super::{ConsumerConfig, TopicPartition};

/// One partition to fetch, from `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchTarget {
    /// The partition.
    pub tp: TopicPartition,
    /// First offset wanted.
    pub offset: i64,
}

/// One partition's part of a Fetch response.
#[derive(Debug)]
pub enum PartitionFetch {
    /// Batches in offset order, possibly followed by a batch that failed to decode.
    Data {
        /// Complete, valid batches.
        batches: Vec<RecordBatch>,
        /// The first batch that failed to decode: the offset it starts at (the
        /// offset after the last good batch) and why.
        corrupt: Option<(i64, String)>,
        /// The aborted-transactions list (read_committed).
        aborted: Vec<AbortedTransaction>,
        /// High watermark, for lag.
        high_watermark: i64,
        /// Last stable offset: where read_committed reading ends for now.
        last_stable_offset: i64,
        /// Bytes of record data, for prefetch accounting.
        bytes: usize,
    },
    /// The broker's error for this partition.
    Error(KafkaCode),
}

/// A full (session-less) Fetch for `targets`.
pub fn build_request(config: &ConsumerConfig, targets: &[FetchTarget]) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for target in targets {
        let partition = FetchPartition::default()
            .with_partition(target.tp.partition)
            .with_current_leader_epoch(-1)
            .with_fetch_offset(target.offset)
            .with_last_fetched_epoch(-1)
            .with_log_start_offset(-1)
            .with_partition_max_bytes(clamp_i32(config.max_partition_fetch_bytes));
        match topics
            .iter_mut()
            .find(|t| t.topic.as_str() == target.tp.topic)
        {
            Some(topic) => topic.partitions.push(partition),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(target.tp.topic.clone())))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(config.fetch_max_wait.as_millis().min(i32::MAX as u128) as i32)
        .with_min_bytes(clamp_i32(config.fetch_min_bytes))
        .with_max_bytes(clamp_i32(config.fetch_max_bytes))
        .with_isolation_level(config.isolation_level.wire_value())
        // No fetch session (KIP-227): every request names every partition.
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics)
}

fn clamp_i32(n: usize) -> i32 {
    n.min(i32::MAX as usize) as i32
}

/// Splits a Fetch response into partitions and decodes their batches.
pub fn decode_response(
    response: FetchResponse,
    options: &DecodeOptions,
) -> Result<Vec<(TopicPartition, PartitionFetch)>, KafkaCode> {
    let top = KafkaCode(response.error_code);
    if !top.is_ok() {
        return Err(top);
    }
    let mut out = Vec::new();
    for topic in response.responses {
        for partition in topic.partitions {
            let tp = TopicPartition::new(topic.topic.as_str(), partition.partition_index);
            let code = KafkaCode(partition.error_code);
            let fetched = if code.is_ok() {
                decode_partition(partition, options)
            } else {
                PartitionFetch::Error(code)
            };
            out.push((tp, fetched));
        }
    }
    Ok(out)
}

fn decode_partition(
    partition: kafka_wire::protocol::messages::fetch_response::PartitionData,
    options: &DecodeOptions,
) -> PartitionFetch {
    let aborted = partition
        .aborted_transactions
        .unwrap_or_default()
        .into_iter()
        .map(|a| AbortedTransaction {
            producer_id: a.producer_id.0,
            first_offset: a.first_offset,
        })
        .collect();
    let records = partition.records.unwrap_or_default();
    let bytes = records.len();
    let mut batches = Vec::new();
    let mut corrupt = None;
    for result in BatchReader::with_options(records, *options) {
        match result {
            Ok(batch) => batches.push(batch),
            Err(e) => {
                let at = batches
                    .last()
                    .map_or(-1, |b: &RecordBatch| b.header.next_offset());
                corrupt = Some((at, e.to_string()));
            }
        }
    }
    PartitionFetch::Data {
        batches,
        corrupt,
        aborted,
        high_watermark: partition.high_watermark,
        last_stable_offset: partition.last_stable_offset,
        bytes,
    }
}
