//! Rewrapping signed messages with a long-lived signer: new EDKs, a new
//! public key in the header, a recomputed footer, the same body.

mod support;

use std::sync::Arc;

use hsm_keyring::crypto::SoftwareSigner;
use hsm_keyring::format::{parse_header, HeaderLimits};
use hsm_keyring::keyrings::RawAesKeyring;
use hsm_keyring::rewrap::Rewrapper;
use hsm_keyring::{
    AlgorithmSuite, Client, EncryptionContext, ErrorKind, FooterSigner, Keyring, SignatureCurve, PUBLIC_KEY_FIELD,
};

fn aes(name: &str, byte: u8) -> Arc<dyn Keyring> {
    Arc::new(RawAesKeyring::new("rotation", name, &[byte; 32]).unwrap())
}

fn client(suite: AlgorithmSuite) -> Client {
    support::client_for(suite, 64)
}

/// The bytes between the header and the footer.
fn body(message: &[u8]) -> &[u8] {
    let h = parse_header(message, &HeaderLimits::default()).unwrap().len();
    let n = message.len();
    // The footer is a u16 length and a DER signature of 8 to 104 bytes.
    let sig = (8..=104)
        .rev()
        .find(|&k| n >= k + 2 && u16::from_be_bytes([message[n - k - 2], message[n - k - 1]]) as usize == k)
        .unwrap();
    &message[h..n - sig - 2]
}

fn context() -> EncryptionContext {
    EncryptionContext::from_pairs([("purpose", "rotation")]).unwrap()
}

#[test]
fn every_signed_suite_is_resigned_by_the_long_lived_signer() {
    let (old, new) = (aes("old", 1), aes("new", 2));
    let plaintext: Vec<u8> = (0..500u32).map(|i| i as u8).collect();
    for suite in AlgorithmSuite::ALL.into_iter().filter(|s| s.is_signing()) {
        let curve = suite.signature().unwrap();
        let signer = Arc::new(SoftwareSigner::generate(curve));
        let client = client(suite);
        let message = client.encrypt_with_keyring(&*old, &plaintext, &context()).unwrap();
        let rewrapper = Rewrapper::new(client.clone(), old.clone(), new.clone()).with_signer(signer.clone());
        let out = rewrapper.rewrap(&message).unwrap();
        assert_eq!(body(&out), body(&message), "suite {suite:?}");

        let h = parse_header(&out, &HeaderLimits::default()).unwrap();
        let old_h = parse_header(&message, &HeaderLimits::default()).unwrap();
        assert_eq!(h.message_id, old_h.message_id);
        assert_eq!(h.suite_data, old_h.suite_data);
        assert_eq!(h.encryption_context.get("purpose"), Some("rotation"));
        assert_ne!(h.encryption_context.get(PUBLIC_KEY_FIELD), old_h.encryption_context.get(PUBLIC_KEY_FIELD));

        // Only the long-lived signer is trusted: the new message verifies.
        let trusting =
            Client::builder().commitment_policy(client.commitment_policy()).trusted_signers(vec![signer.public_key()]);
        let trusting = trusting.build().unwrap();
        assert_eq!(trusting.decrypt_with_keyring(&*new, &out, &context()).unwrap().plaintext, plaintext);
        assert!(trusting.decrypt_with_keyring(&*new, &message, &context()).is_err());
        assert!(client.decrypt_with_keyring(&*old, &out, &context()).is_err(), "suite {suite:?}");
    }
}

#[test]
fn a_tampered_body_or_footer_or_a_wrong_curve_is_refused() {
    let (old, new) = (aes("old", 1), aes("new", 2));
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
    let client = client(suite);
    let message = client.encrypt_with_keyring(&*old, &[5u8; 300], &context()).unwrap();
    let signer = Arc::new(SoftwareSigner::generate(SignatureCurve::P384));
    let rewrapper = Rewrapper::new(client.clone(), old.clone(), new.clone()).with_signer(signer);
    let h = parse_header(&message, &HeaderLimits::default()).unwrap().len();

    let mut bad = message.clone();
    bad[h + 40] ^= 1; // inside the first frame's content
    assert_eq!(rewrapper.rewrap(&bad).unwrap_err().kind(), ErrorKind::NotAuthentic);

    let mut bad = message.clone();
    let n = bad.len();
    bad[n - 3] ^= 1; // inside the signature
    assert!(rewrapper.rewrap(&bad).is_err());

    let mut bad = message.clone();
    bad.push(0);
    assert!(rewrapper.rewrap(&bad).is_err());
    assert!(rewrapper.rewrap(&message[..message.len() - 10]).is_err());

    let p256 = Arc::new(SoftwareSigner::generate(SignatureCurve::P256));
    let err = Rewrapper::new(client, old, new).with_signer(p256).rewrap(&message).unwrap_err();
    assert!(err.to_string().contains("curve"), "{err}");
}
