//! Scenario tests of "cooperative-sticky": members leaving and joining,
//! KIP-429 withholding and the follow-up round, conflicting claims.

use std::collections::BTreeMap;

use super::tests::{expect, member, topics};
use super::*;

/// A member of generation `generation` owning `owned` of topic "t".
fn owning(id: &str, generation: i32, owned: &[i32]) -> MemberSubscription {
    MemberSubscription {
        owned_partitions: owned.iter().map(|&p| tp("t", p)).collect(),
        generation,
        ..member(id, &["t"])
    }
}

/// The next rebalance: every member now owns what it got, at `generation`.
fn next_round(
    members: &[MemberSubscription],
    got: &BTreeMap<String, Vec<TopicPartition>>,
    generation: i32,
) -> Vec<MemberSubscription> {
    let with = |m: &MemberSubscription| MemberSubscription {
        owned_partitions: got[&m.member_id].clone(),
        generation,
        ..m.clone()
    };
    members.iter().map(with).collect()
}

fn sticky(
    members: &[MemberSubscription],
    counts: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    CooperativeStickyAssignor.assign(members, counts)
}

/// Partitions some member owned and no longer gets.
fn revoked(members: &[MemberSubscription], got: &BTreeMap<String, Vec<TopicPartition>>) -> usize {
    let lost = |m: &MemberSubscription| {
        m.owned_partitions
            .iter()
            .filter(|p| !got[&m.member_id].contains(p))
            .count()
    };
    members.iter().map(lost).sum()
}

#[test]
fn fresh_group_is_dealt_evenly() {
    let members = [
        owning("A", -1, &[]),
        owning("B", -1, &[]),
        owning("C", -1, &[]),
    ];
    let got = sticky(&members, &topics(&[("t", 6)]));
    let want = expect(&[
        ("A", &[("t", 0), ("t", 3)]),
        ("B", &[("t", 1), ("t", 4)]),
        ("C", &[("t", 2), ("t", 5)]),
    ]);
    assert_eq!(got, want);
}

#[test]
fn leaving_member_partitions_go_to_survivors() {
    // C owned 2 and 5 and left; A and B keep theirs and share C's at once.
    let members = [owning("A", 3, &[0, 3]), owning("B", 3, &[1, 4])];
    let got = sticky(&members, &topics(&[("t", 6)]));
    let want = expect(&[
        ("A", &[("t", 0), ("t", 2), ("t", 3)]),
        ("B", &[("t", 1), ("t", 4), ("t", 5)]),
    ]);
    assert_eq!(got, want);
    assert_eq!(revoked(&members, &got), 0);
}

#[test]
fn joining_member_gets_minimum_moves_after_revocation() {
    let counts = topics(&[("t", 8)]);
    let members = [
        owning("A", 4, &[0, 1, 2, 3]),
        owning("B", 4, &[4, 5, 6, 7]),
        owning("C", -1, &[]),
    ];
    // Round 1: A and B each give up exactly one partition (8 over 3 is 3+3+2)
    // and C gets nothing yet: the partitions still belong to A and B.
    let first = sticky(&members, &counts);
    let want = expect(&[
        ("A", &[("t", 0), ("t", 1), ("t", 2)]),
        ("B", &[("t", 4), ("t", 5), ("t", 6)]),
        ("C", &[]),
    ]);
    assert_eq!(first, want);
    assert_eq!(revoked(&members, &first), 2);
    // Round 2: A and B revoked them, so C gets them; nobody else moves.
    let second_members = next_round(&members, &first, 5);
    let second = sticky(&second_members, &counts);
    let want = expect(&[
        ("A", &[("t", 0), ("t", 1), ("t", 2)]),
        ("B", &[("t", 4), ("t", 5), ("t", 6)]),
        ("C", &[("t", 3), ("t", 7)]),
    ]);
    assert_eq!(second, want);
    assert_eq!(revoked(&second_members, &second), 0);
    // Round 3: stable.
    assert_eq!(
        sticky(&next_round(&second_members, &second, 6), &counts),
        second
    );
}

#[test]
fn conflicting_claims_resolved_by_generation() {
    let counts = topics(&[("t", 4)]);
    let cases = [
        // (A's generation, B's generation, expected A, expected B)
        (5, 4, vec![0, 1], vec![2, 3]), // A newer: keeps 1
        (3, 4, vec![0, 3], vec![1, 2]), // B newer: keeps 1
        (4, 4, vec![0, 1], vec![2, 3]), // tie: first in member order keeps 1
    ];
    for (gen_a, gen_b, want_a, want_b) in cases {
        let members = [owning("A", gen_a, &[0, 1]), owning("B", gen_b, &[1, 2])];
        let got = sticky(&members, &counts);
        let part = |ps: &[i32]| ps.iter().map(|&p| tp("t", p)).collect::<Vec<_>>();
        assert_eq!(got["A"], part(&want_a), "generations {gen_a}/{gen_b}");
        assert_eq!(got["B"], part(&want_b), "generations {gen_a}/{gen_b}");
    }
}

#[test]
fn unsubscribed_topic_is_revoked_before_it_moves() {
    let counts = topics(&[("x", 2), ("y", 2)]);
    let a = MemberSubscription {
        owned_partitions: vec![tp("x", 0), tp("x", 1)],
        generation: 2,
        ..member("A", &["y"])
    };
    let members = [a, member("B", &["x"])];
    let first = sticky(&members, &counts);
    assert_eq!(first, expect(&[("A", &[("y", 0), ("y", 1)]), ("B", &[])]));
    let second = sticky(&next_round(&members, &first, 3), &counts);
    assert_eq!(
        second,
        expect(&[("A", &[("y", 0), ("y", 1)]), ("B", &[("x", 0), ("x", 1)])])
    );
}

#[test]
fn deleted_topic_claims_are_dropped() {
    let a = MemberSubscription {
        owned_partitions: vec![tp("gone", 0), tp("t", 0), tp("t", 9)],
        generation: 1,
        ..member("A", &["t", "gone"])
    };
    let got = sticky(&[a], &topics(&[("t", 2)]));
    assert_eq!(got, expect(&[("A", &[("t", 0), ("t", 1)])]));
}

#[test]
fn chain_moves_balance_different_subscriptions() {
    // A can only take x, C only y, B both. A=3, B=2, C=1 has no direct move
    // that helps, but A→B (x2) and B→C (y1) gives 2/2/2.
    let counts = topics(&[("x", 3), ("y", 3)]);
    let owns = |id: &str, subs: &[&str], owned: &[(&str, i32)]| MemberSubscription {
        owned_partitions: owned.iter().map(|&(t, p)| tp(t, p)).collect(),
        generation: 1,
        ..member(id, subs)
    };
    let members = [
        owns("A", &["x"], &[("x", 0), ("x", 1), ("x", 2)]),
        owns("B", &["x", "y"], &[("y", 0), ("y", 1)]),
        owns("C", &["y"], &[("y", 2)]),
    ];
    let first = sticky(&members, &counts);
    assert_eq!(
        first,
        expect(&[
            ("A", &[("x", 0), ("x", 1)]),
            ("B", &[("y", 0)]),
            ("C", &[("y", 2)])
        ])
    );
    let second = sticky(&next_round(&members, &first, 2), &counts);
    let want = expect(&[
        ("A", &[("x", 0), ("x", 1)]),
        ("B", &[("x", 2), ("y", 0)]),
        ("C", &[("y", 1), ("y", 2)]),
    ]);
    assert_eq!(second, want);
}
