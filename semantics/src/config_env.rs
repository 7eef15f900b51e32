//! Configuration from environment variables: `KAFKA_BOOTSTRAP_SERVERS` is
//! `bootstrap.servers`, `KAFKA_ENABLE_IDEMPOTENCE` is `enable.idempotence` —
//! the prefix dropped, lower case, `_` read as `.` (the convention of the
//! Confluent and Bitnami images). Variables that name no key of the
//! configuration being built are left alone, so one environment can hold
//! producer and consumer keys side by side.

/// `KAFKA_*` variables as Kafka keys, for the keys `known` accepts.
pub(crate) fn kafka_env(known: impl Fn(&str) -> bool) -> Vec<(String, String)> {
    env_pairs(std::env::vars(), known)
}

fn env_pairs(
    vars: impl IntoIterator<Item = (String, String)>,
    known: impl Fn(&str) -> bool,
) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = vars
        .into_iter()
        .filter_map(|(name, value)| {
            let rest = name.strip_prefix("KAFKA_")?;
            let key = rest.to_ascii_lowercase().replace('_', ".");
            known(&key).then_some((key, value))
        })
        .collect();
    pairs.sort();
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_kafka_keys_and_unknown_ones_are_left_alone() {
        let vars = [
            ("KAFKA_BOOTSTRAP_SERVERS", "h:1"),
            ("KAFKA_ENABLE_IDEMPOTENCE", "false"),
            ("KAFKA_BOOTSTRAP", "h:2"),
            ("PATH", "/bin"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let known = |key: &str| matches!(key, "bootstrap.servers" | "enable.idempotence");
        assert_eq!(
            env_pairs(vars, known),
            [
                ("bootstrap.servers".to_owned(), "h:1".to_owned()),
                ("enable.idempotence".to_owned(), "false".to_owned())
            ]
        );
    }
}
