//! `encrypt_items` and `decrypt_items`.

use super::config::TableConfig;
use super::value::Item;
use super::{decrypt_item, encrypt_item};
use crate::error::{Error, Result};

/// Name the item in the errors that describe an item (its kind is kept).
fn at(index: usize, error: Error) -> Error {
    let name = |reason: String| format!("item {index}: {reason}");
    match error {
        Error::MalformedItem { reason } => Error::MalformedItem { reason: name(reason) },
        Error::ItemAuthentication { reason } => Error::ItemAuthentication { reason: name(reason) },
        Error::Signature { reason } => Error::Signature { reason: name(reason) },
        Error::EncryptionContextMismatch { reason } => Error::EncryptionContextMismatch { reason: name(reason) },
        other => other,
    }
}

/// [`encrypt_item`] for every item, in order. Stops at the first item that
/// fails and returns its error (naming the item's index in the batch when
/// the error describes the item).
///
/// [`encrypt_items`] and [`decrypt_items`] run [`encrypt_item`] and
/// [`decrypt_item`] over a batch (a `BatchWriteItem`, a `Query` page), all or
/// nothing. Each item is written exactly as alone: its own message id, so its
/// own field keys and commitment, and it decrypts alone.
///
/// # Fewer keyring calls with a caching CMM
///
/// Configured with a [`CachingCmm`](crate::cmm::CachingCmm), items whose
/// encryption contexts are equal share one data key fetch. An item's context
/// holds the table name and its primary key (and, in configuration version 2,
/// the attributes included in the context), and the format binds the wrapped
/// data key to it, so what shares a fetch is every write of the same primary
/// key (updates of hot items, versions of one record) on encrypt, and every
/// read of the same stored item on decrypt; items with different primary
/// keys never share a data key. Within the cache limits (`max_age`,
/// `max_messages_per_key`), 1,000 writes over 10 primary keys cost 10 keyring
/// calls (token wrap or unwrap operations) instead of 1,000.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// use hsm_keyring::cmm::CachingCmm;
/// use hsm_keyring::items::{decrypt_items, encrypt_items, AttributeValue, CryptoAction, Item, TableConfig};
/// use hsm_keyring::keyrings::RawAesKeyring;
///
/// let cmm = Arc::new(
///     CachingCmm::builder_for_keyring(RawAesKeyring::new("ns", "key-1", &[7; 32])?)
///         .max_age(Duration::from_secs(300))
///         .max_messages_per_key(1000)
///         .build()?,
/// );
/// let config = TableConfig::builder("counters", "id")
///     .action("count", CryptoAction::EncryptAndSign)
///     .cmm(cmm.clone())
///     .build()?;
/// let items: Vec<Item> = (0..20)
///     .map(|i| {
///         Item::from([
///             ("id".to_owned(), AttributeValue::S(format!("c-{}", i % 2))),
///             ("count".to_owned(), AttributeValue::N(i.to_string())),
///         ])
///     })
///     .collect();
/// let stored = encrypt_items(&config, &items)?;
/// assert_eq!(cmm.stats().underlying_calls, 2); // one per primary key
/// assert_eq!(decrypt_items(&config, &stored)?, items);
/// # Ok::<(), hsm_keyring::Error>(())
/// ```
pub fn encrypt_items(config: &TableConfig, items: &[Item]) -> Result<Vec<Item>> {
    items.iter().enumerate().map(|(i, item)| encrypt_item(config, item).map_err(|e| at(i, e))).collect()
}

/// [`decrypt_item`] for every item, in order. Nothing is returned unless
/// every item verified and decrypted; the error is the first failing item's,
/// as for [`encrypt_items`].
pub fn decrypt_items(config: &TableConfig, items: &[Item]) -> Result<Vec<Item>> {
    items.iter().enumerate().map(|(i, item)| decrypt_item(config, item).map_err(|e| at(i, e))).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::cmm::CachingCmm;
    use crate::error::Error;
    use crate::items::{AttributeValue, CryptoAction, HEADER_ATTRIBUTE};
    use crate::keyrings::RawAesKeyring;
    use crate::materials::{AlgorithmSuite, DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring};

    /// A raw AES keyring that counts its calls.
    #[derive(Debug, Clone)]
    struct Counting {
        inner: Arc<RawAesKeyring>,
        encrypts: Arc<AtomicUsize>,
        decrypts: Arc<AtomicUsize>,
    }

    impl Counting {
        fn new() -> Self {
            Counting {
                inner: Arc::new(RawAesKeyring::new("ns", "k", &[5; 32]).unwrap()),
                encrypts: Arc::default(),
                decrypts: Arc::default(),
            }
        }
    }

    impl Keyring for Counting {
        fn on_encrypt(&self, materials: EncryptionMaterials) -> Result<EncryptionMaterials> {
            self.encrypts.fetch_add(1, Ordering::SeqCst);
            self.inner.on_encrypt(materials)
        }
        fn on_decrypt(&self, materials: DecryptionMaterials, edks: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
            self.decrypts.fetch_add(1, Ordering::SeqCst);
            self.inner.on_decrypt(materials, edks)
        }
        fn description(&self) -> String {
            "counting".into()
        }
    }

    /// The HMAC-only suite keeps the 1,000-item tests quick; the signed
    /// suite shares its data keys the same way (`signed_items_share_...`).
    const SUITE: AlgorithmSuite = AlgorithmSuite::DbeAes256GcmHkdfSha512CommitKeySymsigHmacSha384;

    fn builder() -> crate::items::TableConfigBuilder {
        TableConfig::builder("t", "id")
            .action("card", CryptoAction::EncryptAndSign)
            .action("n", CryptoAction::SignOnly)
            .suite(SUITE)
    }

    fn caching_with(keyring: Counting, suite: AlgorithmSuite) -> TableConfig {
        let cmm = CachingCmm::builder_for_keyring(keyring)
            .max_age(Duration::from_secs(3600))
            .max_messages_per_key(1000)
            .build()
            .unwrap();
        builder().suite(suite).cmm(Arc::new(cmm)).build().unwrap()
    }

    fn caching(keyring: Counting) -> TableConfig {
        caching_with(keyring, SUITE)
    }

    /// `count` items over `keys` primary keys, all with the same card.
    fn items(count: usize, keys: usize) -> Vec<Item> {
        (0..count)
            .map(|i| {
                Item::from([
                    ("id".to_owned(), AttributeValue::S(format!("k-{}", i % keys))),
                    ("card".to_owned(), AttributeValue::S("4111".into())),
                    ("n".to_owned(), AttributeValue::N(i.to_string())),
                ])
            })
            .collect()
    }

    fn message_id(item: &Item) -> Vec<u8> {
        let AttributeValue::B(head) = &item[HEADER_ATTRIBUTE] else { panic!("no header") };
        head[2..34].to_vec()
    }

    #[test]
    fn through_a_caching_cmm_1000_items_cost_few_keyring_calls_and_each_decrypts_alone() {
        let keyring = Counting::new();
        let config = caching(keyring.clone());
        let plain = items(1000, 10);
        let stored = encrypt_items(&config, &plain).unwrap();
        let calls = keyring.encrypts.load(Ordering::SeqCst);
        assert!(calls < 100, "{calls} keyring calls");
        assert_eq!(calls, 10);

        // Own message id per item, so own field keys: the same card encrypts differently.
        let ids: HashSet<Vec<u8>> = stored.iter().map(message_id).collect();
        assert_eq!(ids.len(), 1000);
        let cards: HashSet<Vec<u8>> = stored
            .iter()
            .map(|i| match &i["card"] {
                AttributeValue::B(b) => b.clone(),
                other => panic!("card not encrypted: {other:?}"),
            })
            .collect();
        assert_eq!(cards.len(), 1000);

        // Each item alone, through a configuration without any cache.
        let alone = Counting::new();
        let plain_config = builder().keyring(alone.clone()).build().unwrap();
        for (s, p) in stored.iter().zip(&plain) {
            assert_eq!(&decrypt_item(&plain_config, s).unwrap(), p);
        }
        assert_eq!(alone.decrypts.load(Ordering::SeqCst), 1000);

        // Decrypting the batch through the cache: one unwrap per shared data key.
        let reader = Counting::new();
        assert_eq!(decrypt_items(&caching(reader.clone()), &stored).unwrap(), plain);
        assert_eq!(reader.decrypts.load(Ordering::SeqCst), 10);
    }

    #[test]
    fn signed_items_share_data_keys_and_the_signing_key_through_the_cache() {
        let signed = AlgorithmSuite::DbeAes256GcmHkdfSha512CommitKeyEcdsaP384SymsigHmacSha384;
        let keyring = Counting::new();
        let plain = items(40, 4);
        let stored = encrypt_items(&caching_with(keyring.clone(), signed), &plain).unwrap();
        assert_eq!(keyring.encrypts.load(Ordering::SeqCst), 4);
        assert_eq!(stored.iter().map(message_id).collect::<HashSet<_>>().len(), 40);
        let reader = builder().suite(signed).keyring(Counting::new()).build().unwrap();
        for (s, p) in stored.iter().zip(&plain) {
            assert_eq!(&decrypt_item(&reader, s).unwrap(), p);
        }
    }

    #[test]
    fn without_caching_each_item_makes_its_own_call() {
        let keyring = Counting::new();
        let config = builder().keyring(keyring.clone()).build().unwrap();
        let stored = encrypt_items(&config, &items(1000, 10)).unwrap();
        assert_eq!(keyring.encrypts.load(Ordering::SeqCst), 1000);
        assert_eq!(stored.len(), 1000);
    }

    #[test]
    fn different_primary_keys_never_share_a_data_key() {
        let keyring = Counting::new();
        let stored = encrypt_items(&caching(keyring.clone()), &items(50, 50)).unwrap();
        assert_eq!(keyring.encrypts.load(Ordering::SeqCst), 50);
        // Moving one item's encrypted card under another's header fails.
        let mut moved = stored[1].clone();
        moved.insert("card".into(), stored[0]["card"].clone());
        let reader = builder().keyring(Counting::new()).build().unwrap();
        assert!(matches!(decrypt_item(&reader, &moved), Err(Error::ItemAuthentication { .. })));
    }

    #[test]
    fn a_batch_fails_as_a_whole_on_one_bad_item() {
        let config = builder().keyring(Counting::new()).build().unwrap();
        let mut stored = encrypt_items(&config, &items(5, 5)).unwrap();
        stored[3].insert("n".into(), AttributeValue::N("99".into()));
        match decrypt_items(&config, &stored) {
            Err(Error::ItemAuthentication { reason }) => assert!(reason.starts_with("item 3: "), "{reason}"),
            other => panic!("expected an authentication failure, got {other:?}"),
        }
        let mut plain = items(3, 3);
        plain[2].insert("unknown".into(), AttributeValue::Null);
        match encrypt_items(&config, &plain) {
            Err(Error::MalformedItem { reason }) => {
                assert!(reason.contains("item 2: ") && reason.contains("`unknown`"))
            }
            other => panic!("expected a malformed item, got {other:?}"),
        }
        assert!(encrypt_items(&config, &[]).unwrap().is_empty());
    }
}
