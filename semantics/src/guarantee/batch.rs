//! Batches of input records for the processor: how they are formed, the
//! offsets that commit them, and going back to the committed offsets when a
//! batch has to be processed again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::consumer::{ConsumeError, Consumer, ConsumerRecord, TopicPartition};
use crate::producer::{Producer, TransactionError};

/// How batches are formed.
#[derive(Debug, Clone)]
pub struct LoopOptions {
    /// Most input records per batch (per transaction under exactly-once).
    pub max_batch: usize,
    /// Longest wait for more records once a batch has one.
    pub max_wait: Duration,
    /// Stop once no record arrived for this long and the consumer is
    /// caught up (see [`Consumer::caught_up`]: no rebalance under way, every
    /// assigned partition read to its end). `None`: run until an error.
    pub idle_timeout: Option<Duration>,
}

impl Default for LoopOptions {
    fn default() -> Self {
        Self {
            max_batch: 500,
            max_wait: Duration::from_millis(100),
            idle_timeout: None,
        }
    }
}

/// The first record of the next batch: it waits until the consumer has been
/// idle for `idle_timeout` (`None` when it was: the run is over). An error
/// met after the previous batch's first record (`deferred`) comes first.
pub(crate) async fn first_record(
    consumer: &mut Consumer,
    options: &LoopOptions,
    deferred: &mut Option<ConsumeError>,
) -> Result<Option<ConsumerRecord>, ConsumeError> {
    if let Some(error) = deferred.take() {
        return Err(error);
    }
    let Some(idle) = options.idle_timeout else {
        return consumer.recv().await.map(Some);
    };
    loop {
        match consumer.poll(idle).await {
            Some(record) => return record.map(Some),
            // Quiet, maybe only because a rebalance or a position lookup is
            // under way: idle means nothing is left to read.
            None if consumer.caught_up().await? => return Ok(None),
            None => tracing::debug!("no record for the idle timeout, but not caught up"),
        }
    }
}

/// `first` and the records that follow it within `max_wait`, up to
/// `max_batch`. An error ends the batch and waits in `deferred` for the
/// next call, so the records already taken from the consumer (whose
/// positions moved past them) are processed, not dropped.
pub(crate) async fn rest_of_batch(
    consumer: &mut Consumer,
    options: &LoopOptions,
    first: ConsumerRecord,
    deferred: &mut Option<ConsumeError>,
) -> Vec<ConsumerRecord> {
    let mut batch = vec![first];
    let deadline = Instant::now() + options.max_wait;
    while batch.len() < options.max_batch {
        let left = deadline.saturating_duration_since(Instant::now());
        match consumer.poll(left).await {
            Some(Ok(record)) => batch.push(record),
            Some(Err(error)) => {
                *deferred = Some(error);
                break;
            }
            None => break,
        }
    }
    batch
}

/// The offset after the last record of each partition in `batch`.
pub(crate) fn next_offsets(batch: &[ConsumerRecord]) -> Vec<(TopicPartition, i64)> {
    let mut next: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    for record in batch {
        let tp = TopicPartition::new(&*record.topic, record.partition);
        let entry = next.entry(tp).or_insert(record.offset + 1);
        *entry = (*entry).max(record.offset + 1);
    }
    next.into_iter().collect()
}

/// Ends the failed transaction. After an unknown outcome the commit may have
/// been applied: aborting it could be refused, so the producer takes a new
/// epoch instead, which makes the coordinator finish it either way.
pub(crate) async fn recover(producer: &Producer) -> Result<(), TransactionError> {
    use crate::producer::txn::TxnState;
    match producer.transaction_state() {
        Some(TxnState::InTransaction | TxnState::AbortableError) => {
            producer.abort_transaction().await
        }
        Some(TxnState::NeedsReinit) => producer.init_transactions().await,
        _ => Ok(()),
    }
}

/// Moves each partition of `batch` back to the group's committed offset —
/// the truth after an abort or an unknown outcome — or, when nothing was
/// committed yet, to the batch's first record of it.
pub(crate) async fn rewind(
    consumer: &mut Consumer,
    batch: &[ConsumerRecord],
) -> Result<(), ConsumeError> {
    let mut first: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    for record in batch {
        let tp = TopicPartition::new(&*record.topic, record.partition);
        let entry = first.entry(tp).or_insert(record.offset);
        *entry = (*entry).min(record.offset);
    }
    // Partitions taken away meanwhile are their new owner's: asking for
    // their committed offsets could wait out the new owner's open
    // transaction (UNSTABLE_OFFSET_COMMIT) for nothing.
    let owned: std::collections::HashSet<TopicPartition> = consumer
        .assignment()
        .await?
        .into_iter()
        .map(|(tp, _)| tp)
        .collect();
    first.retain(|tp, _| owned.contains(tp));
    if first.is_empty() {
        return Ok(());
    }
    let committed = consumer.committed(first.keys().cloned().collect()).await?;
    for (tp, offset) in committed {
        if let (Some(committed), Some(start)) = (offset, first.get_mut(&tp)) {
            *start = committed;
        }
    }
    for (tp, offset) in first {
        match consumer.seek(tp, offset).await {
            // Revoked meanwhile: the new owner starts from the committed offset.
            Err(ConsumeError::Partition { .. }) | Ok(()) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn record(topic: &str, partition: i32, offset: i64) -> ConsumerRecord {
        ConsumerRecord {
            topic: Arc::from(topic),
            partition,
            offset,
            timestamp: 0,
            timestamp_type: crate::consumer::TimestampType::CreateTime,
            key: None,
            value: None,
            headers: Vec::new(),
        }
    }

    #[test]
    fn offsets_to_commit_are_one_past_the_last_record_per_partition() {
        let batch = [
            record("a", 0, 5),
            record("a", 1, 9),
            record("a", 0, 6),
            record("b", 0, 0),
        ];
        assert_eq!(
            next_offsets(&batch),
            [
                (TopicPartition::new("a", 0), 7),
                (TopicPartition::new("a", 1), 10),
                (TopicPartition::new("b", 0), 1)
            ]
        );
    }
}
