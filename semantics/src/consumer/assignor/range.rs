//! The "range" assignor (Java `org.apache.kafka.clients.consumer.RangeAssignor`).
//!
//! Each topic is handled on its own: its subscribers, in `member_order`, get
//! contiguous ranges of partitions and the first `n % m` get one extra. With
//! many topics the first members therefore carry more; that is the Java
//! behaviour and other clients depend on it, so it is kept.

use std::collections::BTreeMap;
use std::ops::Range;

use super::{
    empty_assignment, sorted, sorted_members, subscribes, tp, Assignor, MemberSubscription,
    RebalanceProtocol, TopicPartition,
};

/// Assigns each topic's partitions to its subscribers in contiguous ranges.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl RangeAssignor {
    /// Protocol name in JoinGroup.
    pub const NAME: &'static str = "range";
}

impl Assignor for RangeAssignor {
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
        for (topic, &count) in partitions_per_topic {
            let subscribers: Vec<&MemberSubscription> = ordered
                .iter()
                .copied()
                .filter(|m| subscribes(m, topic))
                .collect();
            let ranges = split(count.max(0), subscribers.len());
            for (member, range) in subscribers.iter().zip(ranges) {
                let slot = out.entry(member.member_id.clone()).or_default();
                slot.extend(range.map(|p| tp(topic, p)));
            }
        }
        sorted(out)
    }
}

/// Splits `0..partitions` into `members` contiguous ranges, the first
/// `partitions % members` one longer (Java: `numPartitionsPerConsumer`,
/// `consumersWithExtraPartition`).
fn split(partitions: i32, members: usize) -> Vec<Range<i32>> {
    let Ok(m) = i32::try_from(members) else {
        return Vec::new();
    };
    if m == 0 {
        return Vec::new();
    }
    let (per, extra) = (partitions / m, partitions % m);
    (0..m)
        .map(|i| {
            let start = per * i + i.min(extra);
            let len = per + i32::from(i < extra);
            start..start + len
        })
        .collect()
}

#[cfg(test)]
mod unit {
    use super::split;

    #[test]
    fn split_gives_extras_to_the_first() {
        assert_eq!(split(7, 3), vec![0..3, 3..5, 5..7]);
        assert_eq!(split(2, 3), vec![0..1, 1..2, 2..2]);
        assert!(split(5, 0).is_empty());
    }
}
