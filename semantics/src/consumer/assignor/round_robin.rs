//! The "roundrobin" assignor (Java `org.apache.kafka.clients.consumer.RoundRobinAssignor`).
//!
//! All partitions of all subscribed topics, sorted by topic then partition,
//! are dealt circularly over the members in `member_order`; a partition goes
//! to the next member in the circle that subscribes to its topic.

use std::collections::BTreeMap;

use super::{
    empty_assignment, java_str_cmp, partition_count, sorted, sorted_members, subscribes, tp,
    Assignor, MemberSubscription, RebalanceProtocol, TopicPartition,
};

/// Deals all subscribed partitions circularly over the members.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

impl RoundRobinAssignor {
    /// Protocol name in JoinGroup.
    pub const NAME: &'static str = "roundrobin";
}

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn rebalance_protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }

    fn assign(
        &self,
        members: &[MemberSubscription],
        partitions_per_topic: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        let ordered = sorted_members(members);
        let mut out = empty_assignment(members);
        // Java's CircularIterator: the cursor persists across topics.
        let mut cursor = 0usize;
        for (topic, count) in subscribed_topics(&ordered, partitions_per_topic) {
            for partition in 0..count {
                // Terminates: the topic comes from some member's subscription.
                while !subscribes(ordered[cursor], topic) {
                    cursor = (cursor + 1) % ordered.len();
                }
                let slot = out.entry(ordered[cursor].member_id.clone()).or_default();
                slot.push(tp(topic, partition));
                cursor = (cursor + 1) % ordered.len();
            }
        }
        sorted(out)
    }
}

/// Existing topics anyone subscribes to, with their partition counts, in
/// Java `TreeSet<String>` order (UTF-16), as `allPartitionsSorted` does.
fn subscribed_topics<'a>(
    members: &[&'a MemberSubscription],
    partitions_per_topic: &BTreeMap<String, i32>,
) -> Vec<(&'a str, i32)> {
    let mut topics: Vec<&str> = members
        .iter()
        .flat_map(|m| m.topics.iter().map(String::as_str))
        .collect();
    topics.sort_by(|a, b| java_str_cmp(a, b));
    topics.dedup();
    topics
        .into_iter()
        .filter_map(|t| partition_count(partitions_per_topic, t).map(|n| (t, n)))
        .collect()
}
