//! Single wire-level operations on one connection — create a topic, produce a
//! batch, fetch a partition — with no retries and no policy (finding and
//! awaiting a partition's leader aside). The smoke run and
//! the wire-layer integration tests use them; the real producer and consumer
//! live in `semantics`.

use bytes::Bytes;
use kafka_wire::conn::{connect, ConnectionConfig};
use kafka_wire::protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_wire::protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_wire::protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsTopic,
};
use kafka_wire::protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_wire::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_wire::protocol::messages::{
    CreateTopicsRequest, FetchRequest, ListOffsetsRequest, MetadataRequest, ProduceRequest,
    TopicName,
};
use kafka_wire::protocol::protocol::StrBytes;
use kafka_wire::{ConnError, Connection, KafkaCode};

/// A wire operation failed: on the connection, or with a Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The connection failed.
    #[error(transparent)]
    Conn(#[from] ConnError),
    /// The broker answered with an error code.
    #[error("{operation} failed: {code}")]
    Kafka {
        /// What was attempted.
        operation: &'static str,
        /// The broker's code.
        code: KafkaCode,
    },
    /// The broker's answer lacks the expected topic or partition.
    #[error("{0}: the response does not mention the requested partition")]
    Missing(&'static str),
}

fn topic_configs(configs: &[(&str, &str)]) -> Vec<CreatableTopicConfig> {
    configs
        .iter()
        .map(|(name, value)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string((*name).to_owned()))
                .with_value(Some(StrBytes::from_string((*value).to_owned())))
        })
        .collect()
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

/// Creates `topic`; an existing topic is fine.
pub async fn create_topic(
    connection: &Connection,
    topic: &str,
    partitions: i32,
) -> Result<(), OpError> {
    create_topic_with_configs(connection, topic, partitions, &[]).await
}

/// Creates `topic` with topic-level `configs` (e.g. `max.message.bytes`);
/// an existing topic is fine.
pub async fn create_topic_with_configs(
    connection: &Connection,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> Result<(), OpError> {
    let topic = CreatableTopic::default()
        .with_name(topic_name(topic))
        .with_num_partitions(partitions)
        // -1: the cluster's default.replication.factor (CreateTopics v4+).
        .with_replication_factor(-1)
        .with_configs(topic_configs(configs));
    match send_create_topic(connection, topic).await {
        Err(OpError::Kafka {
            code: KafkaCode(36),
            ..
        }) => Ok(()), // TOPIC_ALREADY_EXISTS
        other => other,
    }
}

/// Sends CreateTopics for one topic and reads its result.
async fn send_create_topic(connection: &Connection, topic: CreatableTopic) -> Result<(), OpError> {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![topic]);
    let response = connection.send(&request).await?;
    let result = response
        .topics
        .first()
        .ok_or(OpError::Missing("CreateTopics"))?;
    match KafkaCode(result.error_code) {
        KafkaCode::NONE => Ok(()),
        code => Err(OpError::Kafka {
            operation: "CreateTopics",
            code,
        }),
    }
}

/// Deletes `topic` (its data goes with it); an unknown topic is fine.
pub async fn delete_topic(connection: &Connection, topic: &str) -> Result<(), OpError> {
    use kafka_wire::protocol::messages::delete_topics_request::DeleteTopicState;
    use kafka_wire::protocol::messages::DeleteTopicsRequest;

    let request = DeleteTopicsRequest::default()
        .with_timeout_ms(30_000)
        // v1–5 name topics in `topic_names`, v6 in `topics`.
        .with_topic_names(vec![topic_name(topic)])
        .with_topics(vec![
            DeleteTopicState::default().with_name(Some(topic_name(topic)))
        ]);
    let response = connection.send(&request).await?;
    let result = response
        .responses
        .first()
        .ok_or(OpError::Missing("DeleteTopics"))?;
    match KafkaCode(result.error_code) {
        // 3: UNKNOWN_TOPIC_OR_PARTITION, gone already.
        KafkaCode::NONE | KafkaCode(3) => Ok(()),
        code => Err(OpError::Kafka {
            operation: "DeleteTopics",
            code,
        }),
    }
}

/// Creates `topic` with one partition on exactly `replicas` (node ids; the
/// first is the preferred leader) and topic-level `configs`.
pub async fn create_topic_on_replicas(
    connection: &Connection,
    topic: &str,
    replicas: &[i32],
    configs: &[(&str, &str)],
) -> Result<(), OpError> {
    use kafka_wire::protocol::messages::create_topics_request::CreatableReplicaAssignment;
    use kafka_wire::protocol::messages::BrokerId;

    let topic = CreatableTopic::default()
        .with_name(topic_name(topic))
        // With an explicit assignment both counts must be -1.
        .with_num_partitions(-1)
        .with_replication_factor(-1)
        .with_assignments(vec![CreatableReplicaAssignment::default()
            .with_partition_index(0)
            .with_broker_ids(replicas.iter().map(|&id| BrokerId(id)).collect())])
        .with_configs(topic_configs(configs));
    send_create_topic(connection, topic).await
}

/// Runs an unclean leader election for `topic`/`partition` (any live
/// replica may become leader, in sync or not: what an operator does to get
/// a partition back whose in-sync replicas are all down, accepting the loss
/// of what only they held) through `bootstrap` until Metadata shows
/// `wanted` leading, for up to 90 s. Each try uses a new connection: while
/// the controllers elect a new active one, a request may go unanswered.
pub async fn elect_unclean(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    wanted: i32,
) -> Result<(), OpError> {
    use kafka_wire::protocol::messages::elect_leaders_request::TopicPartitions;
    use kafka_wire::protocol::messages::ElectLeadersRequest;

    let config = ConnectionConfig {
        request_timeout: std::time::Duration::from_secs(15),
        ..ConnectionConfig::default()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let elect = ElectLeadersRequest::default()
            .with_election_type(1) // unclean
            .with_timeout_ms(10_000)
            .with_topic_partitions(Some(vec![TopicPartitions::default()
                .with_topic(topic_name(topic))
                .with_partitions(vec![partition])]));
        let attempt = async {
            let connection = connect(bootstrap, None, config.clone()).await?;
            connection.send(&elect).await?;
            partition_leader(&connection, topic, partition).await
        };
        let last = match attempt.await {
            Ok(Some((id, _))) if id == wanted => return Ok(()),
            Ok(_) => None,
            Err(e) => Some(e),
        };
        if std::time::Instant::now() > deadline {
            return Err(last.unwrap_or(OpError::Missing(
                "Metadata (the unclean election did not happen within 90 s)",
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// The leader of `topic`/`partition` (node id and address) in one Metadata
/// answer from `connection`; `None` while it has none.
pub async fn partition_leader(
    connection: &Connection,
    topic: &str,
    partition: i32,
) -> Result<Option<(i32, String)>, OpError> {
    let (metadata, state) = partition_metadata(connection, topic, partition).await?;
    let leader = state.map(|p| p.leader_id);
    Ok(leader.and_then(|id| {
        metadata
            .brokers
            .iter()
            .find(|b| b.node_id == id)
            .map(|b| (id.0, format!("{}:{}", b.host.as_str(), b.port)))
    }))
}

/// One Metadata request for `topic`, and the state of `partition` in it
/// (`None` while it has an error, e.g. no leader yet).
async fn partition_metadata(
    connection: &Connection,
    topic: &str,
    partition: i32,
) -> Result<
    (
        kafka_wire::protocol::messages::MetadataResponse,
        Option<kafka_wire::protocol::messages::metadata_response::MetadataResponsePartition>,
    ),
    OpError,
> {
    let request = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(topic_name(topic))),
    ]));
    let metadata = connection.send(&request).await?;
    let state = metadata
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == partition && p.error_code == 0)
        .cloned();
    Ok((metadata, state))
}

/// Moves the leadership of `topic`/`partition` to another in-sync replica
/// without stopping any node, as an operator's reassignment does: the
/// replica list is reordered (same replicas, so nothing is copied) to make
/// the next in-sync replica the preferred leader, then a preferred-leader
/// election runs. Returns the new leader's id once Metadata shows it.
pub async fn move_leadership(
    connection: &Connection,
    topic: &str,
    partition: i32,
) -> Result<i32, OpError> {
    use kafka_wire::protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    use kafka_wire::protocol::messages::elect_leaders_request::TopicPartitions;
    use kafka_wire::protocol::messages::{AlterPartitionReassignmentsRequest, ElectLeadersRequest};

    let state = partition_metadata(connection, topic, partition)
        .await?
        .1
        .ok_or(OpError::Missing("Metadata"))?;
    let leader = state.leader_id;
    let mut replicas = state.replica_nodes.clone();
    let successor = replicas
        .iter()
        .copied()
        .find(|r| *r != leader && state.isr_nodes.contains(r))
        .ok_or(OpError::Missing("Metadata (no other in-sync replica)"))?;
    replicas.retain(|r| *r != successor);
    replicas.insert(0, successor);
    let reassign = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![ReassignableTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ReassignablePartition::default()
                .with_partition_index(partition)
                .with_replicas(Some(replicas))])]);
    let answer = connection.send(&reassign).await?;
    let code = answer
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.error_code)
        .find(|c| *c != 0)
        .unwrap_or(answer.error_code);
    if code != 0 {
        return Err(OpError::Kafka {
            operation: "AlterPartitionReassignments",
            code: KafkaCode(code),
        });
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let elect = ElectLeadersRequest::default()
            .with_election_type(0) // preferred
            .with_timeout_ms(30_000)
            .with_topic_partitions(Some(vec![TopicPartitions::default()
                .with_topic(topic_name(topic))
                .with_partitions(vec![partition])]));
        connection.send(&elect).await?;
        if let Some((id, _)) = partition_leader(connection, topic, partition).await? {
            if id == successor.0 {
                return Ok(id);
            }
        }
        if std::time::Instant::now() > deadline {
            return Err(OpError::Missing(
                "Metadata (leadership did not move within 30 s)",
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The address of the leader of `topic`/`partition`, found through Metadata
/// on `connection`. A topic just created has no leader for a moment: this
/// waits up to 30 s for one.
pub async fn leader_address(
    connection: &Connection,
    topic: &str,
    partition: i32,
) -> Result<String, OpError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some((_, address)) = partition_leader(connection, topic, partition).await? {
            return Ok(address);
        }
        if std::time::Instant::now() > deadline {
            return Err(OpError::Missing("Metadata (no leader within 30 s)"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A new plaintext connection to the leader of `topic`/`partition` (on a
/// cluster, the node `connection` reaches is often not the leader); see
/// [`leader_address`].
pub async fn leader_connection(
    connection: &Connection,
    topic: &str,
    partition: i32,
) -> Result<Connection, OpError> {
    let address = leader_address(connection, topic, partition).await?;
    let leader = connect(&address, None, ConnectionConfig::default()).await?;
    await_leadership(&leader, topic, partition).await?;
    Ok(leader)
}

/// Waits (up to 30 s) until the broker behind `connection` acts as the
/// leader of `topic`/`partition`. Metadata can name a new leader a moment
/// before its replica manager takes the partition on (Kafka updates its
/// metadata cache first), and a Produce in that moment is answered
/// NOT_LEADER_OR_FOLLOWER: a ListOffsets answered without error is the
/// proof that produce and fetch will be served.
pub async fn await_leadership(
    connection: &Connection,
    topic: &str,
    partition: i32,
) -> Result<(), OpError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        // 3, 5, 6: not known, no leader, not the leader yet.
        match list_offset(connection, topic, partition, -1).await {
            Ok(_) => return Ok(()),
            Err(OpError::Kafka {
                code: KafkaCode(3 | 5 | 6),
                ..
            }) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// ListOffsets of `topic`/`partition` at `timestamp` (-1: the log end,
/// -2: the log start), asked of the broker behind `connection` (the leader).
pub async fn list_offset(
    connection: &Connection,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> Result<i64, OpError> {
    let request = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(timestamp)])]);
    let response = connection.send(&request).await?;
    let answer = response
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or(OpError::Missing("ListOffsets"))?;
    KafkaCode(answer.error_code)
        .into_result()
        .map_err(|code| OpError::Kafka {
            operation: "ListOffsets",
            code,
        })?;
    Ok(answer.offset)
}

/// Produces one sealed batch to `topic`/`partition`; returns the base offset
/// (`None` for `acks=0`, which has no response).
pub async fn produce(
    connection: &Connection,
    topic: &str,
    partition: i32,
    batch: Bytes,
    acks: i16,
    transactional_id: Option<&str>,
) -> Result<Option<i64>, OpError> {
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(30_000)
        .with_transactional_id(
            transactional_id.map(|id| StrBytes::from_string(id.to_owned()).into()),
        )
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch))])]);
    if acks == 0 {
        connection.send_without_response(&request)?;
        return Ok(None);
    }
    let response = connection.send(&request).await?;
    let answer = response
        .responses
        .first()
        .and_then(|t| t.partition_responses.first())
        .ok_or(OpError::Missing("Produce"))?;
    KafkaCode(answer.error_code)
        .into_result()
        .map_err(|code| OpError::Kafka {
            operation: "Produce",
            code,
        })?;
    Ok(Some(answer.base_offset))
}

/// What one partition's fetch returned.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The raw `records` field (batches, possibly a truncated last one).
    pub records: Bytes,
    /// High watermark.
    pub high_watermark: i64,
    /// Last stable offset.
    pub last_stable_offset: i64,
}

/// Fetches `topic`/`partition` from `offset`.
pub async fn fetch(
    connection: &Connection,
    topic: &str,
    partition: i32,
    offset: i64,
    read_committed: bool,
) -> Result<Fetched, OpError> {
    let response = connection
        .send(&fetch_request(topic, partition, offset, read_committed))
        .await?;
    let data = response
        .responses
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or(OpError::Missing("Fetch"))?;
    KafkaCode(data.error_code)
        .into_result()
        .map_err(|code| OpError::Kafka {
            operation: "Fetch",
            code,
        })?;
    Ok(Fetched {
        records: data.records.clone().unwrap_or_default(),
        high_watermark: data.high_watermark,
        last_stable_offset: data.last_stable_offset,
    })
}

/// The Fetch request [`fetch`] sends (also used to capture fixtures).
pub fn fetch_request(
    topic: &str,
    partition: i32,
    offset: i64,
    read_committed: bool,
) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(100)
        .with_min_bytes(1)
        .with_max_bytes(50 * 1024 * 1024)
        .with_isolation_level(i8::from(read_committed))
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_current_leader_epoch(-1)
                .with_fetch_offset(offset)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(10 * 1024 * 1024)])])
}
