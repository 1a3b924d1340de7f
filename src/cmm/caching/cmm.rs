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
            let cacheable = materials.algorithm_suite().kdf() != Kdf::Identity
                && materials.data_key().is_some()
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
            materials.data_key().is_some().then(|| (Cached::Decrypt(materials.clone()), 0, 0))
        };
        self.get_or_fetch(id, try_use, |inner| inner.decrypt_materials(request), store)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Barrier};
    use std::thread;
    use std::time::Duration;

    use super::super::test_support::*;
    use super::super::{MaterialsCache, DEFAULT_MAX_BYTES};
    use super::*;
    use crate::materials::context::PUBLIC_KEY_FIELD;
    use crate::materials::{AlgorithmSuite, CommitmentPolicy, EncryptedDataKey, EncryptionContext};

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
        assert_eq!(again.encryption_context(), &ctx("a"));
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
                let (cmm, barrier, edks) = (cmm.clone(), barrier.clone(), m.encrypted_data_keys().to_vec());
                thread::spawn(move || {
                    barrier.wait();
                    let req = DecryptMaterialsRequest::new(SUITE, POLICY, edks, ctx("a"), None);
                    cmm.decrypt_materials(req).unwrap().data_key().unwrap().as_bytes().to_vec()
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
        let edks = vec![m1.encrypted_data_keys()[0].clone(), m2.encrypted_data_keys()[0].clone()];
        let req = |edks: Vec<EncryptedDataKey>, c: EncryptionContext, repro: Option<EncryptionContext>| {
            DecryptMaterialsRequest::new(SUITE, POLICY, edks, c, repro)
        };
        let calls = || cmm.inner().decrypt_calls.load(Ordering::SeqCst);
        let k = cmm.decrypt_materials(req(edks.clone(), ctx("a"), None)).unwrap();
        assert_eq!(k.data_key().unwrap().as_bytes(), key_of(&m1));
        cmm.decrypt_materials(req(edks.clone(), ctx("a"), None)).unwrap();
        assert_eq!(calls(), 1);
        // EDK order does not matter.
        let reversed: Vec<_> = edks.iter().rev().cloned().collect();
        let r = cmm.decrypt_materials(req(reversed, ctx("a"), None)).unwrap();
        assert_eq!(r.data_key(), k.data_key());
        assert_eq!(calls(), 1);
        // Another context, another EDK set or another reproduced context is another entry.
        assert!(cmm.decrypt_materials(req(edks.clone(), ctx("b"), None)).is_ok());
        assert_eq!(calls(), 2);
        let only_second = cmm.decrypt_materials(req(vec![edks[1].clone()], ctx("a"), None)).unwrap();
        assert_eq!(only_second.data_key().unwrap().as_bytes(), key_of(&m2));
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
        assert!(Arc::ptr_eq(a.signing_key().unwrap(), b.signing_key().unwrap()));
        assert_eq!(a.encryption_context().get(PUBLIC_KEY_FIELD), b.encryption_context().get(PUBLIC_KEY_FIELD));
        assert_eq!(cmm.inner().calls(), 1);
    }
}
