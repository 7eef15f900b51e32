//! The membership task: join, sync, heartbeat on its own timer, and hand
//! assignment changes to the driver. Eager groups revoke everything before
//! each join; cooperative groups (KIP-429) revoke only what moves and rejoin.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_wire::protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_wire::protocol::messages::LeaveGroupRequest;
use kafka_wire::KafkaCode;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use super::super::assignor::{by_name, Assignor, RebalanceProtocol};
use super::super::shared::Shared;
use super::super::TopicPartition;
use super::membership::{Membership, Phase, Step};
use super::requests;
use super::{GroupEvent, GroupShared};

/// Keeps one member in its group.
pub struct GroupTask {
    group: Arc<GroupShared>,
    shared: Arc<Shared>,
    events: mpsc::Sender<GroupEvent>,
    subscription: watch::Receiver<Vec<String>>,
    membership: Membership,
    assignors: Vec<Box<dyn Assignor>>,
    protocol: RebalanceProtocol,
    owned: Vec<TopicPartition>,
    members: Vec<JoinGroupResponseMember>,
    /// As leader: the partition counts the last assignment was computed
    /// from, and when they were last compared with the cluster's.
    assigned_from: Option<(BTreeMap<String, i32>, std::time::Instant)>,
    /// Failed steps in a row: the backoff doubles with them (KIP-580).
    failures: u32,
}

impl GroupTask {
    /// A member not yet joined.
    pub fn new(
        group: Arc<GroupShared>,
        shared: Arc<Shared>,
        events: mpsc::Sender<GroupEvent>,
        subscription: watch::Receiver<Vec<String>>,
    ) -> Self {
        let assignors: Vec<Box<dyn Assignor>> = shared
            .config
            .assignment_strategies
            .iter()
            .filter_map(|name| by_name(name))
            .collect();
        // As the Java client: cooperative only when every assignor offered is.
        let protocol = if assignors
            .iter()
            .all(|a| a.rebalance_protocol() == RebalanceProtocol::Cooperative)
        {
            RebalanceProtocol::Cooperative
        } else {
            RebalanceProtocol::Eager
        };
        Self {
            failures: 0,
            membership: Membership::new(group.instance_id.clone()),
            group,
            shared,
            events,
            subscription,
            assignors,
            protocol,
            owned: Vec::new(),
            members: Vec::new(),
            assigned_from: None,
        }
    }

    /// Runs until `shutdown` fires, then leaves the group.
    pub async fn run(mut self, mut shutdown: oneshot::Receiver<()>) {
        loop {
            let step = tokio::select! {
                biased;
                _ = &mut shutdown => break,
                step = self.advance() => step,
            };
            if !self.apply(step).await {
                // Fatal: stay until shut down; the driver reported it.
                let _ = shutdown.await;
                return;
            }
        }
        self.leave().await;
    }

    async fn advance(&mut self) -> Step {
        let phase = self.membership.phase().clone();
        self.group.set_stable(matches!(phase, Phase::Stable));
        match phase {
            Phase::Fatal(code) => Step::Fatal(code),
            Phase::Unjoined | Phase::Joining => self.join().await,
            Phase::Syncing { leader } => self.sync(leader).await,
            Phase::Stable if self.poll_overdue() => self.leave_until_polled().await,
            Phase::Stable => self.heartbeat().await,
        }
    }

    fn poll_overdue(&self) -> bool {
        self.shared
            .poll_clock
            .overdue(self.shared.config.max_poll_interval)
    }

    /// KIP-62: the application has not polled for `max.poll.interval.ms`.
    /// Leave the group (a static member just stops heartbeating and lets its
    /// session expire, KIP-345) so the partitions go to members that make
    /// progress; what this member holds is lost, not revoked — its records
    /// may already be another member's. Rejoin once the application polls.
    async fn leave_until_polled(&mut self) -> Step {
        let last_poll = self.shared.poll_clock.last_poll();
        warn!(
            max_poll_interval_ms = self.shared.config.max_poll_interval.as_millis() as u64,
            "the application did not poll within max.poll.interval.ms; leaving the group"
        );
        self.leave().await;
        self.membership.leave();
        self.group.set_generation(super::NO_GENERATION, "");
        let lost = std::mem::take(&mut self.owned);
        if !lost.is_empty() {
            self.revoke(lost, true).await;
        }
        while self.shared.poll_clock.last_poll() == last_poll && self.poll_overdue() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        info!("the application polls again; rejoining the group");
        Step::Proceed
    }

    /// Acts on a step; false when the member is done for good.
    async fn apply(&mut self, step: Step) -> bool {
        let backoff = match step {
            Step::RetryAfterBackoff | Step::FindCoordinator => {
                self.failures = self.failures.saturating_add(1);
                self.shared.config.retry_policy().backoff(self.failures)
            }
            _ => {
                self.failures = 0;
                Duration::ZERO
            }
        };
        match step {
            Step::Proceed | Step::Rejoin => {}
            Step::RetryAfterBackoff => tokio::time::sleep(backoff).await,
            Step::FindCoordinator => {
                self.group.coordinator.invalidate().await;
                tokio::time::sleep(backoff).await;
            }
            Step::RejoinLost => {
                let lost = std::mem::take(&mut self.owned);
                self.group.set_generation(super::NO_GENERATION, "");
                if !lost.is_empty() {
                    warn!(
                        ?lost,
                        "group membership lost; partitions dropped without commit"
                    );
                    self.revoke(lost, true).await;
                }
            }
            Step::Fatal(code) => {
                warn!(%code, "group membership failed");
                let _ = self.events.send(GroupEvent::Fatal(code)).await;
                return false;
            }
        }
        true
    }

    async fn join(&mut self) -> Step {
        // Set again by `assign` if this member leads the next generation.
        self.assigned_from = None;
        if self.protocol == RebalanceProtocol::Eager && !self.owned.is_empty() {
            let owned = std::mem::take(&mut self.owned);
            self.revoke(owned, false).await;
        }
        self.membership.start_join();
        let topics = self.subscription.borrow_and_update().clone();
        let metadata = match requests::subscription(&topics, &self.owned) {
            Ok(bytes) => bytes,
            Err(e) => return self.fail_locally(&e.to_string()),
        };
        let config = &self.shared.config;
        let request = requests::join_request(
            &self.group.group_id,
            &self.membership,
            &self.assignors,
            metadata,
            millis(config.session_timeout),
            millis(config.max_poll_interval),
        );
        let connection = match self.group.connection().await {
            Ok(c) => c,
            Err(_) => return Step::FindCoordinator,
        };
        let response = match connection.send(&request).await {
            Ok(r) => r,
            Err(e) => {
                debug!(error = %e, "JoinGroup failed");
                return Step::FindCoordinator;
            }
        };
        let step = self.membership.on_join(
            KafkaCode(response.error_code),
            response.member_id.as_str(),
            response.generation_id,
            response.leader.as_str(),
            response.protocol_name.as_deref(),
        );
        self.members = response.members;
        step
    }

    async fn sync(&mut self, leader: bool) -> Step {
        let assignments = if leader {
            match self.assign().await {
                Ok(assignments) => assignments,
                Err(reason) => return self.fail_locally(&reason),
            }
        } else {
            Vec::new()
        };
        let request = requests::sync_request(&self.group.group_id, &self.membership, assignments);
        let response = match self.send_short(&request).await {
            Some(r) => r,
            None => return Step::FindCoordinator,
        };
        let step = self.membership.on_sync(KafkaCode(response.error_code));
        if step != Step::Proceed {
            return step;
        }
        let assigned = match requests::read_assignment(response.assignment) {
            Ok(assigned) => assigned,
            Err(e) => return self.fail_locally(&e.to_string()),
        };
        self.group
            .set_generation(self.membership.generation(), self.membership.member_id());
        info!(
            generation = self.membership.generation(),
            member_id = self.membership.member_id(),
            partitions = assigned.len(),
            "joined group"
        );
        self.take_assignment(assigned).await;
        Step::Proceed
    }

    /// Applies a new assignment; cooperative groups revoke what moved away
    /// and rejoin so it can be handed over (KIP-429).
    async fn take_assignment(&mut self, assigned: Vec<TopicPartition>) {
        let revoked: Vec<TopicPartition> = self
            .owned
            .iter()
            .filter(|tp| !assigned.contains(tp))
            .cloned()
            .collect();
        let added: Vec<TopicPartition> = assigned
            .iter()
            .filter(|tp| !self.owned.contains(tp))
            .cloned()
            .collect();
        if !revoked.is_empty() {
            self.owned.retain(|tp| !revoked.contains(tp));
            self.revoke(revoked.clone(), false).await;
        }
        if !added.is_empty() {
            self.owned.extend(added.iter().cloned());
            let (ack, done) = oneshot::channel();
            if self
                .events
                .send(GroupEvent::Assigned {
                    partitions: added,
                    ack,
                })
                .await
                .is_ok()
            {
                let _ = done.await;
            }
        }
        if !revoked.is_empty() && self.protocol == RebalanceProtocol::Cooperative {
            self.membership.start_join();
        }
    }

    /// The leader's assignment, encoded per member.
    async fn assign(&mut self) -> Result<Vec<(String, Bytes)>, String> {
        let protocol = self.membership.protocol().unwrap_or_default().to_owned();
        let assignor = self
            .assignors
            .iter()
            .find(|a| a.name() == protocol)
            .ok_or_else(|| format!("coordinator chose assignor {protocol:?}, not offered"))?;
        let members = requests::member_subscriptions(&self.members);
        let mut topics: Vec<String> = members.iter().flat_map(|m| m.topics.clone()).collect();
        topics.sort();
        topics.dedup();
        // A failed lookup would leave topics out of the assignment until the
        // next rebalance: a few tries, then the cache.
        let config = &self.shared.config;
        let mut counts = None;
        let policy = config.retry_policy();
        for attempt in 0..3 {
            if attempt > 0 {
                tokio::time::sleep(policy.backoff(attempt)).await;
            }
            counts = self.partition_counts(&topics, config.request_timeout).await;
            if counts.is_some() {
                break;
            }
        }
        let counts = counts.unwrap_or_else(|| {
            warn!("metadata for the assignment failed; assigning from the cache");
            self.cached_partition_counts(&topics)
        });
        let plan = assignor.assign(&members, &counts);
        debug!(assignor = assignor.name(), ?plan, "computed assignment");
        self.assigned_from = Some((counts, std::time::Instant::now()));
        plan.into_iter()
            .map(|(member, partitions)| {
                requests::assignment_bytes(&partitions)
                    .map(|bytes| (member, bytes))
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    /// Partition counts of `topics` from one Metadata request answered
    /// `within`; `None` if it failed. Topics that do not exist (yet) are
    /// left out, as in the Java client, without waiting for them: the leader
    /// must answer SyncGroup within the rebalance.
    async fn partition_counts(
        &self,
        topics: &[String],
        within: Duration,
    ) -> Option<BTreeMap<String, i32>> {
        match tokio::time::timeout(within, self.shared.cluster.refresh(topics)).await {
            Ok(Ok(_)) => Some(self.cached_partition_counts(topics)),
            Ok(Err(e)) => {
                debug!(error = %e, "metadata for the assignment failed");
                None
            }
            Err(_) => {
                debug!("metadata for the assignment timed out");
                None
            }
        }
    }

    /// Partition counts of `topics` the cluster cache knows.
    fn cached_partition_counts(&self, topics: &[String]) -> BTreeMap<String, i32> {
        topics
            .iter()
            .filter_map(|topic| match self.shared.cluster.cached_topic(topic) {
                Some(Ok(metadata)) => Some((topic.clone(), metadata.partition_count())),
                _ => None,
            })
            .collect()
    }

    /// As leader, every `metadata.max.age.ms`: whether a subscribed topic was
    /// created, deleted or grew partitions since the last assignment, which
    /// then has to be computed again (the Java client's leader does the same).
    async fn topics_changed(&mut self) -> bool {
        let Some((counts, checked)) = &self.assigned_from else {
            return false;
        };
        if checked.elapsed() < self.shared.config.metadata_max_age {
            return false;
        }
        let before = counts.clone();
        let mut topics: Vec<String> = requests::member_subscriptions(&self.members)
            .into_iter()
            .flat_map(|m| m.topics)
            .collect();
        topics.sort();
        topics.dedup();
        // Bounded by the heartbeat interval, so a slow lookup never costs the
        // session; a failed one is retried at the next heartbeat, not read as
        // topics gone.
        let Some(now) = self
            .partition_counts(&topics, self.shared.config.heartbeat_interval)
            .await
        else {
            return false;
        };
        self.assigned_from = Some((before.clone(), std::time::Instant::now()));
        now != before
    }

    async fn heartbeat(&mut self) -> Step {
        if self.topics_changed().await {
            info!("subscribed topics changed; rejoining to reassign");
            self.membership.start_join();
            return Step::Rejoin;
        }
        let interval = self.shared.config.heartbeat_interval;
        // One deadline for the whole wait: a stale refusal below must not
        // push the heartbeat back.
        let due = tokio::time::sleep(interval);
        tokio::pin!(due);
        let mut driver_gone = false;
        loop {
            tokio::select! {
                () = &mut due => break,
                changed = self.subscription.changed(), if !driver_gone => {
                    if changed.is_ok() {
                        debug!("subscription changed; rejoining");
                        self.membership.start_join();
                        return Step::Rejoin;
                    }
                    // The driver is gone; keep heartbeating until shutdown.
                    driver_gone = true;
                }
                (generation, code) = self.group.commit_refused() => {
                    // A refusal under an older generation says nothing of this one.
                    if generation == self.membership.generation() {
                        debug!(%code, "offset commit refused; rejoining");
                        return self.membership.on_commit_error(code);
                    }
                }
            }
        }
        let request = requests::heartbeat_request(&self.group.group_id, &self.membership);
        match self.send_short(&request).await {
            Some(response) => self.membership.on_heartbeat(KafkaCode(response.error_code)),
            None => Step::FindCoordinator,
        }
    }

    async fn revoke(&mut self, partitions: Vec<TopicPartition>, lost: bool) {
        let (ack, done) = oneshot::channel();
        if self
            .events
            .send(GroupEvent::Revoked {
                partitions,
                lost,
                ack,
            })
            .await
            .is_ok()
        {
            let _ = done.await;
        }
    }

    /// Sends a request that should be answered within `request.timeout.ms`.
    async fn send_short<R: kafka_wire::protocol::protocol::Request>(
        &self,
        request: &R,
    ) -> Option<R::Response> {
        let connection = self.group.connection().await.ok()?;
        match tokio::time::timeout(self.shared.config.request_timeout, connection.send(request))
            .await
        {
            Ok(Ok(response)) => Some(response),
            Ok(Err(e)) => {
                debug!(error = %e, "group request failed");
                None
            }
            Err(_) => {
                debug!("group request timed out");
                None
            }
        }
    }

    fn fail_locally(&mut self, reason: &str) -> Step {
        // INCONSISTENT_GROUP_PROTOCOL is the closest Kafka code for metadata
        // this member cannot read or write.
        warn!(reason, "group protocol failure");
        self.membership.leave();
        Step::Fatal(KafkaCode(23))
    }

    /// KIP-345: a static member does not leave on close, so a restart within
    /// `session.timeout.ms` gets its partitions back without a rebalance.
    async fn leave(&mut self) {
        if self.membership.instance_id().is_some() || self.membership.member_id().is_empty() {
            return;
        }
        let Ok(connection) = self.group.connection().await else {
            return;
        };
        let Ok(version) = connection.versions().version_for::<LeaveGroupRequest>() else {
            return;
        };
        let request = requests::leave_request(&self.group.group_id, &self.membership, version);
        let sent = tokio::time::timeout(
            self.shared.config.request_timeout,
            connection.send_version(&request, version),
        )
        .await;
        debug!(ok = matches!(sent, Ok(Ok(_))), "left group");
        self.membership.leave();
        self.group.set_generation(super::NO_GENERATION, "");
    }
}

fn millis(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}
