//! Keyrings, key management and concurrency on a SoftHSM token.

mod common;

use std::sync::Arc;

use cryptoki::object::{Attribute, AttributeType};
use hsm_keyring::crypto::{RsaPadding, RsaPublicKey};
use hsm_keyring::pkcs11::{GcmIvMode, KeyKind, ObjectType, Pkcs11Uri, RsaWrapMode, Token, TokenOptions};
use hsm_keyring::{
    AlgorithmSuite, DecryptionMaterials, EncryptedDataKey, EncryptionContext, EncryptionMaterials, Error, Keyring,
    Pkcs11AesKeyring, Pkcs11RsaKeyring,
};

fn token(hsm: &common::SoftHsm, pool: usize) -> Token {
    let uri = Pkcs11Uri::parse(&hsm.token_uri()).unwrap();
    Token::open_with(&uri, TokenOptions::default().pool_size(pool)).unwrap()
}

fn context() -> EncryptionContext {
    EncryptionContext::from_pairs([("purpose", "test"), ("tenant", "a")]).unwrap()
}

fn round_trip(keyring: &dyn Keyring, suite: AlgorithmSuite) -> (Vec<u8>, Vec<EncryptedDataKey>) {
    let enc = keyring.on_encrypt(EncryptionMaterials::new(suite, context())).unwrap();
    let key = enc.plaintext_data_key.clone().unwrap();
    assert_eq!(key.len(), suite.key_len());
    assert_eq!(enc.encrypted_data_keys.len(), 1);
    let dec = keyring.on_decrypt(DecryptionMaterials::new(suite, context()), &enc.encrypted_data_keys).unwrap();
    assert_eq!(dec.plaintext_data_key.as_ref(), Some(&key));
    (key.as_bytes().to_vec(), enc.encrypted_data_keys)
}

fn pkcs11_error(err: &Error) -> (&str, Option<&str>) {
    match err {
        Error::Pkcs11(e) => (e.function.as_str(), e.rv.as_deref()),
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

#[test]
fn aes_keyring_round_trip_tamper_and_not_mine() {
    let hsm = softhsm_or_skip!();
    let token = token(hsm, 2);
    let uri = token.generate_aes_key("aes-round-trip", None).unwrap();
    let keyring = Pkcs11AesKeyring::new(token.clone(), &uri).unwrap();
    for suite in [AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, AlgorithmSuite::Aes128GcmIv12Tag16HkdfSha256] {
        round_trip(&keyring, suite);
    }
    let suite = AlgorithmSuite::default();
    let (_, edks) = round_trip(&keyring, suite);
    let edk = &edks[0];
    assert_eq!(edk.provider_id, "hsm-keyring");
    assert_eq!(edk.provider_info.len(), "aes-round-trip".len() + 20);
    assert_eq!(&edk.provider_info[..14], b"aes-round-trip");
    assert_eq!(&edk.provider_info[14..22], &[0, 0, 0, 128, 0, 0, 0, 12]);
    assert_eq!(edk.ciphertext.len(), 32 + 16);

    // A second wrap of the same key uses a fresh IV.
    let (_, again) = round_trip(&keyring, suite);
    assert_ne!(again[0].provider_info, edk.provider_info);

    // Any flipped bit in IV, ciphertext or tag: mine, but fails.
    for (field, index) in [("iv", 25usize), ("ct", 0), ("tag", 40)] {
        let mut bad = edk.clone();
        match field {
            "iv" => bad.provider_info[index] ^= 1,
            _ => bad.ciphertext[index] ^= 1,
        }
        let err = keyring.on_decrypt(DecryptionMaterials::new(suite, context()), &[bad]).unwrap_err();
        assert!(!err.is_not_mine(), "{field}: {err}");
        assert_eq!(pkcs11_error(&err).0, "C_Decrypt", "{field}: {err}");
    }
    // Another encryption context: the AAD differs, so it fails.
    let other = EncryptionContext::from_pairs([("purpose", "other")]).unwrap();
    let err = keyring.on_decrypt(DecryptionMaterials::new(suite, other), &edks).unwrap_err();
    assert!(!err.is_not_mine(), "{err}");

    // Other namespace or key name: not mine.
    let mut foreign = edk.clone();
    foreign.provider_id = "someone-else".into();
    let err = keyring.on_decrypt(DecryptionMaterials::new(suite, context()), &[foreign.clone()]).unwrap_err();
    assert!(err.is_not_mine(), "{err}");
    let renamed = keyring.clone().with_key_name("another-name").unwrap();
    let err = renamed.on_decrypt(DecryptionMaterials::new(suite, context()), &edks).unwrap_err();
    assert!(err.is_not_mine(), "{err}");
    // A foreign EDK before ours is skipped.
    let dec = keyring.on_decrypt(DecryptionMaterials::new(suite, context()), &[foreign, edk.clone()]).unwrap();
    assert!(dec.plaintext_data_key.is_some());

    // Namespace is configurable and written as the provider id.
    let ns = keyring.clone().with_namespace("team-ns").unwrap();
    let (_, edks) = round_trip(&ns, suite);
    assert_eq!(edks[0].provider_id, "team-ns");
    assert!(keyring.clone().with_namespace("aws-kms").is_err());
}

#[test]
fn aes_keyring_wraps_an_existing_data_key() {
    let hsm = softhsm_or_skip!();
    let token = token(hsm, 2);
    let uri = token.generate_aes_key("aes-existing", None).unwrap();
    let keyring = Pkcs11AesKeyring::new(token, &uri).unwrap();
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let mut materials = EncryptionMaterials::new(suite, context());
    materials.set_data_key(hsm_keyring::DataKey::new(vec![7u8; 32])).unwrap();
    let enc = keyring.on_encrypt(materials).unwrap();
    let dec = keyring.on_decrypt(DecryptionMaterials::new(suite, context()), &enc.encrypted_data_keys).unwrap();
    assert_eq!(dec.plaintext_data_key.unwrap().as_bytes(), &[7u8; 32]);
}

#[test]
fn token_generated_iv_mode_reports_a_token_that_does_not_generate() {
    // SoftHSM uses the IV it is given; in token-generated mode it is given
    // zeros and writes nothing back, which must be refused, not used.
    let hsm = softhsm_or_skip!();
    let token = token(hsm, 2);
    let uri = token.generate_aes_key("aes-token-iv", None).unwrap();
    let keyring = Pkcs11AesKeyring::new(token, &uri).unwrap().with_iv_mode(GcmIvMode::TokenGenerated);
    let err = keyring.on_encrypt(EncryptionMaterials::new(AlgorithmSuite::default(), context())).unwrap_err();
    let (function, rv) = pkcs11_error(&err);
    assert_eq!((function, rv), ("C_Encrypt", None), "{err}");
    assert!(err.to_string().contains("IV"), "{err}");
}

#[test]
fn rsa_keyring_oaep_sha1_in_token_both_wrap_modes() {
    let hsm = softhsm_or_skip!();
    let token = token(hsm, 2);
    let uri = token.generate_rsa_key_pair("rsa-sha1", 2048, None).unwrap();
    let in_token = Pkcs11RsaKeyring::new(token.clone(), &uri, RsaPadding::OaepSha1).unwrap();
    let in_process = Pkcs11RsaKeyring::new(token, &uri, RsaPadding::OaepSha1)
        .unwrap()
        .with_wrap_mode(RsaWrapMode::InProcess)
        .unwrap();
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let (_, edks) = round_trip(&in_token, suite);
    assert_eq!(edks[0].provider_id, "hsm-keyring");
    assert_eq!(edks[0].provider_info, b"rsa-sha1");
    assert_eq!(edks[0].ciphertext.len(), 256);
    // Wrapped in process, unwrapped in the token.
    let enc = in_process.on_encrypt(EncryptionMaterials::new(suite, context())).unwrap();
    let dec = in_token.on_decrypt(DecryptionMaterials::new(suite, context()), &enc.encrypted_data_keys).unwrap();
    assert_eq!(dec.plaintext_data_key, enc.plaintext_data_key);
    // Tampered ciphertext: mine but failed.
    let mut bad = enc.encrypted_data_keys[0].clone();
    bad.ciphertext[10] ^= 0x40;
    let err = in_token.on_decrypt(DecryptionMaterials::new(suite, context()), &[bad]).unwrap_err();
    assert!(!err.is_not_mine(), "{err}");
    assert_eq!(pkcs11_error(&err).0, "C_Decrypt", "{err}");
    // Another key name: not mine.
    let other = in_token.clone().with_key_name("other").unwrap();
    assert!(other.on_decrypt(DecryptionMaterials::new(suite, context()), &edks).unwrap_err().is_not_mine());
}

#[test]
fn rsa_oaep_sha256_wraps_in_process_and_softhsm_refuses_to_unwrap_clearly() {
    let hsm = softhsm_or_skip!();
    let token = token(hsm, 2);
    let uri = token.generate_rsa_key_pair("rsa-sha256", 2048, None).unwrap();
    let keyring = Pkcs11RsaKeyring::new(token.clone(), &uri, RsaPadding::OaepSha256)
        .unwrap()
        .with_wrap_mode(RsaWrapMode::InProcess)
        .unwrap();
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let enc = keyring.on_encrypt(EncryptionMaterials::new(suite, context())).unwrap();
    assert_eq!(enc.encrypted_data_keys[0].ciphertext.len(), 256);
    // The public key used is the token's.
    let pem = token.export_public_key_pem(&uri).unwrap();
    assert_eq!(RsaPublicKey::from_pem(&pem).unwrap().bits(), 2048);
    // SoftHSM 2.6 only unwraps OAEP with SHA-1: the error names the call and the CKR.
    let err = keyring.on_decrypt(DecryptionMaterials::new(suite, context()), &enc.encrypted_data_keys).unwrap_err();
    let (function, rv) = pkcs11_error(&err);
    assert!(function.starts_with("C_Decrypt"), "{err}");
    assert!(matches!(rv, Some("CKR_ARGUMENTS_BAD" | "CKR_MECHANISM_PARAM_INVALID" | "CKR_MECHANISM_INVALID")), "{err}");
    assert!(err.to_string().contains("SHA-1"), "{err}");
}

#[test]
fn shared_keyring_across_threads_with_a_small_pool() {
    let hsm = softhsm_or_skip!();
    let token = token(hsm, 3);
    let uri = token.generate_aes_key("aes-threads", None).unwrap();
    let keyring = Arc::new(Pkcs11AesKeyring::new(token.clone(), &uri).unwrap());
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let keyring = Arc::clone(&keyring);
            std::thread::spawn(move || {
                let ctx = EncryptionContext::from_pairs([("thread", t.to_string())]).unwrap();
                for _ in 0..500 {
                    let enc = keyring.on_encrypt(EncryptionMaterials::new(suite, ctx.clone())).unwrap();
                    let dec = keyring
                        .on_decrypt(DecryptionMaterials::new(suite, ctx.clone()), &enc.encrypted_data_keys)
                        .unwrap();
                    assert_eq!(dec.plaintext_data_key, enc.plaintext_data_key);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(token.pool_size(), 3);
}

#[test]
fn generated_keys_have_safe_attributes() {
    let hsm = softhsm_or_skip!();
    let token = token(hsm, 2);
    let aes = token.generate_aes_key("gen-aes", Some(b"\x01\x02")).unwrap();
    let rsa = token.generate_rsa_key_pair("gen-rsa", 3072, None).unwrap();
    let ec = token.generate_ec_p384_key_pair("gen-ec", None).unwrap();
    let imported = token.import_aes_key("gen-imported", &[9u8; 32], None).unwrap();
    assert_eq!(aes.id.as_deref(), Some(&[1u8, 2][..]));
    assert_eq!(rsa.id.as_ref().map(Vec::len), Some(8));
    assert_eq!(aes.object_type, Some(ObjectType::SecretKey));
    assert_eq!(rsa.object_type, Some(ObjectType::Private));
    assert_eq!(aes.token.as_deref(), Some(common::TOKEN_LABEL));
    // The returned URI opens the key.
    Pkcs11AesKeyring::new(token.clone(), &aes).unwrap();

    // Read the attributes back through cryptoki directly.
    let session = hsm.raw_session();
    let read = |label: &str, class: cryptoki::object::ObjectClass| {
        let handles =
            session.find_objects(&[Attribute::Label(label.as_bytes().to_vec()), Attribute::Class(class)]).unwrap();
        assert_eq!(handles.len(), 1, "{label}");
        let attrs = session
            .get_attributes(
                handles[0],
                &[
                    AttributeType::Token,
                    AttributeType::Private,
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::Encrypt,
                    AttributeType::Decrypt,
                    AttributeType::Sign,
                    AttributeType::Verify,
                    AttributeType::Wrap,
                    AttributeType::Unwrap,
                    AttributeType::Derive,
                ],
            )
            .unwrap();
        let mut flags = std::collections::BTreeMap::new();
        for a in attrs {
            let (name, v) = match a {
                Attribute::Token(v) => ("token", v),
                Attribute::Private(v) => ("private", v),
                Attribute::Sensitive(v) => ("sensitive", v),
                Attribute::Extractable(v) => ("extractable", v),
                Attribute::Encrypt(v) => ("encrypt", v),
                Attribute::Decrypt(v) => ("decrypt", v),
                Attribute::Sign(v) => ("sign", v),
                Attribute::Verify(v) => ("verify", v),
                Attribute::Wrap(v) => ("wrap", v),
                Attribute::Unwrap(v) => ("unwrap", v),
                Attribute::Derive(v) => ("derive", v),
                _ => continue,
            };
            flags.insert(name, v);
        }
        flags
    };
    use cryptoki::object::ObjectClass;
    fn on(flags: &std::collections::BTreeMap<&'static str, bool>) -> Vec<&'static str> {
        flags.iter().filter(|(_, v)| **v).map(|(k, _)| *k).collect()
    }
    for label in ["gen-aes", "gen-imported"] {
        let f = read(label, ObjectClass::SECRET_KEY);
        assert_eq!(on(&f), ["decrypt", "encrypt", "private", "sensitive", "token"], "{label}: {f:?}");
        assert_eq!(f.get("extractable"), Some(&false));
    }
    let f = read("gen-rsa", ObjectClass::PRIVATE_KEY);
    assert_eq!(on(&f), ["decrypt", "private", "sensitive", "token"], "{f:?}");
    let f = read("gen-rsa", ObjectClass::PUBLIC_KEY);
    assert_eq!(on(&f), ["encrypt", "token"], "{f:?}");
    let f = read("gen-ec", ObjectClass::PRIVATE_KEY);
    assert_eq!(on(&f), ["private", "sensitive", "sign", "token"], "{f:?}");
    let f = read("gen-ec", ObjectClass::PUBLIC_KEY);
    assert_eq!(on(&f), ["token", "verify"], "{f:?}");
    // The secret value cannot be read.
    let h = session.find_objects(&[Attribute::Label(b"gen-aes".to_vec())]).unwrap()[0];
    let value = session.get_attributes(h, &[AttributeType::Value]).unwrap();
    assert!(value.is_empty(), "a sensitive key's value was readable");

    // Duplicate labels are refused.
    assert!(matches!(token.generate_aes_key("gen-aes", None), Err(Error::Config { .. })));
    assert!(matches!(token.generate_ec_p384_key_pair("gen-rsa", None), Err(Error::Config { .. })));
    assert!(token.import_aes_key("gen-short", &[1u8; 20], None).is_err());

    // list_keys reports them.
    let keys = token.list_keys().unwrap();
    let find = |label: &str, t: ObjectType| keys.iter().find(|k| k.label == label && k.object_type == t).unwrap();
    let k = find("gen-aes", ObjectType::SecretKey);
    assert_eq!((k.kind, k.bits, k.sensitive, k.extractable), (KeyKind::Aes, Some(256), Some(true), Some(false)));
    assert_eq!(k.usages, ["encrypt", "decrypt"]);
    assert_eq!(k.uri.to_path_string(), aes.to_path_string());
    let k = find("gen-rsa", ObjectType::Private);
    assert_eq!((k.kind, k.bits), (KeyKind::Rsa, Some(3072)));
    assert_eq!(k.usages, ["decrypt"]);
    let k = find("gen-ec", ObjectType::Public);
    assert_eq!((k.kind, k.curve), (KeyKind::Ec, Some("P-384")));
    assert_eq!(k.usages, ["verify"]);

    // Public keys export as PEM; a secret key has no public half.
    let pem = token.export_public_key_pem(&rsa).unwrap();
    assert_eq!(RsaPublicKey::from_pem(&pem).unwrap().bits(), 3072);
    let pem = token.export_public_key_pem(&ec).unwrap();
    assert_eq!(hsm_keyring::pkcs11::trusted_signer_from_pem(&pem).unwrap().len(), 49);
    assert!(token.export_public_key_pem(&imported).is_err());

    // Deleting removes both halves.
    assert_eq!(token.delete_keys(&Pkcs11Uri { object_type: None, ..ec.clone() }).unwrap(), 2);
    assert!(token.export_public_key_pem(&ec).is_err());
}
