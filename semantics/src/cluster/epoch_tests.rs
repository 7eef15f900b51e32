//! Leader epochs in the cached metadata: stale answers and KIP-951 hints.

use kafka_wire::protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_wire::protocol::messages::{BrokerId, MetadataResponse, TopicName};
use kafka_wire::protocol::protocol::StrBytes;

use super::*;

fn cluster() -> Cluster {
    Cluster::new(
        vec!["127.0.0.1:1".into()],
        ConnectionConfig::default(),
        None,
        false,
    )
}

/// Metadata naming `leader` at `epoch` for partition 0 of topic "t".
fn metadata(leader: i32, epoch: i32, topic_id: u128) -> MetadataResponse {
    let brokers = (1..=3)
        .map(|id| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(id))
                .with_host(StrBytes::from_static_str("127.0.0.1"))
                .with_port(9000 + id)
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_topics(vec![MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("t"))))
            .with_topic_id(uuid::Uuid::from_u128(topic_id))
            .with_partitions(vec![MetadataResponsePartition::default()
                .with_partition_index(0)
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(epoch)])])
}

#[test]
fn an_answer_from_a_broker_behind_does_not_move_the_leader_back() {
    let cluster = cluster();
    cluster.apply(metadata(2, 7, 1));
    assert_eq!(cluster.leader_and_epoch("t", 0), Some((2, 7)));
    cluster.apply(metadata(1, 6, 1));
    assert_eq!(cluster.leader_and_epoch("t", 0), Some((2, 7)));
    // Not even after the cache was dropped (a fetch error invalidates it).
    cluster.invalidate("t");
    cluster.apply(metadata(1, 6, 1));
    assert_eq!(cluster.leader_and_epoch("t", 0), None);
    cluster.apply(metadata(3, 8, 1));
    assert_eq!(cluster.leader_and_epoch("t", 0), Some((3, 8)));
}

#[test]
fn a_topic_created_again_starts_its_epochs_afresh() {
    let cluster = cluster();
    cluster.apply(metadata(2, 7, 1));
    cluster.apply(metadata(1, 0, 2));
    assert_eq!(cluster.leader_and_epoch("t", 0), Some((1, 0)));
}

#[test]
fn a_leader_hint_is_taken_only_when_newer_and_its_broker_known() {
    let cluster = cluster();
    cluster.apply(metadata(2, 7, 1));
    assert!(!cluster.apply_leader_hint("t", 0, 1, 7), "same epoch");
    assert!(!cluster.apply_leader_hint("t", 0, 9, 8), "unknown broker");
    assert!(
        !cluster.apply_leader_hint("t", 5, 1, 8),
        "no such partition"
    );
    assert!(cluster.apply_leader_hint("t", 0, 1, 8));
    assert_eq!(cluster.leader_and_epoch("t", 0), Some((1, 8)));
    // A later Metadata answer from a broker that has not heard of epoch 8.
    cluster.apply(metadata(2, 7, 1));
    assert_eq!(cluster.leader_and_epoch("t", 0), Some((1, 8)));
    cluster.learn_brokers([(9, "127.0.0.1:9009".to_owned())]);
    assert!(cluster.apply_leader_hint("t", 0, 9, 9));
    assert_eq!(cluster.broker_address(9).as_deref(), Some("127.0.0.1:9009"));
}
