//! Tests of the caching CMM: hits, misses, limits, expiry, single flight.

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
fn every_expired_entry_goes_at_the_next_lookup_and_no_live_one() {
    let clock = TestClock::new();
    let cmm = caching(TestCmm::new()).max_age(Duration::from_secs(10)).clock(clock.clone()).build().unwrap();
    // 20 entries written at t=0, then 5 more at t=5.
    for i in 0..20 {
        cmm.get_encryption_materials(enc_request(&ctx(&format!("old{i}")), Some(1))).unwrap();
    }
    let old = cmm.cache().entry_handles();
    clock.advance(Duration::from_secs(5));
    for i in 0..5 {
        cmm.get_encryption_materials(enc_request(&ctx(&format!("new{i}")), Some(1))).unwrap();
    }
    // Used recently, the old entries are not the least recently used ones.
    for i in 0..20 {
        cmm.get_encryption_materials(enc_request(&ctx(&format!("old{i}")), Some(1))).unwrap();
    }
    assert_eq!(cmm.inner().calls(), 25);
    clock.advance(Duration::from_secs(5));
    // One lookup of another context retires all 20 expired entries at once.
    cmm.get_encryption_materials(enc_request(&ctx("other"), Some(1))).unwrap();
    assert!(old.iter().all(|h| !h.is_alive()), "every expired data key must be dropped");
    assert_eq!(cmm.stats().expirations, 20);
    assert_eq!(cmm.cache().len(), 6);
    // The 5 younger entries still serve.
    for i in 0..5 {
        cmm.get_encryption_materials(enc_request(&ctx(&format!("new{i}")), Some(1))).unwrap();
    }
    assert_eq!(cmm.inner().calls(), 26);
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
        DecryptMaterialsRequest::new(legacy, CommitmentPolicy::RequireEncryptAllowDecrypt, edks.clone(), ctx("a"), None)
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
