//! Keyrings, key management and concurrency on a SoftHSM token.

mod common;

use std::sync::Arc;

use hsm_keyring::crypto::{RsaPadding, RsaPublicKey};
use hsm_keyring::pkcs11::{GcmIvMode, Pkcs11Class, Pkcs11Uri, RsaWrapMode, Token, TokenOptions};
use hsm_keyring::pkcs11::{Pkcs11AesKeyring, Pkcs11RsaKeyring};
use hsm_keyring::{
    AlgorithmSuite, DecryptionMaterials, EncryptedDataKey, EncryptionContext, EncryptionMaterials, Error, ErrorKind,
    Keyring,
};

fn token(hsm: &common::SoftHsm, pool: usize) -> Token {
    let uri = Pkcs11Uri::parse(&hsm.token_uri()).unwrap();
    Token::open_with(&uri, TokenOptions::default().pool_size(pool)).unwrap()
}

fn context() -> EncryptionContext {
    EncryptionContext::from_pairs([("purpose", "test"), ("tenant", "a")]).unwrap()
}

fn round_trip(keyring: &dyn Keyring, suite: AlgorithmSuite) -> (Vec<u8>, Vec<EncryptedDataKey>) {
    let enc = keyring.on_encrypt(EncryptionMaterials::new(suite, context())).unwrap();
    let key = enc.data_key().cloned().unwrap();
    assert_eq!(key.len(), suite.key_len());
    assert_eq!(enc.encrypted_data_keys().len(), 1);
    let dec = keyring.on_decrypt(DecryptionMaterials::new(suite, context()), enc.encrypted_data_keys()).unwrap();
    assert_eq!(dec.data_key(), Some(&key));
    (key.as_bytes().to_vec(), enc.encrypted_data_keys().to_vec())
}

fn pkcs11_error(err: &Error) -> (String, Option<String>) {
    match err {
        Error::Pkcs11(e) => (e.operation_name(), e.rv_name()),
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

/// A refused unwrap on a healthy session: "not this key", with advice that
/// says so, not a token failure.
#[track_caller]
fn assert_not_this_key(err: &Error) {
    assert_eq!(err.kind(), ErrorKind::NotThisKey, "{err}");
    assert!(err.is_authentication_failure(), "{err}");
    let Error::Pkcs11(e) = err else { panic!("expected a PKCS#11 error, got {err:?}") };
    assert_eq!(e.class, Pkcs11Class::UnwrapRefused, "{err}");
    let text = err.to_string();
    assert!(text.contains("does not open with this key") && !text.contains("internal failure"), "{text}");
}

#[test]
fn aes_keyring_round_trip_tamper_and_not_mine() {
    let hsm = softhsm_or_skip!();
    let token = token(hsm, 2);
    let uri = token.generate_aes_key("aes-round-trip", None).unwrap();
    let keyring = Pkcs11AesKeyring::new(token.clone(), &uri).unwrap();
    for suite in [AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, AlgorithmSuite::Aes128GcmIv12Tag16HkdfSha256] {
        round_trip(&keyring, suite);
    }
    let suite = AlgorithmSuite::default();
    let (_, edks) = round_trip(&keyring, suite);
    let edk = &edks[0];
    assert_eq!(edk.provider_id, "hsm-keyring");
    assert_eq!(edk.provider_info.len(), "aes-round-trip".len() + 20);
    assert_eq!(&edk.provider_info[..14], b"aes-round-trip");
    assert_eq!(&edk.provider_info[14..22], &[0, 0, 0, 128, 0, 0, 0, 12]);
    assert_eq!(edk.ciphertext.len(), 32 + 16);

    // A second wrap of the same key uses a fresh IV.
    let (_, again) = round_trip(&keyring, suite);
    assert_ne!(again[0].provider_info, edk.provider_info);

    // Any flipped bit in IV, ciphertext or tag: mine, but fails.
    for (field, index) in [("iv", 25usize), ("ct", 0), ("tag", 40)] {
        let mut bad = edk.clone();
        match field {
            "iv" => bad.provider_info[index] ^= 1,
            _ => bad.ciphertext[index] ^= 1,
        }
        let err = keyring.on_decrypt(DecryptionMaterials::new(suite, context()), &[bad]).unwrap_err();
        assert!(!err.is_not_mine(), "{field}: {err}");
        assert_eq!(pkcs11_error(&err).0, "C_Decrypt", "{field}: {err}");
        assert_not_this_key(&err);
    }
    // Another encryption context: the AAD differs, so it fails.
    let other = EncryptionContext::from_pairs([("purpose", "other")]).unwrap();
    let err = keyring.on_decrypt(DecryptionMaterials::new(suite, other), &edks).unwrap_err();
    assert!(!err.is_not_mine(), "{err}");
    assert_not_this_key(&err);

    // Other namespace or key name: not mine.
    let mut foreign = edk.clone();
    foreign.provider_id = "someone-else".into();
    let err = keyring.on_decrypt(DecryptionMaterials::new(suite, context()), &[foreign.clone()]).unwrap_err();
    assert!(err.is_not_mine(), "{err}");
    let renamed = keyring.clone().with_key_name("another-name").unwrap();
    let err = renamed.on_decrypt(DecryptionMaterials::new(suite, context()), &edks).unwrap_err();
    assert!(err.is_not_mine(), "{err}");
    // A foreign EDK before ours is skipped.
    let dec = keyring.on_decrypt(DecryptionMaterials::new(suite, context()), &[foreign, edk.clone()]).unwrap();
    assert!(dec.data_key().is_some());

    // Namespace is configurable and written as the provider id.
    let ns = keyring.clone().with_namespace("team-ns").unwrap();
    let (_, edks) = round_trip(&ns, suite);
    assert_eq!(edks[0].provider_id, "team-ns");
    assert!(keyring.clone().with_namespace("aws-kms").is_err());
}

#[test]
fn aes_keyring_wraps_an_existing_data_key() {
    let hsm = softhsm_or_skip!();
    let token = token(hsm, 2);
    let uri = token.generate_aes_key("aes-existing", None).unwrap();
    let keyring = Pkcs11AesKeyring::new(token, &uri).unwrap();
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let mut materials = EncryptionMaterials::new(suite, context());
    materials.set_data_key(hsm_keyring::DataKey::new(vec![7u8; 32])).unwrap();
    let enc = keyring.on_encrypt(materials).unwrap();
    let dec = keyring.on_decrypt(DecryptionMaterials::new(suite, context()), enc.encrypted_data_keys()).unwrap();
    assert_eq!(dec.data_key().unwrap().as_bytes(), &[7u8; 32]);
}

#[test]
fn token_generated_iv_mode_reports_a_token_that_does_not_generate() {
    // SoftHSM uses the IV it is given; in token-generated mode it is given
    // zeros and writes nothing back, which must be refused, not used.
    let hsm = softhsm_or_skip!();
    let token = token(hsm, 2);
    let uri = token.generate_aes_key("aes-token-iv", None).unwrap();
    let keyring = Pkcs11AesKeyring::new(token, &uri).unwrap().with_iv_mode(GcmIvMode::TokenGenerated);
    let err = keyring.on_encrypt(EncryptionMaterials::new(AlgorithmSuite::default(), context())).unwrap_err();
    let (function, rv) = pkcs11_error(&err);
    assert_eq!((function.as_str(), rv), ("C_Encrypt", None), "{err}");
    assert!(err.to_string().contains("IV"), "{err}");
}

#[test]
fn rsa_keyring_oaep_sha1_in_token_both_wrap_modes() {
    let hsm = softhsm_or_skip!();
    let token = token(hsm, 2);
    let uri = token.generate_rsa_key_pair("rsa-sha1", 2048, None).unwrap();
    let in_token = Pkcs11RsaKeyring::new(token.clone(), &uri, RsaPadding::OaepSha1).unwrap();
    let in_process = Pkcs11RsaKeyring::new(token, &uri, RsaPadding::OaepSha1)
        .unwrap()
        .with_wrap_mode(RsaWrapMode::InProcess)
        .unwrap();
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let (_, edks) = round_trip(&in_token, suite);
    assert_eq!(edks[0].provider_id, "hsm-keyring");
    assert_eq!(edks[0].provider_info, b"rsa-sha1");
    assert_eq!(edks[0].ciphertext.len(), 256);
    // Wrapped in process, unwrapped in the token.
    let enc = in_process.on_encrypt(EncryptionMaterials::new(suite, context())).unwrap();
    let dec = in_token.on_decrypt(DecryptionMaterials::new(suite, context()), enc.encrypted_data_keys()).unwrap();
    assert_eq!(dec.data_key(), enc.data_key());
    // Tampered ciphertext: mine but failed.
    let mut bad = enc.encrypted_data_keys()[0].clone();
    bad.ciphertext[10] ^= 0x40;
    let err = in_token.on_decrypt(DecryptionMaterials::new(suite, context()), &[bad]).unwrap_err();
    assert!(!err.is_not_mine(), "{err}");
    assert_eq!(pkcs11_error(&err).0, "C_Decrypt", "{err}");
    assert_not_this_key(&err);
    // Another key name: not mine.
    let other = in_token.clone().with_key_name("other").unwrap();
    assert!(other.on_decrypt(DecryptionMaterials::new(suite, context()), &edks).unwrap_err().is_not_mine());
}

#[test]
fn rsa_oaep_sha256_wraps_in_process_and_softhsm_refuses_to_unwrap_clearly() {
    let hsm = softhsm_or_skip!();
    let token = token(hsm, 2);
    let uri = token.generate_rsa_key_pair("rsa-sha256", 2048, None).unwrap();
    let keyring = Pkcs11RsaKeyring::new(token.clone(), &uri, RsaPadding::OaepSha256)
        .unwrap()
        .with_wrap_mode(RsaWrapMode::InProcess)
        .unwrap();
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let enc = keyring.on_encrypt(EncryptionMaterials::new(suite, context())).unwrap();
    assert_eq!(enc.encrypted_data_keys()[0].ciphertext.len(), 256);
    // The public key used is the token's.
    let pem = token.export_public_key_pem(&uri).unwrap();
    assert_eq!(RsaPublicKey::from_pem(&pem).unwrap().bits(), 2048);
    // SoftHSM 2.6 only unwraps OAEP with SHA-1: its profile refuses before
    // calling the token, and the error names the call, the token and the profile.
    let err = keyring.on_decrypt(DecryptionMaterials::new(suite, context()), enc.encrypted_data_keys()).unwrap_err();
    let (function, rv) = pkcs11_error(&err);
    assert!(function.starts_with("C_Decrypt"), "{err}");
    assert_eq!(rv, None, "{err}");
    assert!(err.to_string().contains("profile softhsm"), "{err}");
    // A mechanism the token does not support is the token's problem, not a wrong key.
    assert_eq!(err.kind(), ErrorKind::Token, "{err}");
    assert!(!err.is_authentication_failure(), "{err}");
    assert!(err.to_string().contains("SHA-1"), "{err}");
}

#[test]
fn shared_keyring_across_threads_with_a_small_pool() {
    let hsm = softhsm_or_skip!();
    let token = token(hsm, 3);
    let uri = token.generate_aes_key("aes-threads", None).unwrap();
    let keyring = Arc::new(Pkcs11AesKeyring::new(token.clone(), &uri).unwrap());
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let keyring = Arc::clone(&keyring);
            std::thread::spawn(move || {
                let ctx = EncryptionContext::from_pairs([("thread", t.to_string())]).unwrap();
                for _ in 0..500 {
                    let enc = keyring.on_encrypt(EncryptionMaterials::new(suite, ctx.clone())).unwrap();
                    let dec = keyring
                        .on_decrypt(DecryptionMaterials::new(suite, ctx.clone()), enc.encrypted_data_keys())
                        .unwrap();
                    assert_eq!(dec.data_key(), enc.data_key());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(token.pool_size(), 3);
}

/// Creating and deleting keys while other threads use the token: every call
/// succeeds (SoftHSM 2's object store fails such races unless the crate
/// serializes them), and two threads racing for one label get one key.
#[test]
fn key_management_while_other_threads_use_the_token() {
    let hsm = softhsm_or_skip!();
    let token = token(hsm, 4);
    let uri = token.generate_aes_key("race-busy", None).unwrap();
    let keyring = Arc::new(Pkcs11AesKeyring::new(token.clone(), &uri).unwrap());
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy: Vec<_> = (0..3)
        .map(|_| {
            let (keyring, stop) = (Arc::clone(&keyring), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut rounds = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let enc = keyring.on_encrypt(EncryptionMaterials::new(suite, context())).unwrap();
                    let dec = keyring
                        .on_decrypt(DecryptionMaterials::new(suite, context()), enc.encrypted_data_keys())
                        .unwrap();
                    assert_eq!(dec.data_key(), enc.data_key());
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    let makers: Vec<_> = (0..4)
        .map(|t| {
            let token = token.clone();
            std::thread::spawn(move || {
                let mut won = 0;
                for i in 0..12 {
                    let label = format!("race-{t}-{i}");
                    let aes = token.generate_aes_key(&label, None).unwrap();
                    let ec = token.generate_ec_p384_key_pair(&format!("{label}-ec"), None).unwrap();
                    token.import_aes_key(&format!("{label}-imported"), &[t as u8; 32], None).unwrap();
                    assert_eq!(token.delete_keys(&aes).unwrap(), 1);
                    assert_eq!(token.delete_keys(&Pkcs11Uri { object_type: None, ..ec }).unwrap(), 2);
                    // Every thread asks for the same label; only one may get it.
                    if token.generate_aes_key(&format!("race-shared-{i}"), None).is_ok() {
                        won += 1;
                    }
                }
                won
            })
        })
        .collect();
    let won: usize = makers.into_iter().map(|m| m.join().unwrap()).sum();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds: u32 = busy.into_iter().map(|b| b.join().unwrap()).sum();
    assert!(rounds > 0);
    assert_eq!(won, 12, "each shared label is created exactly once");
    let keys = token.list_keys().unwrap();
    for i in 0..12 {
        let label = format!("race-shared-{i}");
        assert_eq!(keys.iter().filter(|k| k.label == label).count(), 1, "{label}");
    }
    assert_eq!(keys.iter().filter(|k| k.label.starts_with("race-") && k.label.ends_with("-imported")).count(), 48);
}
