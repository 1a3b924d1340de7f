//! aws-lc-rs backend of the primitive seam (feature `aws-lc`).
//!
//! AES-GCM, HKDF, SHA-2, ECDSA signing and verification, ECDSA key
//! generation, RSA encryption and decryption (PKCS#1 v1.5 and OAEP with
//! SHA-1/256/384/512) and randomness run in AWS-LC. Results are byte for byte
//! those of the pure-Rust backend wherever the operation is deterministic.
//!
//! aws-lc-rs has no PEM support, no PKCS#1 (`RSAPrivateKey`) parser, no
//! conversion of a raw `r || s` signature to DER and no compression of a
//! foreign EC point, so those encoding steps reuse the pure-Rust code, as
//! does the decompression of a verification key (faster there; the one
//! encoding step on a per-message path). Key material parsed that way is handed
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

/// HKDF (RFC 5869, extract then expand) into each `(info, out)` pair with
/// one extraction. `salt = None` means a zero salt of the hash length.
///
/// Written on AWS-LC's HMAC rather than `aws_lc_rs::hkdf`, which defers the
/// extraction and runs it again, with the HMAC key setup of the PRK, for
/// every expansion: the two outputs of a committing suite cost 16 SHA-512
/// blocks that way and 8 here (extraction 2, the zero salt's key being set
/// up once per process; PRK key setup 2; 2 per output block).
pub(crate) fn hkdf(hash: HashAlg, salt: Option<&[u8]>, ikm: &[u8], outputs: &mut [(&[u8], &mut [u8])]) -> Result<()> {
    use aws_lc_rs::hmac;
    let (alg, hash_len, slot) = hmac_alg(hash);
    // No salt means a salt of zeros, the same key every time: its HMAC
    // state is set up once per hash.
    static ZERO_SALT: [std::sync::OnceLock<hmac::Key>; 3] =
        [std::sync::OnceLock::new(), std::sync::OnceLock::new(), std::sync::OnceLock::new()];
    let given;
    let salt_key = match salt {
        Some(s) => {
            given = hmac::Key::new(alg, s);
            &given
        }
        None => ZERO_SALT[slot].get_or_init(|| hmac::Key::new(alg, &[0u8; 64][..hash_len])),
    };
    let prk = hmac::sign(salt_key, ikm);
    let prk = hmac::Key::new(alg, prk.as_ref());
    for (info, out) in outputs.iter_mut() {
        if out.len() > 255 * hash_len {
            return Err(Error::crypto("HKDF output too long"));
        }
        let mut previous: Option<hmac::Tag> = None;
        for (counter, block) in (1u8..=255).zip(out.chunks_mut(hash_len)) {
            let mut ctx = hmac::Context::with_key(&prk);
            if let Some(t) = &previous {
                ctx.update(t.as_ref());
            }
            ctx.update(info);
            ctx.update(&[counter]);
            let t = ctx.sign();
            block.copy_from_slice(&t.as_ref()[..block.len()]);
            previous = Some(t);
        }
    }
    Ok(())
}

/// AWS-LC's HMAC with `hash`, the hash's output length, and an index of
/// the hash (0 to 2) for per-hash tables.
fn hmac_alg(hash: HashAlg) -> (aws_lc_rs::hmac::Algorithm, usize, usize) {
    use aws_lc_rs::hmac;
    match hash {
        HashAlg::Sha256 => (hmac::HMAC_SHA256, 32, 0),
        HashAlg::Sha384 => (hmac::HMAC_SHA384, 48, 1),
        HashAlg::Sha512 => (hmac::HMAC_SHA512, 64, 2),
    }
}

/// HMAC of the concatenated `parts` under `key`, its first `out.len()` bytes.
pub(crate) fn hmac(hash: HashAlg, key: &[u8], parts: &[&[u8]], out: &mut [u8]) -> Result<()> {
    use aws_lc_rs::hmac;
    let (alg, _, _) = hmac_alg(hash);
    let mut ctx = hmac::Context::with_key(&hmac::Key::new(alg, key));
    for part in parts {
        ctx.update(part);
    }
    let tag = ctx.sign();
    let tag = tag.as_ref().get(..out.len()).ok_or_else(|| Error::crypto("HMAC output too long"))?;
    out.copy_from_slice(tag);
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
    let invalid_key = || {
        bad(match curve {
            SignatureCurve::P256 => "invalid P-256 public key",
            SignatureCurve::P384 => "invalid P-384 public key",
        })
    };
    let d =
        digest::Digest::import_less_safe(digest, digest_alg(curve)).map_err(|_| bad("digest of the wrong length"))?;
    // AWS-LC decompresses a P-384 point with a generic modular square root;
    // the pure-Rust field code does it in about two thirds of the time, and
    // AWS-LC then only checks the uncompressed point. The point is
    // decompressed and parsed once; AWS-LC verifies.
    let uncompressed;
    let public_key = if curve == SignatureCurve::P384 && public_key.len() == curve.compressed_point_len() {
        uncompressed = rustcrypto::ec_decompress_point(curve, public_key).map_err(|_| invalid_key())?;
        &uncompressed[..]
    } else {
        public_key
    };
    let key = UnparsedPublicKey::new(verification_alg(curve), public_key);
    let parsed = key.parse().map_err(|_| invalid_key())?;
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
#[path = "cross_backend_tests.rs"]
mod tests;
