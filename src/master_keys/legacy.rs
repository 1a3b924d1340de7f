//! Keys of the legacy DynamoDB Encryption Client: unwrapping its content
//! keys (AES key wrap, RFC 3394, or RSA-OAEP with SHA-256 and MGF1-SHA1, as
//! Java's `RSA/ECB/OAEPWithSHA-256AndMGF1Padding` does) and verifying its
//! item signatures (HMAC-SHA256 or SHA256withRSA, PKCS#1 v1.5).
//!
//! One implementation in memory (here) and one in a token
//! ([`crate::pkcs11`]); the legacy item reader (`crate::items::legacy`)
//! uses only these traits.

use std::fmt;

use hmac::{Hmac, Mac};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::signature::Verifier;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::materials::DataKey;

/// How a legacy content key was wrapped (`amzn-ddb-wrap-alg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LegacyWrapAlgorithm {
    /// `AESWrap`: AES key wrap, RFC 3394.
    AesWrap,
    /// `RSA/ECB/OAEPWithSHA-256AndMGF1Padding`: OAEP with SHA-256 and MGF1-SHA1.
    RsaOaepSha256Mgf1Sha1,
}

impl LegacyWrapAlgorithm {
    /// The name in the material description.
    pub fn name(self) -> &'static str {
        match self {
            LegacyWrapAlgorithm::AesWrap => "AESWrap",
            LegacyWrapAlgorithm::RsaOaepSha256Mgf1Sha1 => "RSA/ECB/OAEPWithSHA-256AndMGF1Padding",
        }
    }

    /// The algorithm a material description names, if it is one of these.
    pub fn from_name(name: &str) -> Option<Self> {
        [LegacyWrapAlgorithm::AesWrap, LegacyWrapAlgorithm::RsaOaepSha256Mgf1Sha1]
            .into_iter()
            .find(|a| a.name() == name)
    }
}

/// How a legacy item is signed (`amzn-ddb-map-signingAlg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LegacySigningAlgorithm {
    /// `HmacSHA256`.
    HmacSha256,
    /// `SHA256withRSA` (PKCS#1 v1.5).
    Sha256WithRsa,
}

impl LegacySigningAlgorithm {
    /// The name in the material description.
    pub fn name(self) -> &'static str {
        match self {
            LegacySigningAlgorithm::HmacSha256 => "HmacSHA256",
            LegacySigningAlgorithm::Sha256WithRsa => "SHA256withRSA",
        }
    }

    /// The algorithm a material description names, if it is one of these.
    pub fn from_name(name: &str) -> Option<Self> {
        [LegacySigningAlgorithm::HmacSha256, LegacySigningAlgorithm::Sha256WithRsa]
            .into_iter()
            .find(|a| a.name() == name)
    }
}

/// A key that unwraps legacy content keys.
pub trait LegacyUnwrapKey: Send + Sync + fmt::Debug {
    /// The wrapping algorithm this key runs.
    fn wrap_algorithm(&self) -> LegacyWrapAlgorithm;
    /// The content key inside `wrapped`. A key that does not open it (another
    /// key, altered bytes) is "not this key": [`Error::Keyring`] in memory,
    /// a refused unwrap from a token.
    fn unwrap_key(&self, wrapped: &[u8]) -> Result<DataKey>;
}

/// A key that verifies legacy item signatures.
pub trait LegacyVerifyKey: Send + Sync + fmt::Debug {
    /// The signing algorithm this key verifies.
    fn signing_algorithm(&self) -> LegacySigningAlgorithm;
    /// Whether `signature` signs `data`: a signature that does not verify is
    /// [`Error::ItemAuthentication`].
    fn verify(&self, data: &[u8], signature: &[u8]) -> Result<()>;
}

pub(crate) fn bad_signature(algorithm: LegacySigningAlgorithm) -> Error {
    Error::ItemAuthentication {
        reason: format!(
            "the legacy signature (`*amzn-ddb-map-sig*`, {}) does not verify: an attribute, the table name or \
             the signature was altered, or the key is another",
            algorithm.name()
        ),
    }
}

/// An AES key (128, 192 or 256 bits) in memory for AES key wrap (RFC 3394).
/// `Debug` prints its size only.
pub struct MemoryAesWrapKey {
    key: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for MemoryAesWrapKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryAesWrapKey").field("bits", &(self.key.len() * 8)).field("key", &"[REDACTED]").finish()
    }
}

impl MemoryAesWrapKey {
    /// A key from 16, 24 or 32 bytes.
    pub fn new(key: &[u8]) -> Result<Self> {
        if !matches!(key.len(), 16 | 24 | 32) {
            return Err(Error::InvalidKey {
                reason: format!("AES wrapping key of {} bytes (expected 16, 24 or 32)", key.len()),
            });
        }
        Ok(MemoryAesWrapKey { key: Zeroizing::new(key.to_vec()) })
    }
}

impl LegacyUnwrapKey for MemoryAesWrapKey {
    fn wrap_algorithm(&self) -> LegacyWrapAlgorithm {
        LegacyWrapAlgorithm::AesWrap
    }

    fn unwrap_key(&self, wrapped: &[u8]) -> Result<DataKey> {
        let not_this_key =
            || Error::keyring("AES wrapping key", "AES key unwrap failed: wrong key or altered wrapped key");
        if wrapped.len() < 24 || wrapped.len() % 8 != 0 {
            return Err(not_this_key());
        }
        let mut out = Zeroizing::new(vec![0u8; wrapped.len() - 8]);
        let result = match self.key.len() {
            16 => aes_kw::KekAes128::try_from(&self.key[..]).map(|k| k.unwrap(wrapped, &mut out)),
            24 => aes_kw::KekAes192::try_from(&self.key[..]).map(|k| k.unwrap(wrapped, &mut out)),
            _ => aes_kw::KekAes256::try_from(&self.key[..]).map(|k| k.unwrap(wrapped, &mut out)),
        };
        match result {
            Ok(Ok(())) => Ok(DataKey::new(out.to_vec())),
            _ => Err(not_this_key()),
        }
    }
}

/// An HMAC-SHA256 key in memory. `Debug` prints its size only.
pub struct MemoryHmacKey {
    key: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for MemoryHmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryHmacKey").field("bytes", &self.key.len()).field("key", &"[REDACTED]").finish()
    }
}

impl MemoryHmacKey {
    /// A key of at least 16 bytes (the legacy client's minimum, 128 bits).
    pub fn new(key: &[u8]) -> Result<Self> {
        if key.len() < 16 {
            return Err(Error::InvalidKey { reason: format!("HMAC-SHA256 key of {} bytes (at least 16)", key.len()) });
        }
        Ok(MemoryHmacKey { key: Zeroizing::new(key.to_vec()) })
    }
}

impl LegacyVerifyKey for MemoryHmacKey {
    fn signing_algorithm(&self) -> LegacySigningAlgorithm {
        LegacySigningAlgorithm::HmacSha256
    }

    fn verify(&self, data: &[u8], signature: &[u8]) -> Result<()> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).map_err(|e| Error::crypto(e.to_string()))?;
        mac.update(data);
        // Constant-time comparison.
        mac.verify_slice(signature).map_err(|_| bad_signature(LegacySigningAlgorithm::HmacSha256))
    }
}

/// An RSA key in memory for legacy items: unwraps with RSA-OAEP (SHA-256,
/// MGF1-SHA1) when it holds the private key, and verifies SHA256withRSA
/// signatures with the public key.
pub struct MemoryLegacyRsaKey {
    public: RsaPublicKey,
    private: Option<RsaPrivateKey>,
}

impl fmt::Debug for MemoryLegacyRsaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use rsa::traits::PublicKeyParts;
        f.debug_struct("MemoryLegacyRsaKey")
            .field("bits", &(self.public.size() * 8))
            .field("private_key", &if self.private.is_some() { "[REDACTED]" } else { "none" })
            .finish()
    }
}

impl MemoryLegacyRsaKey {
    /// A key pair from a PKCS#8 PEM private key (`BEGIN PRIVATE KEY`).
    pub fn from_private_pem(pem: &str) -> Result<Self> {
        let private = RsaPrivateKey::from_pkcs8_pem(pem)
            .map_err(|e| Error::InvalidKey { reason: format!("RSA private key PEM: {e}") })?;
        Ok(MemoryLegacyRsaKey { public: private.to_public_key(), private: Some(private) })
    }

    /// A public key from a SubjectPublicKeyInfo PEM (`BEGIN PUBLIC KEY`): it
    /// verifies signatures but cannot unwrap.
    pub fn from_public_pem(pem: &str) -> Result<Self> {
        let public = RsaPublicKey::from_public_key_pem(pem)
            .map_err(|e| Error::InvalidKey { reason: format!("RSA public key PEM: {e}") })?;
        Ok(MemoryLegacyRsaKey { public, private: None })
    }
}

impl LegacyUnwrapKey for MemoryLegacyRsaKey {
    fn wrap_algorithm(&self) -> LegacyWrapAlgorithm {
        LegacyWrapAlgorithm::RsaOaepSha256Mgf1Sha1
    }

    fn unwrap_key(&self, wrapped: &[u8]) -> Result<DataKey> {
        let private = self.private.as_ref().ok_or_else(|| {
            Error::keyring("RSA wrapping key", "no private key here (built from a public key, it cannot unwrap)")
        })?;
        // One reason for every failure, on purpose: no padding oracle.
        let padding = Oaep::new_with_mgf_hash::<Sha256, sha1::Sha1>();
        private.decrypt(padding, wrapped).map(DataKey::new).map_err(|_| {
            Error::keyring(
                "RSA wrapping key",
                "RSA-OAEP (SHA-256, MGF1-SHA1) unwrap failed: wrong key or altered wrapped key",
            )
        })
    }
}

impl LegacyVerifyKey for MemoryLegacyRsaKey {
    fn signing_algorithm(&self) -> LegacySigningAlgorithm {
        LegacySigningAlgorithm::Sha256WithRsa
    }

    fn verify(&self, data: &[u8], signature: &[u8]) -> Result<()> {
        let bad = || bad_signature(LegacySigningAlgorithm::Sha256WithRsa);
        let signature = Signature::try_from(signature).map_err(|_| bad())?;
        VerifyingKey::<Sha256>::new(self.public.clone()).verify(data, &signature).map_err(|_| bad())
    }
}

impl<K: LegacyUnwrapKey + ?Sized> LegacyUnwrapKey for std::sync::Arc<K> {
    fn wrap_algorithm(&self) -> LegacyWrapAlgorithm {
        (**self).wrap_algorithm()
    }
    fn unwrap_key(&self, wrapped: &[u8]) -> Result<DataKey> {
        (**self).unwrap_key(wrapped)
    }
}

impl<K: LegacyVerifyKey + ?Sized> LegacyVerifyKey for std::sync::Arc<K> {
    fn signing_algorithm(&self) -> LegacySigningAlgorithm {
        (**self).signing_algorithm()
    }
    fn verify(&self, data: &[u8], signature: &[u8]) -> Result<()> {
        (**self).verify(data, signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 3394 section 4.6: 256-bit key data with a 256-bit KEK.
    const KEK: &str = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";
    const DATA: &str = "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F";
    const WRAPPED: &str = "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn aes_key_wrap_rfc3394_vector_unwraps() {
        let key = MemoryAesWrapKey::new(&hex(KEK)).unwrap();
        assert_eq!(key.unwrap_key(&hex(WRAPPED)).unwrap().as_bytes(), &hex(DATA)[..]);
    }

    #[test]
    fn aes_key_wrap_refuses_altered_short_and_other_key() {
        let key = MemoryAesWrapKey::new(&hex(KEK)).unwrap();
        let mut altered = hex(WRAPPED);
        altered[9] ^= 1;
        for bad in [altered, hex(WRAPPED)[..16].to_vec(), hex(WRAPPED)[..39].to_vec()] {
            assert_eq!(key.unwrap_key(&bad).unwrap_err().kind(), crate::ErrorKind::NotThisKey);
        }
        let other = MemoryAesWrapKey::new(&[9; 32]).unwrap();
        assert_eq!(other.unwrap_key(&hex(WRAPPED)).unwrap_err().kind(), crate::ErrorKind::NotThisKey);
        assert!(MemoryAesWrapKey::new(&[0; 20]).is_err());
        assert!(!format!("{key:?}").contains("00"));
    }

    #[test]
    fn hmac_verifies_and_refuses() {
        // RFC 4231 test case 2 is for a 4-byte key; use a 20-byte key (case 1).
        let key = MemoryHmacKey::new(&[0x0b; 20]).unwrap();
        let tag = hex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
        key.verify(b"Hi There", &tag).unwrap();
        let mut bad = tag.clone();
        bad[31] ^= 1;
        assert_eq!(key.verify(b"Hi There", &bad).unwrap_err().kind(), crate::ErrorKind::NotAuthentic);
        assert_eq!(key.verify(b"Hi there", &tag).unwrap_err().kind(), crate::ErrorKind::NotAuthentic);
        assert_eq!(key.verify(b"Hi There", &tag[..31]).unwrap_err().kind(), crate::ErrorKind::NotAuthentic);
        assert!(MemoryHmacKey::new(&[1; 15]).is_err());
    }

    #[test]
    fn algorithm_names_round_trip() {
        for a in [LegacyWrapAlgorithm::AesWrap, LegacyWrapAlgorithm::RsaOaepSha256Mgf1Sha1] {
            assert_eq!(LegacyWrapAlgorithm::from_name(a.name()), Some(a));
        }
        for a in [LegacySigningAlgorithm::HmacSha256, LegacySigningAlgorithm::Sha256WithRsa] {
            assert_eq!(LegacySigningAlgorithm::from_name(a.name()), Some(a));
        }
        assert_eq!(LegacyWrapAlgorithm::from_name("AES"), None);
    }
}
