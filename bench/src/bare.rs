//! The ceilings: bare AES-256-GCM over the same plaintext, in frame-sized
//! chunks, with a fixed nonce and a short AAD, copying the input into a work
//! buffer first (as any message writer must). No key derivation, header,
//! framing or signature.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::time::{Duration, Instant};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};

use crate::case::{Case, Metric, Mode, Outcome, FRAME, WRAPPING_KEY};
use crate::measure::{best_of, pattern, plaintext, rate, CountingSink, Generator, Op, PeakMeter, R};

/// Timed runs of a large case.
const LARGE_RUNS: u32 = 3;

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
    if case.mode == Mode::Large {
        return large(
            case,
            |chunk| {
                let tag = cipher.encrypt_in_place_detached(nonce, AAD, chunk).map_err(|e| e.to_string())?;
                Ok(tag.into())
            },
            |chunk, tag| {
                cipher.decrypt_in_place_detached(nonce, AAD, chunk, Tag::from_slice(tag)).map_err(|e| e.to_string())
            },
        );
    }
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
    if case.mode == Mode::Large {
        return large(
            case,
            |chunk| {
                let tag = key.seal_in_place_separate_tag(nonce(), Aad::from(AAD), chunk).map_err(|e| e.to_string())?;
                tag.as_ref().try_into().map_err(|_| "tag is not 16 bytes".to_owned())
            },
            |chunk, tag| {
                key.open_in_place_separate_tag(nonce(), Aad::from(AAD), tag, chunk).map(drop).map_err(|e| e.to_string())
            },
        );
    }
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
                let _ = std::hint::black_box(tag);
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

/// The large case, streamed like hsm-keyring's: encrypt from the generator
/// through a 64 KiB buffer into a counting sink (each chunk followed by its
/// tag); decrypt chunk-and-tag records from a message already in memory (as
/// hsm-keyring's and aws-esdk's decryption are timed) into a counting sink.
fn large(case: &Case, seal: impl Fn(&mut [u8]) -> R<[u8; 16]>, open: impl Fn(&mut [u8], &[u8]) -> R<()>) -> R<Outcome> {
    let pattern = pattern();
    let err = |e: std::io::Error| e.to_string();
    let encrypt_into = |out: &mut dyn Write| -> R<()> {
        let mut input = Generator::new(std::sync::Arc::clone(&pattern), case.size);
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let mut n = 0;
            while n < buf.len() {
                match input.read(&mut buf[n..]).map_err(err)? {
                    0 => break,
                    k => n += k,
                }
            }
            if n == 0 {
                return Ok(());
            }
            for chunk in buf[..n].chunks_mut(FRAME) {
                let tag = seal(chunk)?;
                out.write_all(chunk).map_err(err)?;
                out.write_all(&tag).map_err(err)?;
            }
        }
    };

    let meter = PeakMeter::start()?;
    let enc = best_of(LARGE_RUNS, || {
        let start = Instant::now();
        let mut sink = CountingSink::default();
        encrypt_into(&mut sink)?;
        Ok(start.elapsed())
    })?;
    let enc_peak = meter.growth_kib()?;

    let file = tempfile::NamedTempFile::new().map_err(err)?;
    {
        let mut out = BufWriter::with_capacity(64 << 10, File::create(file.path()).map_err(err)?);
        encrypt_into(&mut out)?;
        out.flush().map_err(err)?;
    }

    let message = std::fs::read(file.path()).map_err(err)?;
    let meter = PeakMeter::start()?;
    let dec = best_of(LARGE_RUNS, || {
        let start = Instant::now();
        let mut input = message.as_slice();
        let mut sink = CountingSink::default();
        let mut record = vec![0u8; FRAME + 16];
        let mut remaining = case.size;
        while remaining > 0 {
            let len = remaining.min(FRAME);
            let record = &mut record[..len + 16];
            input.read_exact(record).map_err(err)?;
            let (chunk, tag) = record.split_at_mut(len);
            open(chunk, tag)?;
            sink.write_all(chunk).map_err(err)?;
            remaining -= len;
        }
        Ok(start.elapsed())
    })?;
    let dec_peak = meter.growth_kib()?;
    Ok(Outcome {
        encrypt: Metric { per_sec: 1.0 / enc, peak_kib: Some(enc_peak), runs: Some(LARGE_RUNS) },
        decrypt: Metric { per_sec: 1.0 / dec, peak_kib: Some(dec_peak), runs: Some(LARGE_RUNS) },
        notes: Vec::new(),
    })
}
