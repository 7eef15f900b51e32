use super::*;

fn joined(leader: bool) -> Membership {
    let mut m = Membership::new(None);
    m.start_join();
    let leader_id = if leader { "m-1" } else { "m-0" };
    assert_eq!(
        m.on_join(KafkaCode(0), "m-1", 7, leader_id, Some("range")),
        Step::Proceed
    );
    m
}

fn stable() -> Membership {
    let mut m = joined(true);
    assert_eq!(m.on_sync(KafkaCode(0)), Step::Proceed);
    m
}

#[test]
fn happy_path_reaches_stable_with_the_generation() {
    let mut m = joined(true);
    assert_eq!(m.phase(), &Phase::Syncing { leader: true });
    assert_eq!(
        (m.member_id(), m.generation(), m.protocol()),
        ("m-1", 7, Some("range"))
    );
    m.on_sync(KafkaCode(0));
    assert_eq!(m.phase(), &Phase::Stable);
    assert_eq!(joined(false).phase(), &Phase::Syncing { leader: false });
}

#[test]
fn member_id_required_keeps_the_id_and_joins_again() {
    let mut m = Membership::new(None);
    m.start_join();
    assert_eq!(
        m.on_join(KafkaCode(79), "given", -1, "", None),
        Step::Proceed
    );
    assert_eq!((m.member_id(), m.phase()), ("given", &Phase::Joining));
}

/// (code, step, phase after) for a response in the Stable phase.
#[test]
fn heartbeat_errors_by_class() {
    let cases: &[(i16, Step, Phase)] = &[
        (0, Step::Proceed, Phase::Stable),
        (27, Step::Rejoin, Phase::Unjoined),
        (25, Step::RejoinLost, Phase::Unjoined),
        (22, Step::RejoinLost, Phase::Unjoined),
        (16, Step::FindCoordinator, Phase::Stable),
        (15, Step::FindCoordinator, Phase::Stable),
        (82, Step::Fatal(KafkaCode(82)), Phase::Fatal(KafkaCode(82))),
        (30, Step::Fatal(KafkaCode(30)), Phase::Fatal(KafkaCode(30))),
        (7, Step::RetryAfterBackoff, Phase::Stable),
    ];
    for (code, step, phase) in cases {
        let mut m = stable();
        assert_eq!(&m.on_heartbeat(KafkaCode(*code)), step, "code {code}");
        assert_eq!(m.phase(), phase, "code {code}");
    }
}

#[test]
fn losing_the_generation_forgets_member_and_generation() {
    let mut m = stable();
    m.on_heartbeat(KafkaCode(22));
    assert_eq!((m.member_id(), m.generation()), ("", NO_GENERATION));
}

#[test]
fn sync_errors_by_class() {
    let cases: &[(i16, Step)] = &[
        (27, Step::Rejoin),
        (22, Step::RejoinLost),
        (25, Step::RejoinLost),
        (16, Step::FindCoordinator),
        (82, Step::Fatal(KafkaCode(82))),
    ];
    for (code, step) in cases {
        let mut m = joined(false);
        assert_eq!(&m.on_sync(KafkaCode(*code)), step, "code {code}");
        assert_ne!(m.phase(), &Phase::Stable, "code {code}");
    }
}

#[test]
fn join_errors_by_class() {
    let cases: &[(i16, Step)] = &[
        (27, Step::RetryAfterBackoff),
        (14, Step::RetryAfterBackoff),
        (15, Step::FindCoordinator),
        (25, Step::Proceed),
        (23, Step::Fatal(KafkaCode(23))),
        (82, Step::Fatal(KafkaCode(82))),
    ];
    for (code, step) in cases {
        let mut m = Membership::new(Some("static-1".into()));
        m.start_join();
        assert_eq!(
            &m.on_join(KafkaCode(*code), "", -1, "", None),
            step,
            "code {code}"
        );
        assert_eq!(m.instance_id(), Some("static-1"));
    }
}

#[test]
fn a_fatal_member_never_joins_again() {
    let mut m = stable();
    m.on_heartbeat(KafkaCode(82));
    m.start_join();
    assert!(matches!(m.phase(), Phase::Fatal(_)));
}

#[test]
fn commit_errors_only_act_on_generation_problems() {
    let mut m = stable();
    assert_eq!(m.on_commit_error(KafkaCode(27)), Step::Rejoin);
    let mut m = stable();
    assert_eq!(m.on_commit_error(KafkaCode(22)), Step::RejoinLost);
    let mut m = stable();
    assert_eq!(m.on_commit_error(KafkaCode(7)), Step::Proceed);
    assert_eq!(m.phase(), &Phase::Stable);
}
