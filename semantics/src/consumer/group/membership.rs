//! Group membership of the classic protocol as a pure state machine: which
//! request comes next and what each error code means for this member.
//!
//! ```text
//!             join            JoinGroup ok            SyncGroup ok
//!  Unjoined ───────► Joining ─────────────► Syncing ─────────────► Stable
//!     ▲               │ ▲ MEMBER_ID_REQUIRED    │                    │
//!     │               │ └── (retry with id)     │ REBALANCE_IN_      │ Heartbeat:
//!     │               │                         │ PROGRESS           │ REBALANCE_IN_PROGRESS
//!     └───────────────┴─────────────────────────┴────────────────────┘
//!        UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION: generation reset, partitions lost
//!        FENCED_INSTANCE_ID and authorization errors: Fatal (KIP-345)
//! ```
//!
//! The classification follows the Java client's `AbstractCoordinator`.

use kafka_wire::{ErrorClass, KafkaCode};

/// No generation: the member is not (or no longer) part of one.
pub const NO_GENERATION: i32 = -1;

const UNKNOWN_MEMBER_ID: i16 = 25;
const ILLEGAL_GENERATION: i16 = 22;
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;
const FENCED_INSTANCE_ID: i16 = 82;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;

/// Where the member is in the join protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Not in a generation; the next step is JoinGroup.
    Unjoined,
    /// JoinGroup sent.
    Joining,
    /// JoinGroup answered; SyncGroup is next.
    Syncing {
        /// Whether this member computes the assignment.
        leader: bool,
    },
    /// Assigned; heartbeats keep the membership.
    Stable,
    /// The member cannot continue (fenced static member, authorization …).
    Fatal(KafkaCode),
}

/// What the group task should do after a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Continue with the request the phase calls for.
    Proceed,
    /// Send the same request again after the retry backoff.
    RetryAfterBackoff,
    /// Look the coordinator up again, then rejoin (or retry).
    FindCoordinator,
    /// Rejoin: a rebalance is under way; owned partitions are still ours.
    Rejoin,
    /// Rejoin as a fresh member: owned partitions are lost, not revoked —
    /// another member may already have them, so nothing may be committed.
    RejoinLost,
    /// Stop: the error will not go away.
    Fatal(KafkaCode),
}

/// One member's view of its group membership.
#[derive(Debug, Clone)]
pub struct Membership {
    member_id: String,
    instance_id: Option<String>,
    generation: i32,
    protocol: Option<String>,
    phase: Phase,
}

impl Membership {
    /// A member that has not joined yet.
    pub fn new(instance_id: Option<String>) -> Self {
        Self {
            member_id: String::new(),
            instance_id,
            generation: NO_GENERATION,
            protocol: None,
            phase: Phase::Unjoined,
        }
    }

    /// Current phase.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// Member id the coordinator gave (empty before the first join).
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// `group.instance.id`, for static members.
    pub fn instance_id(&self) -> Option<&str> {
        self.instance_id.as_deref()
    }

    /// Generation id, [`NO_GENERATION`] outside one.
    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// Protocol (assignor) the coordinator chose for this generation.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Sends JoinGroup next.
    pub fn start_join(&mut self) {
        if !matches!(self.phase, Phase::Fatal(_)) {
            self.phase = Phase::Joining;
        }
    }

    /// Applies a JoinGroup response.
    pub fn on_join(
        &mut self,
        code: KafkaCode,
        member_id: &str,
        generation: i32,
        leader_id: &str,
        protocol: Option<&str>,
    ) -> Step {
        match code.0 {
            0 => {
                self.member_id = member_id.to_owned();
                self.generation = generation;
                self.protocol = protocol.map(str::to_owned);
                self.phase = Phase::Syncing {
                    leader: leader_id == member_id,
                };
                Step::Proceed
            }
            // KIP-394: the first JoinGroup only hands out the member id.
            MEMBER_ID_REQUIRED => {
                self.member_id = member_id.to_owned();
                Step::Proceed
            }
            UNKNOWN_MEMBER_ID => {
                self.reset();
                self.phase = Phase::Joining;
                Step::Proceed
            }
            REBALANCE_IN_PROGRESS | COORDINATOR_LOAD_IN_PROGRESS => Step::RetryAfterBackoff,
            _ => self.common(code),
        }
    }

    /// Applies a SyncGroup response.
    pub fn on_sync(&mut self, code: KafkaCode) -> Step {
        match code.0 {
            0 => {
                self.phase = Phase::Stable;
                Step::Proceed
            }
            REBALANCE_IN_PROGRESS => {
                self.phase = Phase::Unjoined;
                Step::Rejoin
            }
            _ => self.common(code),
        }
    }

    /// Applies a Heartbeat response.
    pub fn on_heartbeat(&mut self, code: KafkaCode) -> Step {
        match code.0 {
            0 => Step::Proceed,
            REBALANCE_IN_PROGRESS => {
                self.phase = Phase::Unjoined;
                Step::Rejoin
            }
            _ => self.common(code),
        }
    }

    /// Applies an OffsetCommit error: the generation errors mean this member
    /// was evicted and its partitions are lost.
    pub fn on_commit_error(&mut self, code: KafkaCode) -> Step {
        match code.0 {
            REBALANCE_IN_PROGRESS => {
                if self.phase == Phase::Stable {
                    self.phase = Phase::Unjoined;
                }
                Step::Rejoin
            }
            UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION | FENCED_INSTANCE_ID => self.common(code),
            _ => Step::Proceed,
        }
    }

    /// Whether an OffsetCommit error says the group moved on without this
    /// member's generation (see [`on_commit_error`](Self::on_commit_error)).
    pub fn is_generation_error(code: KafkaCode) -> bool {
        matches!(
            code.0,
            REBALANCE_IN_PROGRESS | UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION | FENCED_INSTANCE_ID
        )
    }

    /// The member left the group (LeaveGroup sent, or closing).
    pub fn leave(&mut self) {
        self.reset();
    }

    /// Errors with the same meaning on every group request.
    fn common(&mut self, code: KafkaCode) -> Step {
        match code.0 {
            UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION => {
                self.reset();
                Step::RejoinLost
            }
            COORDINATOR_NOT_AVAILABLE | NOT_COORDINATOR => {
                if self.phase != Phase::Stable {
                    self.phase = Phase::Unjoined;
                }
                Step::FindCoordinator
            }
            FENCED_INSTANCE_ID => self.fail(code),
            _ => match code.class() {
                ErrorClass::Retriable | ErrorClass::RefreshMetadata => Step::RetryAfterBackoff,
                _ => self.fail(code),
            },
        }
    }

    fn fail(&mut self, code: KafkaCode) -> Step {
        self.phase = Phase::Fatal(code);
        Step::Fatal(code)
    }

    /// KIP-345: a static member keeps no member id across resets either; the
    /// coordinator maps its instance id to the new one.
    fn reset(&mut self) {
        self.member_id.clear();
        self.generation = NO_GENERATION;
        self.protocol = None;
        self.phase = Phase::Unjoined;
    }
}

#[cfg(test)]
#[path = "membership_tests.rs"]
mod tests;
