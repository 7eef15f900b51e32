//! Fetch requests for the partitions one broker leads, and their answers
//! decoded per partition. No I/O and no policy here: the driver decides
//! what an error means.

use kafka_wire::protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_wire::protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_wire::protocol::protocol::StrBytes;
use kafka_wire::records::{BatchReader, DecodeOptions, RecordBatch};
use kafka_wire::KafkaCode;

use super::fetch_session::SessionRequest;
use super::read_committed::AbortedTransaction;
use super::{ConsumerConfig, TopicPartition};

/// One partition to fetch, from `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchTarget {
    /// The partition.
    pub tp: TopicPartition,
    /// First offset wanted.
    pub offset: i64,
    /// The leader epoch this client believes current (−1: unknown). A
    /// broker that is no longer the leader answers FENCED_LEADER_EPOCH, one
    /// that has not caught up UNKNOWN_LEADER_EPOCH (KIP-320).
    pub current_leader_epoch: i32,
    /// The leader epoch of the batch before `offset` (−1: unknown). The
    /// leader answers with a diverging epoch when its log no longer holds
    /// that history: the log was truncated under the consumer (Fetch v12).
    pub last_fetched_epoch: i32,
}

/// Where the leader's log parts from the history the consumer read: its
/// last epoch not after the consumer's and that epoch's end offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEnd {
    /// The leader epoch.
    pub epoch: i32,
    /// The offset the leader's log ends that epoch at.
    pub end_offset: i64,
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
        /// Set when the log was truncated below the fetch position.
        diverging: Option<EpochEnd>,
    },
    /// The broker's error for this partition, and the leader it named, if
    /// any (KIP-951: broker id and leader epoch).
    Error(KafkaCode, Option<(i32, i32)>),
}

/// A full (session-less) Fetch for `targets`, to be sent at `version`
/// (the epochs go only where the version has room for them).
pub fn build_request(
    config: &ConsumerConfig,
    targets: &[FetchTarget],
    version: i16,
) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for target in targets {
        let current_leader_epoch = if version >= 9 {
            target.current_leader_epoch
        } else {
            -1
        };
        let last_fetched_epoch = if version >= 12 {
            target.last_fetched_epoch
        } else {
            -1
        };
        let partition = FetchPartition::default()
            .with_partition(target.tp.partition)
            .with_current_leader_epoch(current_leader_epoch)
            .with_fetch_offset(target.offset)
            .with_last_fetched_epoch(last_fetched_epoch)
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

/// A Fetch within a session (KIP-227): the partitions `session` names and
/// those it forgets, under its id and epoch.
pub fn build_session_request(
    config: &ConsumerConfig,
    session: &SessionRequest,
    version: i16,
) -> FetchRequest {
    let mut forgotten: Vec<ForgottenTopic> = Vec::new();
    for tp in &session.forgotten {
        match forgotten.iter_mut().find(|t| t.topic.as_str() == tp.topic) {
            Some(topic) => topic.partitions.push(tp.partition),
            None => forgotten.push(
                ForgottenTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(tp.topic.clone())))
                    .with_partitions(vec![tp.partition]),
            ),
        }
    }
    build_request(config, &session.targets, version)
        .with_session_id(session.session_id)
        .with_session_epoch(session.session_epoch)
        .with_forgotten_topics_data(forgotten)
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
                let leader = &partition.current_leader;
                let hint = (leader.leader_id.0 >= 0 && leader.leader_epoch >= 0)
                    .then_some((leader.leader_id.0, leader.leader_epoch));
                PartitionFetch::Error(code, hint)
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
    let diverging = (partition.diverging_epoch.epoch >= 0
        && partition.diverging_epoch.end_offset >= 0)
        .then_some(EpochEnd {
            epoch: partition.diverging_epoch.epoch,
            end_offset: partition.diverging_epoch.end_offset,
        });
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
        diverging,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> FetchTarget {
        FetchTarget {
            tp: TopicPartition::new("t", 0),
            offset: 42,
            current_leader_epoch: 5,
            last_fetched_epoch: 4,
        }
    }

    fn epochs(version: i16) -> (i32, i32) {
        let request = build_request(&ConsumerConfig::default(), &[target()], version);
        let partition = &request.topics[0].partitions[0];
        (partition.current_leader_epoch, partition.last_fetched_epoch)
    }

    /// KIP-320: the epochs go where the version has a field for them (v9
    /// current leader epoch, v12 last fetched epoch); a lower version would
    /// refuse to encode them.
    #[test]
    fn epochs_are_sent_where_the_version_carries_them() {
        assert_eq!(epochs(12), (5, 4));
        assert_eq!(epochs(11), (5, -1));
        assert_eq!(epochs(8), (-1, -1));
    }
}
