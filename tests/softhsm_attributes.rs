//! Keys generated through the crate carry safe attributes, checked by
//! reading them back through cryptoki directly.
//!
//! In its own process: the direct session bypasses the crate's lock on
//! object changes, and SoftHSM 2 fails object creation in one thread while
//! another reads its object store (see `Module::object_lock`).

mod common;

use cryptoki::object::{Attribute, AttributeType};
use hsm_keyring::crypto::RsaPublicKey;
use hsm_keyring::pkcs11::{EcCurve, KeyKind, KeyUsage, ObjectType, Pkcs11Uri, Token, TokenOptions};
use hsm_keyring::{Error, Pkcs11AesKeyring};

fn token(hsm: &common::SoftHsm, pool: usize) -> Token {
    let uri = Pkcs11Uri::parse(&hsm.token_uri()).unwrap();
    Token::open_with(&uri, TokenOptions::default().pool_size(pool)).unwrap()
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
    assert_eq!(k.usages, [KeyUsage::Encrypt, KeyUsage::Decrypt]);
    assert_eq!(k.uri.to_path_string(), aes.to_path_string());
    let k = find("gen-rsa", ObjectType::Private);
    assert_eq!((k.kind, k.bits), (KeyKind::Rsa, Some(3072)));
    assert_eq!(k.usages, [KeyUsage::Decrypt]);
    let k = find("gen-ec", ObjectType::Public);
    assert_eq!((k.kind, k.curve, k.bits), (KeyKind::Ec, Some(EcCurve::P384), Some(384)));
    assert_eq!(k.usages, [KeyUsage::Verify]);

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
