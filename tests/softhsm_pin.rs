//! The PIN is checked even while the process is already logged in to the
//! token. One test in its own process: PKCS#11 keeps one login per process
//! and token, so the order of the steps matters.

mod common;

use hsm_keyring::pkcs11::{Pin, Pkcs11Class, Pkcs11Uri, RvError, Token, TokenOptions};
use hsm_keyring::{Error, ErrorKind};

fn pkcs11(err: &Error) -> &hsm_keyring::pkcs11::Pkcs11Error {
    match err {
        Error::Pkcs11(e) => e,
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

#[test]
fn a_wrong_pin_fails_while_the_process_is_logged_in() {
    let hsm = softhsm_or_skip!();
    let uri = Pkcs11Uri::parse(&hsm.token_uri()).unwrap();
    let wrong = || TokenOptions::default().pin(Pin::new("0000"));

    // Logged in by code that does not go through the crate: no PIN to
    // compare with, so even the right PIN is refused rather than trusted.
    let raw = hsm.raw_session();
    let err = Token::open(&uri).unwrap_err();
    let e = pkcs11(&err);
    assert_eq!((e.operation_name().as_str(), e.rv), ("C_Login", Some(RvError::UserAlreadyLoggedIn)), "{err}");
    assert_eq!(e.class, Pkcs11Class::Configuration, "{err}");
    assert_eq!(err.kind(), ErrorKind::Token);
    assert!(err.to_string().contains("cannot be checked"), "{err}");
    raw.logout().unwrap();
    drop(raw);

    // The right PIN logs in.
    let token = Token::open(&uri).unwrap();

    // A wrong PIN while logged in is refused like a wrong PIN at C_Login.
    let err = Token::open_with(&uri, wrong()).unwrap_err();
    let e = pkcs11(&err);
    assert!(e.is_wrong_pin(), "{err}");
    assert_eq!((e.operation_name().as_str(), e.rv), ("C_Login", Some(RvError::PinIncorrect)), "{err}");
    assert_eq!(err.kind(), ErrorKind::Token);
    assert!(!err.is_authentication_failure());
    assert!(!err.to_string().contains("0000") && !format!("{err:?}").contains("0000"), "the PIN leaked: {err:?}");

    // The right PIN still opens another pool, and the first keeps working.
    let second = Token::open_with(&uri, TokenOptions::default().pool_size(1)).unwrap();
    second.list_keys().unwrap();
    token.list_keys().unwrap();

    // Logged out, the token itself checks the PIN again.
    token.logout().unwrap();
    let err = Token::open_with(&uri, wrong()).unwrap_err();
    assert!(pkcs11(&err).is_wrong_pin(), "{err}");
    assert_eq!(pkcs11(&err).rv, Some(RvError::PinIncorrect), "{err}");
    let again = Token::open(&uri).unwrap();
    again.list_keys().unwrap();
    // And the earlier pool logs in again by itself.
    token.list_keys().unwrap();
    assert!(Token::open_with(&uri, wrong()).is_err());
}
