//! What a reader refuses before it asks any keyring for the data key:
//! unsigned messages when signatures are required or signers are pinned,
//! and messages with more encrypted data keys than the limit. Also the one
//! limit on frame lengths that writers and streaming readers share.

mod support;

use std::io::{Cursor, Read};
use std::sync::Arc;

use hsm_keyring::cmm::DefaultCmm;
use hsm_keyring::crypto::SoftwareSigner;
use hsm_keyring::{
    AlgorithmSuite, Client, CommitmentPolicy, EncryptionContext, Error, FooterSigner, SignatureCurve,
    DEFAULT_MAX_BODY_BUFFER, DEFAULT_MAX_ENCRYPTED_DATA_KEYS,
};
use support::{ManyEdkKeyring, TestAesKeyring};

fn suite(id: u16) -> AlgorithmSuite {
    AlgorithmSuite::from_id(id).expect("known suite")
}

/// A message of `suite` under `keyring`, signed by `signer` when the suite signs.
fn message(keyring: &TestAesKeyring, id: u16, signer: Option<Arc<SoftwareSigner>>) -> Vec<u8> {
    let s = suite(id);
    let policy = if s.is_committing() {
        CommitmentPolicy::RequireEncryptRequireDecrypt
    } else {
        CommitmentPolicy::ForbidEncryptAllowDecrypt
    };
    let client = Client::builder().commitment_policy(policy).algorithm_suite(s).build().unwrap();
    let mut cmm = DefaultCmm::new(keyring);
    if let Some(signer) = signer {
        cmm = cmm.with_signer(signer);
    }
    client.encrypt(&cmm, b"content the reader should only see when signed", &EncryptionContext::new()).unwrap()
}

/// Decrypt one-shot and streamed; both must fail with a signature error
/// before the keyring is called.
fn refused_before_keyring(client: &Client, keyring: &TestAesKeyring, msg: &[u8]) -> String {
    let cmm = DefaultCmm::new(keyring);
    let before = keyring.decrypt_calls();
    let err = client.decrypt(&cmm, msg, &EncryptionContext::new()).unwrap_err();
    assert!(matches!(err, Error::Signature { .. }), "one-shot: {err}");
    let streamed = client.decrypt_stream(&cmm, &EncryptionContext::new(), Cursor::new(msg)).unwrap_err();
    assert!(matches!(streamed, Error::Signature { .. }), "stream: {streamed}");
    assert_eq!(keyring.decrypt_calls(), before, "the keyring was asked for the data key");
    err.to_string()
}

#[test]
fn trusted_signers_refuse_unsigned_messages() {
    let keyring = TestAesKeyring::sample();
    let signer = Arc::new(SoftwareSigner::generate(SignatureCurve::P384));
    let pinned = Client::builder()
        .commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt)
        .trusted_signers(vec![FooterSigner::public_key(&*signer)])
        .build()
        .unwrap();
    // Committing and legacy unsigned suites alike.
    for id in [0x0478, 0x0178, 0x0078] {
        let msg = message(&keyring, id, None);
        // Readable without the pin: the refusal is the pin's doing.
        let open = Client::builder().commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt).build().unwrap();
        assert!(open.decrypt_with_keyring(&keyring, &msg, &EncryptionContext::new()).is_ok(), "0x{id:04X}");
        let text = refused_before_keyring(&pinned, &keyring, &msg);
        assert!(text.contains("not signed"), "{text}");
    }
    // Signed by the trusted key: accepted; by a per-message key: refused.
    let good = message(&keyring, 0x0578, Some(signer.clone()));
    let got = pinned.decrypt_with_keyring(&keyring, &good, &EncryptionContext::new()).unwrap();
    assert_eq!(got.plaintext, b"content the reader should only see when signed");
    let per_message = message(&keyring, 0x0578, None);
    let text = refused_before_keyring(&pinned, &keyring, &per_message);
    assert!(text.contains("trusted"), "{text}");
    // An empty trusted set refuses everything.
    let nobody = Client::builder().trusted_signers(Vec::new()).build().unwrap();
    refused_before_keyring(&nobody, &keyring, &good);
}

#[test]
fn require_signed_accepts_any_signer_and_refuses_unsigned() {
    let keyring = TestAesKeyring::sample();
    let signed_only = Client::builder()
        .commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt)
        .require_signed(true)
        .build()
        .unwrap();
    for id in [0x0478, 0x0178, 0x0014] {
        let msg = message(&keyring, id, None);
        let text = refused_before_keyring(&signed_only, &keyring, &msg);
        assert!(text.contains(&format!("0x{id:04X}")), "{text}");
    }
    for id in [0x0578, 0x0378] {
        let msg = message(&keyring, id, None);
        let cmm = DefaultCmm::new(&keyring);
        assert!(signed_only.decrypt(&cmm, &msg, &EncryptionContext::new()).is_ok(), "0x{id:04X}");
        let mut out = Vec::new();
        signed_only
            .decrypt_stream(&cmm, &EncryptionContext::new(), Cursor::new(&msg))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"content the reader should only see when signed");
    }
    // Switched off again: unsigned messages are read.
    let lenient = Client::builder().require_signed(false).build().unwrap();
    assert!(lenient
        .decrypt_with_keyring(&keyring, &message(&keyring, 0x0478, None), &EncryptionContext::new())
        .is_ok());
}

#[test]
fn edk_count_is_bounded_by_default_before_any_keyring_call() {
    let over = DEFAULT_MAX_ENCRYPTED_DATA_KEYS + 1;
    let keyring = ManyEdkKeyring { inner: TestAesKeyring::sample(), extra: over - 1 };
    // Writing more EDKs than readers accept by default is refused too.
    let err = Client::new().encrypt_with_keyring(&keyring, b"x", &EncryptionContext::new()).unwrap_err();
    assert!(
        matches!(err, Error::TooManyEncryptedDataKeys { count, max } if count == over && max == DEFAULT_MAX_ENCRYPTED_DATA_KEYS),
        "{err}"
    );

    let raised = Client::builder().max_encrypted_data_keys(over).build().unwrap();
    let msg = raised.encrypt_with_keyring(&keyring, b"many recipients", &EncryptionContext::new()).unwrap();
    let before = keyring.inner.decrypt_calls();
    let err = Client::new().decrypt_with_keyring(&keyring, &msg, &EncryptionContext::new()).unwrap_err();
    assert!(matches!(err, Error::TooManyEncryptedDataKeys { .. }), "{err}");
    let cmm = DefaultCmm::new(&keyring);
    let err = Client::new().decrypt_stream(&cmm, &EncryptionContext::new(), Cursor::new(&msg)).unwrap_err();
    assert!(matches!(err, Error::TooManyEncryptedDataKeys { .. }), "{err}");
    assert_eq!(keyring.inner.decrypt_calls(), before, "no keyring call for an over-limit message");
    // The header can still be looked at, and a raised limit reads it.
    assert_eq!(Client::new().inspect(Cursor::new(&msg)).unwrap().encrypted_data_keys.len(), over);
    assert_eq!(
        raised.decrypt_with_keyring(&keyring, &msg, &EncryptionContext::new()).unwrap().plaintext,
        b"many recipients"
    );
    // Exactly at the default: accepted.
    let at = ManyEdkKeyring { inner: TestAesKeyring::sample(), extra: DEFAULT_MAX_ENCRYPTED_DATA_KEYS - 1 };
    let msg = Client::new().encrypt_with_keyring(&at, b"y", &EncryptionContext::new()).unwrap();
    assert!(Client::new().decrypt_with_keyring(&at, &msg, &EncryptionContext::new()).is_ok());
}

#[test]
fn frame_lengths_that_streaming_readers_refuse_are_refused_on_encrypt() {
    let keyring = TestAesKeyring::sample();
    let cmm = DefaultCmm::new(&keyring);
    let ctx = EncryptionContext::new();
    let too_long = u32::try_from(DEFAULT_MAX_BODY_BUFFER + 1).unwrap();
    let client = Client::builder().frame_length(too_long).build().unwrap();
    for err in
        [client.encrypt(&cmm, b"x", &ctx).unwrap_err(), client.encrypt_stream(&cmm, &ctx, Vec::new()).unwrap_err()]
    {
        assert!(matches!(err, Error::Config { .. }), "{err}");
        assert!(err.to_string().contains("streaming limit"), "{err}");
    }
    // A small limit: a frame above it is refused, a frame within it is written and streamed back.
    let over = Client::builder().max_body_buffer(1024).frame_length(1025).build().unwrap();
    assert!(over.encrypt(&cmm, b"x", &ctx).is_err());
    let small = Client::builder().max_body_buffer(1024).frame_length(1024).build().unwrap();
    let plaintext = vec![7u8; 5000];
    let msg = small.encrypt(&cmm, &plaintext, &ctx).unwrap();
    let mut out = Vec::new();
    small.decrypt_stream(&cmm, &ctx, Cursor::new(&msg)).unwrap().read_to_end(&mut out).unwrap();
    assert_eq!(out, plaintext);
    // With the limit raised, a larger frame is written.
    let raised = Client::builder().max_body_buffer(2048).frame_length(2048).build().unwrap();
    assert!(raised.encrypt(&cmm, &plaintext, &ctx).is_ok());
}
