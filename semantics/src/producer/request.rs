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
use crate::error::ProduceError;

/// A batch on its way, with where it came from.
pub(crate) struct Outbound {
    pub topic: Arc<str>,
    pub partition: i32,
    pub batch: ClosedBatch,
    pub restamp: bool,
}

/// Seals (or restamps) the batches and sends one Produce request.
pub(crate) async fn send_request(
    shared: &Shared,
    broker: i32,
    batches: &mut [Outbound],
) -> Result<Option<ProduceResponse>, ProduceError> {
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
    let connection = shared.cluster.connection(broker).await?;
    if config.acks == Acks::None {
        connection.send_without_response(&request)?;
        return Ok(None);
    }
    Ok(Some(connection.send(&request).await?))
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
}

pub(crate) fn partition_answers(
    response: ProduceResponse,
) -> HashMap<(Arc<str>, i32), PartitionAnswer> {
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
                },
            );
        }
    }
    answers
}
