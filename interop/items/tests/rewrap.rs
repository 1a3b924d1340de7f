//! Items rotated by hsm-keyring's [`ItemRewrapper`], read by the AWS
//! Database Encryption SDK for Rust (`aws-db-esdk`).
//!
//! An item is written under wrapping key A (raw AES-256) by hsm-keyring or
//! by the SDK, its data key rewrapped to key B (raw AES-256, or raw RSA
//! OAEP-SHA1) by `ItemRewrapper`, and the SDK's item encryptor holding only
//! B decrypts it to the plaintext item; the SDK holding only A refuses it,
//! and so does the SDK holding B once an encrypted value is altered. Every
//! attribute but the header and footer is unchanged by the rewrap.
//!
//! Suites 0x6700 and 0x6701, configuration versions 1 and 2. Items of 0x6701
//! are signed with a key of their own, which nobody kept: their rewrap is
//! refused without a long-lived signer, and with one
//! (`ItemRewrapper::with_signer`, ECDSA P-384) the new footer is signed by it
//! and the header names its public key, which the SDK verifies with.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_db_esdk::material_providers::types::keyring::KeyringRef;
use hsm_keyring::crypto::{RsaPadding, SoftwareSigner};
use hsm_keyring::items::{decrypt_item, encrypt_item, AttributeValue, CryptoAction, Item, TableConfig};
use hsm_keyring::keyrings::{RawAesKeyring, RawRsaKeyring};
use hsm_keyring::rewrap::ItemRewrapper;
use hsm_keyring::{AlgorithmSuite, Error, FooterSigner, Keyring, SignatureCurve};
use interop_items::{flip, n, s, sdk_decrypt, sdk_encrypt, sdk_raw_aes, sdk_raw_rsa, TableSpec};

const NAMESPACE: &str = "items-rotation";
const AES_KEY_A: [u8; 32] = *b"item rotation: old AES-256 key!!";
const AES_KEY_B: [u8; 32] = *b"item rotation: new AES-256 key!!";
const RSA_PRIVATE_B: &str = include_str!("../../../tests/data/interop-rsa-2048-other-private.pem");
const RSA_PUBLIC_B: &str = include_str!("../../../tests/data/interop-rsa-2048-other-public.pem");

const HEADER: &str = "aws_dbe_head";
const FOOTER: &str = "aws_dbe_foot";

fn spec(suite: AlgorithmSuite, v2: bool) -> TableSpec {
    let key_action = if v2 { CryptoAction::SignAndIncludeInEncryptionContext } else { CryptoAction::SignOnly };
    let mut actions = vec![
        ("pk".to_string(), key_action),
        ("sk".to_string(), key_action),
        ("secret".to_string(), CryptoAction::EncryptAndSign),
        ("nested".to_string(), CryptoAction::EncryptAndSign),
        ("amount".to_string(), CryptoAction::EncryptAndSign),
        ("signed".to_string(), CryptoAction::SignOnly),
        ("free".to_string(), CryptoAction::DoNothing),
    ];
    if v2 {
        actions.push(("ctx".to_string(), CryptoAction::SignAndIncludeInEncryptionContext));
    }
    TableSpec {
        table: "rotation-table".into(),
        partition_key: "pk".into(),
        sort_key: Some("sk".into()),
        actions,
        allowed_unsigned: vec!["free".into()],
        allowed_unsigned_prefix: None,
        suite,
    }
}

/// Numbers in their normalized form, so that both readers give back exactly this item.
fn item(v2: bool) -> Item {
    let mut i = Item::new();
    i.insert("pk".into(), s("partition ✓"));
    i.insert("sk".into(), n("7"));
    i.insert("secret".into(), s("rotated, not re-encrypted — ünïcødé"));
    i.insert(
        "nested".into(),
        AttributeValue::M(BTreeMap::from([
            ("list".to_string(), AttributeValue::L(vec![AttributeValue::Null, AttributeValue::Bool(true)])),
            ("bin".to_string(), AttributeValue::B(vec![0, 1, 254, 255])),
        ])),
    );
    i.insert("amount".into(), n("1234.5"));
    i.insert("signed".into(), s("plain but signed"));
    i.insert("free".into(), s("unsigned"));
    if v2 {
        i.insert("ctx".into(), s("in the context ✓"));
    }
    i
}

/// The wrapping key B as each library holds it.
struct KeyB {
    name: &'static str,
    ours: Arc<dyn Keyring>,
    theirs: KeyringRef,
}

fn keys_b() -> [KeyB; 2] {
    [
        KeyB {
            name: "raw AES B",
            ours: Arc::new(RawAesKeyring::new(NAMESPACE, "aes-b", &AES_KEY_B).unwrap()),
            theirs: sdk_raw_aes(NAMESPACE, "aes-b", &AES_KEY_B),
        },
        KeyB {
            name: "raw RSA B",
            ours: Arc::new(
                RawRsaKeyring::from_private_pem(NAMESPACE, "rsa-b", RsaPadding::OaepSha1, RSA_PRIVATE_B).unwrap(),
            ),
            theirs: sdk_raw_rsa(NAMESPACE, "rsa-b", RSA_PUBLIC_B, RSA_PRIVATE_B, false),
        },
    ]
}

fn ours_a(spec: &TableSpec) -> TableConfig {
    spec.ours(RawAesKeyring::new(NAMESPACE, "aes-a", &AES_KEY_A).unwrap())
}

#[test]
fn rewrapped_items_read_by_the_sdk() {
    let mut cells = 0;
    for suite in AlgorithmSuite::ITEM_SUITES {
        for v2 in [false, true] {
            let spec = spec(suite, v2);
            let ours = ours_a(&spec);
            let sdk_a = spec.theirs(sdk_raw_aes(NAMESPACE, "aes-a", &AES_KEY_A));
            for writer in ["hsm-keyring", "aws-db-esdk"] {
                let written = match writer {
                    "hsm-keyring" => encrypt_item(&ours, &item(v2)).unwrap(),
                    _ => sdk_encrypt(&sdk_a, &item(v2)).unwrap(),
                };
                for key in keys_b() {
                    let what = format!("0x{:04X} v{} {writer} writes, A -> {}", suite.id(), 1 + v2 as u8, key.name);
                    let mut rewrapper = ItemRewrapper::new(ours.clone(), key.ours.clone());
                    if suite.is_signing() {
                        let refused = rewrapper.rewrap(&written);
                        assert!(matches!(refused, Err(Error::Signature { .. })), "{what}: no signer: {refused:?}");
                        let signer: Arc<dyn FooterSigner> = Arc::new(SoftwareSigner::generate(SignatureCurve::P384));
                        rewrapper = rewrapper.with_signer(signer);
                    }
                    let rewrapped = rewrapper.rewrap(&written).unwrap_or_else(|e| panic!("{what}: {e}"));
                    for (name, value) in &written {
                        if name != HEADER && name != FOOTER {
                            assert_eq!(rewrapped.get(name), Some(value), "{what}: {name} changed");
                        }
                    }
                    assert_ne!(rewrapped[HEADER], written[HEADER], "{what}: same header");
                    assert_ne!(rewrapped[FOOTER], written[FOOTER], "{what}: same footer");

                    let sdk_b = spec.theirs(key.theirs.clone());
                    let read =
                        sdk_decrypt(&sdk_b, &rewrapped).unwrap_or_else(|e| panic!("{what}: the SDK with B: {e}"));
                    assert_eq!(read, item(v2), "{what}: the SDK with B");
                    let ours_b = spec.ours_cmm(Arc::new(hsm_keyring::cmm::DefaultCmm::new(key.ours.clone())));
                    assert_eq!(decrypt_item(&ours_b, &rewrapped).unwrap(), item(v2), "{what}: hsm-keyring with B");

                    assert!(sdk_decrypt(&sdk_a, &rewrapped).is_err(), "{what}: the SDK still opens it with A");
                    let mut altered = rewrapped.clone();
                    flip(&mut altered, "secret");
                    assert!(sdk_decrypt(&sdk_b, &altered).is_err(), "{what}: the SDK accepted an altered value");
                    let mut altered = rewrapped.clone();
                    altered.insert("signed".into(), s("changed"));
                    assert!(sdk_decrypt(&sdk_b, &altered).is_err(), "{what}: the SDK accepted a changed signed value");
                    cells += 1;
                }
            }
        }
    }
    println!("interop items rewrap: {cells} cells passed, 0 failed");
}

/// The rewrapper opens nothing that key A did not wrap: an item of another
/// key is refused and left as it was.
#[test]
fn items_of_another_key_are_not_rewrapped() {
    let spec = spec(AlgorithmSuite::ITEM_SUITES[0], true);
    let other = spec.theirs(sdk_raw_aes(NAMESPACE, "aes-a", &[0x55; 32]));
    let written = sdk_encrypt(&other, &item(true)).unwrap();
    let [key, _] = keys_b();
    let outcome = ItemRewrapper::new(ours_a(&spec), key.ours).rewrap(&written);
    assert!(outcome.is_err(), "an item of another key was rewrapped");
}
