//! A KRaft cluster of N combined broker+controller nodes on loopback.
//!
//! Combined nodes rather than a separate controller quorum: three JVMs
//! instead of six on a two-core machine, and killing a node then also takes
//! a controller away, which a three-voter quorum survives as production
//! clusters of combined nodes do.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use kafka_wire::conn::{connect, ConnectionConfig};
use kafka_wire::protocol::messages::{FindCoordinatorRequest, MetadataRequest, MetadataResponse};
use kafka_wire::Connection;
pub use semantics::cluster::CoordinatorKind;
use semantics::cluster::{coordinator_in, find_coordinator_request};

use super::config::{server_properties, ClientSecurity, ClusterSpec, NodePorts};
use super::install::{install_kafka, kafka_version, KafkaInstall};
use super::node::{run_tool, Lifetime, Node};
use super::BrokerError;
use crate::proxy::{FaultProxy, Faults};

/// Certificate chain and private key (PEM files) for a TLS client listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, unencrypted).
    pub key: PathBuf,
    /// Mutual TLS: require a client certificate signed by one of these
    /// (PEM certificates); `None` asks for none.
    pub client_ca: Option<PathBuf>,
}

/// A user the client listener accepts under SASL PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512.
#[derive(Debug, Clone)]
pub struct SaslUser {
    /// User name.
    pub name: String,
    /// Password.
    pub password: String,
}

/// How to start a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Number of nodes (each a broker and a controller).
    pub brokers: usize,
    /// Apache Kafka version; installed first if missing.
    pub version: String,
    /// Serve TLS on the client listener.
    pub tls: Option<TlsFiles>,
    /// Require SASL on the client listener, with these users.
    pub sasl_users: Option<Vec<SaslUser>>,
    /// Put every node behind its own fault proxy (the node advertises the proxy).
    pub proxied: bool,
    /// Working directory; a fresh temporary one (removed on drop) when `None`.
    pub work_dir: Option<PathBuf>,
    /// Kill the nodes when the thread that started them dies (tests).
    pub die_with_parent: bool,
    /// Start the nodes in their own session so they outlive the CLI.
    pub detach: bool,
    /// How long to wait for the cluster, or a restarted node, to be ready.
    pub ready_timeout: Duration,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            brokers: 3,
            version: kafka_version(),
            tls: None,
            sasl_users: None,
            proxied: false,
            work_dir: None,
            die_with_parent: false,
            detach: false,
            ready_timeout: Duration::from_secs(90),
        }
    }
}

impl ClusterOptions {
    /// `n` nodes, everything else default.
    pub fn with_brokers(n: usize) -> Self {
        Self {
            brokers: n,
            ..Self::default()
        }
    }
}

/// A running cluster. Dropping it kills every node unless it was detached.
pub struct Cluster {
    install: KafkaInstall,
    nodes: Vec<Node>,
    proxies: Vec<FaultProxy>,
    work_dir: PathBuf,
    temporary: bool,
    options: ClusterOptions,
    started_in: Duration,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("version", &self.install.version)
            .field("nodes", &self.nodes)
            .field("work_dir", &self.work_dir)
            .finish()
    }
}

impl Cluster {
    /// Installs Kafka if needed, formats and starts every node, and waits
    /// until each lists all N brokers.
    pub async fn start(options: ClusterOptions) -> Result<Self, BrokerError> {
        let started = Instant::now();
        if options.brokers == 0 {
            return Err(BrokerError::Process(
                "a cluster needs at least one node".into(),
            ));
        }
        let install = install_kafka(&options.version)?;
        let (work_dir, temporary) = match &options.work_dir {
            Some(dir) => (dir.clone(), false),
            None => (fresh_work_dir(), true),
        };
        let _ = std::fs::remove_dir_all(&work_dir);
        std::fs::create_dir_all(&work_dir)
            .map_err(BrokerError::io(format!("creating {}", work_dir.display())))?;
        let ports = allocate_ports(options.brokers, options.proxied)?;
        let security = client_security(&options, &work_dir)?;
        let spec = ClusterSpec {
            nodes: ports.clone(),
            security,
        };
        let mut nodes = Vec::with_capacity(options.brokers);
        for (i, ports) in ports.iter().enumerate() {
            let id = i + 1;
            let node = Node::new(id, *ports, work_dir.join(format!("node-{id}")));
            std::fs::create_dir_all(node.dir())
                .map_err(BrokerError::io("creating a node directory"))?;
            std::fs::write(
                node.properties_path(),
                server_properties(&spec, id, &node.data_dir()),
            )
            .map_err(BrokerError::io("writing server.properties"))?;
            nodes.push(node);
        }
        format_storage(&install, &nodes, &options)?;
        let mut cluster = Self {
            install,
            nodes,
            proxies: Vec::new(),
            work_dir,
            temporary,
            options,
            started_in: Duration::ZERO,
        };
        let lifetime = cluster.lifetime();
        for node in &mut cluster.nodes {
            node.spawn(&cluster.install, lifetime)?;
        }
        if cluster.options.proxied {
            for node in &cluster.nodes {
                let upstream = format!("127.0.0.1:{}", node.ports.client);
                let proxy =
                    FaultProxy::start(node.ports.advertised, upstream, Faults::default(), 1)
                        .await
                        .map_err(BrokerError::io("starting a fault proxy"))?;
                cluster.proxies.push(proxy);
            }
        }
        let ids: Vec<usize> = (1..=cluster.nodes.len()).collect();
        cluster.wait_ready(&ids).await?;
        cluster.started_in = started.elapsed();
        Ok(cluster)
    }

    /// How long [`Cluster::start`] took, installation included.
    pub fn start_up_time(&self) -> Duration {
        self.started_in
    }

    /// The Kafka version running.
    pub fn version(&self) -> &str {
        &self.install.version
    }

    /// The client bootstrap list, `127.0.0.1:P1,127.0.0.1:P2,…` (the
    /// proxies' ports when proxied).
    pub fn bootstrap(&self) -> String {
        join_addresses(self.nodes.iter().map(|n| n.ports.advertised))
    }

    /// The nodes' own client ports, bypassing any proxy.
    pub fn direct_bootstrap(&self) -> String {
        join_addresses(self.nodes.iter().map(|n| n.ports.client))
    }

    /// Node ids, 1..=N.
    pub fn node_ids(&self) -> Vec<usize> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// One node.
    pub fn node(&self, id: usize) -> &Node {
        &self.nodes[id - 1]
    }

    /// The working directory (one sub-directory per node).
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// Node `id`'s fault proxy, when proxied.
    pub fn proxy(&self, id: usize) -> Option<&FaultProxy> {
        self.proxies.get(id - 1)
    }

    /// Every fault proxy (empty unless proxied).
    pub fn proxies(&self) -> &[FaultProxy] {
        &self.proxies
    }

    /// Replaces the faults of every proxy (counters start again).
    pub fn set_faults(&self, faults: &Faults) {
        for proxy in &self.proxies {
            proxy.set_faults(faults.clone());
        }
    }

    /// Faults the proxies injected since their faults were last set.
    pub fn proxy_faults(&self) -> u64 {
        self.proxies
            .iter()
            .map(|p| {
                p.stats.dropped_responses.load(Relaxed)
                    + p.stats.dropped_requests.load(Relaxed)
                    + p.stats.delayed_requests.load(Relaxed)
                    + p.stats.chaos_kills.load(Relaxed)
                    + p.stats.blackholed_connections.load(Relaxed)
            })
            .sum()
    }

    /// SIGKILL node `id`: a crash.
    pub fn kill(&mut self, id: usize) {
        self.nodes[id - 1].kill();
    }

    /// SIGTERM node `id` and wait for its controlled shutdown (SIGKILL after 60 s).
    pub async fn stop(&mut self, id: usize) {
        self.nodes[id - 1].stop(Duration::from_secs(60)).await;
    }

    /// SIGSTOP node `id`.
    pub fn pause(&mut self, id: usize) -> bool {
        self.nodes[id - 1].pause()
    }

    /// SIGCONT node `id`.
    pub fn resume(&mut self, id: usize) -> bool {
        self.nodes[id - 1].resume()
    }

    /// Starts node `id` again on its own data (after `kill` or `stop`; a
    /// running node is killed first) and waits until it is back in the cluster.
    pub async fn restart(&mut self, id: usize) -> Result<(), BrokerError> {
        let lifetime = self.lifetime();
        let node = &mut self.nodes[id - 1];
        node.kill();
        node.spawn(&self.install, lifetime)?;
        self.wait_ready(&[id]).await
    }

    /// The node leading `topic`/`partition`, if it has a leader.
    pub async fn leader_of(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Option<usize>, BrokerError> {
        let connection = self.any_node().await?;
        let leader = crate::wire_ops::partition_leader(&connection, topic, partition)
            .await
            .map_err(|e| BrokerError::Lookup(e.to_string()))?;
        Ok(leader.and_then(|(id, _)| usize::try_from(id).ok()))
    }

    /// The node coordinating `key` (a group id or a transactional id),
    /// waiting while the coordinator is still being loaded.
    pub async fn coordinator(
        &self,
        kind: CoordinatorKind,
        key: &str,
    ) -> Result<usize, BrokerError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let connection = self.any_node().await?;
            let version = connection
                .versions()
                .version_for::<FindCoordinatorRequest>()
                .map_err(|e| BrokerError::Lookup(e.to_string()))?;
            let response = connection
                .send_version(&find_coordinator_request(kind, key, version), version)
                .await
                .map_err(|e| BrokerError::Lookup(format!("FindCoordinator: {e}")))?;
            match coordinator_in(response, version) {
                Ok((node, _)) => {
                    return usize::try_from(node)
                        .map_err(|_| BrokerError::Lookup(format!("coordinator node id {node}")))
                }
                Err(error) if Instant::now() > deadline => {
                    return Err(BrokerError::Lookup(format!(
                        "FindCoordinator({key}) kept failing: {error:?}"
                    )))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Leaves the nodes running when this handle is dropped; returns their
    /// pids by node id.
    pub fn detach(mut self) -> Vec<u32> {
        self.options.detach = true;
        self.nodes.iter_mut().filter_map(Node::detach).collect()
    }

    fn lifetime(&self) -> Lifetime {
        Lifetime {
            die_with_parent: self.options.die_with_parent,
            detach: self.options.detach,
        }
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.log_path().display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Waits until each node of `ids` answers Metadata on its internal
    /// listener and lists every node of the cluster as a live broker.
    async fn wait_ready(&mut self, ids: &[usize]) -> Result<(), BrokerError> {
        let deadline = Instant::now() + self.options.ready_timeout;
        let want = self.nodes.len();
        for &id in ids {
            loop {
                let node = &mut self.nodes[id - 1];
                if let Some(status) = node.exit_status() {
                    return Err(BrokerError::Process(format!(
                        "node {id} exited with {status} before it was ready; see {}",
                        node.log_path().display()
                    )));
                }
                let port = node.ports.internal;
                if let Ok(metadata) = metadata_from(port).await {
                    if metadata.brokers.len() >= want {
                        break;
                    }
                }
                if Instant::now() > deadline {
                    return Err(BrokerError::NotReady {
                        what: format!("node {id} of {want}"),
                        seconds: self.options.ready_timeout.as_secs(),
                        logs: self.logs(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// A connection to the internal listener of the first node that answers.
    async fn any_node(&self) -> Result<Connection, BrokerError> {
        for node in &self.nodes {
            if node.pid().is_none() {
                continue;
            }
            let address = format!("127.0.0.1:{}", node.ports.internal);
            if let Ok(connection) = connect(&address, None, probe_config()).await {
                return Ok(connection);
            }
        }
        Err(BrokerError::Lookup("no node of the cluster answers".into()))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.options.detach {
            return;
        }
        for node in &mut self.nodes {
            node.kill();
        }
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.work_dir);
        }
    }
}

fn probe_config() -> ConnectionConfig {
    ConnectionConfig {
        request_timeout: Duration::from_secs(5),
        ..ConnectionConfig::default()
    }
}

/// Metadata (brokers only) from the node whose internal listener is `port`.
async fn metadata_from(port: u16) -> Result<MetadataResponse, BrokerError> {
    let connection = connect(&format!("127.0.0.1:{port}"), None, probe_config())
        .await
        .map_err(|e| BrokerError::Lookup(e.to_string()))?;
    connection
        .send(&MetadataRequest::default().with_topics(Some(Vec::new())))
        .await
        .map_err(|e| BrokerError::Lookup(e.to_string()))
}

fn join_addresses(ports: impl Iterator<Item = u16>) -> String {
    ports
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Free loopback ports for every node, all held at once while choosing so
/// that no two coincide.
fn allocate_ports(nodes: usize, proxied: bool) -> Result<Vec<NodePorts>, BrokerError> {
    let per_node = if proxied { 4 } else { 3 };
    let listeners = (0..nodes * per_node)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(BrokerError::io("finding free ports"))?;
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(BrokerError::io("finding free ports"))?;
    Ok(ports
        .chunks(per_node)
        .map(|p| NodePorts {
            client: p[0],
            internal: p[1],
            controller: p[2],
            advertised: if proxied { p[3] } else { p[0] },
        })
        .collect())
}

/// The client listener's security; with TLS, the key and chain go into one
/// PEM keystore file, as Kafka's PEM key store reads them (KIP-651).
fn client_security(options: &ClusterOptions, dir: &Path) -> Result<ClientSecurity, BrokerError> {
    let tls_truststore = options.tls.as_ref().and_then(|tls| tls.client_ca.clone());
    let tls_keystore = match &options.tls {
        Some(tls) => {
            let mut pem =
                std::fs::read(&tls.key).map_err(BrokerError::io("reading the TLS key"))?;
            pem.extend(
                std::fs::read(&tls.cert).map_err(BrokerError::io("reading the TLS certificate"))?,
            );
            let path = dir.join("keystore.pem");
            std::fs::write(&path, pem).map_err(BrokerError::io("writing keystore.pem"))?;
            Some(path)
        }
        None => None,
    };
    let sasl = options.sasl_users.as_ref().map(|users| {
        users
            .iter()
            .map(|u| (u.name.clone(), u.password.clone()))
            .collect()
    });
    Ok(ClientSecurity {
        tls_keystore,
        tls_truststore,
        sasl,
    })
}

/// Formats every node's storage with one cluster id (in parallel: each is a
/// JVM start), adding the SCRAM credentials of the SASL users.
fn format_storage(
    install: &KafkaInstall,
    nodes: &[Node],
    options: &ClusterOptions,
) -> Result<(), BrokerError> {
    let cluster_id = random_cluster_id();
    let mut scram = Vec::new();
    for user in options.sasl_users.iter().flatten() {
        for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
            scram.push("--add-scram".to_owned());
            scram.push(format!(
                "{mechanism}=[name={},password={}]",
                user.name, user.password
            ));
        }
    }
    let mut children = Vec::new();
    for node in nodes {
        let mut args = vec![
            "format".to_owned(),
            "-t".to_owned(),
            cluster_id.clone(),
            "-c".to_owned(),
            node.properties_path().display().to_string(),
        ];
        args.extend(scram.iter().cloned());
        let log = node.dir().join("format.log");
        children.push((
            run_tool(install, "kafka.tools.StorageTool", &args, &log)?,
            log,
        ));
    }
    for (mut child, log) in children {
        let status = child
            .wait()
            .map_err(BrokerError::io("waiting for the storage tool"))?;
        if !status.success() {
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(BrokerError::Process(format!(
                "formatting KRaft storage failed ({status}): {}",
                output.trim()
            )));
        }
    }
    Ok(())
}

/// A cluster id: 16 random bytes, base64url without padding (Kafka's Uuid
/// text form), the first character a letter so no tool reads it as a flag.
fn random_cluster_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut bytes = [0u8; 16];
    for chunk in bytes.chunks_mut(8) {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    bytes[0] &= 0x3f;
    base64url(&bytes)
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn fresh_work_dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Relaxed);
    std::env::temp_dir().join(format!("kafka-pure-cluster-{}-{n}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_are_kafka_uuids() {
        let id = random_cluster_id();
        assert_eq!(id.len(), 22);
        assert!(id.as_bytes()[0].is_ascii_uppercase(), "{id}");
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(id, random_cluster_id());
    }

    #[test]
    fn base64url_without_padding() {
        assert_eq!(base64url(b"\xfb\xff"), "-_8");
        assert_eq!(base64url(b"Man"), "TWFu");
    }

    #[test]
    fn ports_are_distinct_and_proxied_nodes_advertise_the_proxy() {
        let ports = allocate_ports(3, true).unwrap();
        let mut all: Vec<u16> = ports
            .iter()
            .flat_map(|p| [p.client, p.internal, p.controller, p.advertised])
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 12);
        let direct = allocate_ports(1, false).unwrap();
        assert_eq!(direct[0].advertised, direct[0].client);
    }
}
