//! Recovery from a lost login as other tokens report it, through the fault
//! module: the whole pool is replaced at once (never a false "no secret
//! key"), Kryoptic's `CKR_GENERAL_ERROR` and YubiHSM's `CKR_FUNCTION_FAILED`
//! after a lost login or connection are recovered, passing failures on a
//! live session are retried a bounded number of times, and a token that
//! stays down is reported with its function and code.

mod common;
mod faults_support;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use hsm_keyring::pkcs11::{Pkcs11AesKeyring, Pkcs11Uri, Token, TokenOptions, TokenStats};
use hsm_keyring::{
    AlgorithmSuite, DecryptionMaterials, EncryptedDataKey, EncryptionContext, EncryptionMaterials, Error, ErrorKind,
    Keyring,
};

const SUITE: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;

struct Setup {
    token: Token,
    keyring: Arc<Pkcs11AesKeyring>,
    edks: Vec<EncryptedDataKey>,
    data_key: Vec<u8>,
}

/// A token through the fault module with `pool` sessions, all of them open
/// and idle (opened by `pool` threads at once, each call slowed down so
/// that they overlap), and an EDK to open.
fn setup(faults: &faults_support::Faults, label: &str, pool: usize) -> Setup {
    let uri = Pkcs11Uri::parse(&faults.token_uri()).unwrap();
    let token = Token::open_with(&uri, TokenOptions::default().pool_size(pool)).unwrap();
    let key = token.generate_aes_key(label, None).unwrap();
    let keyring = Arc::new(Pkcs11AesKeyring::new(token.clone(), &key).unwrap());
    let enc = keyring.on_encrypt(EncryptionMaterials::new(SUITE, EncryptionContext::new())).unwrap();
    faults.set_rules("* = latency:30ms");
    let barrier = Arc::new(Barrier::new(pool));
    std::thread::scope(|s| {
        for _ in 0..pool {
            let (keyring, barrier, edks) = (Arc::clone(&keyring), Arc::clone(&barrier), enc.encrypted_data_keys());
            s.spawn(move || {
                barrier.wait();
                keyring.on_decrypt(DecryptionMaterials::new(SUITE, EncryptionContext::new()), edks).unwrap();
            });
        }
    });
    faults.set_rules("");
    let data_key = enc.data_key().unwrap().as_bytes().to_vec();
    Setup { token, keyring, edks: enc.encrypted_data_keys().to_vec(), data_key }
}

impl Setup {
    fn decrypt(&self) -> hsm_keyring::Result<Vec<u8>> {
        let dec = self.keyring.on_decrypt(DecryptionMaterials::new(SUITE, EncryptionContext::new()), &self.edks)?;
        Ok(dec.data_key().map(|k| k.as_bytes().to_vec()).unwrap_or_default())
    }

    fn since(&self, before: TokenStats) -> (u64, u64, u64) {
        let now = self.token.stats();
        (now.reopens - before.reopens, now.relogins - before.relogins, now.retries - before.retries)
    }
}

fn token_error(err: &Error, function: &str, code: &str) {
    assert_eq!(err.kind(), ErrorKind::Token, "{err}");
    let Error::Pkcs11(e) = err else { panic!("not a PKCS#11 error: {err}") };
    assert_eq!(e.operation_name(), function, "{err}");
    assert_eq!(e.rv_name().as_deref(), Some(code), "{err}");
}

#[test]
fn a_lost_login_replaces_every_idle_session_at_once() {
    let faults = faults_or_skip!();
    let _turn = faults.turn();
    let s = setup(faults, "stale-pool", 4);
    let before = s.token.stats();
    // Log the process out behind the pool's back: all four idle sessions
    // are stale, and their key handles with them.
    let uri = Pkcs11Uri::parse(&faults.token_uri()).unwrap();
    Token::open_with(&uri, TokenOptions::default().pool_size(1)).unwrap().logout().unwrap();
    assert_eq!(s.decrypt().unwrap(), s.data_key);
    let (reopens, relogins, _) = s.since(before);
    assert_eq!((reopens, relogins), (1, 1), "one recovery, one login: {:?}", s.token);
    // The pool is healthy again: no further recovery.
    for _ in 0..10 {
        assert_eq!(s.decrypt().unwrap(), s.data_key);
    }
    assert_eq!(s.since(before).0, 1);
}

#[test]
fn general_error_after_a_logout_is_a_lost_login_as_on_kryoptic() {
    let faults = faults_or_skip!();
    let _turn = faults.turn();
    let s = setup(faults, "kryoptic-like", 3);
    let before = s.token.stats();
    // The token logs the user out and answers CKR_GENERAL_ERROR for the
    // private key, as Kryoptic does.
    faults.set_rules("C_DecryptInit @ 1 = logout\nC_DecryptInit @ 1 = CKR_GENERAL_ERROR");
    assert_eq!(s.decrypt().unwrap(), s.data_key);
    let (reopens, relogins, retries) = s.since(before);
    assert_eq!((reopens, relogins, retries), (1, 1, 1), "{:?}", s.token);
}

#[test]
fn function_failed_with_the_session_gone_is_a_lost_connection_as_on_yubihsm() {
    let faults = faults_or_skip!();
    let _turn = faults.turn();
    let s = setup(faults, "yubihsm-like", 2);
    let before = s.token.stats();
    // The connector dropped: the call fails, the session is gone.
    faults.set_rules("C_DecryptInit @ 1 = CKR_FUNCTION_FAILED\nC_GetSessionInfo @ 1 = CKR_SESSION_HANDLE_INVALID");
    assert_eq!(s.decrypt().unwrap(), s.data_key);
    assert_eq!(s.since(before).0, 1, "{:?}", s.token);
}

#[test]
fn passing_failures_on_a_live_session_are_retried_a_bounded_number_of_times() {
    let faults = faults_or_skip!();
    let _turn = faults.turn();
    let s = setup(faults, "passing", 2);
    // Twice CKR_DEVICE_ERROR, then the token answers: recovered, no reopen.
    let before = s.token.stats();
    faults.set_rules("C_DecryptInit @ 1 = CKR_DEVICE_ERROR\nC_DecryptInit @ 2 = CKR_DEVICE_ERROR");
    assert_eq!(s.decrypt().unwrap(), s.data_key);
    assert_eq!(s.since(before), (0, 0, 2));
    // Always CKR_DEVICE_ERROR: three retries, then the token error.
    let before = s.token.stats();
    faults.set_rules("C_DecryptInit > 0 = CKR_DEVICE_ERROR");
    let err = faults_support::bounded("device error", Duration::from_secs(30), {
        let keyring = Arc::clone(&s.keyring);
        let edks = s.edks.clone();
        move || keyring.on_decrypt(DecryptionMaterials::new(SUITE, EncryptionContext::new()), &edks).unwrap_err()
    });
    token_error(&err, "C_DecryptInit", "CKR_DEVICE_ERROR");
    assert_eq!(s.since(before), (0, 0, 3));
    // The token down, its sessions unanswered too: no waiting, reported at once.
    let before = s.token.stats();
    faults.set_rules("* > 0 = CKR_DEVICE_ERROR");
    token_error(&s.decrypt().unwrap_err(), "C_DecryptInit", "CKR_DEVICE_ERROR");
    assert_eq!(s.since(before), (0, 0, 0));
    faults.set_rules("");
    assert_eq!(s.decrypt().unwrap(), s.data_key);
}

#[test]
fn a_refusal_that_repeats_is_not_this_key_one_that_passes_is_recovered() {
    let faults = faults_or_skip!();
    let _turn = faults.turn();
    let s = setup(faults, "refusal", 2);
    // One CKR_GENERAL_ERROR from C_Decrypt (what SoftHSM answers for a bad
    // tag) that does not repeat: the token's passing failure.
    faults.set_rules("C_Decrypt @ 1 = CKR_GENERAL_ERROR");
    assert_eq!(s.decrypt().unwrap(), s.data_key);
    faults.set_rules("");
    // A tampered EDK is refused every time: not this key.
    let mut edk = s.edks[0].clone();
    let last = edk.ciphertext.len() - 1;
    edk.ciphertext[last] ^= 1;
    let err = s.keyring.on_decrypt(DecryptionMaterials::new(SUITE, EncryptionContext::new()), &[edk]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotThisKey, "{err}");
}

#[test]
fn a_token_that_keeps_losing_the_login_is_a_token_error_not_a_missing_key() {
    let faults = faults_or_skip!();
    let _turn = faults.turn();
    let s = setup(faults, "keeps-losing", 2);
    faults.set_rules("* > 0 = logout");
    // Whatever the step that notices, never "no secret key with label".
    for _ in 0..3 {
        let err = s.decrypt().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Token, "{err}");
        assert!(!err.to_string().contains("no secret key"), "{err}");
    }
    faults.set_rules("");
    assert_eq!(s.decrypt().unwrap(), s.data_key);
}
