use super::*;

fn at(partition: i32, offset: i64) -> FetchTarget {
    FetchTarget {
        tp: TopicPartition::new("t", partition),
        offset,
        current_leader_epoch: 3,
        last_fetched_epoch: -1,
    }
}

fn names(request: &SessionRequest) -> Vec<(i32, i64)> {
    let mut named: Vec<_> = request
        .targets
        .iter()
        .map(|t| (t.tp.partition, t.offset))
        .collect();
    named.sort();
    named
}

/// A session opened on 3 partitions, now at epoch 1.
fn opened() -> FetchSession {
    let mut session = FetchSession::default();
    let first = session.next_request(&[at(0, 0), at(1, 0), at(2, 0)]);
    assert_eq!((first.session_id, first.session_epoch), (0, 0));
    assert_eq!(names(&first), [(0, 0), (1, 0), (2, 0)]);
    assert_eq!(
        session.on_answer(KafkaCode::NONE, 77),
        SessionAnswer::Accepted
    );
    session
}

#[test]
fn after_the_full_request_only_moved_partitions_are_named() {
    let mut session = opened();
    let next = session.next_request(&[at(0, 10), at(1, 0), at(2, 0)]);
    assert_eq!((next.session_id, next.session_epoch), (77, 1));
    assert_eq!(names(&next), [(0, 10)]);
    assert!(next.forgotten.is_empty());
    session.on_answer(KafkaCode::NONE, 77);

    let idle = session.next_request(&[at(0, 10), at(1, 0), at(2, 0)]);
    assert_eq!(idle.session_epoch, 2);
    assert!(idle.targets.is_empty(), "nothing moved: {idle:?}");
}

#[test]
fn partitions_that_join_are_named_and_those_that_leave_are_forgotten() {
    let mut session = opened();
    let next = session.next_request(&[at(0, 0), at(2, 0), at(3, 5)]);
    assert_eq!(names(&next), [(3, 5)]);
    assert_eq!(next.forgotten, [TopicPartition::new("t", 1)]);
    session.on_answer(KafkaCode::NONE, 77);
    // Gone for good: not forgotten twice.
    let after = session.next_request(&[at(0, 0), at(2, 0), at(3, 5)]);
    assert!(after.forgotten.is_empty() && after.targets.is_empty());
}

#[test]
fn a_new_leader_epoch_is_a_change() {
    let mut session = opened();
    let mut moved = at(1, 0);
    moved.current_leader_epoch = 4;
    let next = session.next_request(&[at(0, 0), moved, at(2, 0)]);
    assert_eq!(names(&next), [(1, 0)]);
}

/// FETCH_SESSION_ID_NOT_FOUND: the broker forgot the session; a full
/// request opens a new one (session id 0).
#[test]
fn an_unknown_session_starts_over_with_a_full_request() {
    let mut session = opened();
    session.next_request(&[at(0, 1), at(1, 0), at(2, 0)]);
    assert_eq!(session.on_answer(KafkaCode(70), 0), SessionAnswer::Restart);
    let full = session.next_request(&[at(0, 1), at(1, 0), at(2, 0)]);
    assert_eq!((full.session_id, full.session_epoch), (0, 0));
    assert_eq!(names(&full), [(0, 1), (1, 0), (2, 0)]);
    session.on_answer(KafkaCode::NONE, 78);
    let next = session.next_request(&[at(0, 1), at(1, 0), at(2, 0)]);
    assert_eq!((next.session_id, next.session_epoch), (78, 1));
}

/// INVALID_FETCH_SESSION_EPOCH, a lost connection, another error: the
/// full request names the old session with epoch 0, which closes it and
/// opens a new one.
#[test]
fn an_epoch_refused_or_a_lost_answer_closes_the_session_and_opens_another() {
    let mut session = opened();
    session.next_request(&[at(0, 1), at(1, 0), at(2, 0)]);
    assert_eq!(session.on_answer(KafkaCode(71), 0), SessionAnswer::Restart);
    let full = session.next_request(&[at(0, 1), at(1, 0), at(2, 0)]);
    assert_eq!((full.session_id, full.session_epoch), (77, 0));
    assert_eq!(full.targets.len(), 3);

    let mut session = opened();
    session.next_request(&[at(0, 1), at(1, 0), at(2, 0)]);
    session.on_failure();
    let full = session.next_request(&[at(0, 1), at(1, 0), at(2, 0)]);
    assert_eq!(
        (full.session_id, full.session_epoch, full.targets.len()),
        (77, 0, 3)
    );

    let mut session = opened();
    session.next_request(&[at(0, 1), at(1, 0), at(2, 0)]);
    assert_eq!(session.on_answer(KafkaCode(-1), 0), SessionAnswer::Failed);
    let full = session.next_request(&[at(0, 1), at(1, 0), at(2, 0)]);
    assert_eq!(
        (full.session_id, full.session_epoch, full.targets.len()),
        (77, 0, 3)
    );
}

/// A broker whose session cache is full answers with session id 0: every
/// request stays a full one.
#[test]
fn a_broker_that_keeps_no_session_gets_full_requests() {
    let mut session = FetchSession::default();
    session.next_request(&[at(0, 0)]);
    assert_eq!(
        session.on_answer(KafkaCode::NONE, 0),
        SessionAnswer::Accepted
    );
    let again = session.next_request(&[at(0, 0)]);
    assert_eq!((again.session_id, again.session_epoch), (0, 0));
    assert_eq!(names(&again), [(0, 0)]);
}

#[test]
fn epochs_wrap_to_one() {
    assert_eq!(next_epoch(1), 2);
    assert_eq!(next_epoch(i32::MAX), 1);
}
