//! hsm-keyring's item encryption against the AWS Database Encryption SDK
//! for Rust (`aws-db-esdk`), offline, both directions.
//!
//! * `raw_keyrings_both_directions`: our raw AES and raw RSA (OAEP-SHA1,
//!   OAEP-SHA256) keyrings against the Material Providers Library's raw
//!   keyrings with the same key material, suites 0x6700 and 0x6701,
//!   configuration versions 1 and 2, an item with every attribute type
//!   (nested, non-ASCII names and values). Each encrypted item is opened by
//!   both libraries and both must give the same item.
//! * `both_readers_agree_on_normalized_numbers_and_set_order`: numbers in
//!   unusual forms and unsorted sets, written by either library, read the
//!   same by both (encrypted numbers normalized, signed-only ones as written,
//!   sets in UTF-16 or byte order).
//! * `tampered_items_are_refused_by_both`: changes made to an item written
//!   by one library are refused by the other.
//! * `token_aes_key_read_by_their_raw_aes_keyring`: our PKCS#11 AES keyring
//!   over a key imported into SoftHSM, read by their raw AES keyring holding
//!   the same bytes, and the other way round.
//! * `token_rsa_key_reads_items_of_their_raw_rsa_keyring`: their raw RSA
//!   keyring over the public key exported from a SoftHSM key pair writes
//!   items that our PKCS#11 RSA keyring opens in the token.
//! * `token_signer_items_read_by_the_sdk`: 0x6701 items signed by a
//!   long-lived ECDSA P-384 key in SoftHSM (its public key in the header as
//!   `aws-crypto-public-key`) are read by the SDK; a reader pinned to that
//!   key refuses the SDK's items, signed by a fresh key per item.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;

use hsm_keyring::crypto::RsaPadding;
use hsm_keyring::items::{decrypt_item, encrypt_item, AttributeValue, CryptoAction, Item};
use hsm_keyring::keyrings::{RawAesKeyring, RawRsaKeyring};
use hsm_keyring::pkcs11::{Pkcs11AesKeyring, Pkcs11RsaKeyring, Pkcs11Signer};
use hsm_keyring::pkcs11::{Pkcs11Uri, Token};
use hsm_keyring::{AlgorithmSuite, Error, FooterSigner};
use interop_items::{flip, n, s, sdk_decrypt, sdk_encrypt, sdk_raw_aes, sdk_raw_rsa, sdk_raw_rsa_public, TableSpec};

const NAMESPACE: &str = "items-namespace";
const AES_KEY: [u8; 32] = *b"item interop AES-256 key, 32 B.!";
const RSA_PRIVATE: &str = include_str!("../../../tests/data/interop-rsa-2048-private.pem");
const RSA_PUBLIC: &str = include_str!("../../../tests/data/interop-rsa-2048-public.pem");

fn spec(suite: AlgorithmSuite, v2: bool) -> TableSpec {
    let key_action = if v2 { CryptoAction::SignAndIncludeInEncryptionContext } else { CryptoAction::SignOnly };
    let mut actions = vec![
        ("pk".to_string(), key_action),
        ("sk".to_string(), key_action),
        ("secret".to_string(), CryptoAction::EncryptAndSign),
        ("nested".to_string(), CryptoAction::EncryptAndSign),
        ("sets".to_string(), CryptoAction::EncryptAndSign),
        ("bytes".to_string(), CryptoAction::EncryptAndSign),
        ("flag".to_string(), CryptoAction::EncryptAndSign),
        ("nothing".to_string(), CryptoAction::EncryptAndSign),
        ("amount".to_string(), CryptoAction::EncryptAndSign),
        ("名前 ☃".to_string(), CryptoAction::EncryptAndSign),
        ("signed".to_string(), CryptoAction::SignOnly),
        ("signed-number".to_string(), CryptoAction::SignOnly),
        ("free".to_string(), CryptoAction::DoNothing),
    ];
    if v2 {
        for name in ["ctx-s", "ctx-n", "ctx-null", "ctx-bool", "ctx-b", "ctx-m"] {
            actions.push((name.to_string(), CryptoAction::SignAndIncludeInEncryptionContext));
        }
    }
    TableSpec {
        table: "interop-table".into(),
        partition_key: "pk".into(),
        sort_key: Some("sk".into()),
        actions,
        allowed_unsigned: vec!["free".into()],
        allowed_unsigned_prefix: Some("tmp:".into()),
        suite,
    }
}

/// An item with every type. Sets are in the format's order and encrypted
/// numbers normalized, so both readers give back exactly this item.
fn item(v2: bool) -> Item {
    let mut inner = BTreeMap::new();
    inner.insert(
        "list".to_string(),
        AttributeValue::L(vec![AttributeValue::Null, AttributeValue::Bool(false), n("-0.5")]),
    );
    inner.insert("bin".to_string(), AttributeValue::B(vec![0, 1, 254, 255]));
    inner.insert("日本語".to_string(), s("値 ✓"));
    inner.insert("deeper".to_string(), AttributeValue::M(BTreeMap::from([("x".to_string(), n("1E+3"))])));
    let mut i = Item::new();
    i.insert("pk".into(), s("partition ✓"));
    i.insert("sk".into(), n("42"));
    i.insert("secret".into(), s("p@ssw0rd — ünïcødé"));
    i.insert("nested".into(), AttributeValue::M(inner));
    i.insert(
        "sets".into(),
        AttributeValue::L(vec![
            AttributeValue::Ss(vec!["a".into(), "b".into(), "\u{1F600}".into(), "\u{FF61}".into()]),
            AttributeValue::Ns(vec!["-1".into(), "10".into(), "9.5".into()]),
            AttributeValue::Bs(vec![vec![], vec![1], vec![1, 0]]),
        ]),
    );
    i.insert("bytes".into(), AttributeValue::B(vec![9; 40]));
    i.insert("flag".into(), AttributeValue::Bool(true));
    i.insert("nothing".into(), AttributeValue::Null);
    i.insert("amount".into(), n("1234.5"));
    i.insert("名前 ☃".into(), s("välue"));
    i.insert("signed".into(), s("plain but signed"));
    i.insert("signed-number".into(), n("0012.50"));
    i.insert("free".into(), AttributeValue::Ss(vec!["z".into()]));
    i.insert("tmp:scratch".into(), n("7"));
    if v2 {
        i.insert("ctx-s".into(), s("included ✓"));
        i.insert("ctx-n".into(), n("3.14"));
        i.insert("ctx-null".into(), AttributeValue::Null);
        i.insert("ctx-bool".into(), AttributeValue::Bool(true));
        i.insert("ctx-b".into(), AttributeValue::B(vec![1, 2, 3]));
        i.insert("ctx-m".into(), AttributeValue::M(BTreeMap::from([("k".to_string(), s("v"))])));
    }
    i
}

/// The item as both readers return it: an encrypted number comes back in
/// its normalized form.
fn expected(v2: bool) -> Item {
    let mut e = item(v2);
    if let Some(AttributeValue::M(m)) = e.get_mut("nested") {
        m.insert("deeper".to_string(), AttributeValue::M(BTreeMap::from([("x".to_string(), n("1000"))])));
    }
    e
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Aes,
    RsaSha1,
    RsaSha256,
}

fn our_config(spec: &TableSpec, kind: Kind) -> hsm_keyring::items::TableConfig {
    match kind {
        Kind::Aes => spec.ours(RawAesKeyring::new(NAMESPACE, "aes-key", &AES_KEY).unwrap()),
        Kind::RsaSha1 | Kind::RsaSha256 => {
            let padding = if matches!(kind, Kind::RsaSha1) { RsaPadding::OaepSha1 } else { RsaPadding::OaepSha256 };
            spec.ours(RawRsaKeyring::from_private_pem(NAMESPACE, "rsa-key", padding, RSA_PRIVATE).unwrap())
        }
    }
}

fn their_encryptor(spec: &TableSpec, kind: Kind) -> aws_db_esdk::item_encryptor::client::Client {
    match kind {
        Kind::Aes => spec.theirs(sdk_raw_aes(NAMESPACE, "aes-key", &AES_KEY)),
        Kind::RsaSha1 => spec.theirs(sdk_raw_rsa(NAMESPACE, "rsa-key", RSA_PUBLIC, RSA_PRIVATE, false)),
        Kind::RsaSha256 => spec.theirs(sdk_raw_rsa(NAMESPACE, "rsa-key", RSA_PUBLIC, RSA_PRIVATE, true)),
    }
}

#[test]
fn raw_keyrings_both_directions() {
    let mut cells = 0;
    for kind in [Kind::Aes, Kind::RsaSha1, Kind::RsaSha256] {
        for suite in AlgorithmSuite::ITEM_SUITES {
            for v2 in [false, true] {
                let label = format!("{kind:?} 0x{:04X} v{}", suite.id(), if v2 { 2 } else { 1 });
                let spec = spec(suite, v2);
                let ours = our_config(&spec, kind);
                let theirs = their_encryptor(&spec, kind);

                let written_by_us = encrypt_item(&ours, &item(v2)).unwrap();
                let read_by_them = sdk_decrypt(&theirs, &written_by_us).unwrap_or_else(|e| panic!("{label}: {e}"));
                assert_eq!(read_by_them, expected(v2), "{label}: ours -> theirs");
                assert_eq!(decrypt_item(&ours, &written_by_us).unwrap(), expected(v2), "{label}: ours -> ours");

                let written_by_them = sdk_encrypt(&theirs, &item(v2)).unwrap_or_else(|e| panic!("{label}: {e}"));
                let read_by_us = decrypt_item(&ours, &written_by_them).unwrap_or_else(|e| panic!("{label}: {e}"));
                assert_eq!(read_by_us, expected(v2), "{label}: theirs -> ours");
                assert_eq!(read_by_us, sdk_decrypt(&theirs, &written_by_them).unwrap(), "{label}: same reading");
                // Both leave the same attributes in plaintext, as written.
                for name in ["pk", "sk", "signed", "signed-number", "free", "tmp:scratch"] {
                    assert_eq!(written_by_us[name], written_by_them[name], "{label}: {name}");
                }
                cells += 4;
            }
        }
    }
    println!("interop items: {cells} cells passed, 0 failed");
}

#[test]
fn tampered_items_are_refused_by_both() {
    for suite in AlgorithmSuite::ITEM_SUITES {
        let spec = spec(suite, true);
        let ours = our_config(&spec, Kind::Aes);
        let theirs = their_encryptor(&spec, Kind::Aes);
        let by_them = sdk_encrypt(&theirs, &item(true)).unwrap();
        let by_us = encrypt_item(&ours, &item(true)).unwrap();
        let tampers: Vec<(&str, Tamper)> = vec![
            ("flipped ciphertext", Box::new(|i: &mut Item| flip(i, "secret"))),
            ("flipped header", Box::new(|i: &mut Item| flip(i, "aws_dbe_head"))),
            ("flipped footer", Box::new(|i: &mut Item| flip(i, "aws_dbe_foot"))),
            ("changed signed value", Box::new(|i: &mut Item| drop(i.insert("signed".into(), s("other"))))),
            ("changed context value", Box::new(|i: &mut Item| drop(i.insert("ctx-n".into(), n("3.15"))))),
            ("changed key", Box::new(|i: &mut Item| drop(i.insert("sk".into(), n("43"))))),
            ("removed signed attribute", Box::new(|i: &mut Item| drop(i.remove("signed")))),
            ("added signed attribute", Box::new(|i: &mut Item| drop(i.insert("new".into(), s("x"))))),
            (
                "swapped encrypted values",
                Box::new(|i: &mut Item| {
                    let a = i["secret"].clone();
                    let b = i["amount"].clone();
                    i.insert("secret".into(), b);
                    i.insert("amount".into(), a);
                }),
            ),
        ];
        for (what, tamper) in &tampers {
            let mut theirs_tampered = by_them.clone();
            tamper(&mut theirs_tampered);
            assert!(decrypt_item(&ours, &theirs_tampered).is_err(), "0x{:04X} {what}: we read theirs", suite.id());
            let mut ours_tampered = by_us.clone();
            tamper(&mut ours_tampered);
            assert!(sdk_decrypt(&theirs, &ours_tampered).is_err(), "0x{:04X} {what}: they read ours", suite.id());
        }
        // An unsigned attribute may change for both.
        let mut free = by_them.clone();
        free.insert("tmp:other".into(), s("fine"));
        assert!(decrypt_item(&ours, &free).is_ok());
        // Another table name is refused.
        let mut other = spec.clone();
        other.table = "another-table".into();
        assert!(decrypt_item(&our_config(&other, Kind::Aes), &by_them).is_err());
    }
}

/// A change made to a stored item.
type Tamper = Box<dyn Fn(&mut Item)>;

#[test]
fn token_aes_key_read_by_their_raw_aes_keyring() {
    let Some(hsm) = common::softhsm() else { return };
    let token = Token::open(&Pkcs11Uri::parse(&hsm.token_uri()).unwrap()).unwrap();
    let uri = token.import_aes_key("items-interop-aes", &AES_KEY, None).unwrap();
    for suite in AlgorithmSuite::ITEM_SUITES {
        for v2 in [false, true] {
            let spec = spec(suite, v2);
            let keyring = Pkcs11AesKeyring::new(token.clone(), &uri).unwrap();
            let (namespace, name) = (keyring.namespace().to_owned(), keyring.key_name().to_owned());
            let ours = spec.ours(keyring);
            let theirs = spec.theirs(sdk_raw_aes(&namespace, &name, &AES_KEY));
            let written = encrypt_item(&ours, &item(v2)).unwrap();
            assert_eq!(sdk_decrypt(&theirs, &written).unwrap(), expected(v2));
            let by_them = sdk_encrypt(&theirs, &item(v2)).unwrap();
            assert_eq!(decrypt_item(&ours, &by_them).unwrap(), expected(v2));
            let other = spec.theirs(sdk_raw_aes(&namespace, &name, &[0x55; 32]));
            assert!(sdk_decrypt(&other, &written).is_err());
        }
    }
}

#[test]
fn token_rsa_key_reads_items_of_their_raw_rsa_keyring() {
    let Some(hsm) = common::softhsm() else { return };
    let token = Token::open(&Pkcs11Uri::parse(&hsm.token_uri()).unwrap()).unwrap();
    let uri = token.generate_rsa_key_pair("items-interop-rsa", 2048, None).unwrap();
    let public = token.export_public_key_pem(&uri).unwrap();
    for suite in AlgorithmSuite::ITEM_SUITES {
        for v2 in [false, true] {
            let spec = spec(suite, v2);
            // SoftHSM does RSA-OAEP with SHA-1 only.
            let keyring = Pkcs11RsaKeyring::new(token.clone(), &uri, RsaPadding::OaepSha1).unwrap();
            let (namespace, name) = (keyring.namespace().to_owned(), keyring.key_name().to_owned());
            let ours = spec.ours(keyring);
            let theirs = spec.theirs(sdk_raw_rsa_public(&namespace, &name, &public));
            let by_them = sdk_encrypt(&theirs, &item(v2)).unwrap();
            assert_eq!(decrypt_item(&ours, &by_them).unwrap(), expected(v2));
            let mut bad = by_them.clone();
            flip(&mut bad, "secret");
            assert!(decrypt_item(&ours, &bad).is_err());
        }
    }
}

#[test]
fn both_readers_agree_on_normalized_numbers_and_set_order() {
    for suite in AlgorithmSuite::ITEM_SUITES {
        let spec = spec(suite, false);
        let ours = our_config(&spec, Kind::Aes);
        let theirs = their_encryptor(&spec, Kind::Aes);
        let mut i = item(false);
        i.insert("amount".into(), n("-00012.3400e2"));
        i.insert("signed-number".into(), n("+5.000"));
        i.insert(
            "sets".into(),
            AttributeValue::L(vec![
                AttributeValue::Ss(vec!["\u{FF61}".into(), "b".into(), "\u{1F600}".into(), "a".into()]),
                AttributeValue::Ns(vec!["9.50".into(), "1E1".into(), "-1".into(), "0.0001e4".into()]),
                AttributeValue::Bs(vec![vec![2], vec![1, 0], vec![1], vec![]]),
            ]),
        );
        for written in [encrypt_item(&ours, &i).unwrap(), sdk_encrypt(&theirs, &i).unwrap()] {
            let by_us = decrypt_item(&ours, &written).unwrap();
            let by_them = sdk_decrypt(&theirs, &written).unwrap();
            assert_eq!(by_us, by_them);
            assert_eq!(by_us["amount"], n("-1234"));
            assert_eq!(by_us["signed-number"], n("+5.000"), "signed-only values stay as written");
            assert_eq!(
                by_us["sets"],
                AttributeValue::L(vec![
                    AttributeValue::Ss(vec!["a".into(), "b".into(), "\u{1F600}".into(), "\u{FF61}".into()]),
                    AttributeValue::Ns(vec!["-1".into(), "1".into(), "10".into(), "9.5".into()]),
                    AttributeValue::Bs(vec![vec![], vec![1], vec![1, 0], vec![2]]),
                ])
            );
        }
    }
}

/// As `TableSpec::ours`, with a signer on encrypt and a pin on decrypt.
fn ours_signed(spec: &TableSpec, signer: std::sync::Arc<dyn FooterSigner>) -> hsm_keyring::items::TableConfig {
    let public = signer.public_key();
    let mut b = hsm_keyring::items::TableConfig::builder(&spec.table, &spec.partition_key)
        .suite(spec.suite)
        .keyring(RawAesKeyring::new(NAMESPACE, "aes-key", &AES_KEY).unwrap())
        .signer(signer)
        .trusted_signers(vec![public]);
    if let Some(sk) = &spec.sort_key {
        b = b.sort_key(sk);
    }
    for (name, action) in &spec.actions {
        b = b.action(name, *action);
    }
    for name in &spec.allowed_unsigned {
        b = b.allowed_unsigned(name);
    }
    if let Some(p) = &spec.allowed_unsigned_prefix {
        b = b.allowed_unsigned_prefix(p);
    }
    b.build().unwrap()
}

#[test]
fn token_signer_items_read_by_the_sdk() {
    let Some(hsm) = common::softhsm() else { return };
    let token = Token::open(&Pkcs11Uri::parse(&hsm.token_uri()).unwrap()).unwrap();
    let uri = token.generate_ec_p384_key_pair("items-interop-signer", None).unwrap();
    let signer: std::sync::Arc<dyn FooterSigner> = std::sync::Arc::new(Pkcs11Signer::new(token, &uri).unwrap());
    for v2 in [false, true] {
        let spec = spec(AlgorithmSuite::DbeAes256GcmHkdfSha512CommitKeyEcdsaP384SymsigHmacSha384, v2);
        let ours = ours_signed(&spec, signer.clone());
        let theirs = spec.theirs(sdk_raw_aes(NAMESPACE, "aes-key", &AES_KEY));
        let written = encrypt_item(&ours, &item(v2)).unwrap();
        assert_eq!(sdk_decrypt(&theirs, &written).unwrap(), expected(v2), "v2={v2}: token-signed, read by the SDK");
        assert_eq!(decrypt_item(&ours, &written).unwrap(), expected(v2), "v2={v2}: pinned reader");
        let mut altered = written.clone();
        flip(&mut altered, "secret");
        assert!(sdk_decrypt(&theirs, &altered).is_err(), "v2={v2}: the SDK verifies the token signature");
        let by_them = sdk_encrypt(&theirs, &item(v2)).unwrap();
        assert!(matches!(decrypt_item(&ours, &by_them), Err(Error::Signature { .. })), "v2={v2}: fresh key refused");
    }
}
