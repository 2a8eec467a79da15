//! State of stateful filters (breakers, balancers, caches, counters), kept across reloads.
//!
//! A filter asks [`FilterContext::state`](crate::FilterContext::state) for its state when it is
//! built. The state is keyed by the route id, the factory name and a fingerprint of the
//! filter's arguments: a reload that leaves all three unchanged hands the filter the object it
//! had; a changed route id or argument starts fresh.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Identifies one filter's state.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct StateKey {
    /// The route id.
    pub route: String,
    /// The factory name.
    pub factory: String,
    /// [`Args::fingerprint`](weir_predicates::Args::fingerprint) of the filter's arguments.
    pub args: u64,
}

struct Slot {
    value: Arc<dyn Any + Send + Sync>,
    generation: u64,
}

/// The store. Compiling a config is one generation; after the new config is swapped in,
/// [`StateStore::retain`] drops the state that generation did not ask for.
#[derive(Default)]
pub struct StateStore {
    slots: Mutex<HashMap<StateKey, Slot>>,
    generation: AtomicU64,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("len", &self.len())
            .finish()
    }
}

impl StateStore {
    /// Starts a generation (one compile); returns its number.
    pub fn begin(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The state under `key`, created with `init` if there is none (or if it has another type).
    pub fn get_or_init<T: Any + Send + Sync>(
        &self,
        key: StateKey,
        generation: u64,
        init: impl FnOnce() -> T,
    ) -> Arc<T> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.get_mut(&key) {
            if let Ok(value) = slot.value.clone().downcast::<T>() {
                slot.generation = slot.generation.max(generation);
                return value;
            }
        }
        let value = Arc::new(init());
        slots.insert(
            key,
            Slot {
                value: value.clone(),
                generation,
            },
        );
        value
    }

    /// Drops the state that generation `generation` (the config now serving) did not use.
    pub fn retain(&self, generation: u64) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|_, slot| slot.generation >= generation);
    }

    /// Every kept state of type `T`, with its key.
    pub fn values<T: Any + Send + Sync>(&self) -> Vec<(StateKey, Arc<T>)> {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .iter()
            .filter_map(|(key, slot)| {
                slot.value
                    .clone()
                    .downcast::<T>()
                    .ok()
                    .map(|v| (key.clone(), v))
            })
            .collect()
    }

    /// How many states are kept.
    pub fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no state is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn key(route: &str, args: u64) -> StateKey {
        StateKey {
            route: route.into(),
            factory: "Counter".into(),
            args,
        }
    }

    #[test]
    fn same_key_survives_a_generation_changed_key_starts_fresh() {
        let store = StateStore::default();
        let g1 = store.begin();
        let a = store.get_or_init(key("r", 1), g1, || AtomicUsize::new(0));
        a.fetch_add(5, Ordering::Relaxed);
        store.retain(g1);
        let g2 = store.begin();
        let same = store.get_or_init(key("r", 1), g2, || AtomicUsize::new(0));
        let changed = store.get_or_init(key("r", 2), g2, || AtomicUsize::new(0));
        assert_eq!(same.load(Ordering::Relaxed), 5);
        assert_eq!(changed.load(Ordering::Relaxed), 0);
        store.retain(g2);
        assert_eq!(store.len(), 2);
        let g3 = store.begin();
        store.get_or_init(key("r", 2), g3, || AtomicUsize::new(0));
        store.retain(g3);
        assert_eq!(store.len(), 1);
    }
}
