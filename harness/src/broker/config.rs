//! Each node's `server.properties`: combined broker+controller nodes of one
//! KRaft quorum, with the settings a production cluster has (replicated
//! internal topics, `min.insync.replicas` 2 from three nodes up, no unclean
//! leader election) and the few a test cluster wants (no initial rebalance
//! delay, thread pools sized for two cores).
//!
//! Three listeners per node: `CLIENT` (what clients are told, possibly a
//! fault proxy's port, possibly TLS or SASL), `INTERNAL` (replication, always
//! plaintext and direct, so proxy faults hit clients only) and `CONTROLLER`.

use std::fmt::Write;
use std::path::PathBuf;

/// Ports of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodePorts {
    /// The client listener.
    pub client: u16,
    /// Replication between brokers.
    pub internal: u16,
    /// The KRaft controller listener.
    pub controller: u16,
    /// The port advertised to clients (a proxy's, or `client`).
    pub advertised: u16,
}

/// Security of the client listener.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientSecurity {
    /// PEM file holding the private key and the certificate chain.
    pub tls_keystore: Option<PathBuf>,
    /// Mutual TLS: PEM certificates of the CAs whose client certificates
    /// the listener requires (`ssl.client.auth=required`).
    pub tls_truststore: Option<PathBuf>,
    /// SASL: PLAIN users (name, password) in the JAAS configuration; SCRAM
    /// users are added when the storage is formatted.
    pub sasl: Option<Vec<(String, String)>>,
}

impl ClientSecurity {
    /// Kafka's name of the client listener's security protocol.
    pub fn protocol(&self) -> &'static str {
        match (self.tls_keystore.is_some(), self.sasl.is_some()) {
            (false, false) => "PLAINTEXT",
            (true, false) => "SSL",
            (false, true) => "SASL_PLAINTEXT",
            (true, true) => "SASL_SSL",
        }
    }
}

/// What every node of one cluster shares.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Ports of every node, by node id 1..=N.
    pub nodes: Vec<NodePorts>,
    /// Client listener security.
    pub security: ClientSecurity,
}

impl ClusterSpec {
    /// `controller.quorum.voters`: every node is a voter.
    fn voters(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}@127.0.0.1:{}", i + 1, p.controller))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// `server.properties` of node `id` (1-based), keeping data in `log_dir`.
pub fn server_properties(spec: &ClusterSpec, id: usize, log_dir: &std::path::Path) -> String {
    let ports = spec.nodes[id - 1];
    let n = spec.nodes.len();
    let replication = n.min(3);
    let min_isr = if n >= 3 { 2 } else { 1 };
    let mut p = String::new();
    let mut set = |key: &str, value: &dyn std::fmt::Display| {
        let _ = writeln!(p, "{key}={value}");
    };
    set("process.roles", &"broker,controller");
    set("node.id", &id);
    set("controller.quorum.voters", &spec.voters());
    set("controller.listener.names", &"CONTROLLER");
    set("inter.broker.listener.name", &"INTERNAL");
    set(
        "listeners",
        &format!(
            "CLIENT://127.0.0.1:{},INTERNAL://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
            ports.client, ports.internal, ports.controller
        ),
    );
    set(
        "advertised.listeners",
        &format!(
            "CLIENT://127.0.0.1:{},INTERNAL://127.0.0.1:{}",
            ports.advertised, ports.internal
        ),
    );
    set(
        "listener.security.protocol.map",
        &format!(
            "CLIENT:{},INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
            spec.security.protocol()
        ),
    );
    set("log.dirs", &log_dir.display());
    // Durability as in production: every internal topic replicated.
    set("default.replication.factor", &replication);
    set("min.insync.replicas", &min_isr);
    set("offsets.topic.replication.factor", &replication);
    set("transaction.state.log.replication.factor", &replication);
    set("transaction.state.log.min.isr", &min_isr);
    set("unclean.leader.election.enable", &false);
    // Fewer internal partitions than the default 50: the first group or
    // transaction of a run waits for them to be created, and 12 still spread
    // coordinators over every node.
    set("offsets.topic.num.partitions", &12);
    set("transaction.state.log.num.partitions", &12);
    set("group.initial.rebalance.delay.ms", &0);
    // Two cores for three brokers and the clients under test.
    set("num.network.threads", &2);
    set("num.io.threads", &4);
    set("background.threads", &4);
    set("num.replica.fetchers", &1);
    set("log.cleaner.threads", &1);
    if let Some(keystore) = &spec.security.tls_keystore {
        set("listener.name.client.ssl.keystore.type", &"PEM");
        set(
            "listener.name.client.ssl.keystore.location",
            &keystore.display(),
        );
    }
    if let Some(truststore) = &spec.security.tls_truststore {
        set("listener.name.client.ssl.client.auth", &"required");
        set("listener.name.client.ssl.truststore.type", &"PEM");
        set(
            "listener.name.client.ssl.truststore.location",
            &truststore.display(),
        );
    }
    if let Some(plain_users) = &spec.security.sasl {
        set(
            "listener.name.client.sasl.enabled.mechanisms",
            &"PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        );
        let users: String = plain_users
            .iter()
            .map(|(name, password)| format!(" user_{name}=\"{password}\""))
            .collect();
        set(
            "listener.name.client.plain.sasl.jaas.config",
            &format!("org.apache.kafka.common.security.plain.PlainLoginModule required{users};"),
        );
        for mechanism in ["scram-sha-256", "scram-sha-512"] {
            set(
                &format!("listener.name.client.{mechanism}.sasl.jaas.config"),
                &"org.apache.kafka.common.security.scram.ScramLoginModule required;",
            );
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(base: u16) -> NodePorts {
        NodePorts {
            client: base,
            internal: base + 1,
            controller: base + 2,
            advertised: base + 3,
        }
    }

    fn value<'a>(properties: &'a str, key: &str) -> Option<&'a str> {
        properties
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
    }

    #[test]
    fn three_nodes_replicate_like_production() {
        let spec = ClusterSpec {
            nodes: vec![ports(100), ports(200), ports(300)],
            security: ClientSecurity::default(),
        };
        let p = server_properties(&spec, 2, std::path::Path::new("/data/2"));
        assert_eq!(value(&p, "node.id"), Some("2"));
        assert_eq!(
            value(&p, "controller.quorum.voters"),
            Some("1@127.0.0.1:102,2@127.0.0.1:202,3@127.0.0.1:302")
        );
        assert_eq!(value(&p, "default.replication.factor"), Some("3"));
        assert_eq!(value(&p, "min.insync.replicas"), Some("2"));
        assert_eq!(value(&p, "transaction.state.log.min.isr"), Some("2"));
        assert_eq!(value(&p, "offsets.topic.replication.factor"), Some("3"));
        assert_eq!(value(&p, "unclean.leader.election.enable"), Some("false"));
        // Clients are told the proxy's port; replication stays direct.
        assert_eq!(
            value(&p, "advertised.listeners"),
            Some("CLIENT://127.0.0.1:203,INTERNAL://127.0.0.1:201")
        );
        assert_eq!(value(&p, "log.dirs"), Some("/data/2"));
    }

    #[test]
    fn one_node_cannot_ask_for_more_replicas_than_it_has() {
        let spec = ClusterSpec {
            nodes: vec![ports(100)],
            security: ClientSecurity::default(),
        };
        let p = server_properties(&spec, 1, std::path::Path::new("/d"));
        assert_eq!(value(&p, "default.replication.factor"), Some("1"));
        assert_eq!(value(&p, "min.insync.replicas"), Some("1"));
        assert_eq!(value(&p, "transaction.state.log.min.isr"), Some("1"));
    }

    #[test]
    fn sasl_over_tls_configures_the_client_listener_only() {
        let spec = ClusterSpec {
            nodes: vec![ports(100)],
            security: ClientSecurity {
                tls_keystore: Some("/certs/broker.pem".into()),
                tls_truststore: None,
                sasl: Some(vec![("alice".into(), "secret".into())]),
            },
        };
        let p = server_properties(&spec, 1, std::path::Path::new("/d"));
        assert_eq!(
            value(&p, "listener.security.protocol.map"),
            Some("CLIENT:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT")
        );
        assert!(value(&p, "listener.name.client.plain.sasl.jaas.config")
            .unwrap()
            .contains("user_alice=\"secret\""));
        assert_eq!(
            value(&p, "listener.name.client.ssl.keystore.location"),
            Some("/certs/broker.pem")
        );
        assert_eq!(value(&p, "listener.name.client.ssl.client.auth"), None);
    }

    #[test]
    fn mutual_tls_requires_client_certificates_of_the_truststore() {
        let spec = ClusterSpec {
            nodes: vec![ports(100)],
            security: ClientSecurity {
                tls_keystore: Some("/certs/broker.pem".into()),
                tls_truststore: Some("/certs/clients-ca.pem".into()),
                sasl: None,
            },
        };
        let p = server_properties(&spec, 1, std::path::Path::new("/d"));
        assert_eq!(
            value(&p, "listener.name.client.ssl.client.auth"),
            Some("required")
        );
        assert_eq!(
            value(&p, "listener.name.client.ssl.truststore.location"),
            Some("/certs/clients-ca.pem")
        );
        assert_eq!(
            value(&p, "listener.security.protocol.map"),
            Some("CLIENT:SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT")
        );
    }
}
