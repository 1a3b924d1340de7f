//! The materials store: entries by id, least-recently-used eviction,
//! time-to-live, and one fetch at a time per entry (single flight).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Instant;

use crate::materials::{DecryptionMaterials, EncryptionMaterials};

#[cfg(doc)]
use super::CachingCmm;

/// The time source of a [`CachingCmm`]; replace it to test expiry without sleeping.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The monotonic system clock ([`Instant::now`]), the default [`Clock`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A snapshot of a caching CMM's counters.
///
/// `hits`, `misses` and `underlying_calls` count the requests of one
/// [`CachingCmm`]; `evictions`, `expirations` and `entries` describe its
/// [`MaterialsCache`], which other caching CMMs may share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Requests answered from the cache.
    pub hits: u64,
    /// Cacheable requests that found no usable entry.
    pub misses: u64,
    /// Calls made to the underlying CMM (misses plus requests that may not
    /// be cached, such as streaming encryption of unknown length).
    pub underlying_calls: u64,
    /// Entries removed to make room (least recently used first).
    pub evictions: u64,
    /// Entries retired because they expired or reached a usage limit.
    pub expirations: u64,
    /// Entries held now.
    pub entries: usize,
}

pub(super) type EntryId = [u8; 64];

/// The cached materials. Each entry owns its copy, so dropping the entry
/// drops (and zeroizes) its plaintext data key.
pub(super) enum Cached {
    Encrypt(EncryptionMaterials),
    Decrypt(DecryptionMaterials),
}

pub(super) struct Entry {
    pub(super) materials: Arc<Cached>,
    pub(super) expires_at: Instant,
    pub(super) messages: u64,
    pub(super) bytes: u64,
    tick: u64,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) entries: HashMap<EntryId, Entry>,
    /// Last-use tick to entry id, least recently used first.
    recency: BTreeMap<u64, EntryId>,
    /// The entries by (expiry, id), soonest first: pruning looks at the
    /// first one only, so a lookup costs nothing while none is due.
    by_expiry: BTreeSet<(Instant, EntryId)>,
    /// Entries whose materials some thread is fetching right now.
    in_flight: HashSet<EntryId>,
    next_tick: u64,
}

pub(super) struct Shared {
    state: Mutex<State>,
    /// Signalled whenever an in-flight fetch ends.
    flight_done: Condvar,
    capacity: usize,
    pub(super) evictions: AtomicU64,
    pub(super) expirations: AtomicU64,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // No code path panics while holding the lock; recover regardless.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remove(&self, state: &mut State, id: &EntryId) {
        if let Some(entry) = state.entries.remove(id) {
            state.recency.remove(&entry.tick);
            state.by_expiry.remove(&(entry.expires_at, *id));
        }
    }

    pub(super) fn expire(&self, state: &mut State, id: &EntryId) {
        self.remove(state, id);
        self.expirations.fetch_add(1, Ordering::Relaxed);
    }

    /// Wait until no other thread fetches `id`; then either use the entry
    /// through `try_use`, or mark `id` in flight and return the [`Flight`]
    /// that the caller ends once it has fetched the materials.
    pub(super) fn lookup<T>(
        &self,
        id: EntryId,
        now: impl Fn() -> Instant,
        mut try_use: impl FnMut(&mut State, Instant) -> Option<T>,
    ) -> Result<T, Flight<'_>> {
        let mut state = self.lock();
        loop {
            let now = now();
            self.prune(&mut state, now);
            if let Some(found) = try_use(&mut state, now) {
                return Ok(found);
            }
            if !state.in_flight.contains(&id) {
                state.in_flight.insert(id);
                return Err(Flight { shared: self, id });
            }
            state = self.flight_done.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Retire every entry whose time to live has run out.
    fn prune(&self, state: &mut State, now: Instant) {
        while let Some(&(expires_at, id)) = state.by_expiry.first() {
            if now < expires_at {
                break;
            }
            self.expire(state, &id);
        }
    }

    pub(super) fn touch(state: &mut State, id: &EntryId) {
        let tick = state.next_tick;
        state.next_tick = state.next_tick.wrapping_add(1);
        if let Some(entry) = state.entries.get_mut(id) {
            state.recency.remove(&entry.tick);
            entry.tick = tick;
            state.recency.insert(tick, *id);
        }
    }

    fn insert(
        &self,
        state: &mut State,
        id: EntryId,
        materials: Cached,
        expires_at: Instant,
        messages: u64,
        bytes: u64,
    ) {
        if self.capacity == 0 {
            return;
        }
        self.remove(state, &id);
        let tick = state.next_tick;
        state.next_tick = state.next_tick.wrapping_add(1);
        state.entries.insert(id, Entry { materials: Arc::new(materials), expires_at, messages, bytes, tick });
        state.recency.insert(tick, id);
        state.by_expiry.insert((expires_at, id));
        while state.entries.len() > self.capacity {
            let Some((_, oldest)) = state.recency.first_key_value() else { break };
            let oldest = *oldest;
            self.remove(state, &oldest);
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// An in-memory, least-recently-used store of cryptographic materials.
///
/// Cheap to clone; clones share the same entries. One cache may serve several
/// [`CachingCmm`]s: they share entries only if they were built with the same
/// partition id.
#[derive(Clone)]
pub struct MaterialsCache {
    pub(super) shared: Arc<Shared>,
}

impl fmt::Debug for MaterialsCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaterialsCache").field("capacity", &self.capacity()).field("entries", &self.len()).finish()
    }
}

impl MaterialsCache {
    /// A cache holding at most `capacity` entries (0 caches nothing).
    pub fn new(capacity: usize) -> Self {
        MaterialsCache {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                flight_done: Condvar::new(),
                capacity,
                evictions: AtomicU64::new(0),
                expirations: AtomicU64::new(0),
            }),
        }
    }

    /// The maximum number of entries.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Entries held now (expired entries not yet pruned included).
    pub fn len(&self) -> usize {
        self.shared.lock().entries.len()
    }

    /// True if the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drop every entry (their data keys are zeroized).
    pub fn clear(&self) {
        let mut state = self.shared.lock();
        state.entries.clear();
        state.recency.clear();
        state.by_expiry.clear();
    }

    /// Weak handles to the materials of the entries held now, to check that
    /// a retired entry's data key is no longer held anywhere.
    #[doc(hidden)]
    pub fn entry_handles(&self) -> Vec<EntryHandle> {
        self.shared.lock().entries.values().map(|e| EntryHandle(Arc::downgrade(&e.materials))).collect()
    }
}

/// A weak reference to one entry's materials (see [`MaterialsCache::entry_handles`]).
#[doc(hidden)]
#[derive(Clone)]
pub struct EntryHandle(Weak<Cached>);

impl EntryHandle {
    /// True while the entry's materials (and data key) are still in memory.
    pub fn is_alive(&self) -> bool {
        self.0.strong_count() > 0
    }
}

impl fmt::Debug for EntryHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntryHandle(alive: {})", self.is_alive())
    }
}

/// Ends an in-flight fetch: records the result (if any) and wakes the waiters,
/// also when the fetch failed or panicked.
pub(super) struct Flight<'a> {
    shared: &'a Shared,
    id: EntryId,
}

impl Flight<'_> {
    pub(super) fn finish(self, store: Option<(Cached, Instant, u64, u64)>) {
        let mut state = self.shared.lock();
        if let Some((materials, expires_at, messages, bytes)) = store {
            self.shared.insert(&mut state, self.id, materials, expires_at, messages, bytes);
        }
        // `Drop` clears the in-flight mark and notifies.
        drop(state);
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.in_flight.remove(&self.id);
        drop(state);
        self.shared.flight_done.notify_all();
    }
}
