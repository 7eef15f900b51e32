//! KIP-320 position validation: after the leader of a partition changed,
//! ask the new leader where the epoch of the last fetched batch ends in its
//! log (OffsetForLeaderEpoch). An end before the position means the log was
//! truncated under the consumer (an unclean leader election): the records
//! from there on are not the ones the consumer read. No I/O here.

use kafka_wire::protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_wire::protocol::messages::{
    BrokerId, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, TopicName,
};
use kafka_wire::protocol::protocol::StrBytes;
use kafka_wire::KafkaCode;

use super::fetch::EpochEnd;
use super::TopicPartition;

/// One position to validate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationTarget {
    /// The partition.
    pub tp: TopicPartition,
    /// The fetch position.
    pub offset: i64,
    /// The leader epoch of the batch before `offset`.
    pub last_fetched_epoch: i32,
    /// The leader epoch this client believes current.
    pub current_leader_epoch: i32,
}

/// What the leader said about one position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// The leader's log holds the consumer's history up to the position.
    Valid,
    /// The log was truncated: it parts from the consumer's history at
    /// `end_offset` (below the position).
    Diverged(EpochEnd),
    /// The leader knows no epoch at or before the consumer's: where the logs
    /// part is unknown (the consumer's history was deleted or truncated away).
    Unknown,
    /// The broker's error for this partition.
    Error(KafkaCode),
}

/// The request for `targets` (a consumer's replica id, −1).
pub fn build_request(targets: &[ValidationTarget]) -> OffsetForLeaderEpochRequest {
    let mut topics: Vec<OffsetForLeaderTopic> = Vec::new();
    for target in targets {
        let partition = OffsetForLeaderPartition::default()
            .with_partition(target.tp.partition)
            .with_current_leader_epoch(target.current_leader_epoch)
            .with_leader_epoch(target.last_fetched_epoch);
        match topics
            .iter_mut()
            .find(|t| t.topic.as_str() == target.tp.topic)
        {
            Some(topic) => topic.partitions.push(partition),
            None => topics.push(
                OffsetForLeaderTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(target.tp.topic.clone())))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(topics)
}

/// Judges each target by the answer; targets the answer leaves out are
/// not in the result.
pub fn judge(
    targets: &[ValidationTarget],
    response: &OffsetForLeaderEpochResponse,
) -> Vec<(TopicPartition, Validation)> {
    let mut out = Vec::with_capacity(targets.len());
    for topic in &response.topics {
        for answer in &topic.partitions {
            let Some(target) = targets
                .iter()
                .find(|t| t.tp.partition == answer.partition && t.tp.topic == topic.topic.as_str())
            else {
                continue;
            };
            let code = KafkaCode(answer.error_code);
            let validation = if !code.is_ok() {
                Validation::Error(code)
            } else if answer.leader_epoch < 0 || answer.end_offset < 0 {
                Validation::Unknown
            } else if answer.end_offset < target.offset {
                Validation::Diverged(EpochEnd {
                    epoch: answer.leader_epoch,
                    end_offset: answer.end_offset,
                })
            } else {
                Validation::Valid
            };
            out.push((target.tp.clone(), validation));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use kafka_wire::protocol::messages::offset_for_leader_epoch_response::{
        EpochEndOffset, OffsetForLeaderTopicResult,
    };

    use super::*;

    fn target(partition: i32, offset: i64) -> ValidationTarget {
        ValidationTarget {
            tp: TopicPartition::new("t", partition),
            offset,
            last_fetched_epoch: 3,
            current_leader_epoch: 5,
        }
    }

    fn answer(partition: i32, code: i16, epoch: i32, end: i64) -> EpochEndOffset {
        EpochEndOffset::default()
            .with_partition(partition)
            .with_error_code(code)
            .with_leader_epoch(epoch)
            .with_end_offset(end)
    }

    #[test]
    fn an_epoch_ending_before_the_position_is_a_truncation() {
        let targets = [target(0, 150), target(1, 100), target(2, 10), target(3, 7)];
        let request = build_request(&targets);
        assert_eq!(request.replica_id.0, -1);
        let sent = &request.topics[0].partitions[0];
        assert_eq!((sent.current_leader_epoch, sent.leader_epoch), (5, 3));
        let response = OffsetForLeaderEpochResponse::default().with_topics(vec![
            OffsetForLeaderTopicResult::default()
                .with_topic(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![
                    answer(0, 0, 3, 100),
                    answer(1, 0, 3, 100),
                    answer(2, 0, -1, -1),
                    answer(3, 74, -1, -1),
                ]),
        ]);
        assert_eq!(
            judge(&targets, &response),
            vec![
                (
                    TopicPartition::new("t", 0),
                    Validation::Diverged(EpochEnd {
                        epoch: 3,
                        end_offset: 100
                    })
                ),
                (TopicPartition::new("t", 1), Validation::Valid),
                (TopicPartition::new("t", 2), Validation::Unknown),
                (
                    TopicPartition::new("t", 3),
                    Validation::Error(KafkaCode(74))
                ),
            ]
        );
    }
}
