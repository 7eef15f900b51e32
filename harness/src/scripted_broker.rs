//! An in-process broker that follows a script, for what the real broker cannot
//! be made to do on demand: answer a chosen Produce with a chosen error code.
//! It speaks just enough — ApiVersions, Metadata, InitProducerId, Produce,
//! and for transactions FindCoordinator, AddPartitionsToTxn and a scripted
//! EndTxn — for one broker (node 0) leading every partition of every topic
//! (one partition unless [`ScriptedBroker::set_partitions`] says more), and
//! logs what it received so tests can assert on the client's behaviour.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_wire::codec::header::{RequestHeader, ResponseHeader};
use kafka_wire::codec::versions::client_ranges;
use kafka_wire::protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_wire::protocol::messages::api_versions_response::ApiVersion;
use kafka_wire::protocol::messages::find_coordinator_response::Coordinator;
use kafka_wire::protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_wire::protocol::messages::produce_response::{
    PartitionProduceResponse, TopicProduceResponse,
};
use kafka_wire::protocol::messages::*;
use kafka_wire::protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_wire::records::{BatchReader, Compression};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A scripted Produce answer: none at all (the connection stays open), as
/// when the broker stalls. Logged as the batch's `answered` code.
pub const NO_ANSWER: i16 = i16::MIN;

/// What the scripted broker received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// InitProducerId with the id and epoch the client presented.
    InitProducerId {
        /// Presented producer id (−1 for a new one).
        producer_id: i64,
        /// Presented epoch.
        producer_epoch: i16,
    },
    /// A produced batch and the error code it was answered with.
    Produce {
        /// Partition the batch was for.
        partition: i32,
        /// Batch producer epoch.
        producer_epoch: i16,
        /// Batch base sequence.
        base_sequence: i32,
        /// Records in the batch.
        records: i32,
        /// Code answered (0 = appended).
        answered: i16,
    },
    /// An EndTxn and the error code it was answered with.
    EndTxn {
        /// Commit (true) or abort.
        committed: bool,
        /// Presented epoch.
        producer_epoch: i16,
        /// Code answered.
        answered: i16,
    },
}

#[derive(Default)]
struct State {
    produce_errors: VecDeque<i16>,
    /// Scripts for one partition, used before `produce_errors`.
    partition_errors: HashMap<i32, VecDeque<i16>>,
    end_txn_errors: VecDeque<i16>,
    epoch: i16,
    next_offset: HashMap<i32, i64>,
    /// Partitions every topic has (0 means 1).
    partitions: i32,
    /// How long each Produce answer is held back.
    produce_delay: std::time::Duration,
    log: Vec<Event>,
}

/// A running scripted broker.
pub struct ScriptedBroker {
    port: u16,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl ScriptedBroker {
    /// Starts it; `produce_errors` answers successive produced batches (0 =
    /// append), and every batch after the script is appended.
    pub async fn start(produce_errors: impl IntoIterator<Item = i16>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(Mutex::new(State {
            produce_errors: produce_errors.into_iter().collect(),
            ..State::default()
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, port, shared.clone()));
            }
        });
        Ok(Self { port, state, task })
    }

    /// Answers successive EndTxn requests with these codes (then success).
    pub fn script_end_txn(&self, codes: impl IntoIterator<Item = i16>) {
        self.state
            .lock()
            .expect("state lock")
            .end_txn_errors
            .extend(codes);
    }

    /// Every topic has `count` partitions from now on.
    pub fn set_partitions(&self, count: i32) {
        self.state.lock().expect("state lock").partitions = count;
    }

    /// Answers successive batches for `partition` with these codes, before
    /// the script given to [`ScriptedBroker::start`].
    pub fn script_partition(&self, partition: i32, codes: impl IntoIterator<Item = i16>) {
        self.state
            .lock()
            .expect("state lock")
            .partition_errors
            .entry(partition)
            .or_default()
            .extend(codes);
    }

    /// Holds back every Produce answer by `delay` (the batch is logged on
    /// arrival), as a slow broker would.
    pub fn set_produce_delay(&self, delay: std::time::Duration) {
        self.state.lock().expect("state lock").produce_delay = delay;
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Everything received so far.
    pub fn log(&self) -> Vec<Event> {
        self.state.lock().expect("state lock").log.clone()
    }
}

impl Drop for ScriptedBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, port: u16, state: Arc<Mutex<State>>) {
    loop {
        let Ok(size) = stream.read_i32().await else {
            return;
        };
        let mut frame = vec![0; size.max(0) as usize];
        if stream.read_exact(&mut frame).await.is_err() {
            return;
        }
        let is_produce = frame.get(..2) == Some(&(ApiKey::Produce as i16).to_be_bytes()[..]);
        let Some(response) = answer(Bytes::from(frame), port, &state) else {
            return;
        };
        let delay = state.lock().expect("state lock").produce_delay;
        if is_produce && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if stream.write_all(&response).await.is_err() {
            return;
        }
    }
}

fn answer(mut frame: Bytes, port: u16, state: &Mutex<State>) -> Option<Bytes> {
    let api_key = ApiKey::try_from(i16::from_be_bytes([*frame.first()?, *frame.get(1)?])).ok()?;
    let version = i16::from_be_bytes([*frame.get(2)?, *frame.get(3)?]);
    let header = RequestHeader::decode(&mut frame, api_key.request_header_version(version)).ok()?;
    let id = header.correlation_id;
    match api_key {
        ApiKey::ApiVersions => respond(id, version, &api_versions()),
        ApiKey::Metadata => {
            let request = MetadataRequest::decode(&mut frame, version).ok()?;
            let partitions = state.lock().expect("state lock").partitions.max(1);
            respond(id, version, &metadata(&request, port, partitions))
        }
        ApiKey::InitProducerId => {
            let request = InitProducerIdRequest::decode(&mut frame, version).ok()?;
            let mut state = state.lock().expect("state lock");
            state.log.push(Event::InitProducerId {
                producer_id: request.producer_id.0,
                producer_epoch: request.producer_epoch,
            });
            if request.producer_id.0 >= 0 {
                state.epoch = request.producer_epoch + 1;
            }
            let response = InitProducerIdResponse::default()
                .with_producer_id(42.into())
                .with_producer_epoch(state.epoch);
            respond(id, version, &response)
        }
        ApiKey::Produce => {
            let request = ProduceRequest::decode(&mut frame, version).ok()?;
            let (response, withheld) = produce(&request, state);
            if withheld {
                return Some(Bytes::new());
            }
            respond(id, version, &response)
        }
        ApiKey::FindCoordinator => {
            let coordinator = |r: FindCoordinatorResponse| {
                r.with_node_id(0.into())
                    .with_host(StrBytes::from_static_str("127.0.0.1"))
                    .with_port(i32::from(port))
            };
            let response = if version >= 4 {
                let request = FindCoordinatorRequest::decode(&mut frame, version).ok()?;
                let entries = request
                    .coordinator_keys
                    .into_iter()
                    .map(|key| {
                        Coordinator::default()
                            .with_key(key)
                            .with_node_id(0.into())
                            .with_host(StrBytes::from_static_str("127.0.0.1"))
                            .with_port(i32::from(port))
                    })
                    .collect();
                FindCoordinatorResponse::default().with_coordinators(entries)
            } else {
                coordinator(FindCoordinatorResponse::default())
            };
            respond(id, version, &response)
        }
        ApiKey::AddPartitionsToTxn => {
            let request = AddPartitionsToTxnRequest::decode(&mut frame, version).ok()?;
            let topics = request
                .v3_and_below_topics
                .iter()
                .map(|t| {
                    AddPartitionsToTxnTopicResult::default()
                        .with_name(t.name.clone())
                        .with_results_by_partition(
                            t.partitions
                                .iter()
                                .map(|&p| {
                                    AddPartitionsToTxnPartitionResult::default()
                                        .with_partition_index(p)
                                })
                                .collect(),
                        )
                })
                .collect();
            let response =
                AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topics);
            respond(id, version, &response)
        }
        ApiKey::EndTxn => {
            let request = EndTxnRequest::decode(&mut frame, version).ok()?;
            let mut state = state.lock().expect("state lock");
            let answered = state.end_txn_errors.pop_front().unwrap_or(0);
            state.log.push(Event::EndTxn {
                committed: request.committed,
                producer_epoch: request.producer_epoch,
                answered,
            });
            respond(
                id,
                version,
                &EndTxnResponse::default().with_error_code(answered),
            )
        }
        _ => None,
    }
}

fn respond<M: Encodable + HeaderVersion>(
    correlation_id: i32,
    version: i16,
    body: &M,
) -> Option<Bytes> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    ResponseHeader { correlation_id }.encode(&mut buf, M::header_version(version));
    body.encode(&mut buf, version).ok()?;
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Some(buf.freeze())
}

fn api_versions() -> ApiVersionsResponse {
    let keys = client_ranges()
        .iter()
        .map(|(&key, range)| {
            ApiVersion::default()
                .with_api_key(key)
                .with_min_version(range.min)
                .with_max_version(range.max)
        })
        .collect();
    ApiVersionsResponse::default().with_api_keys(keys)
}

fn metadata(request: &MetadataRequest, port: u16, partitions: i32) -> MetadataResponse {
    let broker = MetadataResponseBroker::default()
        .with_node_id(0.into())
        .with_host(StrBytes::from_static_str("127.0.0.1"))
        .with_port(i32::from(port));
    let topics = request
        .topics
        .iter()
        .flatten()
        .map(|topic| {
            MetadataResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(
                    (0..partitions)
                        .map(|index| {
                            MetadataResponsePartition::default()
                                .with_partition_index(index)
                                .with_leader_id(0.into())
                        })
                        .collect(),
                )
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_topics(topics)
}

/// The answer, and whether the script withholds it ([`NO_ANSWER`]).
fn produce(request: &ProduceRequest, state: &Mutex<State>) -> (ProduceResponse, bool) {
    let mut state = state.lock().expect("state lock");
    let mut withheld = false;
    let mut topics = Vec::new();
    for topic in &request.topic_data {
        let mut partitions = Vec::new();
        for partition in &topic.partition_data {
            let batch = partition
                .records
                .clone()
                .and_then(|records| BatchReader::new(records).next()?.ok());
            let Some(batch) = batch else { continue };
            let scripted = state
                .partition_errors
                .get_mut(&partition.index)
                .and_then(VecDeque::pop_front);
            let answered = scripted
                .or_else(|| state.produce_errors.pop_front())
                .unwrap_or(0);
            let header = batch.header;
            debug_assert_eq!(header.attributes.compression, Compression::None);
            state.log.push(Event::Produce {
                partition: partition.index,
                producer_epoch: header.producer_epoch,
                base_sequence: header.base_sequence,
                records: header.records_count,
                answered,
            });
            withheld |= answered == NO_ANSWER;
            let mut response = PartitionProduceResponse::default()
                .with_index(partition.index)
                .with_error_code(answered);
            if answered == 0 {
                let next_offset = state.next_offset.entry(partition.index).or_default();
                response = response.with_base_offset(*next_offset);
                *next_offset += i64::from(header.records_count);
            }
            partitions.push(response);
        }
        topics.push(
            TopicProduceResponse::default()
                .with_name(topic.name.clone())
                .with_partition_responses(partitions),
        );
    }
    (ProduceResponse::default().with_responses(topics), withheld)
}
