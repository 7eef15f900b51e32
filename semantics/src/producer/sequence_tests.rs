use proptest::prelude::*;

use super::*;

fn tp(partition: i32) -> TopicPartition {
    (Arc::from("t"), partition)
}

#[test]
fn sequences_are_per_partition_and_contiguous() {
    let mut s = Sequences::new(7, 0);
    assert_eq!(s.assign(&tp(0), 10).base_sequence, 0);
    assert_eq!(s.assign(&tp(0), 5).base_sequence, 10);
    assert_eq!(s.assign(&tp(1), 3).base_sequence, 0);
    assert_eq!(s.assign(&tp(0), 1).base_sequence, 15);
}

#[test]
fn sequences_wrap_at_i32_max_to_zero() {
    assert_eq!(increment_sequence(i32::MAX, 1), 0);
    assert_eq!(increment_sequence(i32::MAX - 2, 5), 2);
    assert_eq!(increment_sequence(5, 5), 10);
}

/// (description, batches acked before, failing batch base, code, expected verdict)
#[test]
fn verdicts_table() {
    let stamp = |base| ProducerState {
        producer_id: 7,
        producer_epoch: 0,
        base_sequence: base,
    };
    let cases: &[(&str, i32, i32, i16, SequenceVerdict)] = &[
        (
            "duplicate means already written",
            0,
            0,
            46,
            SequenceVerdict::AlreadyWritten,
        ),
        (
            "unknown producer id bumps (KIP-360)",
            1,
            10,
            59,
            SequenceVerdict::ResetPartition,
        ),
        (
            "out of order at the head bumps",
            1,
            10,
            45,
            SequenceVerdict::ResetPartition,
        ),
        (
            "out of order behind a failed batch retries",
            1,
            20,
            45,
            SequenceVerdict::RetryInOrder,
        ),
        (
            "out of order with nothing acked, head",
            0,
            0,
            45,
            SequenceVerdict::ResetPartition,
        ),
        (
            "not leader is not a sequence matter",
            1,
            10,
            6,
            SequenceVerdict::NotSequenceRelated,
        ),
        (
            "invalid epoch on the current epoch re-inits",
            1,
            10,
            47,
            SequenceVerdict::ResetPartition,
        ),
        (
            "idempotent producer fenced by a rival with its id re-inits",
            1,
            10,
            90,
            SequenceVerdict::ResetPartition,
        ),
    ];
    for &(name, acked_batches, base, code, expected) in cases {
        let mut s = Sequences::new(7, 0);
        for _ in 0..3 {
            s.assign(&tp(0), 10);
        }
        for i in 0..acked_batches {
            s.acknowledge(&tp(0), stamp(i * 10), 10);
        }
        assert_eq!(
            s.verdict(&tp(0), stamp(base), KafkaCode(code), true),
            expected,
            "{name}"
        );
    }
}

/// Found on Apache Kafka with a topic created a moment before: the first
/// batch (sequence 0) was refused NOT_LEADER_OR_FOLLOWER while the second
/// (sequence 10), in flight beside it, reached the leader once it was
/// ready. A broker holding no state of the producer takes any first
/// sequence, so 10 was written and 0 never can be under this epoch. It was
/// retried in order, came back OUT_OF_ORDER, and was retried again — 6,000
/// times a second until delivery.timeout.ms. It is a hole: reset.
#[test]
fn a_batch_behind_one_the_broker_took_first_resets_its_partition() {
    let mut s = Sequences::new(7, 0);
    let first = s.assign(&tp(0), 10);
    let second = s.assign(&tp(0), 10);
    s.acknowledge(&tp(0), second, 10);
    assert_eq!(
        s.verdict(&tp(0), first, KafkaCode(45), true),
        SequenceVerdict::ResetPartition
    );
    // Sent beside other batches, an answer says nothing of the broker's state.
    assert_eq!(
        s.verdict(&tp(0), first, KafkaCode(45), false),
        SequenceVerdict::RetryInOrder
    );
    s.request_reset(&tp(0), first);
    assert_eq!(s.reset(&tp(0)), Ok((7, 1)));
    assert_eq!(s.assign(&tp(0), 10).base_sequence, 0, "renumbered from 0");
}

/// So that it does not happen: a partition's first batch under an epoch
/// goes alone, until the broker holds state of the producer.
#[test]
fn the_first_batch_of_an_epoch_waits_for_its_acknowledgement() {
    let mut s = Sequences::new(7, 0);
    assert!(s.awaiting_first_ack(&tp(0)));
    let first = s.assign(&tp(0), 10);
    assert!(s.awaiting_first_ack(&tp(0)));
    s.acknowledge(&tp(0), first, 10);
    assert!(!s.awaiting_first_ack(&tp(0)));
    assert!(s.awaiting_first_ack(&tp(1)), "per partition");
    let second = s.assign(&tp(0), 10);
    s.request_reset(&tp(0), second);
    s.reset(&tp(0)).unwrap();
    assert!(s.awaiting_first_ack(&tp(0)), "again under the new epoch");
}

#[test]
fn a_transactional_producer_fenced_is_not_a_sequence_matter() {
    let mut s = Sequences::transactional(7, 0);
    let stamp = s.assign(&tp(0), 10);
    for code in [47, 90] {
        assert_eq!(
            s.verdict(&tp(0), stamp, KafkaCode(code), true),
            SequenceVerdict::NotSequenceRelated
        );
    }
}

#[test]
fn a_batch_from_before_a_reset_is_renumbered() {
    let mut s = Sequences::new(7, 0);
    let old = s.assign(&tp(0), 10);
    s.request_reset(&tp(0), old);
    assert_eq!(s.reset(&tp(0)), Ok((7, 1)));
    assert!(!s.is_current(&tp(0), old));
    assert_eq!(
        s.verdict(&tp(0), old, KafkaCode(47), true),
        SequenceVerdict::RetryInOrder
    );
    let new = s.assign(&tp(0), 10);
    assert_eq!((new.producer_epoch, new.base_sequence), (1, 0));
}

/// Issue 14 item 13: a reset concerns its partition only (KIP-360, as the
/// Java client does); the others keep their epoch and numbering.
#[test]
fn a_reset_leaves_other_partitions_alone() {
    let mut s = Sequences::new(7, 0);
    let zero = s.assign(&tp(0), 10);
    s.assign(&tp(1), 10);
    s.failed_for_good(&tp(0), zero, 10, false);
    assert!(s.reset_requested(&tp(0)));
    assert!(!s.reset_requested(&tp(1)));
    assert_eq!(s.reset(&tp(0)), Ok((7, 1)));
    let one = s.assign(&tp(1), 5);
    assert_eq!((one.producer_epoch, one.base_sequence), (0, 10));
    let zero = s.assign(&tp(0), 5);
    assert_eq!((zero.producer_epoch, zero.base_sequence), (1, 0));
    // Partition 1 is behind the newest epoch: its reset takes it as is.
    s.request_reset(&tp(1), one);
    assert_eq!(s.reset(&tp(1)), Ok((7, 1)));
    // A partition already on the newest epoch takes a higher one.
    s.request_reset(&tp(0), zero);
    assert_eq!(s.reset(&tp(0)), Ok((7, 2)));
}

/// Requests from separate tasks can reach the wire out of order: an
/// OUT_OF_ORDER for a batch sent behind another one is not lost state.
#[test]
fn out_of_order_for_a_batch_sent_behind_another_is_retried() {
    let mut s = Sequences::new(7, 0);
    let first = s.assign(&tp(0), 10);
    let second = s.assign(&tp(0), 10);
    // The first is acknowledged before the second's refusal is read.
    s.acknowledge(&tp(0), first, 10);
    assert_eq!(
        s.verdict(&tp(0), second, KafkaCode(45), false),
        SequenceVerdict::RetryInOrder
    );
    assert_eq!(
        s.verdict(&tp(0), second, KafkaCode(45), true),
        SequenceVerdict::ResetPartition
    );
}

/// A batch that may be in the log failed for good: the next batch's answer
/// decides. Acknowledged: it was written and nothing resets. OUT_OF_ORDER at
/// its place: it was not, and the partition resets.
#[test]
fn a_failed_batch_in_doubt_is_resolved_by_the_next_answer() {
    let mut s = Sequences::new(7, 0);
    let lost = s.assign(&tp(0), 10);
    let next = s.assign(&tp(0), 10);
    s.failed_for_good(&tp(0), lost, 10, true);
    assert!(!s.reset_requested(&tp(0)));
    assert_eq!(
        s.verdict(&tp(0), next, KafkaCode(45), true),
        SequenceVerdict::ResetPartition
    );
    s.acknowledge(&tp(0), next, 10);
    assert_eq!(s.assign(&tp(0), 1).base_sequence, 20);

    let mut s = Sequences::new(7, 0);
    let lost = s.assign(&tp(0), 10);
    let next = s.assign(&tp(0), 10);
    s.failed_for_good(&tp(0), lost, 10, true);
    s.request_reset(&tp(0), next);
    assert!(s.provably_unwritten(&tp(0), next));
    assert!(!s.provably_unwritten(&tp(0), lost));
}

#[test]
fn an_exhausted_epoch_needs_a_new_id() {
    let mut s = Sequences::new(7, i16::MAX);
    let stamp = s.assign(&tp(0), 1);
    s.request_reset(&tp(0), stamp);
    assert_eq!(s.reset(&tp(0)), Err(ResetError::EpochExhausted));
    s.adopt(8, 0);
    assert_eq!(s.reset(&tp(0)), Ok((8, 0)));
    assert!(!s.reset_requested(&tp(0)));
}

proptest! {
    /// Against a model: acknowledged batches in assignment order leave the
    /// broker's expected sequence at the sum of their counts (mod 2^31).
    #[test]
    fn acks_in_order_track_the_model(counts in proptest::collection::vec(1i32..1000, 1..50), start in 0i32..i32::MAX) {
        let mut s = Sequences::new(1, 0);
        s.partitions.insert(tp(0), PartitionSequence { next: start, acked_next: start, ..PartitionSequence::new((1, 0)) });
        let mut model = i64::from(start);
        for count in counts {
            let stamp = s.assign(&tp(0), count);
            prop_assert_eq!(i64::from(stamp.base_sequence), model);
            s.acknowledge(&tp(0), stamp, count);
            model = (model + i64::from(count)) % (i64::from(i32::MAX) + 1);
            prop_assert_eq!(i64::from(s.partitions[&tp(0)].acked_next), model);
            // The next batch is the head: OUT_OF_ORDER for it means lost state.
            let head = ProducerState { producer_id: 1, producer_epoch: 0, base_sequence: model as i32 };
            prop_assert_eq!(s.verdict(&tp(0), head, KafkaCode(45), true), SequenceVerdict::ResetPartition);
        }
    }
}
