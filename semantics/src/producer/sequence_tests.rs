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
            SequenceVerdict::BumpEpoch,
        ),
        (
            "out of order at the head bumps",
            1,
            10,
            45,
            SequenceVerdict::BumpEpoch,
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
            SequenceVerdict::BumpEpoch,
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
            SequenceVerdict::BumpEpoch,
        ),
        (
            "idempotent producer fenced by a rival with its id re-inits",
            1,
            10,
            90,
            SequenceVerdict::BumpEpoch,
        ),
    ];
    for &(name, acked_batches, base, code, expected) in cases {
        let mut s = Sequences::new(7, 0);
        for _ in 0..3 {
            s.assign(&tp(0), 10);
        }
        for i in 0..acked_batches {
            s.acknowledge(&tp(0), i * 10, 10);
        }
        assert_eq!(
            s.verdict(&tp(0), stamp(base), KafkaCode(code)),
            expected,
            "{name}"
        );
    }
}

#[test]
fn a_transactional_producer_fenced_is_not_a_sequence_matter() {
    let mut s = Sequences::transactional(7, 0);
    let stamp = s.assign(&tp(0), 10);
    for code in [47, 90] {
        assert_eq!(
            s.verdict(&tp(0), stamp, KafkaCode(code)),
            SequenceVerdict::NotSequenceRelated
        );
    }
}

#[test]
fn a_batch_from_before_a_bump_is_renumbered() {
    let mut s = Sequences::new(7, 0);
    let old = s.assign(&tp(0), 10);
    s.bump(7, 1);
    assert!(!s.is_current(old));
    assert_eq!(
        s.verdict(&tp(0), old, KafkaCode(47)),
        SequenceVerdict::RetryInOrder
    );
    assert_eq!(s.assign(&tp(0), 10).base_sequence, 0);
}

proptest! {
    /// Against a model: acknowledged batches in assignment order leave the
    /// broker's expected sequence at the sum of their counts (mod 2^31).
    #[test]
    fn acks_in_order_track_the_model(counts in proptest::collection::vec(1i32..1000, 1..50), start in 0i32..i32::MAX) {
        let mut s = Sequences::new(1, 0);
        s.partitions.insert(tp(0), PartitionSequence { next: start, acked_next: start });
        let mut model = i64::from(start);
        for count in counts {
            let stamp = s.assign(&tp(0), count);
            prop_assert_eq!(i64::from(stamp.base_sequence), model);
            s.acknowledge(&tp(0), stamp.base_sequence, count);
            model = (model + i64::from(count)) % (i64::from(i32::MAX) + 1);
            prop_assert_eq!(i64::from(s.partitions[&tp(0)].acked_next), model);
            // The next batch is the head: OUT_OF_ORDER for it means lost state.
            let head = ProducerState { producer_id: 1, producer_epoch: 0, base_sequence: model as i32 };
            prop_assert_eq!(s.verdict(&tp(0), head, KafkaCode(45)), SequenceVerdict::BumpEpoch);
        }
    }
}
