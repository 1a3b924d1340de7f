//! The footer attribute `aws_dbe_foot`: record tags and the signature.
//!
//! The canonical record is the whole header value, then the u64 length and
//! the serialization of the full encryption context, then every signed
//! attribute in canonical order: its canonical path, then either the u64
//! length of the ciphertext and tag, "ENCRYPTED" and the stored value (type
//! id || ciphertext || tag), or the u64 length of the value, "PLAINTEXT",
//! the type id and the value. `h = SHA-384(record)`.
//!
//! Footer = one 48-byte HMAC-SHA384(symmetric signing key of EDK j, h) per
//! EDK, in EDK order, then for 0x6701 an ECDSA P-384 signature (DER) over
//! `h` (that is, of SHA-384(h)) of exactly 103 bytes. A signature (r, s) of
//! 102 or 104 bytes becomes one of 103 as (r, n - s), which verifies the
//! same and whose s has the other top bit; only if that does not fit either
//! (r or s with leading zero bytes, rarely) does the writer sign again.

use subtle::ConstantTimeEq;

use crate::crypto::{self, Sha384};
use crate::error::{Error, Result};
use crate::materials::{DataKey, FooterSigner, HashAlg, SignatureCurve};

/// Length of one record tag.
pub(crate) const TAG_LEN: usize = 48;
/// Length of the record signature.
pub(crate) const SIGNATURE_LEN: usize = 103;
/// How many signatures to try for one of exactly [`SIGNATURE_LEN`] bytes.
const SIGN_ATTEMPTS: usize = 64;

/// One signed attribute of the canonical record.
pub(crate) enum RecordField<'a> {
    /// An encrypted attribute: its stored value (type id || ciphertext || tag).
    Encrypted(&'a [u8]),
    /// A plaintext attribute: type id and value.
    Plaintext([u8; 2], &'a [u8]),
}

/// `h`: SHA-384 of the canonical record.
pub(crate) fn record_hash<'a>(
    header: &[u8],
    context: &[u8],
    fields: impl IntoIterator<Item = (&'a [u8], RecordField<'a>)>,
) -> Result<[u8; 48]> {
    let mut sha = Sha384::new();
    sha.update(header);
    sha.update((context.len() as u64).to_be_bytes());
    sha.update(context);
    for (path, field) in fields {
        sha.update(path);
        match field {
            RecordField::Encrypted(stored) => {
                let len = stored.len().checked_sub(2).ok_or_else(|| Error::ItemAuthentication {
                    reason: "an encrypted attribute is too short".into(),
                })?;
                sha.update((len as u64).to_be_bytes());
                sha.update(b"ENCRYPTED");
                sha.update(stored);
            }
            RecordField::Plaintext(type_id, value) => {
                sha.update((value.len() as u64).to_be_bytes());
                sha.update(b"PLAINTEXT");
                sha.update(type_id);
                sha.update(value);
            }
        }
    }
    Ok(sha.finalize())
}

fn tag(key: &DataKey, hash: &[u8; 48]) -> Result<[u8; TAG_LEN]> {
    let mut tag = [0u8; TAG_LEN];
    crypto::hmac(HashAlg::Sha384, key.as_bytes(), &[hash], &mut tag)?;
    Ok(tag)
}

/// SHA-384 of `h`: the digest the record signature signs.
fn digest_of(hash: &[u8; 48]) -> [u8; 48] {
    let mut sha = Sha384::new();
    sha.update(hash);
    sha.finalize()
}

/// Write the footer: a tag per signing key, then the signature if `signer`.
pub(crate) fn create(hash: &[u8; 48], keys: &[DataKey], signer: Option<&dyn FooterSigner>) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(keys.len() * TAG_LEN + SIGNATURE_LEN);
    for key in keys {
        out.extend_from_slice(&tag(key, hash)?);
    }
    if let Some(signer) = signer {
        if signer.curve() != SignatureCurve::P384 {
            return Err(Error::config("item signatures are ECDSA P-384"));
        }
        let digest = digest_of(hash);
        let signature = (0..SIGN_ATTEMPTS)
            .map(|_| signer.sign_digest(&digest).map(|s| if s.len() == SIGNATURE_LEN { Some(s) } else { other_s(&s) }))
            .find_map(|s| s.transpose())
            .unwrap_or_else(|| Err(Error::crypto("the signer gave no signature of 103 bytes")))?;
        out.extend_from_slice(&signature);
    }
    Ok(out)
}

/// The other encoding of a P-384 signature (r, n - s), if it has
/// [`SIGNATURE_LEN`] bytes.
fn other_s(der: &[u8]) -> Option<Vec<u8>> {
    let signature = p384::ecdsa::Signature::from_der(der).ok()?;
    let (r, s) = signature.split_scalars();
    let flipped = p384::ecdsa::Signature::from_scalars(r, -s).ok()?.to_der();
    Some(flipped.as_bytes().to_vec()).filter(|d| d.len() == SIGNATURE_LEN)
}

/// Verify the footer: as many tags as EDKs, one of them under `key`, and
/// the signature under `verification_key` when the suite signs.
pub(crate) fn verify(
    footer: &[u8],
    hash: &[u8; 48],
    edk_count: usize,
    key: &DataKey,
    verification_key: Option<&[u8]>,
) -> Result<()> {
    let sig_len = if verification_key.is_some() { SIGNATURE_LEN } else { 0 };
    if footer.len() != edk_count * TAG_LEN + sig_len {
        return Err(Error::ItemAuthentication {
            reason: format!("the footer has {} bytes, expected {}", footer.len(), edk_count * TAG_LEN + sig_len),
        });
    }
    let (tags, signature) = footer.split_at(edk_count * TAG_LEN);
    let expected = tag(key, hash)?;
    let found = tags.chunks(TAG_LEN).fold(subtle::Choice::from(0), |acc, t| acc | t.ct_eq(&expected));
    if !bool::from(found) {
        return Err(Error::ItemAuthentication { reason: "no record tag matches: the item was altered".into() });
    }
    if let Some(public_key) = verification_key {
        let digest = digest_of(hash);
        crate::crypto::ecdsa_verify_digest(SignatureCurve::P384, public_key, &digest, signature)
            .map_err(|_| Error::Signature { reason: "the item's record signature does not verify".into() })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha384};

    use super::*;
    use crate::crypto::SoftwareSigner;

    #[test]
    fn record_layout_by_hand() {
        let fields = vec![
            (&b"P1"[..], RecordField::Encrypted(&[0, 1, 9, 9][..])),
            (&b"P2"[..], RecordField::Plaintext([0, 2], &b"12"[..])),
        ];
        let h = record_hash(b"HEAD", b"CTX", fields).unwrap();
        let mut record = b"HEAD".to_vec();
        record.extend_from_slice(&3u64.to_be_bytes());
        record.extend_from_slice(b"CTX");
        record.extend_from_slice(b"P1");
        record.extend_from_slice(&2u64.to_be_bytes());
        record.extend_from_slice(b"ENCRYPTED");
        record.extend_from_slice(&[0, 1, 9, 9]);
        record.extend_from_slice(b"P2");
        record.extend_from_slice(&2u64.to_be_bytes());
        record.extend_from_slice(b"PLAINTEXT");
        record.extend_from_slice(&[0, 2]);
        record.extend_from_slice(b"12");
        assert_eq!(h[..], Sha384::digest(&record)[..]);
    }

    /// Counts the signatures it makes.
    #[derive(Debug)]
    struct Counting(SoftwareSigner, std::sync::atomic::AtomicUsize);

    impl FooterSigner for Counting {
        fn curve(&self) -> SignatureCurve {
            self.0.curve()
        }
        fn public_key(&self) -> Vec<u8> {
            self.0.public_key()
        }
        fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.0.sign_digest(digest)
        }
    }

    #[test]
    fn one_signature_of_any_length_gives_one_of_103_bytes() {
        let signer = Counting(SoftwareSigner::generate(SignatureCurve::P384), Default::default());
        let public = signer.public_key();
        let key = [DataKey::new(vec![1; 32])];
        let mut lengths = std::collections::BTreeSet::new();
        for i in 0..32u8 {
            let h = [i; 48];
            let digest: [u8; 48] = Sha384::digest(h).into();
            let plain = signer.sign_digest(&digest).unwrap();
            lengths.insert(plain.len());
            if let Some(flipped) = other_s(&plain) {
                assert_ne!(flipped, plain);
                crate::crypto::ecdsa_verify_digest(SignatureCurve::P384, &public, &digest, &flipped).unwrap();
            }
            let before = signer.1.load(std::sync::atomic::Ordering::Relaxed);
            let footer = create(&h, &key, Some(&signer)).unwrap();
            assert_eq!(footer.len(), 48 + 103);
            verify(&footer, &h, 1, &key[0], Some(&public)).unwrap();
            assert!(verify(&footer, &[i ^ 1; 48], 1, &key[0], Some(&public)).is_err());
            // Almost always one signature (two if r has a leading zero byte: 1 in 2^8).
            assert!(signer.1.load(std::sync::atomic::Ordering::Relaxed) - before <= 2);
        }
        // Signatures of other lengths than 103 were met and fixed.
        assert!(lengths.iter().any(|&l| l != 103), "{lengths:?}");
        assert_eq!(other_s(b"not DER"), None);
    }

    #[test]
    fn tags_and_signature_verify_and_tampering_fails() {
        let h = [9u8; 48];
        let keys = [DataKey::new(vec![1; 32]), DataKey::new(vec![2; 32])];
        let signer = SoftwareSigner::generate(SignatureCurve::P384);
        let public = signer.public_key();
        for _ in 0..4 {
            let footer = create(&h, &keys, Some(&signer)).unwrap();
            assert_eq!(footer.len(), 2 * 48 + 103);
            verify(&footer, &h, 2, &keys[1], Some(&public)).unwrap();
            verify(&footer, &h, 2, &keys[0], Some(&public)).unwrap();
            assert!(verify(&footer, &[8; 48], 2, &keys[0], Some(&public)).is_err());
            assert!(verify(&footer, &h, 2, &DataKey::new(vec![3; 32]), Some(&public)).is_err());
            assert!(verify(&footer, &h, 1, &keys[0], Some(&public)).is_err());
            let mut bad = footer.clone();
            bad[150] ^= 1;
            assert!(verify(&bad, &h, 2, &keys[0], Some(&public)).is_err());
            let other = SoftwareSigner::generate(SignatureCurve::P384).public_key();
            assert!(verify(&footer, &h, 2, &keys[0], Some(&other)).is_err());
        }
        let footer = create(&h, &keys[..1], None).unwrap();
        assert_eq!(footer.len(), 48);
        verify(&footer, &h, 1, &keys[0], None).unwrap();
        assert!(verify(&footer, &h, 1, &keys[0], Some(&signer.public_key())).is_err());
    }
}
