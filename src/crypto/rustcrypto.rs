//! Pure-Rust backend of the primitive seam (RustCrypto).

use std::fmt;

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm, Nonce, Tag};
use ecdsa::signature::hazmat::{PrehashVerifier, RandomizedPrehashSigner};
use p384::elliptic_curve::sec1::ToEncodedPoint;
use rand_core::{OsRng, RngCore};
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Oaep, Pkcs1v15Encrypt};
use sha2::Digest;

use super::{RsaPadding, IV_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::materials::{FooterSigner, HashAlg, SignatureCurve};

type Aes192Gcm = AesGcm<aes::Aes192, U12>;

pub(crate) fn fill_random(buf: &mut [u8]) -> Result<()> {
    OsRng.try_fill_bytes(buf).map_err(|e| Error::crypto(format!("operating system RNG failed: {e}")))
}

/// SHA-512 of `data`.
pub(crate) fn sha512(data: &[u8]) -> [u8; 64] {
    sha2::Sha512::digest(data).into()
}

/// An AES-GCM key (128, 192 or 256 bits) with its key schedule expanded once.
pub(crate) enum AeadKey {
    Aes128(Box<Aes128Gcm>),
    Aes192(Box<Aes192Gcm>),
    Aes256(Box<Aes256Gcm>),
}

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AeadKey([REDACTED])")
    }
}

impl AeadKey {
    pub(crate) fn new(key: &[u8]) -> Result<Self> {
        let bad = |_| Error::crypto("AES-GCM key setup");
        Ok(match key.len() {
            16 => AeadKey::Aes128(Box::new(Aes128Gcm::new_from_slice(key).map_err(bad)?)),
            24 => AeadKey::Aes192(Box::new(Aes192Gcm::new_from_slice(key).map_err(bad)?)),
            32 => AeadKey::Aes256(Box::new(Aes256Gcm::new_from_slice(key).map_err(bad)?)),
            n => return Err(Error::InvalidKey { reason: format!("AES key of {n} bytes (expected 16, 24 or 32)") }),
        })
    }

    /// Encrypt `buf` in place; returns the tag.
    pub(crate) fn seal_in_place(&self, iv: &[u8; IV_LEN], aad: &[u8], buf: &mut [u8]) -> Result<[u8; TAG_LEN]> {
        let nonce = Nonce::from_slice(iv);
        let tag = match self {
            AeadKey::Aes128(k) => k.encrypt_in_place_detached(nonce, aad, buf),
            AeadKey::Aes192(k) => k.encrypt_in_place_detached(nonce, aad, buf),
            AeadKey::Aes256(k) => k.encrypt_in_place_detached(nonce, aad, buf),
        }
        .map_err(|_| Error::crypto("AES-GCM seal"))?;
        Ok(tag.into())
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
        let nonce = Nonce::from_slice(iv);
        let tag = Tag::from_slice(tag);
        match self {
            AeadKey::Aes128(k) => k.decrypt_in_place_detached(nonce, aad, buf, tag),
            AeadKey::Aes192(k) => k.decrypt_in_place_detached(nonce, aad, buf, tag),
            AeadKey::Aes256(k) => k.decrypt_in_place_detached(nonce, aad, buf, tag),
        }
        .map_err(|_| ())
    }

    /// Verify `tag` and decrypt `ciphertext` into `out` (same length). On
    /// failure `out` is zeroed.
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
        out.copy_from_slice(ciphertext);
        self.open_in_place(iv, aad, out, tag).inspect_err(|()| out.fill(0))
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
        out.extend_from_slice(ciphertext);
        self.open_in_place(iv, aad, &mut out[start..], tag).inspect_err(|()| {
            out[start..].fill(0);
            out.truncate(start);
        })
    }
}

/// HKDF (extract then expand) into each `(info, out)` pair with one extraction.
/// `salt = None` means a zero salt of the hash length.
pub(crate) fn hkdf(hash: HashAlg, salt: Option<&[u8]>, ikm: &[u8], outputs: &mut [(&[u8], &mut [u8])]) -> Result<()> {
    fn run<D>(salt: Option<&[u8]>, ikm: &[u8], outputs: &mut [(&[u8], &mut [u8])]) -> Result<()>
    where
        D: hkdf::hmac::digest::core_api::CoreProxy,
        D::Core: hkdf::hmac::digest::HashMarker
            + hkdf::hmac::digest::core_api::UpdateCore
            + hkdf::hmac::digest::core_api::FixedOutputCore
            + hkdf::hmac::digest::core_api::BufferKindUser<BufferKind = hkdf::hmac::digest::block_buffer::Eager>
            + Default
            + Clone,
        <D::Core as hkdf::hmac::digest::core_api::BlockSizeUser>::BlockSize:
            hkdf::hmac::digest::typenum::IsLess<hkdf::hmac::digest::typenum::U256>,
        hkdf::hmac::digest::typenum::Le<
            <D::Core as hkdf::hmac::digest::core_api::BlockSizeUser>::BlockSize,
            hkdf::hmac::digest::typenum::U256,
        >: hkdf::hmac::digest::typenum::NonZero,
        D: hkdf::hmac::digest::OutputSizeUser,
    {
        let hk = hkdf::Hkdf::<D>::new(salt, ikm);
        for (info, out) in outputs.iter_mut() {
            hk.expand(info, out).map_err(|_| Error::crypto("HKDF output too long"))?;
        }
        Ok(())
    }
    match hash {
        HashAlg::Sha256 => run::<sha2::Sha256>(salt, ikm, outputs),
        HashAlg::Sha384 => run::<sha2::Sha384>(salt, ikm, outputs),
        HashAlg::Sha512 => run::<sha2::Sha512>(salt, ikm, outputs),
    }
}

/// HMAC of the concatenated `parts` under `key`, its first `out.len()` bytes.
pub(crate) fn hmac(hash: HashAlg, key: &[u8], parts: &[&[u8]], out: &mut [u8]) -> Result<()> {
    use hmac::{Hmac, Mac};
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]], out: &mut [u8]) -> Result<()> {
        let mut mac = <M as Mac>::new_from_slice(key).map_err(|_| Error::crypto("HMAC key setup"))?;
        for part in parts {
            mac.update(part);
        }
        let tag = mac.finalize().into_bytes();
        let tag = tag.get(..out.len()).ok_or_else(|| Error::crypto("HMAC output too long"))?;
        out.copy_from_slice(tag);
        Ok(())
    }
    match hash {
        HashAlg::Sha256 => run::<Hmac<sha2::Sha256>>(key, parts, out),
        HashAlg::Sha384 => run::<Hmac<sha2::Sha384>>(key, parts, out),
        HashAlg::Sha512 => run::<Hmac<sha2::Sha512>>(key, parts, out),
    }
}

/// Incremental hash of header and body for the footer signature.
#[derive(Clone)]
pub(crate) enum SignatureHasher {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
}

impl SignatureHasher {
    pub(crate) fn new(curve: SignatureCurve) -> Self {
        match curve {
            SignatureCurve::P256 => SignatureHasher::Sha256(sha2::Sha256::new()),
            SignatureCurve::P384 => SignatureHasher::Sha384(sha2::Sha384::new()),
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            SignatureHasher::Sha256(h) => h.update(data),
            SignatureHasher::Sha384(h) => h.update(data),
        }
    }

    pub(crate) fn finalize(self) -> Vec<u8> {
        match self {
            SignatureHasher::Sha256(h) => h.finalize().to_vec(),
            SignatureHasher::Sha384(h) => h.finalize().to_vec(),
        }
    }
}

enum SigningKeyInner {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

/// An in-process ECDSA footer signer; the default CMM makes a fresh one per
/// message. The secret scalar is zeroized on drop.
pub struct SoftwareSigner {
    key: SigningKeyInner,
    public: Vec<u8>,
}

impl fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareSigner").field("curve", &self.curve()).field("key", &"[REDACTED]").finish()
    }
}

impl SoftwareSigner {
    /// A fresh random key on `curve`.
    pub fn generate(curve: SignatureCurve) -> Self {
        let key = match curve {
            SignatureCurve::P256 => SigningKeyInner::P256(p256::ecdsa::SigningKey::random(&mut OsRng)),
            SignatureCurve::P384 => SigningKeyInner::P384(p384::ecdsa::SigningKey::random(&mut OsRng)),
        };
        let public = match &key {
            SigningKeyInner::P256(k) => k.verifying_key().to_encoded_point(true).as_bytes().to_vec(),
            SigningKeyInner::P384(k) => k.verifying_key().to_encoded_point(true).as_bytes().to_vec(),
        };
        SoftwareSigner { key, public }
    }
}

impl FooterSigner for SoftwareSigner {
    fn curve(&self) -> SignatureCurve {
        match self.key {
            SigningKeyInner::P256(_) => SignatureCurve::P256,
            SigningKeyInner::P384(_) => SignatureCurve::P384,
        }
    }

    fn public_key(&self) -> Vec<u8> {
        self.public.clone()
    }

    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>> {
        // Only the curve's own hash: a shorter prehash would be accepted by
        // the ECDSA code but refused by the other backend.
        let expected = match self.curve() {
            SignatureCurve::P256 => 32,
            SignatureCurve::P384 => 48,
        };
        if digest.len() != expected {
            return Err(Error::crypto(format!("ECDSA sign: digest of {} bytes for {:?}", digest.len(), self.curve())));
        }
        let fail = |e: ecdsa::Error| Error::crypto(format!("ECDSA sign: {e}"));
        // Hedged signing (RFC 6979 with fresh randomness), as the other
        // backend signs randomly: a format that needs a signature of one
        // exact encoded length can sign again and get another one.
        Ok(match &self.key {
            SigningKeyInner::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign_prehash_with_rng(&mut OsRng, digest).map_err(fail)?;
                sig.to_der().as_bytes().to_vec()
            }
            SigningKeyInner::P384(k) => {
                let sig: p384::ecdsa::Signature = k.sign_prehash_with_rng(&mut OsRng, digest).map_err(fail)?;
                sig.to_der().as_bytes().to_vec()
            }
        })
    }
}

pub(crate) fn ecdsa_verify_digest(curve: SignatureCurve, public_key: &[u8], digest: &[u8], der: &[u8]) -> Result<()> {
    let bad = |what: &str| Error::Signature { reason: what.to_owned() };
    match curve {
        SignatureCurve::P256 => {
            let vk =
                p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key).map_err(|_| bad("invalid P-256 public key"))?;
            let sig = p256::ecdsa::Signature::from_der(der).map_err(|_| bad("malformed DER signature"))?;
            vk.verify_prehash(digest, &sig).map_err(|_| bad("the footer signature does not verify"))
        }
        SignatureCurve::P384 => {
            let vk =
                p384::ecdsa::VerifyingKey::from_sec1_bytes(public_key).map_err(|_| bad("invalid P-384 public key"))?;
            let sig = p384::ecdsa::Signature::from_der(der).map_err(|_| bad("malformed DER signature"))?;
            vk.verify_prehash(digest, &sig).map_err(|_| bad("the footer signature does not verify"))
        }
    }
}

pub(crate) fn ecdsa_raw_to_der(curve: SignatureCurve, raw: &[u8]) -> Result<Vec<u8>> {
    let bad = |_| Error::crypto(format!("raw ECDSA signature of {} bytes is not r||s for {curve:?}", raw.len()));
    Ok(match curve {
        SignatureCurve::P256 => p256::ecdsa::Signature::from_slice(raw).map_err(bad)?.to_der().as_bytes().to_vec(),
        SignatureCurve::P384 => p384::ecdsa::Signature::from_slice(raw).map_err(bad)?.to_der().as_bytes().to_vec(),
    })
}

pub(crate) fn ec_compress_point(curve: SignatureCurve, sec1: &[u8]) -> Result<Vec<u8>> {
    let bad = |_| Error::InvalidKey { reason: format!("not a valid {curve:?} public point") };
    Ok(match curve {
        SignatureCurve::P256 => {
            p256::PublicKey::from_sec1_bytes(sec1).map_err(bad)?.to_encoded_point(true).as_bytes().to_vec()
        }
        SignatureCurve::P384 => {
            p384::PublicKey::from_sec1_bytes(sec1).map_err(bad)?.to_encoded_point(true).as_bytes().to_vec()
        }
    })
}

/// Decompress a SEC1 public point (compressed or uncompressed input) to its
/// uncompressed form, checking that it is on `curve`. (Used by the aws-lc
/// backend, whose own decompression is slower.)
#[cfg_attr(not(feature = "aws-lc"), allow(dead_code))]
pub(crate) fn ec_decompress_point(curve: SignatureCurve, sec1: &[u8]) -> Result<Vec<u8>> {
    let bad = |_| Error::InvalidKey { reason: format!("not a valid {curve:?} public point") };
    Ok(match curve {
        SignatureCurve::P256 => {
            p256::PublicKey::from_sec1_bytes(sec1).map_err(bad)?.to_encoded_point(false).as_bytes().to_vec()
        }
        SignatureCurve::P384 => {
            p384::PublicKey::from_sec1_bytes(sec1).map_err(bad)?.to_encoded_point(false).as_bytes().to_vec()
        }
    })
}

pub(crate) fn ec_public_key_pem(curve: SignatureCurve, sec1: &[u8]) -> Result<String> {
    let bad = |_| Error::InvalidKey { reason: format!("not a valid {curve:?} public point") };
    let pem_err = |e: p384::pkcs8::spki::Error| Error::crypto(format!("PEM encoding: {e}"));
    match curve {
        SignatureCurve::P256 => {
            p256::PublicKey::from_sec1_bytes(sec1).map_err(bad)?.to_public_key_pem(LineEnding::LF).map_err(pem_err)
        }
        SignatureCurve::P384 => {
            p384::PublicKey::from_sec1_bytes(sec1).map_err(bad)?.to_public_key_pem(LineEnding::LF).map_err(pem_err)
        }
    }
}

pub(crate) fn ec_public_key_from_pem(curve: SignatureCurve, pem: &str) -> Result<Vec<u8>> {
    let bad = |_| Error::InvalidKey { reason: format!("not a PEM {curve:?} public key (SubjectPublicKeyInfo)") };
    Ok(match curve {
        SignatureCurve::P256 => {
            p256::PublicKey::from_public_key_pem(pem).map_err(bad)?.to_encoded_point(true).as_bytes().to_vec()
        }
        SignatureCurve::P384 => {
            p384::PublicKey::from_public_key_pem(pem).map_err(bad)?.to_encoded_point(true).as_bytes().to_vec()
        }
    })
}

/// An RSA public key.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPublicKey(rsa::RsaPublicKey);

impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaPublicKey({} bits)", self.bits())
    }
}

impl RsaPublicKey {
    /// The RustCrypto key, for the other backend's encodings.
    #[cfg_attr(not(feature = "aws-lc"), allow(dead_code))]
    pub(crate) fn inner(&self) -> &rsa::RsaPublicKey {
        &self.0
    }

    /// Parse a PEM public key (SubjectPublicKeyInfo or PKCS#1).
    pub fn from_pem(pem: &str) -> Result<Self> {
        rsa::RsaPublicKey::from_public_key_pem(pem)
            .or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(pem))
            .map(RsaPublicKey)
            .map_err(|e| Error::InvalidKey { reason: format!("not a PEM RSA public key: {e}") })
    }

    /// Build from modulus and public exponent (big-endian), as a token reports them.
    pub fn from_components(modulus: &[u8], exponent: &[u8]) -> Result<Self> {
        rsa::RsaPublicKey::new(BigUint::from_bytes_be(modulus), BigUint::from_bytes_be(exponent))
            .map(RsaPublicKey)
            .map_err(|e| Error::InvalidKey { reason: format!("invalid RSA public key: {e}") })
    }

    /// PEM (SubjectPublicKeyInfo).
    pub fn to_pem(&self) -> Result<String> {
        self.0.to_public_key_pem(LineEnding::LF).map_err(|e| Error::crypto(format!("PEM encoding: {e}")))
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.0.size() * 8
    }

    /// Encrypt `msg` with `padding`.
    pub fn encrypt(&self, padding: RsaPadding, msg: &[u8]) -> Result<Vec<u8>> {
        let mut rng = OsRng;
        let res = match padding {
            RsaPadding::Pkcs1 => self.0.encrypt(&mut rng, Pkcs1v15Encrypt, msg),
            RsaPadding::OaepSha1 => self.0.encrypt(&mut rng, Oaep::new::<sha1::Sha1>(), msg),
            RsaPadding::OaepSha256 => self.0.encrypt(&mut rng, Oaep::new::<sha2::Sha256>(), msg),
            RsaPadding::OaepSha384 => self.0.encrypt(&mut rng, Oaep::new::<sha2::Sha384>(), msg),
            RsaPadding::OaepSha512 => self.0.encrypt(&mut rng, Oaep::new::<sha2::Sha512>(), msg),
        };
        res.map_err(|e| Error::crypto(format!("RSA encrypt ({padding:?}): {e}")))
    }
}

/// An RSA private key held in process (zeroized on drop).
#[derive(Clone)]
pub struct RsaPrivateKey(rsa::RsaPrivateKey);

impl fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaPrivateKey({} bits, [REDACTED])", self.0.size() * 8)
    }
}

impl RsaPrivateKey {
    /// The RustCrypto key, for the other backend's encodings.
    #[cfg_attr(not(feature = "aws-lc"), allow(dead_code))]
    pub(crate) fn inner(&self) -> &rsa::RsaPrivateKey {
        &self.0
    }

    /// Parse a PEM private key (PKCS#8 or PKCS#1).
    pub fn from_pem(pem: &str) -> Result<Self> {
        rsa::RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
            .map(RsaPrivateKey)
            .map_err(|_| Error::InvalidKey { reason: "not a PEM RSA private key (PKCS#8 or PKCS#1)".into() })
    }

    /// The public half.
    pub fn public_key(&self) -> RsaPublicKey {
        RsaPublicKey(self.0.to_public_key())
    }

    /// Decrypt `ct` with `padding`. The error says nothing about why, on purpose.
    pub fn decrypt(&self, padding: RsaPadding, ct: &[u8]) -> Result<crate::materials::DataKey> {
        let res = match padding {
            RsaPadding::Pkcs1 => self.0.decrypt(Pkcs1v15Encrypt, ct),
            RsaPadding::OaepSha1 => self.0.decrypt(Oaep::new::<sha1::Sha1>(), ct),
            RsaPadding::OaepSha256 => self.0.decrypt(Oaep::new::<sha2::Sha256>(), ct),
            RsaPadding::OaepSha384 => self.0.decrypt(Oaep::new::<sha2::Sha384>(), ct),
            RsaPadding::OaepSha512 => self.0.decrypt(Oaep::new::<sha2::Sha512>(), ct),
        };
        res.map(crate::materials::DataKey::new).map_err(|_| Error::crypto(format!("RSA decrypt ({padding:?}) failed")))
    }
}
