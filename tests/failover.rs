//! The failover keyring over tokens holding the same key: one token goes
//! down in the middle of a run (the fault module in front of it starts
//! answering `CKR_DEVICE_REMOVED`) and not one operation fails; it comes
//! back when its retry time has passed; with every token down the error is
//! a clear token error; a wrong key is never failed over.
//!
//! Three SoftHSM tokens hold the same imported AES key: the first reached
//! directly, the other two through the fault module. In its own process:
//! the fault module's rules are global to the process.

mod common;

use std::sync::Arc;
use std::time::Duration;

use hsm_keyring::keyrings::{FailoverKeyring, FailoverStrategy, RawAesKeyring};
use hsm_keyring::pkcs11::{Pkcs11AesKeyring, Pkcs11Uri, Token, TokenOptions};
use hsm_keyring::{
    AlgorithmSuite, DecryptionMaterials, EncryptionContext, EncryptionMaterials, Error, ErrorKind, Keyring,
};

use common::{FaultRules, TestToken};

const KEY: [u8; 32] = [0x5a; 32];
const LABEL: &str = "ha-key";

fn keyring(t: &TestToken) -> Arc<dyn Keyring> {
    let token =
        Token::open_with(&Pkcs11Uri::parse(&t.token_uri()).unwrap(), TokenOptions::default().pool_size(2)).unwrap();
    if token.list_keys().unwrap().iter().all(|k| k.label != LABEL) {
        token.import_aes_key(LABEL, &KEY, None).unwrap();
    }
    let uri = Pkcs11Uri::parse(&t.key_uri(LABEL, "secret-key")).unwrap();
    Arc::new(Pkcs11AesKeyring::new(token, &uri).unwrap())
}

/// One encrypt and one decrypt: two operations.
fn pair(keyring: &dyn Keyring, i: usize) -> hsm_keyring::Result<()> {
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let ctx = EncryptionContext::from_pairs([("op", i.to_string())]).unwrap();
    let enc = keyring.on_encrypt(EncryptionMaterials::new(suite, ctx.clone()))?;
    let dec = keyring.on_decrypt(DecryptionMaterials::new(suite, ctx), enc.encrypted_data_keys())?;
    assert_eq!(dec.data_key(), enc.data_key());
    Ok(())
}

#[test]
fn one_token_down_mid_run_then_back_then_all_down() {
    // Before anything loads SoftHSM: the extra tokens, then the fault module's rules.
    let Some([second, third]) = common::extra_softhsm_tokens() else { return };
    let hsm = softhsm_or_skip!();
    let Some(faults) = common::fault_module() else { return };
    let rules = FaultRules::install(&hsm.dir, &hsm.module);
    let first = common::test_token(common::Backend::SoftHsm).unwrap();
    let direct = keyring(first);
    let flaky = keyring(&second.through_faults(&faults));
    let other_flaky = keyring(&third.through_faults(&faults));

    // The same key in each: what one wraps, software and the others open.
    let raw = RawAesKeyring::new("hsm-keyring", LABEL, &KEY).unwrap();
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let ctx = EncryptionContext::new();
    let enc = flaky.on_encrypt(EncryptionMaterials::new(suite, ctx.clone())).unwrap();
    for k in [&direct as &dyn Keyring, &other_flaky, &raw] {
        k.on_decrypt(DecryptionMaterials::new(suite, ctx.clone()), enc.encrypted_data_keys()).unwrap();
    }

    // 10,000 operations round-robin; after 2,000 the flaky token goes down for good.
    let ha = FailoverKeyring::new(vec![Arc::clone(&direct), Arc::clone(&flaky)])
        .unwrap()
        .with_strategy(FailoverStrategy::RoundRobin)
        .with_retry_after(Duration::from_secs(3600));
    let mut failures = 0;
    for i in 0..5_000 {
        if i == 1_000 {
            rules.set("* > 3 = CKR_DEVICE_REMOVED");
        }
        if let Err(e) = pair(&ha, i) {
            failures += 1;
            eprintln!("operation {i}: {e}");
        }
    }
    assert_eq!(failures, 0);
    let health = ha.health();
    let (up, down) = (&health[0], &health[1]);
    assert!(up.is_up() && up.failures == 0, "{up:?}");
    assert!(!down.is_up() && down.failures >= 1, "{down:?}");
    assert!(down.last_error.as_deref().unwrap().contains("CKR_DEVICE_REMOVED"), "{down:?}");
    // Before the fault, operations were shared; after it, the flaky token
    // got only the operation that found it down (retry time not reached).
    assert_eq!(up.operations + down.operations - down.failures, 10_000, "{health:?}");
    assert!(down.operations >= 1_000 && down.operations < 1_100, "{health:?}");
    assert!(ha.description().contains("hsm-keyring-second"), "{}", ha.description());

    // The token comes back; once its retry time has passed it takes its share again.
    rules.set("");
    let ha = FailoverKeyring::new(vec![Arc::clone(&direct), Arc::clone(&flaky)])
        .unwrap()
        .with_strategy(FailoverStrategy::RoundRobin)
        .with_retry_after(Duration::from_millis(50));
    rules.set("* > 3 = CKR_DEVICE_REMOVED");
    for i in 0..20 {
        pair(&ha, i).unwrap();
    }
    assert!(ha.health()[1].failures >= 1, "{:?}", ha.health());
    rules.set("");
    std::thread::sleep(Duration::from_millis(100));
    for i in 0..20 {
        pair(&ha, i).unwrap();
    }
    let back = &ha.health()[1];
    assert!(back.is_up(), "{back:?}");

    // Primary/secondary: all to the first while it is up.
    let ps = FailoverKeyring::new(vec![Arc::clone(&direct), Arc::clone(&flaky)]).unwrap();
    for i in 0..10 {
        pair(&ps, i).unwrap();
    }
    assert_eq!((ps.health()[0].operations, ps.health()[1].operations), (20, 0));

    // A wrong key is not failed over: one member answers, nobody is marked down.
    let mut bad = enc.encrypted_data_keys().to_vec();
    bad[0].ciphertext[0] ^= 1;
    let err = ha.on_decrypt(DecryptionMaterials::new(suite, ctx.clone()), &bad).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotThisKey, "{err}");
    assert!(ha.health().iter().all(|m| m.is_up()), "{:?}", ha.health());

    // Every token down: a token error naming each.
    let both = FailoverKeyring::new(vec![Arc::clone(&flaky), Arc::clone(&other_flaky)]).unwrap();
    rules.set("* = CKR_DEVICE_REMOVED");
    let err = both.on_encrypt(EncryptionMaterials::new(suite, ctx.clone())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Token, "{err}");
    assert!(err.to_string().contains("CKR_DEVICE_REMOVED"), "{err}");
    let err = both.on_decrypt(DecryptionMaterials::new(suite, ctx.clone()), enc.encrypted_data_keys()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Token, "{err}");
    let Error::NoKeyringDecrypted { failures, .. } = &err else { panic!("{err:?}") };
    assert_eq!(failures.len(), 2, "{err}");
    let text = err.to_string();
    assert!(text.contains("hsm-keyring-second") && text.contains("hsm-keyring-third"), "{text}");
    assert!(both.health().iter().all(|m| !m.is_up() && m.failures == 2), "{:?}", both.health());
    rules.set("");
}

#[test]
fn a_failover_keyring_needs_a_member() {
    assert_eq!(FailoverKeyring::new(Vec::new()).unwrap_err().kind(), ErrorKind::Usage);
}
