//! The Jepsen-style checker: compares what a workload sent with what a
//! separate consumer read back, and counts every anomaly per topic-partition.
//! It never trusts the client under test to count.
//!
//! | anomaly | meaning |
//! |---|---|
//! | `lost` | acknowledged, never read |
//! | `duplicated` | the same id read at more than one offset (extra copies) |
//! | `reordered` | read after a record its producer sent later, same partition |
//! | `aborted_read` | a record of an aborted transaction seen under read_committed |
//! | `unacknowledged` | sent, never acknowledged, never read (allowed to be lost) |

use std::collections::{BTreeMap, HashMap};

/// A topic-partition.
pub type Partition = (String, i32);

/// One record the workload handed to the producer under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Unique id carried in the record.
    pub id: u64,
    /// Which producer (process) sent it.
    pub producer: u32,
    /// Send order within that producer.
    pub sequence: u64,
    /// Where the producer said it landed, if it acknowledged it.
    pub acknowledged: Option<Partition>,
    /// Part of a transaction that was aborted.
    pub aborted: bool,
}

/// One record the checker's own consumer read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// Where it was read.
    pub partition: Partition,
    /// Its offset.
    pub offset: i64,
    /// The id it carries.
    pub id: u64,
}

/// Anomalies in one partition (or in total).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Anomalies {
    /// Acknowledged, never read.
    pub lost: u64,
    /// Extra copies of ids read more than once.
    pub duplicated: u64,
    /// Records read after a later-sent record of the same producer.
    pub reordered: u64,
    /// Aborted records seen by a read_committed reader.
    pub aborted_read: u64,
    /// Sent, never acknowledged, never read.
    pub unacknowledged: u64,
}

impl Anomalies {
    fn add(&mut self, other: &Anomalies) {
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.reordered += other.reordered;
        self.aborted_read += other.aborted_read;
        self.unacknowledged += other.unacknowledged;
    }
}

/// The checker's verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Per partition.
    pub partitions: BTreeMap<Partition, Anomalies>,
    /// Sum over partitions; `unacknowledged` counts records with no partition.
    pub total: Anomalies,
}

/// Compares `sent` with `read` (read in offset order per partition; the
/// checker sorts them anyway). `read_committed` says how `read` was read.
pub fn check(sent: &[Sent], read: &[Read], read_committed: bool) -> Report {
    let by_id: HashMap<u64, &Sent> = sent.iter().map(|s| (s.id, s)).collect();
    let mut reads: Vec<&Read> = read.iter().collect();
    reads.sort_by(|a, b| (&a.partition, a.offset).cmp(&(&b.partition, b.offset)));
    let mut report = Report::default();
    let mut copies: HashMap<u64, u64> = HashMap::new();
    let mut latest: HashMap<(&Partition, u32), u64> = HashMap::new();
    for record in reads {
        let anomalies = report
            .partitions
            .entry(record.partition.clone())
            .or_default();
        let seen = copies.entry(record.id).or_default();
        *seen += 1;
        if *seen > 1 {
            anomalies.duplicated += 1;
            continue;
        }
        let Some(sent) = by_id.get(&record.id) else {
            continue;
        };
        if read_committed && sent.aborted {
            anomalies.aborted_read += 1;
        }
        let newest = latest
            .entry((&record.partition, sent.producer))
            .or_insert(sent.sequence);
        if sent.sequence < *newest {
            anomalies.reordered += 1;
        } else {
            *newest = sent.sequence;
        }
    }
    for record in sent.iter().filter(|s| !copies.contains_key(&s.id)) {
        match &record.acknowledged {
            Some(partition) if !record.aborted => {
                report.partitions.entry(partition.clone()).or_default().lost += 1
            }
            Some(_) => {}
            None => report.total.unacknowledged += 1,
        }
    }
    let per_partition: Vec<Anomalies> = report.partitions.values().copied().collect();
    for anomalies in &per_partition {
        report.total.add(anomalies);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p0() -> Partition {
        ("t".into(), 0)
    }

    fn sent(id: u64, sequence: u64, acked: bool) -> Sent {
        Sent {
            id,
            producer: 1,
            sequence,
            acknowledged: acked.then(p0),
            aborted: false,
        }
    }

    fn read(ids: &[u64]) -> Vec<Read> {
        ids.iter()
            .enumerate()
            .map(|(offset, &id)| Read {
                partition: p0(),
                offset: offset as i64,
                id,
            })
            .collect()
    }

    #[test]
    fn a_clean_history_has_no_anomaly() {
        let history: Vec<Sent> = (0..5).map(|i| sent(i, i, true)).collect();
        assert_eq!(
            check(&history, &read(&[0, 1, 2, 3, 4]), false).total,
            Anomalies::default()
        );
    }

    #[test]
    fn an_acknowledged_record_never_read_is_lost() {
        let history: Vec<Sent> = (0..3).map(|i| sent(i, i, true)).collect();
        let report = check(&history, &read(&[0, 2]), false);
        assert_eq!(report.partitions[&p0()].lost, 1);
        assert_eq!(report.total.lost, 1);
    }

    #[test]
    fn an_id_at_two_offsets_is_duplicated() {
        let history: Vec<Sent> = (0..3).map(|i| sent(i, i, true)).collect();
        let report = check(&history, &read(&[0, 1, 1, 2, 1]), false);
        assert_eq!(report.total.duplicated, 2);
        assert_eq!(report.total.lost, 0);
    }

    #[test]
    fn a_record_after_a_later_one_is_reordered() {
        let history: Vec<Sent> = (0..4).map(|i| sent(i, i, true)).collect();
        let report = check(&history, &read(&[0, 2, 1, 3]), false);
        assert_eq!(report.total.reordered, 1);
    }

    #[test]
    fn records_of_two_producers_interleave_freely() {
        let mut history: Vec<Sent> = (0..2).map(|i| sent(i, i, true)).collect();
        history.extend((0..2).map(|i| Sent {
            producer: 2,
            ..sent(10 + i, i, true)
        }));
        assert_eq!(
            check(&history, &read(&[10, 0, 11, 1]), false)
                .total
                .reordered,
            0
        );
    }

    #[test]
    fn aborted_records_count_only_under_read_committed() {
        let mut history: Vec<Sent> = (0..2).map(|i| sent(i, i, true)).collect();
        history[1].aborted = true;
        assert_eq!(check(&history, &read(&[0, 1]), true).total.aborted_read, 1);
        assert_eq!(check(&history, &read(&[0, 1]), false).total.aborted_read, 0);
        // An aborted record that is missing is not lost.
        assert_eq!(check(&history, &read(&[0]), true).total.lost, 0);
    }

    #[test]
    fn unacknowledged_and_unread_is_its_own_count() {
        let history = vec![sent(0, 0, true), sent(1, 1, false)];
        let report = check(&history, &read(&[0]), false);
        assert_eq!(report.total.unacknowledged, 1);
        assert_eq!(report.total.lost, 0);
        // Unacknowledged but read is fine (it was written).
        assert_eq!(
            check(&history, &read(&[0, 1]), false).total,
            Anomalies::default()
        );
    }
}
