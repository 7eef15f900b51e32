//! docker-compose.yml cannot be started here (no Docker engine): its
//! structure is checked instead — services, published ports, and the KRaft
//! settings that make each profile a working cluster.

use std::collections::BTreeMap;

use serde_yaml::Value;

fn compose() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docker-compose.yml");
    let text = std::fs::read_to_string(path).expect("docker-compose.yml at the workspace root");
    let mut value: Value = serde_yaml::from_str(&text).expect("valid YAML");
    value.apply_merge().expect("merge keys resolve");
    value
}

fn env(service: &Value) -> BTreeMap<String, String> {
    let mut env = service["environment"].clone();
    env.apply_merge().unwrap();
    env.as_mapping()
        .expect("environment is a mapping")
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => panic!("unexpected env value {other:?}"),
            };
            (k.as_str().unwrap().to_owned(), value)
        })
        .collect()
}

fn ports(service: &Value) -> Vec<String> {
    service["ports"]
        .as_sequence()
        .map(|p| p.iter().map(|p| p.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

fn profiles(service: &Value) -> Vec<String> {
    service["profiles"]
        .as_sequence()
        .map(|p| p.iter().map(|p| p.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// KRaft, not ZooKeeper: combined roles, a controller listener, a cluster id.
fn assert_kraft(name: &str, env: &BTreeMap<String, String>) {
    assert!(
        env.keys().all(|k| !k.contains("ZOOKEEPER")),
        "{name}: ZooKeeper setting"
    );
    let roles: Vec<&str> = env["KAFKA_PROCESS_ROLES"].split(',').collect();
    assert!(
        roles.contains(&"broker") && roles.contains(&"controller"),
        "{name}: roles {roles:?}"
    );
    assert_eq!(
        env["KAFKA_CONTROLLER_LISTENER_NAMES"], "CONTROLLER",
        "{name}"
    );
    assert!(
        env["KAFKA_LISTENERS"].contains("CONTROLLER://"),
        "{name}: no controller listener"
    );
    assert!(!env["CLUSTER_ID"].is_empty(), "{name}: CLUSTER_ID");
}

#[test]
fn the_default_profile_is_one_kraft_broker_on_localhost_9092() {
    let compose = compose();
    let services = compose["services"].as_mapping().expect("services");
    let default: Vec<&str> = services
        .iter()
        .filter(|(_, s)| profiles(s).is_empty())
        .map(|(name, _)| name.as_str().unwrap())
        .collect();
    assert_eq!(default, ["kafka"], "exactly one service without a profile");
    let kafka = &compose["services"]["kafka"];
    assert!(kafka["image"]
        .as_str()
        .unwrap()
        .starts_with("apache/kafka:"));
    assert_eq!(ports(kafka), ["9092:9092"]);
    let env = env(kafka);
    assert_kraft("kafka", &env);
    assert_eq!(
        env["KAFKA_CONTROLLER_QUORUM_VOTERS"],
        format!("{}@kafka:9093", env["KAFKA_NODE_ID"])
    );
    assert!(env["KAFKA_ADVERTISED_LISTENERS"].contains("localhost:9092"));
    // One broker: internal topics cannot ask for more replicas than exist.
    assert_eq!(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"], "1");
    assert_eq!(env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"], "1");
}

#[test]
fn the_cluster_profile_is_a_three_voter_quorum() {
    let compose = compose();
    let mut node_ids = Vec::new();
    let mut cluster_ids = Vec::new();
    for (i, name) in ["kafka-1", "kafka-2", "kafka-3"].iter().enumerate() {
        let service = &compose["services"][*name];
        assert_eq!(profiles(service), ["cluster"], "{name}");
        let port = 19092 + 10_000 * i;
        assert_eq!(ports(service), [format!("{port}:{port}")], "{name}");
        let env = env(service);
        assert_kraft(name, &env);
        assert!(
            env["KAFKA_ADVERTISED_LISTENERS"].contains(&format!("localhost:{port}")),
            "{name}: advertised {}",
            env["KAFKA_ADVERTISED_LISTENERS"]
        );
        let voters: Vec<&str> = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(',').collect();
        assert_eq!(voters.len(), 3, "{name}: voters {voters:?}");
        assert!(
            voters.contains(&format!("{}@{name}:9093", env["KAFKA_NODE_ID"]).as_str()),
            "{name} votes"
        );
        assert_eq!(env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"], "3");
        node_ids.push(env["KAFKA_NODE_ID"].clone());
        cluster_ids.push(env["CLUSTER_ID"].clone());
    }
    node_ids.sort();
    node_ids.dedup();
    assert_eq!(node_ids.len(), 3, "node ids are unique");
    assert!(
        cluster_ids.windows(2).all(|w| w[0] == w[1]),
        "one cluster id"
    );
}
