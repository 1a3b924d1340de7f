//! Intermediate key wrapping: the EDK layout of the suites that carry a
//! symmetric signing key (the DynamoDB item suites 0x6700 and 0x6701).
//!
//! Per EDK, a fresh 32-byte intermediate key `ik`:
//! * `prk = HKDF-Extract-SHA512(no salt, ik)`;
//! * key encryption key `kek = HKDF-Expand(prk, "AWS_MPL_INTERMEDIATE_KEYWRAP_ENC", 32)`;
//! * symmetric signing key `mac = HKDF-Expand(prk, "AWS_MPL_INTERMEDIATE_KEYWRAP_MAC", 32)`;
//! * the data key is sealed under `kek` with AES-256-GCM, a zero IV and the
//!   serialized full encryption context as AAD (32 + 16 bytes);
//! * the inner layout (raw AES, raw RSA, in memory or in a token) wraps `ik`
//!   as it would wrap a data key.
//!
//! EDK = the inner layout's EDK, its ciphertext prefixed with the sealed
//! data key. Whether an EDK is this key's is the inner layout's decision.

use zeroize::Zeroizing;

use super::{EdkContext, EdkLayout};
use crate::crypto::{self, AeadKey, IV_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::materials::{DataKey, EncryptedDataKey, HashAlg};

/// HKDF info of the key encryption key.
const ENC_INFO: &[u8] = b"AWS_MPL_INTERMEDIATE_KEYWRAP_ENC";
/// HKDF info of the symmetric signing key.
const MAC_INFO: &[u8] = b"AWS_MPL_INTERMEDIATE_KEYWRAP_MAC";
/// Length of the intermediate key, the key encryption key and the signing key.
const KEY_LEN: usize = 32;

/// The key encryption key and the symmetric signing key of one intermediate key.
fn derive(intermediate: &[u8]) -> Result<(Zeroizing<[u8; KEY_LEN]>, DataKey)> {
    let mut kek = Zeroizing::new([0u8; KEY_LEN]);
    let mut mac = Zeroizing::new(vec![0u8; KEY_LEN]);
    crypto::hkdf(HashAlg::Sha512, None, intermediate, &mut [(ENC_INFO, &mut kek[..]), (MAC_INFO, &mut mac[..])])?;
    Ok((kek, DataKey::new(std::mem::take(&mut *mac))))
}

/// Wrap `data_key` through a fresh intermediate key wrapped by `inner`.
/// Returns the EDK and its symmetric signing key.
pub(crate) fn wrap(
    inner: &dyn EdkLayout,
    data_key: &DataKey,
    context: &EdkContext<'_>,
) -> Result<(EncryptedDataKey, DataKey)> {
    let intermediate = DataKey::generate(KEY_LEN)?;
    let (kek, mac) = derive(intermediate.as_bytes())?;
    let mut sealed = data_key.as_bytes().to_vec();
    let tag = AeadKey::new(&kek[..])?.seal_in_place(&[0u8; IV_LEN], context.serialized()?, &mut sealed)?;
    sealed.extend_from_slice(&tag);
    let mut edk = inner.wrap(&intermediate, context)?;
    sealed.extend_from_slice(&edk.ciphertext);
    edk.ciphertext = sealed;
    Ok((edk, mac))
}

/// `None` when `edk` is not `inner`'s; otherwise the data key and the
/// symmetric signing key, or why the EDK did not open.
pub(crate) fn unwrap(
    inner: &dyn EdkLayout,
    edk: &EncryptedDataKey,
    context: &EdkContext<'_>,
    key_len: usize,
) -> Option<Result<(DataKey, DataKey)>> {
    let prefix = key_len + TAG_LEN;
    let (sealed, wrapped) = edk.ciphertext.split_at(prefix.min(edk.ciphertext.len()));
    let inner_edk = EncryptedDataKey {
        provider_id: edk.provider_id.clone(),
        provider_info: edk.provider_info.clone(),
        ciphertext: wrapped.to_vec(),
    };
    let opened = inner.unwrap(&inner_edk, context, KEY_LEN)?;
    Some(opened.and_then(|intermediate| open(&intermediate, sealed, context, key_len)))
}

fn open(intermediate: &DataKey, sealed: &[u8], context: &EdkContext<'_>, key_len: usize) -> Result<(DataKey, DataKey)> {
    let failed = |reason: &str| Error::keyring("intermediate key wrapping", reason);
    if intermediate.len() != KEY_LEN {
        return Err(failed("the intermediate key has the wrong length"));
    }
    if sealed.len() != key_len + TAG_LEN {
        return Err(failed("the EDK is too short to hold the wrapped data key"));
    }
    let (kek, mac) = derive(intermediate.as_bytes())?;
    let (ciphertext, tag) = sealed.split_at(key_len);
    let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| failed("bad tag length"))?;
    let mut key = Zeroizing::new(ciphertext.to_vec());
    AeadKey::new(&kek[..])?
        .open_in_place(&[0u8; IV_LEN], context.serialized()?, &mut key, &tag)
        .map_err(|()| failed("the data key did not authenticate under the intermediate key"))?;
    Ok((DataKey::new(std::mem::take(&mut *key)), mac))
}

#[cfg(test)]
mod tests {
    //! The layout's bytes checked with HKDF and AES-GCM computed directly
    //! (the `hkdf` and `aes-gcm` crates), independent of the crate's seam.
    use aes_gcm::aead::{AeadInPlace, KeyInit};
    use aes_gcm::{Aes256Gcm, Nonce, Tag};
    use sha2::Sha512;

    use super::*;
    use crate::edk::{EdkName, EsdkRawAes};
    use crate::master_keys::MemoryAesKey;
    use crate::materials::EncryptionContext;

    fn layout(key: &[u8]) -> EsdkRawAes<MemoryAesKey> {
        EsdkRawAes {
            name: EdkName::new("ns".into(), "name".into(), crate::edk::raw_aes_wire::PROVIDER_INFO_SUFFIX_LEN).unwrap(),
            key: MemoryAesKey::new(key).unwrap(),
        }
    }

    #[test]
    fn layout_matches_an_independent_computation() {
        let wrapping = [9u8; 32];
        let layout = layout(&wrapping);
        let mut context = EncryptionContext::from_pairs([("a", "1")]).unwrap();
        context.insert_reserved("aws-crypto-table-name", "t".into());
        let data_key = DataKey::new((0u8..32).collect());
        let ctx = EdkContext::new(&context);
        let (edk, mac) = wrap(&layout, &data_key, &ctx).unwrap();
        assert_eq!(edk.ciphertext.len(), 48 + 48);

        // The inner EDK opens to the intermediate key with plain AES-GCM.
        let aad = context.serialize().unwrap();
        let info = &edk.provider_info;
        let iv = &info[info.len() - 12..];
        let mut ik = edk.ciphertext[48..80].to_vec();
        Aes256Gcm::new_from_slice(&wrapping)
            .unwrap()
            .decrypt_in_place_detached(Nonce::from_slice(iv), &aad, &mut ik, Tag::from_slice(&edk.ciphertext[80..]))
            .unwrap();
        // Keys from the intermediate key, then the data key under the KEK.
        let hk = hkdf::Hkdf::<Sha512>::new(None, &ik);
        let (mut kek, mut expected_mac) = ([0u8; 32], [0u8; 32]);
        hk.expand(b"AWS_MPL_INTERMEDIATE_KEYWRAP_ENC", &mut kek).unwrap();
        hk.expand(b"AWS_MPL_INTERMEDIATE_KEYWRAP_MAC", &mut expected_mac).unwrap();
        assert_eq!(mac.as_bytes(), &expected_mac);
        let mut dk = edk.ciphertext[..32].to_vec();
        Aes256Gcm::new_from_slice(&kek)
            .unwrap()
            .decrypt_in_place_detached(
                Nonce::from_slice(&[0; 12]),
                &aad,
                &mut dk,
                Tag::from_slice(&edk.ciphertext[32..48]),
            )
            .unwrap();
        assert_eq!(dk, data_key.as_bytes());

        // And the layout opens its own EDK, with the same signing key.
        let (opened, opened_mac) = unwrap(&layout, &edk, &ctx, 32).unwrap().unwrap();
        assert_eq!(opened, data_key);
        assert_eq!(opened_mac, mac);
    }

    #[test]
    fn tampered_short_foreign_and_other_context_edks_fail() {
        let layout = layout(&[9u8; 32]);
        let context = EncryptionContext::from_pairs([("a", "1")]).unwrap();
        let ctx = EdkContext::new(&context);
        let (edk, _) = wrap(&layout, &DataKey::new(vec![5; 32]), &ctx).unwrap();
        for i in [0usize, 40, 60, 95] {
            let mut bad = edk.clone();
            bad.ciphertext[i] ^= 1;
            assert!(unwrap(&layout, &bad, &ctx, 32).unwrap().is_err(), "byte {i}");
        }
        let short = EncryptedDataKey { ciphertext: edk.ciphertext[..40].to_vec(), ..edk.clone() };
        assert!(unwrap(&layout, &short, &ctx, 32).unwrap().is_err());
        let foreign = EncryptedDataKey { provider_id: "other".into(), ..edk.clone() };
        assert!(unwrap(&layout, &foreign, &ctx, 32).is_none());
        let other = EncryptionContext::from_pairs([("a", "2")]).unwrap();
        assert!(unwrap(&layout, &edk, &EdkContext::new(&other), 32).unwrap().is_err());
        let wrong_key = self::layout(&[8u8; 32]);
        assert!(unwrap(&wrong_key, &edk, &ctx, 32).unwrap().is_err());
    }
}
