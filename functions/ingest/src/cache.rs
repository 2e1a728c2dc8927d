//! A small time-bounded cache for the lookups every ingest request repeats (API key to
//! organization, metric definitions, subscription existence). A warm Lambda container then
//! reads DynamoDB once a minute per key instead of once per event, which is most of what
//! separates the per-event cost from the one-write floor.
//!
//! Only positive answers are cached, so a metric or subscription created a moment ago is seen
//! at once; a deleted one (or a revoked key) may still be accepted for up to [`TTL`].

use std::{
    collections::HashMap,
    hash::Hash,
    sync::Mutex,
    time::{Duration, Instant},
};

/// How long an entry is trusted.
pub const TTL: Duration = Duration::from_secs(60);

/// The most entries kept; past it the cache starts over (R19).
const CAPACITY: usize = 10_000;

/// A map whose entries expire after [`TTL`].
#[derive(Debug)]
pub struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> Default for TtlCache<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// The value of `key` if it was stored less than [`TTL`] ago.
    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < TTL)
            .map(|(_, v)| v.clone())
    }

    /// Stores `value` under `key`.
    pub fn put(&self, key: K, value: V) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(key, (Instant::now(), value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_value_is_returned_and_an_absent_one_is_not() {
        let cache: TtlCache<String, u32> = TtlCache::default();
        assert_eq!(cache.get(&"a".to_owned()), None);
        cache.put("a".to_owned(), 7);
        assert_eq!(cache.get(&"a".to_owned()), Some(7));
    }

    #[test]
    fn the_cache_starts_over_when_full_instead_of_growing() {
        let cache: TtlCache<usize, usize> = TtlCache::default();
        for i in 0..=CAPACITY {
            cache.put(i, i);
        }
        let size = cache.entries.lock().map(|e| e.len()).unwrap_or(usize::MAX);
        assert_eq!(size, 1, "the insert past capacity cleared the rest");
    }
}
