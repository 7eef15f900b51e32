//! ApiVersions negotiation: for each API, the highest version both sides speak.
//!
//! The client's ranges start at the Kafka 4.0 baseline (KIP-896 removed older
//! versions) and stop where this client's semantics are implemented: e.g. Fetch
//! and Produce stop before the versions that address topics by id only.

use std::collections::HashMap;
use std::fmt;

use kafka_protocol::messages::ApiVersionsResponse;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Request;

use super::api_name;

/// An inclusive version range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersionRange {
    /// Lowest version.
    pub min: i16,
    /// Highest version.
    pub max: i16,
}

impl fmt::Display for ApiVersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}..=v{}", self.min, self.max)
    }
}

/// No version both sides speak.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VersionError {
    /// The broker does not list the API at all.
    #[error("broker does not support {api} (key {api_key}); this client speaks {client}")]
    NotOffered {
        /// API name.
        api: &'static str,
        /// API key.
        api_key: i16,
        /// What this client speaks.
        client: ApiVersionRange,
    },
    /// The ranges do not overlap.
    #[error("no common version for {api} (key {api_key}): this client speaks {client}, the broker {broker}")]
    NoOverlap {
        /// API name.
        api: &'static str,
        /// API key.
        api_key: i16,
        /// What this client speaks.
        client: ApiVersionRange,
        /// What the broker speaks.
        broker: ApiVersionRange,
    },
    /// This client has no implementation for the API key.
    #[error("this client does not implement API key {0}")]
    NotImplemented(i16),
}

fn range<R: Request>(min: i16, max: i16) -> (i16, ApiVersionRange) {
    // Never claim a version the message crate cannot encode.
    let supported = R::VERSIONS;
    (
        R::KEY,
        ApiVersionRange {
            min: min.max(supported.min),
            max: max.min(supported.max),
        },
    )
}

/// The versions this client speaks, per API key.
pub fn client_ranges() -> &'static HashMap<i16, ApiVersionRange> {
    static RANGES: std::sync::OnceLock<HashMap<i16, ApiVersionRange>> = std::sync::OnceLock::new();
    RANGES.get_or_init(|| {
        HashMap::from([
            // Produce v12 means KIP-890 transactions v2 and v13 topic ids: not yet.
            range::<ProduceRequest>(3, 11),
            // Fetch v13+ addresses topics by id only.
            range::<FetchRequest>(4, 12),
            range::<ListOffsetsRequest>(1, 10),
            // KIP-320 position validation by consumers (v3 carries the replica id).
            range::<OffsetForLeaderEpochRequest>(2, 4),
            range::<MetadataRequest>(0, 12),
            // OffsetCommit/OffsetFetch v10 address topics by id.
            range::<OffsetCommitRequest>(2, 9),
            range::<OffsetFetchRequest>(1, 9),
            range::<FindCoordinatorRequest>(0, 6),
            range::<JoinGroupRequest>(2, 9),
            range::<HeartbeatRequest>(0, 4),
            range::<LeaveGroupRequest>(0, 5),
            range::<SyncGroupRequest>(0, 5),
            range::<DescribeGroupsRequest>(0, 5),
            range::<ListGroupsRequest>(0, 5),
            range::<SaslHandshakeRequest>(0, 1),
            range::<ApiVersionsRequest>(0, 4),
            range::<CreateTopicsRequest>(2, 7),
            range::<DeleteTopicsRequest>(1, 6),
            range::<DeleteRecordsRequest>(0, 2),
            range::<InitProducerIdRequest>(0, 5),
            // AddPartitionsToTxn v4+ is the broker-to-broker batch form (KIP-890).
            range::<AddPartitionsToTxnRequest>(0, 3),
            range::<AddOffsetsToTxnRequest>(0, 4),
            // EndTxn v5 / TxnOffsetCommit v5 belong to transactions v2 (KIP-890).
            range::<EndTxnRequest>(0, 4),
            range::<TxnOffsetCommitRequest>(0, 4),
            range::<DescribeConfigsRequest>(1, 4),
            range::<SaslAuthenticateRequest>(0, 2),
            range::<CreatePartitionsRequest>(0, 3),
            // Leadership moves for the harness (and the admin client):
            // ElectLeaders v1 carries the election type.
            range::<AlterPartitionReassignmentsRequest>(0, 0),
            range::<ElectLeadersRequest>(1, 2),
        ])
    })
}

/// The outcome of ApiVersions on one connection.
#[derive(Debug, Clone, Default)]
pub struct NegotiatedVersions {
    broker: HashMap<i16, ApiVersionRange>,
}

impl NegotiatedVersions {
    /// From the broker's ApiVersions answer.
    pub fn from_response(response: &ApiVersionsResponse) -> Self {
        let broker = response
            .api_keys
            .iter()
            .map(|k| {
                (
                    k.api_key,
                    ApiVersionRange {
                        min: k.min_version,
                        max: k.max_version,
                    },
                )
            })
            .collect();
        Self { broker }
    }

    /// From explicit broker ranges (tests, scripted brokers).
    pub fn from_ranges(broker: impl IntoIterator<Item = (i16, ApiVersionRange)>) -> Self {
        Self {
            broker: broker.into_iter().collect(),
        }
    }

    /// The highest version of `api_key` both sides speak.
    pub fn version(&self, api_key: i16) -> Result<i16, VersionError> {
        let client = *client_ranges()
            .get(&api_key)
            .ok_or(VersionError::NotImplemented(api_key))?;
        let api = api_name(api_key);
        let broker = *self.broker.get(&api_key).ok_or(VersionError::NotOffered {
            api,
            api_key,
            client,
        })?;
        let (min, max) = (client.min.max(broker.min), client.max.min(broker.max));
        if min > max {
            return Err(VersionError::NoOverlap {
                api,
                api_key,
                client,
                broker,
            });
        }
        Ok(max)
    }

    /// [`Self::version`] for a request type.
    pub fn version_for<R: Request>(&self) -> Result<i16, VersionError> {
        self.version(R::KEY)
    }

    /// The broker's range for `api_key`, if it offers the API.
    pub fn broker_range(&self, api_key: i16) -> Option<ApiVersionRange> {
        self.broker.get(&api_key).copied()
    }
}

/// The ApiVersions request version to open a connection with. A broker that
/// does not know it answers UNSUPPORTED_VERSION with its own range in a v0 body.
pub fn initial_api_versions_version() -> i16 {
    client_ranges()[&ApiVersionsRequest::KEY].max.min(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(ranges: &[(i16, i16, i16)]) -> NegotiatedVersions {
        NegotiatedVersions::from_ranges(
            ranges
                .iter()
                .map(|&(k, min, max)| (k, ApiVersionRange { min, max })),
        )
    }

    #[test]
    fn picks_the_highest_common_version() {
        let versions = broker(&[(0, 0, 9), (1, 4, 17)]);
        assert_eq!(versions.version(0).unwrap(), 9);
        assert_eq!(versions.version(1).unwrap(), 12);
    }

    #[test]
    fn no_overlap_names_both_ranges() {
        let versions = broker(&[(0, 0, 2)]);
        let err = versions.version(0).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("Produce") && text.contains("v0..=v2") && text.contains("v3..=v11"),
            "{text}"
        );
    }

    #[test]
    fn missing_api_is_named() {
        let err = broker(&[]).version(22).unwrap_err();
        assert!(
            matches!(
                err,
                VersionError::NotOffered {
                    api: "InitProducerId",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn client_ranges_respect_kip_896_minimums() {
        let ranges = client_ranges();
        assert_eq!(ranges[&0].min, 3); // Produce
        assert_eq!(ranges[&1].min, 4); // Fetch
        assert_eq!(ranges[&2].min, 1); // ListOffsets
        assert_eq!(ranges[&8].min, 2); // OffsetCommit
        assert_eq!(ranges[&11].min, 2); // JoinGroup
        for (key, range) in ranges {
            assert!(range.min <= range.max, "api {key}: {range}");
        }
    }
}
