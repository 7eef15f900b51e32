//! Kafka error codes and what a client should do about each one.
//!
//! One table, consulted by every later layer. The classes follow the Java
//! client's exception hierarchy (`RetriableException`, `InvalidMetadataException`)
//! and its transaction manager (abortable vs fatal). Context-specific overrides —
//! e.g. the idempotent producer treating `DUPLICATE_SEQUENCE_NUMBER` as success,
//! or KIP-360's epoch bump on `UNKNOWN_PRODUCER_ID` — live with the policy that
//! applies them, in `semantics`, and cite their KIP there.

use std::fmt;

/// What to do about an error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Not an error.
    None,
    /// Transient: retry the same request after a backoff.
    Retriable,
    /// Transient, but the client's view of leaders/coordinators is stale:
    /// refresh metadata (or re-find the coordinator), then retry.
    RefreshMetadata,
    /// Inside a transaction: abort it and carry on with a new one.
    Abortable,
    /// The client instance cannot continue (fenced, unauthorised, unsupported).
    Fatal,
    /// This request (or record) failed for good; the client itself is fine.
    Permanent,
}

impl ErrorClass {
    /// True for the classes a retry can fix.
    pub fn is_retriable(self) -> bool {
        matches!(self, Self::Retriable | Self::RefreshMetadata)
    }
}

/// A Kafka protocol error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KafkaCode(pub i16);

impl KafkaCode {
    /// `NONE` (0).
    pub const NONE: Self = Self(0);

    /// The protocol guide's name, e.g. `NOT_LEADER_OR_FOLLOWER`.
    pub fn name(self) -> &'static str {
        self.entry().map_or("UNKNOWN_ERROR_CODE", |e| e.1)
    }

    /// The class this code belongs to. Unknown codes are permanent errors, as
    /// the Java client maps them to `UnknownServerException`.
    pub fn class(self) -> ErrorClass {
        self.entry().map_or(ErrorClass::Permanent, |e| e.2)
    }

    /// True for 0.
    pub fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// `Ok(())` for 0, `Err(self)` otherwise — for `?` on response fields.
    pub fn into_result(self) -> Result<(), KafkaCode> {
        if self.is_ok() {
            Ok(())
        } else {
            Err(self)
        }
    }

    fn entry(self) -> Option<&'static (i16, &'static str, ErrorClass)> {
        // The table is dense from -1: index = code + 1.
        let index = usize::try_from(i32::from(self.0) + 1).ok()?;
        TABLE.get(index).filter(|e| e.0 == self.0)
    }
}

impl fmt::Display for KafkaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

impl std::error::Error for KafkaCode {}

use ErrorClass::{
    Abortable as A, Fatal as F, None as N, Permanent as P, RefreshMetadata as M, Retriable as R,
};

/// Every code Apache Kafka 4.1 defines, dense from −1.
#[rustfmt::skip]
static TABLE: &[(i16, &str, ErrorClass)] = &[
    (-1, "UNKNOWN_SERVER_ERROR", P),
    (0, "NONE", N),
    (1, "OFFSET_OUT_OF_RANGE", P),
    (2, "CORRUPT_MESSAGE", R),
    (3, "UNKNOWN_TOPIC_OR_PARTITION", M),
    (4, "INVALID_FETCH_SIZE", P),
    (5, "LEADER_NOT_AVAILABLE", M),
    (6, "NOT_LEADER_OR_FOLLOWER", M),
    (7, "REQUEST_TIMED_OUT", R),
    (8, "BROKER_NOT_AVAILABLE", P),
    (9, "REPLICA_NOT_AVAILABLE", M),
    (10, "MESSAGE_TOO_LARGE", P),
    (11, "STALE_CONTROLLER_EPOCH", P),
    (12, "OFFSET_METADATA_TOO_LARGE", P),
    (13, "NETWORK_EXCEPTION", M),
    (14, "COORDINATOR_LOAD_IN_PROGRESS", R),
    (15, "COORDINATOR_NOT_AVAILABLE", M),
    (16, "NOT_COORDINATOR", M),
    (17, "INVALID_TOPIC_EXCEPTION", P),
    (18, "RECORD_LIST_TOO_LARGE", P),
    (19, "NOT_ENOUGH_REPLICAS", R),
    (20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND", R),
    (21, "INVALID_REQUIRED_ACKS", P),
    (22, "ILLEGAL_GENERATION", P),
    (23, "INCONSISTENT_GROUP_PROTOCOL", P),
    (24, "INVALID_GROUP_ID", P),
    (25, "UNKNOWN_MEMBER_ID", P),
    (26, "INVALID_SESSION_TIMEOUT", P),
    (27, "REBALANCE_IN_PROGRESS", P),
    (28, "INVALID_COMMIT_OFFSET_SIZE", P),
    // Abortable inside a transaction (Java's TransactionManager); permanent outside.
    (29, "TOPIC_AUTHORIZATION_FAILED", A),
    (30, "GROUP_AUTHORIZATION_FAILED", A),
    (31, "CLUSTER_AUTHORIZATION_FAILED", F),
    (32, "INVALID_TIMESTAMP", P),
    (33, "UNSUPPORTED_SASL_MECHANISM", F),
    (34, "ILLEGAL_SASL_STATE", F),
    (35, "UNSUPPORTED_VERSION", F),
    (36, "TOPIC_ALREADY_EXISTS", P),
    (37, "INVALID_PARTITIONS", P),
    (38, "INVALID_REPLICATION_FACTOR", P),
    (39, "INVALID_REPLICA_ASSIGNMENT", P),
    (40, "INVALID_CONFIG", P),
    (41, "NOT_CONTROLLER", M),
    (42, "INVALID_REQUEST", P),
    (43, "UNSUPPORTED_FOR_MESSAGE_FORMAT", F),
    (44, "POLICY_VIOLATION", P),
    // KIP-360: the idempotent producer bumps its epoch instead of failing.
    (45, "OUT_OF_ORDER_SEQUENCE_NUMBER", A),
    // The batch is already in the log: the producer treats it as success.
    (46, "DUPLICATE_SEQUENCE_NUMBER", P),
    // KIP-588: in a Produce answer, the coordinator aborted a transaction that
    // outlived its timeout and bumped the epoch: abort and re-initialise. (A
    // transaction coordinator's answer means fenced; the transaction manager
    // classifies that itself.)
    (47, "INVALID_PRODUCER_EPOCH", A),
    (48, "INVALID_TXN_STATE", F),
    (49, "INVALID_PRODUCER_ID_MAPPING", A),
    (50, "INVALID_TRANSACTION_TIMEOUT", F),
    (51, "CONCURRENT_TRANSACTIONS", R),
    (52, "TRANSACTION_COORDINATOR_FENCED", F),
    (53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", F),
    (54, "SECURITY_DISABLED", P),
    (55, "OPERATION_NOT_ATTEMPTED", P),
    (56, "KAFKA_STORAGE_ERROR", M),
    (57, "LOG_DIR_NOT_FOUND", P),
    (58, "SASL_AUTHENTICATION_FAILED", F),
    // KIP-360: bump the epoch and reset sequences; abortable in a transaction.
    (59, "UNKNOWN_PRODUCER_ID", A),
    (60, "REASSIGNMENT_IN_PROGRESS", P),
    (61, "DELEGATION_TOKEN_AUTH_DISABLED", P),
    (62, "DELEGATION_TOKEN_NOT_FOUND", P),
    (63, "DELEGATION_TOKEN_OWNER_MISMATCH", P),
    (64, "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED", P),
    (65, "DELEGATION_TOKEN_AUTHORIZATION_FAILED", P),
    (66, "DELEGATION_TOKEN_EXPIRED", P),
    (67, "INVALID_PRINCIPAL_TYPE", P),
    (68, "NON_EMPTY_GROUP", P),
    (69, "GROUP_ID_NOT_FOUND", P),
    (70, "FETCH_SESSION_ID_NOT_FOUND", R),
    (71, "INVALID_FETCH_SESSION_EPOCH", R),
    (72, "LISTENER_NOT_FOUND", M),
    (73, "TOPIC_DELETION_DISABLED", P),
    (74, "FENCED_LEADER_EPOCH", M),
    (75, "UNKNOWN_LEADER_EPOCH", R),
    (76, "UNSUPPORTED_COMPRESSION_TYPE", P),
    (77, "STALE_BROKER_EPOCH", P),
    (78, "OFFSET_NOT_AVAILABLE", R),
    (79, "MEMBER_ID_REQUIRED", P),
    (80, "PREFERRED_LEADER_NOT_AVAILABLE", M),
    (81, "GROUP_MAX_SIZE_REACHED", P),
    // KIP-345: another instance with this group.instance.id took over.
    (82, "FENCED_INSTANCE_ID", F),
    (83, "ELIGIBLE_LEADERS_NOT_AVAILABLE", M),
    (84, "ELECTION_NOT_NEEDED", P),
    (85, "NO_REASSIGNMENT_IN_PROGRESS", P),
    (86, "GROUP_SUBSCRIBED_TO_TOPIC", P),
    (87, "INVALID_RECORD", P),
    (88, "UNSTABLE_OFFSET_COMMIT", R),
    (89, "THROTTLING_QUOTA_EXCEEDED", R),
    // KIP-588: a newer producer with the same transactional.id exists.
    (90, "PRODUCER_FENCED", F),
    (91, "RESOURCE_NOT_FOUND", P),
    (92, "DUPLICATE_RESOURCE", P),
    (93, "UNACCEPTABLE_CREDENTIAL", P),
    (94, "INCONSISTENT_VOTER_SET", P),
    (95, "INVALID_UPDATE_VERSION", P),
    (96, "FEATURE_UPDATE_FAILED", P),
    (97, "PRINCIPAL_DESERIALIZATION_FAILURE", P),
    (98, "SNAPSHOT_NOT_FOUND", P),
    (99, "POSITION_OUT_OF_RANGE", P),
    (100, "UNKNOWN_TOPIC_ID", M),
    (101, "DUPLICATE_BROKER_REGISTRATION", P),
    (102, "BROKER_ID_NOT_REGISTERED", P),
    (103, "INCONSISTENT_TOPIC_ID", M),
    (104, "INCONSISTENT_CLUSTER_ID", P),
    (105, "TRANSACTIONAL_ID_NOT_FOUND", P),
    (106, "FETCH_SESSION_TOPIC_ID_ERROR", R),
    (107, "INELIGIBLE_REPLICA", P),
    (108, "NEW_LEADER_ELECTED", P),
    (109, "OFFSET_MOVED_TO_TIERED_STORAGE", P),
    (110, "FENCED_MEMBER_EPOCH", P),
    (111, "UNRELEASED_INSTANCE_ID", P),
    (112, "UNSUPPORTED_ASSIGNOR", P),
    (113, "STALE_MEMBER_EPOCH", P),
    (114, "MISMATCHED_ENDPOINT_TYPE", P),
    (115, "UNSUPPORTED_ENDPOINT_TYPE", P),
    (116, "UNKNOWN_CONTROLLER_ID", P),
    (117, "UNKNOWN_SUBSCRIPTION_ID", P),
    (118, "TELEMETRY_TOO_LARGE", P),
    (119, "INVALID_REGISTRATION", P),
    // KIP-890: the coordinator asks the producer to abort.
    (120, "TRANSACTION_ABORTABLE", A),
    (121, "INVALID_RECORD_STATE", P),
    (122, "SHARE_SESSION_NOT_FOUND", R),
    (123, "INVALID_SHARE_SESSION_EPOCH", R),
    (124, "FENCED_STATE_EPOCH", P),
    (125, "INVALID_VOTER_KEY", P),
    (126, "DUPLICATE_VOTER", P),
    (127, "VOTER_NOT_FOUND", P),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_dense_from_minus_one() {
        for (index, entry) in TABLE.iter().enumerate() {
            assert_eq!(i32::from(entry.0), index as i32 - 1, "{}", entry.1);
        }
    }

    #[test]
    fn classes_of_codes_later_layers_depend_on() {
        assert_eq!(KafkaCode(6).class(), ErrorClass::RefreshMetadata);
        assert_eq!(KafkaCode(3).class(), ErrorClass::RefreshMetadata);
        assert_eq!(KafkaCode(51).class(), ErrorClass::Retriable);
        assert_eq!(KafkaCode(90).class(), ErrorClass::Fatal);
        assert_eq!(KafkaCode(53).class(), ErrorClass::Fatal);
        assert_eq!(KafkaCode(120).class(), ErrorClass::Abortable);
        assert_eq!(KafkaCode(0).class(), ErrorClass::None);
        assert_eq!(KafkaCode(16).class(), ErrorClass::RefreshMetadata);
    }

    #[test]
    fn unknown_codes_are_permanent_and_named() {
        assert_eq!(KafkaCode(999).class(), ErrorClass::Permanent);
        assert_eq!(KafkaCode(-7).name(), "UNKNOWN_ERROR_CODE");
        assert_eq!(KafkaCode(6).to_string(), "NOT_LEADER_OR_FOLLOWER (6)");
    }
}
