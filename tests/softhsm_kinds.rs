//! What a failed decrypt with token keys means: a wrong key, a wrong
//! encryption context or an altered EDK is "not this key"; a token that
//! refuses to use its key is a token error, also inside a multi-keyring.

mod common;

use std::sync::Arc;

use hsm_keyring::crypto::RsaPadding;
use hsm_keyring::keyrings::{MultiKeyring, RawAesKeyring};
use hsm_keyring::pkcs11::{Pkcs11AesKeyring, Pkcs11RsaKeyring};
use hsm_keyring::pkcs11::{Pkcs11Class, Pkcs11Uri, RvError, Token, TokenOptions};
use hsm_keyring::{
    AlgorithmSuite, DecryptionMaterials, EncryptedDataKey, EncryptionContext, EncryptionMaterials, Error, ErrorKind,
    Keyring,
};

const SUITE: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;

fn token(hsm: &common::SoftHsm) -> Token {
    let uri = Pkcs11Uri::parse(&hsm.token_uri()).unwrap();
    Token::open_with(&uri, TokenOptions::default().pool_size(2)).unwrap()
}

fn context() -> EncryptionContext {
    EncryptionContext::from_pairs([("tenant", "a")]).unwrap()
}

fn encrypt(keyring: &dyn Keyring) -> Vec<EncryptedDataKey> {
    keyring.on_encrypt(EncryptionMaterials::new(SUITE, context())).unwrap().encrypted_data_keys().to_vec()
}

fn decrypt(keyring: &dyn Keyring, context: EncryptionContext, edks: &[EncryptedDataKey]) -> Error {
    keyring.on_decrypt(DecryptionMaterials::new(SUITE, context), edks).unwrap_err()
}

#[track_caller]
fn assert_not_this_key(err: &Error) {
    assert_eq!(err.kind(), ErrorKind::NotThisKey, "{err}");
    assert!(err.is_authentication_failure(), "{err}");
}

#[track_caller]
fn assert_token(err: &Error) {
    assert_eq!(err.kind(), ErrorKind::Token, "{err}");
    assert!(!err.is_authentication_failure(), "{err}");
}

#[test]
fn wrong_key_context_or_edk_is_not_this_key_on_token_aes_and_rsa_keys() {
    let hsm = softhsm_or_skip!();
    let token = token(hsm);
    let other_context = EncryptionContext::from_pairs([("tenant", "b")]).unwrap();

    // AES: a second key under the first one's name is the wrong key.
    let a = token.generate_aes_key("kinds-aes-a", None).unwrap();
    let b = token.generate_aes_key("kinds-aes-b", None).unwrap();
    let right = Pkcs11AesKeyring::new(token.clone(), &a).unwrap();
    let wrong = Pkcs11AesKeyring::new(token.clone(), &b).unwrap().with_key_name("kinds-aes-a").unwrap();
    let edks = encrypt(&right);
    let err = decrypt(&wrong, context(), &edks);
    assert_not_this_key(&err);
    assert!(matches!(&err, Error::Pkcs11(e) if e.class == Pkcs11Class::UnwrapRefused), "{err}");
    assert!(!err.to_string().contains("internal failure"), "{err}");
    assert_not_this_key(&decrypt(&right, other_context.clone(), &edks));
    let mut altered = edks.clone();
    altered[0].ciphertext[3] ^= 1;
    assert_not_this_key(&decrypt(&right, context(), &altered));
    // Two own EDKs that both fail: each is reported, typed, and the whole is "not this key".
    let two = [altered[0].clone(), edks[0].clone()];
    let err = decrypt(&right, other_context.clone(), &two);
    assert_not_this_key(&err);
    let Error::NoKeyringDecrypted { failures, .. } = &err else { panic!("expected one failure per EDK: {err:?}") };
    assert_eq!(failures.len(), 2, "{err}");
    assert!(failures.iter().all(|f| matches!(f.error(), Error::Pkcs11(_))), "{err}");
    assert!(failures[1].keyring.contains("EDK #2"), "{err}");

    // RSA: the same for a token key pair.
    let a = token.generate_rsa_key_pair("kinds-rsa-a", 2048, None).unwrap();
    let b = token.generate_rsa_key_pair("kinds-rsa-b", 2048, None).unwrap();
    let right = Pkcs11RsaKeyring::new(token.clone(), &a, RsaPadding::OaepSha1).unwrap();
    let wrong =
        Pkcs11RsaKeyring::new(token.clone(), &b, RsaPadding::OaepSha1).unwrap().with_key_name("kinds-rsa-a").unwrap();
    let edks = encrypt(&right);
    assert_not_this_key(&decrypt(&wrong, context(), &edks));
    let mut altered = edks.clone();
    altered[0].ciphertext[100] ^= 0x10;
    assert_not_this_key(&decrypt(&right, context(), &altered));
    // Inside a multi-keyring, next to a raw keyring whose EDK is not there.
    let raw: Arc<dyn Keyring> = Arc::new(RawAesKeyring::new("raw", "k", &[7; 32]).unwrap());
    let multi = MultiKeyring::new(Some(raw), vec![Arc::new(wrong)]).unwrap();
    assert_not_this_key(&decrypt(&multi, context(), &edks));
}

#[test]
fn a_token_that_refuses_its_key_is_a_token_error_also_in_a_multi_keyring() {
    let hsm = softhsm_or_skip!();
    let token = token(hsm);
    // An AES key whose CKA_DECRYPT is false, made behind the crate's back.
    hsm.aes_key_with_usages("kinds-encrypt-only", true, false);
    let uri = Pkcs11Uri::parse(&hsm.key_uri("kinds-encrypt-only", "secret-key")).unwrap();
    let keyring = Pkcs11AesKeyring::new(token.clone(), &uri).unwrap();
    let edks = encrypt(&keyring);
    let err = decrypt(&keyring, context(), &edks);
    assert_token(&err);
    let Error::Pkcs11(e) = &err else { panic!("expected a PKCS#11 error: {err:?}") };
    assert_eq!(e.rv, Some(RvError::KeyFunctionNotPermitted), "{err}");
    assert_eq!(e.class, Pkcs11Class::Configuration, "{err}");

    // In a multi-keyring next to a raw keyring that fails on its own EDK,
    // the token error wins: a refusing token is never reported as a wrong key.
    let raw: Arc<dyn Keyring> = Arc::new(RawAesKeyring::new("raw", "k", &[7; 32]).unwrap());
    let keyring: Arc<dyn Keyring> = Arc::new(keyring);
    let mut edks_for_both = edks.clone();
    edks_for_both.extend(encrypt(&RawAesKeyring::new("raw", "k", &[8; 32]).unwrap()));
    for (generator, child) in [(raw.clone(), keyring.clone()), (keyring, raw)] {
        let multi = MultiKeyring::new(Some(generator), vec![child]).unwrap();
        let err = decrypt(&multi, context(), &edks_for_both);
        assert_token(&err);
        let Error::NoKeyringDecrypted { failures, .. } = &err else { panic!("{err:?}") };
        let kinds: Vec<ErrorKind> = failures.iter().map(|f| f.kind()).collect();
        assert!(kinds.contains(&ErrorKind::NotThisKey) && kinds.contains(&ErrorKind::Token), "{kinds:?}");
    }
}
