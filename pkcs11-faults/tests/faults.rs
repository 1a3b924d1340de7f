//! The fault module over SoftHSM: clean forwarding, each kind of fault at
//! the call it is configured for, the logout action, latency, and the rule
//! file read again mid-run.

mod support;

use std::time::{Duration, Instant};

use cryptoki::error::{Rv, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::session::{Session, SessionState};
use pkcs11_faults::rules::Config;
use support::{aes_key, gcm, harness, login, rv};

macro_rules! harness_or_skip {
    () => {
        match harness(None) {
            Some(h) => h,
            None => return,
        }
    };
}

/// Which of `n` random-number calls fail, and with what.
fn random_calls(session: &Session, n: usize) -> Vec<Option<RvError>> {
    (0..n).map(|_| session.generate_random_vec(16).err().map(|e| rv::<()>(Err(e)))).collect()
}

fn failing_at(results: &[Option<RvError>]) -> Vec<usize> {
    results.iter().enumerate().filter(|(_, r)| r.is_some()).map(|(i, _)| i + 1).collect()
}

fn code(name: &str) -> RvError {
    match Rv::from(pkcs11_faults::rv::parse(name).expect("known code")) {
        Rv::Error(e) => e,
        Rv::Ok => panic!("{name} is not an error"),
    }
}

fn round_trip(session: &Session) {
    let key = aes_key(session);
    let (mut iv, aad) = ([7u8; 12], b"header".as_slice());
    let plaintext = b"forwarded unchanged";
    let sealed = session.encrypt(&gcm(&mut iv, aad), key, plaintext).expect("encrypt");
    assert_eq!(sealed.len(), plaintext.len() + 16);
    assert_eq!(session.decrypt(&gcm(&mut iv, aad), key, &sealed).expect("decrypt"), plaintext);
    let mut tampered = sealed.clone();
    tampered[0] ^= 1;
    assert!(session.decrypt(&gcm(&mut iv, aad), key, &tampered).is_err(), "tampered ciphertext accepted");
}

#[test]
fn clean_pass_through() {
    let h = harness_or_skip!();
    let _turn = h.turn();
    let mechanisms = h.ctx.get_mechanism_list(h.slot).expect("mechanisms");
    assert!(mechanisms.contains(&MechanismType::AES_GCM));
    assert!(mechanisms.contains(&MechanismType::AES_KEY_GEN));
    let info = h.ctx.get_token_info(h.slot).expect("token info");
    assert_eq!(info.label().trim_end(), support::LABEL);
    let session = h.session();
    round_trip(&session);
    assert_eq!(random_calls(&session, 5), vec![None; 5]);
}

#[test]
fn nth_call_fails_once() {
    let h = harness_or_skip!();
    let rules = h.turn();
    let session = h.session();
    rules.set("C_GenerateRandom@3=CKR_DEVICE_ERROR");
    let results = random_calls(&session, 6);
    assert_eq!(failing_at(&results), vec![3]);
    assert_eq!(results[2], Some(RvError::DeviceError));
}

#[test]
fn every_nth_call_fails() {
    let h = harness_or_skip!();
    let rules = h.turn();
    let session = h.session();
    rules.set("GenerateRandom%3=CKR_FUNCTION_FAILED");
    let results = random_calls(&session, 10);
    assert_eq!(failing_at(&results), vec![3, 6, 9]);
    assert!(results.iter().flatten().all(|e| *e == RvError::FunctionFailed));
}

#[test]
fn after_n_calls_everything_fails() {
    let h = harness_or_skip!();
    let rules = h.turn();
    let session = h.session();
    rules.set("*>4=CKR_DEVICE_REMOVED");
    assert_eq!(random_calls(&session, 4), vec![None; 4]);
    // Any function, from now on.
    assert_eq!(rv(h.ctx.get_token_info(h.slot)), RvError::DeviceRemoved);
    assert_eq!(rv(h.ctx.get_all_slots()), RvError::DeviceRemoved);
    assert_eq!(rv(session.get_session_info()), RvError::DeviceRemoved);
    assert_eq!(random_calls(&session, 3), vec![Some(RvError::DeviceRemoved); 3]);
    // The token comes back when the rule goes.
    rules.set("");
    assert_eq!(random_calls(&session, 2), vec![None; 2]);
}

#[test]
fn only_the_named_functions_count() {
    let h = harness_or_skip!();
    let rules = h.turn();
    let session = h.session();
    rules.set("C_Sign|C_GenerateRandom@2=CKR_GENERAL_ERROR");
    // Other functions neither fail nor count.
    for _ in 0..3 {
        session.get_session_info().expect("C_GetSessionInfo");
    }
    assert_eq!(failing_at(&random_calls(&session, 4)), vec![2]);
}

#[test]
fn each_code_is_returned_as_named() {
    let h = harness_or_skip!();
    let rules = h.turn();
    for name in [
        "CKR_SESSION_HANDLE_INVALID",
        "CKR_SESSION_CLOSED",
        "CKR_USER_NOT_LOGGED_IN",
        "CKR_DEVICE_REMOVED",
        "CKR_DEVICE_ERROR",
        "CKR_GENERAL_ERROR",
        "CKR_FUNCTION_FAILED",
        "CKR_TOKEN_NOT_PRESENT",
        "CKR_DEVICE_MEMORY",
        "pin_expired",
        "0x1B",
    ] {
        rules.set("");
        let session = h.session();
        rules.set(&format!("C_GenerateRandom@1={name}"));
        let results = random_calls(&session, 2);
        assert_eq!(results[0], Some(code(name)), "{name}");
        assert_eq!(results[1], after(name), "{name}");
    }
}

/// What the second call gives after a first one failed with `name`: the
/// session-handle codes closed the session for real.
fn after(name: &str) -> Option<RvError> {
    match name {
        "CKR_SESSION_HANDLE_INVALID" | "CKR_SESSION_CLOSED" => Some(RvError::SessionHandleInvalid),
        _ => None,
    }
}

#[test]
fn lost_session_handle_stays_lost() {
    let h = harness_or_skip!();
    let rules = h.turn();
    let session = h.session();
    rules.set("C_GetSessionInfo@1=CKR_SESSION_HANDLE_INVALID");
    assert_eq!(rv(session.get_session_info()), RvError::SessionHandleInvalid);
    // The real module no longer knows the handle either.
    assert_eq!(rv(session.get_session_info()), RvError::SessionHandleInvalid);
    let fresh = h.session();
    fresh.get_session_info().expect("a new session works");
}

#[test]
fn failure_inside_an_operation_ends_it() {
    let h = harness_or_skip!();
    let rules = h.turn();
    let session = h.session();
    let key = aes_key(&session);
    let (mut iv, aad) = ([1u8; 12], b"".as_slice());
    // cryptoki calls C_Encrypt twice per encryption: the size, then the data.
    rules.set("C_Encrypt@2=CKR_DEVICE_ERROR; C_DecryptUpdate@1=CKR_GENERAL_ERROR");
    assert_eq!(rv(session.encrypt(&gcm(&mut iv, aad), key, b"first")), RvError::DeviceError);
    // Without the operation ended, this would be CKR_OPERATION_ACTIVE.
    let sealed = session.encrypt(&gcm(&mut iv, aad), key, b"second").expect("encrypt after the failure");
    session.decrypt_init(&gcm(&mut iv, aad), key).expect("C_DecryptInit");
    assert_eq!(rv(session.decrypt_update(&sealed)), RvError::GeneralError);
    assert_eq!(session.decrypt(&gcm(&mut iv, aad), key, &sealed).expect("decrypt after the failure"), b"second");
    rules.set("C_Digest@1=CKR_DEVICE_ERROR");
    assert_eq!(rv(session.digest(&Mechanism::Sha256, b"data")), RvError::DeviceError);
    assert_eq!(session.digest(&Mechanism::Sha256, b"data").expect("digest after the failure").len(), 32);
}

#[test]
fn rate_follows_the_seed() {
    let h = harness_or_skip!();
    let rules = h.turn();
    let session = h.session();
    let text = "C_GenerateRandom~0.5/9=CKR_GENERAL_ERROR";
    // The same draws as the rule evaluated here, in this process.
    let expected: Vec<usize> = {
        let config = Config::parse(text).expect("rules");
        (1..=40).filter(|_| config.plan("C_GenerateRandom").fail.is_some()).collect()
    };
    assert!(expected.len() > 5 && expected.len() < 35, "{expected:?}");
    rules.set(text);
    let first = failing_at(&random_calls(&session, 40));
    assert_eq!(first, expected);
    // Written again, the rule starts over with the same draws.
    rules.set(&format!("{text} # again"));
    assert_eq!(failing_at(&random_calls(&session, 40)), expected);
    rules.set("C_GenerateRandom~0.5/10=CKR_GENERAL_ERROR");
    assert_ne!(failing_at(&random_calls(&session, 40)), expected, "another seed, other draws");
}

#[test]
fn logout_at_the_nth_call() {
    let h = harness_or_skip!();
    let rules = h.turn();
    let session = h.session();
    rules.set("C_GenerateRandom@2=logout");
    let state = |s: &Session| s.get_session_info().expect("session info").session_state();
    session.generate_random_vec(8).expect("first call");
    assert_eq!(state(&session), SessionState::RwUser);
    // The call itself goes through, after the logout.
    session.generate_random_vec(8).expect("second call");
    assert_eq!(state(&session), SessionState::RwPublic);
    assert_eq!(rv(session.generate_key(&Mechanism::AesKeyGen, &private_key_template())), RvError::UserNotLoggedIn);
    login(&session);
    assert_eq!(state(&session), SessionState::RwUser);
    session.generate_random_vec(8).expect("third call");
    assert_eq!(state(&session), SessionState::RwUser);
}

fn private_key_template() -> Vec<cryptoki::object::Attribute> {
    use cryptoki::object::Attribute;
    vec![Attribute::Token(true), Attribute::Private(true), Attribute::ValueLen(32.into())]
}

#[test]
fn latency_is_added() {
    let h = harness_or_skip!();
    let rules = h.turn();
    let session = h.session();
    rules.set("C_GenerateRandom=latency:15ms; *=latency:1000");
    let start = Instant::now();
    assert_eq!(random_calls(&session, 4), vec![None; 4]);
    // A lower bound only: 4 x (15 ms + 1 ms).
    assert!(start.elapsed() >= Duration::from_millis(64), "{:?}", start.elapsed());
    let start = Instant::now();
    for _ in 0..5 {
        session.get_session_info().expect("session info");
    }
    assert!(start.elapsed() >= Duration::from_millis(5), "{:?}", start.elapsed());
}

#[test]
fn rule_file_is_read_again() {
    let h = harness_or_skip!();
    let rules = h.turn();
    let session = h.session();
    rules.set("C_GenerateRandom=CKR_DEVICE_ERROR");
    assert_eq!(random_calls(&session, 2), vec![Some(RvError::DeviceError); 2]);
    rules.set("");
    assert_eq!(random_calls(&session, 2), vec![None; 2]);
    rules.set("C_GenerateRandom@2=CKR_TOKEN_NOT_PRESENT");
    assert_eq!(failing_at(&random_calls(&session, 3)), vec![2]);
    // A removed file holds no rules; a new one is read when it appears.
    std::fs::remove_file(&h.rules_file).expect("remove the rule file");
    assert_eq!(random_calls(&session, 2), vec![None; 2]);
    rules.set("C_GenerateRandom@1=CKR_DEVICE_ERROR");
    assert_eq!(failing_at(&random_calls(&session, 2)), vec![1]);
}
