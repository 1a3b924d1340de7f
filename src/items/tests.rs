//! Round trips and refusals of `encrypt_item` / `decrypt_item`.

use std::collections::BTreeMap;

use super::*;
use std::sync::Arc;

use crate::crypto::RsaPadding;
use crate::error::ErrorKind;
use crate::keyrings::{RawAesKeyring, RawRsaKeyring};
use crate::materials::AlgorithmSuite;

const SUITES: [AlgorithmSuite; 2] = AlgorithmSuite::ITEM_SUITES;

fn aes() -> RawAesKeyring {
    RawAesKeyring::new("ns", "key", &[0x11; 32]).unwrap()
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: &str) -> AttributeValue {
    AttributeValue::N(v.into())
}

fn builder(suite: AlgorithmSuite) -> TableConfigBuilder {
    TableConfig::builder("table", "pk")
        .sort_key("sk")
        .action("secret", CryptoAction::EncryptAndSign)
        .action("nested", CryptoAction::EncryptAndSign)
        .action("sets", CryptoAction::EncryptAndSign)
        .action("number", CryptoAction::EncryptAndSign)
        .action("plain", CryptoAction::SignOnly)
        .action("ünïcødé ☃", CryptoAction::EncryptAndSign)
        .action("free", CryptoAction::DoNothing)
        .allowed_unsigned("free")
        .allowed_unsigned_prefix("tmp:")
        .suite(suite)
}

fn config(suite: AlgorithmSuite) -> TableConfig {
    builder(suite).keyring(aes()).build().unwrap()
}

fn config_v2(suite: AlgorithmSuite) -> TableConfig {
    builder(suite).action("ctx", CryptoAction::SignAndIncludeInEncryptionContext).keyring(aes()).build().unwrap()
}

fn item() -> Item {
    let mut inner = BTreeMap::new();
    inner.insert(
        "list".to_string(),
        AttributeValue::L(vec![AttributeValue::Null, AttributeValue::Bool(true), n("1.5")]),
    );
    inner.insert("bin".to_string(), AttributeValue::B(vec![0, 255]));
    inner.insert("日本".to_string(), s("値"));
    let mut item = Item::new();
    item.insert("pk".into(), s("partition"));
    item.insert("sk".into(), n("42"));
    item.insert("secret".into(), s("p@ssw0rd"));
    item.insert("nested".into(), AttributeValue::M(inner));
    item.insert(
        "sets".into(),
        AttributeValue::L(vec![
            AttributeValue::Ss(vec!["b".into(), "a".into()]),
            AttributeValue::Ns(vec!["9".into(), "10".into()]),
            AttributeValue::Bs(vec![vec![2], vec![1]]),
        ]),
    );
    item.insert("number".into(), n("12.5"));
    item.insert("plain".into(), n("0012.50"));
    item.insert("ünïcødé ☃".into(), s("välue ✓"));
    item.insert("free".into(), AttributeValue::Bool(false));
    item.insert("tmp:x".into(), AttributeValue::Null);
    item
}

fn item_v2() -> Item {
    let mut i = item();
    i.insert("ctx".into(), AttributeValue::Bs(vec![vec![9]]));
    i
}

/// Every configuration and suite, with the item it fits.
fn cases() -> Vec<(TableConfig, Item)> {
    SUITES.iter().flat_map(|&suite| [(config(suite), item()), (config_v2(suite), item_v2())]).collect()
}

fn assert_refused(config: &TableConfig, item: &Item, what: &str) {
    match decrypt_item(config, item) {
        Ok(_) => panic!("{what}: decrypted"),
        Err(e) => assert!(e.is_authentication_failure(), "{what}: {e} ({:?})", e.kind()),
    }
}

#[test]
fn round_trip_every_type_suite_and_version() {
    for (config, item) in cases() {
        let stored = encrypt_item(&config, &item).unwrap();
        for name in ["secret", "nested", "sets", "number", "ünïcødé ☃"] {
            assert!(matches!(&stored[name], AttributeValue::B(_)), "{name} is encrypted");
        }
        for name in ["pk", "sk", "plain", "free", "tmp:x"] {
            assert_eq!(stored[name], item[name], "{name} is left as written");
        }
        let header = match &stored[HEADER_ATTRIBUTE] {
            AttributeValue::B(b) => b.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(header[0], config.version());
        assert_eq!(header[1], (config.suite().id() & 1) as u8);
        let footer_len = match &stored[FOOTER_ATTRIBUTE] {
            AttributeValue::B(b) => b.len(),
            other => panic!("{other:?}"),
        };
        assert_eq!(footer_len, if config.suite().is_signing() { 48 + 103 } else { 48 });

        let mut expected = item.clone();
        // Sets come back in the format's order (sets have none of their own).
        expected.insert(
            "sets".into(),
            AttributeValue::L(vec![
                AttributeValue::Ss(vec!["a".into(), "b".into()]),
                AttributeValue::Ns(vec!["10".into(), "9".into()]),
                AttributeValue::Bs(vec![vec![1], vec![2]]),
            ]),
        );
        assert_eq!(decrypt_item(&config, &stored).unwrap(), expected);
    }
}

#[test]
fn numbers_inside_encrypted_values_come_back_normalized() {
    let c = config(SUITES[0]);
    let mut i = item();
    i.insert("number".into(), n("012.50"));
    let out = decrypt_item(&c, &encrypt_item(&c, &i).unwrap()).unwrap();
    assert_eq!(out["number"], n("12.5"));
}

#[test]
fn rsa_keyrings_and_several_edks() {
    let pem = include_str!("../../tests/data/rsa2048-a.pem");
    let rsa = RawRsaKeyring::from_private_pem("ns", "rsa", RsaPadding::OaepSha256, pem).unwrap();
    let multi = crate::keyrings::MultiKeyring::new(Some(Arc::new(rsa)), vec![Arc::new(aes())]).unwrap();
    let c = builder(SUITES[1]).keyring(multi).build().unwrap();
    let stored = encrypt_item(&c, &item()).unwrap();
    if let AttributeValue::B(f) = &stored[FOOTER_ATTRIBUTE] {
        assert_eq!(f.len(), 2 * 48 + 103);
    }
    // The AES keyring alone opens its EDK and finds its tag.
    let reader = builder(SUITES[1]).keyring(aes()).build().unwrap();
    assert_eq!(decrypt_item(&reader, &stored).unwrap()["secret"], s("p@ssw0rd"));
    // Another key opens nothing.
    let other = builder(SUITES[1]).keyring(RawAesKeyring::new("ns", "key", &[0x22; 32]).unwrap()).build().unwrap();
    assert!(decrypt_item(&other, &stored).is_err());
}

#[test]
fn any_change_to_a_signed_or_encrypted_attribute_is_refused() {
    for (config, item) in cases() {
        let stored = encrypt_item(&config, &item).unwrap();
        for name in stored.keys().filter(|n| !config.is_allowed_unsigned(n)) {
            let mut bad = stored.clone();
            let changed = match &stored[name] {
                AttributeValue::B(b) => {
                    let mut b = b.clone();
                    let last = b.len() - 1;
                    b[last] ^= 1;
                    AttributeValue::B(b)
                }
                AttributeValue::S(v) => s(&format!("{v}x")),
                AttributeValue::N(_) => n("43"),
                AttributeValue::Bs(_) => AttributeValue::Bs(vec![vec![8]]),
                other => panic!("{name}: {other:?}"),
            };
            bad.insert(name.clone(), changed);
            assert_refused(&config, &bad, &format!("modified {name}"));
            // The type id of an encrypted value is signed too.
            if let AttributeValue::B(b) = &stored[name] {
                if name != HEADER_ATTRIBUTE && name != FOOTER_ATTRIBUTE && b.len() > 2 {
                    let mut b = b.clone();
                    b[1] ^= 3;
                    bad.insert(name.clone(), AttributeValue::B(b));
                    assert_refused(&config, &bad, &format!("retyped {name}"));
                }
            }
        }
        // A signed-only number rewritten in another form of the same value is the same value.
        let mut same = stored.clone();
        same.insert("plain".into(), n("12.5"));
        assert!(decrypt_item(&config, &same).is_ok());
    }
}

#[test]
fn removed_added_and_swapped_attributes_are_refused() {
    for (config, item) in cases() {
        let stored = encrypt_item(&config, &item).unwrap();
        for name in ["secret", "plain", "pk", "sk", HEADER_ATTRIBUTE, FOOTER_ATTRIBUTE] {
            let mut bad = stored.clone();
            bad.remove(name);
            assert!(decrypt_item(&config, &bad).is_err(), "removed {name}");
        }
        let mut added = stored.clone();
        added.insert("intruder".into(), s("x"));
        assert_refused(&config, &added, "added attribute");
        let mut swapped = stored.clone();
        swapped.insert("secret".into(), stored["number"].clone());
        swapped.insert("number".into(), stored["secret"].clone());
        assert_refused(&config, &swapped, "swapped encrypted values");
        // Unsigned attributes may change, come and go.
        let mut free = stored.clone();
        free.insert("free".into(), s("anything"));
        free.remove("tmp:x");
        free.insert("tmp:new".into(), n("1"));
        let out = decrypt_item(&config, &free).unwrap();
        assert_eq!(out["free"], s("anything"));
        assert_eq!(out["tmp:new"], n("1"));
    }
}

#[test]
fn values_headers_and_footers_of_another_item_are_refused() {
    for (config, item) in cases() {
        let first = encrypt_item(&config, &item).unwrap();
        let second = encrypt_item(&config, &item).unwrap();
        assert_ne!(first["secret"], second["secret"], "every item has its own keys");
        for name in ["secret", HEADER_ATTRIBUTE, FOOTER_ATTRIBUTE] {
            let mut bad = first.clone();
            bad.insert(name.into(), second[name].clone());
            assert_refused(&config, &bad, &format!("{name} of another item"));
        }
        let mut both = first.clone();
        both.insert(HEADER_ATTRIBUTE.into(), second[HEADER_ATTRIBUTE].clone());
        both.insert(FOOTER_ATTRIBUTE.into(), second[FOOTER_ATTRIBUTE].clone());
        assert_refused(&config, &both, "header and footer of another item");
    }
}

#[test]
fn another_table_or_key_value_is_refused() {
    for (config, item) in cases() {
        let stored = encrypt_item(&config, &item).unwrap();
        let mut other_table = builder(config.suite()).keyring(aes());
        if config.version() == 2 {
            other_table = other_table.action("ctx", CryptoAction::SignAndIncludeInEncryptionContext);
        }
        let other_table = TableConfig { table_name: "other".into(), ..other_table.build().unwrap() };
        assert!(decrypt_item(&other_table, &stored).is_err(), "other table name");
        let other_pk = TableConfig { partition_key: "sk".into(), sort_key: Some("pk".into()), ..config.clone() };
        assert!(decrypt_item(&other_pk, &stored).is_err(), "other key names");
        let mut moved = stored.clone();
        moved.insert("pk".into(), s("another partition"));
        assert_refused(&config, &moved, "other key value");
    }
}

#[test]
fn unsupported_versions_suites_and_malformed_items_are_refused() {
    let c = config(SUITES[1]);
    let stored = encrypt_item(&c, &item()).unwrap();
    let header = match &stored[HEADER_ATTRIBUTE] {
        AttributeValue::B(b) => b.clone(),
        _ => unreachable!(),
    };
    for (at, value) in [(0usize, 3u8), (0, 0), (1, 2), (1, 0)] {
        let mut h = header.clone();
        h[at] = value;
        let mut bad = stored.clone();
        bad.insert(HEADER_ATTRIBUTE.into(), AttributeValue::B(h));
        let e = decrypt_item(&c, &bad).unwrap_err();
        assert!(e.is_authentication_failure(), "byte {at} = {value}: {e}");
    }
    let mut truncated = stored.clone();
    truncated.insert(HEADER_ATTRIBUTE.into(), AttributeValue::B(header[..40].to_vec()));
    assert_eq!(decrypt_item(&c, &truncated).unwrap_err().kind(), ErrorKind::Malformed);
    let mut not_binary = stored.clone();
    not_binary.insert(FOOTER_ATTRIBUTE.into(), s("x"));
    assert_eq!(decrypt_item(&c, &not_binary).unwrap_err().kind(), ErrorKind::Malformed);
    let mut plain = item();
    plain.remove("free");
    assert_eq!(decrypt_item(&c, &plain).unwrap_err().kind(), ErrorKind::Malformed);
}

#[test]
fn encrypt_refuses_items_that_do_not_fit_the_configuration() {
    let c = config(SUITES[0]);
    let mut unknown = item();
    unknown.insert("unconfigured".into(), s("x"));
    assert!(encrypt_item(&c, &unknown).is_err());
    let mut reserved = item();
    reserved.insert("aws_dbe_head".into(), AttributeValue::B(vec![]));
    assert!(encrypt_item(&c, &reserved).is_err());
    let mut no_sort_key = item();
    no_sort_key.remove("sk");
    assert!(encrypt_item(&c, &no_sort_key).is_err());
    for bad in [n("1e500"), AttributeValue::Ss(vec!["a".into(), "a".into()])] {
        let mut i = item();
        i.insert("secret".into(), bad);
        assert_eq!(encrypt_item(&c, &i).unwrap_err().kind(), ErrorKind::Malformed);
    }
}

#[test]
fn a_message_keyring_result_without_signing_keys_is_refused() {
    // The message client never accepts an item suite.
    let client = crate::Client::builder().algorithm_suite(SUITES[0]).build();
    let cmm = crate::cmm::DefaultCmm::new(aes());
    assert!(client.is_err() || client.unwrap().encrypt(&cmm, b"x", &crate::EncryptionContext::new()).is_err());
}
