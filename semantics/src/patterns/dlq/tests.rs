use super::*;

#[test]
fn failure_class_text_round_trips() {
    for class in [
        FailureClass::Handler,
        FailureClass::RetriesExhausted,
        FailureClass::NonRetriable,
    ] {
        assert_eq!(FailureClass::from_header(class.as_str()), class);
    }
    assert_eq!(FailureClass::from_header("x").to_string(), "x");
}

#[test]
fn on_failure_serde() {
    let policy: OnFailure = serde_json::from_str(r#"{"dead_letter": {"topic": "t.DLT"}}"#).unwrap();
    assert_eq!(
        policy,
        OnFailure::DeadLetter {
            retry: RetryPolicy::default(),
            topic: "t.DLT".into()
        }
    );
    assert_eq!(
        serde_json::from_str::<OnFailure>(r#""skip""#).unwrap(),
        OnFailure::Skip
    );
    let retry: OnFailure = serde_json::from_str(r#"{"retry": {"max_attempts": 3}}"#).unwrap();
    assert_eq!(
        retry,
        OnFailure::Retry(RetryPolicy {
            max_attempts: Some(3),
            ..Default::default()
        })
    );
}
