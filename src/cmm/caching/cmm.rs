//! [`CachingCmm`]: the cache in front of an underlying CMM, with one miss
//! path for encryption and decryption.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::entry_id::{decrypt_entry_id, encrypt_entry_id};
use super::store::{Cached, Clock, EntryId, MaterialsCache, Shared, State};
use super::CacheStats;
use crate::error::Result;
use crate::materials::{
    CryptographicMaterialsManager, DecryptMaterialsRequest, DecryptionMaterials, EncryptionMaterials,
    EncryptionMaterialsRequest, Kdf,
};

#[cfg(doc)]
use super::CachingCmmBuilder;

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
    pub(super) inner: C,
    pub(super) cache: MaterialsCache,
    pub(super) partition_hash: [u8; 64],
    pub(super) max_age: Duration,
    pub(super) max_messages: u64,
    pub(super) max_bytes: u64,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) hits: AtomicU64,
    pub(super) misses: AtomicU64,
    pub(super) underlying_calls: AtomicU64,
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

/// What a fetch leaves in the cache: the entry's materials and its initial
/// message and byte counts.
type Store = (Cached, u64, u64);

impl<C: CryptographicMaterialsManager> CachingCmm<C> {
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

    /// Call the underlying CMM (counted).
    fn underlying<M>(&self, call: impl FnOnce(&C) -> Result<M>) -> Result<M> {
        self.underlying_calls.fetch_add(1, Ordering::Relaxed);
        call(&self.inner)
    }

    /// The one lookup path of both directions: use entry `id` through
    /// `try_use` if it is there and usable; otherwise (after any other
    /// thread's fetch of the same entry has ended) fetch the materials from
    /// the underlying CMM with `fetch`, and cache what `store` makes of them
    /// for `max_age`. A failed fetch caches nothing, and threads that waited
    /// for it try again themselves.
    fn get_or_fetch<M>(
        &self,
        id: EntryId,
        mut try_use: impl FnMut(&Shared, &mut State, Instant) -> Option<M>,
        fetch: impl FnOnce(&C) -> Result<M>,
        store: impl FnOnce(&M) -> Option<Store>,
    ) -> Result<M> {
        let shared = &*self.cache.shared;
        let flight = match shared.lookup(id, || self.clock.now(), |state, now| try_use(shared, state, now)) {
            Ok(materials) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(materials);
            }
            Err(flight) => flight,
        };
        self.misses.fetch_add(1, Ordering::Relaxed);
        // On error the flight is dropped: the in-flight mark goes, waiters wake.
        let materials = self.underlying(fetch)?;
        let expires_at = self.clock.now() + self.max_age;
        flight.finish(store(&materials).map(|(cached, messages, bytes)| (cached, expires_at, messages, bytes)));
        Ok(materials)
    }
}

impl<C: CryptographicMaterialsManager> CryptographicMaterialsManager for CachingCmm<C> {
    fn get_encryption_materials(&self, request: EncryptionMaterialsRequest) -> Result<EncryptionMaterials> {
        let Some(len) = request.max_plaintext_length else {
            return self.underlying(|inner| inner.get_encryption_materials(request));
        };
        if request.algorithm_suite.is_some_and(|s| s.kdf() == Kdf::Identity) || len > self.max_bytes {
            return self.underlying(|inner| inner.get_encryption_materials(request));
        }
        let Some(id) = encrypt_entry_id(&self.partition_hash, &request) else {
            return self.underlying(|inner| inner.get_encryption_materials(request));
        };
        let (max_messages, max_bytes) = (self.max_messages, self.max_bytes);
        let try_use = |shared: &Shared, state: &mut State, now: Instant| {
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
        };
        let fetch = |inner: &C| {
            let mut inner_request = request;
            inner_request.max_plaintext_length = Some(max_bytes);
            inner.get_encryption_materials(inner_request)
        };
        let store = |materials: &EncryptionMaterials| {
            let cacheable = materials.algorithm_suite.kdf() != Kdf::Identity
                && materials.plaintext_data_key.is_some()
                && max_messages > 1
                && len < max_bytes;
            cacheable.then(|| (Cached::Encrypt(materials.clone()), 1, len))
        };
        self.get_or_fetch(id, try_use, fetch, store)
    }

    fn decrypt_materials(&self, request: DecryptMaterialsRequest) -> Result<DecryptionMaterials> {
        if request.algorithm_suite.kdf() == Kdf::Identity {
            return self.underlying(|inner| inner.decrypt_materials(request));
        }
        let Some(id) = decrypt_entry_id(&self.partition_hash, &request) else {
            return self.underlying(|inner| inner.decrypt_materials(request));
        };
        let try_use = |shared: &Shared, state: &mut State, now: Instant| {
            let entry = state.entries.get(&id)?;
            let Cached::Decrypt(materials) = &*entry.materials else { return None };
            if now >= entry.expires_at {
                shared.expire(state, &id);
                return None;
            }
            let materials = materials.clone();
            Shared::touch(state, &id);
            Some(materials)
        };
        let store = |materials: &DecryptionMaterials| {
            materials.plaintext_data_key.is_some().then(|| (Cached::Decrypt(materials.clone()), 0, 0))
        };
        self.get_or_fetch(id, try_use, |inner| inner.decrypt_materials(request), store)
    }
}

#[cfg(test)]
#[path = "cmm_tests.rs"]
mod tests;
