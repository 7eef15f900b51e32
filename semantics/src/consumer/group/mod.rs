//! Consumer groups (classic protocol): the coordinator, the generation this
//! member is in, offset commits, and the task that keeps the membership.

mod membership;
mod requests;
mod task;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch, Notify};
use tracing::debug;

pub use membership::{Membership, Phase, Step, NO_GENERATION};

use super::offsets::{self, GroupMetadata};
use super::shared::Shared;
use super::{ConsumeError, TopicPartition};
use crate::cluster::{Coordinator, CoordinatorError, CoordinatorKind};
use crate::fast_hash::FastMap;
use kafka_wire::conn::ConnectionConfig;
use kafka_wire::{Connection, KafkaCode};

/// What the group task tells the driver.
#[derive(Debug)]
pub enum GroupEvent {
    /// Start consuming these partitions.
    Assigned {
        /// Newly assigned partitions.
        partitions: Vec<TopicPartition>,
        /// Answered once the driver took them.
        ack: oneshot::Sender<()>,
    },
    /// Stop consuming these partitions; commit first unless `lost`.
    Revoked {
        /// Partitions taken away.
        partitions: Vec<TopicPartition>,
        /// True when the membership was lost: another member may own them
        /// already, so nothing may be committed.
        lost: bool,
        /// Answered once the driver stopped them.
        ack: oneshot::Sender<()>,
    },
    /// The membership failed for good.
    Fatal(KafkaCode),
}

/// The group's coordinator and this member's generation, shared by the group
/// task (which changes it) and the driver (which commits with it).
pub struct GroupShared {
    group_id: String,
    instance_id: Option<String>,
    coordinator: Coordinator,
    generation: Mutex<(i32, String)>,
    /// In a generation and not rebalancing (the group task's phase is stable).
    stable: std::sync::atomic::AtomicBool,
    /// A commit refused with a generation error under the current
    /// generation: the group task rejoins at once instead of at its next
    /// heartbeat (the Java client's `ConsumerCoordinator` does the same).
    commit_refused: Mutex<Option<(i32, KafkaCode)>>,
    commit_refused_notify: Notify,
    request_timeout: Duration,
    api_timeout: Duration,
    retry: crate::retry::RetryPolicy,
}

impl GroupShared {
    /// Group state for `group_id`, nothing contacted yet.
    pub fn new(
        shared_config: &super::ConsumerConfig,
        cluster: Arc<crate::cluster::Cluster>,
        connection: ConnectionConfig,
    ) -> Option<Self> {
        let group_id = shared_config.group_id.clone()?;
        // JoinGroup waits for the whole rebalance: its connection may wait that long.
        let join_timeout = shared_config.max_poll_interval + Duration::from_secs(5);
        Some(Self {
            coordinator: Coordinator::new(
                group_id.clone(),
                CoordinatorKind::Group,
                cluster,
                connection,
                shared_config.tls.clone(),
                join_timeout.max(shared_config.request_timeout),
            ),
            group_id,
            instance_id: shared_config.group_instance_id.clone(),
            generation: Mutex::new((NO_GENERATION, String::new())),
            stable: std::sync::atomic::AtomicBool::new(false),
            commit_refused: Mutex::new(None),
            commit_refused_notify: Notify::new(),
            request_timeout: shared_config.request_timeout,
            api_timeout: shared_config.default_api_timeout,
            retry: shared_config.retry_policy(),
        })
    }

    /// The generation offsets are committed under.
    pub fn metadata(&self) -> GroupMetadata {
        let (generation_id, member_id) = self.generation.lock().expect("group lock").clone();
        GroupMetadata {
            group_id: self.group_id.clone(),
            generation_id,
            member_id,
            group_instance_id: self.instance_id.clone(),
        }
    }

    /// Whether the member is in a generation and not rebalancing.
    pub fn is_stable(&self) -> bool {
        self.stable.load(std::sync::atomic::Ordering::Acquire)
    }

    fn set_stable(&self, stable: bool) {
        self.stable
            .store(stable, std::sync::atomic::Ordering::Release);
    }

    fn set_generation(&self, generation: i32, member_id: &str) {
        *self.generation.lock().expect("group lock") = (generation, member_id.to_owned());
    }

    /// A connection to the coordinator, retrying lookups until `request.timeout.ms`.
    async fn connection(&self) -> Result<Connection, ConsumeError> {
        self.connection_until(Instant::now() + self.request_timeout)
            .await
    }

    /// A connection to the coordinator, retrying lookups until `deadline`.
    async fn connection_until(&self, deadline: Instant) -> Result<Connection, ConsumeError> {
        let mut retrying = self.retry.until(deadline);
        loop {
            let error = match self.coordinator.connection().await {
                Ok(connection) => return Ok(connection),
                Err(CoordinatorError::Code(code)) => ConsumeError::Commit { code },
                Err(CoordinatorError::Connection(e)) => ConsumeError::Connection(e),
            };
            debug!(%error, "coordinator not available; retrying");
            if !retrying.wait().await {
                return Err(error);
            }
        }
    }

    /// Runs `call` against the coordinator, finding it again and retrying on
    /// retriable errors until `default.api.timeout.ms`; each attempt waits
    /// at most `request.timeout.ms` (as the Java client's commitSync).
    async fn with_retries<T, F, Fut>(&self, call: F) -> Result<T, ConsumeError>
    where
        F: Fn(Connection) -> Fut,
        Fut: std::future::Future<Output = Result<T, ConsumeError>>,
    {
        let deadline = Instant::now() + self.api_timeout.max(self.request_timeout);
        let mut retrying = self.retry.until(deadline);
        loop {
            let connection = self.connection_until(deadline).await?;
            let error = match tokio::time::timeout(self.request_timeout, call(connection)).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) => error,
                Err(_) => ConsumeError::Timeout(self.request_timeout.as_millis()),
            };
            let coordinator_moved = matches!(&error, ConsumeError::Commit { code } if matches!(code.0, 15 | 16))
                || matches!(
                    error,
                    ConsumeError::Connection(_) | ConsumeError::Timeout(_)
                );
            if coordinator_moved {
                self.coordinator.invalidate().await;
            }
            if !error.is_retriable() || !retrying.wait().await {
                return Err(error);
            }
        }
    }

    /// Commits `offsets` under `generation`, or the current generation.
    pub async fn commit(
        &self,
        offsets: &FastMap<TopicPartition, i64>,
        generation: Option<&GroupMetadata>,
    ) -> Result<(), ConsumeError> {
        let metadata = generation.cloned().unwrap_or_else(|| self.metadata());
        let result = self
            .with_retries(|connection| {
                let metadata = &metadata;
                async move { offsets::commit(&connection, metadata, offsets).await }
            })
            .await;
        if let Err(ConsumeError::Commit { code }) = &result {
            if Membership::is_generation_error(*code) {
                *self.commit_refused.lock().expect("group lock") =
                    Some((metadata.generation_id, *code));
                self.commit_refused_notify.notify_one();
            }
        }
        result
    }

    /// Waits for a commit refused with a generation error; its generation and code.
    async fn commit_refused(&self) -> (i32, KafkaCode) {
        loop {
            if let Some(refused) = self.commit_refused.lock().expect("group lock").take() {
                return refused;
            }
            self.commit_refused_notify.notified().await;
        }
    }

    /// The group's committed offsets for `partitions`.
    pub async fn fetch_committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Option<i64>)>, ConsumeError> {
        self.with_retries(|connection| async move {
            offsets::fetch_committed(&connection, &self.group_id, partitions).await
        })
        .await
    }
}

/// The driver's end of the group task.
pub struct GroupLink {
    /// Assignment changes.
    pub events: mpsc::Receiver<GroupEvent>,
    subscription: watch::Sender<Vec<String>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl GroupLink {
    /// Starts the membership task for `topics`.
    pub fn start(group: Arc<GroupShared>, shared: Arc<Shared>, topics: Vec<String>) -> Self {
        let (events_tx, events) = mpsc::channel(4);
        let (subscription, subscription_rx) = watch::channel(topics);
        let (shutdown, shutdown_rx) = oneshot::channel();
        let task = tokio::spawn(
            task::GroupTask::new(group, shared, events_tx, subscription_rx).run(shutdown_rx),
        );
        Self {
            events,
            subscription,
            shutdown: Some(shutdown),
            task,
        }
    }

    /// Changes the subscription: the member rejoins.
    pub fn set_subscription(&self, topics: Vec<String>) {
        let _ = self.subscription.send(topics);
    }

    /// Leaves the group (dynamic members) and waits for the task to end.
    pub async fn leave(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Revocations requested meanwhile are answered by dropping them.
        self.events.close();
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }
}
