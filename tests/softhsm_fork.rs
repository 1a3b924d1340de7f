//! A process forked from one that used a token initializes the module again
//! and leaves the parent's sessions alone. The child is played by giving the
//! module another process id (a real `fork()` needs `unsafe`): the token
//! then forgets its pooled sessions without closing them, and the next
//! operation opens and logs in a new one. In its own process: it changes the
//! module's state for everything in it.

mod common;

use hsm_keyring::pkcs11::{Pkcs11AesKeyring, Pkcs11Uri, Token, TokenOptions};
use hsm_keyring::{AlgorithmSuite, DecryptionMaterials, EncryptionContext, EncryptionMaterials, Keyring};

#[test]
fn a_new_process_id_initializes_the_module_again_and_replaces_the_pool() {
    let hsm = softhsm_or_skip!();
    let uri = Pkcs11Uri::parse(&hsm.token_uri()).unwrap();
    let token = Token::open_with(&uri, TokenOptions::default().pool_size(2)).unwrap();
    let key = token.generate_aes_key("fork", None).unwrap();
    let keyring = Pkcs11AesKeyring::new(token.clone(), &key).unwrap();
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let ctx = EncryptionContext::new();
    let enc = keyring.on_encrypt(EncryptionMaterials::new(suite, ctx.clone())).unwrap();
    let before = token.stats();

    // The same process id: nothing to do.
    assert!(!token.module().check_process(std::process::id()));
    // Another one, as in a forked child: C_Initialize again, once.
    let child = std::process::id().wrapping_add(1);
    assert!(token.module().check_process(child));
    assert!(!token.module().check_process(child));

    // The pooled sessions are the "parent's": forgotten, and the operation
    // runs on a new session.
    let dec = keyring.on_decrypt(DecryptionMaterials::new(suite, ctx.clone()), enc.encrypted_data_keys()).unwrap();
    assert_eq!(dec.data_key(), enc.data_key());
    let after = token.stats();
    assert_eq!(after.reopens, before.reopens + 1, "{after}");
    // No operation failed on the way.
    assert_eq!(after.retries, before.retries, "{after}");

    // Another token opened on the module meanwhile works as well.
    let other = Token::open_with(&uri, TokenOptions::default().pool_size(1)).unwrap();
    let other_ring = Pkcs11AesKeyring::new(other, &key).unwrap();
    let dec = other_ring.on_decrypt(DecryptionMaterials::new(suite, ctx), enc.encrypted_data_keys()).unwrap();
    assert_eq!(dec.data_key(), enc.data_key());
}
