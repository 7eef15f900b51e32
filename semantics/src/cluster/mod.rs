//! The client's view of the cluster: brokers, partition leaders, and one
//! connection per broker, refreshed from Metadata when it goes stale.

mod coordinator;
mod reconnect;

pub use coordinator::{
    coordinator_in, find_coordinator_request, Coordinator, CoordinatorError, CoordinatorKind,
};
pub use reconnect::ReconnectBackoff;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kafka_wire::conn::{connect, ConnectionConfig, TlsConfig};
use kafka_wire::protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_wire::protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_wire::protocol::protocol::StrBytes;
use kafka_wire::{ConnError, Connection, ErrorClass, KafkaCode};
use tracing::{debug, warn};

use crate::fast_hash::FastMap;

/// Partitions of one topic, as the last Metadata answer described them.
#[derive(Debug, Clone)]
pub struct TopicMetadata {
    /// Leader broker id per partition index (−1 when there is none).
    pub leaders: Vec<i32>,
    /// Leader epoch per partition index (−1 when the broker did not say:
    /// Metadata before v7). Fetches carry it so that a broker which is no
    /// longer the leader, or not yet, says so (KIP-320).
    pub leader_epochs: Vec<i32>,
}

impl TopicMetadata {
    /// Number of partitions.
    pub fn partition_count(&self) -> i32 {
        self.leaders.len() as i32
    }
}

/// Leader epochs seen for one topic (see `State::epochs`).
#[derive(Debug, Default)]
struct SeenEpochs {
    topic_id: [u8; 16],
    per_partition: Vec<i32>,
}

#[derive(Default)]
struct State {
    brokers: HashMap<i32, String>,
    topics: FastMap<String, Result<Arc<TopicMetadata>, KafkaCode>>,
    /// The highest leader epoch seen per partition, kept across
    /// invalidations and reset when the topic's id changes (deleted and
    /// created again): a Metadata answer from a broker that has not caught
    /// up must not move a partition back to its old leader.
    epochs: FastMap<String, SeenEpochs>,
    connections: HashMap<i32, Connection>,
    refreshed: Option<Instant>,
    reconnects: reconnect::Reconnects,
}

/// Shared cluster view.
pub struct Cluster {
    bootstrap: Vec<String>,
    connection_config: ConnectionConfig,
    tls: Option<TlsConfig>,
    allow_auto_create: bool,
    state: Mutex<State>,
    /// Serialises connection attempts per broker, so a burst of callers
    /// opens one connection and a silent broker holds up only its own callers.
    connecting: Mutex<HashMap<i32, Arc<tokio::sync::Mutex<()>>>>,
    reconnect_backoff: ReconnectBackoff,
}

impl Cluster {
    /// A view that has not contacted any broker yet.
    pub fn new(
        bootstrap: Vec<String>,
        connection_config: ConnectionConfig,
        tls: Option<TlsConfig>,
        allow_auto_create: bool,
    ) -> Self {
        Self {
            bootstrap,
            connection_config,
            tls,
            allow_auto_create,
            state: Mutex::new(State::default()),
            connecting: Mutex::new(HashMap::new()),
            reconnect_backoff: ReconnectBackoff::default(),
        }
    }

    /// The same view with `reconnect.backoff.ms` / `reconnect.backoff.max.ms`.
    pub fn with_reconnect_backoff(mut self, backoff: ReconnectBackoff) -> Self {
        self.reconnect_backoff = backoff;
        self
    }

    /// A client's view from its settings, and the connection settings it
    /// uses (shared with the coordinators the client talks to).
    pub fn for_client(
        bootstrap: Vec<String>,
        connection: ConnectionConfig,
        tls: Option<TlsConfig>,
        allow_auto_create: bool,
        reconnect: ReconnectBackoff,
    ) -> (Arc<Self>, ConnectionConfig) {
        let cluster = Self::new(bootstrap, connection.clone(), tls, allow_auto_create)
            .with_reconnect_backoff(reconnect);
        (Arc::new(cluster), connection)
    }

    /// Cached metadata for `topic`, if any (no I/O).
    pub fn cached_topic(&self, topic: &str) -> Option<Result<Arc<TopicMetadata>, KafkaCode>> {
        self.state
            .lock()
            .expect("cluster lock")
            .topics
            .get(topic)
            .cloned()
    }

    /// Metadata for `topic`, refreshing until it is known or `deadline` passes.
    pub async fn topic(
        &self,
        topic: &str,
        deadline: Instant,
        retry: &crate::retry::RetryPolicy,
    ) -> Result<Arc<TopicMetadata>, (KafkaCode, Option<ConnError>)> {
        let mut last = (KafkaCode(3), None);
        let mut retrying = retry.until(deadline);
        loop {
            if let Some(Ok(metadata)) = self.cached_topic(topic) {
                return Ok(metadata);
            }
            match self.refresh(&[topic.to_owned()]).await {
                Ok(()) => {
                    if let Some(Err(code)) = self.cached_topic(topic) {
                        last = (code, None);
                    }
                }
                Err(e) => last = (KafkaCode(-1), Some(e)),
            }
            if let Some(Ok(metadata)) = self.cached_topic(topic) {
                return Ok(metadata);
            }
            if !retrying.wait().await {
                return Err(last);
            }
        }
    }

    /// The leader of `topic`/`partition` per the cached metadata.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        let state = self.state.lock().expect("cluster lock");
        let metadata = state.topics.get(topic)?.as_ref().ok()?;
        metadata
            .leaders
            .get(usize::try_from(partition).ok()?)
            .copied()
            .filter(|&id| id >= 0)
    }

    /// The leader of `topic`/`partition` and its epoch (−1 when unknown).
    pub fn leader_and_epoch(&self, topic: &str, partition: i32) -> Option<(i32, i32)> {
        let state = self.state.lock().expect("cluster lock");
        let metadata = state.topics.get(topic)?.as_ref().ok()?;
        let index = usize::try_from(partition).ok()?;
        let leader = *metadata.leaders.get(index)?;
        let epoch = metadata.leader_epochs.get(index).copied().unwrap_or(-1);
        (leader >= 0).then_some((leader, epoch))
    }

    /// KIP-951: a Produce or Fetch answer named the partition's current
    /// leader. Taken when it is newer than what the cache holds and the
    /// broker's address is known, so the next request goes there without
    /// waiting for Metadata. Returns whether the cache changed.
    pub fn apply_leader_hint(&self, topic: &str, partition: i32, leader: i32, epoch: i32) -> bool {
        let Ok(index) = usize::try_from(partition) else {
            return false;
        };
        if leader < 0 || epoch < 0 {
            return false;
        }
        let mut state = self.state.lock().expect("cluster lock");
        if !state.brokers.contains_key(&leader) {
            return false;
        }
        let Some(Ok(metadata)) = state.topics.get(topic) else {
            return false;
        };
        if metadata
            .leader_epochs
            .get(index)
            .is_none_or(|&cached| cached >= epoch)
        {
            return false;
        }
        let mut updated = TopicMetadata::clone(metadata);
        updated.leaders[index] = leader;
        updated.leader_epochs[index] = epoch;
        state.topics.insert(topic.to_owned(), Ok(Arc::new(updated)));
        if let Some(seen) = state.epochs.get_mut(topic) {
            if let Some(slot) = seen.per_partition.get_mut(index) {
                *slot = (*slot).max(epoch);
            }
        }
        true
    }

    /// Adds brokers a Produce answer named (KIP-951 `NodeEndpoints`), so a
    /// leader hint pointing at a broker this client has not met can be used.
    pub fn learn_brokers(&self, brokers: impl IntoIterator<Item = (i32, String)>) {
        let mut state = self.state.lock().expect("cluster lock");
        for (id, address) in brokers {
            state.brokers.insert(id, address);
        }
    }

    /// Forgets the leaders of `topic` so the next lookup refreshes them.
    pub fn invalidate(&self, topic: &str) {
        self.state
            .lock()
            .expect("cluster lock")
            .topics
            .remove(topic);
    }

    /// Topics currently cached (for periodic refresh).
    pub fn known_topics(&self) -> Vec<String> {
        self.state
            .lock()
            .expect("cluster lock")
            .topics
            .keys()
            .cloned()
            .collect()
    }

    /// Sends Metadata for `topics` and updates the cache.
    pub async fn refresh(&self, topics: &[String]) -> Result<(), ConnError> {
        let connection = self.any_connection().await?;
        let request = MetadataRequest::default()
            .with_topics(Some(
                topics
                    .iter()
                    .map(|t| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(t.clone()))))
                    })
                    .collect(),
            ))
            .with_allow_auto_topic_creation(self.allow_auto_create);
        let response = connection.send(&request).await?;
        self.apply(response);
        Ok(())
    }

    fn apply(&self, response: MetadataResponse) {
        let mut guard = self.state.lock().expect("cluster lock");
        let state = &mut *guard;
        for broker in &response.brokers {
            state.brokers.insert(
                broker.node_id.0,
                format!("{}:{}", broker.host.as_str(), broker.port),
            );
        }
        for topic in response.topics {
            let Some(name) = topic.name else { continue };
            let code = KafkaCode(topic.error_code);
            let entry = if code.is_ok() && !topic.partitions.is_empty() {
                let previous = state
                    .topics
                    .get(name.as_str())
                    .and_then(|t| t.as_ref().ok())
                    .cloned();
                let seen = state.epochs.entry(name.to_string()).or_default();
                if seen.topic_id != *topic.topic_id.as_bytes() {
                    *seen = SeenEpochs {
                        topic_id: *topic.topic_id.as_bytes(),
                        per_partition: Vec::new(),
                    };
                }
                seen.per_partition
                    .resize(topic.partitions.len().max(seen.per_partition.len()), -1);
                let mut leaders = vec![-1; topic.partitions.len()];
                let mut leader_epochs = vec![-1; topic.partitions.len()];
                for partition in &topic.partitions {
                    let Some(index) = usize::try_from(partition.partition_index)
                        .ok()
                        .filter(|&i| i < leaders.len())
                    else {
                        continue;
                    };
                    let seen_epoch = seen.per_partition[index];
                    if partition.leader_epoch >= 0 && partition.leader_epoch < seen_epoch {
                        // Stale: this broker has not heard of the newer
                        // leader yet. Keep what the cache knew.
                        if let Some(previous) = &previous {
                            leaders[index] = previous.leaders.get(index).copied().unwrap_or(-1);
                            leader_epochs[index] =
                                previous.leader_epochs.get(index).copied().unwrap_or(-1);
                        }
                        continue;
                    }
                    seen.per_partition[index] = seen_epoch.max(partition.leader_epoch);
                    leader_epochs[index] = partition.leader_epoch;
                    leaders[index] = if KafkaCode(partition.error_code).class() == ErrorClass::None
                    {
                        partition.leader_id.0
                    } else {
                        -1
                    };
                }
                Ok(Arc::new(TopicMetadata {
                    leaders,
                    leader_epochs,
                }))
            } else {
                debug!(topic = name.as_str(), %code, "topic metadata error");
                if code == KafkaCode(3) {
                    // Deleted: a topic created under the name starts its
                    // epochs afresh (Metadata before v10 has no topic id).
                    state.epochs.remove(name.as_str());
                }
                Err(if code.is_ok() { KafkaCode(5) } else { code })
            };
            state.topics.insert(name.to_string(), entry);
        }
        state.refreshed = Some(Instant::now());
    }

    /// Brokers with a healthy open connection, and brokers known from Metadata.
    pub fn connectivity(&self) -> (usize, usize) {
        let state = self.state.lock().expect("cluster lock");
        let connected = state
            .connections
            .values()
            .filter(|c| !c.is_poisoned())
            .count();
        (connected, state.brokers.len())
    }

    /// The advertised address of broker `id`, if Metadata named it.
    pub fn broker_address(&self, id: i32) -> Option<String> {
        self.state
            .lock()
            .expect("cluster lock")
            .brokers
            .get(&id)
            .cloned()
    }

    /// Requests and bytes of every connection this view opened.
    pub fn traffic(&self) -> kafka_wire::conn::TrafficSnapshot {
        self.connection_config.traffic.snapshot()
    }

    /// When metadata was last refreshed.
    pub fn last_refresh(&self) -> Option<Instant> {
        self.state.lock().expect("cluster lock").refreshed
    }

    /// A healthy connection to broker `id`, opened if needed.
    pub async fn connection(&self, id: i32) -> Result<Connection, ConnError> {
        if let Some(connection) = self.healthy(id) {
            return Ok(connection);
        }
        let lock = self
            .connecting
            .lock()
            .expect("cluster lock")
            .entry(id)
            .or_default()
            .clone();
        let _guard = lock.lock().await;
        if let Some(connection) = self.healthy(id) {
            return Ok(connection);
        }
        let now = Instant::now();
        if let Some(at) = self
            .state
            .lock()
            .expect("cluster lock")
            .reconnects
            .blocked_until(id, now)
        {
            return Err(ConnError::Backoff {
                broker: id,
                retry_in: at - now,
            });
        }
        let address = self
            .state
            .lock()
            .expect("cluster lock")
            .brokers
            .get(&id)
            .cloned()
            .ok_or_else(|| ConnError::Config {
                key: "bootstrap.servers",
                reason: format!("broker {id} is not in the cluster metadata"),
            })?;
        let connected = connect(&address, self.tls.as_ref(), self.connection_config.clone()).await;
        let mut state = self.state.lock().expect("cluster lock");
        match connected {
            Ok(connection) => {
                state.reconnects.succeeded(id);
                state.connections.insert(id, connection.clone());
                Ok(connection)
            }
            Err(error) => {
                let wait = state
                    .reconnects
                    .failed(id, self.reconnect_backoff, Instant::now());
                debug!(broker = id, %error, ?wait, "connection failed; backing off");
                Err(error)
            }
        }
    }

    /// The connection to broker `id` if one is open and healthy (no I/O).
    pub fn healthy(&self, id: i32) -> Option<Connection> {
        let state = self.state.lock().expect("cluster lock");
        state
            .connections
            .get(&id)
            .filter(|c| !c.is_poisoned())
            .cloned()
    }

    /// Any healthy connection: a known broker's, else a bootstrap server's.
    pub async fn any_connection(&self) -> Result<Connection, ConnError> {
        let known: Vec<i32> = {
            let state = self.state.lock().expect("cluster lock");
            if let Some(connection) = state.connections.values().find(|c| !c.is_poisoned()) {
                return Ok(connection.clone());
            }
            state.brokers.keys().copied().collect()
        };
        for id in known {
            if let Ok(connection) = self.connection(id).await {
                return Ok(connection);
            }
        }
        let mut last = ConnError::Config {
            key: "bootstrap.servers",
            reason: "no servers given".into(),
        };
        for address in &self.bootstrap {
            match connect(address, self.tls.as_ref(), self.connection_config.clone()).await {
                Ok(connection) => return Ok(connection),
                Err(e) => {
                    warn!(address, error = %e, "bootstrap server unreachable");
                    last = e;
                }
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod epoch_tests;
