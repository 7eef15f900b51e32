//! The "cooperative-sticky" assignor (Java `CooperativeStickyAssignor`,
//! built on `AbstractStickyAssignor`), with KIP-429 incremental rebalancing.
//!
//! One round has three steps:
//! 1. keep every member's valid owned partitions (topic still subscribed by
//!    that member and still existing); when two members claim the same
//!    partition the higher generation wins, on a tie the first in
//!    `member_order`;
//! 2. hand out unowned partitions and move partitions from over-loaded to
//!    under-loaded members until no move can improve balance (`balance`);
//! 3. KIP-429: withhold from its new owner every partition that still belongs
//!    to another member, so that member revokes it first and the follow-up
//!    rebalance hands it over. This mirrors Java's
//!    `CooperativeStickyAssignor.adjustAssignment` and satisfies
//!    `ConsumerCoordinator.validateCooperativeAssignment` on a Java leader.

mod balance;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::{
    empty_assignment, partition_count, sorted_members, tp, Assignor, MemberSubscription,
    RebalanceProtocol, TopicPartition,
};

/// Sticky assignor for the cooperative (KIP-429) rebalance protocol.
#[derive(Debug, Clone, Copy, Default)]
pub struct CooperativeStickyAssignor;

impl CooperativeStickyAssignor {
    /// Protocol name in JoinGroup.
    pub const NAME: &'static str = "cooperative-sticky";
}

impl Assignor for CooperativeStickyAssignor {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn rebalance_protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Cooperative
    }

    fn assign(
        &self,
        members: &[MemberSubscription],
        partitions_per_topic: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        let mut plan = Plan::new(members, partitions_per_topic);
        plan.keep_owned();
        plan.assign_unowned();
        balance::balance(&mut plan);
        plan.withhold_transfers();
        plan.into_assignment(members)
    }
}

/// A partition as (topic, index), borrowing the topic name.
type Part<'a> = (&'a str, i32);

/// The assignment being built; members are indexed in `member_order`.
#[derive(Debug)]
struct Plan<'a> {
    members: Vec<&'a MemberSubscription>,
    /// Existing topics each member subscribes to, with their partition counts.
    subs: Vec<BTreeMap<&'a str, i32>>,
    /// What each member reported as owned, valid or not (for the KIP-429 step).
    claims: Vec<HashSet<Part<'a>>>,
    /// Planned partitions per member, by topic; empty topic sets are removed.
    held: Vec<BTreeMap<&'a str, BTreeSet<i32>>>,
    /// Number of planned partitions per member.
    load: Vec<usize>,
}

impl<'a> Plan<'a> {
    fn new(
        members: &'a [MemberSubscription],
        partitions_per_topic: &'a BTreeMap<String, i32>,
    ) -> Self {
        let members = sorted_members(members);
        let subs = members
            .iter()
            .map(|m| {
                let topics = m.topics.iter().map(String::as_str);
                topics
                    .filter_map(|t| partition_count(partitions_per_topic, t).map(|n| (t, n)))
                    .collect()
            })
            .collect();
        let claims = members
            .iter()
            .map(|m| {
                m.owned_partitions
                    .iter()
                    .map(|p| (p.topic.as_str(), p.partition))
                    .collect()
            })
            .collect();
        let n = members.len();
        Plan {
            members,
            subs,
            claims,
            held: vec![BTreeMap::new(); n],
            load: vec![0; n],
        }
    }

    /// Whether member `i` may consume `part`: it subscribes to the topic and the partition exists.
    fn eligible(&self, i: usize, (topic, partition): Part<'_>) -> bool {
        self.subs[i]
            .get(topic)
            .is_some_and(|&n| (0..n).contains(&partition))
    }

    fn give(&mut self, i: usize, (topic, partition): Part<'a>) {
        if self.held[i].entry(topic).or_default().insert(partition) {
            self.load[i] += 1;
        }
    }

    fn take(&mut self, i: usize, (topic, partition): Part<'a>) {
        let Some(set) = self.held[i].get_mut(topic) else {
            return;
        };
        if set.remove(&partition) {
            self.load[i] -= 1;
        }
        if set.is_empty() {
            self.held[i].remove(topic);
        }
    }

    /// Step 1: keep valid owned partitions; conflicting claims go to the
    /// higher generation (Java `AbstractStickyAssignor.allSubscriptionsEqual`
    /// keeps the newer claim), ties to the earlier member.
    fn keep_owned(&mut self) {
        let mut owner: HashMap<Part<'a>, usize> = HashMap::new();
        for i in 0..self.members.len() {
            let member = self.members[i];
            for p in &member.owned_partitions {
                let part = (p.topic.as_str(), p.partition);
                if !self.eligible(i, part) {
                    continue;
                }
                let newer = |j: usize| member.generation > self.members[j].generation;
                if owner.get(&part).is_none_or(|&j| newer(j)) {
                    owner.insert(part, i);
                }
            }
        }
        for (part, i) in owner {
            self.give(i, part);
        }
    }

    /// Step 2a: hand out partitions nobody kept. Partitions with the fewest
    /// possible consumers go first (as Java's `generalAssign` does), each to
    /// the least loaded eligible member, ties to the earlier member.
    fn assign_unowned(&mut self) {
        let mut free: Vec<(usize, Part<'a>)> = self
            .all_partitions()
            .into_iter()
            .filter(|&part| !self.is_held(part))
            .map(|part| {
                (
                    (0..self.load.len())
                        .filter(|&i| self.eligible(i, part))
                        .count(),
                    part,
                )
            })
            .collect();
        free.sort_unstable();
        for (_, part) in free {
            let candidates = (0..self.load.len()).filter(|&i| self.eligible(i, part));
            if let Some(to) = candidates.min_by_key(|&i| (self.load[i], i)) {
                self.give(to, part);
            }
        }
    }

    /// Every partition of every existing topic some member subscribes to.
    fn all_partitions(&self) -> BTreeSet<Part<'a>> {
        let topics: BTreeMap<&'a str, i32> =
            self.subs.iter().flatten().map(|(&t, &n)| (t, n)).collect();
        topics
            .into_iter()
            .flat_map(|(t, n)| (0..n).map(move |p| (t, p)))
            .collect()
    }

    fn is_held(&self, (topic, partition): Part<'_>) -> bool {
        self.held
            .iter()
            .any(|h| h.get(topic).is_some_and(|s| s.contains(&partition)))
    }

    /// Step 3 (KIP-429): drop a partition from a member that did not claim it
    /// if another member still claims it; that member revokes it now and the
    /// next rebalance assigns it. Same rule as Java's
    /// `CooperativeStickyAssignor.computePartitionsTransferringOwnership`.
    fn withhold_transfers(&mut self) {
        let claimed: HashSet<Part<'a>> = self.claims.iter().flatten().copied().collect();
        for i in 0..self.held.len() {
            let withheld: Vec<Part<'a>> = self
                .parts_of(i)
                .filter(|p| claimed.contains(p) && !self.claims[i].contains(p))
                .collect();
            for part in withheld {
                self.take(i, part);
            }
        }
    }

    /// Member `i`'s planned partitions, in (topic, partition) order.
    fn parts_of(&self, i: usize) -> impl Iterator<Item = Part<'a>> + '_ {
        self.held[i]
            .iter()
            .flat_map(|(&t, ps)| ps.iter().map(move |&p| (t, p)))
    }

    fn into_assignment(self, all: &[MemberSubscription]) -> BTreeMap<String, Vec<TopicPartition>> {
        let mut out = empty_assignment(all);
        for (i, member) in self.members.iter().enumerate() {
            let parts = self.parts_of(i).map(|(t, p)| tp(t, p)).collect();
            out.insert(member.member_id.clone(), parts);
        }
        out
    }
}
