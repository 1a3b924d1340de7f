//! Whole messages through `Client` and `DefaultCmm` with token keyrings and
//! the token signer (suites 0x0478 and 0x0578).

mod common;

use std::sync::Arc;

use hsm_keyring::cmm::DefaultCmm;
use hsm_keyring::crypto::RsaPadding;
use hsm_keyring::pkcs11::{Pkcs11AesKeyring, Pkcs11RsaKeyring, Pkcs11Signer};
use hsm_keyring::pkcs11::{Pkcs11Uri, Token, TokenOptions};
use hsm_keyring::{AlgorithmSuite, Client, EncryptionContext, FooterSigner, Keyring};

fn token(hsm: &common::SoftHsm) -> Token {
    let uri = Pkcs11Uri::parse(&hsm.token_uri()).unwrap();
    Token::open_with(&uri, TokenOptions::default().pool_size(2)).unwrap()
}

fn round_trip(keyring: Arc<dyn Keyring>, suite: AlgorithmSuite, signer: Option<Arc<dyn FooterSigner>>) {
    let client = Client::builder().algorithm_suite(suite).build().unwrap();
    let mut cmm = DefaultCmm::new(Arc::clone(&keyring));
    if let Some(signer) = signer.clone() {
        cmm = cmm.with_signer(signer);
    }
    let context = EncryptionContext::from_pairs([("app", "softhsm-test")]).unwrap();
    let plaintext: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let message = client.encrypt(&cmm, &plaintext, &context).unwrap();
    let decrypted = client.decrypt(&DefaultCmm::new(Arc::clone(&keyring)), &message, &context).unwrap();
    assert_eq!(decrypted.plaintext, plaintext);
    assert_eq!(decrypted.header.algorithm_suite, suite);
    // A flipped byte in the body fails.
    let mut bad = message.clone();
    let at = bad.len() - 40;
    bad[at] ^= 1;
    assert!(client.decrypt(&DefaultCmm::new(keyring.clone()), &bad, &context).is_err());
    // With a signer, readers that pin its key accept the message; pinning another key refuses it.
    if let Some(signer) = signer {
        let pinned = Client::builder().trusted_signers(vec![signer.public_key()]).build().unwrap();
        pinned.decrypt(&DefaultCmm::new(keyring.clone()), &message, &context).unwrap();
        let stranger = hsm_keyring::crypto::SoftwareSigner::generate(hsm_keyring::SignatureCurve::P384);
        let other = Client::builder().trusted_signers(vec![stranger.public_key()]).build().unwrap();
        assert!(other.decrypt(&DefaultCmm::new(keyring), &message, &context).is_err());
    }
}

#[test]
fn aes_keyring_messages_0478_and_0578() {
    let hsm = softhsm_or_skip!();
    let token = token(hsm);
    let uri = token.generate_aes_key("msg-aes", None).unwrap();
    let keyring: Arc<dyn Keyring> = Arc::new(Pkcs11AesKeyring::new(token, &uri).unwrap());
    round_trip(Arc::clone(&keyring), AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, None);
    round_trip(keyring, AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384, None);
}

#[test]
fn rsa_keyring_messages_with_token_signer() {
    let hsm = softhsm_or_skip!();
    let token = token(hsm);
    let uri = token.generate_rsa_key_pair("msg-rsa", 2048, None).unwrap();
    let keyring: Arc<dyn Keyring> = Arc::new(Pkcs11RsaKeyring::new(token.clone(), &uri, RsaPadding::OaepSha1).unwrap());
    let signer_uri = token.generate_ec_p384_key_pair("msg-signer", None).unwrap();
    let signer: Arc<dyn FooterSigner> = Arc::new(Pkcs11Signer::new(token, &signer_uri).unwrap());
    round_trip(Arc::clone(&keyring), AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, None);
    round_trip(keyring, AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384, Some(signer));
}
