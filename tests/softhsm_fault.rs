//! A session that is lost and cannot be recovered (the process was logged
//! out and the user PIN changed meanwhile) is a token error, never "not this
//! key", alone or inside a multi-keyring. In its own process: it changes the
//! token's PIN.

mod common;

use std::sync::Arc;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use hsm_keyring::keyrings::{MultiKeyring, RawAesKeyring};
use hsm_keyring::pkcs11::Pkcs11AesKeyring;
use hsm_keyring::pkcs11::{Pkcs11Class, Pkcs11Uri, Token, TokenOptions};
use hsm_keyring::{
    AlgorithmSuite, DecryptionMaterials, EncryptionContext, EncryptionMaterials, Error, ErrorKind, Keyring,
};

/// Set a new user PIN as the security officer, through cryptoki directly.
fn change_user_pin(hsm: &common::SoftHsm, new_pin: &str) {
    let ctx = Pkcs11::new(&hsm.module).unwrap();
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).map(|i| i.label().trim_end() == common::TOKEN_LABEL).unwrap_or(false))
        .unwrap();
    let session = ctx.open_rw_session(slot).unwrap();
    session.login(UserType::So, Some(&AuthPin::new(common::SO_PIN.into()))).unwrap();
    session.init_pin(&AuthPin::new(new_pin.into())).unwrap();
    session.logout().unwrap();
}

#[test]
fn a_session_lost_for_good_is_a_token_error() {
    let hsm = softhsm_or_skip!();
    let uri = Pkcs11Uri::parse(&hsm.token_uri()).unwrap();
    let token = Token::open_with(&uri, TokenOptions::default().pool_size(1)).unwrap();
    let key = token.generate_aes_key("fault", None).unwrap();
    let keyring = Pkcs11AesKeyring::new(token.clone(), &key).unwrap();
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let ctx = EncryptionContext::new();
    let edks = keyring.on_encrypt(EncryptionMaterials::new(suite, ctx.clone())).unwrap().encrypted_data_keys().to_vec();

    token.logout().unwrap();
    change_user_pin(hsm, "a-new-user-pin");

    // The pool re-opens its session once, and logging in again fails.
    let err = keyring.on_decrypt(DecryptionMaterials::new(suite, ctx.clone()), &edks).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Token, "{err}");
    assert!(!err.is_authentication_failure(), "{err}");
    assert!(matches!(&err, Error::Pkcs11(e) if e.class == Pkcs11Class::WrongPin), "{err}");
    assert_eq!(token.session_reopen_count(), 1);

    // Next to a raw keyring that does not open the EDK either: still the token.
    let raw: Arc<dyn Keyring> = Arc::new(RawAesKeyring::new("hsm-keyring", "fault", &[3; 32]).unwrap());
    let multi = MultiKeyring::new(Some(raw), vec![Arc::new(keyring)]).unwrap();
    let err = multi.on_decrypt(DecryptionMaterials::new(suite, ctx), &edks).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Token, "{err}");
    assert!(err.to_string().contains("CKR_PIN_INCORRECT"), "{err}");
}
