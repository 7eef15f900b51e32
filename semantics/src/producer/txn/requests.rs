//! Transaction coordinator requests (v1 protocol, KIP-98) and the first error
//! code each answer carries. Pure builders, no I/O.

use std::collections::BTreeMap;

use kafka_wire::protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_wire::protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_wire::protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, EndTxnRequest,
    GroupId, InitProducerIdRequest, ProducerId, TopicName, TransactionalId, TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
};
use kafka_wire::protocol::protocol::StrBytes;
use kafka_wire::KafkaCode;

use crate::consumer::{GroupMetadata, TopicPartition};

/// Producer id and epoch.
pub type ProducerIdentity = (i64, i16);

fn txn_id(id: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(id.to_owned()))
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

/// InitProducerId for a transactional id. The coordinator bumps the epoch
/// (fencing older producers with the id) and aborts any open transaction.
/// `current`: the id and epoch held, presented to recover after the
/// coordinator bumped the epoch itself (KIP-588); `None` for a new instance.
pub fn init_producer_id(
    transactional_id: &str,
    timeout_ms: i32,
    current: Option<ProducerIdentity>,
) -> InitProducerIdRequest {
    let (id, epoch) = current.unwrap_or((-1, -1));
    InitProducerIdRequest::default()
        .with_transactional_id(Some(txn_id(transactional_id)))
        .with_transaction_timeout_ms(timeout_ms)
        .with_producer_id(ProducerId(id))
        .with_producer_epoch(epoch)
}

/// AddPartitionsToTxn (v0–3, one transaction).
pub fn add_partitions(
    transactional_id: &str,
    producer: ProducerIdentity,
    partitions: &[TopicPartition],
) -> AddPartitionsToTxnRequest {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(txn_id(transactional_id))
        .with_v3_and_below_producer_id(ProducerId(producer.0))
        .with_v3_and_below_producer_epoch(producer.1)
        .with_v3_and_below_topics(
            by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    AddPartitionsToTxnTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(partitions)
                })
                .collect(),
        )
}

/// The first partition error of an AddPartitionsToTxn answer. Partitions
/// answered OPERATION_NOT_ATTEMPTED (55) only failed because another did.
pub fn add_partitions_error(response: &AddPartitionsToTxnResponse) -> KafkaCode {
    let top = KafkaCode(response.error_code);
    if !top.is_ok() {
        return top;
    }
    let codes = response
        .results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| &t.results_by_partition)
        .map(|p| KafkaCode(p.partition_error_code));
    let mut first = KafkaCode::NONE;
    for code in codes.filter(|c| !c.is_ok()) {
        if code.0 != 55 {
            return code;
        }
        first = code;
    }
    first
}

/// AddOffsetsToTxn: the group's offsets join the transaction.
pub fn add_offsets(
    transactional_id: &str,
    producer: ProducerIdentity,
    group_id: &str,
) -> AddOffsetsToTxnRequest {
    AddOffsetsToTxnRequest::default()
        .with_transactional_id(txn_id(transactional_id))
        .with_producer_id(ProducerId(producer.0))
        .with_producer_epoch(producer.1)
        .with_group_id(GroupId(StrBytes::from_string(group_id.to_owned())))
}

/// TxnOffsetCommit to the group coordinator, carrying the consumer's
/// generation so a zombie from an older generation is fenced (KIP-447).
pub fn txn_offset_commit(
    transactional_id: &str,
    producer: ProducerIdentity,
    group: &GroupMetadata,
    offsets: &[(TopicPartition, i64)],
) -> TxnOffsetCommitRequest {
    let mut by_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
    for (tp, offset) in offsets {
        by_topic
            .entry(&tp.topic)
            .or_default()
            .push((tp.partition, *offset));
    }
    TxnOffsetCommitRequest::default()
        .with_transactional_id(txn_id(transactional_id))
        .with_group_id(GroupId(StrBytes::from_string(group.group_id.clone())))
        .with_producer_id(ProducerId(producer.0))
        .with_producer_epoch(producer.1)
        .with_generation_id(group.generation_id)
        .with_member_id(StrBytes::from_string(group.member_id.clone()))
        .with_group_instance_id(group.group_instance_id.clone().map(StrBytes::from_string))
        .with_topics(
            by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    TxnOffsetCommitRequestTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|(p, offset)| {
                                    TxnOffsetCommitRequestPartition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(offset)
                                        .with_committed_leader_epoch(-1)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

/// The first partition error of a TxnOffsetCommit answer.
pub fn txn_offset_commit_error(response: &TxnOffsetCommitResponse) -> KafkaCode {
    response
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| KafkaCode(p.error_code))
        .find(|c| !c.is_ok())
        .unwrap_or(KafkaCode::NONE)
}

/// EndTxn: commit or abort.
pub fn end_txn(transactional_id: &str, producer: ProducerIdentity, commit: bool) -> EndTxnRequest {
    EndTxnRequest::default()
        .with_transactional_id(txn_id(transactional_id))
        .with_producer_id(ProducerId(producer.0))
        .with_producer_epoch(producer.1)
        .with_committed(commit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_wire::protocol::messages::add_partitions_to_txn_response::{
        AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
    };

    #[test]
    fn add_partitions_groups_by_topic() {
        let request = add_partitions(
            "t",
            (7, 2),
            &[
                TopicPartition::new("b", 1),
                TopicPartition::new("a", 0),
                TopicPartition::new("b", 0),
            ],
        );
        let topics: Vec<(String, Vec<i32>)> = request
            .v3_and_below_topics
            .iter()
            .map(|t| (t.name.to_string(), t.partitions.clone()))
            .collect();
        assert_eq!(topics, [("a".into(), vec![0]), ("b".into(), vec![1, 0])]);
        assert_eq!(
            (
                request.v3_and_below_producer_id.0,
                request.v3_and_below_producer_epoch
            ),
            (7, 2)
        );
    }

    #[test]
    fn operation_not_attempted_is_not_the_cause() {
        let result =
            |code| AddPartitionsToTxnPartitionResult::default().with_partition_error_code(code);
        let response =
            AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(vec![
                AddPartitionsToTxnTopicResult::default().with_results_by_partition(vec![
                    result(55),
                    result(29),
                    result(0),
                ]),
            ]);
        assert_eq!(add_partitions_error(&response), KafkaCode(29));
    }
}
