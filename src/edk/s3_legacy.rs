//! The legacy (V1 object) wrappings of S3 client-side encryption, read only:
//! `AESWrap` (RFC 3394), `AES` (AES/ECB/PKCS5Padding, the Java default for
//! "AES") and `RSA` (RSA/ECB/PKCS1Padding). The AES ones need the wrapping
//! key's bytes in memory (no master-key operation does ECB or RFC 3394);
//! `RSA` runs on any [`RsaKey`], a token's included.

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, KeyInit};
use cbc::cipher::block_padding::Pkcs7;
use zeroize::Zeroizing;

use crate::crypto::RsaPadding;
use crate::error::{Error, Result};
use crate::master_keys::RsaKey;
use crate::materials::DataKey;

fn failed(what: &str) -> Error {
    Error::keyring(format!("S3 legacy {what}"), "`x-amz-key` did not open: wrong wrapping key or altered `x-amz-key`")
}

/// `AESWrap`: RFC 3394 key unwrap.
pub(crate) fn unwrap_aes_wrap(key: &[u8], edk: &[u8]) -> Result<DataKey> {
    let len = edk.len().checked_sub(8).filter(|l| *l >= 16 && l % 8 == 0).ok_or_else(|| failed("AESWrap"))?;
    let mut out = Zeroizing::new(vec![0u8; len]);
    let done = match key.len() {
        16 => aes_kw::KekAes128::try_from(key).map(|k| k.unwrap(edk, &mut out)),
        24 => aes_kw::KekAes192::try_from(key).map(|k| k.unwrap(edk, &mut out)),
        32 => aes_kw::KekAes256::try_from(key).map(|k| k.unwrap(edk, &mut out)),
        _ => return Err(failed("AESWrap")),
    };
    match done {
        Ok(Ok(())) => Ok(DataKey::new(std::mem::take(&mut *out))),
        _ => Err(failed("AESWrap")),
    }
}

fn ecb_decrypt<C: BlockDecrypt + KeyInit>(key: &[u8], buf: &mut [u8]) -> Result<()> {
    let cipher = C::new_from_slice(key).map_err(|_| failed("AES"))?;
    for block in buf.chunks_exact_mut(16) {
        cipher.decrypt_block(GenericArray::from_mut_slice(block));
    }
    Ok(())
}

/// `AES`: AES/ECB with PKCS#5 padding (what the old clients wrote without
/// `x-amz-wrap-alg`). Not authenticated: a wrong key is caught only by the
/// padding or the key length, and otherwise by the content decrypting to noise.
pub(crate) fn unwrap_aes_ecb(key: &[u8], edk: &[u8]) -> Result<DataKey> {
    if edk.is_empty() || edk.len() % 16 != 0 {
        return Err(failed("AES"));
    }
    let mut buf = Zeroizing::new(edk.to_vec());
    match key.len() {
        16 => ecb_decrypt::<aes::Aes128>(key, &mut buf)?,
        24 => ecb_decrypt::<aes::Aes192>(key, &mut buf)?,
        32 => ecb_decrypt::<aes::Aes256>(key, &mut buf)?,
        _ => return Err(failed("AES")),
    }
    let len = {
        use cbc::cipher::block_padding::Padding;
        let last = aes::Block::from_slice(&buf[buf.len() - 16..]);
        <Pkcs7 as Padding<aes::cipher::consts::U16>>::unpad(last).map_err(|_| failed("AES"))?.len() + buf.len() - 16
    };
    buf.truncate(len);
    Ok(DataKey::new(std::mem::take(&mut *buf)))
}

/// `RSA`: RSA PKCS#1 v1.5 decryption of the data key.
pub(crate) fn unwrap_rsa_pkcs1<K: RsaKey + ?Sized>(key: &K, edk: &[u8]) -> Result<DataKey> {
    key.decrypt(RsaPadding::Pkcs1, edk)
}

#[cfg(test)]
mod tests {
    use aes::cipher::{BlockEncrypt, KeyInit};

    use super::*;

    #[test]
    fn aes_wrap_matches_rfc3394_vector() {
        // RFC 3394 section 4.6: 256-bit KEK, 256-bit key data.
        let kek: Vec<u8> = (0u8..32).collect();
        let wrapped = hex("28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21");
        let key = unwrap_aes_wrap(&kek, &wrapped).unwrap();
        assert_eq!(key.as_bytes(), hex("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F"));
        let mut bad = wrapped.clone();
        bad[3] ^= 1;
        assert!(unwrap_aes_wrap(&kek, &bad).is_err());
    }

    #[test]
    fn aes_ecb_pkcs5_unwraps() {
        let kek = [7u8; 32];
        let data_key = [9u8; 32];
        // ECB of the key and one full padding block, computed with the block cipher.
        let cipher = aes::Aes256::new_from_slice(&kek).unwrap();
        let mut buf = data_key.to_vec();
        buf.extend_from_slice(&[16u8; 16]);
        for block in buf.chunks_exact_mut(16) {
            cipher.encrypt_block(GenericArray::from_mut_slice(block));
        }
        assert_eq!(unwrap_aes_ecb(&kek, &buf).unwrap().as_bytes(), &data_key);
        assert!(
            unwrap_aes_ecb(&[8u8; 32], &buf).is_err()
                || unwrap_aes_ecb(&[8u8; 32], &buf).unwrap().as_bytes() != data_key
        );
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }
}
