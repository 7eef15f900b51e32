//! Consumer configuration with the Kafka property names.
//!
//! | key | default | notes |
//! |---|---|---|
//! | `bootstrap.servers` (`metadata.broker.list`) | required | `host:port,…` |
//! | `client.id` | `kafka-pure` | |
//! | `group.id` | none | required for `subscribe` and for commits |
//! | `group.instance.id` | none | static membership (KIP-345) |
//! | `auto.offset.reset` | `latest` | `earliest`, `latest`, `none`/`error` (also `smallest`/`largest`) |
//! | `enable.auto.commit` | `true` | commits what was processed |
//! | `auto.commit.interval.ms` | 5000 | |
//! | `isolation.level` | `read_uncommitted` | or `read_committed` |
//! | `fetch.min.bytes` / `fetch.max.bytes` | 1 / 52428800 | |
//! | `fetch.max.wait.ms` (`fetch.wait.max.ms`) | 500 | |
//! | `max.partition.fetch.bytes` | 1048576 | |
//! | `queued.max.messages.kbytes` | 65536 | prefetched bytes waiting for the application |
//! | `enable.fetch.sessions` | `false` | incremental fetch sessions (KIP-227) with brokers that speak Fetch v7+; this client's own key, as franz-go's `DisableFetchSessions`; off by default until a stall under rebalances is found (README) |
//! | `session.timeout.ms` / `heartbeat.interval.ms` | 45000 / 3000 | |
//! | `max.poll.interval.ms` | 300000 | the JoinGroup rebalance timeout; a member that does not poll for this long leaves the group |
//! | `metadata.max.age.ms` | 300000 | how often the group leader checks subscribed topics for new partitions or new topics |
//! | `partition.assignment.strategy` | `range,cooperative-sticky` | names or Java class names; first is preferred |
//! | `check.crcs` | `true` | CRC-32C of every fetched batch |
//! | `request.timeout.ms` | 30000 | |
//! | `retry.backoff.ms` / `retry.backoff.max.ms` | 100 / 1000 | wait before retrying a failed lookup, commit or fetch, doubling with ±20 % jitter (KIP-580) |
//! | `reconnect.backoff.ms` / `reconnect.backoff.max.ms` | 50 / 1000 | wait before reconnecting to a broker whose last attempt failed, doubling with ±20 % jitter |
//! | `socket.connection.setup.timeout.ms` | 10000 | TCP connect and TLS handshake to one broker (KIP-601) |
//! | `allow.auto.create.topics` | `false` | |
//! | `security.protocol`, `sasl.*`, `ssl.*` | `PLAINTEXT` | as for the producer |

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_wire::conn::{SaslConfig, TlsConfig};

use crate::config::{
    boolean, invalid, millis, number, positive, positive_millis, properties_of, servers, with_env,
    ConfigError, Security, IGNORED_KEYS,
};

/// Where to start when a partition has no committed offset (or it is out of range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// The log start.
    Earliest,
    /// The end: only records written from now on.
    Latest,
    /// No reset: the partition reports an error.
    None,
}

/// `isolation.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationLevel {
    /// Every record, including those of open and aborted transactions.
    ReadUncommitted,
    /// Only committed records, up to the last stable offset.
    ReadCommitted,
}

impl IsolationLevel {
    /// The value in Fetch and ListOffsets requests.
    pub fn wire_value(self) -> i8 {
        match self {
            Self::ReadUncommitted => 0,
            Self::ReadCommitted => 1,
        }
    }
}

/// Consumer settings. Build with [`ConsumerConfig::from_properties`] or serde.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// `bootstrap.servers`.
    pub bootstrap_servers: Vec<String>,
    /// `client.id`.
    pub client_id: String,
    /// `group.id`.
    pub group_id: Option<String>,
    /// `group.instance.id` (static membership).
    pub group_instance_id: Option<String>,
    /// `auto.offset.reset`.
    pub auto_offset_reset: OffsetReset,
    /// `enable.auto.commit`.
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms`.
    pub auto_commit_interval: Duration,
    /// `isolation.level`.
    pub isolation_level: IsolationLevel,
    /// `fetch.min.bytes`.
    pub fetch_min_bytes: usize,
    /// `fetch.max.bytes`.
    pub fetch_max_bytes: usize,
    /// `fetch.max.wait.ms`.
    pub fetch_max_wait: Duration,
    /// `max.partition.fetch.bytes`.
    pub max_partition_fetch_bytes: usize,
    /// `queued.max.messages.kbytes`, in bytes.
    pub max_prefetch_bytes: usize,
    /// `enable.fetch.sessions`: incremental fetch sessions (KIP-227). Off by
    /// default: with them on, the verify matrix's exactly-once processors
    /// stalled in a group under rebalances (cause not found yet).
    pub fetch_sessions: bool,
    /// `session.timeout.ms`.
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms`.
    pub max_poll_interval: Duration,
    /// `metadata.max.age.ms`.
    pub metadata_max_age: Duration,
    /// `partition.assignment.strategy`, protocol names in preference order.
    pub assignment_strategies: Vec<String>,
    /// `check.crcs`.
    pub check_crcs: bool,
    /// `request.timeout.ms`: how long one request may wait for its answer.
    pub request_timeout: Duration,
    /// `default.api.timeout.ms`: how long a coordinator operation (commit,
    /// committed offsets, offset lookup) keeps retrying — longer than one
    /// request, so a coordinator that stalls and moves is found again.
    pub default_api_timeout: Duration,
    /// `retry.backoff.ms`: the first wait before a retry; each later one
    /// doubles, up to `retry.backoff.max.ms` (KIP-580).
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms`.
    pub retry_backoff_max: Duration,
    /// `reconnect.backoff.ms`.
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`.
    pub reconnect_backoff_max: Duration,
    /// `socket.connection.setup.timeout.ms`: TCP connect plus TLS handshake.
    pub connection_setup_timeout: Duration,
    /// `allow.auto.create.topics`.
    pub allow_auto_create_topics: bool,
    /// SASL from `security.protocol` + `sasl.*`.
    pub sasl: Option<SaslConfig>,
    /// TLS from `security.protocol` + `ssl.ca.location`.
    pub tls: Option<TlsConfig>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: Vec::new(),
            client_id: "kafka-pure".into(),
            group_id: None,
            group_instance_id: None,
            auto_offset_reset: OffsetReset::Latest,
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_millis(5_000),
            isolation_level: IsolationLevel::ReadUncommitted,
            fetch_min_bytes: 1,
            fetch_max_bytes: 52_428_800,
            fetch_max_wait: Duration::from_millis(500),
            max_partition_fetch_bytes: 1_048_576,
            max_prefetch_bytes: 64 << 20,
            fetch_sessions: false,
            session_timeout: Duration::from_millis(45_000),
            heartbeat_interval: Duration::from_millis(3_000),
            max_poll_interval: Duration::from_millis(300_000),
            metadata_max_age: Duration::from_millis(300_000),
            assignment_strategies: vec!["range".into(), "cooperative-sticky".into()],
            check_crcs: true,
            request_timeout: Duration::from_millis(30_000),
            default_api_timeout: Duration::from_millis(60_000),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_millis(1_000),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_millis(1_000),
            connection_setup_timeout: Duration::from_millis(10_000),
            allow_auto_create_topics: false,
            sasl: None,
            tls: None,
        }
    }
}

const CONSUMER_IGNORED_KEYS: &[&str] = &[
    "key.deserializer",
    "value.deserializer",
    "enable.auto.offset.store",
    "enable.partition.eof",
    "socket.timeout.ms",
];

impl ConsumerConfig {
    /// The backoff of `retry.backoff.ms` and `retry.backoff.max.ms` that the
    /// consumer's retries follow.
    pub fn retry_policy(&self) -> crate::retry::RetryPolicy {
        crate::retry::RetryPolicy::backoff_between(self.retry_backoff, self.retry_backoff_max)
    }

    /// Parses Kafka properties and validates the result.
    pub fn from_properties<I, K, V>(properties: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut config = Self::default();
        let mut security = Security::default();
        for (key, value) in properties {
            config.apply(key.as_ref().trim(), value.as_ref().trim(), &mut security)?;
        }
        (config.tls, config.sasl) = security.resolve()?;
        config.validate()?;
        Ok(config)
    }

    /// From `KAFKA_*` environment variables (`KAFKA_BOOTSTRAP_SERVERS`,
    /// `KAFKA_GROUP_ID` …), applied over `properties` (the environment wins).
    pub fn from_properties_and_env<I, K, V>(properties: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        Self::from_properties(with_env(properties, |key| {
            let mut probe = Self::default();
            !matches!(
                probe.apply(key, "", &mut Security::default()),
                Err(ConfigError::UnknownKey(_))
            )
        }))
    }

    fn apply(
        &mut self,
        key: &str,
        value: &str,
        security: &mut Security,
    ) -> Result<(), ConfigError> {
        match key {
            "bootstrap.servers" | "metadata.broker.list" => {
                self.bootstrap_servers = servers(key, value)?
            }
            "client.id" => self.client_id = value.to_owned(),
            "group.id" => self.group_id = Some(value.to_owned()).filter(|v| !v.is_empty()),
            "group.instance.id" => {
                self.group_instance_id = Some(value.to_owned()).filter(|v| !v.is_empty())
            }
            "auto.offset.reset" => self.auto_offset_reset = offset_reset(key, value)?,
            "enable.auto.commit" => self.enable_auto_commit = boolean(key, value)?,
            "auto.commit.interval.ms" => self.auto_commit_interval = millis(key, value)?,
            "isolation.level" => self.isolation_level = isolation(key, value)?,
            "fetch.min.bytes" => self.fetch_min_bytes = positive(key, value)?,
            "fetch.max.bytes" => self.fetch_max_bytes = positive(key, value)?,
            "fetch.max.wait.ms" | "fetch.wait.max.ms" => self.fetch_max_wait = millis(key, value)?,
            "max.partition.fetch.bytes" | "fetch.message.max.bytes" => {
                self.max_partition_fetch_bytes = positive(key, value)?
            }
            "queued.max.messages.kbytes" => self.max_prefetch_bytes = positive(key, value)? * 1024,
            "enable.fetch.sessions" => self.fetch_sessions = boolean(key, value)?,
            "session.timeout.ms" => self.session_timeout = millis(key, value)?,
            "heartbeat.interval.ms" => self.heartbeat_interval = millis(key, value)?,
            "max.poll.interval.ms" => self.max_poll_interval = millis(key, value)?,
            "metadata.max.age.ms" => self.metadata_max_age = millis(key, value)?,
            "partition.assignment.strategy" => self.assignment_strategies = strategies(key, value)?,
            "check.crcs" => self.check_crcs = boolean(key, value)?,
            "request.timeout.ms" => self.request_timeout = millis(key, value)?,
            "default.api.timeout.ms" => self.default_api_timeout = millis(key, value)?,
            "retry.backoff.ms" => self.retry_backoff = millis(key, value)?,
            "retry.backoff.max.ms" => self.retry_backoff_max = millis(key, value)?,
            "reconnect.backoff.ms" => self.reconnect_backoff = millis(key, value)?,
            "reconnect.backoff.max.ms" => self.reconnect_backoff_max = millis(key, value)?,
            "socket.connection.setup.timeout.ms" => {
                self.connection_setup_timeout = positive_millis(key, value)?
            }
            "allow.auto.create.topics" => self.allow_auto_create_topics = boolean(key, value)?,
            "max.poll.records" => {
                number::<u32>(key, value, "a positive integer")?;
            }
            security_key if security.apply(security_key, value) => {}
            ignored
                if IGNORED_KEYS.contains(&ignored) || CONSUMER_IGNORED_KEYS.contains(&ignored) =>
            {
                tracing::warn!(
                    key = ignored,
                    "configuration key does not apply to this client; ignored"
                )
            }
            unknown => return Err(ConfigError::UnknownKey(unknown.to_owned())),
        }
        Ok(())
    }

    /// Checks combinations of keys, naming both sides of a conflict.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.bootstrap_servers.is_empty() {
            return Err(ConfigError::Missing("bootstrap.servers"));
        }
        if self.group_instance_id.is_some() && self.group_id.is_none() {
            return Err(ConfigError::Conflict(
                "group.instance.id requires group.id".into(),
            ));
        }
        if self.heartbeat_interval >= self.session_timeout {
            return Err(ConfigError::Conflict(format!(
                "heartbeat.interval.ms ({}) must be lower than session.timeout.ms ({})",
                self.heartbeat_interval.as_millis(),
                self.session_timeout.as_millis()
            )));
        }
        if self.fetch_min_bytes > self.fetch_max_bytes {
            return Err(ConfigError::Conflict(format!(
                "fetch.min.bytes ({}) must be <= fetch.max.bytes ({})",
                self.fetch_min_bytes, self.fetch_max_bytes
            )));
        }
        Ok(())
    }

    /// The configuration as Kafka properties (Java key names).
    pub fn to_properties(&self) -> BTreeMap<String, String> {
        let ms = |d: Duration| d.as_millis().to_string();
        let mut map = BTreeMap::from([
            (
                "bootstrap.servers".to_owned(),
                self.bootstrap_servers.join(","),
            ),
            ("client.id".to_owned(), self.client_id.clone()),
            (
                "auto.offset.reset".to_owned(),
                match self.auto_offset_reset {
                    OffsetReset::Earliest => "earliest",
                    OffsetReset::Latest => "latest",
                    OffsetReset::None => "none",
                }
                .to_owned(),
            ),
            (
                "enable.auto.commit".to_owned(),
                self.enable_auto_commit.to_string(),
            ),
            (
                "auto.commit.interval.ms".to_owned(),
                ms(self.auto_commit_interval),
            ),
            (
                "isolation.level".to_owned(),
                match self.isolation_level {
                    IsolationLevel::ReadCommitted => "read_committed",
                    IsolationLevel::ReadUncommitted => "read_uncommitted",
                }
                .to_owned(),
            ),
            (
                "fetch.min.bytes".to_owned(),
                self.fetch_min_bytes.to_string(),
            ),
            (
                "fetch.max.bytes".to_owned(),
                self.fetch_max_bytes.to_string(),
            ),
            ("fetch.max.wait.ms".to_owned(), ms(self.fetch_max_wait)),
            (
                "max.partition.fetch.bytes".to_owned(),
                self.max_partition_fetch_bytes.to_string(),
            ),
            (
                "queued.max.messages.kbytes".to_owned(),
                (self.max_prefetch_bytes / 1024).to_string(),
            ),
            (
                "enable.fetch.sessions".to_owned(),
                self.fetch_sessions.to_string(),
            ),
            ("session.timeout.ms".to_owned(), ms(self.session_timeout)),
            (
                "heartbeat.interval.ms".to_owned(),
                ms(self.heartbeat_interval),
            ),
            (
                "max.poll.interval.ms".to_owned(),
                ms(self.max_poll_interval),
            ),
            ("metadata.max.age.ms".to_owned(), ms(self.metadata_max_age)),
            (
                "partition.assignment.strategy".to_owned(),
                self.assignment_strategies.join(","),
            ),
            ("check.crcs".to_owned(), self.check_crcs.to_string()),
            ("request.timeout.ms".to_owned(), ms(self.request_timeout)),
            (
                "default.api.timeout.ms".to_owned(),
                ms(self.default_api_timeout),
            ),
            ("retry.backoff.ms".to_owned(), ms(self.retry_backoff)),
            (
                "retry.backoff.max.ms".to_owned(),
                ms(self.retry_backoff_max),
            ),
            (
                "reconnect.backoff.ms".to_owned(),
                ms(self.reconnect_backoff),
            ),
            (
                "reconnect.backoff.max.ms".to_owned(),
                ms(self.reconnect_backoff_max),
            ),
            (
                "socket.connection.setup.timeout.ms".to_owned(),
                ms(self.connection_setup_timeout),
            ),
            (
                "allow.auto.create.topics".to_owned(),
                self.allow_auto_create_topics.to_string(),
            ),
        ]);
        if let Some(group) = &self.group_id {
            map.insert("group.id".into(), group.clone());
        }
        if let Some(instance) = &self.group_instance_id {
            map.insert("group.instance.id".into(), instance.clone());
        }
        map
    }
}

impl<'de> serde::Deserialize<'de> for ConsumerConfig {
    /// From a map of Kafka keys to strings, numbers or booleans, through
    /// [`ConsumerConfig::from_properties`].
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::from_properties(properties_of(deserializer)?).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for ConsumerConfig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_properties().serialize(serializer)
    }
}

fn offset_reset(key: &str, value: &str) -> Result<OffsetReset, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "earliest" | "smallest" | "beginning" => Ok(OffsetReset::Earliest),
        "latest" | "largest" | "end" => Ok(OffsetReset::Latest),
        "none" | "error" => Ok(OffsetReset::None),
        _ => Err(invalid(key, value, "one of earliest, latest, none")),
    }
}

fn isolation(key: &str, value: &str) -> Result<IsolationLevel, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "read_uncommitted" => Ok(IsolationLevel::ReadUncommitted),
        "read_committed" => Ok(IsolationLevel::ReadCommitted),
        _ => Err(invalid(key, value, "read_uncommitted or read_committed")),
    }
}

/// Assignor names; Java class names are accepted for pasted configurations.
fn strategies(key: &str, value: &str) -> Result<Vec<String>, ConfigError> {
    const EXPECTED: &str = "a comma-separated list of range, roundrobin, cooperative-sticky";
    let mut names = Vec::new();
    for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let short = match name.rsplit('.').next().unwrap_or(name) {
            "RangeAssignor" | "range" => "range",
            "RoundRobinAssignor" | "roundrobin" => "roundrobin",
            "CooperativeStickyAssignor" | "cooperative-sticky" => "cooperative-sticky",
            _ => return Err(invalid(key, value, EXPECTED)),
        };
        if !names.iter().any(|n| n == short) {
            names.push(short.to_owned());
        }
    }
    if names.is_empty() {
        return Err(invalid(key, value, EXPECTED));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<ConsumerConfig, ConfigError> {
        ConsumerConfig::from_properties(
            [("bootstrap.servers", "localhost:9092")]
                .iter()
                .chain(pairs)
                .copied(),
        )
    }

    #[test]
    fn defaults_follow_java() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.auto_offset_reset, OffsetReset::Latest);
        assert!(config.enable_auto_commit);
        assert_eq!(config.isolation_level, IsolationLevel::ReadUncommitted);
        assert_eq!(
            config.assignment_strategies,
            ["range", "cooperative-sticky"]
        );
    }

    #[test]
    fn familiar_keys_parse() {
        let config = parse(&[
            ("group.id", "g"),
            ("group.instance.id", "i-1"),
            ("auto.offset.reset", "smallest"),
            ("isolation.level", "read_committed"),
            (
                "partition.assignment.strategy",
                "org.apache.kafka.clients.consumer.RoundRobinAssignor,range",
            ),
        ])
        .unwrap();
        assert_eq!(config.group_instance_id.as_deref(), Some("i-1"));
        assert_eq!(config.auto_offset_reset, OffsetReset::Earliest);
        assert_eq!(config.isolation_level, IsolationLevel::ReadCommitted);
        assert_eq!(config.assignment_strategies, ["roundrobin", "range"]);
    }

    #[test]
    fn bad_values_name_the_key_and_the_allowed_values() {
        let error = parse(&[("isolation.level", "read_some")])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("isolation.level") && error.contains("read_committed"),
            "{error}"
        );
        let error = parse(&[("partition.assignment.strategy", "sticky")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("cooperative-sticky"), "{error}");
        let error = parse(&[("group.instance.id", "x")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("group.id"), "{error}");
        let error = parse(&[("heartbeat.interval.ms", "50000")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("session.timeout.ms"), "{error}");
        assert!(matches!(
            parse(&[("fetch.speed", "1")]),
            Err(ConfigError::UnknownKey(_))
        ));
    }

    #[test]
    fn serde_and_properties_agree() {
        let config: ConsumerConfig = serde_json::from_str(
            r#"{"bootstrap.servers":"h:1","group.id":"g","enable.auto.commit":false,"fetch.max.wait.ms":100}"#,
        )
        .unwrap();
        assert!(!config.enable_auto_commit);
        let again = ConsumerConfig::from_properties(config.to_properties()).unwrap();
        assert_eq!(again.to_properties(), config.to_properties());
    }
}
