//! Vendor profiles against tokens that behave like the vendors': SoftHSM
//! behind the fault module, switched to a vendor behaviour
//! (`vendor=gcm-iv-after-tag` for Luna in FIPS mode, `vendor=gcm-iv-generated`
//! for AWS CloudHSM, `vendor=no-gcm` for YubiHSM 2), and profiles named explicitly on plain SoftHSM.
//!
//! In its own process: the fault module's rules are global to the process,
//! so the phases run in one test, one after the other, on the second
//! SoftHSM token; the other test uses the first token directly.

mod common;

use hsm_keyring::crypto::RsaPadding;
use hsm_keyring::keyrings::RawAesKeyring;
use hsm_keyring::pkcs11::{GcmIvMode, Pkcs11AesKeyring, Pkcs11RsaKeyring, Pkcs11Uri, Profile, Token, TokenOptions};
use hsm_keyring::{
    AlgorithmSuite, DecryptionMaterials, EncryptionContext, EncryptionMaterials, Error, ErrorKind, Keyring,
};

use common::{FaultRules, TestToken};

fn open(t: &TestToken, query: &str) -> Token {
    let uri = Pkcs11Uri::parse(&format!("{}{query}", t.token_uri())).unwrap();
    Token::open_with(&uri, TokenOptions::default().pool_size(2)).unwrap()
}

fn suite() -> AlgorithmSuite {
    AlgorithmSuite::Aes256GcmHkdfSha512CommitKey
}

fn context() -> EncryptionContext {
    EncryptionContext::from_pairs([("vendor", "profile")]).unwrap()
}

#[test]
fn vendor_behaviours_through_the_fault_module() {
    // The second token, reached through the fault module only (a token is
    // reached through one module path per process: the login is checked per path).
    let Some([second, _]) = common::extra_softhsm_tokens() else { return };
    let hsm = softhsm_or_skip!();
    let Some(faults) = common::fault_module() else { return };
    let rules = FaultRules::install(&hsm.dir, &hsm.module);
    let through = second.through_faults(&faults);
    let key = [0x3c; 32];

    // Luna in FIPS mode: the token draws the IV and appends it after the tag.
    rules.set("vendor = gcm-iv-after-tag");
    let luna = open(&through, "&profile=luna-fips");
    assert_eq!(luna.profile(), &Profile::luna_fips());
    let uri = luna.import_aes_key("luna-key", &key, None).unwrap();
    let keyring = Pkcs11AesKeyring::new(luna.clone(), &uri).unwrap();
    assert_eq!(keyring.iv_mode(), GcmIvMode::TokenAppended);
    let raw = RawAesKeyring::new("hsm-keyring", "luna-key", &key).unwrap();
    let mut ivs = Vec::new();
    for _ in 0..3 {
        let enc = keyring.on_encrypt(EncryptionMaterials::new(suite(), context())).unwrap();
        let edk = &enc.encrypted_data_keys()[0];
        // The raw AES layout, with the token's IV in the provider info:
        // software holding the key opens it, and so does the token.
        assert_eq!(edk.ciphertext.len(), 32 + 16);
        ivs.push(edk.provider_info[edk.provider_info.len() - 12..].to_vec());
        let dec = raw.on_decrypt(DecryptionMaterials::new(suite(), context()), enc.encrypted_data_keys()).unwrap();
        assert_eq!(dec.data_key(), enc.data_key());
        keyring.on_decrypt(DecryptionMaterials::new(suite(), context()), enc.encrypted_data_keys()).unwrap();
    }
    ivs.dedup();
    assert_eq!(ivs.len(), 3, "each wrap has its own IV");
    // The detected profile (SoftHSM: caller IV) meets a token that appends
    // its IV: a clear error naming the profile, not an EDK that cannot open.
    let detected = open(&through, "");
    assert_eq!(detected.profile().name, "softhsm");
    let plain = Pkcs11AesKeyring::new(detected.clone(), &uri).unwrap();
    let err = plain.on_encrypt(EncryptionMaterials::new(suite(), context())).unwrap_err();
    assert!(err.to_string().contains("IV mode") && err.to_string().contains("profile softhsm"), "{err}");
    // The appended-IV mode still reads a token that uses the IV passed in.
    rules.set("");
    let enc = keyring.on_encrypt(EncryptionMaterials::new(suite(), context())).unwrap();
    raw.on_decrypt(DecryptionMaterials::new(suite(), context()), enc.encrypted_data_keys()).unwrap();
    // Luna FIPS refuses PKCS#1 v1.5 encryption: refused before the token is called.
    let rsa = luna.generate_rsa_key_pair("luna-rsa", 2048, None).unwrap();
    let pkcs1 = Pkcs11RsaKeyring::new(luna.clone(), &rsa, RsaPadding::Pkcs1).unwrap();
    let err = pkcs1.on_encrypt(EncryptionMaterials::new(suite(), context())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Token, "{err}");
    assert!(err.to_string().contains("profile luna-fips") && err.to_string().contains("PKCS#1 v1.5"), "{err}");
    let oaep = Pkcs11RsaKeyring::new(luna, &rsa, RsaPadding::OaepSha1).unwrap();
    let enc = oaep.on_encrypt(EncryptionMaterials::new(suite(), context())).unwrap();
    oaep.on_decrypt(DecryptionMaterials::new(suite(), context()), enc.encrypted_data_keys()).unwrap();

    // AWS CloudHSM: the token draws the IV and writes it into the parameter.
    rules.set("vendor = gcm-iv-generated");
    let cloud = open(&through, "&profile=cloudhsm");
    let keyring = Pkcs11AesKeyring::new(cloud, &uri).unwrap();
    assert_eq!(keyring.iv_mode(), GcmIvMode::TokenGenerated);
    let mut ivs = Vec::new();
    for _ in 0..3 {
        let enc = keyring.on_encrypt(EncryptionMaterials::new(suite(), context())).unwrap();
        let edk = &enc.encrypted_data_keys()[0];
        ivs.push(edk.provider_info[edk.provider_info.len() - 12..].to_vec());
        let dec = raw.on_decrypt(DecryptionMaterials::new(suite(), context()), enc.encrypted_data_keys()).unwrap();
        assert_eq!(dec.data_key(), enc.data_key());
    }
    ivs.dedup();
    assert_eq!(ivs.len(), 3, "each wrap has the token's own IV");
    assert!(!ivs.contains(&vec![0u8; 12]));

    // YubiHSM 2: no AES-GCM. The AES keyring says so before any wrap.
    rules.set("vendor = no-gcm");
    let yubi = open(&through, "&profile=yubihsm2");
    let err = Pkcs11AesKeyring::new(yubi.clone(), &uri).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Token, "{err}");
    let Error::Pkcs11(e) = &err else { panic!("{err:?}") };
    assert_eq!(e.operation_name(), "C_GetMechanismInfo", "{err}");
    assert_eq!(e.rv_name().as_deref(), Some("CKR_MECHANISM_INVALID"), "{err}");
    assert!(err.to_string().contains("has no CKM_AES_GCM"), "{err}");
    // Two-byte object ids for the keys it makes.
    let made = yubi.generate_rsa_key_pair("yubi-rsa", 2048, None).unwrap();
    assert_eq!(made.id.as_ref().map(Vec::len), Some(2));
    rules.set("");
}

#[test]
fn profiles_named_on_plain_softhsm() {
    // Both tests make the extra tokens before SoftHSM is loaded.
    if common::extra_softhsm_tokens().is_none() {
        return;
    }
    let direct = common::test_token(common::Backend::SoftHsm).unwrap();
    // An unknown profile name is refused, naming the known ones.
    let uri = Pkcs11Uri::parse(&format!("{}&profile=hsm9000", direct.token_uri())).unwrap();
    let err = Token::open(&uri).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Usage, "{err}");
    assert!(err.to_string().contains("luna-fips"), "{err}");

    // kmsp11: keys are not created through PKCS#11, and the AES keyring does
    // not use its vendor GCM mechanism.
    let plain = open(direct, "");
    let aes = plain.generate_aes_key("named-aes", None).unwrap();
    let kms = Token::open_with(
        &Pkcs11Uri::parse(&direct.token_uri()).unwrap(),
        TokenOptions::default().profile(Profile::kmsp11()),
    )
    .unwrap();
    let err = kms.generate_aes_key("kms-aes", None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Token, "{err}");
    assert!(err.to_string().contains("cannot create keys"), "{err}");
    assert!(kms.import_aes_key("kms-aes", &[1; 32], None).is_err());
    let err = Pkcs11AesKeyring::new(kms, &aes).unwrap_err();
    assert!(err.to_string().contains("vendor mechanism"), "{err}");

    // CloudHSM: public keys keep the token's default CKA_PRIVATE; the pair
    // is made and its public half still read (the session is logged in).
    let cloud = open(direct, "&profile=cloudhsm");
    assert_eq!(cloud.profile().gcm_iv, GcmIvMode::TokenGenerated);
    let rsa = cloud.generate_rsa_key_pair("cloud-rsa", 2048, None).unwrap();
    assert!(cloud.export_public_key_pem(&rsa).unwrap().contains("PUBLIC KEY"));
    // SoftHSM does not generate GCM IVs: the token-generated mode says so.
    let keyring = Pkcs11AesKeyring::new(cloud, &aes).unwrap();
    let err = keyring.on_encrypt(EncryptionMaterials::new(suite(), context())).unwrap_err();
    assert!(err.to_string().contains("did not write back a generated IV"), "{err}");
}
