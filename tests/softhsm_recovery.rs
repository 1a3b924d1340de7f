//! A pooled session that loses its login is replaced once and the operation
//! succeeds. In its own process: logging out affects every session in it.

mod common;

use hsm_keyring::pkcs11::Pkcs11AesKeyring;
use hsm_keyring::pkcs11::{Pkcs11Uri, Token, TokenOptions};
use hsm_keyring::{AlgorithmSuite, DecryptionMaterials, EncryptionContext, EncryptionMaterials, Keyring};

#[test]
fn session_recovers_after_logout_behind_the_pools_back() {
    let hsm = softhsm_or_skip!();
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
