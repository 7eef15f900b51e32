//! Where a newly assigned partition starts: the group's committed offset,
//! else `auto.offset.reset` through ListOffsets at the partition's leader.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kafka_wire::KafkaCode;
use tracing::debug;

use super::offsets::{list_offsets, EARLIEST, LATEST};
use super::shared::Shared;
use super::{ConsumeError, OffsetReset, TopicPartition};

/// Start positions for `partitions`; retriable failures are retried with
/// backoff until `request.timeout.ms` passes.
pub async fn resolve_positions(
    shared: &Shared,
    partitions: &[TopicPartition],
) -> HashMap<TopicPartition, Result<i64, ConsumeError>> {
    let mut out = HashMap::new();
    let mut need_reset = Vec::new();
    match &shared.group {
        Some(group) => match stable_committed(group, shared, partitions).await {
            Ok(committed) => {
                for (tp, offset) in committed {
                    match offset {
                        Some(offset) => {
                            out.insert(tp, Ok(offset));
                        }
                        None => need_reset.push(tp),
                    }
                }
                // Partitions the answer left out have nothing committed.
                let missing: Vec<TopicPartition> = partitions
                    .iter()
                    .filter(|tp| !out.contains_key(*tp) && !need_reset.contains(tp))
                    .cloned()
                    .collect();
                need_reset.extend(missing);
            }
            Err(error) => {
                for tp in partitions {
                    out.insert(tp.clone(), Err(error.clone()));
                }
                return out;
            }
        },
        None => need_reset.extend(partitions.iter().cloned()),
    }
    for tp in need_reset {
        let result = reset_position(shared, &tp).await;
        out.insert(tp, result);
    }
    out
}

/// UNSTABLE_OFFSET_COMMIT: a transaction holds offsets of these partitions
/// that are neither committed nor aborted yet (KIP-447).
const UNSTABLE_OFFSET_COMMIT: i16 = 88;

/// The committed offsets, waiting out open transactions: a transaction
/// ends by commit, abort or its timeout, and starting from the offset
/// committed before it would process its records twice. The Java client
/// likewise retries for as long as the broker says so.
async fn stable_committed(
    group: &super::group::GroupShared,
    shared: &Shared,
    partitions: &[TopicPartition],
) -> Result<Vec<(TopicPartition, Option<i64>)>, ConsumeError> {
    loop {
        match group.fetch_committed(partitions).await {
            Err(ConsumeError::Commit { code }) if code.0 == UNSTABLE_OFFSET_COMMIT => {
                debug!(?partitions, "offsets held by an open transaction; waiting");
                tokio::time::sleep(shared.config.retry_backoff.max(Duration::from_millis(100)))
                    .await;
            }
            other => return other,
        }
    }
}

/// The `auto.offset.reset` position of `tp`.
pub async fn reset_position(shared: &Shared, tp: &TopicPartition) -> Result<i64, ConsumeError> {
    let timestamp = match shared.config.auto_offset_reset {
        OffsetReset::Earliest => EARLIEST,
        OffsetReset::Latest => LATEST,
        OffsetReset::None => {
            return Err(ConsumeError::NoOffset {
                topic: tp.topic.clone(),
                partition: tp.partition,
                code: KafkaCode(0),
            })
        }
    };
    let deadline = Instant::now() + shared.config.default_api_timeout;
    let policy = shared.config.retry_policy();
    let mut retrying = policy.until(deadline);
    loop {
        let error = match list_offset_once(shared, tp, timestamp).await {
            Ok(offset) => return Ok(offset),
            Err(error) => error,
        };
        if !error.is_retriable() {
            return Err(error);
        }
        debug!(%tp, %error, "ListOffsets failed; retrying");
        shared.cluster.invalidate(&tp.topic);
        if !retrying.wait().await {
            return Err(error);
        }
    }
}

async fn list_offset_once(
    shared: &Shared,
    tp: &TopicPartition,
    timestamp: i64,
) -> Result<i64, ConsumeError> {
    let deadline = Instant::now() + shared.config.request_timeout;
    let topic = shared
        .cluster
        .topic(&tp.topic, deadline, &shared.config.retry_policy())
        .await
        .map_err(|(code, _)| ConsumeError::Partition {
            topic: tp.topic.clone(),
            partition: tp.partition,
            code,
        })?;
    if tp.partition < 0 || tp.partition >= topic.partition_count() {
        return Err(ConsumeError::Partition {
            topic: tp.topic.clone(),
            partition: tp.partition,
            code: KafkaCode(3),
        });
    }
    let leader = shared
        .cluster
        .leader(&tp.topic, tp.partition)
        .ok_or(ConsumeError::Partition {
            topic: tp.topic.clone(),
            partition: tp.partition,
            code: KafkaCode(5),
        })?;
    let connection = shared.cluster.connection(leader).await?;
    let answers = list_offsets(
        &connection,
        shared.config.isolation_level,
        &[(tp.clone(), timestamp)],
    )
    .await?;
    let (_, result) = answers
        .into_iter()
        .find(|(answered, _)| answered == tp)
        .ok_or(ConsumeError::Partition {
            topic: tp.topic.clone(),
            partition: tp.partition,
            code: KafkaCode(-1),
        })?;
    result.map_err(|code| ConsumeError::Partition {
        topic: tp.topic.clone(),
        partition: tp.partition,
        code,
    })
}
