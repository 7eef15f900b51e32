//! The transaction manager's states and the only transitions allowed between
//! them, as a pure function (no I/O, no clock).
//!
//! ```text
//!                 init                  ok                   begin
//!  Uninitialized ─────► Initializing ──────► Ready ◄──────┐ ──────► InTransaction
//!                         ▲     │ fatal        ▲  ▲       │ ok         │    │
//!                         │     ▼              │  │       │            │    │ abortable error
//!                         │  FatalError        │  │  Committing ◄─────┘    ▼
//!                         │     ▲  fenced,     │  │ commit │        AbortableError
//!                         │     │  unauthorised│  │        │ unknown      │ abort
//!                         │  (from any state)  │  └── Aborting ◄──────────┘
//!                         │                    │    ok  │ ▲ abort (InTransaction too)
//!                         └──── NeedsReinit ◄──┴────────┘ unknown outcome
//!                               begin/init re-initialises first
//! ```
//!
//! `NeedsReinit` is the guard against the "torn transaction" (Jepsen's
//! analysis of Bufstream, 2024): when EndTxn (or a produce inside the
//! transaction) times out, it may still be applied later — also when a retry
//! of that EndTxn was answered. Starting the next
//! transaction on the same epoch would let that late commit or abort land on
//! it; a new InitProducerId bumps the epoch first, so the coordinator rejects
//! anything still in flight from the old one.

use std::fmt;

/// Where the transactional producer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnState {
    /// `init_transactions` not called yet.
    Uninitialized,
    /// InitProducerId in progress.
    Initializing,
    /// No transaction open.
    Ready,
    /// A transaction is open: sends and offsets join it.
    InTransaction,
    /// EndTxn(commit) in progress.
    Committing,
    /// EndTxn(abort) in progress.
    Aborting,
    /// Something in the transaction failed; only `abort_transaction` is allowed.
    AbortableError,
    /// The last transaction's outcome is unknown, or an attempt of its EndTxn
    /// went unanswered: re-initialise before the next.
    NeedsReinit,
    /// Fenced, unauthorised or otherwise unusable: create a new producer.
    FatalError,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnEvent {
    /// `init_transactions`, or re-initialisation before a transaction.
    InitStarted,
    /// InitProducerId answered.
    InitDone,
    /// `begin_transaction`.
    Begin,
    /// `commit_transaction` (after every record of the transaction settled).
    CommitStarted,
    /// `abort_transaction`.
    AbortStarted,
    /// EndTxn answered.
    EndDone,
    /// EndTxn (or a produce) timed out: the outcome is unknown; or EndTxn
    /// was answered but an earlier attempt of it went unanswered.
    OutcomeUnknown,
    /// A record or an offset commit of the transaction failed.
    AbortableError,
    /// Fenced, unauthorised, invalid state.
    FatalError,
}

/// A call that is not allowed in the current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTransition {
    /// The state.
    pub from: TxnState,
    /// The refused event.
    pub event: TxnEvent,
}

impl fmt::Display for InvalidTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not allowed in state {:?}",
            self.event, self.from
        )
    }
}

impl std::error::Error for InvalidTransition {}

/// The state after `event` in `from`, or why it is refused.
pub fn transition(from: TxnState, event: TxnEvent) -> Result<TxnState, InvalidTransition> {
    use TxnEvent as E;
    use TxnState as S;
    let to = match (from, event) {
        // Fatal is final, from anywhere.
        (S::FatalError, _) => None,
        (_, E::FatalError) => Some(S::FatalError),
        // From Ready: the epoch bump after aborting a transaction whose
        // records failed (their sequence numbers left a gap).
        (S::Uninitialized | S::NeedsReinit | S::Ready, E::InitStarted) => Some(S::Initializing),
        // A failed InitProducerId leaves the producer where it was before.
        (S::Initializing, E::InitDone) => Some(S::Ready),
        (S::Initializing, E::OutcomeUnknown) => Some(S::NeedsReinit),
        (S::Ready, E::Begin) => Some(S::InTransaction),
        (S::InTransaction, E::CommitStarted) => Some(S::Committing),
        (S::InTransaction | S::AbortableError, E::AbortStarted) => Some(S::Aborting),
        // An abort retried after an unknown outcome of the commit or abort.
        (S::NeedsReinit, E::AbortStarted) => Some(S::Aborting),
        (S::Committing | S::Aborting, E::EndDone) => Some(S::Ready),
        (S::InTransaction | S::Committing | S::Aborting, E::OutcomeUnknown) => Some(S::NeedsReinit),
        (S::InTransaction | S::Committing, E::AbortableError) => Some(S::AbortableError),
        (S::AbortableError, E::AbortableError) => Some(S::AbortableError),
        _ => None,
    };
    to.ok_or(InvalidTransition { from, event })
}

#[cfg(test)]
mod tests {
    use super::*;
    use TxnEvent as E;
    use TxnState as S;

    const STATES: [TxnState; 9] = [
        S::Uninitialized,
        S::Initializing,
        S::Ready,
        S::InTransaction,
        S::Committing,
        S::Aborting,
        S::AbortableError,
        S::NeedsReinit,
        S::FatalError,
    ];
    const EVENTS: [TxnEvent; 9] = [
        E::InitStarted,
        E::InitDone,
        E::Begin,
        E::CommitStarted,
        E::AbortStarted,
        E::EndDone,
        E::OutcomeUnknown,
        E::AbortableError,
        E::FatalError,
    ];

    /// Every allowed transition; everything else must be refused.
    const ALLOWED: &[(TxnState, TxnEvent, TxnState)] = &[
        (S::Uninitialized, E::InitStarted, S::Initializing),
        (S::Uninitialized, E::FatalError, S::FatalError),
        (S::Initializing, E::InitDone, S::Ready),
        (S::Initializing, E::OutcomeUnknown, S::NeedsReinit),
        (S::Initializing, E::FatalError, S::FatalError),
        (S::Ready, E::InitStarted, S::Initializing),
        (S::Ready, E::Begin, S::InTransaction),
        (S::Ready, E::FatalError, S::FatalError),
        (S::InTransaction, E::CommitStarted, S::Committing),
        (S::InTransaction, E::AbortStarted, S::Aborting),
        (S::InTransaction, E::OutcomeUnknown, S::NeedsReinit),
        (S::InTransaction, E::AbortableError, S::AbortableError),
        (S::InTransaction, E::FatalError, S::FatalError),
        (S::Committing, E::EndDone, S::Ready),
        (S::Committing, E::OutcomeUnknown, S::NeedsReinit),
        (S::Committing, E::AbortableError, S::AbortableError),
        (S::Committing, E::FatalError, S::FatalError),
        (S::Aborting, E::EndDone, S::Ready),
        (S::Aborting, E::OutcomeUnknown, S::NeedsReinit),
        (S::Aborting, E::FatalError, S::FatalError),
        (S::AbortableError, E::AbortStarted, S::Aborting),
        (S::AbortableError, E::AbortableError, S::AbortableError),
        (S::AbortableError, E::FatalError, S::FatalError),
        (S::NeedsReinit, E::InitStarted, S::Initializing),
        (S::NeedsReinit, E::AbortStarted, S::Aborting),
        (S::NeedsReinit, E::FatalError, S::FatalError),
    ];

    #[test]
    fn every_state_event_pair_matches_the_table() {
        for from in STATES {
            for event in EVENTS {
                let expected = ALLOWED
                    .iter()
                    .find(|(f, e, _)| *f == from && *e == event)
                    .map(|(_, _, to)| *to);
                assert_eq!(
                    transition(from, event).ok(),
                    expected,
                    "{from:?} + {event:?}"
                );
            }
        }
    }

    #[test]
    fn no_transaction_starts_on_an_epoch_whose_last_outcome_is_unknown() {
        let state = transition(S::Committing, E::OutcomeUnknown).unwrap();
        assert!(transition(state, E::Begin).is_err());
        let state = transition(state, E::InitStarted).unwrap();
        let state = transition(state, E::InitDone).unwrap();
        assert_eq!(transition(state, E::Begin), Ok(S::InTransaction));
    }

    #[test]
    fn fatal_is_final() {
        for event in EVENTS {
            assert!(transition(S::FatalError, event).is_err(), "{event:?}");
        }
    }

    #[test]
    fn a_full_cycle() {
        let mut state = S::Uninitialized;
        for event in [
            E::InitStarted,
            E::InitDone,
            E::Begin,
            E::CommitStarted,
            E::EndDone,
            E::Begin,
            E::AbortableError,
            E::AbortStarted,
            E::EndDone,
        ] {
            state = transition(state, event).unwrap();
        }
        assert_eq!(state, S::Ready);
    }
}
