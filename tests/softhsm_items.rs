//! DynamoDB items with token keys: the PKCS#11 AES and RSA keyrings encrypt
//! and decrypt items, and write the same EDK layouts as the in-memory raw
//! keyrings holding the same key material (so each reads the other's items).

mod common;

use hsm_keyring::crypto::RsaPadding;
use hsm_keyring::items::{decrypt_item, encrypt_item, AttributeValue, CryptoAction, Item, TableConfig};
use hsm_keyring::keyrings::{RawAesKeyring, RawRsaKeyring};
use hsm_keyring::pkcs11::{Pkcs11AesKeyring, Pkcs11RsaKeyring};
use hsm_keyring::pkcs11::{Pkcs11Uri, Token};
use hsm_keyring::{AlgorithmSuite, Keyring};

const AES_KEY: [u8; 32] = *b"token item test AES-256 key, 32!";

fn config<K: Keyring + 'static>(keyring: K, suite: AlgorithmSuite) -> TableConfig {
    TableConfig::builder("softhsm-items", "pk")
        .action("secret", CryptoAction::EncryptAndSign)
        .action("ctx", CryptoAction::SignAndIncludeInEncryptionContext)
        .suite(suite)
        .keyring(keyring)
        .build()
        .unwrap()
}

fn item() -> Item {
    let mut i = Item::new();
    i.insert("pk".into(), AttributeValue::S("token ✓".into()));
    i.insert("secret".into(), AttributeValue::L(vec![AttributeValue::N("1".into()), AttributeValue::B(vec![7; 9])]));
    i.insert("ctx".into(), AttributeValue::Bool(true));
    i
}

fn flipped(stored: &Item) -> Item {
    let mut bad = stored.clone();
    if let Some(AttributeValue::B(b)) = bad.get_mut("secret") {
        b[4] ^= 1;
    }
    bad
}

#[test]
fn token_keyrings_encrypt_and_decrypt_items() {
    let Some(hsm) = common::softhsm() else { return };
    let token = Token::open(&Pkcs11Uri::parse(&hsm.token_uri()).unwrap()).unwrap();
    let aes_uri = token.import_aes_key("items-aes", &AES_KEY, None).unwrap();
    let rsa_uri = token.generate_rsa_key_pair("items-rsa", 2048, None).unwrap();
    let rsa_public = token.export_public_key_pem(&rsa_uri).unwrap();

    for suite in AlgorithmSuite::ITEM_SUITES {
        // Token AES, and the same bytes in memory under the same names.
        let token_aes = Pkcs11AesKeyring::new(token.clone(), &aes_uri).unwrap();
        let memory_aes = RawAesKeyring::new(token_aes.namespace(), token_aes.key_name(), &AES_KEY).unwrap();
        let by_token = config(token_aes, suite);
        let by_memory = config(memory_aes, suite);
        let stored = encrypt_item(&by_token, &item()).unwrap();
        assert_eq!(decrypt_item(&by_token, &stored).unwrap(), item());
        assert_eq!(decrypt_item(&by_memory, &stored).unwrap(), item());
        let stored = encrypt_item(&by_memory, &item()).unwrap();
        assert_eq!(decrypt_item(&by_token, &stored).unwrap(), item());
        assert!(decrypt_item(&by_token, &flipped(&stored)).is_err());

        // Token RSA (OAEP-SHA1, what SoftHSM does); an encrypt-only keyring over its exported public key.
        let token_rsa = Pkcs11RsaKeyring::new(token.clone(), &rsa_uri, RsaPadding::OaepSha1).unwrap();
        let public_only = RawRsaKeyring::from_public_pem(
            token_rsa.namespace(),
            token_rsa.key_name(),
            RsaPadding::OaepSha1,
            &rsa_public,
        )
        .unwrap();
        let by_token = config(token_rsa, suite);
        let stored = encrypt_item(&by_token, &item()).unwrap();
        assert_eq!(decrypt_item(&by_token, &stored).unwrap(), item());
        assert!(decrypt_item(&by_token, &flipped(&stored)).is_err());
        let stored = encrypt_item(&config(public_only, suite), &item()).unwrap();
        assert_eq!(decrypt_item(&by_token, &stored).unwrap(), item());
    }
}
