//! Finding a group's (or a transactional id's) coordinator and keeping one
//! connection to it.

use std::sync::Arc;
use std::time::Duration;

use kafka_wire::conn::{connect, ConnectionConfig, TlsConfig};
use kafka_wire::protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_wire::protocol::protocol::StrBytes;
use kafka_wire::{ConnError, Connection, KafkaCode};
use tracing::debug;

use super::Cluster;

/// Which kind of coordinator (FindCoordinator `key_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordinatorKind {
    /// A consumer group's.
    Group,
    /// A transactional id's.
    Transaction,
}

/// Why the coordinator could not be reached.
#[derive(Debug, Clone)]
pub enum CoordinatorError {
    /// FindCoordinator answered with an error code.
    Code(KafkaCode),
    /// The connection failed.
    Connection(ConnError),
}

/// The coordinator of one key, found on demand and cached until invalidated.
pub struct Coordinator {
    key: String,
    kind: CoordinatorKind,
    cluster: Arc<Cluster>,
    connection_config: ConnectionConfig,
    tls: Option<TlsConfig>,
    current: tokio::sync::Mutex<Option<Connection>>,
}

impl Coordinator {
    /// A coordinator for `key`, looked up through `cluster`. Requests on its
    /// connection may wait up to `request_timeout` (JoinGroup waits for the
    /// whole rebalance).
    pub fn new(
        key: String,
        kind: CoordinatorKind,
        cluster: Arc<Cluster>,
        mut connection_config: ConnectionConfig,
        tls: Option<TlsConfig>,
        request_timeout: Duration,
    ) -> Self {
        connection_config.request_timeout = request_timeout;
        Self {
            key,
            kind,
            cluster,
            connection_config,
            tls,
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// A healthy connection to the coordinator, looked up if needed.
    pub async fn connection(&self) -> Result<Connection, CoordinatorError> {
        let mut current = self.current.lock().await;
        if let Some(connection) = current.as_ref().filter(|c| !c.is_poisoned()) {
            return Ok(connection.clone());
        }
        let address = self.find().await?;
        debug!(key = %self.key, address, "coordinator found");
        let connection = connect(&address, self.tls.as_ref(), self.connection_config.clone())
            .await
            .map_err(CoordinatorError::Connection)?;
        *current = Some(connection.clone());
        Ok(connection)
    }

    /// Forgets the coordinator (NOT_COORDINATOR, timeouts): the next call looks it up.
    pub async fn invalidate(&self) {
        *self.current.lock().await = None;
    }

    async fn find(&self) -> Result<String, CoordinatorError> {
        let connection = self
            .cluster
            .any_connection()
            .await
            .map_err(CoordinatorError::Connection)?;
        let version = connection
            .versions()
            .version_for::<FindCoordinatorRequest>()
            .map_err(|e| CoordinatorError::Connection(e.into()))?;
        let request = find_coordinator_request(self.kind, &self.key, version);
        let response = connection
            .send_version(&request, version)
            .await
            .map_err(CoordinatorError::Connection)?;
        let (node_id, address) = coordinator_in(response, version)?;
        // The address Metadata advertises for that node wins: it is the one
        // clients are meant to use (a proxy, a NAT), and some brokers answer
        // FindCoordinator with their listener's address instead.
        Ok(self.cluster.broker_address(node_id).unwrap_or(address))
    }
}

/// FindCoordinator for one `key` of `kind`, shaped for `version`.
pub fn find_coordinator_request(
    kind: CoordinatorKind,
    key: &str,
    version: i16,
) -> FindCoordinatorRequest {
    let key_type = match kind {
        CoordinatorKind::Group => 0,
        CoordinatorKind::Transaction => 1,
    };
    let key = StrBytes::from_string(key.to_owned());
    let mut request = FindCoordinatorRequest::default().with_key_type(key_type);
    // v4 batches keys (KIP-699).
    if version >= 4 {
        request.coordinator_keys = vec![key];
    } else {
        request.key = key;
    }
    request
}

/// The coordinator's node id and address in a FindCoordinator answer of
/// `version` (one key), or its error code.
pub fn coordinator_in(
    response: FindCoordinatorResponse,
    version: i16,
) -> Result<(i32, String), CoordinatorError> {
    let (code, node_id, host, port) = if version >= 4 {
        let coordinator = response
            .coordinators
            .into_iter()
            .next()
            .ok_or(CoordinatorError::Code(KafkaCode(15)))?;
        let c = coordinator;
        (c.error_code, c.node_id.0, c.host, c.port)
    } else {
        let r = response;
        (r.error_code, r.node_id.0, r.host, r.port)
    };
    let code = KafkaCode(code);
    if !code.is_ok() {
        return Err(CoordinatorError::Code(code));
    }
    Ok((node_id, format!("{}:{}", host.as_str(), port)))
}
