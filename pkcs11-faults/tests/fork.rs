//! hsm-keyring after a real `fork()`: a child that uses a `Token` opened by
//! its parent initializes the module again (`C_Initialize`, as PKCS#11
//! requires of a child), leaves the parent's sessions alone, logs in on a
//! session of its own and gets the right data key; the parent goes on with
//! its sessions. Here rather than in hsm-keyring's tests, which forbid
//! `unsafe`. One test in its own process: the child of a multi-threaded
//! process may only use what no other thread holds.

mod support;

use hsm_keyring::pkcs11::{Pkcs11AesKeyring, Pkcs11Uri, Token, TokenOptions};
use hsm_keyring::{AlgorithmSuite, DecryptionMaterials, EncryptionContext, EncryptionMaterials, Keyring};

#[test]
fn a_forked_child_uses_the_parents_token_after_initializing_the_module_again() {
    if support::harness(None).is_none() {
        return;
    }
    let uri = Pkcs11Uri::parse(&format!(
        "pkcs11:token={}?module-path={}&pin-value={}",
        support::LABEL,
        support::SOFTHSM,
        support::USER_PIN
    ))
    .unwrap();
    let token = Token::open_with(&uri, TokenOptions::default().pool_size(2)).unwrap();
    let key = token.generate_aes_key("fork-key", None).unwrap();
    let keyring = Pkcs11AesKeyring::new(token.clone(), &key).unwrap();
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let ctx = EncryptionContext::new();
    let enc = keyring.on_encrypt(EncryptionMaterials::new(suite, ctx.clone())).unwrap();
    let expected = enc.data_key().unwrap().as_bytes().to_vec();
    let reopens = token.stats().reopens;

    // SAFETY: fork() has no preconditions; the child below calls only
    // hsm-keyring and SoftHSM, whose locks no other thread holds at this
    // point (this test is alone in its process), then _exit()s without
    // running the parent's destructors.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let dec = keyring
                .on_decrypt(DecryptionMaterials::new(suite, ctx.clone()), enc.encrypted_data_keys())
                .expect("the child decrypts");
            assert_eq!(dec.data_key().unwrap().as_bytes(), expected.as_slice(), "the child's data key");
            // The pooled sessions were the parent's: one replacement, no failure.
            assert_eq!(token.stats().reopens, reopens + 1, "{:?}", token.stats());
            assert_eq!(token.stats().retries, 0, "{:?}", token.stats());
        }))
        .map_or(1, |()| 0);
        // SAFETY: ends the child at once, as a forked child must.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above; `status` is a valid pointer.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the child failed (status {status:#x})");

    // The parent's pool is untouched by the child.
    let dec = keyring.on_decrypt(DecryptionMaterials::new(suite, ctx), enc.encrypted_data_keys()).unwrap();
    assert_eq!(dec.data_key().unwrap().as_bytes(), expected.as_slice());
    assert_eq!(token.stats().reopens, reopens);
}
