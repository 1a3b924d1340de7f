//! AES-256-GCM over a stream: the one GCM computation of an S3 object body,
//! continued chunk by chunk (and across multipart-upload parts).
//!
//! Built from the same RustCrypto pieces the `aes-gcm` crate composes (the
//! `aes` block cipher, `ctr` in its 32-bit big-endian counter mode, and
//! `ghash`), because a GCM whose tag covers a whole object of gigabytes
//! cannot be held in memory for a one-shot AEAD call. The unit tests check it
//! byte for byte against `aes-gcm` at every split of the input.
//!
//! The same keystream without the tag is the "AES-CTR equivalent" of ranged
//! reads: counter block = IV || (2 + block index), big-endian.

use aes::cipher::{BlockEncrypt, KeyInit, KeyIvInit, StreamCipher, StreamCipherSeek};
use aes::Aes256;
use ghash::universal_hash::UniversalHash;
use ghash::GHash;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::crypto::{IV_LEN, TAG_LEN};
use crate::error::{Error, Result};

type Ctr = ctr::Ctr32BE<Aes256>;

/// The most plaintext one GCM computation may cover (NIST SP 800-38D): 2^39 - 256 bits.
pub(crate) const GCM_MAX_PLAINTEXT: u64 = (1 << 36) - 32;

/// Whether the stream encrypts or decrypts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Encrypt,
    Decrypt,
}

/// One AES-256-GCM computation in progress.
pub(crate) struct GcmStream {
    direction: Direction,
    ctr: Ctr,
    ghash: GHash,
    tag_mask: Zeroizing<[u8; 16]>,
    partial: [u8; 16],
    partial_len: usize,
    aad_len: u64,
    text_len: u64,
}

impl std::fmt::Debug for GcmStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcmStream").field("direction", &self.direction).field("bytes", &self.text_len).finish()
    }
}

/// The counter block of the first keystream block: IV || 00000002.
fn first_counter(iv: &[u8; IV_LEN]) -> [u8; 16] {
    let mut block = [0u8; 16];
    block[..IV_LEN].copy_from_slice(iv);
    block[15] = 2;
    block
}

/// AES-CTR keystream positioned at plaintext byte `offset` of the GCM body
/// (for ranged reads: no tag, so no authentication).
pub(crate) fn ctr_at(key: &[u8; 32], iv: &[u8; IV_LEN], offset: u64) -> Result<CtrStream> {
    let mut ctr = Ctr::new(key.into(), &first_counter(iv).into());
    ctr.try_seek(offset).map_err(|_| Error::crypto("ranged read offset beyond the AES-CTR counter range"))?;
    Ok(CtrStream(ctr))
}

/// A bare AES-CTR keystream (ranged reads).
pub(crate) struct CtrStream(Ctr);

impl CtrStream {
    /// XOR the keystream into `buf`.
    pub(crate) fn apply(&mut self, buf: &mut [u8]) -> Result<()> {
        self.0.try_apply_keystream(buf).map_err(|_| Error::crypto("AES-CTR counter exhausted"))
    }
}

impl GcmStream {
    /// Start a computation with `key`, `iv` and `aad`.
    pub(crate) fn new(direction: Direction, key: &[u8; 32], iv: &[u8; IV_LEN], aad: &[u8]) -> Self {
        let cipher = Aes256::new(key.into());
        let mut h = Zeroizing::new([0u8; 16]);
        cipher.encrypt_block((&mut *h).into());
        let mut j0 = [0u8; 16];
        j0[..IV_LEN].copy_from_slice(iv);
        j0[15] = 1;
        let mut mask = Zeroizing::new(j0);
        cipher.encrypt_block((&mut *mask).into());
        let mut ghash = GHash::new((&*h).into());
        ghash.update_padded(aad);
        GcmStream {
            direction,
            ctr: Ctr::new(key.into(), &first_counter(iv).into()),
            ghash,
            tag_mask: mask,
            partial: [0u8; 16],
            partial_len: 0,
            aad_len: aad.len() as u64,
            text_len: 0,
        }
    }

    /// Bytes processed so far.
    pub(crate) fn processed(&self) -> u64 {
        self.text_len
    }

    /// Encrypt or decrypt `buf` in place (any length, any number of calls).
    pub(crate) fn update(&mut self, buf: &mut [u8]) -> Result<()> {
        let total = self.text_len.checked_add(buf.len() as u64).filter(|&t| t <= GCM_MAX_PLAINTEXT);
        let Some(total) = total else {
            return Err(Error::config(format!(
                "an S3 object body is one AES-GCM computation, at most {GCM_MAX_PLAINTEXT} bytes"
            )));
        };
        self.text_len = total;
        match self.direction {
            Direction::Encrypt => {
                self.ctr.apply_keystream(buf);
                self.absorb(buf);
            }
            Direction::Decrypt => {
                self.absorb(buf);
                self.ctr.apply_keystream(buf);
            }
        }
        Ok(())
    }

    /// Feed ciphertext to GHASH, whole blocks at once, keeping a partial block.
    fn absorb(&mut self, mut data: &[u8]) {
        if self.partial_len > 0 {
            let take = (16 - self.partial_len).min(data.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&data[..take]);
            self.partial_len += take;
            data = &data[take..];
            if self.partial_len < 16 {
                return;
            }
            let block = self.partial;
            self.ghash.update(&[block.into()]);
            self.partial_len = 0;
        }
        let whole = data.len() - data.len() % 16;
        if whole > 0 {
            // A multiple of 16 bytes: `update_padded` adds no padding.
            self.ghash.update_padded(&data[..whole]);
        }
        let rest = &data[whole..];
        self.partial[..rest.len()].copy_from_slice(rest);
        self.partial_len = rest.len();
    }

    /// The tag over everything processed.
    pub(crate) fn tag(mut self) -> [u8; TAG_LEN] {
        if self.partial_len > 0 {
            let len = self.partial_len;
            let block = self.partial;
            self.ghash.update_padded(&block[..len]);
        }
        let mut lengths = [0u8; 16];
        lengths[..8].copy_from_slice(&(self.aad_len * 8).to_be_bytes());
        lengths[8..].copy_from_slice(&(self.text_len * 8).to_be_bytes());
        self.ghash.update(&[lengths.into()]);
        let mut tag: [u8; TAG_LEN] = self.ghash.clone().finalize().into();
        for (t, m) in tag.iter_mut().zip(self.tag_mask.iter()) {
            *t ^= m;
        }
        tag
    }

    /// Compare the computed tag with `expected`, in constant time.
    pub(crate) fn verify(self, expected: &[u8]) -> bool {
        let tag = self.tag();
        expected.len() == TAG_LEN && bool::from(tag.ct_eq(expected))
    }
}

#[cfg(test)]
mod tests {
    use aes_gcm::aead::{AeadInPlace, KeyInit as _};
    use aes_gcm::{Aes256Gcm, Nonce};
    use proptest::prelude::*;

    use super::*;

    fn reference(key: &[u8; 32], iv: &[u8; 12], aad: &[u8], data: &[u8]) -> (Vec<u8>, [u8; 16]) {
        let mut buf = data.to_vec();
        let tag = Aes256Gcm::new(key.into()).encrypt_in_place_detached(Nonce::from_slice(iv), aad, &mut buf).unwrap();
        (buf, tag.into())
    }

    proptest! {
        #[test]
        fn matches_aes_gcm_at_every_split(
            key in any::<[u8; 32]>(), iv in any::<[u8; 12]>(), aad in proptest::collection::vec(any::<u8>(), 0..40),
            data in proptest::collection::vec(any::<u8>(), 0..300), cuts in proptest::collection::vec(0usize..300, 0..6),
        ) {
            let (expected_ct, expected_tag) = reference(&key, &iv, &aad, &data);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut enc = GcmStream::new(Direction::Encrypt, &key, &iv, &aad);
            let mut ct = data.clone();
            let mut start = 0;
            for cut in cuts.iter().copied().chain([data.len()]) {
                enc.update(&mut ct[start..cut]).unwrap();
                start = cut;
            }
            prop_assert_eq!(&ct, &expected_ct);
            prop_assert_eq!(enc.tag(), expected_tag);

            let mut dec = GcmStream::new(Direction::Decrypt, &key, &iv, &aad);
            let mut pt = ct.clone();
            let mut start = 0;
            for cut in cuts.iter().copied().chain([data.len()]) {
                dec.update(&mut pt[start..cut]).unwrap();
                start = cut;
            }
            prop_assert_eq!(&pt, &data);
            prop_assert!(dec.verify(&expected_tag));
        }

        #[test]
        fn ctr_at_any_offset_is_the_gcm_keystream(key in any::<[u8; 32]>(), iv in any::<[u8; 12]>(),
            data in proptest::collection::vec(any::<u8>(), 1..200), from in 0usize..200) {
            let from = from.min(data.len() - 1);
            let (ct, _) = reference(&key, &iv, b"", &data);
            let mut part = ct[from..].to_vec();
            ctr_at(&key, &iv, from as u64).unwrap().apply(&mut part).unwrap();
            prop_assert_eq!(&part[..], &data[from..]);
        }
    }

    #[test]
    fn a_flipped_tag_bit_fails() {
        let (ct, mut tag) = reference(&[1; 32], &[2; 12], b"x", b"hello");
        tag[0] ^= 1;
        let mut dec = GcmStream::new(Direction::Decrypt, &[1; 32], &[2; 12], b"x");
        let mut pt = ct;
        dec.update(&mut pt).unwrap();
        assert!(!dec.verify(&tag));
    }
}
