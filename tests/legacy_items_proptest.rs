//! Random changes to the peer's legacy items: any byte of a binary attribute
//! (the signature, the material description, an encrypted value) changed,
//! or cut short, never panics and never reads back as other plaintext.

mod legacy_support;

use hsm_keyring::items::legacy::{decrypt_legacy_item, LegacyMaterials};
use hsm_keyring::items::AttributeValue;
use hsm_keyring::master_keys::{MemoryAesWrapKey, MemoryHmacKey};
use legacy_support::{aes_key, canonical, hmac_key, peer_items, PeerItem};
use proptest::prelude::*;

fn aes_hmac_items() -> Vec<PeerItem> {
    peer_items().into_iter().filter(|i| i.sign == "hmac").collect()
}

fn materials(item: &PeerItem) -> LegacyMaterials {
    let hmac = MemoryHmacKey::new(&hmac_key()).unwrap();
    if item.wrap == "aes-static" {
        LegacyMaterials::static_key(&aes_key(), hmac).unwrap()
    } else {
        LegacyMaterials::wrapped(MemoryAesWrapKey::new(&aes_key()).unwrap(), hmac)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn changed_binary_bytes_never_read_as_other_plaintext(
        pick in any::<prop::sample::Index>(),
        attr in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
        cut in any::<bool>(),
    ) {
        let items = aes_hmac_items();
        let item = pick.get(&items);
        let binaries: Vec<&String> =
            item.stored.iter().filter(|(_, v)| matches!(v, AttributeValue::B(b) if !b.is_empty())).map(|(k, _)| k).collect();
        let name = attr.get(&binaries);
        let AttributeValue::B(bytes) = &item.stored[*name] else { unreachable!() };
        let mut bytes = bytes.clone();
        let i = at.index(bytes.len());
        if cut { bytes.truncate(i) } else { bytes[i] ^= xor }
        let mut bad = item.stored.clone();
        bad.insert((*name).clone(), AttributeValue::B(bytes));
        if let Ok(plain) = decrypt_legacy_item(&item.config(materials(item)), &bad) {
            // Only a byte nobody reads (an unknown description entry) may change.
            prop_assert_eq!(canonical(&plain), canonical(&item.expected), "{} {}", item.case, name);
        }
    }
}
