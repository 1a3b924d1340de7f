//! Legacy items with token keys on Kryoptic, which runs RSA-OAEP with
//! SHA-256 and MGF1-SHA1 (SoftHSM 2.6 does not): the peer's RSA key pair
//! imported into the token unwraps the content keys of its RSA-wrapped items
//! (`CKM_RSA_PKCS_OAEP` through `C_Decrypt`) and verifies their SHA256withRSA
//! signatures (`CKM_SHA256_RSA_PKCS`); its AES wrapping key and HMAC key
//! read the AES-wrapped items (`CKM_AES_KEY_WRAP`, `CKM_SHA256_HMAC`).
//!
//! Skipped when Kryoptic is not built (`bash ci/kryoptic.sh module`, path in
//! `HSM_KEYRING_KRYOPTIC_MODULE`); a failure with `CI=true`.

mod common;
mod legacy_support;

use hsm_keyring::items::legacy::{decrypt_legacy_item, LegacyMaterials};
use hsm_keyring::master_keys::{LegacyUnwrapKey, MemoryHmacKey, MemoryLegacyRsaKey};
use hsm_keyring::pkcs11::{Pkcs11AesWrapKey, Pkcs11HmacKey, Pkcs11LegacyRsaKey, Pkcs11Uri, Token};
use hsm_keyring::ErrorKind;
use legacy_support::{canonical, hmac_key, peer_items, rsa_private_pem, rsa_public_pem, PeerItem};

use common::{Backend, TestToken};

/// The process's Kryoptic token with the peer's keys (and another RSA key)
/// imported once.
fn setup() -> Option<(Token, &'static TestToken)> {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    let t = common::test_token(Backend::Kryoptic)?;
    DONE.get_or_init(|| legacy_support::import_peer_keys(&t.raw_session()));
    Some((Token::open(&Pkcs11Uri::parse(&t.token_uri()).unwrap()).unwrap(), t))
}

fn uri(t: &TestToken, label: &str, object_type: &str) -> Pkcs11Uri {
    Pkcs11Uri::parse(&t.key_uri(label, object_type)).unwrap()
}

fn rsa_items() -> Vec<PeerItem> {
    let items: Vec<PeerItem> = peer_items().into_iter().filter(|i| i.wrap == "rsa-oaep").collect();
    assert!(items.len() >= 2, "{} RSA-wrapped items", items.len());
    items
}

/// The wrapped content key of a stored item: `amzn-ddb-env-key` (base64) in
/// its material description (`*amzn-ddb-map-desc*`: a zero version, then
/// length-prefixed name/value pairs).
fn wrapped_key(item: &PeerItem) -> Vec<u8> {
    use base64::Engine;
    let hsm_keyring::items::AttributeValue::B(desc) = &item.stored[DESCRIPTION] else {
        panic!("{}: no binary material description", item.case)
    };
    assert_eq!(desc[..4], [0u8; 4], "{}", item.case);
    let mut rest = &desc[4..];
    let mut next = || {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let text = std::str::from_utf8(&rest[4..4 + len]).unwrap().to_owned();
        rest = &rest[4 + len..];
        text
    };
    loop {
        let (name, value) = (next(), next());
        if name == "amzn-ddb-env-key" {
            return base64::engine::general_purpose::STANDARD.decode(value).unwrap();
        }
    }
}

const DESCRIPTION: &str = "*amzn-ddb-map-desc*";

#[test]
fn kryoptic_rsa_key_pair_reads_the_peers_rsa_oaep_sha256_wrapped_items() {
    let Some((token, t)) = setup() else { return };
    for item in rsa_items() {
        let unwrap = Pkcs11LegacyRsaKey::new(token.clone(), &uri(t, "legacy-rsa", "private")).unwrap();
        let verify = Pkcs11LegacyRsaKey::new(token.clone(), &uri(t, "legacy-rsa", "public")).unwrap();
        let config = item.config(LegacyMaterials::wrapped(unwrap, verify));
        let plain = decrypt_legacy_item(&config, &item.stored).unwrap_or_else(|e| panic!("{}: {e}", item.case));
        assert_eq!(canonical(&plain), canonical(&item.expected), "{}", item.case);
        assert_ne!(canonical(&plain), canonical(&item.stored), "{}: nothing was decrypted", item.case);
        // Any change to the signature, a key attribute or an encrypted
        // attribute is refused as not authentic.
        item.assert_alterations_refused(&config);
    }
}

#[test]
fn kryoptic_rsa_unwrap_matches_memory_and_refuses_altered_or_foreign_wrapped_keys() {
    let Some((token, t)) = setup() else { return };
    let memory = MemoryLegacyRsaKey::from_private_pem(&rsa_private_pem()).unwrap();
    let key = Pkcs11LegacyRsaKey::new(token.clone(), &uri(t, "legacy-rsa", "private")).unwrap();
    let other = Pkcs11LegacyRsaKey::new(token, &uri(t, "legacy-rsa-other", "private")).unwrap();
    for item in rsa_items() {
        let wrapped = wrapped_key(&item);
        let in_token = key.unwrap_key(&wrapped).unwrap_or_else(|e| panic!("{}: {e}", item.case));
        let in_memory = memory.unwrap_key(&wrapped).unwrap();
        assert_eq!(in_token.as_bytes(), in_memory.as_bytes(), "{}", item.case);
        assert_eq!(in_token.as_bytes().len(), 32, "{}", item.case);
        // Altered bytes and another key's private half: "not this key",
        // never a token fault.
        for at in [0, wrapped.len() / 2, wrapped.len() - 1] {
            let mut bad = wrapped.clone();
            bad[at] ^= 0x01;
            let err = key.unwrap_key(&bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotThisKey, "{}: byte {at}: {err}", item.case);
        }
        let err = other.unwrap_key(&wrapped).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotThisKey, "{}: {err}", item.case);
        assert!(err.to_string().contains("legacy-rsa-other"), "{err}");
        // A whole item with the other key: refused, not decrypted.
        let verify = MemoryLegacyRsaKey::from_public_pem(&rsa_public_pem()).unwrap();
        let config = item.config(LegacyMaterials::wrapped(other.clone(), verify));
        let err = decrypt_legacy_item(&config, &item.stored).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotThisKey, "{}: {err}", item.case);
    }
}

#[test]
fn kryoptic_rsa_unwrap_with_memory_verification_and_the_other_way() {
    let Some((token, t)) = setup() else { return };
    let item = rsa_items().remove(0);
    let token_unwrap = Pkcs11LegacyRsaKey::new(token.clone(), &uri(t, "legacy-rsa", "private")).unwrap();
    let memory_verify = MemoryLegacyRsaKey::from_public_pem(&rsa_public_pem()).unwrap();
    let config = item.config(LegacyMaterials::wrapped(token_unwrap, memory_verify));
    assert_eq!(canonical(&decrypt_legacy_item(&config, &item.stored).unwrap()), canonical(&item.expected));
    let memory_unwrap = MemoryLegacyRsaKey::from_private_pem(&rsa_private_pem()).unwrap();
    let token_verify = Pkcs11LegacyRsaKey::new(token.clone(), &uri(t, "legacy-rsa", "public")).unwrap();
    let config = item.config(LegacyMaterials::wrapped(memory_unwrap, token_verify));
    assert_eq!(canonical(&decrypt_legacy_item(&config, &item.stored).unwrap()), canonical(&item.expected));
    // The other key pair's public half does not verify the peer's signature.
    let memory_unwrap = MemoryLegacyRsaKey::from_private_pem(&rsa_private_pem()).unwrap();
    let other_verify = Pkcs11LegacyRsaKey::new(token, &uri(t, "legacy-rsa-other", "public")).unwrap();
    let config = item.config(LegacyMaterials::wrapped(memory_unwrap, other_verify));
    let err = decrypt_legacy_item(&config, &item.stored).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotAuthentic, "{err}");
}

#[test]
fn kryoptic_aes_wrap_and_hmac_keys_read_the_peers_hmac_signed_items() {
    let Some((token, t)) = setup() else { return };
    let items: Vec<PeerItem> = peer_items().into_iter().filter(|i| i.wrap == "aes-wrap" && i.sign == "hmac").collect();
    assert!(items.len() >= 2, "{} AES-wrapped HMAC-signed items", items.len());
    for item in items {
        let unwrap = Pkcs11AesWrapKey::new(token.clone(), &uri(t, "legacy-wrap", "secret-key")).unwrap();
        let hmac = Pkcs11HmacKey::new(token.clone(), &uri(t, "legacy-hmac", "secret-key")).unwrap();
        let config = item.config(LegacyMaterials::wrapped(unwrap, hmac));
        let plain = decrypt_legacy_item(&config, &item.stored).unwrap_or_else(|e| panic!("{}: {e}", item.case));
        assert_eq!(canonical(&plain), canonical(&item.expected), "{}", item.case);
        item.assert_alterations_refused(&config);
        // Another HMAC key in the token: the signature does not verify.
        let unwrap = Pkcs11AesWrapKey::new(token.clone(), &uri(t, "legacy-wrap", "secret-key")).unwrap();
        let other = Pkcs11HmacKey::new(token.clone(), &uri(t, "legacy-hmac-other", "secret-key")).unwrap();
        let err = decrypt_legacy_item(&item.config(LegacyMaterials::wrapped(unwrap, other)), &item.stored).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotAuthentic, "{}: {err}", item.case);
        // Another AES wrapping key in the token: not this key.
        let other = Pkcs11AesWrapKey::new(token.clone(), &uri(t, "legacy-wrap-other", "secret-key")).unwrap();
        let config = item.config(LegacyMaterials::wrapped(other, MemoryHmacKey::new(&hmac_key()).unwrap()));
        let err = decrypt_legacy_item(&config, &item.stored).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotThisKey, "{}: {err}", item.case);
        // The token HMAC key gives the same answer as the key in memory.
        let unwrap = Pkcs11AesWrapKey::new(token.clone(), &uri(t, "legacy-wrap", "secret-key")).unwrap();
        let config = item.config(LegacyMaterials::wrapped(unwrap, MemoryHmacKey::new(&hmac_key()).unwrap()));
        assert_eq!(canonical(&decrypt_legacy_item(&config, &item.stored).unwrap()), canonical(&item.expected));
    }
}
