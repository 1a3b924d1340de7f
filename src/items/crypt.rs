//! Key derivation and field encryption.
//!
//! * commit key = HKDF-SHA512(data key, no salt, "AWS_DBE_COMMIT_KEY" || message id, 32);
//!   commitment = HMAC-SHA512(commit key, header body)[..32].
//! * field root key = HKDF-SHA512(data key, no salt, "AWS_DBE_DERIVE_KEY" || message id, 32).
//! * Field `i` (its position among the encrypted attributes in canonical
//!   order) takes the first 44 bytes of the AES-256-CTR keystream under the
//!   field root key, initial counter block "AwsDbeField" || 0x2C || BE32(3i):
//!   cipher key = bytes 0..32, nonce = bytes 32..44.
//! * An encrypted attribute is stored as a `B` value: the original type id,
//!   then AES-256-GCM(cipher key, nonce, AAD = canonical path) ciphertext and tag.

use aes::cipher::{KeyIvInit, StreamCipher};
use zeroize::Zeroizing;

use super::value::Terminal;
use crate::crypto::{self, AeadKey, IV_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::materials::{DataKey, HashAlg};

const COMMIT_LABEL: &[u8] = b"AWS_DBE_COMMIT_KEY";
const DERIVE_LABEL: &[u8] = b"AWS_DBE_DERIVE_KEY";
const FIELD_LABEL: &[u8] = b"AwsDbeField";
const KEY_LEN: usize = 32;

type Ctr = ctr::Ctr128BE<aes::Aes256>;

/// A 32-byte derived key, zeroized on drop.
pub(crate) type Key32 = Zeroizing<[u8; KEY_LEN]>;

/// The commit key and the field root key of a message: one HKDF extraction
/// of the data key, two expansions.
pub(crate) fn message_keys(data_key: &DataKey, message_id: &[u8]) -> Result<(Key32, Key32)> {
    let mut commit_info = Vec::with_capacity(COMMIT_LABEL.len() + message_id.len());
    commit_info.extend_from_slice(COMMIT_LABEL);
    commit_info.extend_from_slice(message_id);
    let mut derive_info = Vec::with_capacity(DERIVE_LABEL.len() + message_id.len());
    derive_info.extend_from_slice(DERIVE_LABEL);
    derive_info.extend_from_slice(message_id);
    let mut commit = Zeroizing::new([0u8; KEY_LEN]);
    let mut root = Zeroizing::new([0u8; KEY_LEN]);
    crypto::hkdf(
        HashAlg::Sha512,
        None,
        data_key.as_bytes(),
        &mut [(&commit_info, &mut commit[..]), (&derive_info, &mut root[..])],
    )?;
    Ok((commit, root))
}

/// The header commitment: HMAC-SHA512(commit key, body), first 32 bytes.
pub(crate) fn commitment(commit_key: &[u8], body: &[u8]) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    crypto::hmac(HashAlg::Sha512, commit_key, &[body], &mut out)?;
    Ok(out)
}

/// Bytes of keystream per field: three AES blocks, of which 44 are used.
const FIELD_STREAM_LEN: usize = 48;

/// The cipher keys and nonces of an item's encrypted fields.
///
/// Field `i` starts at counter 3i, so the fields' counter blocks follow one
/// another: one AES-256-CTR keystream from counter 0, with the root key
/// expanded once, holds every field's key and nonce at offset 48i.
pub(crate) struct FieldKeys {
    stream: Zeroizing<Vec<u8>>,
}

impl FieldKeys {
    /// The keys of `count` encrypted fields under the field root key `root`.
    pub(crate) fn new(root: &[u8], count: usize) -> Result<Self> {
        let too_many = || Error::MalformedItem { reason: "too many encrypted attributes".into() };
        count.checked_mul(3).and_then(|blocks| u32::try_from(blocks).ok()).ok_or_else(too_many)?;
        let len = count.checked_mul(FIELD_STREAM_LEN).ok_or_else(too_many)?;
        let mut stream = Zeroizing::new(vec![0u8; len]);
        let mut block = [0u8; 16];
        block[..11].copy_from_slice(FIELD_LABEL);
        block[11] = (KEY_LEN + IV_LEN) as u8;
        let mut ctr = Ctr::new_from_slices(root, &block).map_err(|_| Error::crypto("AES-CTR key setup"))?;
        ctr.apply_keystream(&mut stream[..]);
        Ok(FieldKeys { stream })
    }

    /// The AES-GCM key and nonce of encrypted field number `index`.
    fn get(&self, index: usize) -> Result<(AeadKey, [u8; IV_LEN])> {
        let start = index
            .checked_mul(FIELD_STREAM_LEN)
            .filter(|&s| s < self.stream.len())
            .ok_or_else(|| Error::MalformedItem { reason: format!("encrypted attribute {index} has no field key") })?;
        let key = AeadKey::new(&self.stream[start..start + KEY_LEN])?;
        let mut nonce = [0u8; IV_LEN];
        nonce.copy_from_slice(&self.stream[start + KEY_LEN..start + KEY_LEN + IV_LEN]);
        Ok((key, nonce))
    }
}

/// Encrypt field `index`: the stored `B` value (type id || ciphertext || tag).
pub(crate) fn encrypt_field(keys: &FieldKeys, index: usize, path: &[u8], plain: &Terminal) -> Result<Vec<u8>> {
    let (key, nonce) = keys.get(index)?;
    let mut out = Vec::with_capacity(2 + plain.value.len() + TAG_LEN);
    out.extend_from_slice(&plain.type_id);
    out.extend_from_slice(&plain.value);
    let tag = key.seal_in_place(&nonce, path, &mut out[2..])?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Decrypt field `index` from its stored `B` value.
pub(crate) fn decrypt_field(
    keys: &FieldKeys,
    index: usize,
    path: &[u8],
    stored: &[u8],
    name: &str,
) -> Result<Terminal> {
    if stored.len() < 2 + TAG_LEN {
        return Err(Error::ItemAuthentication { reason: format!("encrypted attribute `{name}` is too short") });
    }
    let (key, nonce) = keys.get(index)?;
    let (ciphertext, tag) = stored[2..].split_at(stored.len() - 2 - TAG_LEN);
    let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| Error::crypto("tag length"))?;
    let mut buf = ciphertext.to_vec();
    key.open_in_place(&nonce, path, &mut buf, &tag).map_err(|()| Error::ItemAuthentication {
        reason: format!("encrypted attribute `{name}` did not authenticate"),
    })?;
    Ok(Terminal { type_id: [stored[0], stored[1]], value: buf })
}

#[cfg(test)]
mod tests {
    //! Checked against AES-ECB of the counter blocks and HKDF/HMAC computed
    //! directly with the RustCrypto crates.
    use aes::cipher::{BlockEncrypt, KeyInit};
    use hkdf::Hkdf;
    use hmac::{Hmac, Mac};
    use sha2::Sha512;

    use super::*;

    #[test]
    fn field_keys_are_the_ctr_keystream() {
        let root = [3u8; 32];
        let keys = FieldKeys::new(&root, 8).unwrap();
        for index in [0usize, 1, 7] {
            let start = index * FIELD_STREAM_LEN;
            let (key, nonce) = (&keys.stream[start..start + 32], &keys.stream[start + 32..start + 44]);
            let aes = aes::Aes256::new_from_slice(&root).unwrap();
            let mut stream = Vec::new();
            for j in 0..3u32 {
                let mut block = [0u8; 16];
                block[..11].copy_from_slice(b"AwsDbeField");
                block[11] = 44;
                block[12..].copy_from_slice(&(3 * index as u32 + j).to_be_bytes());
                let mut b = aes::Block::from(block);
                aes.encrypt_block(&mut b);
                stream.extend_from_slice(&b);
            }
            assert_eq!(key, &stream[..32]);
            assert_eq!(nonce, &stream[32..44]);
        }
        assert!(keys.get(8).is_err());
        assert!(FieldKeys::new(&root, usize::MAX / 2).is_err());
        assert!(FieldKeys::new(&root[..16], 1).is_err());
    }

    #[test]
    fn derivations_and_commitment() {
        let dk = DataKey::new(vec![1; 32]);
        let id = [2u8; 32];
        let mut expected = [0u8; 32];
        Hkdf::<Sha512>::new(None, &[1; 32]).expand(&[&b"AWS_DBE_COMMIT_KEY"[..], &id].concat(), &mut expected).unwrap();
        let (commit, root) = message_keys(&dk, &id).unwrap();
        assert_eq!(&commit[..], &expected);
        Hkdf::<Sha512>::new(None, &[1; 32]).expand(&[&b"AWS_DBE_DERIVE_KEY"[..], &id].concat(), &mut expected).unwrap();
        assert_eq!(&root[..], &expected);
        assert_ne!(&message_keys(&dk, &[3u8; 32]).unwrap().1[..], &expected);
        let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(&[5; 32]).unwrap();
        mac.update(b"body");
        assert_eq!(commitment(&[5; 32], b"body").unwrap()[..], mac.finalize().into_bytes()[..32]);
    }

    #[test]
    fn fields_open_only_at_their_place() {
        let root = FieldKeys::new(&[4u8; 32], 3).unwrap();
        let plain = Terminal { type_id: [0, 1], value: b"secret".to_vec() };
        let stored = encrypt_field(&root, 2, b"path", &plain).unwrap();
        assert_eq!(&stored[..2], &[0, 1]);
        assert_eq!(stored.len(), 2 + 6 + 16);
        assert_eq!(decrypt_field(&root, 2, b"path", &stored, "a").unwrap(), plain);
        assert!(decrypt_field(&root, 1, b"path", &stored, "a").is_err());
        assert!(decrypt_field(&root, 3, b"path", &stored, "a").is_err());
        assert!(decrypt_field(&root, 2, b"other", &stored, "a").is_err());
        let other = FieldKeys::new(&[5; 32], 3).unwrap();
        assert!(decrypt_field(&other, 2, b"path", &stored, "a").is_err());
        let mut bad = stored.clone();
        bad[5] ^= 1;
        assert!(decrypt_field(&root, 2, b"path", &bad, "a").is_err());
        assert!(decrypt_field(&root, 2, b"path", &stored[..17], "a").is_err());
    }
}
