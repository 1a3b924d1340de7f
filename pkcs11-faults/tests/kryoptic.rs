//! Kryoptic as a second software token: the module built by
//! `ci/kryoptic.sh module`, named by `HSM_KEYRING_KRYOPTIC_MODULE`, does
//! what the project needs from a token. Skipped with a notice when the
//! variable is not set, a failure then under `CI=true`.

mod support;

use std::path::PathBuf;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use support::{aes_key, gcm, rv, skip, temp_dir};

const MODULE_VAR: &str = "HSM_KEYRING_KRYOPTIC_MODULE";
const LABEL: &str = "kryoptic-test";
// Kryoptic advertises a minimum PIN length of 8.
const SO_PIN: &str = "kryoptic-so-5678";
const USER_PIN: &str = "kryoptic-user-1234";
/// DER of the secp384r1 object identifier (CKA_EC_PARAMS).
const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

fn module() -> Option<PathBuf> {
    match std::env::var_os(MODULE_VAR) {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            assert!(path.is_file(), "{MODULE_VAR}={} is not a file (ci/kryoptic.sh module builds it)", path.display());
            Some(path)
        }
        _ => skip(&format!("Kryoptic not configured ({MODULE_VAR} unset; ci/kryoptic.sh module prints the path)")),
    }
}

fn oaep_sha256() -> Mechanism<'static> {
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    ))
}

fn rsa_pair(session: &Session) -> (ObjectHandle, ObjectHandle) {
    let public = [
        Attribute::Token(false),
        Attribute::ModulusBits(2048.into()),
        Attribute::PublicExponent(vec![1, 0, 1]),
        Attribute::Encrypt(true),
    ];
    let private = [Attribute::Token(false), Attribute::Sensitive(true), Attribute::Decrypt(true)];
    session.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private).expect("RSA key pair")
}

fn p384_pair(session: &Session) -> (ObjectHandle, ObjectHandle) {
    let public = [Attribute::Token(false), Attribute::EcParams(P384.to_vec()), Attribute::Verify(true)];
    let private = [Attribute::Token(false), Attribute::Sensitive(true), Attribute::Sign(true)];
    session.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private).expect("P-384 key pair")
}

#[test]
fn kryoptic_token_does_what_the_project_needs() {
    let Some(module) = module() else { return };
    let dir = temp_dir("kryoptic-");
    let conf = dir.path().join("kryoptic.conf");
    let db = dir.path().join("token.sql");
    std::fs::write(&conf, format!("[[slots]]\nslot = 1\ndbtype = \"sqlite\"\ndbargs = \"{}\"\n", db.display()))
        .expect("kryoptic.conf");
    // Read by the module at C_Initialize.
    std::env::set_var("KRYOPTIC_CONF", &conf);

    let ctx = Pkcs11::new(&module).expect("load Kryoptic");
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).expect("C_Initialize");
    let slot = *ctx.get_all_slots().expect("slots").first().expect("the configured slot");
    let so_pin = AuthPin::new(SO_PIN.into());
    ctx.init_token(slot, &so_pin, LABEL).expect("C_InitToken");
    let info = ctx.get_token_info(slot).expect("token info");
    assert_eq!(info.label().trim_end(), LABEL);
    // Advertised, though the sqlite store does not enforce it.
    assert_eq!(info.min_pin_length(), 8);
    {
        let session = ctx.open_rw_session(slot).expect("C_OpenSession");
        session.login(UserType::So, Some(&so_pin)).expect("C_Login (SO)");
        session.init_pin(&AuthPin::new(USER_PIN.into())).expect("C_InitPIN");
        session.logout().expect("C_Logout");
    }

    let session = ctx.open_rw_session(slot).expect("C_OpenSession");
    assert_eq!(rv(session.login(UserType::User, Some(&AuthPin::new("wrong-pin-0000".into())))), RvError::PinIncorrect);
    session.login(UserType::User, Some(&AuthPin::new(USER_PIN.into()))).expect("C_Login");

    // AES-256 (CKM_AES_KEY_GEN) and AES-GCM.
    let key = aes_key(&session);
    let (mut iv, aad) = ([5u8; 12], b"header".as_slice());
    let sealed = session.encrypt(&gcm(&mut iv, aad), key, b"kryoptic gcm").expect("GCM encrypt");
    assert_eq!(sealed.len(), 12 + 16);
    assert_eq!(session.decrypt(&gcm(&mut iv, aad), key, &sealed).expect("GCM decrypt"), b"kryoptic gcm");
    let mut tampered = sealed.clone();
    tampered[3] ^= 0x80;
    assert!(session.decrypt(&gcm(&mut iv, aad), key, &tampered).is_err(), "tampered GCM accepted");

    // RSA-OAEP with SHA-256, decryption included (SoftHSM 2.6 cannot).
    let (public, private) = rsa_pair(&session);
    let wrapped = session.encrypt(&oaep_sha256(), public, &[0x42; 32]).expect("OAEP encrypt");
    assert_eq!(wrapped.len(), 256);
    assert_eq!(session.decrypt(&oaep_sha256(), private, &wrapped).expect("OAEP-SHA256 decrypt"), [0x42; 32]);
    let mut bad = wrapped.clone();
    bad[10] ^= 1;
    assert!(session.decrypt(&oaep_sha256(), private, &bad).is_err(), "corrupted OAEP accepted");

    // ECDSA on P-384.
    let (public, private) = p384_pair(&session);
    let message = b"signed by kryoptic";
    let signature = session.sign(&Mechanism::EcdsaSha384, private, message).expect("ECDSA P-384 sign");
    assert_eq!(signature.len(), 96);
    session.verify(&Mechanism::EcdsaSha384, public, message, &signature).expect("verify");
    assert!(session.verify(&Mechanism::EcdsaSha384, public, b"another message", &signature).is_err());

    through_the_fault_module(&module);
}

/// The fault module in front of Kryoptic (same process, so the same token
/// state): faults land on Kryoptic's calls too, and end its operations.
fn through_the_fault_module(kryoptic: &std::path::Path) {
    std::env::set_var("PKCS11_FAULTS_MODULE", kryoptic);
    std::env::set_var("PKCS11_FAULTS", "C_Decrypt@1=CKR_DEVICE_ERROR; vendor=no-gcm");
    std::env::remove_var("PKCS11_FAULTS_CONFIG");
    let ctx = Pkcs11::new(support::fault_module()).expect("load the fault module");
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(cryptoki::error::Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("C_Initialize through the fault module: {e}"),
    }
    let slot = support::token_slot(&ctx, LABEL);
    assert!(!ctx.get_mechanism_list(slot).expect("mechanisms").contains(&MechanismType::AES_GCM));
    assert!(ctx.get_mechanism_list(slot).expect("mechanisms").contains(&MechanismType::RSA_PKCS_OAEP));
    let session = ctx.open_rw_session(slot).expect("C_OpenSession");
    match session.login(UserType::User, Some(&AuthPin::new(USER_PIN.into()))) {
        Ok(()) | Err(cryptoki::error::Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("C_Login: {e}"),
    }
    let (public, private) = rsa_pair(&session);
    let wrapped = session.encrypt(&oaep_sha256(), public, b"through").expect("OAEP encrypt");
    assert_eq!(rv(session.decrypt(&oaep_sha256(), private, &wrapped)), RvError::DeviceError);
    assert_eq!(session.decrypt(&oaep_sha256(), private, &wrapped).expect("decrypt after the fault"), b"through");
}
