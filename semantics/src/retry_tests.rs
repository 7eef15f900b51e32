use proptest::prelude::*;

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn default_policy_table_without_jitter() {
    let policy = RetryPolicy::default();
    let table = [
        (0, 100),
        (1, 100),
        (2, 200),
        (3, 400),
        (4, 800),
        (5, 1_000),
        (6, 1_000),
    ];
    for (attempt, expected) in table {
        assert_eq!(
            policy.backoff_with(attempt, 0.5),
            ms(expected),
            "attempt {attempt}"
        );
    }
    assert_eq!(policy.backoff_with(u32::MAX, 0.5), ms(1_000));
}

#[test]
fn jitter_spans_plus_minus_twenty_percent() {
    let policy = RetryPolicy::default();
    assert_eq!(policy.backoff_with(1, 0.0), ms(80));
    assert_eq!(policy.backoff_with(1, 0.75), ms(110));
    assert_eq!(policy.backoff_with(1, 1.0), ms(120));
    // Out-of-range draws are clamped, not trusted.
    assert_eq!(policy.backoff_with(1, -3.0), ms(80));
    assert_eq!(policy.backoff_with(1, f64::NAN), ms(100));
}

#[test]
fn initial_above_max_is_a_constant_max() {
    let policy = RetryPolicy {
        initial: ms(5_000),
        max: ms(300),
        jitter: 0.0,
        ..Default::default()
    };
    for attempt in [1, 2, 10, u32::MAX] {
        assert_eq!(policy.backoff_with(attempt, 0.5), ms(300));
    }
}

#[test]
fn garbage_fields_never_panic() {
    let policy = RetryPolicy {
        initial: Duration::MAX,
        multiplier: f64::NAN,
        max: Duration::MAX,
        jitter: f64::INFINITY,
        max_attempts: Some(0),
    };
    let _ = policy.backoff(u32::MAX);
    let zero = RetryPolicy {
        initial: Duration::ZERO,
        multiplier: 1e300,
        ..Default::default()
    };
    assert_eq!(zero.backoff_with(u32::MAX, 0.5), Duration::ZERO);
}

#[test]
fn should_retry_counts_the_first_attempt() {
    let policy = RetryPolicy {
        max_attempts: Some(3),
        ..Default::default()
    };
    assert!(policy.should_retry(1));
    assert!(policy.should_retry(2));
    assert!(!policy.should_retry(3));
    assert!(RetryPolicy::default().should_retry(u32::MAX));
}

#[test]
fn validate_names_the_field() {
    let bad = |p: RetryPolicy| p.validate().unwrap_err();
    assert!(bad(RetryPolicy {
        multiplier: 0.5,
        ..Default::default()
    })
    .starts_with("multiplier"));
    assert!(bad(RetryPolicy {
        multiplier: f64::INFINITY,
        ..Default::default()
    })
    .starts_with("multiplier"));
    assert!(bad(RetryPolicy {
        jitter: 1.5,
        ..Default::default()
    })
    .starts_with("jitter"));
    assert!(bad(RetryPolicy {
        max_attempts: Some(0),
        ..Default::default()
    })
    .starts_with("max_attempts"));
    assert_eq!(RetryPolicy::default().validate(), Ok(()));
}

#[test]
fn from_properties_reads_the_kafka_keys() {
    let policy = RetryPolicy::from_properties([
        ("retry.backoff.ms", "250"),
        ("retry.backoff.max.ms", "4000"),
        ("retries", "2"),
        ("bootstrap.servers", "ignored:9092"),
    ])
    .unwrap();
    assert_eq!(
        policy,
        RetryPolicy {
            initial: ms(250),
            max: ms(4_000),
            max_attempts: Some(3),
            ..Default::default()
        }
    );
    assert_eq!(
        RetryPolicy::from_properties::<_, &str, &str>([]).unwrap(),
        RetryPolicy::default()
    );
    let max = RetryPolicy::from_properties([("retries", "2147483647")]).unwrap();
    assert_eq!(max.max_attempts, Some(1 << 31));
    for (key, value) in [
        ("retries", "-1"),
        ("retries", "2147483648"),
        ("retry.backoff.ms", "x"),
    ] {
        let error = RetryPolicy::from_properties([(key, value)]).unwrap_err();
        assert!(error.starts_with(key), "{error}");
    }
}

#[test]
fn for_producer_mirrors_the_producer_config() {
    let config = crate::ProducerConfig::from_properties([
        ("bootstrap.servers", "localhost:9092"),
        ("retry.backoff.ms", "50"),
        ("retries", "4"),
    ])
    .unwrap();
    let policy = RetryPolicy::for_producer(&config);
    assert_eq!((policy.initial, policy.max_attempts), (ms(50), Some(5)));
}

#[test]
fn serde_uses_millisecond_fields() {
    let json = serde_json::to_value(RetryPolicy::default()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"initial_ms": 100, "multiplier": 2.0, "max_ms": 1000,
                           "jitter": 0.2, "max_attempts": null})
    );
    let partial: RetryPolicy =
        serde_json::from_str(r#"{"initial_ms": 20, "max_attempts": 4}"#).unwrap();
    assert_eq!(
        partial,
        RetryPolicy {
            initial: ms(20),
            max_attempts: Some(4),
            ..Default::default()
        }
    );
    assert!(serde_json::from_str::<RetryPolicy>(r#"{"initial": 20}"#).is_err());
}

fn policies() -> impl Strategy<Value = RetryPolicy> {
    // initial ≤ max: the lower bound below is about the exponential regime.
    (
        0u64..10_000_000,
        0u64..10_000_000_000,
        1.0f64..10.0,
        0.0f64..=1.0,
    )
        .prop_map(|(initial, extra, multiplier, jitter)| RetryPolicy {
            initial: Duration::from_micros(initial),
            max: Duration::from_micros(initial + extra),
            multiplier,
            jitter,
            max_attempts: None,
        })
}

proptest! {
    #[test]
    fn monotone_without_jitter(policy in policies(), a in any::<u32>(), b in any::<u32>()) {
        let policy = RetryPolicy { jitter: 0.0, ..policy };
        let (lo, hi) = (a.min(b), a.max(b));
        prop_assert!(policy.backoff(lo) <= policy.backoff(hi));
    }

    #[test]
    fn within_jitter_bounds(policy in policies(), attempt in any::<u32>(), unit in 0.0f64..1.0) {
        let wait = policy.backoff_with(attempt, unit).as_nanos() as f64;
        let max = policy.max.as_nanos() as f64 * (1.0 + policy.jitter);
        let min = policy.initial.as_nanos() as f64 * (1.0 - policy.jitter);
        // ±1 ns: the result is rounded to whole nanoseconds.
        prop_assert!(wait <= max.ceil() + 1.0, "{wait} > {max}");
        prop_assert!(wait + 1.0 >= min.floor(), "{wait} < {min}");
        let random = policy.backoff(attempt).as_nanos() as f64;
        prop_assert!(random <= max.ceil() + 1.0 && random + 1.0 >= min.floor());
    }

    #[test]
    fn large_attempts_never_overflow(policy in policies(), attempt in u32::MAX - 1_000..) {
        let wait = policy.backoff_with(attempt, 0.5);
        prop_assert!(wait <= policy.max);
        if policy.multiplier >= 1.01 && !policy.initial.is_zero() {
            prop_assert_eq!(wait, policy.max);
        }
    }
}

/// A deadline-bound retry waits the policy's growing backoff; when the next
/// wait would reach the deadline it gives up at the deadline, not before.
#[tokio::test(start_paused = true)]
async fn retries_until_a_deadline_grow_and_stop_short_of_it() {
    let policy = RetryPolicy {
        jitter: 0.0,
        ..RetryPolicy::backoff_between(ms(100), ms(1_000))
    };
    let start = tokio::time::Instant::now();
    let mut retrying = policy.until(std::time::Instant::now() + ms(1_000));
    let mut waited_at = Vec::new();
    while retrying.wait().await {
        waited_at.push(start.elapsed().as_millis());
    }
    // 100, then 200, then 400 (700 in all); 800 more would pass 1,000.
    assert_eq!(waited_at, [100, 300, 700]);
    assert_eq!(start.elapsed(), ms(1_000), "it gives up at the deadline");
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_the_policys_attempts() {
    let policy = RetryPolicy {
        max_attempts: Some(3),
        ..RetryPolicy::default()
    };
    let mut retrying = policy.until(std::time::Instant::now() + Duration::from_secs(3_600));
    assert!(retrying.wait().await);
    assert!(retrying.wait().await);
    assert!(!retrying.wait().await, "three attempts: two retries");
}
