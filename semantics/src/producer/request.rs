//! One Produce request: sealing (or restamping) its batches, sending it, and
//! reading the per-partition answers.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::BytesMut;
use kafka_wire::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_wire::protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_wire::protocol::protocol::StrBytes;
use kafka_wire::records::builder::restamp;

use super::accumulator::ClosedBatch;
use super::shared::Shared;
use crate::config::Acks;
use crate::producer::error::ProduceError;

/// A batch on its way, with where it came from.
pub(crate) struct Outbound {
    pub topic: Arc<str>,
    pub partition: i32,
    pub batch: ClosedBatch,
    pub restamp: bool,
}

/// Where a Produce request's answer comes from.
pub(crate) enum InFlight {
    /// Queued on the wire already (in dispatch order): its answer.
    Queued(
        std::pin::Pin<
            Box<
                dyn std::future::Future<Output = Result<ProduceResponse, kafka_wire::ConnError>>
                    + Send,
            >,
        >,
    ),
    /// `acks=0`: sent, no answer will come.
    NoAnswer,
    /// Sealing or queueing failed.
    Failed(ProduceError),
}

/// Seals the batches and queues the request on the broker's connection now,
/// so requests to one broker reach the wire in the order they were
/// dispatched (without idempotence, that order is the log's order).
pub(crate) fn dispatch_request(shared: &Shared, broker: i32, batches: &mut [Outbound]) -> InFlight {
    let request = match build_request(shared, batches) {
        Ok(request) => request,
        Err(error) => return InFlight::Failed(error),
    };
    // The sender dispatches only to brokers it just found healthy; if the
    // connection died since, the batches go back to their queues rather than
    // waiting for a new one in a task of their own, where they could overtake
    // a later request (order on the wire is the log's order without
    // idempotence).
    let Some(connection) = shared.cluster.healthy(broker) else {
        return InFlight::Failed(kafka_wire::ConnError::Closed.into());
    };
    if shared.config.acks == Acks::None {
        return match connection.send_without_response(&request) {
            Ok(()) => InFlight::NoAnswer,
            Err(error) => InFlight::Failed(error.into()),
        };
    }
    match connection.enqueue(&request) {
        Ok(answer) => InFlight::Queued(Box::pin(answer)),
        Err(error) => InFlight::Failed(error.into()),
    }
}

/// Waits for what [`dispatch_request`] started.
pub(crate) async fn complete_request(
    in_flight: InFlight,
) -> Result<Option<ProduceResponse>, ProduceError> {
    match in_flight {
        InFlight::Queued(answer) => Ok(Some(answer.await?)),
        InFlight::NoAnswer => Ok(None),
        InFlight::Failed(error) => Err(error),
    }
}

/// Seals (or restamps) the batches into one Produce request.
fn build_request(
    shared: &Shared,
    batches: &mut [Outbound],
) -> Result<ProduceRequest, ProduceError> {
    for outbound in batches.iter_mut() {
        seal(outbound)?;
    }
    let config = &shared.config;
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for outbound in batches.iter() {
        let data = PartitionProduceData::default()
            .with_index(outbound.partition)
            .with_records(outbound.batch.sealed.clone());
        match topics
            .iter_mut()
            .find(|t| t.name.0.as_str() == &*outbound.topic)
        {
            Some(topic) => topic.partition_data.push(data),
            None => topics.push(
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(outbound.topic.to_string())))
                    .with_partition_data(vec![data]),
            ),
        }
    }
    let request = ProduceRequest::default()
        .with_transactional_id(config.transactional_id.as_ref().map(|id| {
            kafka_wire::protocol::messages::TransactionalId(
                kafka_wire::protocol::protocol::StrBytes::from_string(id.clone()),
            )
        }))
        .with_acks(config.acks.wire_value())
        .with_timeout_ms(i32::try_from(config.request_timeout.as_millis()).unwrap_or(i32::MAX))
        .with_topic_data(topics);
    Ok(request)
}

fn seal(outbound: &mut Outbound) -> Result<(), ProduceError> {
    let batch = &mut outbound.batch;
    if let Some(builder) = batch.builder.take() {
        let sealed = builder
            .build(batch.stamp)
            .map_err(|e| ProduceError::Fatal(format!("sealing a batch: {e}")))?;
        batch.sealed = Some(sealed);
    } else if outbound.restamp {
        let sealed = batch
            .sealed
            .as_ref()
            .expect("a batch without a builder is sealed");
        let mut bytes = BytesMut::from(&sealed[..]);
        restamp(&mut bytes, batch.stamp)
            .map_err(|e| ProduceError::Fatal(format!("restamping a batch: {e}")))?;
        batch.sealed = Some(bytes.freeze());
        outbound.restamp = false;
    }
    Ok(())
}

#[derive(Clone)]
pub(crate) struct PartitionAnswer {
    pub error_code: i16,
    pub base_offset: i64,
    pub log_append_time: Option<i64>,
    pub message: Option<String>,
    /// KIP-951: the partition's leader (broker id, leader epoch) when the
    /// broker refused the batch for not leading it.
    pub leader_hint: Option<(i32, i32)>,
}

/// Each partition's answer, by topic and partition.
pub(crate) type PartitionAnswers = HashMap<(Arc<str>, i32), PartitionAnswer>;

/// Each partition's answer, and the brokers the response named (KIP-951
/// `NodeEndpoints`, so a leader hint can point at a broker not met yet).
pub(crate) fn partition_answers(
    response: ProduceResponse,
) -> (PartitionAnswers, Vec<(i32, String)>) {
    let brokers = response
        .node_endpoints
        .iter()
        .map(|n| (n.node_id.0, format!("{}:{}", n.host.as_str(), n.port)))
        .collect();
    let mut answers = HashMap::new();
    for topic in response.responses {
        let name: Arc<str> = Arc::from(topic.name.0.as_str());
        for partition in topic.partition_responses {
            answers.insert(
                (name.clone(), partition.index),
                PartitionAnswer {
                    error_code: partition.error_code,
                    base_offset: partition.base_offset,
                    log_append_time: (partition.log_append_time_ms >= 0)
                        .then_some(partition.log_append_time_ms),
                    message: partition.error_message.map(|m| m.to_string()),
                    leader_hint: (partition.current_leader.leader_id.0 >= 0
                        && partition.current_leader.leader_epoch >= 0)
                        .then_some((
                            partition.current_leader.leader_id.0,
                            partition.current_leader.leader_epoch,
                        )),
                },
            );
        }
    }
    (answers, brokers)
}
