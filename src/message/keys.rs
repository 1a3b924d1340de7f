//! Per-message key derivation, key commitment and header authentication.

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::crypto::{self, AeadKey, IV_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::format::COMMIT_KEY_LEN;
use crate::materials::{AlgorithmSuite, DataKey, HashAlg, Kdf};

/// The keys of one message: the AES-GCM key (schedule expanded once) and,
/// for committing suites, the commit key.
pub(crate) struct MessageKeys {
    pub(crate) aead: AeadKey,
    pub(crate) commit_key: Option<Zeroizing<[u8; COMMIT_KEY_LEN]>>,
}

/// Derive the message keys from the data key.
///
/// * identity suites: the data key is the encryption key;
/// * v1 HKDF suites: HKDF(hash, salt = zeros, info = suite id || message id);
/// * committing suites: one HKDF-SHA512 extract with salt = message id, then
///   expand `suite id || "DERIVEKEY"` (encryption key) and `"COMMITKEY"`.
pub(crate) fn derive(suite: AlgorithmSuite, data_key: &DataKey, message_id: &[u8]) -> Result<MessageKeys> {
    if data_key.len() != suite.key_len() {
        return Err(Error::InvalidKey {
            reason: format!("data key of {} bytes for suite 0x{:04X}", data_key.len(), suite.id()),
        });
    }
    let suite_id = suite.id().to_be_bytes();
    match suite.kdf() {
        Kdf::Identity => Ok(MessageKeys { aead: AeadKey::new(data_key.as_bytes())?, commit_key: None }),
        Kdf::Hkdf(hash) => {
            let mut info = Vec::with_capacity(2 + message_id.len());
            info.extend_from_slice(&suite_id);
            info.extend_from_slice(message_id);
            let mut key = Zeroizing::new(vec![0u8; suite.key_len()]);
            crypto::hkdf(hash, None, data_key.as_bytes(), &mut [(&info, &mut key[..])])?;
            Ok(MessageKeys { aead: AeadKey::new(&key)?, commit_key: None })
        }
        Kdf::HkdfCommitting => {
            let mut info = [0u8; 2 + 9];
            info[..2].copy_from_slice(&suite_id);
            info[2..].copy_from_slice(b"DERIVEKEY");
            let mut key = Zeroizing::new([0u8; 32]);
            let mut commit = Zeroizing::new([0u8; COMMIT_KEY_LEN]);
            crypto::hkdf(
                HashAlg::Sha512,
                Some(message_id),
                data_key.as_bytes(),
                &mut [(&info[..], &mut key[..]), (b"COMMITKEY", &mut commit[..])],
            )?;
            Ok(MessageKeys { aead: AeadKey::new(&key[..])?, commit_key: Some(commit) })
        }
        #[allow(unreachable_patterns)]
        _ => Err(Error::UnsupportedSuite(suite.id())),
    }
}

/// Compare the derived commit key with the header's, in constant time.
pub(crate) fn verify_commitment(keys: &MessageKeys, header_commit: &[u8]) -> Result<()> {
    match &keys.commit_key {
        Some(commit) if bool::from(commit[..].ct_eq(header_commit)) => Ok(()),
        Some(_) => Err(Error::CommitmentMismatch),
        None => Ok(()),
    }
}

/// The AAD of the header authentication: the header body bytes, then the
/// serialization of the pairs that are authenticated but not stored.
pub(crate) fn header_aad<'a>(body: &'a [u8], required: &[u8], scratch: &'a mut Vec<u8>) -> &'a [u8] {
    if required.is_empty() {
        return body;
    }
    scratch.clear();
    scratch.reserve(body.len() + required.len());
    scratch.extend_from_slice(body);
    scratch.extend_from_slice(required);
    scratch
}

/// The header authentication tag (empty plaintext, zero IV).
pub(crate) fn header_tag(keys: &MessageKeys, aad: &[u8]) -> Result<[u8; TAG_LEN]> {
    keys.aead.seal_in_place(&[0u8; IV_LEN], aad, &mut [])
}

/// Verify the header authentication tag.
pub(crate) fn verify_header(keys: &MessageKeys, iv: &[u8; IV_LEN], aad: &[u8], tag: &[u8; TAG_LEN]) -> Result<()> {
    keys.aead.open_in_place(iv, aad, &mut [], tag).map_err(|()| Error::HeaderAuthentication)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committing_derivation_matches_independent_hkdf() {
        // Independent computation with the hkdf crate directly.
        let dk = DataKey::new((0u8..32).collect());
        let mid = [7u8; 32];
        let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
        let keys = derive(suite, &dk, &mid).unwrap();
        let hk = hkdf::Hkdf::<sha2::Sha512>::new(Some(&mid), dk.as_bytes());
        let mut commit = [0u8; 32];
        hk.expand(b"COMMITKEY", &mut commit).unwrap();
        assert_eq!(&keys.commit_key.as_ref().unwrap()[..], &commit[..]);
        assert!(verify_commitment(&keys, &commit).is_ok());
        commit[31] ^= 1;
        assert!(matches!(verify_commitment(&keys, &commit), Err(Error::CommitmentMismatch)));

        // The encryption key is the DERIVEKEY expansion: check through a tag.
        let mut enc = [0u8; 32];
        hk.expand(&[&[0x04, 0x78][..], b"DERIVEKEY"].concat(), &mut enc).unwrap();
        let reference = AeadKey::new(&enc).unwrap();
        let tag = reference.seal_in_place(&[0; 12], b"aad", &mut []).unwrap();
        assert_eq!(header_tag(&keys, b"aad").unwrap(), tag);
    }

    #[test]
    fn v1_hkdf_and_identity() {
        let dk = DataKey::new(vec![3u8; 16]);
        let mid = [1u8; 16];
        let keys = derive(AlgorithmSuite::Aes128GcmIv12Tag16HkdfSha256, &dk, &mid).unwrap();
        assert!(keys.commit_key.is_none());
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(None, dk.as_bytes());
        let mut enc = [0u8; 16];
        hk.expand(&[&[0x01, 0x14][..], &mid].concat(), &mut enc).unwrap();
        let tag = AeadKey::new(&enc).unwrap().seal_in_place(&[0; 12], b"x", &mut []).unwrap();
        assert_eq!(header_tag(&keys, b"x").unwrap(), tag);

        let keys = derive(AlgorithmSuite::Aes128GcmIv12Tag16NoKdf, &dk, &mid).unwrap();
        let tag = AeadKey::new(dk.as_bytes()).unwrap().seal_in_place(&[0; 12], b"x", &mut []).unwrap();
        assert_eq!(header_tag(&keys, b"x").unwrap(), tag);
        assert!(verify_header(&keys, &[0; 12], b"y", &tag).is_err());
        assert!(derive(AlgorithmSuite::Aes256GcmIv12Tag16NoKdf, &dk, &mid).is_err());
    }
}
