//! Random items round-trip; random numbers normalize to a fixed point; random
//! bytes in the header, the footer or an encrypted value never decrypt and
//! never panic.

use std::collections::BTreeMap;

use hsm_keyring::items::{decrypt_item, encrypt_item, AttributeValue, CryptoAction, Item, TableConfig};
use hsm_keyring::keyrings::RawAesKeyring;
use hsm_keyring::AlgorithmSuite;
use proptest::prelude::*;

fn config() -> TableConfig {
    TableConfig::builder("prop", "pk")
        .default_action(CryptoAction::EncryptAndSign)
        .action("signed", CryptoAction::SignOnly)
        .suite(AlgorithmSuite::DbeAes256GcmHkdfSha512CommitKeySymsigHmacSha384)
        .keyring(RawAesKeyring::new("ns", "k", &[3; 32]).unwrap())
        .build()
        .unwrap()
}

/// Values whose decrypted form equals what was written: normalized numbers,
/// sets in the format's order (strings kept ASCII so byte order is UTF-16 order).
fn value() -> impl Strategy<Value = AttributeValue> {
    let number = (any::<i64>(), 0u32..6).prop_map(|(m, scale)| {
        let text = format!("{}", m as f64 / 10f64.powi(scale as i32));
        AttributeValue::N(text)
    });
    let leaf = prop_oneof![
        ".{0,20}".prop_map(AttributeValue::S),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(AttributeValue::B),
        any::<bool>().prop_map(AttributeValue::Bool),
        Just(AttributeValue::Null),
        prop::collection::btree_set("[a-z]{0,6}", 1..5).prop_map(|s| AttributeValue::Ss(s.into_iter().collect())),
        prop::collection::btree_set(prop::collection::vec(any::<u8>(), 0..5), 1..5)
            .prop_map(|s| AttributeValue::Bs(s.into_iter().collect())),
        number,
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(AttributeValue::L),
            prop::collection::btree_map(".{1,8}", inner, 0..4).prop_map(AttributeValue::M),
        ]
    })
}

fn item() -> impl Strategy<Value = Item> {
    prop::collection::btree_map("[a-zé☃]{1,8}", value(), 0..6).prop_map(|mut m: BTreeMap<String, AttributeValue>| {
        m.retain(|k, _| !k.starts_with("aws_dbe_"));
        m.insert("pk".into(), AttributeValue::S("p".into()));
        m.insert("signed".into(), AttributeValue::N("0012.50".into()));
        m
    })
}

/// Write and read once: every generated item is valid, and reads back with
/// its encrypted numbers normalized.
fn once(item: &Item, config: &TableConfig) -> Item {
    let stored = encrypt_item(config, item).expect("a valid item encrypts");
    decrypt_item(config, &stored).expect("and decrypts")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn random_items_round_trip_to_a_fixed_point(item in item()) {
        let config = config();
        let first = once(&item, &config);
        prop_assert_eq!(&first["signed"], &item["signed"]);
        prop_assert_eq!(first.len(), item.len());
        prop_assert_eq!(once(&first, &config), first);
    }

    #[test]
    fn random_bytes_never_decrypt(garbage in prop::collection::vec(any::<u8>(), 0..200), at in 0usize..3) {
        let config = config();
        let mut i = Item::new();
        i.insert("pk".into(), AttributeValue::S("p".into()));
        i.insert("x".into(), AttributeValue::S("secret".into()));
        let mut stored = encrypt_item(&config, &i).unwrap();
        let name = ["aws_dbe_head", "aws_dbe_foot", "x"][at];
        stored.insert(name.into(), AttributeValue::B(garbage));
        prop_assert!(decrypt_item(&config, &stored).is_err());
    }
}
