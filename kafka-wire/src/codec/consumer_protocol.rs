//! The classic consumer protocol's embedded metadata: the subscription a member
//! sends in JoinGroup and the assignment the leader hands out in SyncGroup.
//!
//! Both are `version i16` followed by the body at that version (non-flexible).
//! A newer version than this client knows is read as the newest it knows:
//! later versions only append fields, which is how the Java client stays
//! compatible with members that run a newer version.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use kafka_protocol::protocol::{Decodable, Encodable, Message};

use super::CodecError;

/// Encodes a subscription at `version` (0–3).
pub fn encode_subscription(
    subscription: &ConsumerProtocolSubscription,
    version: i16,
) -> Result<Bytes, CodecError> {
    encode("ConsumerProtocolSubscription", subscription, version)
}

/// Decodes a subscription; returns the version it was written with.
pub fn decode_subscription(
    bytes: Bytes,
) -> Result<(i16, ConsumerProtocolSubscription), CodecError> {
    decode("ConsumerProtocolSubscription", bytes)
}

/// Encodes an assignment at `version` (0–3).
pub fn encode_assignment(
    assignment: &ConsumerProtocolAssignment,
    version: i16,
) -> Result<Bytes, CodecError> {
    encode("ConsumerProtocolAssignment", assignment, version)
}

/// Decodes an assignment; returns the version it was written with.
pub fn decode_assignment(bytes: Bytes) -> Result<(i16, ConsumerProtocolAssignment), CodecError> {
    decode("ConsumerProtocolAssignment", bytes)
}

fn encode<M: Encodable + Message>(
    api: &'static str,
    message: &M,
    version: i16,
) -> Result<Bytes, CodecError> {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    message
        .encode(&mut buf, version)
        .map_err(|e| CodecError::Encode {
            api,
            version,
            reason: e.to_string(),
        })?;
    Ok(buf.freeze())
}

fn decode<M: Decodable + Message>(
    api: &'static str,
    mut bytes: Bytes,
) -> Result<(i16, M), CodecError> {
    if bytes.len() < 2 {
        return Err(CodecError::Truncated {
            what: "consumer protocol version",
            needed: 2,
            available: bytes.len(),
        });
    }
    let version = bytes.get_i16();
    if version < 0 {
        return Err(CodecError::Decode {
            api,
            version,
            reason: "negative version".into(),
        });
    }
    let readable = version.min(M::VERSIONS.max);
    let message = M::decode(&mut bytes, readable).map_err(|e| CodecError::Decode {
        api,
        version,
        reason: e.to_string(),
    })?;
    Ok((version, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::StrBytes;

    #[test]
    fn subscription_v0_golden_bytes() {
        let subscription = ConsumerProtocolSubscription::default()
            .with_topics(vec![StrBytes::from_static_str("t")]);
        let bytes = encode_subscription(&subscription, 0).unwrap();
        #[rustfmt::skip]
        let expected = [
            0, 0,             // version 0
            0, 0, 0, 1,       // topics: array of 1
            0, 1, b't',       // "t"
            0xff, 0xff, 0xff, 0xff, // user_data: null
        ];
        assert_eq!(&bytes[..], &expected);
        assert_eq!(decode_subscription(bytes).unwrap(), (0, subscription));
    }

    #[test]
    fn assignment_round_trips_and_newer_versions_are_read_forward_compatibly() {
        let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
            TopicPartition::default()
                .with_topic(TopicName(StrBytes::from_static_str("orders")))
                .with_partitions(vec![0, 2]),
        ]);
        let bytes = encode_assignment(&assignment, 3).unwrap();
        assert_eq!(
            decode_assignment(bytes.clone()).unwrap(),
            (3, assignment.clone())
        );
        // The same body labelled v9 (a future member) still reads.
        let mut future = BytesMut::from(&bytes[..]);
        future[..2].copy_from_slice(&9i16.to_be_bytes());
        assert_eq!(decode_assignment(future.freeze()).unwrap(), (9, assignment));
    }

    #[test]
    fn hostile_metadata_is_an_error() {
        assert!(decode_subscription(Bytes::from_static(&[0])).is_err());
        assert!(decode_subscription(Bytes::from_static(&[0xff, 0xff, 0, 0])).is_err());
        assert!(decode_assignment(Bytes::from_static(&[0, 0, 0x7f, 0xff, 0xff, 0xff])).is_err());
    }
}
