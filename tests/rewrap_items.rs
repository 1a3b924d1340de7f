//! Rewrapping DynamoDB items: new EDKs in the header, a recomputed footer,
//! every attribute value unchanged.

use std::sync::Arc;

use hsm_keyring::crypto::SoftwareSigner;
use hsm_keyring::items::{decrypt_item, encrypt_item, AttributeValue, CryptoAction, Item, TableConfig};
use hsm_keyring::keyrings::RawAesKeyring;
use hsm_keyring::rewrap::ItemRewrapper;
use hsm_keyring::{AlgorithmSuite, ErrorKind, FooterSigner, Keyring, SignatureCurve};

fn ring(name: &str, byte: u8) -> RawAesKeyring {
    RawAesKeyring::new("rotation", name, &[byte; 32]).unwrap()
}

fn config(suite: AlgorithmSuite, keyring: RawAesKeyring, signer: Option<Arc<dyn FooterSigner>>) -> TableConfig {
    let mut b = TableConfig::builder("rotation-table", "pk")
        .sort_key("sk")
        .action("secret", CryptoAction::EncryptAndSign)
        .action("card", CryptoAction::EncryptAndSign)
        .action("note", CryptoAction::SignOnly)
        .suite(suite)
        .keyring(keyring);
    if let Some(s) = signer {
        b = b.signer(s);
    }
    b.build().unwrap()
}

fn item() -> Item {
    Item::from([
        ("pk".to_owned(), AttributeValue::S("p-1".into())),
        ("sk".to_owned(), AttributeValue::N("7".into())),
        ("secret".to_owned(), AttributeValue::S("the secret".into())),
        ("card".to_owned(), AttributeValue::B(vec![1, 2, 3, 4])),
        ("note".to_owned(), AttributeValue::S("kept".into())),
    ])
}

fn check(suite: AlgorithmSuite, signer: Option<Arc<dyn FooterSigner>>) {
    let stored = encrypt_item(&config(suite, ring("old", 1), None), &item()).unwrap();
    let to: Arc<dyn Keyring> = Arc::new(ring("new", 2));
    let mut rewrapper = ItemRewrapper::new(config(suite, ring("old", 1), None), to);
    if let Some(s) = &signer {
        rewrapper = rewrapper.with_signer(s.clone());
    }
    let out = rewrapper.rewrap(&stored).unwrap();
    for name in ["pk", "sk", "secret", "card", "note"] {
        assert_eq!(out[name], stored[name], "{suite:?}: `{name}` changed");
    }
    assert_ne!(out["aws_dbe_head"], stored["aws_dbe_head"]);
    assert_ne!(out["aws_dbe_foot"], stored["aws_dbe_foot"]);
    assert_eq!(decrypt_item(&config(suite, ring("new", 2), None), &out).unwrap(), item(), "{suite:?}");
    let err = decrypt_item(&config(suite, ring("old", 1), None), &out).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotThisKey, "{suite:?}: {err}");
    if let Some(s) = signer {
        let pinned = TableConfig::builder("rotation-table", "pk")
            .sort_key("sk")
            .action("secret", CryptoAction::EncryptAndSign)
            .action("card", CryptoAction::EncryptAndSign)
            .action("note", CryptoAction::SignOnly)
            .suite(suite)
            .keyring(ring("new", 2))
            .trusted_signers(vec![s.public_key()])
            .build()
            .unwrap();
        assert_eq!(decrypt_item(&pinned, &out).unwrap(), item());
    }
}

#[test]
fn unsigned_items_are_rewrapped() {
    check(AlgorithmSuite::DbeAes256GcmHkdfSha512CommitKeySymsigHmacSha384, None);
}

#[test]
fn signed_items_are_rewrapped_with_a_long_lived_signer() {
    let signer: Arc<dyn FooterSigner> = Arc::new(SoftwareSigner::generate(SignatureCurve::P384));
    check(AlgorithmSuite::DbeAes256GcmHkdfSha512CommitKeyEcdsaP384SymsigHmacSha384, Some(signer));
}

#[test]
fn refusals() {
    let unsigned = AlgorithmSuite::DbeAes256GcmHkdfSha512CommitKeySymsigHmacSha384;
    let signed = AlgorithmSuite::DbeAes256GcmHkdfSha512CommitKeyEcdsaP384SymsigHmacSha384;
    let to: Arc<dyn Keyring> = Arc::new(ring("new", 2));
    // A signed item without a signer.
    let stored = encrypt_item(&config(signed, ring("old", 1), None), &item()).unwrap();
    let err = ItemRewrapper::new(config(signed, ring("old", 1), None), to.clone()).rewrap(&stored).unwrap_err();
    assert!(err.to_string().contains("long-lived signer"), "{err}");

    let stored = encrypt_item(&config(unsigned, ring("old", 1), None), &item()).unwrap();
    let rewrapper = ItemRewrapper::new(config(unsigned, ring("old", 1), None), to.clone());
    // An altered attribute, header or footer.
    for name in ["note", "secret", "aws_dbe_head", "aws_dbe_foot"] {
        let mut bad = stored.clone();
        match bad.get_mut(name).unwrap() {
            AttributeValue::B(b) => {
                let n = b.len();
                b[n - 1] ^= 1;
            }
            AttributeValue::S(s) => s.push('!'),
            _ => unreachable!(),
        }
        assert!(rewrapper.rewrap(&bad).is_err(), "altered `{name}`");
    }
    // Keys that cannot open it.
    let err = ItemRewrapper::new(config(unsigned, ring("other", 9), None), to).rewrap(&stored).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotThisKey);
}
