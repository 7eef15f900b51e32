//! ListOffsets, OffsetFetch and OffsetCommit: building the requests and
//! reading their answers per partition.

use kafka_wire::protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsTopic,
};
use kafka_wire::protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_wire::protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_wire::protocol::messages::{
    BrokerId, GroupId, ListOffsetsRequest, OffsetCommitRequest, OffsetFetchRequest,
    OffsetFetchResponse, TopicName,
};
use kafka_wire::protocol::protocol::StrBytes;
use kafka_wire::{Connection, KafkaCode};

use super::{ConsumeError, IsolationLevel, TopicPartition};
use crate::fast_hash::FastMap;

/// ListOffsets timestamp asking for the log start.
pub const EARLIEST: i64 = -2;
/// ListOffsets timestamp asking for the end (high watermark, or the last
/// stable offset under read_committed).
pub const LATEST: i64 = -1;

/// Who commits: the group generation the offsets belong to (KIP-447 fencing
/// also uses it in TxnOffsetCommit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadata {
    /// `group.id`.
    pub group_id: String,
    /// Generation id, −1 outside a generation (manual assignment).
    pub generation_id: i32,
    /// Member id, empty outside a generation.
    pub member_id: String,
    /// `group.instance.id`.
    pub group_instance_id: Option<String>,
}

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

fn by_topic<T: Copy>(items: &[(TopicPartition, T)]) -> Vec<(&str, Vec<(i32, T)>)> {
    let mut grouped: Vec<(&str, Vec<(i32, T)>)> = Vec::new();
    for (tp, value) in items {
        match grouped.iter_mut().find(|(t, _)| *t == tp.topic) {
            Some((_, parts)) => parts.push((tp.partition, *value)),
            None => grouped.push((&tp.topic, vec![(tp.partition, *value)])),
        }
    }
    grouped
}

/// Asks `connection` (the partitions' leader) for the offset at each timestamp.
pub async fn list_offsets(
    connection: &Connection,
    isolation: IsolationLevel,
    wanted: &[(TopicPartition, i64)],
) -> Result<Vec<(TopicPartition, Result<i64, KafkaCode>)>, ConsumeError> {
    let topics = by_topic(wanted)
        .into_iter()
        .map(|(topic, parts)| {
            ListOffsetsTopic::default()
                .with_name(name(topic))
                .with_partitions(
                    parts
                        .into_iter()
                        .map(|(p, ts)| {
                            ListOffsetsPartition::default()
                                .with_partition_index(p)
                                .with_current_leader_epoch(-1)
                                .with_timestamp(ts)
                        })
                        .collect(),
                )
        })
        .collect();
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation.wire_value())
        .with_topics(topics);
    let response = connection.send(&request).await?;
    let mut out = Vec::new();
    for topic in response.topics {
        for p in topic.partitions {
            let tp = TopicPartition::new(topic.name.as_str(), p.partition_index);
            let code = KafkaCode(p.error_code);
            out.push((
                tp,
                if code.is_ok() {
                    Ok(p.offset)
                } else {
                    Err(code)
                },
            ));
        }
    }
    Ok(out)
}

/// Committed offsets of `partitions` for `group`; `None` where nothing was committed.
pub async fn fetch_committed(
    connection: &Connection,
    group: &str,
    partitions: &[TopicPartition],
) -> Result<Vec<(TopicPartition, Option<i64>)>, ConsumeError> {
    let version = connection
        .versions()
        .version_for::<OffsetFetchRequest>()
        .map_err(|e| ConsumeError::Connection(e.into()))?;
    let marked: Vec<(TopicPartition, ())> = partitions.iter().map(|tp| (tp.clone(), ())).collect();
    let grouped = by_topic(&marked);
    let mut request = OffsetFetchRequest::default().with_require_stable(true);
    if version >= 8 {
        // v8 batches groups (KIP-709).
        let topics = grouped
            .iter()
            .map(|(t, parts)| {
                OffsetFetchRequestTopics::default()
                    .with_name(name(t))
                    .with_partition_indexes(parts.iter().map(|(p, _)| *p).collect())
            })
            .collect();
        request.groups = vec![OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
            .with_member_epoch(-1)
            .with_topics(Some(topics))];
    } else {
        request.group_id = GroupId(StrBytes::from_string(group.to_owned()));
        request.topics = Some(
            grouped
                .iter()
                .map(|(t, parts)| {
                    OffsetFetchRequestTopic::default()
                        .with_name(name(t))
                        .with_partition_indexes(parts.iter().map(|(p, _)| *p).collect())
                })
                .collect(),
        );
    }
    let response = connection.send_version(&request, version).await?;
    committed_from(response, version)
}

fn committed_from(
    response: OffsetFetchResponse,
    version: i16,
) -> Result<Vec<(TopicPartition, Option<i64>)>, ConsumeError> {
    let mut out = Vec::new();
    let mut push = |topic: &str, partition: i32, offset: i64, code: i16| {
        let code = KafkaCode(code);
        if !code.is_ok() {
            return Err(ConsumeError::Commit { code });
        }
        out.push((
            TopicPartition::new(topic, partition),
            (offset >= 0).then_some(offset),
        ));
        Ok(())
    };
    if version >= 8 {
        for group in response.groups {
            check(group.error_code)?;
            for topic in group.topics {
                for p in topic.partitions {
                    push(
                        topic.name.as_str(),
                        p.partition_index,
                        p.committed_offset,
                        p.error_code,
                    )?;
                }
            }
        }
    } else {
        check(response.error_code)?;
        for topic in response.topics {
            for p in topic.partitions {
                push(
                    topic.name.as_str(),
                    p.partition_index,
                    p.committed_offset,
                    p.error_code,
                )?;
            }
        }
    }
    Ok(out)
}

fn check(code: i16) -> Result<(), ConsumeError> {
    let code = KafkaCode(code);
    if code.is_ok() {
        Ok(())
    } else {
        Err(ConsumeError::Commit { code })
    }
}

/// Commits `offsets` (the next offset to read, per partition) for `group`.
/// Returns the first partition error, if any.
pub async fn commit(
    connection: &Connection,
    group: &GroupMetadata,
    offsets: &FastMap<TopicPartition, i64>,
) -> Result<(), ConsumeError> {
    let items: Vec<(TopicPartition, i64)> =
        offsets.iter().map(|(tp, o)| (tp.clone(), *o)).collect();
    let topics = by_topic(&items)
        .into_iter()
        .map(|(topic, parts)| {
            OffsetCommitRequestTopic::default()
                .with_name(name(topic))
                .with_partitions(
                    parts
                        .into_iter()
                        .map(|(p, offset)| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(offset)
                                .with_committed_leader_epoch(-1)
                        })
                        .collect(),
                )
        })
        .collect();
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.group_id.clone())))
        .with_generation_id_or_member_epoch(group.generation_id)
        .with_member_id(StrBytes::from_string(group.member_id.clone()))
        .with_group_instance_id(group.group_instance_id.clone().map(StrBytes::from_string))
        .with_retention_time_ms(-1)
        .with_topics(topics);
    let response = connection.send(&request).await?;
    for topic in response.topics {
        for p in topic.partitions {
            check(p.error_code)?;
        }
    }
    Ok(())
}
