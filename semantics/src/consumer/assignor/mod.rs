//! Partition assignors of the Kafka classic consumer group protocol.
//!
//! The group leader runs one of these on the subscriptions it got in the
//! JoinGroup response and sends the result in SyncGroup. The protocol names
//! and the results match the Java client's `RangeAssignor`,
//! `RoundRobinAssignor` and `CooperativeStickyAssignor`, so that Java,
//! librdkafka and our consumers can share a group whoever is the leader.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::TopicPartition;

mod range;
mod round_robin;
mod sticky;

#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod sticky_tests;
#[cfg(test)]
mod tests;

pub use range::RangeAssignor;
pub use round_robin::RoundRobinAssignor;
pub use sticky::CooperativeStickyAssignor;

/// How a group moves partitions between members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceProtocol {
    /// Revoke everything before every rebalance.
    Eager,
    /// KIP-429: revoke only what moves.
    Cooperative,
}

/// What one member told the group in its JoinGroup subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSubscription {
    /// Member id the coordinator gave this member.
    pub member_id: String,
    /// KIP-345 static membership id, if the member has one.
    pub group_instance_id: Option<String>,
    /// Topics the member subscribes to.
    pub topics: Vec<String>,
    /// Partitions the member owned before this rebalance (subscription v1+); empty for eager members.
    pub owned_partitions: Vec<TopicPartition>,
    /// Generation the owned partitions are from (subscription v2+), -1 when unknown.
    pub generation: i32,
}

/// Decides which member consumes which partition; runs on the group leader.
pub trait Assignor: Send + Sync + std::fmt::Debug {
    /// The protocol name sent in JoinGroup ("range", "roundrobin", "cooperative-sticky").
    fn name(&self) -> &'static str;

    /// Whether members must revoke everything (eager) or only what moves (cooperative).
    fn rebalance_protocol(&self) -> RebalanceProtocol;

    /// Computes the assignment.
    ///
    /// `partitions_per_topic`: partition count of every subscribed topic that exists
    /// (missing topics are absent). Returns an entry for EVERY member (possibly an empty
    /// `Vec`), partitions sorted by (topic, partition). Member ids must be unique.
    fn assign(
        &self,
        members: &[MemberSubscription],
        partitions_per_topic: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Vec<TopicPartition>>;
}

/// Looks up an assignor by its protocol name; `None` for unknown names.
pub fn by_name(name: &str) -> Option<Box<dyn Assignor>> {
    match name {
        RangeAssignor::NAME => Some(Box::new(RangeAssignor)),
        RoundRobinAssignor::NAME => Some(Box::new(RoundRobinAssignor)),
        CooperativeStickyAssignor::NAME => Some(Box::new(CooperativeStickyAssignor)),
        _ => None,
    }
}

/// Orders members like Java's `AbstractPartitionAssignor.MemberInfo.compareTo`:
/// static members (KIP-345) first, by group instance id, then dynamic members
/// by member id. Static members with equal instance ids fall back to the
/// member id, which Java leaves unspecified, to stay deterministic.
pub fn member_order(a: &MemberSubscription, b: &MemberSubscription) -> Ordering {
    let by_instance = match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => java_str_cmp(x, y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    by_instance.then_with(|| java_str_cmp(&a.member_id, &b.member_id))
}

/// Java's `String.compareTo`: compares UTF-16 code units, which differs from
/// Rust's byte order for characters above U+FFFF.
fn java_str_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// The members in `member_order`.
fn sorted_members(members: &[MemberSubscription]) -> Vec<&MemberSubscription> {
    let mut sorted: Vec<&MemberSubscription> = members.iter().collect();
    sorted.sort_by(|a, b| member_order(a, b));
    sorted
}

/// An empty assignment for every member, so each gets an entry even if it gets nothing.
fn empty_assignment(members: &[MemberSubscription]) -> BTreeMap<String, Vec<TopicPartition>> {
    members
        .iter()
        .map(|m| (m.member_id.clone(), Vec::new()))
        .collect()
}

/// Sorts each member's partitions by (topic, partition), as the API promises.
fn sorted(
    mut assignment: BTreeMap<String, Vec<TopicPartition>>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    assignment.values_mut().for_each(|v| v.sort());
    assignment
}

/// Whether the member subscribes to `topic`.
fn subscribes(member: &MemberSubscription, topic: &str) -> bool {
    member.topics.iter().any(|t| t == topic)
}

/// The partition count of `topic` as a usable number (negative counts mean none).
fn partition_count(partitions_per_topic: &BTreeMap<String, i32>, topic: &str) -> Option<i32> {
    partitions_per_topic.get(topic).map(|&n| n.max(0))
}

/// Shorthand constructor.
fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition {
        topic: topic.to_owned(),
        partition,
    }
}
