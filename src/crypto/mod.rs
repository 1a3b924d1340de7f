//! The primitive seam: AEAD, HKDF, ECDSA, RSA and randomness.
//!
//! The message codec and the software keyrings call only what this module
//! exports. The default backend is pure Rust (RustCrypto, `rustcrypto.rs`);
//! another backend provides the same items with the same behaviour, byte for
//! byte, and is selected here without touching the callers.
//!
//! With the cargo feature `aws-lc`, AES-GCM, HKDF, SHA-2, ECDSA and RSA run
//! in AWS-LC through `aws-lc-rs` (`aws_lc.rs`); the pure-Rust module stays
//! compiled because that backend reuses its encoding helpers (PEM, DER).

#[cfg(feature = "aws-lc")]
mod aws_lc;
#[cfg(test)]
mod conformance;
mod random;
#[cfg_attr(feature = "aws-lc", allow(dead_code))]
mod rustcrypto;

#[cfg(feature = "aws-lc")]
use aws_lc as backend;
#[cfg(not(feature = "aws-lc"))]
use rustcrypto as backend;

use crate::error::Result;
use crate::materials::{HashAlg, SignatureCurve};

pub(crate) use backend::{hkdf, AeadKey, SignatureHasher};
pub use backend::{RsaPrivateKey, RsaPublicKey, SoftwareSigner};

/// Name of the primitive backend this build uses: `"aws-lc"` or `"rustcrypto"`.
#[cfg(feature = "aws-lc")]
pub const BACKEND: &str = "aws-lc";
/// Name of the primitive backend this build uses: `"aws-lc"` or `"rustcrypto"`.
#[cfg(not(feature = "aws-lc"))]
pub const BACKEND: &str = "rustcrypto";

/// AES-GCM IV length used everywhere in the format.
pub const IV_LEN: usize = 12;
/// AES-GCM tag length used everywhere in the format.
pub const TAG_LEN: usize = 16;

/// Fill `buf` from the operating system's CSPRNG (served from the current
/// [`random_batch`] when one is running on this thread).
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<()> {
    random::fill(buf)
}

pub(crate) use random::batch as random_batch;

/// SHA-512 of `data`.
pub(crate) fn sha512(data: &[u8]) -> [u8; 64] {
    backend::sha512(data)
}

/// HMAC of the concatenated `parts` under `key` with `hash`, its first
/// `out.len()` bytes (an error if that is longer than the hash).
pub(crate) fn hmac(hash: HashAlg, key: &[u8], parts: &[&[u8]], out: &mut [u8]) -> Result<()> {
    backend::hmac(hash, key, parts, out)
}

/// SHA-384, fed incrementally.
pub(crate) struct Sha384(SignatureHasher);

impl Sha384 {
    pub(crate) fn new() -> Self {
        Sha384(SignatureHasher::new(SignatureCurve::P384))
    }

    pub(crate) fn update(&mut self, data: impl AsRef<[u8]>) {
        self.0.update(data.as_ref());
    }

    pub(crate) fn finalize(self) -> [u8; 48] {
        let mut out = [0u8; 48];
        out.copy_from_slice(&self.0.finalize());
        out
    }
}

/// Verify a DER ECDSA signature over a precomputed digest with a SEC1
/// (compressed or uncompressed) public key.
pub(crate) fn ecdsa_verify_digest(curve: SignatureCurve, public_key: &[u8], digest: &[u8], der: &[u8]) -> Result<()> {
    backend::ecdsa_verify_digest(curve, public_key, digest, der)
}

/// Convert a raw `r || s` ECDSA signature (as PKCS#11 `CKM_ECDSA` returns it) to DER.
pub fn ecdsa_raw_to_der(curve: SignatureCurve, raw: &[u8]) -> Result<Vec<u8>> {
    backend::ecdsa_raw_to_der(curve, raw)
}

/// Compress a SEC1 public point (compressed or uncompressed input).
pub fn ec_compress_point(curve: SignatureCurve, sec1: &[u8]) -> Result<Vec<u8>> {
    backend::ec_compress_point(curve, sec1)
}

/// PEM (SubjectPublicKeyInfo) of a SEC1 EC public point.
pub fn ec_public_key_pem(curve: SignatureCurve, sec1: &[u8]) -> Result<String> {
    backend::ec_public_key_pem(curve, sec1)
}

/// Parse a PEM EC public key (SubjectPublicKeyInfo) to its compressed point.
pub fn ec_public_key_from_pem(curve: SignatureCurve, pem: &str) -> Result<Vec<u8>> {
    backend::ec_public_key_from_pem(curve, pem)
}

/// RSA padding schemes of the raw RSA keyring (OAEP uses MGF1 with the same hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RsaPadding {
    /// PKCS#1 v1.5.
    Pkcs1,
    /// OAEP with SHA-1 and MGF1-SHA1.
    OaepSha1,
    /// OAEP with SHA-256 and MGF1-SHA256.
    OaepSha256,
    /// OAEP with SHA-384 and MGF1-SHA384.
    OaepSha384,
    /// OAEP with SHA-512 and MGF1-SHA512.
    OaepSha512,
}

impl RsaPadding {
    /// Parse `pkcs1`, `oaep-sha1`, `oaep-sha256`, `oaep-sha384`, `oaep-sha512`.
    pub fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "pkcs1" | "pkcs1v15" | "pkcs1-v1_5" => Ok(RsaPadding::Pkcs1),
            "oaep-sha1" | "oaep-mgf1-sha1" => Ok(RsaPadding::OaepSha1),
            "oaep-sha256" | "oaep-mgf1-sha256" => Ok(RsaPadding::OaepSha256),
            "oaep-sha384" | "oaep-mgf1-sha384" => Ok(RsaPadding::OaepSha384),
            "oaep-sha512" | "oaep-mgf1-sha512" => Ok(RsaPadding::OaepSha512),
            _ => Err(crate::Error::config(format!(
                "unknown RSA padding `{text}` (expected pkcs1, oaep-sha1, oaep-sha256, oaep-sha384 or oaep-sha512)"
            ))),
        }
    }
}
