//! Items through the caching CMM: one data key serves the writes of one
//! primary key, within the cache's limits, and its items stay readable and
//! tamper-evident.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::cmm::CachingCmm;
use crate::keyrings::RawAesKeyring;
use crate::materials::AlgorithmSuite;

fn aes() -> RawAesKeyring {
    RawAesKeyring::new("ns", "key", &[0x22; 32]).unwrap()
}

fn config(suite: AlgorithmSuite, cmm: Arc<dyn crate::materials::CryptographicMaterialsManager>) -> TableConfig {
    TableConfig::builder("table", "pk")
        .sort_key("sk")
        .action("secret", CryptoAction::EncryptAndSign)
        .suite(suite)
        .cmm(cmm)
        .build()
        .unwrap()
}

fn item(pk: &str, secret: &str) -> Item {
    let mut i = Item::new();
    i.insert("pk".into(), AttributeValue::S(pk.into()));
    i.insert("sk".into(), AttributeValue::N("1".into()));
    i.insert("secret".into(), AttributeValue::S(secret.into()));
    i
}

#[test]
fn one_data_key_serves_the_writes_of_one_primary_key() {
    for suite in AlgorithmSuite::ITEM_SUITES {
        let caching =
            Arc::new(CachingCmm::builder_for_keyring(aes()).max_age(Duration::from_secs(60)).build().unwrap());
        let cached = config(suite, caching.clone());
        let plain = config(suite, Arc::new(crate::cmm::DefaultCmm::new(aes())));
        let items: Vec<Item> = (0..5).map(|i| item("a", &format!("secret {i}"))).collect();
        let stored: Vec<Item> = items.iter().map(|i| encrypt_item(&cached, i).unwrap()).collect();
        assert_eq!(caching.stats().underlying_calls, 1);
        // Each item has its own message id, so its own header and field keys.
        assert_ne!(stored[0][HEADER_ATTRIBUTE], stored[1][HEADER_ATTRIBUTE]);
        for (s, i) in stored.iter().zip(&items) {
            assert_eq!(&decrypt_item(&cached, s).unwrap(), i);
            assert_eq!(&decrypt_item(&plain, s).unwrap(), i);
        }
        // One unwrap for the five items that share the EDK.
        assert_eq!(caching.stats().underlying_calls, 2);
        let mut bad = stored[3].clone();
        if let Some(AttributeValue::B(b)) = bad.get_mut("secret") {
            b[3] ^= 1;
        }
        assert!(decrypt_item(&cached, &bad).is_err());
        // Another primary key is another encryption context: another data key.
        encrypt_item(&cached, &item("b", "x")).unwrap();
        assert_eq!(caching.stats().underlying_calls, 3);
    }
}

#[test]
fn the_cache_limits_count_items() {
    let caching = Arc::new(
        CachingCmm::builder_for_keyring(aes())
            .max_age(Duration::from_secs(60))
            .max_messages_per_key(2)
            .build()
            .unwrap(),
    );
    let cached = config(AlgorithmSuite::DbeAes256GcmHkdfSha512CommitKeySymsigHmacSha384, caching.clone());
    for i in 0..4 {
        encrypt_item(&cached, &item("a", &format!("{i}"))).unwrap();
    }
    assert_eq!(caching.stats().underlying_calls, 2);
    let caching = Arc::new(
        CachingCmm::builder_for_keyring(aes()).max_age(Duration::from_secs(60)).max_bytes_per_key(10).build().unwrap(),
    );
    let cached = config(AlgorithmSuite::DbeAes256GcmHkdfSha512CommitKeySymsigHmacSha384, caching.clone());
    // Four bytes of plaintext each: the third item would pass the ten-byte limit.
    for _ in 0..3 {
        encrypt_item(&cached, &item("a", "four")).unwrap();
    }
    assert_eq!(caching.stats().underlying_calls, 2);
}
