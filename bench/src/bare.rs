//! The ceilings: bare AES-256-GCM over the same plaintext, in frame-sized
//! chunks, with a fixed nonce and a short AAD, copying the input into a work
//! buffer first (as any message writer must). No key derivation, header,
//! framing or signature.

use std::time::Duration;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};

use crate::case::{Case, Metric, Outcome, FRAME, WRAPPING_KEY};
use crate::measure::{plaintext, rate, Op, R};

const AAD: &[u8] = b"an AAD about as long as a frame's";

fn measure<'a>(
    case: &Case,
    enc: &(dyn Fn(usize) -> R<Op<'a>> + Sync),
    dec: &(dyn Fn(usize) -> R<Op<'a>> + Sync),
) -> R<Outcome> {
    let run = Duration::from_secs_f64(case.round_secs);
    Ok(Outcome {
        encrypt: Metric { per_sec: rate(case.threads, run, enc)?, ..Metric::default() },
        decrypt: Metric { per_sec: rate(case.threads, run, dec)?, ..Metric::default() },
        notes: Vec::new(),
    })
}

/// `aes-gcm` 0.10 `Aes256Gcm`.
pub fn aes_gcm(case: &Case) -> R<Outcome> {
    let cipher = Aes256Gcm::new_from_slice(&WRAPPING_KEY).map_err(|e| e.to_string())?;
    let nonce = Nonce::from_slice(&[0u8; 12]);
    let pt = plaintext(case.size);
    let mut sealed = pt.clone();
    let mut tags = Vec::new();
    for chunk in sealed.chunks_mut(FRAME) {
        tags.push(cipher.encrypt_in_place_detached(nonce, AAD, chunk).map_err(|e| e.to_string())?);
    }
    let tags: &[Tag] = &tags;
    let (cipher, pt, sealed) = (&cipher, &pt, &sealed);
    let enc = move |_t: usize| -> R<Op<'_>> {
        let mut buf = vec![0u8; pt.len()];
        Ok(Box::new(move || {
            buf.copy_from_slice(pt);
            for chunk in buf.chunks_mut(FRAME) {
                let tag = cipher.encrypt_in_place_detached(nonce, AAD, chunk).map_err(|e| e.to_string())?;
                std::hint::black_box(tag);
            }
            Ok(())
        }))
    };
    let dec = move |_t: usize| -> R<Op<'_>> {
        let mut buf = vec![0u8; pt.len()];
        Ok(Box::new(move || {
            buf.copy_from_slice(sealed);
            for (chunk, tag) in buf.chunks_mut(FRAME).zip(tags) {
                cipher.decrypt_in_place_detached(nonce, AAD, chunk, tag).map_err(|e| e.to_string())?;
            }
            if buf.first() != pt.first() {
                return Err("bare aes-gcm: wrong plaintext".to_owned());
            }
            Ok(())
        }))
    };
    measure(case, &enc, &dec)
}

/// `aws-lc-rs` `LessSafeKey` with `AES_256_GCM`.
#[cfg(feature = "references")]
pub fn aws_lc(case: &Case) -> R<Outcome> {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce as LcNonce, UnboundKey, AES_256_GCM};

    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &WRAPPING_KEY).map_err(|e| e.to_string())?);
    let nonce = || LcNonce::assume_unique_for_key([0u8; 12]);
    let pt = plaintext(case.size);
    let mut sealed = pt.clone();
    let mut tags = Vec::new();
    for chunk in sealed.chunks_mut(FRAME) {
        tags.push(key.seal_in_place_separate_tag(nonce(), Aad::from(AAD), chunk).map_err(|e| e.to_string())?);
    }
    let (key, pt, sealed, tags) = (&key, &pt, &sealed, &tags);
    let enc = move |_t: usize| -> R<Op<'_>> {
        let mut buf = vec![0u8; pt.len()];
        Ok(Box::new(move || {
            buf.copy_from_slice(pt);
            for chunk in buf.chunks_mut(FRAME) {
                let tag = key.seal_in_place_separate_tag(nonce(), Aad::from(AAD), chunk).map_err(|e| e.to_string())?;
                std::hint::black_box(tag);
            }
            Ok(())
        }))
    };
    let dec = move |_t: usize| -> R<Op<'_>> {
        let mut buf = vec![0u8; pt.len()];
        Ok(Box::new(move || {
            buf.copy_from_slice(sealed);
            for (chunk, tag) in buf.chunks_mut(FRAME).zip(tags) {
                key.open_in_place_separate_tag(nonce(), Aad::from(AAD), tag.as_ref(), chunk)
                    .map_err(|e| e.to_string())?;
            }
            if buf.first() != pt.first() {
                return Err("bare aws-lc-rs: wrong plaintext".to_owned());
            }
            Ok(())
        }))
    };
    measure(case, &enc, &dec)
}
