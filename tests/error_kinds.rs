//! Each way a message decrypt fails gives its kind ([`Error::kind`]), and
//! the wrong-key error names the keys the message is for.

use std::sync::Arc;

use hsm_keyring::format::{parse_header, HeaderLimits};
use hsm_keyring::keyrings::{MultiKeyring, RawAesKeyring};
use hsm_keyring::{Client, EncryptionContext, Error, ErrorKind, Keyring};

fn ctx() -> EncryptionContext {
    EncryptionContext::from_pairs([("purpose", "kinds")]).unwrap()
}

fn aes(name: &str, byte: u8) -> RawAesKeyring {
    RawAesKeyring::new("kinds", name, &[byte; 32]).unwrap()
}

#[test]
fn each_failed_decrypt_has_its_kind() {
    let client = Client::new();
    let right = aes("right", 1);
    let message = client.encrypt_with_keyring(&right, b"plaintext", &ctx()).unwrap();
    let kind = |keyring: &dyn Keyring, message: &[u8], context: &EncryptionContext| {
        let err = client.decrypt_with_keyring(keyring, message, context).unwrap_err();
        assert_eq!(err.is_authentication_failure(), err.kind() != ErrorKind::Usage, "{err}");
        err.kind()
    };

    // Not this key: another key under the same name, or no EDK for the keyring.
    assert_eq!(kind(&aes("right", 2), &message, &ctx()), ErrorKind::NotThisKey);
    assert_eq!(kind(&aes("other", 1), &message, &ctx()), ErrorKind::NotThisKey);
    let multi = MultiKeyring::new(Some(Arc::new(aes("other", 1))), vec![Arc::new(aes("right", 3))]).unwrap();
    assert_eq!(kind(&multi, &message, &ctx()), ErrorKind::NotThisKey);
    // Not authentic: an altered body, a wrong required context.
    let mut altered = message.clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    assert_eq!(kind(&right, &altered, &ctx()), ErrorKind::NotAuthentic);
    let other = EncryptionContext::from_pairs([("purpose", "other")]).unwrap();
    assert_eq!(kind(&right, &message, &other), ErrorKind::NotAuthentic);
    // Malformed: cut short, or not a message at all.
    let header_len = parse_header(&message, &HeaderLimits::default()).unwrap().len();
    assert_eq!(kind(&right, &message[..header_len + 3], &ctx()), ErrorKind::Malformed);
    assert_eq!(kind(&right, b"not a message", &ctx()), ErrorKind::Malformed);
    // Usage: a client whose limits or policy refuse the message.
    let small = Client::builder().max_header_len(16).build().unwrap();
    assert_eq!(small.decrypt_with_keyring(&right, &message, &ctx()).unwrap_err().kind(), ErrorKind::Usage);
}

#[test]
fn the_wrong_key_error_names_the_message_keys() {
    let client = Client::new();
    let multi = MultiKeyring::new(Some(Arc::new(aes("first", 1))), vec![Arc::new(aes("second", 2))]).unwrap();
    let message = client.encrypt_with_keyring(&multi, b"x", &ctx()).unwrap();
    let stranger = MultiKeyring::new(Some(Arc::new(aes("stranger", 9))), vec![]).unwrap();
    let err = client.decrypt_with_keyring(&stranger, &message, &ctx()).unwrap_err();
    let Error::NoKeyringDecrypted { offered, offered_count, .. } = &err else { panic!("{err:?}") };
    assert_eq!(offered, &["kinds/first", "kinds/second"]);
    assert_eq!(*offered_count, 2);
    assert!(err.to_string().contains("are for: kinds/first, kinds/second"), "{err}");
}
