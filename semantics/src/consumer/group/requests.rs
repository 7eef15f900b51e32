//! Group requests and the consumer-protocol metadata they carry: pure
//! builders and readers, no I/O.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_wire::codec::consumer_protocol::{
    decode_assignment, decode_subscription, encode_assignment, encode_subscription,
};
use kafka_wire::codec::CodecError;
use kafka_wire::protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_wire::protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
use kafka_wire::protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_wire::protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_wire::protocol::messages::leave_group_request::MemberIdentity;
use kafka_wire::protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_wire::protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, GroupId, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest, TopicName,
};
use kafka_wire::protocol::protocol::StrBytes;

use super::super::assignor::{Assignor, MemberSubscription};
use super::super::TopicPartition;
use super::membership::Membership;

/// The protocol type every consumer group uses.
pub const PROTOCOL_TYPE: &str = "consumer";
/// Subscription version written: v1 carries owned partitions (KIP-429) and is
/// read by every client since Kafka 2.4 / librdkafka 1.6.
const SUBSCRIPTION_VERSION: i16 = 1;
const ASSIGNMENT_VERSION: i16 = 1;

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

/// Partitions grouped by topic, topics and partitions sorted.
fn grouped(partitions: &[TopicPartition]) -> BTreeMap<&str, Vec<i32>> {
    let mut map: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        map.entry(&tp.topic).or_default().push(tp.partition);
    }
    map.values_mut().for_each(|v| v.sort_unstable());
    map
}

/// Subscription metadata for JoinGroup.
pub fn subscription(topics: &[String], owned: &[TopicPartition]) -> Result<Bytes, CodecError> {
    let mut topics: Vec<String> = topics.to_vec();
    topics.sort();
    topics.dedup();
    let subscription = ConsumerProtocolSubscription::default()
        .with_topics(topics.iter().map(|t| str_bytes(t)).collect())
        .with_owned_partitions(
            grouped(owned)
                .into_iter()
                .map(|(t, p)| {
                    OwnedTopic::default()
                        .with_topic(topic_name(t))
                        .with_partitions(p)
                })
                .collect(),
        );
    encode_subscription(&subscription, SUBSCRIPTION_VERSION)
}

/// JoinGroup offering every configured assignor, in preference order.
pub fn join_request(
    group_id: &str,
    membership: &Membership,
    assignors: &[Box<dyn Assignor>],
    metadata: Bytes,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(str_bytes(group_id)))
        .with_session_timeout_ms(session_timeout_ms)
        .with_rebalance_timeout_ms(rebalance_timeout_ms)
        .with_member_id(str_bytes(membership.member_id()))
        .with_group_instance_id(membership.instance_id().map(str_bytes))
        .with_protocol_type(str_bytes(PROTOCOL_TYPE))
        .with_protocols(
            assignors
                .iter()
                .map(|a| {
                    JoinGroupRequestProtocol::default()
                        .with_name(str_bytes(a.name()))
                        .with_metadata(metadata.clone())
                })
                .collect(),
        )
}

/// Reads the members' subscriptions (leader only). A member whose metadata
/// does not decode is given no topics rather than failing the group.
pub fn member_subscriptions(members: &[JoinGroupResponseMember]) -> Vec<MemberSubscription> {
    members
        .iter()
        .map(|m| {
            let decoded = decode_subscription(m.metadata.clone()).ok().map(|(_, s)| s);
            let (topics, owned, generation) = match decoded {
                Some(s) => (
                    s.topics.iter().map(|t| t.to_string()).collect(),
                    s.owned_partitions
                        .iter()
                        .flat_map(|t| {
                            t.partitions
                                .iter()
                                .map(|&p| TopicPartition::new(t.topic.as_str(), p))
                        })
                        .collect(),
                    s.generation_id,
                ),
                None => (Vec::new(), Vec::new(), -1),
            };
            MemberSubscription {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
                topics,
                owned_partitions: owned,
                generation,
            }
        })
        .collect()
}

/// Encodes one member's assignment for SyncGroup.
pub fn assignment_bytes(partitions: &[TopicPartition]) -> Result<Bytes, CodecError> {
    let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
        grouped(partitions)
            .into_iter()
            .map(|(t, p)| {
                AssignedTopic::default()
                    .with_topic(topic_name(t))
                    .with_partitions(p)
            })
            .collect(),
    );
    encode_assignment(&assignment, ASSIGNMENT_VERSION)
}

/// Reads this member's assignment from SyncGroup (empty bytes: nothing assigned).
pub fn read_assignment(bytes: Bytes) -> Result<Vec<TopicPartition>, CodecError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let (_, assignment) = decode_assignment(bytes)?;
    let mut out: Vec<TopicPartition> = assignment
        .assigned_partitions
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|&p| TopicPartition::new(t.topic.as_str(), p))
        })
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// SyncGroup; the leader passes every member's assignment, others none.
pub fn sync_request(
    group_id: &str,
    membership: &Membership,
    assignments: Vec<(String, Bytes)>,
) -> SyncGroupRequest {
    SyncGroupRequest::default()
        .with_group_id(GroupId(str_bytes(group_id)))
        .with_generation_id(membership.generation())
        .with_member_id(str_bytes(membership.member_id()))
        .with_group_instance_id(membership.instance_id().map(str_bytes))
        .with_protocol_type(Some(str_bytes(PROTOCOL_TYPE)))
        .with_protocol_name(membership.protocol().map(str_bytes))
        .with_assignments(
            assignments
                .into_iter()
                .map(|(member, bytes)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(StrBytes::from_string(member))
                        .with_assignment(bytes)
                })
                .collect(),
        )
}

/// Heartbeat for the current generation.
pub fn heartbeat_request(group_id: &str, membership: &Membership) -> HeartbeatRequest {
    HeartbeatRequest::default()
        .with_group_id(GroupId(str_bytes(group_id)))
        .with_generation_id(membership.generation())
        .with_member_id(str_bytes(membership.member_id()))
        .with_group_instance_id(membership.instance_id().map(str_bytes))
}

/// LeaveGroup at `version` (v3 batches members, KIP-345).
pub fn leave_request(group_id: &str, membership: &Membership, version: i16) -> LeaveGroupRequest {
    let request = LeaveGroupRequest::default().with_group_id(GroupId(str_bytes(group_id)));
    if version >= 3 {
        request.with_members(vec![MemberIdentity::default()
            .with_member_id(str_bytes(membership.member_id()))
            .with_group_instance_id(membership.instance_id().map(str_bytes))])
    } else {
        request.with_member_id(str_bytes(membership.member_id()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_and_assignment_round_trip() {
        let owned = vec![TopicPartition::new("b", 1), TopicPartition::new("a", 0)];
        let bytes = subscription(&["b".into(), "a".into()], &owned).unwrap();
        let member = JoinGroupResponseMember::default()
            .with_member_id(str_bytes("m"))
            .with_metadata(bytes);
        let read = member_subscriptions(&[member]);
        assert_eq!(read[0].topics, ["a", "b"]);
        assert_eq!(read[0].owned_partitions.len(), 2);
        let assigned = vec![TopicPartition::new("a", 2), TopicPartition::new("a", 0)];
        let back = read_assignment(assignment_bytes(&assigned).unwrap()).unwrap();
        assert_eq!(
            back,
            [TopicPartition::new("a", 0), TopicPartition::new("a", 2)]
        );
        assert!(read_assignment(Bytes::new()).unwrap().is_empty());
    }

    #[test]
    fn subscription_bytes_match_the_protocol_layout() {
        // version 1, topics ["t"], user_data null, owned [] (protocol guide layout)
        let bytes = subscription(&["t".into()], &[]).unwrap();
        assert_eq!(
            &bytes[..],
            &[0, 1, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]
        );
    }
}
