use std::collections::{HashMap, VecDeque};

use bytes::{Bytes, BytesMut};
use kafka_wire::records::{
    BatchBuilder, BatchReader, Compression, ControlRecord, ControlType, DecodeOptions,
    ProducerState, RecordBatch,
};
use proptest::prelude::*;

use super::*;

/// Producer id of non-transactional batches.
const NON_TXN: i64 = -1;
const P1: i64 = 1001;
const P2: i64 = 1002;

fn producer(pid: i64) -> ProducerState {
    if pid < 0 {
        return ProducerState::NONE;
    }
    ProducerState {
        producer_id: pid,
        producer_epoch: 0,
        base_sequence: 0,
    }
}

/// A data batch of `count` records at `base`, transactional unless `pid` is −1.
fn data_bytes(base: i64, pid: i64, count: i32) -> Bytes {
    let mut builder = BatchBuilder::new(Compression::None)
        .transactional(pid >= 0)
        .base_offset(base);
    for i in 0..count {
        let offset = base + i64::from(i);
        builder.append(
            1_000 + offset,
            None,
            Some(format!("v{offset}").as_bytes()),
            &[],
        );
    }
    builder.build(producer(pid)).unwrap()
}

/// A control batch whose record has the given key, as the broker writes markers.
fn control_bytes(offset: i64, pid: i64, key: &[u8], value: &[u8]) -> Bytes {
    let mut builder = BatchBuilder::new(Compression::None)
        .transactional(true)
        .control(true)
        .base_offset(offset);
    builder.append(1_000 + offset, Some(key), Some(value), &[]);
    builder.build(producer(pid)).unwrap()
}

fn marker_bytes(offset: i64, pid: i64, kind: ControlType) -> Bytes {
    let marker = ControlRecord {
        version: 0,
        kind,
        coordinator_epoch: Some(7),
    };
    control_bytes(offset, pid, &marker.key_bytes(), &marker.value_bytes())
}

/// Decodes one fetch response's records field, as the consumer does.
fn fetch(parts: &[Bytes]) -> Vec<RecordBatch> {
    let mut buf = BytesMut::new();
    for part in parts {
        buf.extend_from_slice(part);
    }
    BatchReader::new(buf.freeze())
        .collect::<Result<_, _>>()
        .unwrap()
}

fn one(bytes: Bytes) -> RecordBatch {
    RecordBatch::decode(&bytes, &DecodeOptions::default())
        .unwrap()
        .0
}

/// Resolves one fetch response's batches, as the consumer does.
fn resolve_all(filter: &mut ReadCommittedFilter, parts: &[Bytes]) -> Vec<Resolved> {
    fetch(parts)
        .into_iter()
        .map(|batch| filter.resolve(batch))
        .collect()
}

fn aborted(producer_id: i64, first_offset: i64) -> AbortedTransaction {
    AbortedTransaction {
        producer_id,
        first_offset,
    }
}

fn delivered(items: &[Resolved]) -> Vec<i64> {
    items
        .iter()
        .filter_map(|item| match item {
            Resolved::Deliver(batch) => Some(batch.records.iter().map(|r| r.offset)),
            Resolved::Skip { .. } => None,
        })
        .flatten()
        .collect()
}

fn positions(items: &[Resolved]) -> Vec<i64> {
    items.iter().map(Resolved::next_offset).collect()
}

/// "D" for Deliver, "S" for Skip: the shape of an output sequence.
fn shape(items: &[Resolved]) -> String {
    items
        .iter()
        .map(|item| match item {
            Resolved::Deliver(_) => 'D',
            Resolved::Skip { .. } => 'S',
        })
        .collect()
}

/// Three transactions of 5 records, committed, aborted, committed; markers at
/// 5, 11 and 17, as the broker writes them.
fn commit_abort_commit() -> Vec<Bytes> {
    vec![
        data_bytes(0, P1, 5),
        marker_bytes(5, P1, ControlType::Commit),
        data_bytes(6, P1, 5),
        marker_bytes(11, P1, ControlType::Abort),
        data_bytes(12, P1, 5),
        marker_bytes(17, P1, ControlType::Commit),
    ]
}

#[test]
fn commit_abort_commit_delivers_the_committed_records() {
    let mut filter = ReadCommittedFilter::new();
    // As the broker lists it: P1's transaction from offset 6 was aborted.
    filter.add_aborted(&[aborted(P1, 6)]);
    let items = resolve_all(&mut filter, &commit_abort_commit());
    let expected: Vec<i64> = (0..5).chain(12..17).collect();
    assert_eq!(delivered(&items), expected);
    assert_eq!(positions(&items), [5, 6, 11, 12, 17, 18]);
    assert_eq!(shape(&items), "DSSSDS");
}

#[test]
fn read_uncommitted_delivers_data_and_skips_markers() {
    let items: Vec<Resolved> = fetch(&commit_abort_commit())
        .into_iter()
        .map(resolve_uncommitted)
        .collect();
    assert_eq!(
        delivered(&items),
        (0..17).filter(|&o| o != 5 && o != 11).collect::<Vec<_>>()
    );
    assert_eq!(shape(&items), "DSDSDS");
    assert_eq!(positions(&items), [5, 6, 11, 12, 17, 18]);
}

/// Below the last stable offset every transaction is decided, and the broker
/// lists the aborted ones: a batch not listed is delivered at once, even
/// when its marker is beyond this response (nothing is held, nothing waits).
#[test]
fn unlisted_transactional_batches_are_delivered_at_once() {
    let mut filter = ReadCommittedFilter::new();
    let items = resolve_all(&mut filter, &[data_bytes(0, P1, 3), data_bytes(3, P2, 2)]);
    assert_eq!(shape(&items), "DD");
    assert_eq!(delivered(&items), [0, 1, 2, 3, 4]);
    let items = resolve_all(
        &mut filter,
        &[
            marker_bytes(5, P2, ControlType::Commit),
            marker_bytes(6, P1, ControlType::Commit),
        ],
    );
    assert_eq!(positions(&items), [6, 7]);
}

/// An aborted transaction spread over several responses: dropped batch by
/// batch as it arrives, and its marker, in a later response, only ends it.
#[test]
fn a_listed_abort_drops_batches_before_its_marker_arrives() {
    let mut filter = ReadCommittedFilter::new();
    filter.add_aborted(&[aborted(P1, 0)]);
    let items = resolve_all(&mut filter, &[data_bytes(0, P1, 2), data_bytes(2, P1, 2)]);
    assert_eq!(shape(&items), "SS");
    // The next response overlaps the same transaction: listed again.
    filter.add_aborted(&[aborted(P1, 0)]);
    let items = resolve_all(&mut filter, &[marker_bytes(4, P1, ControlType::Abort)]);
    assert_eq!(positions(&items), [5]);
    // The ABORT marker ended it: P1's next transaction is delivered.
    filter.add_aborted(&[]);
    let items = resolve_all(&mut filter, &[data_bytes(5, P1, 2)]);
    assert_eq!(delivered(&items), [5, 6]);
}

#[test]
fn aborted_entry_waits_for_its_first_offset() {
    let mut filter = ReadCommittedFilter::new();
    // P1 commits 0..2, then aborts a transaction starting at 3.
    filter.add_aborted(&[aborted(P1, 3)]);
    let items = resolve_all(
        &mut filter,
        &[
            data_bytes(0, P1, 2),
            marker_bytes(2, P1, ControlType::Commit),
            data_bytes(3, P1, 2),
            marker_bytes(5, P1, ControlType::Abort),
        ],
    );
    assert_eq!(delivered(&items), [0, 1]);
    assert_eq!(shape(&items), "DSSS");
}

/// One producer aborting twice in one response: each entry starts at its own
/// first offset, and the transaction between them is delivered.
#[test]
fn two_aborted_transactions_of_one_producer_in_one_response() {
    let mut filter = ReadCommittedFilter::new();
    filter.add_aborted(&[aborted(P1, 6), aborted(P1, 0)]);
    let items = resolve_all(
        &mut filter,
        &[
            data_bytes(0, P1, 2),
            marker_bytes(2, P1, ControlType::Abort),
            data_bytes(3, P1, 2),
            marker_bytes(5, P1, ControlType::Commit),
            data_bytes(6, P1, 2),
            marker_bytes(8, P1, ControlType::Abort),
        ],
    );
    assert_eq!(shape(&items), "SSDSSS");
    assert_eq!(delivered(&items), [3, 4]);
}

/// After a seek the next response brings its own list: what the filter knew
/// of the old range is forgotten.
#[test]
fn reset_forgets_everything() {
    let mut filter = ReadCommittedFilter::new();
    filter.add_aborted(&[aborted(P1, 0)]);
    filter.reset();
    let items = resolve_all(&mut filter, &[data_bytes(0, P1, 2)]);
    assert_eq!(delivered(&items), [0, 1]);
}

#[test]
fn non_transactional_batches_keep_offset_order() {
    let mut filter = ReadCommittedFilter::new();
    filter.add_aborted(&[aborted(P1, 0)]);
    let items = resolve_all(
        &mut filter,
        &[
            data_bytes(0, P1, 3),
            data_bytes(3, NON_TXN, 2),
            marker_bytes(5, P1, ControlType::Abort),
            data_bytes(6, NON_TXN, 1),
        ],
    );
    assert_eq!(shape(&items), "SDSD");
    assert_eq!(delivered(&items), [3, 4, 6]);
    assert_eq!(positions(&items), [3, 5, 6, 7]);
}

/// Unknown or malformed control batches are skipped and end no transaction:
/// only the ABORT marker does.
#[test]
fn unknown_or_malformed_control_is_skipped_and_ends_nothing() {
    let mut filter = ReadCommittedFilter::new();
    filter.add_aborted(&[aborted(P1, 0)]);
    let items = resolve_all(
        &mut filter,
        &[
            data_bytes(0, P1, 1),
            control_bytes(1, P1, &[0, 0, 0, 5], &[0, 0, 0, 0, 0, 0]),
            control_bytes(2, P1, &[0], &[]),
            data_bytes(3, P1, 1),
            marker_bytes(4, P1, ControlType::Abort),
            data_bytes(5, P1, 1),
        ],
    );
    assert_eq!(shape(&items), "SSSSSD");
    assert_eq!(positions(&items), [1, 2, 3, 4, 5, 6]);
}

#[test]
fn empty_batches_still_advance_the_position() {
    let mut filter = ReadCommittedFilter::new();
    filter.add_aborted(&[aborted(P1, 3)]);
    // Compaction removed every record but kept the header.
    let mut kept = one(data_bytes(0, NON_TXN, 3));
    kept.records.clear();
    let mut dropped = one(data_bytes(3, P1, 2));
    dropped.records.clear();
    let items = vec![
        filter.resolve(kept),
        filter.resolve(dropped),
        filter.resolve(one(marker_bytes(5, P1, ControlType::Abort))),
    ];
    assert_eq!(shape(&items), "DSS");
    assert_eq!(positions(&items), [3, 5, 6]);
}

/// One batch of the generated log.
#[derive(Debug)]
struct Entry {
    bytes: Bytes,
    next_offset: i64,
}

/// One event of a source: a batch's record count, and `Some(commit)` for a marker.
type Event = (i32, Option<bool>);

/// An aborted transaction of the generated log: producer, first offset, marker offset.
type AbortedSpan = (i64, i64, i64);

/// Interleaves the producers' transactions (and non-transactional batches) into
/// one partition log. Returns the batches, the aborted spans and the offsets
/// of the records a read_committed consumer must see.
fn build_log(
    producers: &[Vec<(Vec<i32>, bool)>],
    non_txn: &[i32],
    picks: &[u32],
) -> (Vec<Entry>, Vec<AbortedSpan>, Vec<i64>) {
    // Each source is a producer id and its events, in its own order.
    let mut sources: Vec<(i64, VecDeque<Event>)> = producers
        .iter()
        .enumerate()
        .map(|(i, txns)| {
            let events = txns
                .iter()
                .flat_map(|(batches, commit)| {
                    let data = batches.iter().map(|&n| (n, None));
                    data.chain(std::iter::once((1, Some(*commit))))
                })
                .collect();
            (1000 + i as i64, events)
        })
        .collect();
    sources.push((NON_TXN, non_txn.iter().map(|&n| (n, None)).collect()));

    let (mut log, mut aborted, mut expected) = (Vec::new(), Vec::new(), Vec::new());
    let mut open: HashMap<i64, (i64, Vec<i64>)> = HashMap::new();
    let mut offset = 0i64;
    let mut step = 0usize;
    loop {
        let live: Vec<usize> = (0..sources.len())
            .filter(|&i| !sources[i].1.is_empty())
            .collect();
        if live.is_empty() {
            break;
        }
        let pick = picks.get(step).copied().unwrap_or(0) as usize;
        step += 1;
        let (pid, events) = &mut sources[live[pick % live.len()]];
        let (count, marker) = events.pop_front().unwrap();
        let offsets: Vec<i64> = (offset..offset + i64::from(count)).collect();
        let bytes = match marker {
            None if *pid == NON_TXN => {
                expected.extend(&offsets);
                data_bytes(offset, NON_TXN, count)
            }
            None => {
                let txn = open.entry(*pid).or_insert((offset, Vec::new()));
                txn.1.extend(&offsets);
                data_bytes(offset, *pid, count)
            }
            Some(commit) => {
                let (first, records) = open.remove(pid).unwrap();
                if commit {
                    expected.extend(records);
                } else {
                    aborted.push((*pid, first, offset));
                }
                let kind = if commit {
                    ControlType::Commit
                } else {
                    ControlType::Abort
                };
                marker_bytes(offset, *pid, kind)
            }
        };
        offset += i64::from(count);
        log.push(Entry {
            bytes,
            next_offset: offset,
        });
    }
    expected.sort_unstable();
    (log, aborted, expected)
}

proptest! {
    /// Any interleaving of producers' committed and aborted transactions and
    /// plain batches, fetched in responses cut anywhere, each carrying the
    /// aborted transactions its range overlaps (as Kafka computes the list):
    /// exactly the committed and plain records are delivered, in offset
    /// order, each batch resolved as it arrives.
    #[test]
    fn model_read_committed_sees_exactly_the_committed_records(
        producers in prop::collection::vec(
            prop::collection::vec((prop::collection::vec(1..4i32, 1..4), any::<bool>()), 0..4),
            1..=4,
        ),
        non_txn in prop::collection::vec(1..4i32, 0..4),
        picks in prop::collection::vec(any::<u32>(), 0..80),
        cuts in prop::collection::vec(any::<bool>(), 0..80),
    ) {
        let (log, aborted, expected) = build_log(&producers, &non_txn, &picks);
        let mut filter = ReadCommittedFilter::new();
        let mut items = Vec::new();
        let mut start = 0usize;
        while start < log.len() {
            // One fetch response: up to the next cut.
            let mut end = start + 1;
            while end < log.len() && !cuts.get(end).copied().unwrap_or(false) {
                end += 1;
            }
            let first = if start == 0 { 0 } else { log[start - 1].next_offset };
            let last = log[end - 1].next_offset;
            // Like the broker: aborted transactions overlapping the range.
            let list: Vec<AbortedTransaction> = aborted
                .iter()
                .filter(|&&(_, first_offset, marker)| first_offset < last && marker >= first)
                .map(|&(producer_id, first_offset, _)| AbortedTransaction { producer_id, first_offset })
                .collect();
            filter.add_aborted(&list);
            let parts: Vec<Bytes> = log[start..end].iter().map(|e| e.bytes.clone()).collect();
            let resolved = resolve_all(&mut filter, &parts);
            prop_assert_eq!(resolved.len(), end - start, "one item per batch, at once");
            items.extend(resolved);
            start = end;
        }
        prop_assert_eq!(delivered(&items), expected);
        // One item per batch, in order: positions cover every offset, no gap.
        let wanted: Vec<i64> = log.iter().map(|e| e.next_offset).collect();
        prop_assert_eq!(positions(&items), wanted);
    }
}
