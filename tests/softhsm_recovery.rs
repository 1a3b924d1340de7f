//! A pooled session that loses its login is replaced once and the operation
//! succeeds, also under load. In its own process: logging out affects every
//! session in it.

mod common;

use hsm_keyring::pkcs11::Pkcs11AesKeyring;
use hsm_keyring::pkcs11::{Pkcs11Uri, Token, TokenOptions};
use hsm_keyring::{AlgorithmSuite, DecryptionMaterials, EncryptionContext, EncryptionMaterials, Keyring};

/// The tests of this file log the process out: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn session_recovers_after_logout_behind_the_pools_back() {
    let hsm = softhsm_or_skip!();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let uri = Pkcs11Uri::parse(&hsm.token_uri()).unwrap();
    let token = Token::open_with(&uri, TokenOptions::default().pool_size(2)).unwrap();
    let key = token.generate_aes_key("recovery", None).unwrap();
    let keyring = Pkcs11AesKeyring::new(token.clone(), &key).unwrap();
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let ctx = EncryptionContext::new();
    let enc = keyring.on_encrypt(EncryptionMaterials::new(suite, ctx.clone())).unwrap();
    assert_eq!(token.session_reopen_count(), 0);

    // A second, independent pool on the same token logs the process out.
    let other = Token::open_with(&uri, TokenOptions::default().pool_size(1)).unwrap();
    other.logout().unwrap();

    // The next operation hits the stale login, re-opens once, and succeeds.
    let dec = keyring.on_decrypt(DecryptionMaterials::new(suite, ctx.clone()), enc.encrypted_data_keys()).unwrap();
    assert_eq!(dec.data_key(), enc.data_key());
    assert_eq!(token.session_reopen_count(), 1);

    // And the pool keeps working without further re-opens.
    for _ in 0..20 {
        let enc = keyring.on_encrypt(EncryptionMaterials::new(suite, ctx.clone())).unwrap();
        keyring.on_decrypt(DecryptionMaterials::new(suite, ctx.clone()), enc.encrypted_data_keys()).unwrap();
    }
    assert_eq!(token.session_reopen_count(), 1);
}

/// A logout while eight threads keep a pool of eight sessions busy: the next
/// operation of every thread, and every one after it, succeeds with the
/// right key, after one recovery per generation of stale sessions.
#[test]
fn logout_with_eight_busy_threads_every_next_operation_succeeds() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Barrier};

    let hsm = softhsm_or_skip!();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let uri = Pkcs11Uri::parse(&hsm.token_uri()).unwrap();
    let token = Token::open_with(&uri, TokenOptions::default().pool_size(8)).unwrap();
    let key = token.generate_aes_key("busy-logout", None).unwrap();
    let keyring = Arc::new(Pkcs11AesKeyring::new(token.clone(), &key).unwrap());
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let logged_out = Arc::new(AtomicBool::new(false));
    let after = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(9));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (keyring, logged_out, after, start) =
                (Arc::clone(&keyring), Arc::clone(&logged_out), Arc::clone(&after), Arc::clone(&start));
            std::thread::spawn(move || {
                let ctx = EncryptionContext::from_pairs([("thread", t.to_string())]).unwrap();
                let round_trip = || {
                    let enc = keyring.on_encrypt(EncryptionMaterials::new(suite, ctx.clone())).unwrap();
                    let dec =
                        keyring.on_decrypt(DecryptionMaterials::new(suite, ctx.clone()), enc.encrypted_data_keys());
                    assert_eq!(dec.unwrap().data_key(), enc.data_key(), "thread {t}");
                };
                start.wait();
                // Busy until the logout, then ten more operations each.
                while !logged_out.load(Ordering::Acquire) {
                    round_trip();
                }
                for _ in 0..10 {
                    round_trip();
                    after.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    start.wait();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let other = Token::open_with(&uri, TokenOptions::default().pool_size(1)).unwrap();
    other.logout().unwrap();
    logged_out.store(true, std::sync::atomic::Ordering::Release);
    for t in threads {
        t.join().expect("every operation of every thread succeeds");
    }
    assert_eq!(after.load(std::sync::atomic::Ordering::Relaxed), 80);
    let stats = token.stats();
    eprintln!("after a logout under load: {stats}");
    // Stale sessions are replaced together: a handful of recoveries at most
    // (threads that failed before the first drain each count one), and at
    // least one login.
    assert!(stats.reopens >= 1 && stats.reopens <= 8, "{stats}");
    assert!(stats.relogins >= 1, "{stats}");
}
