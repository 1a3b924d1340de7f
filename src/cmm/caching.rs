//! A CMM that caches the materials of another CMM, to spare the keyring (for
//! example a PKCS#11 token) one wrap or unwrap per message.
//!
//! The behaviour follows the AWS Encryption SDK's caching CMM and local
//! cryptographic materials cache: entries are found by a SHA-512 entry
//! identifier over the partition id, the suite, the encryption context (and,
//! for decryption, the sorted encrypted data keys); every entry has a
//! time-to-live; encryption entries also count the messages and bytes they
//! protected and are retired once a limit is reached; the cache holds a
//! bounded number of entries and evicts the least recently used.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::materials::{
    CommitmentPolicy, CryptographicMaterialsManager, DecryptMaterialsRequest, DecryptionMaterials, EncryptedDataKey,
    EncryptionContext, EncryptionMaterials, EncryptionMaterialsRequest, Kdf, Keyring,
};

use super::DefaultCmm;

/// Messages one data key may protect when no limit is configured (2^32).
pub const DEFAULT_MAX_MESSAGES: u64 = 1 << 32;
/// Bytes one data key may protect when no limit is configured (2^63 - 1),
/// which is also the largest accepted limit.
pub const DEFAULT_MAX_BYTES: u64 = i64::MAX as u64;
/// Entries a cache holds when no capacity is configured.
pub const DEFAULT_CAPACITY: usize = 1000;
/// How many least recently used entries are checked for expiry on each access.
const PRUNE_TAIL: usize = 8;

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

type EntryId = [u8; 64];

/// The cached materials. Each entry owns its copy, so dropping the entry
/// drops (and zeroizes) its plaintext data key.
enum Cached {
    Encrypt(EncryptionMaterials),
    Decrypt(DecryptionMaterials),
}

struct Entry {
    materials: Arc<Cached>,
    expires_at: Instant,
    messages: u64,
    bytes: u64,
    tick: u64,
}

#[derive(Default)]
struct State {
    entries: HashMap<EntryId, Entry>,
    /// Last-use tick to entry id, least recently used first.
    recency: BTreeMap<u64, EntryId>,
    /// Entries whose materials some thread is fetching right now.
    in_flight: HashSet<EntryId>,
    next_tick: u64,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled whenever an in-flight fetch ends.
    flight_done: Condvar,
    capacity: usize,
    evictions: AtomicU64,
    expirations: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code path panics while holding the lock; recover regardless.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remove(&self, state: &mut State, id: &EntryId) {
        if let Some(entry) = state.entries.remove(id) {
            state.recency.remove(&entry.tick);
        }
    }

    fn expire(&self, state: &mut State, id: &EntryId) {
        self.remove(state, id);
        self.expirations.fetch_add(1, Ordering::Relaxed);
    }

    /// Retire TTL-expired entries among the least recently used ones.
    fn prune(&self, state: &mut State, now: Instant) {
        let stale: Vec<EntryId> = state
            .recency
            .values()
            .take(PRUNE_TAIL)
            .filter(|id| state.entries.get(*id).is_some_and(|e| now >= e.expires_at))
            .copied()
            .collect();
        for id in &stale {
            self.expire(state, id);
        }
    }

    fn touch(state: &mut State, id: &EntryId) {
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
        while state.entries.len() > self.capacity {
            let Some((_, oldest)) = state.recency.pop_first() else { break };
            state.entries.remove(&oldest);
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
    shared: Arc<Shared>,
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
struct Flight<'a> {
    shared: &'a Shared,
    id: EntryId,
}

impl Flight<'_> {
    fn finish(self, store: Option<(Cached, Instant, u64, u64)>) {
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

/// A CMM that caches the materials of an underlying CMM.
///
/// Encryption materials are reused for up to [`max_age`](CachingCmmBuilder::max_age),
/// [`max_messages_per_key`](CachingCmmBuilder::max_messages_per_key) messages and
/// [`max_bytes_per_key`](CachingCmmBuilder::max_bytes_per_key) bytes, whichever
/// comes first; a data key is never used past a limit. Decryption materials are
/// reused for up to `max_age`.
///
/// * Entries are found by a SHA-512 identifier over the partition id, the
///   suite, the encryption context and the commitment policy; decryption
///   entries also cover the sorted encrypted data keys and the context the
///   caller reproduced. Different contexts therefore never share a data key.
/// * Requests of unknown plaintext length (streaming encryption), requests
///   larger than the byte limit and suites without key derivation (0x0014,
///   0x0046, 0x0078) always go to the underlying CMM and are never cached.
/// * For signed suites the cached encryption materials include the signing
///   key, so messages that share a data key also share the signing key, as
///   in the AWS Encryption SDKs.
/// * When many threads miss the same entry at once, one of them asks the
///   underlying CMM and the others wait for its result.
/// * Plaintext data keys are zeroized when their entry is evicted, expires or
///   reaches a limit (materials already handed out are the caller's copies).
///
/// # Example
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// use hsm_keyring::cmm::CachingCmm;
/// use hsm_keyring::{Client, EncryptionContext, Keyring};
///
/// # fn run(keyring: Arc<dyn Keyring>) -> hsm_keyring::Result<()> {
/// let cmm = CachingCmm::builder_for_keyring(keyring)
///     .max_age(Duration::from_secs(300))
///     .max_messages_per_key(1000)
///     .max_bytes_per_key(1 << 30)
///     .capacity(100)
///     .build()?;
/// let client = Client::new();
/// let context = EncryptionContext::from_pairs([("tenant", "a")])?;
/// for record in [&b"first"[..], b"second"] {
///     let message = client.encrypt(&cmm, record, &context)?;
///     # let _ = message;
/// }
/// let stats = cmm.stats();
/// assert_eq!(stats.underlying_calls, 1);
/// assert_eq!(stats.hits, 1);
/// # Ok(())
/// # }
/// ```
pub struct CachingCmm<C = Arc<dyn CryptographicMaterialsManager>> {
    inner: C,
    cache: MaterialsCache,
    partition_hash: [u8; 64],
    max_age: Duration,
    max_messages: u64,
    max_bytes: u64,
    clock: Arc<dyn Clock>,
    hits: AtomicU64,
    misses: AtomicU64,
    underlying_calls: AtomicU64,
}

impl<C: fmt::Debug> fmt::Debug for CachingCmm<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingCmm")
            .field("inner", &self.inner)
            .field("cache", &self.cache)
            .field("max_age", &self.max_age)
            .field("max_messages", &self.max_messages)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

/// Builder for [`CachingCmm`]; [`max_age`](Self::max_age) is required.
#[derive(Debug)]
#[must_use]
pub struct CachingCmmBuilder<C> {
    inner: C,
    max_age: Option<Duration>,
    max_messages: u64,
    max_bytes: u64,
    capacity: Option<usize>,
    cache: Option<MaterialsCache>,
    partition_id: Option<String>,
    clock: Option<Arc<dyn Clock>>,
}

impl<C: CryptographicMaterialsManager> CachingCmmBuilder<C> {
    /// How long an entry may be used after it was made (required, more than zero).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Messages one data key may encrypt (at least 1; default 2^32).
    pub fn max_messages_per_key(mut self, max: u64) -> Self {
        self.max_messages = max;
        self
    }

    /// Plaintext bytes one data key may encrypt (at most 2^63 - 1, the default).
    pub fn max_bytes_per_key(mut self, max: u64) -> Self {
        self.max_bytes = max;
        self
    }

    /// Entries of a new private cache (default [`DEFAULT_CAPACITY`]); not
    /// together with [`cache`](Self::cache).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// Use this (possibly shared) cache instead of a new private one.
    pub fn cache(mut self, cache: MaterialsCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Share entries with the other caching CMMs of the same cache that use
    /// this partition id. Without one, the CMM uses a random partition of its own.
    pub fn partition_id(mut self, partition_id: impl Into<String>) -> Self {
        self.partition_id = Some(partition_id.into());
        self
    }

    /// Replace the time source (for tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Check the settings and build the CMM.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if `max_age` is missing or zero, `max_messages_per_key`
    /// is zero, `max_bytes_per_key` exceeds 2^63 - 1, or both `capacity` and
    /// `cache` were given.
    pub fn build(self) -> Result<CachingCmm<C>> {
        let max_age = self.max_age.ok_or_else(|| Error::config("the caching CMM needs a max age"))?;
        if max_age.is_zero() {
            return Err(Error::config("the caching CMM's max age must be more than zero"));
        }
        if self.max_messages == 0 {
            return Err(Error::config("the caching CMM's message limit per data key must be at least 1"));
        }
        if self.max_bytes > DEFAULT_MAX_BYTES {
            return Err(Error::config(format!(
                "the caching CMM's byte limit per data key may not exceed {DEFAULT_MAX_BYTES}"
            )));
        }
        let cache = match (self.cache, self.capacity) {
            (Some(_), Some(_)) => {
                return Err(Error::config("give the caching CMM either a capacity or a shared cache, not both"))
            }
            (Some(cache), None) => cache,
            (None, capacity) => MaterialsCache::new(capacity.unwrap_or(DEFAULT_CAPACITY)),
        };
        let partition_hash = match &self.partition_id {
            Some(id) => crate::crypto::sha512(id.as_bytes()),
            None => {
                let mut random = [0u8; 32];
                crate::crypto::fill_random(&mut random)?;
                crate::crypto::sha512(&random)
            }
        };
        Ok(CachingCmm {
            inner: self.inner,
            cache,
            partition_hash,
            max_age,
            max_messages: self.max_messages,
            max_bytes: self.max_bytes,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            underlying_calls: AtomicU64::new(0),
        })
    }
}

impl<C: CryptographicMaterialsManager> CachingCmm<C> {
    /// Start building a caching CMM around `inner`.
    pub fn builder(inner: C) -> CachingCmmBuilder<C> {
        CachingCmmBuilder {
            inner,
            max_age: None,
            max_messages: DEFAULT_MAX_MESSAGES,
            max_bytes: DEFAULT_MAX_BYTES,
            capacity: None,
            cache: None,
            partition_id: None,
            clock: None,
        }
    }

    /// The CMM this one asks on a miss.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// The cache the entries live in.
    pub fn cache(&self) -> &MaterialsCache {
        &self.cache
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            underlying_calls: self.underlying_calls.load(Ordering::Relaxed),
            evictions: self.cache.shared.evictions.load(Ordering::Relaxed),
            expirations: self.cache.shared.expirations.load(Ordering::Relaxed),
            entries: self.cache.len(),
        }
    }

    fn encrypt_underlying(&self, request: EncryptionMaterialsRequest) -> Result<EncryptionMaterials> {
        self.underlying_calls.fetch_add(1, Ordering::Relaxed);
        self.inner.get_encryption_materials(request)
    }

    fn decrypt_underlying(&self, request: DecryptMaterialsRequest) -> Result<DecryptionMaterials> {
        self.underlying_calls.fetch_add(1, Ordering::Relaxed);
        self.inner.decrypt_materials(request)
    }

    /// Wait until no other thread fetches `id`; then either use the entry
    /// through `try_use`, or mark `id` in flight and return `None`.
    fn lookup<T>(&self, id: &EntryId, mut try_use: impl FnMut(&mut State, Instant) -> Option<T>) -> Option<T> {
        let shared = &*self.cache.shared;
        let mut state = shared.lock();
        loop {
            let now = self.clock.now();
            shared.prune(&mut state, now);
            if let Some(found) = try_use(&mut state, now) {
                return Some(found);
            }
            if !state.in_flight.contains(id) {
                state.in_flight.insert(*id);
                return None;
            }
            state = shared.flight_done.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl<K: Keyring> CachingCmm<DefaultCmm<K>> {
    /// Start building a caching CMM around a [`DefaultCmm`] of `keyring`.
    pub fn builder_for_keyring(keyring: K) -> CachingCmmBuilder<DefaultCmm<K>> {
        CachingCmm::builder(DefaultCmm::new(keyring))
    }
}

fn policy_byte(policy: CommitmentPolicy) -> u8 {
    match policy {
        CommitmentPolicy::ForbidEncryptAllowDecrypt => 1,
        CommitmentPolicy::RequireEncryptAllowDecrypt => 2,
        CommitmentPolicy::RequireEncryptRequireDecrypt => 3,
    }
}

fn context_hash(context: &EncryptionContext) -> Result<[u8; 64]> {
    Ok(crate::crypto::sha512(&context.serialize()?))
}

/// The header's EDK entry layout: three u16-length-prefixed fields.
fn serialize_edk(edk: &EncryptedDataKey) -> Option<Vec<u8>> {
    let parts = [edk.provider_id.as_bytes(), &edk.provider_info, &edk.ciphertext];
    let mut out = Vec::with_capacity(6 + parts.iter().map(|p| p.len()).sum::<usize>());
    for part in parts {
        out.extend_from_slice(&u16::try_from(part.len()).ok()?.to_be_bytes());
        out.extend_from_slice(part);
    }
    Some(out)
}

impl<C: CryptographicMaterialsManager> CachingCmm<C> {
    /// The specification's formula, followed by the commitment policy.
    fn encrypt_entry_id(&self, request: &EncryptionMaterialsRequest) -> Option<EntryId> {
        let mut buf = Vec::with_capacity(64 + 3 + 64 + 1);
        buf.extend_from_slice(&self.partition_hash);
        match request.algorithm_suite {
            None => buf.push(0),
            Some(suite) => {
                buf.push(1);
                buf.extend_from_slice(&suite.id().to_be_bytes());
            }
        }
        buf.extend_from_slice(&context_hash(&request.encryption_context).ok()?);
        buf.push(policy_byte(request.commitment_policy));
        Some(crate::crypto::sha512(&buf))
    }

    /// The specification's formula, followed by the commitment policy and the
    /// hash of the reproduced context (which the underlying CMM checks).
    fn decrypt_entry_id(&self, request: &DecryptMaterialsRequest) -> Option<EntryId> {
        let mut edk_hashes = Vec::with_capacity(request.encrypted_data_keys.len());
        for edk in &request.encrypted_data_keys {
            edk_hashes.push(crate::crypto::sha512(&serialize_edk(edk)?));
        }
        edk_hashes.sort_unstable();
        let mut buf = Vec::with_capacity(64 * (edk_hashes.len() + 4) + 4);
        buf.extend_from_slice(&self.partition_hash);
        buf.extend_from_slice(&request.algorithm_suite.id().to_be_bytes());
        for hash in &edk_hashes {
            buf.extend_from_slice(hash);
        }
        buf.extend_from_slice(&[0u8; 64]);
        buf.extend_from_slice(&context_hash(&request.encryption_context).ok()?);
        buf.push(policy_byte(request.commitment_policy));
        match &request.reproduced_encryption_context {
            None => buf.push(0),
            Some(reproduced) => {
                buf.push(1);
                buf.extend_from_slice(&context_hash(reproduced).ok()?);
            }
        }
        Some(crate::crypto::sha512(&buf))
    }
}

impl<C: CryptographicMaterialsManager> CryptographicMaterialsManager for CachingCmm<C> {
    fn get_encryption_materials(&self, request: EncryptionMaterialsRequest) -> Result<EncryptionMaterials> {
        let Some(len) = request.max_plaintext_length else {
            return self.encrypt_underlying(request);
        };
        if request.algorithm_suite.is_some_and(|s| s.kdf() == Kdf::Identity) || len > self.max_bytes {
            return self.encrypt_underlying(request);
        }
        let Some(id) = self.encrypt_entry_id(&request) else {
            return self.encrypt_underlying(request);
        };
        let shared = &*self.cache.shared;
        let (max_messages, max_bytes) = (self.max_messages, self.max_bytes);
        let hit = self.lookup(&id, |state, now| {
            let entry = state.entries.get_mut(&id)?;
            let Cached::Encrypt(materials) = &*entry.materials else { return None };
            let messages = entry.messages.checked_add(1).filter(|&m| m <= max_messages);
            let bytes = entry.bytes.checked_add(len).filter(|&b| b <= max_bytes);
            let (Some(messages), Some(bytes), false) = (messages, bytes, now >= entry.expires_at) else {
                shared.expire(state, &id);
                return None;
            };
            let materials = materials.clone();
            entry.messages = messages;
            entry.bytes = bytes;
            if messages == max_messages || bytes == max_bytes {
                // Used up: no later message may take this key.
                shared.expire(state, &id);
            } else {
                Shared::touch(state, &id);
            }
            Some(materials)
        });
        if let Some(materials) = hit {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(materials);
        }
        let flight = Flight { shared, id };
        self.misses.fetch_add(1, Ordering::Relaxed);
        let mut inner_request = request;
        inner_request.max_plaintext_length = Some(self.max_bytes);
        let materials = self.encrypt_underlying(inner_request)?;
        let cacheable = materials.algorithm_suite.kdf() != Kdf::Identity
            && materials.plaintext_data_key.is_some()
            && self.max_messages > 1
            && len < self.max_bytes;
        let store = cacheable.then(|| (Cached::Encrypt(materials.clone()), self.clock.now() + self.max_age, 1, len));
        flight.finish(store);
        Ok(materials)
    }

    fn decrypt_materials(&self, request: DecryptMaterialsRequest) -> Result<DecryptionMaterials> {
        if request.algorithm_suite.kdf() == Kdf::Identity {
            return self.decrypt_underlying(request);
        }
        let Some(id) = self.decrypt_entry_id(&request) else {
            return self.decrypt_underlying(request);
        };
        let shared = &*self.cache.shared;
        let hit = self.lookup(&id, |state, now| {
            let entry = state.entries.get(&id)?;
            let Cached::Decrypt(materials) = &*entry.materials else { return None };
            if now >= entry.expires_at {
                shared.expire(state, &id);
                return None;
            }
            let materials = materials.clone();
            Shared::touch(state, &id);
            Some(materials)
        });
        if let Some(materials) = hit {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(materials);
        }
        let flight = Flight { shared, id };
        self.misses.fetch_add(1, Ordering::Relaxed);
        let materials = self.decrypt_underlying(request)?;
        let store = (materials.plaintext_data_key.is_some())
            .then(|| (Cached::Decrypt(materials.clone()), self.clock.now() + self.max_age, 0, 0));
        flight.finish(store);
        Ok(materials)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;
    use std::thread;

    use super::*;
    use crate::crypto::{AeadKey, SoftwareSigner, IV_LEN, TAG_LEN};
    use crate::materials::context::PUBLIC_KEY_FIELD;
    use crate::materials::{AlgorithmSuite, DataKey, FooterSigner};

    const SUITE: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    const POLICY: CommitmentPolicy = CommitmentPolicy::RequireEncryptRequireDecrypt;

    /// A tiny AES-GCM "keyring" CMM that counts its calls.
    #[derive(Debug)]
    struct TestCmm {
        wrapping: AeadKey,
        encrypt_calls: AtomicU64,
        decrypt_calls: AtomicU64,
        delay: Duration,
        fail: bool,
        last_max_len: Mutex<Option<u64>>,
    }

    impl TestCmm {
        fn new() -> Self {
            TestCmm {
                wrapping: AeadKey::new(&[0x11; 32]).unwrap(),
                encrypt_calls: AtomicU64::new(0),
                decrypt_calls: AtomicU64::new(0),
                delay: Duration::ZERO,
                fail: false,
                last_max_len: Mutex::new(None),
            }
        }
        fn calls(&self) -> u64 {
            self.encrypt_calls.load(Ordering::SeqCst)
        }
    }

    impl CryptographicMaterialsManager for TestCmm {
        fn get_encryption_materials(&self, request: EncryptionMaterialsRequest) -> Result<EncryptionMaterials> {
            self.encrypt_calls.fetch_add(1, Ordering::SeqCst);
            *self.last_max_len.lock().unwrap() = request.max_plaintext_length;
            thread::sleep(self.delay);
            if self.fail {
                return Err(Error::keyring("test", "refused"));
            }
            let suite = request.algorithm_suite.unwrap_or(request.commitment_policy.default_suite());
            let mut materials = EncryptionMaterials::new(suite, request.encryption_context.clone());
            if let Some(curve) = suite.signature() {
                let signer = SoftwareSigner::generate(curve);
                materials.encryption_context.insert_reserved(PUBLIC_KEY_FIELD, format!("{:?}", signer.public_key()));
                materials.signing_key = Some(Arc::new(signer));
            }
            let key = DataKey::generate(suite.key_len())?;
            let mut iv = [0u8; IV_LEN];
            crate::crypto::fill_random(&mut iv)?;
            let mut ct = key.as_bytes().to_vec();
            let tag = self.wrapping.seal_in_place(&iv, b"test", &mut ct)?;
            ct.extend_from_slice(&tag);
            materials.set_data_key(key)?;
            materials.encrypted_data_keys.push(EncryptedDataKey {
                provider_id: "test".into(),
                provider_info: iv.to_vec(),
                ciphertext: ct,
            });
            Ok(materials)
        }

        fn decrypt_materials(&self, request: DecryptMaterialsRequest) -> Result<DecryptionMaterials> {
            self.decrypt_calls.fetch_add(1, Ordering::SeqCst);
            thread::sleep(self.delay);
            for edk in &request.encrypted_data_keys {
                let (Ok(iv), Some(split)) =
                    (<[u8; IV_LEN]>::try_from(&edk.provider_info[..]), edk.ciphertext.len().checked_sub(TAG_LEN))
                else {
                    continue;
                };
                let mut key = edk.ciphertext[..split].to_vec();
                let tag = <[u8; TAG_LEN]>::try_from(&edk.ciphertext[split..]).unwrap();
                if edk.provider_id == "test" && self.wrapping.open_in_place(&iv, b"test", &mut key, &tag).is_ok() {
                    let mut m = DecryptionMaterials::new(request.algorithm_suite, request.encryption_context.clone());
                    m.set_data_key(DataKey::new(key))?;
                    return Ok(m);
                }
            }
            Err(Error::NotMine { keyring: "test".into(), edk_count: request.encrypted_data_keys.len() })
        }
    }

    #[derive(Debug)]
    struct TestClock {
        base: Instant,
        offset: Mutex<Duration>,
    }

    impl TestClock {
        fn new() -> Arc<Self> {
            Arc::new(TestClock { base: Instant::now(), offset: Mutex::new(Duration::ZERO) })
        }
        fn advance(&self, by: Duration) {
            *self.offset.lock().unwrap() += by;
        }
    }

    impl Clock for TestClock {
        fn now(&self) -> Instant {
            self.base + *self.offset.lock().unwrap()
        }
    }

    fn ctx(value: &str) -> EncryptionContext {
        EncryptionContext::from_pairs([("purpose", value)]).unwrap()
    }

    fn enc_request(context: &EncryptionContext, len: Option<u64>) -> EncryptionMaterialsRequest {
        let mut r = EncryptionMaterialsRequest::new(context.clone(), POLICY);
        r.algorithm_suite = Some(SUITE);
        r.max_plaintext_length = len;
        r
    }

    fn key_of(m: &EncryptionMaterials) -> Vec<u8> {
        m.plaintext_data_key.as_ref().unwrap().as_bytes().to_vec()
    }

    fn caching(inner: TestCmm) -> CachingCmmBuilder<TestCmm> {
        CachingCmm::builder(inner).max_age(Duration::from_secs(600))
    }

    #[test]
    fn message_limit_is_exact() {
        let cmm = caching(TestCmm::new()).max_messages_per_key(3).build().unwrap();
        let c = ctx("a");
        let keys: Vec<Vec<u8>> =
            (0..7).map(|_| key_of(&cmm.get_encryption_materials(enc_request(&c, Some(10))).unwrap())).collect();
        assert_eq!(keys[0], keys[1]);
        assert_eq!(keys[0], keys[2]);
        assert_ne!(keys[2], keys[3], "message 4 must get a fresh data key");
        assert_eq!(keys[3], keys[5]);
        assert_ne!(keys[5], keys[6], "message 7 must get a fresh data key");
        assert_eq!(cmm.inner().calls(), 3);
        let stats = cmm.stats();
        assert_eq!((stats.hits, stats.misses, stats.underlying_calls), (4, 3, 3));
        assert_eq!(*cmm.inner().last_max_len.lock().unwrap(), Some(DEFAULT_MAX_BYTES));
    }

    #[test]
    fn byte_limit_is_exact() {
        let cmm = caching(TestCmm::new()).max_bytes_per_key(10).build().unwrap();
        let c = ctx("a");
        let get = |len| key_of(&cmm.get_encryption_materials(enc_request(&c, Some(len))).unwrap());
        let first = get(3);
        assert_eq!(get(3), first);
        assert_eq!(get(3), first);
        assert_eq!(get(1), first, "byte 10 still fits the limit");
        let second = get(1);
        assert_ne!(second, first, "byte 11 must get a fresh data key");
        assert_ne!(get(10), second, "9 + 1 + 10 bytes exceed the limit");
        assert_eq!(cmm.inner().calls(), 3);
        // The underlying CMM is told the limit.
        assert_eq!(*cmm.inner().last_max_len.lock().unwrap(), Some(10));
        // A request larger than the limit is never cached.
        let before = cmm.cache().len();
        cmm.get_encryption_materials(enc_request(&c, Some(11))).unwrap();
        cmm.get_encryption_materials(enc_request(&c, Some(11))).unwrap();
        assert_eq!(cmm.inner().calls(), 5);
        assert_eq!(cmm.cache().len(), before);
    }

    #[test]
    fn expired_entries_are_not_used() {
        let clock = TestClock::new();
        let cmm = caching(TestCmm::new()).max_age(Duration::from_secs(10)).clock(clock.clone()).build().unwrap();
        let c = ctx("a");
        let first = key_of(&cmm.get_encryption_materials(enc_request(&c, Some(1))).unwrap());
        clock.advance(Duration::from_secs(9));
        assert_eq!(key_of(&cmm.get_encryption_materials(enc_request(&c, Some(1))).unwrap()), first);
        let handles = cmm.cache().entry_handles();
        clock.advance(Duration::from_secs(1));
        let third = key_of(&cmm.get_encryption_materials(enc_request(&c, Some(1))).unwrap());
        assert_ne!(third, first);
        assert_eq!(cmm.inner().calls(), 2);
        assert!(handles.iter().all(|h| !h.is_alive()), "the expired entry's key must be dropped");
        assert_eq!(cmm.stats().expirations, 1);
    }

    #[test]
    fn different_contexts_never_share_a_key() {
        let cmm = caching(TestCmm::new()).build().unwrap();
        let a = key_of(&cmm.get_encryption_materials(enc_request(&ctx("a"), Some(1))).unwrap());
        let b = key_of(&cmm.get_encryption_materials(enc_request(&ctx("b"), Some(1))).unwrap());
        let empty = key_of(&cmm.get_encryption_materials(enc_request(&EncryptionContext::new(), Some(1))).unwrap());
        assert_ne!(a, b);
        assert_ne!(a, empty);
        assert_eq!(cmm.inner().calls(), 3);
        let again = cmm.get_encryption_materials(enc_request(&ctx("a"), Some(1))).unwrap();
        assert_eq!(key_of(&again), a);
        assert_eq!(again.encryption_context, ctx("a"));
        assert_eq!(cmm.inner().calls(), 3);
        // Another suite or policy is another entry.
        let mut other_suite = enc_request(&ctx("a"), Some(1));
        other_suite.algorithm_suite = None;
        assert_ne!(key_of(&cmm.get_encryption_materials(other_suite).unwrap()), a);
        assert_eq!(cmm.inner().calls(), 4);
    }

    #[test]
    fn concurrent_misses_make_one_underlying_call() {
        let mut inner = TestCmm::new();
        inner.delay = Duration::from_millis(200);
        let cmm = Arc::new(caching(inner).build().unwrap());
        let barrier = Arc::new(Barrier::new(64));
        let handles: Vec<_> = (0..64)
            .map(|_| {
                let (cmm, barrier) = (cmm.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    key_of(&cmm.get_encryption_materials(enc_request(&ctx("a"), Some(100))).unwrap())
                })
            })
            .collect();
        let keys: Vec<Vec<u8>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(cmm.inner().calls(), 1);
        assert!(keys.iter().all(|k| *k == keys[0]));
        let stats = cmm.stats();
        assert_eq!((stats.hits, stats.misses), (63, 1));

        // The same holds on the decrypt side.
        let m = cmm.get_encryption_materials(enc_request(&ctx("a"), Some(1))).unwrap();
        let barrier = Arc::new(Barrier::new(64));
        let handles: Vec<_> = (0..64)
            .map(|_| {
                let (cmm, barrier, edks) = (cmm.clone(), barrier.clone(), m.encrypted_data_keys.clone());
                thread::spawn(move || {
                    barrier.wait();
                    let req = DecryptMaterialsRequest::new(SUITE, POLICY, edks, ctx("a"), None);
                    cmm.decrypt_materials(req).unwrap().plaintext_data_key.unwrap().as_bytes().to_vec()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), keys[0]);
        }
        assert_eq!(cmm.inner().decrypt_calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn failed_fetch_is_not_cached_and_waiters_retry() {
        let mut inner = TestCmm::new();
        inner.fail = true;
        inner.delay = Duration::from_millis(50);
        let cmm = Arc::new(caching(inner).build().unwrap());
        let barrier = Arc::new(Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (cmm, barrier) = (cmm.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    cmm.get_encryption_materials(enc_request(&ctx("a"), Some(1))).is_err()
                })
            })
            .collect();
        assert!(handles.into_iter().all(|h| h.join().unwrap()));
        assert_eq!(cmm.inner().calls(), 4, "each waiter retries after a failed fetch");
        assert!(cmm.cache().is_empty());
    }

    #[test]
    fn least_recently_used_entry_is_evicted() {
        let cmm = caching(TestCmm::new()).capacity(2).build().unwrap();
        let get = |v: &str| key_of(&cmm.get_encryption_materials(enc_request(&ctx(v), Some(1))).unwrap());
        let a = get("a");
        let _b = get("b");
        assert_eq!(get("a"), a); // a is now the most recently used
        let handles = cmm.cache().entry_handles();
        assert_eq!(handles.len(), 2);
        let _c = get("c"); // evicts b
        assert_eq!(cmm.stats().evictions, 1);
        assert_eq!(handles.iter().filter(|h| h.is_alive()).count(), 1, "the evicted key must be dropped");
        assert_eq!(cmm.inner().calls(), 3);
        assert_eq!(get("a"), a);
        assert_eq!(cmm.inner().calls(), 3, "a was kept");
        get("b");
        assert_eq!(cmm.inner().calls(), 4, "b was evicted");
        assert_eq!(cmm.cache().len(), 2);
    }

    #[test]
    fn used_up_entry_is_dropped_at_once() {
        let cmm = caching(TestCmm::new()).max_messages_per_key(2).build().unwrap();
        cmm.get_encryption_materials(enc_request(&ctx("a"), Some(1))).unwrap();
        let handles = cmm.cache().entry_handles();
        assert_eq!(handles.len(), 1);
        assert!(handles[0].is_alive());
        cmm.get_encryption_materials(enc_request(&ctx("a"), Some(1))).unwrap();
        assert!(!handles[0].is_alive());
        assert!(cmm.cache().is_empty());
        // A limit of one message caches nothing.
        let single = caching(TestCmm::new()).max_messages_per_key(1).build().unwrap();
        let x = key_of(&single.get_encryption_materials(enc_request(&ctx("a"), Some(1))).unwrap());
        let y = key_of(&single.get_encryption_materials(enc_request(&ctx("a"), Some(1))).unwrap());
        assert_ne!(x, y);
        assert!(single.cache().is_empty());
    }

    #[test]
    fn decrypt_materials_are_cached() {
        let clock = TestClock::new();
        let cmm = caching(TestCmm::new()).max_age(Duration::from_secs(5)).clock(clock.clone()).build().unwrap();
        let writer = TestCmm::new();
        let m1 = writer.get_encryption_materials(enc_request(&ctx("a"), Some(1))).unwrap();
        let m2 = writer.get_encryption_materials(enc_request(&ctx("a"), Some(1))).unwrap();
        let edks = vec![m1.encrypted_data_keys[0].clone(), m2.encrypted_data_keys[0].clone()];
        let req = |edks: Vec<EncryptedDataKey>, c: EncryptionContext, repro: Option<EncryptionContext>| {
            DecryptMaterialsRequest::new(SUITE, POLICY, edks, c, repro)
        };
        let calls = || cmm.inner().decrypt_calls.load(Ordering::SeqCst);
        let k = cmm.decrypt_materials(req(edks.clone(), ctx("a"), None)).unwrap();
        assert_eq!(k.plaintext_data_key.as_ref().unwrap().as_bytes(), key_of(&m1));
        cmm.decrypt_materials(req(edks.clone(), ctx("a"), None)).unwrap();
        assert_eq!(calls(), 1);
        // EDK order does not matter.
        let reversed: Vec<_> = edks.iter().rev().cloned().collect();
        let r = cmm.decrypt_materials(req(reversed, ctx("a"), None)).unwrap();
        assert_eq!(r.plaintext_data_key, k.plaintext_data_key);
        assert_eq!(calls(), 1);
        // Another context, another EDK set or another reproduced context is another entry.
        assert!(cmm.decrypt_materials(req(edks.clone(), ctx("b"), None)).is_ok());
        assert_eq!(calls(), 2);
        let only_second = cmm.decrypt_materials(req(vec![edks[1].clone()], ctx("a"), None)).unwrap();
        assert_eq!(only_second.plaintext_data_key.unwrap().as_bytes(), key_of(&m2));
        assert_eq!(calls(), 3);
        cmm.decrypt_materials(req(edks.clone(), ctx("a"), Some(ctx("a")))).unwrap();
        assert_eq!(calls(), 4);
        // A tampered EDK misses and fails in the underlying CMM.
        let mut bad = edks[0].clone();
        bad.ciphertext[0] ^= 1;
        assert!(cmm.decrypt_materials(req(vec![bad], ctx("a"), None)).is_err());
        assert_eq!(calls(), 5);
        // Expiry.
        clock.advance(Duration::from_secs(5));
        cmm.decrypt_materials(req(edks.clone(), ctx("a"), None)).unwrap();
        assert_eq!(calls(), 6);
        // Suites without key derivation are never cached.
        let legacy = AlgorithmSuite::Aes256GcmIv12Tag16NoKdf;
        let legacy_req = || {
            DecryptMaterialsRequest::new(
                legacy,
                CommitmentPolicy::RequireEncryptAllowDecrypt,
                edks.clone(),
                ctx("a"),
                None,
            )
        };
        cmm.decrypt_materials(legacy_req()).unwrap();
        cmm.decrypt_materials(legacy_req()).unwrap();
        assert_eq!(calls(), 8);
    }

    #[test]
    fn partition_id_separates_entries() {
        let cache = MaterialsCache::new(10);
        let one = caching(TestCmm::new()).cache(cache.clone()).partition_id("p").build().unwrap();
        let two = caching(TestCmm::new()).cache(cache.clone()).partition_id("p").build().unwrap();
        let other = caching(TestCmm::new()).cache(cache.clone()).partition_id("q").build().unwrap();
        let unnamed = caching(TestCmm::new()).cache(cache.clone()).build().unwrap();
        let c = ctx("a");
        let k1 = key_of(&one.get_encryption_materials(enc_request(&c, Some(1))).unwrap());
        let k2 = key_of(&two.get_encryption_materials(enc_request(&c, Some(1))).unwrap());
        assert_eq!(k1, k2, "same partition shares entries");
        assert_eq!(two.inner().calls(), 0);
        let k3 = key_of(&other.get_encryption_materials(enc_request(&c, Some(1))).unwrap());
        let k4 = key_of(&unnamed.get_encryption_materials(enc_request(&c, Some(1))).unwrap());
        assert_ne!(k1, k3);
        assert_ne!(k1, k4);
        assert_eq!((other.inner().calls(), unnamed.inner().calls()), (1, 1));
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn streaming_and_unkeyed_suites_bypass_the_cache() {
        let cmm = caching(TestCmm::new()).build().unwrap();
        let c = ctx("a");
        let a = key_of(&cmm.get_encryption_materials(enc_request(&c, None)).unwrap());
        let b = key_of(&cmm.get_encryption_materials(enc_request(&c, None)).unwrap());
        assert_ne!(a, b);
        assert_eq!(*cmm.inner().last_max_len.lock().unwrap(), None);
        for suite in [
            AlgorithmSuite::Aes128GcmIv12Tag16NoKdf,
            AlgorithmSuite::Aes192GcmIv12Tag16NoKdf,
            AlgorithmSuite::Aes256GcmIv12Tag16NoKdf,
        ] {
            let mut r = enc_request(&c, Some(1));
            r.algorithm_suite = Some(suite);
            r.commitment_policy = CommitmentPolicy::ForbidEncryptAllowDecrypt;
            let x = key_of(&cmm.get_encryption_materials(r.clone()).unwrap());
            assert_ne!(x, key_of(&cmm.get_encryption_materials(r).unwrap()));
        }
        assert_eq!(cmm.inner().calls(), 8);
        assert!(cmm.cache().is_empty());
        assert_eq!(cmm.stats().misses, 0);
        assert_eq!(cmm.stats().underlying_calls, 8);
    }

    #[test]
    fn signed_suites_reuse_the_cached_signing_key() {
        let cmm = caching(TestCmm::new()).build().unwrap();
        let mut r = enc_request(&ctx("a"), Some(1));
        r.algorithm_suite = Some(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384);
        let a = cmm.get_encryption_materials(r.clone()).unwrap();
        let b = cmm.get_encryption_materials(r).unwrap();
        assert_eq!(key_of(&a), key_of(&b));
        assert!(Arc::ptr_eq(a.signing_key.as_ref().unwrap(), b.signing_key.as_ref().unwrap()));
        assert_eq!(a.encryption_context.get(PUBLIC_KEY_FIELD), b.encryption_context.get(PUBLIC_KEY_FIELD));
        assert_eq!(cmm.inner().calls(), 1);
    }

    #[test]
    fn builder_validates() {
        let err = |b: CachingCmmBuilder<TestCmm>| matches!(b.build(), Err(Error::Config { .. }));
        assert!(err(CachingCmm::builder(TestCmm::new())), "max age is required");
        assert!(err(CachingCmm::builder(TestCmm::new()).max_age(Duration::ZERO)));
        assert!(err(caching(TestCmm::new()).max_messages_per_key(0)));
        assert!(err(caching(TestCmm::new()).max_bytes_per_key(DEFAULT_MAX_BYTES + 1)));
        assert!(err(caching(TestCmm::new()).capacity(3).cache(MaterialsCache::new(3))));
        assert!(caching(TestCmm::new()).max_bytes_per_key(DEFAULT_MAX_BYTES).build().is_ok());
        let zero = caching(TestCmm::new()).capacity(0).build().unwrap();
        zero.get_encryption_materials(enc_request(&ctx("a"), Some(1))).unwrap();
        zero.get_encryption_materials(enc_request(&ctx("a"), Some(1))).unwrap();
        assert_eq!(zero.inner().calls(), 2);
        let text = format!("{:?}", zero);
        assert!(text.contains("CachingCmm") && !text.contains("0x11"), "{text}");
    }
}
