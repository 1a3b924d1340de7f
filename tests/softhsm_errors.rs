//! Each way of getting a token or key wrong gives its own readable error.
//!
//! One test in its own process: PKCS#11 keeps one login per process, so a
//! wrong PIN is only checked while nothing else in the process is logged in.

mod common;

use hsm_keyring::pkcs11::Pkcs11AesKeyring;
use hsm_keyring::pkcs11::{Pin, Pkcs11Uri, Token, TokenOptions};
use hsm_keyring::{AlgorithmSuite, EncryptionContext, EncryptionMaterials, Error, Keyring};

fn parts(err: &Error) -> (String, Option<String>, String) {
    match err {
        Error::Pkcs11(e) => (e.operation_name(), e.rv_name(), e.detail.clone()),
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

#[test]
fn distinct_readable_errors() {
    let hsm = softhsm_or_skip!();
    let uri = Pkcs11Uri::parse(&hsm.token_uri()).unwrap();

    // Wrong PIN (first, while this process is not logged in).
    let wrong = Token::open_with(&uri, TokenOptions::default().pin(Pin::new("not-the-pin"))).unwrap_err();
    let wrong_pin = parts(&wrong);
    assert_eq!((wrong_pin.0.as_str(), wrong_pin.1.as_deref()), ("C_Login", Some("CKR_PIN_INCORRECT")), "{wrong}");
    assert!(wrong.to_string().contains("PIN"), "{wrong}");
    assert!(!wrong.to_string().contains("not-the-pin"), "the PIN leaked: {wrong}");

    // Unknown token.
    let mut other = uri.clone();
    other.token = Some("no-such-token".into());
    let err = Token::open(&other).unwrap_err();
    let unknown_token = parts(&err);
    assert_eq!((unknown_token.0.as_str(), unknown_token.1.as_deref()), ("find token", None), "{err}");
    assert!(err.to_string().contains("no-such-token") && err.to_string().contains(common::TOKEN_LABEL), "{err}");

    // Unknown key label.
    let token = Token::open(&uri).unwrap();
    let key_uri = Pkcs11Uri::parse(&hsm.key_uri("no-such-key", "secret-key")).unwrap();
    let err = Pkcs11AesKeyring::new(token.clone(), &key_uri).unwrap_err();
    let unknown_key = parts(&err);
    assert_eq!((unknown_key.0.as_str(), unknown_key.1.as_deref()), ("find key", None), "{err}");
    assert!(err.to_string().contains("no-such-key"), "{err}");
    assert!(matches!(&err, Error::Pkcs11(e) if e.key.as_deref().is_some_and(|k| k.contains("object=no-such-key"))));

    // A key whose CKA_ENCRYPT is false, made behind the crate's back.
    hsm.aes_key_with_usages("decrypt-only", false, true);
    let key_uri = Pkcs11Uri::parse(&hsm.key_uri("decrypt-only", "secret-key")).unwrap();
    let keyring = Pkcs11AesKeyring::new(token.clone(), &key_uri).unwrap();
    let err =
        keyring.on_encrypt(EncryptionMaterials::new(AlgorithmSuite::default(), EncryptionContext::new())).unwrap_err();
    let no_usage = parts(&err);
    assert_eq!(no_usage.1.as_deref(), Some("CKR_KEY_FUNCTION_NOT_PERMITTED"), "{err}");
    assert!(no_usage.0.starts_with("C_Encrypt"), "{err}");
    assert!(err.to_string().contains("CKA_ENCRYPT"), "{err}");

    // Malformed URI.
    let err = Pkcs11Uri::parse("pkcs11:token=a;object=b%zz").unwrap_err();
    assert!(matches!(&err, Error::InvalidUri { reason, .. } if reason.contains("percent")), "{err}");

    // All distinct, in what they name and in what they say.
    let all = [&wrong_pin, &unknown_token, &unknown_key, &no_usage];
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!((&a.0, &a.1), (&b.0, &b.1));
            assert_ne!(a.2, b.2);
        }
    }
}
