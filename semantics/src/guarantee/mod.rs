//! Delivery guarantees as one value: at-most-once, at-least-once or
//! exactly-once decides acks, retries, idempotence, transactions, when
//! offsets are committed and the isolation level — on both sides.
//!
//! | | producer | consumer commit | isolation | duplicates | loss |
//! |---|---|---|---|---|---|
//! | at-most-once | acks=1, no retries | before processing | read_uncommitted | never | possible |
//! | at-least-once | acks=all, retries, idempotence | after processing | read_uncommitted | possible on consumer restart | never |
//! | exactly-once | transactional, acks=all | inside the producer's transaction | read_committed | never | never |
//!
//! [`Guarantee`] is the built-in choice; implement [`DeliveryGuarantee`] to
//! plug in another (e.g. at-least-once with `acks=1`). [`processor`] runs a
//! handler over topics under a guarantee.

pub mod batch;
pub mod processor;

use std::fmt;

use crate::consumer::IsolationLevel;
use crate::Acks;

/// Whether a guarantee allows something to happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Possibility {
    /// It cannot happen.
    Never,
    /// It can happen (the guarantee does not exclude it).
    Possible,
}

/// When the consumer's offsets are committed relative to processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitPoint {
    /// Before the handler runs: a crash loses the batch, never repeats it.
    BeforeProcessing,
    /// After the handler's outputs are acknowledged: a crash repeats the batch.
    AfterProcessing,
    /// In the producer's transaction, with the outputs: all or nothing.
    InTransaction,
}

/// What a guarantee promises, in code and in output.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Promise {
    /// The guarantee's name.
    pub name: String,
    /// Whether a record can be processed (and its outputs written) twice.
    pub duplicates: Possibility,
    /// Whether a record can be lost.
    pub loss: Possibility,
    /// Producer acknowledgement level.
    pub acks: String,
    /// When offsets are committed.
    pub commit: CommitPoint,
    /// Consumer isolation level.
    pub isolation: String,
}

impl fmt::Display for Promise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = |p: Possibility| match p {
            Possibility::Never => "never",
            Possibility::Possible => "possible",
        };
        write!(
            f,
            "{}: duplicates {}, loss {}, acks={}, commit {:?}, {}",
            self.name,
            word(self.duplicates),
            word(self.loss),
            self.acks,
            self.commit,
            self.isolation
        )
    }
}

/// A delivery guarantee: the settings it imposes and when it commits.
pub trait DeliveryGuarantee: Send + Sync + fmt::Debug {
    /// A short name (`at-least-once` …).
    fn name(&self) -> &str;
    /// When offsets are committed.
    fn commit_point(&self) -> CommitPoint;
    /// Producer acknowledgement level.
    fn acks(&self) -> Acks;
    /// Producer properties the guarantee imposes (they override the user's).
    fn producer_properties(&self) -> Vec<(String, String)>;
    /// Consumer properties the guarantee imposes.
    fn consumer_properties(&self) -> Vec<(String, String)>;
    /// Consumer isolation level.
    fn isolation(&self) -> IsolationLevel {
        match self.commit_point() {
            CommitPoint::InTransaction => IsolationLevel::ReadCommitted,
            _ => IsolationLevel::ReadUncommitted,
        }
    }
    /// What the settings promise: derived, so a custom guarantee cannot
    /// claim more than its settings give.
    fn promise(&self) -> Promise {
        let durable = self.acks() != Acks::None;
        let (duplicates, loss) = match self.commit_point() {
            CommitPoint::BeforeProcessing => (Possibility::Never, Possibility::Possible),
            CommitPoint::AfterProcessing => (
                Possibility::Possible,
                if durable && self.acks() == Acks::All {
                    Possibility::Never
                } else {
                    Possibility::Possible
                },
            ),
            CommitPoint::InTransaction => (Possibility::Never, Possibility::Never),
        };
        Promise {
            name: self.name().to_owned(),
            duplicates,
            loss,
            acks: match self.acks() {
                Acks::None => "0",
                Acks::Leader => "1",
                Acks::All => "all",
            }
            .to_owned(),
            commit: self.commit_point(),
            isolation: match self.isolation() {
                IsolationLevel::ReadCommitted => "read_committed",
                IsolationLevel::ReadUncommitted => "read_uncommitted",
            }
            .to_owned(),
        }
    }
}

/// The three built-in guarantees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Guarantee {
    /// Commit before processing, acks=1, no retries: never a duplicate.
    AtMostOnce,
    /// Commit after processing, acks=all, idempotent retries: never a loss.
    AtLeastOnce,
    /// Outputs and offsets in one transaction, read_committed: neither.
    ExactlyOnce,
}

impl Guarantee {
    /// All three, weakest first.
    pub const ALL: [Guarantee; 3] = [Self::AtMostOnce, Self::AtLeastOnce, Self::ExactlyOnce];

    /// From `at-most-once`, `at-least-once`, `exactly-once` (or with `_`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().replace('_', "-").as_str() {
            "at-most-once" => Some(Self::AtMostOnce),
            "at-least-once" => Some(Self::AtLeastOnce),
            "exactly-once" => Some(Self::ExactlyOnce),
            _ => None,
        }
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl DeliveryGuarantee for Guarantee {
    fn name(&self) -> &str {
        match self {
            Self::AtMostOnce => "at-most-once",
            Self::AtLeastOnce => "at-least-once",
            Self::ExactlyOnce => "exactly-once",
        }
    }

    fn commit_point(&self) -> CommitPoint {
        match self {
            Self::AtMostOnce => CommitPoint::BeforeProcessing,
            Self::AtLeastOnce => CommitPoint::AfterProcessing,
            Self::ExactlyOnce => CommitPoint::InTransaction,
        }
    }

    fn acks(&self) -> Acks {
        match self {
            Self::AtMostOnce => Acks::Leader,
            _ => Acks::All,
        }
    }

    fn producer_properties(&self) -> Vec<(String, String)> {
        match self {
            Self::AtMostOnce => pairs(&[
                ("acks", "1"),
                ("retries", "0"),
                ("enable.idempotence", "false"),
            ]),
            Self::AtLeastOnce => pairs(&[("acks", "all"), ("enable.idempotence", "true")]),
            // transactional.id is the processor's (or the user's) choice.
            Self::ExactlyOnce => pairs(&[("acks", "all"), ("enable.idempotence", "true")]),
        }
    }

    fn consumer_properties(&self) -> Vec<(String, String)> {
        let isolation = match self {
            Self::ExactlyOnce => "read_committed",
            _ => "read_uncommitted",
        };
        pairs(&[
            ("enable.auto.commit", "false"),
            ("isolation.level", isolation),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_in_code() {
        let rows: Vec<(Possibility, Possibility, &str, CommitPoint, &str)> = Guarantee::ALL
            .iter()
            .map(|g| {
                let p = g.promise();
                (
                    p.duplicates,
                    p.loss,
                    g.name(),
                    p.commit,
                    if p.isolation == "read_committed" {
                        "rc"
                    } else {
                        "ru"
                    },
                )
            })
            .collect();
        use Possibility::*;
        assert_eq!(
            rows,
            [
                (
                    Never,
                    Possible,
                    "at-most-once",
                    CommitPoint::BeforeProcessing,
                    "ru"
                ),
                (
                    Possible,
                    Never,
                    "at-least-once",
                    CommitPoint::AfterProcessing,
                    "ru"
                ),
                (
                    Never,
                    Never,
                    "exactly-once",
                    CommitPoint::InTransaction,
                    "rc"
                ),
            ]
        );
    }

    #[derive(Debug)]
    struct FastAtLeastOnce;
    impl DeliveryGuarantee for FastAtLeastOnce {
        fn name(&self) -> &str {
            "at-least-once-acks-1"
        }
        fn commit_point(&self) -> CommitPoint {
            CommitPoint::AfterProcessing
        }
        fn acks(&self) -> Acks {
            Acks::Leader
        }
        fn producer_properties(&self) -> Vec<(String, String)> {
            pairs(&[("acks", "1")])
        }
        fn consumer_properties(&self) -> Vec<(String, String)> {
            pairs(&[("enable.auto.commit", "false")])
        }
    }

    #[test]
    fn a_custom_guarantee_cannot_promise_more_than_its_settings() {
        let promise = FastAtLeastOnce.promise();
        assert_eq!(
            (promise.duplicates, promise.loss),
            (Possibility::Possible, Possibility::Possible)
        );
        assert!(promise.to_string().contains("loss possible"), "{promise}");
    }

    #[test]
    fn names_parse() {
        for g in Guarantee::ALL {
            assert_eq!(Guarantee::from_name(g.name()), Some(g));
        }
        assert_eq!(
            Guarantee::from_name("EXACTLY_ONCE"),
            Some(Guarantee::ExactlyOnce)
        );
        assert_eq!(Guarantee::from_name("twice"), None);
    }
}
