//! A dedup store in process memory: for tests, and for effects whose own
//! state also lives (and dies) with the process.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use super::{DedupError, DedupStore, EffectFuture, Processed, Scoped};

/// Processed ids in a `HashSet`, optionally bounded.
///
/// There is no transaction: an id is recorded when its effect returns `Ok`,
/// and a failed or cancelled effect records nothing. With a bound
/// ([`bounded`](Self::bounded)) the oldest ids are forgotten first (FIFO),
/// so a redelivery older than the last `max_ids` messages runs its effect
/// again: size the bound above what can be redelivered (e.g. the records
/// between two offset commits).
#[derive(Debug, Default)]
pub struct InMemoryDedupStore {
    state: Mutex<State>,
    max_ids: Option<usize>,
}

#[derive(Debug, Default)]
struct State {
    done: HashSet<Arc<[u8]>>,
    /// Insertion order of `done`, kept only when bounded.
    order: VecDeque<Arc<[u8]>>,
    /// Ids whose effect is running; others with the same id wait here.
    running: HashMap<Arc<[u8]>, Arc<Notify>>,
}

impl InMemoryDedupStore {
    /// A store remembering every id.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store remembering the last `max_ids` ids (oldest evicted first).
    ///
    /// # Panics
    /// If `max_ids` is 0.
    pub fn bounded(max_ids: usize) -> Self {
        assert!(max_ids > 0, "a dedup store must remember at least one id");
        Self {
            state: Mutex::default(),
            max_ids: Some(max_ids),
        }
    }

    /// Whether `id` is recorded as processed.
    pub fn contains(&self, id: &[u8]) -> bool {
        self.lock().done.contains(id)
    }

    /// How many ids are recorded.
    pub fn len(&self) -> usize {
        self.lock().done.len()
    }

    /// Whether no id is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements, so a panic
        // elsewhere while holding the lock leaves nothing half-done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl DedupStore for InMemoryDedupStore {
    type Tx<'t> = ();

    async fn process_once<'env, E, F>(
        &self,
        id: &[u8],
        effect: F,
    ) -> Result<Processed, DedupError<E>>
    where
        E: Send,
        F: for<'t> FnOnce(&'t Scoped<'env, ()>) -> EffectFuture<'t, E> + Send,
    {
        // Claim the id, or wait for whoever runs it and look again.
        let id: Arc<[u8]> = loop {
            // In a block so the (non-Send) guard is gone before awaiting.
            let notified = {
                let mut state = self.lock();
                if state.done.contains(id) {
                    return Ok(Processed::Duplicate);
                }
                let Some(notify) = state.running.get(id) else {
                    let id: Arc<[u8]> = Arc::from(id);
                    state.running.insert(Arc::clone(&id), Arc::default());
                    break id;
                };
                // Registered under the lock, so the owner's wake-up can't be missed.
                Arc::clone(notify).notified_owned()
            };
            notified.await;
        };
        let claim = Claim {
            store: self,
            id,
            succeeded: false,
        };
        effect(&Scoped::new(())).await.map_err(DedupError::Effect)?;
        claim.succeed();
        Ok(Processed::Done)
    }
}

/// An id being processed; dropping it (error, panic, cancellation) releases
/// the id unrecorded, `succeed` records it.
struct Claim<'s> {
    store: &'s InMemoryDedupStore,
    id: Arc<[u8]>,
    succeeded: bool,
}

impl Claim<'_> {
    fn succeed(mut self) {
        self.succeeded = true;
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let notify = {
            let mut state = self.store.lock();
            if self.succeeded {
                state.done.insert(Arc::clone(&self.id));
                if let Some(max) = self.store.max_ids {
                    state.order.push_back(Arc::clone(&self.id));
                    while state.order.len() > max {
                        if let Some(old) = state.order.pop_front() {
                            state.done.remove(&old);
                        }
                    }
                }
            }
            state.running.remove(&self.id)
        };
        if let Some(notify) = notify {
            notify.notify_waiters();
        }
    }
}
