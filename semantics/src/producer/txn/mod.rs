//! The transactional producer (KIP-98, transactions v1): the coordinator
//! calls around the idempotent producer, driven by the [`state`] machine.
//!
//! - `init` — InitProducerId with the transactional id: bumps the epoch,
//!   fencing any older producer with the id, and aborts its open transaction.
//! - `begin` — local only; re-initialises first when the last outcome is unknown.
//! - `ensure_partition` — AddPartitionsToTxn before the first record of a
//!   partition joins the transaction (the sender never sends it earlier).
//! - `send_offsets` — AddOffsetsToTxn, then TxnOffsetCommit at the group
//!   coordinator with the consumer's generation (KIP-447).
//! - `end` — after every record of the transaction settled: EndTxn.
//!
//! Errors follow the protocol's classes: coordinator moves and
//! CONCURRENT_TRANSACTIONS are retried after finding the coordinator again;
//! fencing and authorization are fatal; a failed record makes the transaction
//! abortable. KIP-890 (transactions v2) is not used: the version caps keep
//! EndTxn ≤ 4 and Produce ≤ 11, the v1 path every broker accepts.

mod requests;
pub mod state;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_wire::codec::api_name;
use kafka_wire::conn::{ConnectionConfig, TlsConfig};
use kafka_wire::protocol::protocol::Request;
use kafka_wire::{ConnError, Connection, ErrorClass, KafkaCode};
use tracing::{debug, info, warn};

pub use requests::ProducerIdentity;
pub use state::{transition, InvalidTransition, TxnEvent, TxnState};

use crate::cluster::{Cluster, Coordinator, CoordinatorError, CoordinatorKind};
use crate::config::ProducerConfig;
use crate::consumer::{GroupMetadata, TopicPartition};

/// Why a transactional call failed, and what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// Something in the transaction failed: call `abort_transaction`, then
    /// start over (the consumed records are processed again).
    #[error("transaction failed and must be aborted: {0}")]
    Abortable(String),
    /// Fenced by a newer producer with the same `transactional.id`, or not
    /// authorised: this producer can do nothing more; create a new one.
    #[error("transactional producer failed for good: {0}")]
    Fatal(String),
    /// The commit or abort may or may not have been applied (it timed out or
    /// the connection broke). The producer re-initialises before the next
    /// transaction, so a late EndTxn cannot touch it.
    #[error("transaction outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// The call is not allowed now (e.g. `send` outside a transaction).
    #[error(transparent)]
    InvalidState(InvalidTransition),
    /// `transactional.id` is not set.
    #[error("not a transactional producer: set transactional.id")]
    NotTransactional,
}

impl From<InvalidTransition> for TransactionError {
    /// Every call after a fatal error reports it as fatal.
    fn from(refused: InvalidTransition) -> Self {
        if refused.from == TxnState::FatalError {
            Self::Fatal(format!(
                "{refused}: the producer was fenced or failed; create a new one"
            ))
        } else {
            Self::InvalidState(refused)
        }
    }
}

impl TransactionError {
    /// Whether `abort_transaction` and a new transaction are the way on.
    pub fn is_abortable(&self) -> bool {
        matches!(self, Self::Abortable(_) | Self::OutcomeUnknown(_))
    }

    /// Whether the producer is unusable.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::Fatal(_))
    }
}

/// How a coordinator answer is handled.
enum Verdict {
    Retry,
    FindCoordinator,
    Abortable(KafkaCode),
    Fatal(KafkaCode),
}

/// CONCURRENT_TRANSACTIONS: the coordinator is still completing the
/// previous transaction of this id.
const CONCURRENT_TRANSACTIONS: KafkaCode = KafkaCode(51);

/// Backoff while the previous transaction completes (Java's TransactionManager
/// retries AddPartitionsToTxn after 20 ms in that case).
const CONCURRENT_TRANSACTIONS_BACKOFF: Duration = Duration::from_millis(20);

/// Classifies a transaction coordinator error code (Java's TransactionManager).
fn classify(code: KafkaCode) -> Verdict {
    match code.0 {
        15 | 16 => Verdict::FindCoordinator,
        // COORDINATOR_LOAD_IN_PROGRESS, CONCURRENT_TRANSACTIONS, UNKNOWN_TOPIC_OR_PARTITION
        14 | 51 | 3 => Verdict::Retry,
        // INVALID_PRODUCER_EPOCH, PRODUCER_FENCED, TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        // INVALID_TXN_STATE, UNSUPPORTED_FOR_MESSAGE_FORMAT
        47 | 90 | 53 | 48 | 43 => Verdict::Fatal(code),
        // TOPIC/GROUP_AUTHORIZATION_FAILED, UNKNOWN_PRODUCER_ID, KIP-447 generation fencing
        29 | 30 | 59 | 22 | 25 | 82 => Verdict::Abortable(code),
        _ => match code.class() {
            ErrorClass::Retriable | ErrorClass::RefreshMetadata => Verdict::Retry,
            ErrorClass::Fatal => Verdict::Fatal(code),
            _ => Verdict::Abortable(code),
        },
    }
}

struct Inner {
    state: TxnState,
    producer: ProducerIdentity,
    /// Partitions in the open transaction, by topic: looked up per record
    /// without building a key.
    partitions: HashMap<String, HashSet<i32>>,
    /// The coordinator may know of the open transaction: an
    /// AddPartitionsToTxn or AddOffsetsToTxn was answered, or its outcome is
    /// unknown. Then only EndTxn ends it (a transaction of offsets alone
    /// included); otherwise the coordinator would abort it at
    /// `transaction.timeout.ms` and fence the producer.
    started: bool,
}

/// One transactional id's coordinator protocol.
pub struct TransactionManager {
    transactional_id: String,
    timeout_ms: i32,
    retry: crate::retry::RetryPolicy,
    /// How long one coordinator call keeps retrying.
    call_deadline: Duration,
    coordinator: Coordinator,
    group_coordinators: Mutex<HashMap<String, Arc<Coordinator>>>,
    cluster: Arc<Cluster>,
    connection_config: ConnectionConfig,
    tls: Option<TlsConfig>,
    request_timeout: Duration,
    inner: Mutex<Inner>,
    /// Serialises coordinator operations (adds, offsets, EndTxn, init).
    ops: tokio::sync::Mutex<()>,
}

impl TransactionManager {
    /// A manager for the configuration's `transactional.id` (`None` without
    /// one); nothing is contacted yet. Coordinator calls retry for at most
    /// `delivery.timeout.ms`.
    pub fn new(
        config: &ProducerConfig,
        cluster: Arc<Cluster>,
        connection_config: ConnectionConfig,
    ) -> Option<Self> {
        let transactional_id = config.transactional_id.clone()?;
        Some(Self {
            coordinator: Coordinator::new(
                transactional_id.clone(),
                CoordinatorKind::Transaction,
                cluster.clone(),
                connection_config.clone(),
                config.tls.clone(),
                config.request_timeout,
            ),
            transactional_id,
            timeout_ms: i32::try_from(config.transaction_timeout.as_millis()).unwrap_or(i32::MAX),
            retry: crate::retry::RetryPolicy::backoff_between(
                config.retry_backoff,
                config.retry_backoff_max,
            ),
            call_deadline: config.delivery_timeout,
            group_coordinators: Mutex::new(HashMap::new()),
            cluster,
            connection_config,
            tls: config.tls.clone(),
            request_timeout: config.request_timeout,
            inner: Mutex::new(Inner {
                state: TxnState::Uninitialized,
                producer: (-1, -1),
                partitions: HashMap::new(),
                started: false,
            }),
            ops: tokio::sync::Mutex::new(()),
        })
    }

    /// Current state.
    pub fn state(&self) -> TxnState {
        self.inner.lock().expect("txn lock").state
    }

    /// Producer id and epoch of the current initialisation.
    pub fn producer(&self) -> ProducerIdentity {
        self.inner.lock().expect("txn lock").producer
    }

    /// Applies `event`; refused events leave the state alone.
    pub fn apply(&self, event: TxnEvent) -> Result<TxnState, InvalidTransition> {
        let mut inner = self.inner.lock().expect("txn lock");
        let next = transition(inner.state, event)?;
        debug!(from = ?inner.state, ?event, to = ?next, "transaction state");
        inner.state = next;
        Ok(next)
    }

    /// InitProducerId: a new epoch for the transactional id. Returns the identity.
    pub async fn init(&self) -> Result<ProducerIdentity, TransactionError> {
        self.init_expecting(None).await
    }

    /// The coordinator aborted the open transaction itself (it outlived
    /// `transaction.timeout.ms`) and bumped the epoch; a Produce answered
    /// INVALID_PRODUCER_EPOCH. EndTxn on the old epoch would be refused as
    /// fenced, so the abort ends here and the producer re-initialises
    /// presenting its id and old epoch: the coordinator accepts the epoch it
    /// bumped from, and refuses (PRODUCER_FENCED, fatal) when another producer
    /// with the id took over meanwhile (KIP-588).
    pub async fn recover_from_coordinator_abort(
        &self,
    ) -> Result<ProducerIdentity, TransactionError> {
        let previous = {
            let mut inner = self.inner.lock().expect("txn lock");
            inner.partitions.clear();
            inner.started = false;
            inner.producer
        };
        self.apply(TxnEvent::EndDone)?;
        self.init_expecting(Some(previous)).await
    }

    async fn init_expecting(
        &self,
        previous: Option<ProducerIdentity>,
    ) -> Result<ProducerIdentity, TransactionError> {
        let _op = self.ops.lock().await;
        self.apply(TxnEvent::InitStarted)?;
        let request = requests::init_producer_id(&self.transactional_id, self.timeout_ms, previous);
        let result = self
            .call(&self.coordinator, &request, |r| KafkaCode(r.error_code))
            .await;
        match result {
            Ok(response) => {
                let identity = (response.producer_id.0, response.producer_epoch);
                {
                    let mut inner = self.inner.lock().expect("txn lock");
                    inner.producer = identity;
                    inner.partitions.clear();
                    inner.started = false;
                }
                self.apply(TxnEvent::InitDone)?;
                info!(transactional_id = %self.transactional_id, producer_id = identity.0, epoch = identity.1, "transactions initialised");
                Ok(identity)
            }
            Err(error) => Err(self.fail_with(error, TxnEvent::OutcomeUnknown)),
        }
    }

    /// Adds `topic`/`partition` to the open transaction unless it is in already.
    pub async fn ensure_partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<(), TransactionError> {
        let added = |inner: &Inner| {
            inner
                .partitions
                .get(topic)
                .is_some_and(|p| p.contains(&partition))
        };
        {
            let inner = self.inner.lock().expect("txn lock");
            self.require_open(&inner)?;
            if added(&inner) {
                return Ok(());
            }
        }
        let _op = self.ops.lock().await;
        let producer = {
            let inner = self.inner.lock().expect("txn lock");
            self.require_open(&inner)?;
            if added(&inner) {
                return Ok(());
            }
            inner.producer
        };
        let tp = TopicPartition::new(topic, partition);
        let request =
            requests::add_partitions(&self.transactional_id, producer, std::slice::from_ref(&tp));
        let result = self
            .call(&self.coordinator, &request, requests::add_partitions_error)
            .await;
        self.note_started(&result);
        match result {
            Ok(_) => {
                self.inner
                    .lock()
                    .expect("txn lock")
                    .partitions
                    .entry(tp.topic)
                    .or_default()
                    .insert(partition);
                Ok(())
            }
            Err(error) => Err(self.fail_with(error, TxnEvent::AbortableError)),
        }
    }

    fn require_open(&self, inner: &Inner) -> Result<(), TransactionError> {
        match inner.state {
            TxnState::InTransaction => Ok(()),
            TxnState::FatalError => Err(TransactionError::Fatal(
                "the producer was fenced or failed".into(),
            )),
            TxnState::AbortableError => Err(TransactionError::Abortable(
                "an earlier operation of this transaction failed".into(),
            )),
            state => Err(InvalidTransition {
                from: state,
                event: TxnEvent::Begin,
            }
            .into()),
        }
    }

    /// Puts the consumer's offsets into the open transaction.
    pub async fn send_offsets(
        &self,
        offsets: &[(TopicPartition, i64)],
        group: &GroupMetadata,
    ) -> Result<(), TransactionError> {
        let _op = self.ops.lock().await;
        let producer = {
            let inner = self.inner.lock().expect("txn lock");
            self.require_open(&inner)?;
            inner.producer
        };
        let add = requests::add_offsets(&self.transactional_id, producer, &group.group_id);
        let added = self
            .call(&self.coordinator, &add, |r| KafkaCode(r.error_code))
            .await;
        self.note_started(&added);
        if let Err(error) = added {
            return Err(self.fail_with(error, TxnEvent::AbortableError));
        }
        let coordinator = self.group_coordinator(&group.group_id);
        let commit = requests::txn_offset_commit(&self.transactional_id, producer, group, offsets);
        match self
            .call(&coordinator, &commit, requests::txn_offset_commit_error)
            .await
        {
            Ok(_) => Ok(()),
            Err(error) => Err(self.fail_with(error, TxnEvent::AbortableError)),
        }
    }

    fn group_coordinator(&self, group_id: &str) -> Arc<Coordinator> {
        self.group_coordinators
            .lock()
            .expect("coordinators lock")
            .entry(group_id.to_owned())
            .or_insert_with(|| {
                Arc::new(Coordinator::new(
                    group_id.to_owned(),
                    CoordinatorKind::Group,
                    self.cluster.clone(),
                    self.connection_config.clone(),
                    self.tls.clone(),
                    self.request_timeout,
                ))
            })
            .clone()
    }

    /// Records that the coordinator may know of the transaction once an
    /// AddPartitionsToTxn or AddOffsetsToTxn was answered or may have arrived.
    fn note_started<T>(&self, result: &Result<T, TransactionError>) {
        if matches!(result, Ok(_) | Err(TransactionError::OutcomeUnknown(_))) {
            self.inner.lock().expect("txn lock").started = true;
        }
    }

    /// EndTxn; the caller flushed the transaction's records and applied
    /// `CommitStarted` or `AbortStarted`.
    pub async fn end(&self, commit: bool) -> Result<(), TransactionError> {
        let _op = self.ops.lock().await;
        let (producer, started) = {
            let inner = self.inner.lock().expect("txn lock");
            (inner.producer, inner.started)
        };
        // Nothing was added: the coordinator knows of no transaction.
        if !started {
            self.apply(TxnEvent::EndDone)?;
            return Ok(());
        }
        let request = requests::end_txn(&self.transactional_id, producer, commit);
        match self
            .call_noting_doubt(&self.coordinator, &request, |r| KafkaCode(r.error_code))
            .await
        {
            Ok((_, attempt_in_doubt)) => {
                {
                    let mut inner = self.inner.lock().expect("txn lock");
                    inner.partitions.clear();
                    inner.started = false;
                }
                // An unanswered attempt may still reach the coordinator after
                // the next transaction began on this epoch and end it there
                // (a torn transaction): re-initialise before the next one.
                // Transactions v2 (KIP-890) would bump the epoch on every
                // EndTxn instead.
                let event = if attempt_in_doubt {
                    TxnEvent::OutcomeUnknown
                } else {
                    TxnEvent::EndDone
                };
                self.apply(event)?;
                Ok(())
            }
            Err(error) => Err(self.fail_with(error, TxnEvent::OutcomeUnknown)),
        }
    }

    /// Moves to the state `error` calls for and returns it. An unknown
    /// outcome (timeout, broken connection) uses `on_unknown`.
    fn fail_with(&self, error: TransactionError, on_unknown: TxnEvent) -> TransactionError {
        let event = match &error {
            TransactionError::Fatal(_) => TxnEvent::FatalError,
            TransactionError::Abortable(_) => TxnEvent::AbortableError,
            TransactionError::OutcomeUnknown(_) => on_unknown,
            _ => return error,
        };
        if let Err(refused) = self.apply(event) {
            warn!(%refused, %error, "transaction state not changed");
        }
        error
    }

    /// Marks the transaction failed by a record (the sender reported it).
    pub fn record_failed(&self, reason: &str) -> TransactionError {
        let error = TransactionError::Abortable(reason.to_owned());
        let _ = self.apply(TxnEvent::AbortableError);
        error
    }

    /// Sends `request` to `coordinator`, retrying what the protocol says is
    /// retriable until the call deadline.
    async fn call<R, F>(
        &self,
        coordinator: &Coordinator,
        request: &R,
        error_of: F,
    ) -> Result<R::Response, TransactionError>
    where
        R: Request,
        F: Fn(&R::Response) -> KafkaCode,
    {
        self.call_noting_doubt(coordinator, request, error_of)
            .await
            .map(|(response, _)| response)
    }

    /// [`Self::call`], also telling whether an attempt before the answered
    /// one went unanswered (it may still be applied later).
    async fn call_noting_doubt<R, F>(
        &self,
        coordinator: &Coordinator,
        request: &R,
        error_of: F,
    ) -> Result<(R::Response, bool), TransactionError>
    where
        R: Request,
        F: Fn(&R::Response) -> KafkaCode,
    {
        let deadline = Instant::now() + self.call_deadline;
        let mut attempt = 0u32;
        let mut in_doubt: Option<ConnError> = None;
        loop {
            attempt += 1;
            let outcome = match coordinator.connection().await {
                Ok(connection) => self.send_once(&connection, request).await,
                Err(CoordinatorError::Code(code)) => Err(Attempt::Code(code)),
                Err(CoordinatorError::Connection(e)) => Err(Attempt::NotSent(e)),
            };
            let failure = match outcome {
                Ok(response) => {
                    let code = error_of(&response);
                    if code.is_ok() {
                        return Ok((response, in_doubt.is_some()));
                    }
                    Attempt::Code(code)
                }
                Err(failure) => failure,
            };
            let failure_code = match &failure {
                Attempt::Code(code) => Some(*code),
                _ => None,
            };
            match failure {
                Attempt::Code(code) => match classify(code) {
                    Verdict::Fatal(code) => {
                        return Err(TransactionError::Fatal(format!(
                            "{}: {code}",
                            api_name(R::KEY)
                        )))
                    }
                    Verdict::Abortable(code) => {
                        return Err(TransactionError::Abortable(format!(
                            "{}: {code}",
                            api_name(R::KEY)
                        )))
                    }
                    Verdict::FindCoordinator => coordinator.invalidate().await,
                    Verdict::Retry => {}
                },
                // Sent and unanswered: it may have been applied. Resending the
                // same request on the same epoch is safe (the coordinator
                // answers a repeated EndTxn with the outcome it applied), and
                // a definite answer — success, or fenced — is what lets the
                // producer go on. Only when none comes is the outcome unknown.
                Attempt::InDoubt(e) => {
                    warn!(api = api_name(R::KEY), error = %e, "no answer from the transaction coordinator; retrying");
                    coordinator.invalidate().await;
                    in_doubt = Some(e);
                }
                Attempt::NotSent(e) => {
                    debug!(error = %e, "coordinator not reachable");
                    coordinator.invalidate().await;
                }
            }
            let backoff = if matches!(failure_code, Some(CONCURRENT_TRANSACTIONS)) {
                // The previous transaction's markers are still being written:
                // usually a matter of milliseconds, as the Java client
                // assumes (20 ms for AddPartitionsToTxn). Backing off the
                // full retry.backoff.ms would cap a producer near ten
                // transactions a second on Apache Kafka.
                CONCURRENT_TRANSACTIONS_BACKOFF.min(self.retry.initial)
            } else {
                self.retry.backoff(attempt.max(1))
            };
            if Instant::now() + backoff >= deadline {
                return Err(TransactionError::OutcomeUnknown(format!(
                    "{} did not succeed within {} ms{}",
                    api_name(R::KEY),
                    self.call_deadline.as_millis(),
                    in_doubt
                        .map(|e| format!(" (a request went unanswered: {e})"))
                        .unwrap_or_default()
                )));
            }
            tokio::time::sleep(backoff).await;
        }
    }

    async fn send_once<R: Request>(
        &self,
        connection: &Connection,
        request: &R,
    ) -> Result<R::Response, Attempt> {
        connection.send(request).await.map_err(|e| {
            if e.outcome_unknown() {
                Attempt::InDoubt(e)
            } else {
                Attempt::NotSent(e)
            }
        })
    }
}

enum Attempt {
    Code(KafkaCode),
    InDoubt(ConnError),
    NotSent(ConnError),
}
