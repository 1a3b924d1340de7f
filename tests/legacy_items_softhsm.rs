//! Legacy items with token keys: the peer's AES wrapping key imported into
//! SoftHSM unwraps its content keys through `CKM_AES_KEY_WRAP`, its HMAC key
//! verifies through `CKM_SHA256_HMAC`, and its RSA public key verifies
//! SHA256withRSA through `CKM_SHA256_RSA_PKCS`.

mod common;
mod legacy_support;

use cryptoki::object::KeyType;
use hsm_keyring::items::legacy::{decrypt_legacy_item, LegacyMaterials};
use hsm_keyring::master_keys::{MemoryAesWrapKey, MemoryHmacKey};
use hsm_keyring::pkcs11::{Pkcs11AesWrapKey, Pkcs11HmacKey, Pkcs11LegacyRsaKey, Pkcs11Uri, Token};
use hsm_keyring::ErrorKind;
use legacy_support::{aes_key, canonical, hmac_key, peer_items};

/// Import the peer's keys (with one other key of each kind, and an AES key
/// without `CKA_UNWRAP`) once per process.
fn setup() -> Option<(Token, &'static common::SoftHsm)> {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    let hsm = common::softhsm()?;
    DONE.get_or_init(|| {
        let s = hsm.raw_session();
        legacy_support::import_peer_keys(&s);
        legacy_support::import_secret(&s, "legacy-wrap-no-unwrap", KeyType::AES, aes_key(), false, false);
    });
    Some((Token::open(&Pkcs11Uri::parse(&hsm.token_uri()).unwrap()).unwrap(), hsm))
}

fn uri(hsm: &common::SoftHsm, label: &str, object_type: &str) -> Pkcs11Uri {
    Pkcs11Uri::parse(&hsm.key_uri(label, object_type)).unwrap()
}

#[test]
fn token_keys_read_the_peers_aes_wrapped_items() {
    let Some((token, hsm)) = setup() else { return };
    let mut read = 0;
    for item in peer_items().into_iter().filter(|i| i.wrap == "aes-wrap") {
        let unwrap = Pkcs11AesWrapKey::new(token.clone(), &uri(hsm, "legacy-wrap", "secret-key")).unwrap();
        let materials = if item.sign == "hmac" {
            LegacyMaterials::wrapped(
                unwrap,
                Pkcs11HmacKey::new(token.clone(), &uri(hsm, "legacy-hmac", "secret-key")).unwrap(),
            )
        } else {
            LegacyMaterials::wrapped(
                unwrap,
                Pkcs11LegacyRsaKey::new(token.clone(), &uri(hsm, "legacy-rsa", "public")).unwrap(),
            )
        };
        let config = item.config(materials);
        let plain = decrypt_legacy_item(&config, &item.stored).unwrap_or_else(|e| panic!("{}: {e}", item.case));
        assert_eq!(canonical(&plain), canonical(&item.expected), "{}", item.case);
        // The token verifies, so it refuses an altered signature and attribute.
        item.assert_alterations_refused(&config);
        read += 1;
    }
    assert!(read >= 4, "{read} items read");
}

#[test]
fn token_and_memory_keys_mix() {
    let Some((token, hsm)) = setup() else { return };
    let item = peer_items().into_iter().find(|i| i.wrap == "aes-wrap" && i.sign == "hmac").unwrap();
    let token_wrap = Pkcs11AesWrapKey::new(token.clone(), &uri(hsm, "legacy-wrap", "secret-key")).unwrap();
    let config = item.config(LegacyMaterials::wrapped(token_wrap, MemoryHmacKey::new(&hmac_key()).unwrap()));
    assert_eq!(canonical(&decrypt_legacy_item(&config, &item.stored).unwrap()), canonical(&item.expected));
    let token_hmac = Pkcs11HmacKey::new(token, &uri(hsm, "legacy-hmac", "secret-key")).unwrap();
    let config = item.config(LegacyMaterials::wrapped(MemoryAesWrapKey::new(&aes_key()).unwrap(), token_hmac));
    assert_eq!(canonical(&decrypt_legacy_item(&config, &item.stored).unwrap()), canonical(&item.expected));
}

#[test]
fn token_unwrap_with_another_key_is_not_this_key_and_a_forbidden_key_is_a_token_error() {
    let Some((token, hsm)) = setup() else { return };
    let item = peer_items().into_iter().find(|i| i.wrap == "aes-wrap" && i.sign == "hmac").unwrap();
    let hmac = || MemoryHmacKey::new(&hmac_key()).unwrap();
    let other = Pkcs11AesWrapKey::new(token.clone(), &uri(hsm, "legacy-wrap-other", "secret-key")).unwrap();
    let err = decrypt_legacy_item(&item.config(LegacyMaterials::wrapped(other, hmac())), &item.stored).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotThisKey, "{err}");
    let forbidden = Pkcs11AesWrapKey::new(token.clone(), &uri(hsm, "legacy-wrap-no-unwrap", "secret-key")).unwrap();
    let err = decrypt_legacy_item(&item.config(LegacyMaterials::wrapped(forbidden, hmac())), &item.stored).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Token, "{err}");
    assert!(err.to_string().contains("legacy-wrap-no-unwrap"), "{err}");
    assert!(Pkcs11AesWrapKey::new(token, &uri(hsm, "no-such-key", "secret-key")).is_err());
}

#[test]
fn softhsm_refuses_oaep_sha256_with_mgf1_sha1_as_a_token_error_not_a_wrong_key() {
    // SoftHSM 2.6 runs RSA-OAEP with SHA-1 only: the token RSA unwrap is
    // refused, and reported as the token's refusal, never as "not this key".
    let Some((token, hsm)) = setup() else { return };
    let item = peer_items().into_iter().find(|i| i.wrap == "rsa-oaep").unwrap();
    let key = Pkcs11LegacyRsaKey::new(token.clone(), &uri(hsm, "legacy-rsa", "private")).unwrap();
    let verify = Pkcs11LegacyRsaKey::new(token, &uri(hsm, "legacy-rsa", "public")).unwrap();
    match decrypt_legacy_item(&item.config(LegacyMaterials::wrapped(key, verify)), &item.stored) {
        // A module that runs the mechanism reads the item.
        Ok(plain) => assert_eq!(canonical(&plain), canonical(&item.expected)),
        Err(err) => {
            assert_eq!(err.kind(), ErrorKind::Token, "{err}");
            assert!(err.to_string().contains("C_Decrypt"), "{err}");
        }
    }
}
