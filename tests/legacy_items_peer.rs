//! Items written by the legacy DynamoDB Encryption Client (its Python
//! package 3.3.0, `interop/legacy-items/`) read back with memory keys: each
//! provider and algorithm to the peer's own plaintext, and every altered
//! signed attribute or signature refused.

mod legacy_support;

use hsm_keyring::items::legacy::{decrypt_legacy_item, LegacyMaterials, SIGNATURE_ATTRIBUTE};
use hsm_keyring::items::{AttributeValue, CryptoAction};
use hsm_keyring::master_keys::{MemoryAesWrapKey, MemoryHmacKey, MemoryLegacyRsaKey};
use hsm_keyring::ErrorKind;
use legacy_support::{aes_key, altered, canonical, hmac_key, peer_items, rsa_private_pem, rsa_public_pem, PeerItem};

/// The materials the peer used for `item`, in memory; RSA signatures are
/// verified with the public key alone.
fn materials(item: &PeerItem) -> LegacyMaterials {
    let verify = materials_verify(item);
    match item.wrap.as_str() {
        "aes-wrap" => LegacyMaterials::wrapped(MemoryAesWrapKey::new(&aes_key()).unwrap(), verify),
        "rsa-oaep" => {
            LegacyMaterials::wrapped(MemoryLegacyRsaKey::from_private_pem(&rsa_private_pem()).unwrap(), verify)
        }
        "aes-static" => LegacyMaterials::static_key(&aes_key(), verify).unwrap(),
        other => panic!("unknown wrapping key {other}"),
    }
}

#[test]
fn peer_items_decrypt_to_the_peers_plaintext() {
    let items = peer_items();
    let mut cases = std::collections::BTreeSet::new();
    let mut big = 0;
    for item in &items {
        let config = item.config(materials(item));
        let plain = decrypt_legacy_item(&config, &item.stored).unwrap_or_else(|e| panic!("{}: {e}", item.case));
        assert_eq!(canonical(&plain), canonical(&item.expected), "{}", item.case);
        // Encrypted attributes were binary in the stored item and are not now.
        let encrypted: Vec<_> = item
            .expected
            .keys()
            .filter(|k| item.actions.get(*k).copied().unwrap_or(item.default_action) == CryptoAction::EncryptAndSign)
            .collect();
        assert!(!encrypted.is_empty(), "{}", item.case);
        for name in encrypted {
            assert!(matches!(item.stored[name], AttributeValue::B(_)), "{}: {name}", item.case);
        }
        // A sign-only number of more than 28 digits: signed rounded by the peer.
        if let Some(AttributeValue::N(n)) = item.stored.get("public_big") {
            assert!(n.chars().filter(char::is_ascii_digit).count() > 28, "{n}");
            assert_eq!(plain["public_big"], item.stored["public_big"]);
            big += 1;
        }
        cases.insert((item.wrap.clone(), item.sign.clone()));
    }
    // Wrapped AES, wrapped RSA, static; HMAC and RSA signatures.
    assert_eq!(cases.len(), 4, "{cases:?}");
    assert_eq!(big, 4);
}

#[test]
fn peer_items_refuse_any_altered_signed_attribute_or_signature() {
    for item in peer_items() {
        let config = item.config(materials(&item));
        for (name, value) in &item.stored {
            if name == "*amzn-ddb-map-desc*" {
                continue;
            }
            let mut bad = item.stored.clone();
            bad.insert(name.clone(), altered(value));
            let result = decrypt_legacy_item(&config, &bad);
            if item.actions.get(name) == Some(&CryptoAction::DoNothing) {
                let plain = result.unwrap_or_else(|e| panic!("{}: unsigned `{name}` altered: {e}", item.case));
                assert_eq!(plain[name], altered(value));
                continue;
            }
            let err = result.expect_err(&format!("{}: `{name}` altered", item.case));
            assert_eq!(err.kind(), ErrorKind::NotAuthentic, "{}: `{name}`: {err}", item.case);
            if name == SIGNATURE_ATTRIBUTE {
                assert!(err.to_string().contains("*amzn-ddb-map-sig*"), "{err}");
            }
            // A removed signed attribute, too.
            let mut gone = item.stored.clone();
            gone.remove(name);
            assert!(decrypt_legacy_item(&config, &gone).is_err(), "{}: `{name}` removed", item.case);
        }
        // Another table name.
        let mut other = item.clone();
        other.table = "another-table".into();
        let err = decrypt_legacy_item(&other.config(materials(&item)), &item.stored).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotAuthentic, "{}", item.case);
    }
}

#[test]
fn peer_items_refuse_other_keys() {
    for item in peer_items() {
        let other_hmac = || MemoryHmacKey::new(&[0x11; 32]).unwrap();
        let wrong = match item.wrap.as_str() {
            "aes-wrap" => {
                LegacyMaterials::wrapped(MemoryAesWrapKey::new(&[0x22; 32]).unwrap(), materials_verify(&item))
            }
            "rsa-oaep" => LegacyMaterials::wrapped(
                MemoryLegacyRsaKey::from_private_pem(
                    &std::fs::read_to_string(concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/tests/data/interop-rsa-2048-other-private.pem"
                    ))
                    .unwrap(),
                )
                .unwrap(),
                materials_verify(&item),
            ),
            _ => LegacyMaterials::static_key(&[0x22; 32], materials_verify(&item)).unwrap(),
        };
        let err = decrypt_legacy_item(&item.config(wrong), &item.stored).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotThisKey, "{}: {err}", item.case);
        if item.sign == "hmac" {
            let wrong_sign = LegacyMaterials::wrapped(MemoryAesWrapKey::new(&aes_key()).unwrap(), other_hmac());
            let err = decrypt_legacy_item(&item.config(wrong_sign), &item.stored).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotAuthentic, "{}: {err}", item.case);
        } else {
            // The item says SHA256withRSA; an HMAC key cannot verify it.
            let wrong_kind = LegacyMaterials::wrapped(MemoryAesWrapKey::new(&aes_key()).unwrap(), other_hmac());
            let err = decrypt_legacy_item(&item.config(wrong_kind), &item.stored).unwrap_err();
            assert!(err.to_string().contains("SHA256withRSA"), "{}: {err}", item.case);
        }
    }
}

fn materials_verify(item: &PeerItem) -> std::sync::Arc<dyn hsm_keyring::master_keys::LegacyVerifyKey> {
    match item.sign.as_str() {
        "hmac" => std::sync::Arc::new(MemoryHmacKey::new(&hmac_key()).unwrap()),
        _ => std::sync::Arc::new(MemoryLegacyRsaKey::from_public_pem(&rsa_public_pem()).unwrap()),
    }
}
