//! Property tests over random groups: validity for every assignor, coverage,
//! the KIP-429 rule, balance and minimal moves for "cooperative-sticky".

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

type Assignment = BTreeMap<String, Vec<TopicPartition>>;

/// One random member: subscription bit mask over the topics, instance id,
/// owned (topic index, partition) pairs, generation.
type RawMember = (u8, Option<u8>, Vec<(usize, i32)>, i32);

fn raw_member(topics: usize) -> impl Strategy<Value = RawMember> {
    let owned = prop::collection::vec((0..=topics, 0i32..25), 0..8);
    (
        0u8..(1 << topics),
        prop::option::of(0u8..4),
        owned,
        -1i32..4,
    )
}

/// Topic counts (`None`: the topic does not exist) and members.
fn group() -> impl Strategy<Value = (Vec<Option<i32>>, Vec<RawMember>)> {
    (1usize..=3).prop_flat_map(|k| {
        let counts = prop::collection::vec(prop::option::weighted(0.85, 0i32..=20), k);
        (counts, prop::collection::vec(raw_member(k), 1..=6))
    })
}

fn build(
    counts: &[Option<i32>],
    raw: &[RawMember],
) -> (Vec<MemberSubscription>, BTreeMap<String, i32>) {
    let name = |i: usize| format!("t{i}");
    let members =
        raw.iter().enumerate().map(
            |(i, (mask, instance, owned, generation))| MemberSubscription {
                member_id: format!("m{i}"),
                group_instance_id: instance.map(|n| format!("i{n}")),
                topics: (0..counts.len())
                    .filter(|b| mask & (1 << b) != 0)
                    .map(name)
                    .collect(),
                owned_partitions: owned.iter().map(|&(t, p)| tp(&name(t), p)).collect(),
                generation: *generation,
            },
        );
    let existing = counts
        .iter()
        .enumerate()
        .filter_map(|(i, n)| n.map(|n| (name(i), n)));
    (members.collect(), existing.collect())
}

/// Every member has an entry, sorted, nothing twice, only eligible partitions.
fn check_valid(members: &[MemberSubscription], counts: &BTreeMap<String, i32>, out: &Assignment) {
    let ids: BTreeSet<&String> = members.iter().map(|m| &m.member_id).collect();
    assert_eq!(ids, out.keys().collect(), "one entry per member");
    let mut seen = BTreeSet::new();
    for m in members {
        let got = &out[&m.member_id];
        assert!(got.windows(2).all(|w| w[0] < w[1]), "sorted: {got:?}");
        for p in got {
            assert!(seen.insert(p.clone()), "{p:?} assigned twice");
            assert!(
                subscribes(m, &p.topic),
                "{p:?} not subscribed by {}",
                m.member_id
            );
            let n = counts.get(&p.topic).copied().unwrap_or(0);
            assert!((0..n).contains(&p.partition), "{p:?} does not exist");
        }
    }
}

/// Every existing partition of every subscribed topic is assigned.
fn check_covers(members: &[MemberSubscription], counts: &BTreeMap<String, i32>, out: &Assignment) {
    let wanted: BTreeSet<TopicPartition> = counts
        .iter()
        .filter(|(t, _)| members.iter().any(|m| subscribes(m, t)))
        .flat_map(|(t, &n)| (0..n).map(move |p| tp(t, p)))
        .collect();
    let got: BTreeSet<TopicPartition> = out.values().flatten().cloned().collect();
    assert_eq!(got, wanted, "coverage");
}

/// KIP-429 (Java `validateCooperativeAssignment`): nobody gets a partition another member still owns.
fn check_cooperative(members: &[MemberSubscription], out: &Assignment) {
    for m in members {
        for p in out[&m.member_id]
            .iter()
            .filter(|p| !m.owned_partitions.contains(p))
        {
            let other = members.iter().find(|o| o.owned_partitions.contains(p));
            assert!(
                other.is_none(),
                "{p:?} given to {} while owned by {other:?}",
                m.member_id
            );
        }
    }
}

/// No member could hand a partition directly to one holding two fewer.
fn check_locally_balanced(members: &[MemberSubscription], out: &Assignment) {
    for u in members {
        for v in members {
            let (a, b) = (&out[&u.member_id], &out[&v.member_id]);
            let movable = a.iter().any(|p| subscribes(v, &p.topic));
            assert!(
                a.len() < b.len() + 2 || !movable,
                "{} could give to {}",
                u.member_id,
                v.member_id
            );
        }
    }
}

fn spread(out: &Assignment) -> usize {
    let loads = out.values().map(Vec::len);
    loads.clone().max().unwrap_or(0) - loads.min().unwrap_or(0)
}

fn with_owned(
    members: &[MemberSubscription],
    out: &Assignment,
    generation: i32,
) -> Vec<MemberSubscription> {
    let with = |m: &MemberSubscription| MemberSubscription {
        owned_partitions: out[&m.member_id].clone(),
        generation,
        ..m.clone()
    };
    members.iter().map(with).collect()
}

/// Makes every member subscribe to the first member's topics.
fn identical(mut members: Vec<MemberSubscription>) -> Vec<MemberSubscription> {
    let topics = members[0].topics.clone();
    members.iter_mut().for_each(|m| m.topics = topics.clone());
    members
}

proptest! {
    #[test]
    fn range_and_roundrobin_are_valid_and_complete((counts, raw) in group()) {
        let (members, counts) = build(&counts, &raw);
        for assignor in [&RangeAssignor as &dyn Assignor, &RoundRobinAssignor] {
            let out = assignor.assign(&members, &counts);
            check_valid(&members, &counts, &out);
            check_covers(&members, &counts, &out);
        }
    }

    #[test]
    fn sticky_is_valid_and_cooperative((counts, raw) in group()) {
        let (members, counts) = build(&counts, &raw);
        let out = CooperativeStickyAssignor.assign(&members, &counts);
        check_valid(&members, &counts, &out);
        check_cooperative(&members, &out);
    }

    #[test]
    fn sticky_without_owned_is_complete_and_balanced((counts, raw) in group()) {
        let (mut members, counts) = build(&counts, &raw);
        members.iter_mut().for_each(|m| m.owned_partitions.clear());
        let out = CooperativeStickyAssignor.assign(&members, &counts);
        check_valid(&members, &counts, &out);
        check_covers(&members, &counts, &out);
        check_locally_balanced(&members, &out);
    }

    #[test]
    fn sticky_identical_subscriptions_balance_after_follow_up((counts, raw) in group()) {
        let (members, counts) = build(&counts, &raw);
        let members = identical(members);
        let first = CooperativeStickyAssignor.assign(&members, &counts);
        check_valid(&members, &counts, &first);
        let members = with_owned(&members, &first, 10);
        let second = CooperativeStickyAssignor.assign(&members, &counts);
        check_valid(&members, &counts, &second);
        check_covers(&members, &counts, &second);
        prop_assert!(spread(&second) <= 1, "unbalanced: {second:?}");
        let third = CooperativeStickyAssignor.assign(&with_owned(&members, &second, 11), &counts);
        prop_assert_eq!(third, second, "not stable");
    }

    #[test]
    fn sticky_moves_the_minimum(
        (partitions, owners, members) in (0i32..=30, 1usize..=6).prop_flat_map(|(n, m)| {
            let owners = prop::collection::vec(prop::option::of(0..m), n as usize);
            (Just(n), owners, Just(m))
        }),
    ) {
        // Every partition of "t" owned by at most one member; all subscribe to "t".
        let members: Vec<MemberSubscription> = (0..members)
            .map(|i| MemberSubscription {
                member_id: format!("m{i}"),
                group_instance_id: None,
                topics: vec!["t".into()],
                owned_partitions: (0..partitions)
                    .filter(|&p| owners[p as usize] == Some(i))
                    .map(|p| tp("t", p))
                    .collect(),
                generation: 1,
            })
            .collect();
        let counts = BTreeMap::from([("t".to_string(), partitions)]);
        let out = CooperativeStickyAssignor.assign(&members, &counts);
        let moved: usize = members.iter()
            .map(|m| m.owned_partitions.iter().filter(|p| !out[&m.member_id].contains(p)).count())
            .sum();
        // Best case: the r members owning most keep q+1, the others q.
        let (q, r) = (partitions as usize / members.len(), partitions as usize % members.len());
        let mut kept: Vec<usize> = members.iter().map(|m| m.owned_partitions.len()).collect();
        kept.sort_unstable_by(|a, b| b.cmp(a));
        let minimum: usize = kept.iter().enumerate()
            .map(|(i, &k)| k.saturating_sub(q + usize::from(i < r)))
            .sum();
        prop_assert_eq!(moved, minimum);
        let second = CooperativeStickyAssignor.assign(&with_owned(&members, &out, 2), &counts);
        check_covers(&members, &counts, &second);
        prop_assert!(spread(&second) <= 1);
    }
}
