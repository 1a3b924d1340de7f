//! aws-lc-rs backend of the primitive seam (feature `aws-lc`).
//!
//! AES-GCM, HKDF, SHA-2, ECDSA signing and verification, ECDSA key
//! generation, RSA encryption and decryption (PKCS#1 v1.5 and OAEP with
//! SHA-1/256/384/512) and randomness run in AWS-LC. Results are byte for byte
//! those of the pure-Rust backend wherever the operation is deterministic.
//!
//! aws-lc-rs has no PEM support, no PKCS#1 (`RSAPrivateKey`) parser, no
//! conversion of a raw `r || s` signature to DER and no compression of a
//! foreign EC point, so those encoding steps (none of them on a per-message
//! hot path) reuse the pure-Rust code. Key material parsed that way is handed
//! to AWS-LC as PKCS#8 or SubjectPublicKeyInfo DER.
//!
//! AWS-LC accepts RSA moduli of 2048 to 8192 bits for encryption; a key
//! outside that range is still usable and is then served by the pure-Rust
//! implementation, so that both backends accept the same keys.

use std::fmt;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_192_GCM, AES_256_GCM};
use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsBigEndian, EcPublicKeyCompressedBin};
use aws_lc_rs::rand::SecureRandom;
use aws_lc_rs::rsa::{
    OaepAlgorithm, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, Pkcs1PrivateDecryptingKey,
    Pkcs1PublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256,
    OAEP_SHA384_MGF1SHA384, OAEP_SHA512_MGF1SHA512,
};
use aws_lc_rs::signature::{
    EcdsaKeyPair, EcdsaSigningAlgorithm, EcdsaVerificationAlgorithm, KeyPair, UnparsedPublicKey,
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1, ECDSA_P384_SHA384_ASN1_SIGNING,
};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
use zeroize::Zeroizing;

use super::{rustcrypto, RsaPadding, IV_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::materials::{DataKey, FooterSigner, HashAlg, SignatureCurve};

pub(crate) fn fill_random(buf: &mut [u8]) -> Result<()> {
    aws_lc_rs::rand::SystemRandom::new().fill(buf).map_err(|_| Error::crypto("AWS-LC random generator failed"))
}

/// SHA-512 of `data`.
pub(crate) fn sha512(data: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out.copy_from_slice(digest::digest(&digest::SHA512, data).as_ref());
    out
}

/// An AES-GCM key (128, 192 or 256 bits) with its key schedule expanded once.
pub(crate) struct AeadKey(LessSafeKey);

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AeadKey([REDACTED])")
    }
}

impl AeadKey {
    pub(crate) fn new(key: &[u8]) -> Result<Self> {
        let alg = match key.len() {
            16 => &AES_128_GCM,
            24 => &AES_192_GCM,
            32 => &AES_256_GCM,
            n => return Err(Error::InvalidKey { reason: format!("AES key of {n} bytes (expected 16, 24 or 32)") }),
        };
        let unbound = UnboundKey::new(alg, key).map_err(|_| Error::crypto("AES-GCM key setup"))?;
        Ok(AeadKey(LessSafeKey::new(unbound)))
    }

    /// Encrypt `buf` in place; returns the tag.
    pub(crate) fn seal_in_place(&self, iv: &[u8; IV_LEN], aad: &[u8], buf: &mut [u8]) -> Result<[u8; TAG_LEN]> {
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(*iv), Aad::from(aad), buf)
            .map_err(|_| Error::crypto("AES-GCM seal"))?;
        let mut out = [0u8; TAG_LEN];
        let tag = tag.as_ref();
        if tag.len() != TAG_LEN {
            return Err(Error::crypto("AES-GCM seal: unexpected tag length"));
        }
        out.copy_from_slice(tag);
        Ok(out)
    }

    /// Verify `tag` and decrypt `buf` in place. On failure the contents of
    /// `buf` are unspecified and must be discarded; `Err(())` is returned so
    /// callers choose the error that names the field.
    pub(crate) fn open_in_place(
        &self,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), ()> {
        self.0
            .open_in_place_separate_tag(Nonce::assume_unique_for_key(*iv), Aad::from(aad), tag, buf)
            .map(|_| ())
            .map_err(|_| ())
    }

    /// Verify `tag` and decrypt `ciphertext` into `out` (same length), with
    /// no copy in between. On failure `out` is zeroed.
    pub(crate) fn open_to(
        &self,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; TAG_LEN],
        out: &mut [u8],
    ) -> Result<(), ()> {
        if out.len() != ciphertext.len() {
            return Err(());
        }
        self.0
            .open_separate_gather(Nonce::assume_unique_for_key(*iv), Aad::from(aad), ciphertext, tag, out)
            .map_err(|_| out.fill(0))
    }

    /// Verify `tag` and append the decryption of `ciphertext` to `out`. On
    /// failure `out` keeps its length and the bytes written past it are zeroed.
    pub(crate) fn open_append(
        &self,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; TAG_LEN],
        out: &mut Vec<u8>,
    ) -> Result<(), ()> {
        let start = out.len();
        out.resize(start + ciphertext.len(), 0);
        self.open_to(iv, aad, ciphertext, tag, &mut out[start..]).inspect_err(|()| out.truncate(start))
    }
}

/// Output length for HKDF-Expand.
struct OutLen(usize);

impl aws_lc_rs::hkdf::KeyType for OutLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF (extract then expand) into each `(info, out)` pair with one extraction.
/// `salt = None` means a zero salt of the hash length.
pub(crate) fn hkdf(hash: HashAlg, salt: Option<&[u8]>, ikm: &[u8], outputs: &mut [(&[u8], &mut [u8])]) -> Result<()> {
    use aws_lc_rs::hkdf::{Salt, HKDF_SHA256, HKDF_SHA384, HKDF_SHA512};
    let (alg, hash_len) = match hash {
        HashAlg::Sha256 => (HKDF_SHA256, 32),
        HashAlg::Sha384 => (HKDF_SHA384, 48),
        HashAlg::Sha512 => (HKDF_SHA512, 64),
    };
    let zero = [0u8; 64];
    let salt = match salt {
        Some(s) => s,
        None => zero.get(..hash_len).ok_or_else(|| Error::crypto("HKDF salt length"))?,
    };
    let prk = Salt::new(alg, salt).extract(ikm);
    for (info, out) in outputs.iter_mut() {
        let info = [*info];
        prk.expand(&info, OutLen(out.len()))
            .and_then(|okm| okm.fill(out))
            .map_err(|_| Error::crypto("HKDF output too long"))?;
    }
    Ok(())
}

/// Incremental hash of header and body for the footer signature.
#[derive(Clone)]
pub(crate) struct SignatureHasher(digest::Context);

impl SignatureHasher {
    pub(crate) fn new(curve: SignatureCurve) -> Self {
        SignatureHasher(digest::Context::new(match curve {
            SignatureCurve::P256 => &digest::SHA256,
            SignatureCurve::P384 => &digest::SHA384,
        }))
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub(crate) fn finalize(self) -> Vec<u8> {
        self.0.finish().as_ref().to_vec()
    }
}

fn signing_alg(curve: SignatureCurve) -> &'static EcdsaSigningAlgorithm {
    match curve {
        SignatureCurve::P256 => &ECDSA_P256_SHA256_ASN1_SIGNING,
        SignatureCurve::P384 => &ECDSA_P384_SHA384_ASN1_SIGNING,
    }
}

fn verification_alg(curve: SignatureCurve) -> &'static EcdsaVerificationAlgorithm {
    match curve {
        SignatureCurve::P256 => &ECDSA_P256_SHA256_ASN1,
        SignatureCurve::P384 => &ECDSA_P384_SHA384_ASN1,
    }
}

fn digest_alg(curve: SignatureCurve) -> &'static digest::Algorithm {
    match curve {
        SignatureCurve::P256 => &digest::SHA256,
        SignatureCurve::P384 => &digest::SHA384,
    }
}

/// An in-process ECDSA footer signer; the default CMM makes a fresh one per
/// message. The private key lives in AWS-LC memory, which is cleansed when
/// it is freed.
pub struct SoftwareSigner {
    key: EcdsaKeyPair,
    curve: SignatureCurve,
    public: Vec<u8>,
}

impl fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareSigner").field("curve", &self.curve).field("key", &"[REDACTED]").finish()
    }
}

impl SoftwareSigner {
    /// A fresh random key on `curve`.
    ///
    /// # Panics
    ///
    /// Only if AWS-LC cannot generate an EC key at all (its random generator
    /// failed), which the pure-Rust backend would treat the same way.
    pub fn generate(curve: SignatureCurve) -> Self {
        let key = EcdsaKeyPair::generate(signing_alg(curve)).expect("AWS-LC EC key generation failed");
        let public = key
            .public_key()
            .as_be_bytes()
            .map(|b: EcPublicKeyCompressedBin<'static>| b.as_ref().to_vec())
            .unwrap_or_else(|_| rustcrypto_compress(curve, key.public_key().as_ref()));
        SoftwareSigner { key, curve, public }
    }
}

fn rustcrypto_compress(curve: SignatureCurve, sec1: &[u8]) -> Vec<u8> {
    rustcrypto::ec_compress_point(curve, sec1).unwrap_or_default()
}

impl FooterSigner for SoftwareSigner {
    fn curve(&self) -> SignatureCurve {
        self.curve
    }

    fn public_key(&self) -> Vec<u8> {
        self.public.clone()
    }

    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>> {
        let d = digest::Digest::import_less_safe(digest, digest_alg(self.curve))
            .map_err(|_| Error::crypto(format!("ECDSA sign: digest of {} bytes for {:?}", digest.len(), self.curve)))?;
        let sig = self.key.sign_digest(&d).map_err(|_| Error::crypto("ECDSA sign failed"))?;
        Ok(sig.as_ref().to_vec())
    }
}

pub(crate) fn ecdsa_verify_digest(curve: SignatureCurve, public_key: &[u8], digest: &[u8], der: &[u8]) -> Result<()> {
    let bad = |what: &str| Error::Signature { reason: what.to_owned() };
    if public_key.len() != curve.compressed_point_len() && public_key.len() != 2 * curve.compressed_point_len() - 1 {
        return Err(bad(match curve {
            SignatureCurve::P256 => "invalid P-256 public key",
            SignatureCurve::P384 => "invalid P-384 public key",
        }));
    }
    let d =
        digest::Digest::import_less_safe(digest, digest_alg(curve)).map_err(|_| bad("digest of the wrong length"))?;
    let key = UnparsedPublicKey::new(verification_alg(curve), public_key);
    let parsed = key.parse().map_err(|_| {
        bad(match curve {
            SignatureCurve::P256 => "invalid P-256 public key",
            SignatureCurve::P384 => "invalid P-384 public key",
        })
    })?;
    parsed.verify_digest_sig(&d, der).map_err(|_| bad("the footer signature does not verify"))
}

// Encoding conversions: aws-lc-rs has no API for these; see the module docs.
pub(crate) use rustcrypto::{ec_compress_point, ec_public_key_from_pem, ec_public_key_pem, ecdsa_raw_to_der};

fn oaep_alg(padding: RsaPadding) -> Option<&'static OaepAlgorithm> {
    match padding {
        RsaPadding::Pkcs1 => None,
        RsaPadding::OaepSha1 => Some(&OAEP_SHA1_MGF1SHA1),
        RsaPadding::OaepSha256 => Some(&OAEP_SHA256_MGF1SHA256),
        RsaPadding::OaepSha384 => Some(&OAEP_SHA384_MGF1SHA384),
        RsaPadding::OaepSha512 => Some(&OAEP_SHA512_MGF1SHA512),
    }
}

/// An RSA public key.
#[derive(Clone)]
pub struct RsaPublicKey {
    rc: rustcrypto::RsaPublicKey,
    /// `None` when AWS-LC refuses the modulus size; the pure-Rust key serves then.
    lc: Option<PublicEncryptingKey>,
}

impl PartialEq for RsaPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.rc == other.rc
    }
}

impl Eq for RsaPublicKey {}

impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaPublicKey({} bits)", self.bits())
    }
}

impl RsaPublicKey {
    fn from_rustcrypto(rc: rustcrypto::RsaPublicKey) -> Self {
        let lc = rc.inner().to_public_key_der().ok().and_then(|der| PublicEncryptingKey::from_der(der.as_bytes()).ok());
        RsaPublicKey { rc, lc }
    }

    /// Parse a PEM public key (SubjectPublicKeyInfo or PKCS#1).
    pub fn from_pem(pem: &str) -> Result<Self> {
        rustcrypto::RsaPublicKey::from_pem(pem).map(Self::from_rustcrypto)
    }

    /// Build from modulus and public exponent (big-endian), as a token reports them.
    pub fn from_components(modulus: &[u8], exponent: &[u8]) -> Result<Self> {
        rustcrypto::RsaPublicKey::from_components(modulus, exponent).map(Self::from_rustcrypto)
    }

    /// PEM (SubjectPublicKeyInfo).
    pub fn to_pem(&self) -> Result<String> {
        self.rc.to_pem()
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.rc.bits()
    }

    /// Encrypt `msg` with `padding`.
    pub fn encrypt(&self, padding: RsaPadding, msg: &[u8]) -> Result<Vec<u8>> {
        let Some(lc) = &self.lc else {
            return self.rc.encrypt(padding, msg);
        };
        let fail = |_| Error::crypto(format!("RSA encrypt ({padding:?}) failed"));
        let mut out = vec![0u8; lc.key_size_bytes()];
        let len = match oaep_alg(padding) {
            None => {
                let key = Pkcs1PublicEncryptingKey::new(lc.clone()).map_err(fail)?;
                key.encrypt(msg, &mut out).map_err(fail)?.len()
            }
            Some(alg) => {
                let key = OaepPublicEncryptingKey::new(lc.clone()).map_err(fail)?;
                key.encrypt(alg, msg, &mut out, None).map_err(fail)?.len()
            }
        };
        out.truncate(len);
        Ok(out)
    }
}

/// An RSA private key held in process (zeroized on drop; AWS-LC cleanses its
/// copy when it is freed).
#[derive(Clone)]
pub struct RsaPrivateKey {
    rc: rustcrypto::RsaPrivateKey,
    /// `None` when AWS-LC refuses the modulus size; the pure-Rust key serves then.
    lc: Option<PrivateDecryptingKey>,
}

impl fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaPrivateKey({} bits, [REDACTED])", self.rc.public_key().bits())
    }
}

impl RsaPrivateKey {
    /// Parse a PEM private key (PKCS#8 or PKCS#1).
    pub fn from_pem(pem: &str) -> Result<Self> {
        let rc = rustcrypto::RsaPrivateKey::from_pem(pem)?;
        let lc = rc.inner().to_pkcs8_der().ok().and_then(|der| PrivateDecryptingKey::from_pkcs8(der.as_bytes()).ok());
        Ok(RsaPrivateKey { rc, lc })
    }

    /// The public half.
    pub fn public_key(&self) -> RsaPublicKey {
        let lc = self.lc.as_ref().map(PrivateDecryptingKey::public_key);
        RsaPublicKey { rc: self.rc.public_key(), lc }
    }

    /// Decrypt `ct` with `padding`. The error says nothing about why, on purpose.
    pub fn decrypt(&self, padding: RsaPadding, ct: &[u8]) -> Result<DataKey> {
        let Some(lc) = &self.lc else {
            return self.rc.decrypt(padding, ct);
        };
        let fail = |_| Error::crypto(format!("RSA decrypt ({padding:?}) failed"));
        let mut out = Zeroizing::new(vec![0u8; lc.key_size_bytes()]);
        let len = match oaep_alg(padding) {
            None => {
                let key = Pkcs1PrivateDecryptingKey::new(lc.clone()).map_err(fail)?;
                key.decrypt(ct, &mut out).map_err(fail)?.len()
            }
            Some(alg) => {
                let key = OaepPrivateDecryptingKey::new(lc.clone()).map_err(fail)?;
                key.decrypt(alg, ct, &mut out, None).map_err(fail)?.len()
            }
        };
        let plain = out.get(..len).ok_or_else(|| Error::crypto(format!("RSA decrypt ({padding:?}) failed")))?;
        Ok(DataKey::new(plain.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    //! Cross-backend checks: what one backend produces, the other accepts,
    //! byte for byte.

    use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};

    use super::*;

    const SIZES: [usize; 3] = [16, 24, 32];

    #[test]
    fn aes_gcm_matches_rustcrypto_both_ways() {
        let iv = [7u8; IV_LEN];
        let aad = b"header bytes";
        for len in SIZES {
            let key: Vec<u8> = (0..len as u8).collect();
            let lc = AeadKey::new(&key).unwrap();
            let rc = rustcrypto::AeadKey::new(&key).unwrap();
            for plain_len in [0usize, 1, 15, 16, 17, 4096] {
                let plain: Vec<u8> = (0..plain_len).map(|i| (i * 31 % 251) as u8).collect();
                let mut a = plain.clone();
                let mut b = plain.clone();
                let tag_a = lc.seal_in_place(&iv, aad, &mut a).unwrap();
                let tag_b = rc.seal_in_place(&iv, aad, &mut b).unwrap();
                assert_eq!(a, b, "ciphertext differs for key of {len} bytes");
                assert_eq!(tag_a, tag_b);
                if plain_len > 0 {
                    assert_ne!(a, plain);
                }
                // Each opens the other's output.
                let mut x = a.clone();
                rc.open_in_place(&iv, aad, &mut x, &tag_a).unwrap();
                assert_eq!(x, plain);
                let mut y = b.clone();
                lc.open_in_place(&iv, aad, &mut y, &tag_b).unwrap();
                assert_eq!(y, plain);
                // Tampering fails in both.
                let mut bad_tag = tag_a;
                bad_tag[0] ^= 1;
                assert!(lc.open_in_place(&iv, aad, &mut a.clone(), &bad_tag).is_err());
                assert!(lc.open_in_place(&iv, b"other aad", &mut a.clone(), &tag_a).is_err());
                if plain_len > 0 {
                    let mut flipped = a.clone();
                    flipped[0] ^= 0x80;
                    assert!(lc.open_in_place(&iv, aad, &mut flipped, &tag_a).is_err());
                }
            }
        }
        assert!(matches!(AeadKey::new(&[0; 20]), Err(Error::InvalidKey { .. })));
    }

    #[test]
    fn open_to_and_open_append_agree_and_release_nothing_on_failure() {
        let iv = [3u8; IV_LEN];
        let aad = b"frame aad";
        let key = [0x5Au8; 32];
        let lc = AeadKey::new(&key).unwrap();
        let rc = rustcrypto::AeadKey::new(&key).unwrap();
        for plain_len in [0usize, 1, 17, 4096] {
            let plain: Vec<u8> = (0..plain_len).map(|i| (i * 7 % 253) as u8).collect();
            let mut ct = plain.clone();
            let tag = lc.seal_in_place(&iv, aad, &mut ct).unwrap();
            let mut bad_tag = tag;
            bad_tag[15] ^= 1;
            // open_to: both backends, good and bad tag, and a length mismatch.
            let mut out_lc = vec![0xEEu8; plain_len];
            let mut out_rc = vec![0xEEu8; plain_len];
            lc.open_to(&iv, aad, &ct, &tag, &mut out_lc).unwrap();
            rc.open_to(&iv, aad, &ct, &tag, &mut out_rc).unwrap();
            assert_eq!((&out_lc, &out_rc), (&plain, &plain));
            assert!(lc.open_to(&iv, aad, &ct, &bad_tag, &mut out_lc).is_err());
            assert!(rc.open_to(&iv, aad, &ct, &bad_tag, &mut out_rc).is_err());
            assert!(out_lc.iter().chain(&out_rc).all(|&b| b == 0), "unauthenticated bytes left in the output");
            assert!(lc.open_to(&iv, aad, &ct, &tag, &mut vec![0u8; plain_len + 1]).is_err());
            assert!(rc.open_to(&iv, aad, &ct, &tag, &mut vec![0u8; plain_len + 1]).is_err());
            // open_append: appends after what is there; on failure restores the length.
            type Append<'a> = Box<dyn Fn(&[u8], &[u8; TAG_LEN], &mut Vec<u8>) -> Result<(), ()> + 'a>;
            let backends: [(&str, Append<'_>); 2] = [
                ("aws-lc", Box::new(|ct, tag, out| lc.open_append(&iv, aad, ct, tag, out))),
                ("rustcrypto", Box::new(|ct, tag, out| rc.open_append(&iv, aad, ct, tag, out))),
            ];
            for (name, open) in backends {
                let mut out = b"prefix".to_vec();
                open(&ct, &tag, &mut out).unwrap();
                assert_eq!(&out[..6], b"prefix", "{name}");
                assert_eq!(&out[6..], &plain[..], "{name}");
                let mut out = b"prefix".to_vec();
                assert!(open(&ct, &bad_tag, &mut out).is_err(), "{name}");
                assert_eq!(out, b"prefix", "{name}");
            }
        }
    }

    #[test]
    fn hkdf_and_hashes_match_rustcrypto() {
        let ikm = [0x42u8; 32];
        let salt = [9u8; 32];
        for hash in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
            for salt in [None, Some(&salt[..])] {
                let (mut a1, mut a2) = ([0u8; 32], [0u8; 77]);
                let (mut b1, mut b2) = ([0u8; 32], [0u8; 77]);
                hkdf(hash, salt, &ikm, &mut [(b"one", &mut a1), (b"two", &mut a2)]).unwrap();
                rustcrypto::hkdf(hash, salt, &ikm, &mut [(b"one", &mut b1), (b"two", &mut b2)]).unwrap();
                assert_eq!(a1, b1);
                assert_eq!(a2, b2);
                assert_ne!(a1[..], a2[..32]);
            }
        }
        // RFC 5869 limit: 255 blocks.
        let mut too_long = vec![0u8; 255 * 32 + 1];
        assert!(hkdf(HashAlg::Sha256, None, &ikm, &mut [(b"", &mut too_long)]).is_err());
        assert_eq!(sha512(b"abc"), rustcrypto::sha512(b"abc"));
        assert_ne!(sha512(b"abc"), sha512(b"abd"));
        for curve in [SignatureCurve::P256, SignatureCurve::P384] {
            let mut a = SignatureHasher::new(curve);
            let mut b = rustcrypto::SignatureHasher::new(curve);
            for part in [&b"head"[..], b"", b"body"] {
                a.update(part);
                b.update(part);
            }
            assert_eq!(a.finalize(), b.finalize());
        }
    }

    #[test]
    fn ecdsa_signatures_cross_verify() {
        for curve in [SignatureCurve::P256, SignatureCurve::P384] {
            let mut h = SignatureHasher::new(curve);
            h.update(b"message");
            let digest = h.finalize();
            let lc = SoftwareSigner::generate(curve);
            let rc = rustcrypto::SoftwareSigner::generate(curve);
            assert_eq!(lc.public_key().len(), curve.compressed_point_len());
            let sig_lc = lc.sign_digest(&digest).unwrap();
            let sig_rc = rc.sign_digest(&digest).unwrap();
            rustcrypto::ecdsa_verify_digest(curve, &lc.public_key(), &digest, &sig_lc).unwrap();
            ecdsa_verify_digest(curve, &rc.public_key(), &digest, &sig_rc).unwrap();
            ecdsa_verify_digest(curve, &lc.public_key(), &digest, &sig_lc).unwrap();
            // Another key does not verify it.
            assert!(ecdsa_verify_digest(curve, &rc.public_key(), &digest, &sig_lc).is_err());
            let mut other = digest.clone();
            other[0] ^= 1;
            assert!(matches!(
                ecdsa_verify_digest(curve, &lc.public_key(), &other, &sig_lc),
                Err(Error::Signature { .. })
            ));
            let mut bad = sig_lc.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert!(ecdsa_verify_digest(curve, &lc.public_key(), &digest, &bad).is_err());
            assert!(ecdsa_verify_digest(curve, &lc.public_key()[1..], &digest, &sig_lc).is_err());
            assert!(lc.sign_digest(&digest[1..]).is_err());
        }
    }

    fn rsa_pem_pair(bits: usize) -> String {
        if bits >= 2048 {
            let key = PrivateDecryptingKey::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
            let der = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key).unwrap();
            let rc = rsa::RsaPrivateKey::from_pkcs8_der(der.as_ref()).unwrap();
            rc.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
        } else {
            let rc = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, bits).unwrap();
            rc.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
        }
    }

    #[test]
    fn rsa_cross_backend_all_paddings() {
        // 2048 bits runs in AWS-LC; 1024 bits falls back to the pure-Rust code.
        for (bits, in_aws_lc) in [(2048, true), (1024, false)] {
            let pem = rsa_pem_pair(bits);
            let lc = RsaPrivateKey::from_pem(&pem).unwrap();
            let rc = rustcrypto::RsaPrivateKey::from_pem(&pem).unwrap();
            assert_eq!(lc.lc.is_some(), in_aws_lc);
            let lc_pub = lc.public_key();
            assert_eq!(lc_pub.lc.is_some(), in_aws_lc);
            assert_eq!(lc_pub.bits(), bits);
            assert_eq!(lc_pub.to_pem().unwrap(), rc.public_key().to_pem().unwrap());
            let from_pem = RsaPublicKey::from_pem(&lc_pub.to_pem().unwrap()).unwrap();
            assert_eq!(from_pem, lc_pub);
            assert_eq!(from_pem.lc.is_some(), in_aws_lc);
            let data_key = [0x5Au8; 16];
            for padding in [
                RsaPadding::Pkcs1,
                RsaPadding::OaepSha1,
                RsaPadding::OaepSha256,
                RsaPadding::OaepSha384,
                RsaPadding::OaepSha512,
            ] {
                if bits < 2048 && padding == RsaPadding::OaepSha512 {
                    // 2 * 64 + 2 bytes of padding leave no room in a 1024-bit block.
                    assert!(from_pem.encrypt(padding, &data_key).is_err());
                    continue;
                }
                let ct_lc = from_pem.encrypt(padding, &data_key).unwrap();
                assert_eq!(ct_lc.len(), bits / 8);
                let ct_rc = rc.public_key().encrypt(padding, &data_key).unwrap();
                assert_eq!(rc.decrypt(padding, &ct_lc).unwrap().as_bytes(), data_key, "{padding:?}");
                assert_eq!(lc.decrypt(padding, &ct_rc).unwrap().as_bytes(), data_key, "{padding:?}");
                let mut bad = ct_rc.clone();
                bad[10] ^= 1;
                assert!(lc.decrypt(padding, &bad).is_err(), "{padding:?}");
                let wrong =
                    if padding == RsaPadding::OaepSha256 { RsaPadding::OaepSha1 } else { RsaPadding::OaepSha256 };
                assert!(lc.decrypt(wrong, &ct_rc).map(|k| k.as_bytes() != data_key).unwrap_or(true));
            }
        }
    }

    #[test]
    fn rsa_from_components_matches() {
        let pem = rsa_pem_pair(2048);
        let rc = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
        use rsa::traits::PublicKeyParts;
        let key = RsaPublicKey::from_components(&rc.n().to_bytes_be(), &rc.e().to_bytes_be()).unwrap();
        assert!(key.lc.is_some());
        let ct = key.encrypt(RsaPadding::OaepSha256, b"0123456789abcdef").unwrap();
        let priv_lc = RsaPrivateKey::from_pem(&pem).unwrap();
        assert_eq!(priv_lc.decrypt(RsaPadding::OaepSha256, &ct).unwrap().as_bytes(), b"0123456789abcdef");
        assert!(RsaPublicKey::from_components(&[], &[1, 0, 1]).is_err());
        assert!(RsaPrivateKey::from_pem("not a key").is_err());
    }
}
