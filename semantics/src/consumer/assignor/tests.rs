//! Table-driven tests of "range" and "roundrobin", with vectors reproduced
//! from the Java client's `RangeAssignorTest` and `RoundRobinAssignorTest`.

use std::collections::BTreeMap;

use super::*;

/// A dynamic member subscribing to `topics`.
pub(super) fn member(id: &str, topics: &[&str]) -> MemberSubscription {
    MemberSubscription {
        member_id: id.into(),
        group_instance_id: None,
        topics: topics.iter().map(|t| t.to_string()).collect(),
        owned_partitions: Vec::new(),
        generation: -1,
    }
}

/// A KIP-345 static member.
pub(super) fn static_member(id: &str, instance: &str, topics: &[&str]) -> MemberSubscription {
    MemberSubscription {
        group_instance_id: Some(instance.into()),
        ..member(id, topics)
    }
}

/// Partition counts per topic.
pub(super) fn topics(counts: &[(&str, i32)]) -> BTreeMap<String, i32> {
    counts.iter().map(|&(t, n)| (t.to_string(), n)).collect()
}

/// An expected assignment: member id → [(topic, partition)].
pub(super) fn expect(rows: &[(&str, &[(&str, i32)])]) -> BTreeMap<String, Vec<TopicPartition>> {
    rows.iter()
        .map(|(m, ps)| (m.to_string(), ps.iter().map(|&(t, p)| tp(t, p)).collect()))
        .collect()
}

struct Case {
    name: &'static str,
    members: Vec<MemberSubscription>,
    topics: BTreeMap<String, i32>,
    range: BTreeMap<String, Vec<TopicPartition>>,
    round_robin: BTreeMap<String, Vec<TopicPartition>>,
}

fn cases() -> Vec<Case> {
    let both = &["t1", "t2"];
    vec![
        Case {
            name: "2 members x 4 partitions",
            members: vec![member("c1", &["t"]), member("c2", &["t"])],
            topics: topics(&[("t", 4)]),
            range: expect(&[("c1", &[("t", 0), ("t", 1)]), ("c2", &[("t", 2), ("t", 3)])]),
            round_robin: expect(&[("c1", &[("t", 0), ("t", 2)]), ("c2", &[("t", 1), ("t", 3)])]),
        },
        Case {
            name: "3 members x 7 partitions",
            members: vec![
                member("c3", &["t"]),
                member("c1", &["t"]),
                member("c2", &["t"]),
            ],
            topics: topics(&[("t", 7)]),
            range: expect(&[
                ("c1", &[("t", 0), ("t", 1), ("t", 2)]),
                ("c2", &[("t", 3), ("t", 4)]),
                ("c3", &[("t", 5), ("t", 6)]),
            ]),
            round_robin: expect(&[
                ("c1", &[("t", 0), ("t", 3), ("t", 6)]),
                ("c2", &[("t", 1), ("t", 4)]),
                ("c3", &[("t", 2), ("t", 5)]),
            ]),
        },
        Case {
            // Java: testTwoConsumersTwoTopicsSixPartitions / testTwoDynamicConsumersTwoTopicsSixPartitions
            name: "two topics, six partitions",
            members: vec![member("consumer1", both), member("consumer2", both)],
            topics: topics(&[("t1", 3), ("t2", 3)]),
            range: expect(&[
                ("consumer1", &[("t1", 0), ("t1", 1), ("t2", 0), ("t2", 1)]),
                ("consumer2", &[("t1", 2), ("t2", 2)]),
            ]),
            round_robin: expect(&[
                ("consumer1", &[("t1", 0), ("t1", 2), ("t2", 1)]),
                ("consumer2", &[("t1", 1), ("t2", 0), ("t2", 2)]),
            ]),
        },
        Case {
            // Java: testMultipleConsumersMixedTopics (both assignors)
            name: "mixed subscriptions",
            members: vec![
                member("c1", &["t1"]),
                member("c2", both),
                member("c3", &["t1"]),
            ],
            topics: topics(&[("t1", 3), ("t2", 2)]),
            range: expect(&[
                ("c1", &[("t1", 0)]),
                ("c2", &[("t1", 1), ("t2", 0), ("t2", 1)]),
                ("c3", &[("t1", 2)]),
            ]),
            round_robin: expect(&[
                ("c1", &[("t1", 0)]),
                ("c2", &[("t1", 1), ("t2", 0), ("t2", 1)]),
                ("c3", &[("t1", 2)]),
            ]),
        },
        Case {
            // Java: testTwoStaticConsumersTwoTopicsSixPartitions — instance ids, not member ids, order.
            name: "static members ordered by instance id",
            members: vec![
                static_member("consumer-b", "instance1", both),
                static_member("consumer-a", "instance2", both),
            ],
            topics: topics(&[("t1", 3), ("t2", 3)]),
            range: expect(&[
                ("consumer-b", &[("t1", 0), ("t1", 1), ("t2", 0), ("t2", 1)]),
                ("consumer-a", &[("t1", 2), ("t2", 2)]),
            ]),
            round_robin: expect(&[
                ("consumer-b", &[("t1", 0), ("t1", 2), ("t2", 1)]),
                ("consumer-a", &[("t1", 1), ("t2", 0), ("t2", 2)]),
            ]),
        },
        Case {
            // Java: testOneStaticConsumerAndOneDynamicConsumerTwoTopicsSixPartitions
            name: "static member before dynamic member",
            members: vec![
                member("consumer-a", both),
                static_member("consumer-b", "instance1", both),
            ],
            topics: topics(&[("t1", 3), ("t2", 3)]),
            range: expect(&[
                ("consumer-b", &[("t1", 0), ("t1", 1), ("t2", 0), ("t2", 1)]),
                ("consumer-a", &[("t1", 2), ("t2", 2)]),
            ]),
            round_robin: expect(&[
                ("consumer-b", &[("t1", 0), ("t1", 2), ("t2", 1)]),
                ("consumer-a", &[("t1", 1), ("t2", 0), ("t2", 2)]),
            ]),
        },
        Case {
            name: "missing topic, unsubscribed topic, member without topics",
            members: vec![member("c1", &["t", "gone"]), member("c2", &[])],
            topics: topics(&[("t", 2), ("other", 3)]),
            range: expect(&[("c1", &[("t", 0), ("t", 1)]), ("c2", &[])]),
            round_robin: expect(&[("c1", &[("t", 0), ("t", 1)]), ("c2", &[])]),
        },
        Case {
            name: "more members than partitions",
            members: vec![member("c1", &["t"]), member("c2", &["t"])],
            topics: topics(&[("t", 1)]),
            range: expect(&[("c1", &[("t", 0)]), ("c2", &[])]),
            round_robin: expect(&[("c1", &[("t", 0)]), ("c2", &[])]),
        },
    ]
}

#[test]
fn table() {
    for case in cases() {
        let range = RangeAssignor.assign(&case.members, &case.topics);
        assert_eq!(range, case.range, "range: {}", case.name);
        let rr = RoundRobinAssignor.assign(&case.members, &case.topics);
        assert_eq!(rr, case.round_robin, "roundrobin: {}", case.name);
    }
}

/// Java: `testStaticMemberRangeAssignmentPersistent` and
/// `testStaticMemberAssignmentPersistent`: three static members keep their
/// partitions when the dynamic fourth member is replaced.
#[test]
fn static_members_keep_their_partitions() {
    let both = &["t1", "t2"];
    let statics = [
        ("consumer1", "instance1"),
        ("consumer2", "instance2"),
        ("consumer3", "instance3"),
    ];
    for dynamic in ["consumer4", "consumer5"] {
        let mut members: Vec<_> = statics
            .iter()
            .map(|&(m, i)| static_member(m, i, both))
            .collect();
        members.push(member(dynamic, both));
        let range = RangeAssignor.assign(&members, &topics(&[("t1", 5), ("t2", 4)]));
        let want = expect(&[
            ("consumer1", &[("t1", 0), ("t1", 1), ("t2", 0)]),
            ("consumer2", &[("t1", 2), ("t2", 1)]),
            ("consumer3", &[("t1", 3), ("t2", 2)]),
            (dynamic, &[("t1", 4), ("t2", 3)]),
        ]);
        assert_eq!(range, want);
        let rr = RoundRobinAssignor.assign(&members, &topics(&[("t1", 3), ("t2", 3)]));
        let want = expect(&[
            ("consumer1", &[("t1", 0), ("t2", 1)]),
            ("consumer2", &[("t1", 1), ("t2", 2)]),
            ("consumer3", &[("t1", 2)]),
            (dynamic, &[("t2", 0)]),
        ]);
        assert_eq!(rr, want);
    }
}

#[test]
fn member_order_follows_java_member_info() {
    let members = vec![
        member("a", &[]),
        static_member("z", "i2", &[]),
        static_member("y", "i1", &[]),
        member("0", &[]),
        // Java compares UTF-16 units: U+1F600 (surrogates 0xD83D..) sorts before U+FF61.
        static_member("x", "\u{FF61}", &[]),
        static_member("w", "\u{1F600}", &[]),
    ];
    let order: Vec<&str> = sorted_members(&members)
        .iter()
        .map(|m| m.member_id.as_str())
        .collect();
    assert_eq!(order, ["y", "z", "w", "x", "0", "a"]);
}

#[test]
fn names_and_protocols() {
    let expected = [
        ("range", RebalanceProtocol::Eager),
        ("roundrobin", RebalanceProtocol::Eager),
        ("cooperative-sticky", RebalanceProtocol::Cooperative),
    ];
    for (name, protocol) in expected {
        let assignor = by_name(name).expect(name);
        assert_eq!(assignor.name(), name);
        assert_eq!(assignor.rebalance_protocol(), protocol);
    }
    assert!(by_name("sticky").is_none());
    assert!(by_name("Range").is_none());
}

#[test]
fn no_members_no_assignment() {
    for name in ["range", "roundrobin", "cooperative-sticky"] {
        let out = by_name(name).unwrap().assign(&[], &topics(&[("t", 3)]));
        assert!(out.is_empty(), "{name}");
    }
}
