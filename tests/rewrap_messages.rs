//! Rewrapping messages: new EDKs, same body, for every message suite.

mod support;

use std::sync::Arc;

use hsm_keyring::format::{parse_header, HeaderLimits};
use hsm_keyring::keyrings::{MultiKeyring, RawAesKeyring};
use hsm_keyring::rewrap::Rewrapper;
use hsm_keyring::{AlgorithmSuite, Client, EncryptionContext, ErrorKind, Keyring};

fn aes(name: &str, byte: u8) -> Arc<dyn Keyring> {
    Arc::new(RawAesKeyring::new("rotation", name, &[byte; 32]).unwrap())
}

fn client(suite: AlgorithmSuite) -> Client {
    support::client_for(suite, 100)
}

fn plaintext() -> Vec<u8> {
    (0..1000u32).map(|i| (i * 7) as u8).collect()
}

fn context() -> EncryptionContext {
    EncryptionContext::from_pairs([("purpose", "rotation")]).unwrap()
}

fn header_len(message: &[u8]) -> usize {
    parse_header(message, &HeaderLimits::default()).unwrap().len()
}

#[test]
fn every_unsigned_suite_rewraps_with_the_same_body() {
    let (old, new) = (aes("old", 1), aes("new", 2));
    for suite in AlgorithmSuite::ALL.into_iter().filter(|s| !s.is_signing()) {
        let client = client(suite);
        let message = client.encrypt_with_keyring(&*old, &plaintext(), &context()).unwrap();
        let rewrapper = Rewrapper::new(client.clone(), old.clone(), new.clone());
        let out = rewrapper.rewrap(&message).unwrap();

        // The body (everything after the header) is byte for byte the same.
        assert_eq!(&out[header_len(&out)..], &message[header_len(&message)..], "suite {suite:?}");
        let (h_old, h_new) = (
            parse_header(&message, &HeaderLimits::default()).unwrap(),
            parse_header(&out, &HeaderLimits::default()).unwrap(),
        );
        assert_eq!(h_new.version, h_old.version);
        assert_eq!(h_new.message_id, h_old.message_id);
        assert_eq!(h_new.suite_data, h_old.suite_data);
        assert_eq!(h_new.encryption_context, h_old.encryption_context);
        assert_eq!(h_new.encrypted_data_keys.len(), 1);
        assert_ne!(h_new.encrypted_data_keys, h_old.encrypted_data_keys);

        let decrypted = client.decrypt_with_keyring(&*new, &out, &context()).unwrap();
        assert_eq!(decrypted.plaintext, plaintext(), "suite {suite:?}");
        let err = client.decrypt_with_keyring(&*old, &out, &context()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotThisKey, "suite {suite:?}: {err}");
    }
}

#[test]
fn the_new_header_carries_exactly_the_new_keys() {
    let old = aes("old", 1);
    let (a, b) = (aes("a", 3), aes("b", 4));
    let to: Arc<dyn Keyring> = Arc::new(MultiKeyring::new(None, vec![a.clone(), b.clone()]).unwrap());
    let client = client(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey);
    let message = client.encrypt_with_keyring(&*old, &plaintext(), &context()).unwrap();
    let out = Rewrapper::new(client.clone(), old.clone(), to).rewrap(&message).unwrap();
    let h = parse_header(&out, &HeaderLimits::default()).unwrap();
    assert_eq!(h.encrypted_data_keys.len(), 2);
    for ring in [&a, &b] {
        assert_eq!(client.decrypt_with_keyring(&**ring, &out, &context()).unwrap().plaintext, plaintext());
    }
    assert!(client.decrypt_with_keyring(&*old, &out, &context()).is_err());
}

#[test]
fn a_rewrapped_message_can_be_rewrapped_again() {
    let (k1, k2, k3) = (aes("k1", 1), aes("k2", 2), aes("k3", 3));
    let client = client(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey);
    let m1 = client.encrypt_with_keyring(&*k1, &plaintext(), &context()).unwrap();
    let m2 = Rewrapper::new(client.clone(), k1.clone(), k2.clone()).rewrap(&m1).unwrap();
    let m3 = Rewrapper::new(client.clone(), k2.clone(), k3.clone()).rewrap(&m2).unwrap();
    assert_eq!(client.decrypt_with_keyring(&*k3, &m3, &context()).unwrap().plaintext, plaintext());
    assert!(Rewrapper::new(client.clone(), k2, k3.clone()).is_already_rewrapped(&m3[..]).unwrap());
    assert!(!Rewrapper::new(client, k1, k3).is_already_rewrapped(&m1[..]).unwrap());
}

#[test]
fn signed_messages_are_refused() {
    let (old, new) = (aes("old", 1), aes("new", 2));
    for suite in AlgorithmSuite::ALL.into_iter().filter(|s| s.is_signing()) {
        let client = client(suite);
        let message = client.encrypt_with_keyring(&*old, &plaintext(), &context()).unwrap();
        let mut out = Vec::new();
        let err = Rewrapper::new(client, old.clone(), new.clone()).rewrap_stream(&message[..], &mut out).unwrap_err();
        assert!(err.to_string().contains("cannot be rewrapped"), "{err}");
        assert!(out.is_empty());
    }
}

#[test]
fn a_tampered_header_or_a_foreign_key_is_refused_and_nothing_is_written() {
    let (old, new, other) = (aes("old", 1), aes("new", 2), aes("other", 9));
    let client = client(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey);
    let message = client.encrypt_with_keyring(&*old, &plaintext(), &context()).unwrap();
    let rewrapper = Rewrapper::new(client.clone(), old.clone(), new.clone());

    // The frame length field: changes no parse, only the authentication.
    let h = parse_header(&message, &HeaderLimits::default()).unwrap();
    let mut tampered = message.clone();
    tampered[h.len() - 16 - 32 - 1] ^= 0x01;
    let mut out = Vec::new();
    let err = rewrapper.rewrap_stream(&tampered[..], &mut out).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotAuthentic, "{err}");
    assert!(out.is_empty());

    // The header tag itself.
    let mut tampered = message.clone();
    tampered[h.len() - 1] ^= 0x80;
    assert_eq!(rewrapper.rewrap_stream(&tampered[..], &mut out).unwrap_err().kind(), ErrorKind::NotAuthentic);
    assert!(out.is_empty());

    // The --from keys cannot open it.
    let err = Rewrapper::new(client, other, new).rewrap_stream(&message[..], &mut out).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotThisKey, "{err}");
    assert!(out.is_empty());

    // Not a message at all.
    assert!(rewrapper.rewrap(b"\x02garbage").is_err());
}

#[test]
fn a_tampered_body_is_copied_but_does_not_decrypt() {
    // Without --verify the body is not read for authentication: the
    // rewrapped message fails on decryption just as the original would.
    let (old, new) = (aes("old", 1), aes("new", 2));
    let client = client(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey);
    let mut message = client.encrypt_with_keyring(&*old, &plaintext(), &context()).unwrap();
    let n = message.len();
    message[n - 5] ^= 1;
    let out = Rewrapper::new(client.clone(), old, new.clone()).rewrap(&message).unwrap();
    assert_eq!(client.decrypt_with_keyring(&*new, &out, &context()).unwrap_err().kind(), ErrorKind::NotAuthentic);
}
