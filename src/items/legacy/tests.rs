//! A minimal writer of legacy items (wrapped AES provider, HMAC signature),
//! independent of the reader, and the reader's refusals. Items written by
//! the legacy client itself are read in `tests/legacy_items_peer.rs`.

use aes::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::*;
use crate::items::{AttributeValue, CryptoAction};
use crate::master_keys::{MemoryAesWrapKey, MemoryHmacKey};
use crate::ErrorKind;

const WRAP: [u8; 32] = [3; 32];
const SIGN: [u8; 32] = [4; 32];
const CONTENT: [u8; 32] = [5; 32];

fn config_with(materials: LegacyMaterials) -> LegacyConfig {
    LegacyConfig::builder("tbl", "pk", materials)
        .sort_key("sk")
        .action("plain", CryptoAction::SignOnly)
        .action("loose", CryptoAction::DoNothing)
        .build()
        .unwrap()
}

fn config() -> LegacyConfig {
    config_with(LegacyMaterials::wrapped(MemoryAesWrapKey::new(&WRAP).unwrap(), MemoryHmacKey::new(&SIGN).unwrap()))
}

fn plaintext() -> Item {
    let mut m = std::collections::BTreeMap::new();
    m.insert("n".to_owned(), AttributeValue::Ns(vec!["20".into(), "3".into()]));
    m.insert("ü".to_owned(), AttributeValue::L(vec![AttributeValue::Null, AttributeValue::Bool(true)]));
    let mut item = Item::new();
    item.insert("pk".into(), AttributeValue::S("p".into()));
    item.insert("sk".into(), AttributeValue::N("1".into()));
    item.insert("secret".into(), AttributeValue::M(m));
    item.insert("other".into(), AttributeValue::B(vec![0, 1, 2]));
    item.insert("plain".into(), AttributeValue::Ss(vec!["x".into(), "y".into()]));
    item.insert("loose".into(), AttributeValue::S("free".into()));
    item
}

fn lv(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// Write `item` as the legacy client's wrapped provider does (Python).
fn write(config: &LegacyConfig, item: &Item) -> Item {
    write_as(config, item, value::Dialect::Python)
}

/// Write `item` as the given writer orders and serializes.
fn write_as(config: &LegacyConfig, item: &Item, dialect: value::Dialect) -> Item {
    let wrapped = aes_kw::KekAes256::from(WRAP).wrap_vec(&CONTENT).unwrap();
    let mut stored = Item::new();
    for (name, value) in item {
        let v = if config.action(name).unwrap() == CryptoAction::EncryptAndSign {
            let iv = [9u8; 16];
            let ser = value::serialize(value, name, dialect).unwrap();
            let ct =
                cbc::Encryptor::<aes::Aes256>::new(&CONTENT.into(), &iv.into()).encrypt_padded_vec_mut::<Pkcs7>(&ser);
            AttributeValue::B([&iv[..], &ct].concat())
        } else {
            value.clone()
        };
        stored.insert(name.clone(), v);
    }
    let mut data = Sha256::digest(b"TABLE>tbl<TABLE").to_vec();
    let mut names: Vec<&String> = stored.keys().collect();
    names.sort_by(|a, b| dialect.cmp_str(a, b));
    for name in names {
        let value = &stored[name];
        let action = config.action(name).unwrap();
        if action == CryptoAction::DoNothing {
            continue;
        }
        data.extend(Sha256::digest(name.as_bytes()));
        data.extend(Sha256::digest(if action == CryptoAction::SignOnly { &b"PLAINTEXT"[..] } else { b"ENCRYPTED" }));
        data.extend(Sha256::digest(value::serialize(value, name, dialect).unwrap()));
    }
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&SIGN).unwrap();
    mac.update(&data);
    let mut desc = vec![0u8; 4];
    for (k, v) in [
        ("amzn-ddb-env-alg", "AES/256".to_owned()),
        ("amzn-ddb-env-key", base64::engine::general_purpose::STANDARD.encode(&wrapped)),
        ("amzn-ddb-map-signingAlg", "HmacSHA256".to_owned()),
        ("amzn-ddb-map-sym-mode", "/CBC/PKCS5Padding".to_owned()),
        ("amzn-ddb-wrap-alg", "AESWrap".to_owned()),
    ] {
        lv(&mut desc, k.as_bytes());
        lv(&mut desc, v.as_bytes());
    }
    stored.insert(SIGNATURE_ATTRIBUTE.into(), AttributeValue::B(mac.finalize().into_bytes().to_vec()));
    stored.insert(MATERIAL_DESCRIPTION_ATTRIBUTE.into(), AttributeValue::B(desc));
    stored
}

fn flip(value: &mut AttributeValue) {
    match value {
        AttributeValue::B(b) => *b.last_mut().unwrap() ^= 1,
        AttributeValue::S(s) => s.push('!'),
        AttributeValue::N(n) => n.push('1'),
        AttributeValue::Ss(s) => s.push("z".into()),
        other => *other = AttributeValue::Null,
    }
}

#[test]
fn reads_what_the_legacy_layout_writes() {
    let stored = write(&config(), &plaintext());
    assert!(matches!(stored["secret"], AttributeValue::B(_)));
    assert!(is_legacy_item(&stored));
    assert_eq!(decrypt_legacy_item(&config(), &stored).unwrap(), plaintext());
}

#[test]
fn reads_java_ordered_items_too() {
    let mut item = plaintext();
    item.insert("\u{1F600}".into(), AttributeValue::Bs(vec![vec![0x01], vec![0x80]]));
    item.insert("\u{FFFD}".into(), AttributeValue::Ss(vec!["\u{1F600}".into(), "\u{FFFD}".into()]));
    let mut plain = config();
    plain.actions.insert("\u{1F600}".into(), CryptoAction::SignOnly);
    plain.actions.insert("\u{FFFD}".into(), CryptoAction::SignOnly);
    for dialect in [value::Dialect::Python, value::Dialect::Java] {
        let stored = write_as(&plain, &item, dialect);
        assert_eq!(decrypt_legacy_item(&plain, &stored).unwrap(), item, "{dialect:?}");
        let mut bad = stored.clone();
        bad.insert("\u{1F600}".into(), AttributeValue::Bs(vec![vec![0x01], vec![0x81]]));
        assert_eq!(decrypt_legacy_item(&plain, &bad).unwrap_err().kind(), ErrorKind::NotAuthentic, "{dialect:?}");
    }
}

#[test]
fn any_change_to_a_signed_attribute_or_the_signature_is_not_authentic() {
    let stored = write(&config(), &plaintext());
    for name in ["pk", "sk", "secret", "other", "plain", SIGNATURE_ATTRIBUTE] {
        let mut bad = stored.clone();
        flip(bad.get_mut(name).unwrap());
        let err = decrypt_legacy_item(&config(), &bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotAuthentic, "{name}: {err}");
        let mut gone = stored.clone();
        gone.remove(name);
        assert!(decrypt_legacy_item(&config(), &gone).is_err(), "{name} removed");
    }
    // An added signed attribute, another table name.
    let mut added = stored.clone();
    added.insert("new".into(), AttributeValue::S("x".into()));
    assert_eq!(decrypt_legacy_item(&config(), &added).unwrap_err().kind(), ErrorKind::NotAuthentic);
    let other_table = LegacyConfig { table_name: "tbl2".into(), ..config() };
    assert_eq!(decrypt_legacy_item(&other_table, &stored).unwrap_err().kind(), ErrorKind::NotAuthentic);
    // A do-nothing attribute is not covered.
    let mut loose = stored.clone();
    flip(loose.get_mut("loose").unwrap());
    assert_eq!(decrypt_legacy_item(&config(), &loose).unwrap()["loose"], loose["loose"]);
}

#[test]
fn wrong_keys_are_named_by_kind() {
    let stored = write(&config(), &plaintext());
    let other_wrap = config_with(LegacyMaterials::wrapped(
        MemoryAesWrapKey::new(&[8; 32]).unwrap(),
        MemoryHmacKey::new(&SIGN).unwrap(),
    ));
    assert_eq!(decrypt_legacy_item(&other_wrap, &stored).unwrap_err().kind(), ErrorKind::NotThisKey);
    let other_sign = config_with(LegacyMaterials::wrapped(
        MemoryAesWrapKey::new(&WRAP).unwrap(),
        MemoryHmacKey::new(&[8; 32]).unwrap(),
    ));
    assert_eq!(decrypt_legacy_item(&other_sign, &stored).unwrap_err().kind(), ErrorKind::NotAuthentic);
    let static_right = config_with(LegacyMaterials::static_key(&CONTENT, MemoryHmacKey::new(&SIGN).unwrap()).unwrap());
    assert_eq!(decrypt_legacy_item(&static_right, &stored).unwrap(), plaintext());
    let static_wrong = config_with(LegacyMaterials::static_key(&[6; 32], MemoryHmacKey::new(&SIGN).unwrap()).unwrap());
    let err = decrypt_legacy_item(&static_wrong, &stored).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotThisKey, "{err}");
    let sign_only = config_with(LegacyMaterials::sign_only(MemoryHmacKey::new(&SIGN).unwrap()));
    assert_eq!(decrypt_legacy_item(&sign_only, &stored).unwrap_err().kind(), ErrorKind::Usage);
}

#[test]
fn altered_material_description_fails_cleanly() {
    let stored = write(&config(), &plaintext());
    let AttributeValue::B(desc) = &stored[MATERIAL_DESCRIPTION_ATTRIBUTE] else { panic!() };
    for at in 0..desc.len() {
        let mut bad = stored.clone();
        let AttributeValue::B(d) = bad.get_mut(MATERIAL_DESCRIPTION_ATTRIBUTE).unwrap() else { panic!() };
        d[at] ^= 0x40;
        if let Ok(item) = decrypt_legacy_item(&config(), &bad) {
            // Only a change that keeps the meaning (base64 padding) may pass, with the same result.
            assert_eq!(item, plaintext(), "byte {at}");
        }
    }
    let mut no_desc = stored.clone();
    no_desc.remove(MATERIAL_DESCRIPTION_ATTRIBUTE);
    let err = decrypt_legacy_item(&config(), &no_desc).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Malformed);
    assert!(err.to_string().contains("amzn-ddb-map-sym-mode"), "{err}");
    let mut not_binary = stored.clone();
    not_binary.insert(SIGNATURE_ATTRIBUTE.into(), AttributeValue::S("x".into()));
    assert!(decrypt_legacy_item(&config(), &not_binary).unwrap_err().to_string().contains("*amzn-ddb-map-sig*"));
}

#[test]
fn policy_reads_both_formats_or_forbids_legacy() {
    use crate::keyrings::RawAesKeyring;
    let table = crate::items::TableConfig::builder("tbl", "pk")
        .sort_key("sk")
        .action("plain", CryptoAction::SignOnly)
        .allowed_unsigned("loose")
        .default_action(CryptoAction::EncryptAndSign)
        .keyring(RawAesKeyring::new("ns", "k", &[1; 32]).unwrap())
        .build()
        .unwrap();
    let legacy = LegacyConfig::from_table(
        &table,
        LegacyMaterials::wrapped(MemoryAesWrapKey::new(&WRAP).unwrap(), MemoryHmacKey::new(&SIGN).unwrap()),
    )
    .unwrap();
    let old = write(&legacy, &plaintext());
    let new = crate::items::encrypt_item(&table, &plaintext()).unwrap();
    let read = LegacyPolicy::ReadLegacyWriteNew(legacy);
    assert_eq!(decrypt_any_item(&table, &read, &old).unwrap(), plaintext());
    assert_eq!(decrypt_any_item(&table, &read, &new).unwrap(), plaintext());
    let forbid = LegacyPolicy::ForbidLegacy;
    assert_eq!(decrypt_any_item(&table, &forbid, &new).unwrap(), plaintext());
    let err = decrypt_any_item(&table, &forbid, &old).unwrap_err();
    assert!(matches!(err, crate::Error::PolicyViolation { .. }), "{err}");
    let mut both = new.clone();
    both.insert(SIGNATURE_ATTRIBUTE.into(), old[SIGNATURE_ATTRIBUTE].clone());
    assert_eq!(decrypt_any_item(&table, &read, &both).unwrap_err().kind(), ErrorKind::Malformed);
}

#[test]
fn config_refuses_what_the_legacy_format_cannot_express() {
    let m = || LegacyMaterials::sign_only(MemoryHmacKey::new(&SIGN).unwrap());
    assert!(LegacyConfig::builder("t", "pk", m()).action("pk", CryptoAction::EncryptAndSign).build().is_err());
    assert!(LegacyConfig::builder("t", "pk", m())
        .action("a", CryptoAction::SignAndIncludeInEncryptionContext)
        .build()
        .is_err());
    let c = LegacyConfig::builder("t", "pk", m()).build().unwrap();
    assert_eq!(c.action("pk").unwrap(), CryptoAction::SignOnly);
    assert_eq!(c.action("x").unwrap(), CryptoAction::EncryptAndSign);
    assert!(!format!("{:?}", m()).contains("4, 4"));
}
