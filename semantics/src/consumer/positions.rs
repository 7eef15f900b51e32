//! Where a newly assigned partition starts: the group's committed offset,
//! else `auto.offset.reset` through ListOffsets at the partitions' leaders:
//! one request per leader for all its partitions, the leaders in parallel
//! (one request per partition took 1,000 round trips to start reading a
//! 1,000-partition topic).

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
    out.extend(reset_positions(shared, &need_reset).await);
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
    let mut positions = reset_positions(shared, std::slice::from_ref(tp)).await;
    positions.remove(tp).unwrap_or(Err(ConsumeError::Partition {
        topic: tp.topic.clone(),
        partition: tp.partition,
        code: KafkaCode(-1),
    }))
}

/// The `auto.offset.reset` positions of `partitions`. Retriable failures
/// (no leader yet, leader moved, broker unreachable) are retried for the
/// partitions they hit, with backoff, until `default.api.timeout.ms`.
pub async fn reset_positions(
    shared: &Shared,
    partitions: &[TopicPartition],
) -> HashMap<TopicPartition, Result<i64, ConsumeError>> {
    let mut out = HashMap::new();
    let timestamp = match shared.config.auto_offset_reset {
        OffsetReset::Earliest => EARLIEST,
        OffsetReset::Latest => LATEST,
        OffsetReset::None => {
            for tp in partitions {
                let error = ConsumeError::NoOffset {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    code: KafkaCode(0),
                };
                out.insert(tp.clone(), Err(error));
            }
            return out;
        }
    };
    let deadline = Instant::now() + shared.config.default_api_timeout;
    let policy = shared.config.retry_policy();
    let mut retrying = policy.until(deadline);
    let mut pending: Vec<TopicPartition> = partitions.to_vec();
    while !pending.is_empty() {
        let mut retry = Vec::new();
        for (tp, result) in list_offsets_once(shared, &pending, timestamp).await {
            match result {
                Err(error) if error.is_retriable() => retry.push((tp, error)),
                done => {
                    out.insert(tp, done);
                }
            }
        }
        if retry.is_empty() {
            break;
        }
        debug!(partitions = retry.len(), error = %retry[0].1, "ListOffsets failed; retrying");
        let mut topics: Vec<&str> = retry.iter().map(|(tp, _)| tp.topic.as_str()).collect();
        topics.dedup();
        for topic in topics {
            shared.cluster.invalidate(topic);
        }
        if !retrying.wait().await {
            out.extend(retry.into_iter().map(|(tp, error)| (tp, Err(error))));
            break;
        }
        pending = retry.into_iter().map(|(tp, _)| tp).collect();
    }
    out
}

/// One ListOffsets per leader of `partitions`, the leaders in parallel.
async fn list_offsets_once(
    shared: &Shared,
    partitions: &[TopicPartition],
    timestamp: i64,
) -> Vec<(TopicPartition, Result<i64, ConsumeError>)> {
    let partition_error = |tp: &TopicPartition, code: KafkaCode| ConsumeError::Partition {
        topic: tp.topic.clone(),
        partition: tp.partition,
        code,
    };
    let mut out = Vec::new();
    let mut by_leader: HashMap<i32, Vec<(TopicPartition, i64)>> = HashMap::new();
    for tp in partitions {
        let deadline = Instant::now() + shared.config.request_timeout;
        let topic = shared
            .cluster
            .topic(&tp.topic, deadline, &shared.config.retry_policy())
            .await;
        let leader = match topic {
            Err((code, _)) => Err(code),
            // UNKNOWN_TOPIC_OR_PARTITION
            Ok(topic) if tp.partition < 0 || tp.partition >= topic.partition_count() => {
                Err(KafkaCode(3))
            }
            // LEADER_NOT_AVAILABLE
            Ok(_) => shared
                .cluster
                .leader(&tp.topic, tp.partition)
                .ok_or(KafkaCode(5)),
        };
        match leader {
            Ok(leader) => by_leader
                .entry(leader)
                .or_default()
                .push((tp.clone(), timestamp)),
            Err(code) => out.push((tp.clone(), Err(partition_error(tp, code)))),
        }
    }
    let isolation = shared.config.isolation_level;
    let mut requests = tokio::task::JoinSet::new();
    for (leader, wanted) in by_leader {
        let cluster = shared.cluster.clone();
        requests.spawn(async move {
            let answers = match cluster.connection(leader).await {
                Ok(connection) => list_offsets(&connection, isolation, &wanted).await,
                Err(error) => Err(error.into()),
            };
            (wanted, answers)
        });
    }
    while let Some(joined) = requests.join_next().await {
        let Ok((wanted, answers)) = joined else {
            continue; // a panicked task: its partitions are reported below
        };
        match answers {
            Ok(answers) => {
                let answers: HashMap<TopicPartition, Result<i64, KafkaCode>> =
                    answers.into_iter().collect();
                for (tp, _) in &wanted {
                    let result = match answers.get(tp) {
                        Some(Ok(offset)) => Ok(*offset),
                        Some(Err(code)) => Err(partition_error(tp, *code)),
                        None => Err(partition_error(tp, KafkaCode(-1))),
                    };
                    out.push((tp.clone(), result));
                }
            }
            Err(error) => out.extend(wanted.into_iter().map(|(tp, _)| (tp, Err(error.clone())))),
        }
    }
    let answered: std::collections::HashSet<TopicPartition> =
        out.iter().map(|(tp, _)| tp.clone()).collect();
    for tp in partitions {
        if !answered.contains(tp) {
            out.push((tp.clone(), Err(partition_error(tp, KafkaCode(-1)))));
        }
    }
    out
}
