//! Throughput of message encryption and decryption against bare AES-GCM over
//! the same bytes, measured in the same run, with the raw AES keyring.
//! Prints a markdown table.
//!
//! `cargo bench --bench message` (about a minute).

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hsm_keyring::cmm::DefaultCmm;
use hsm_keyring::keyrings::RawAesKeyring;
use hsm_keyring::{AlgorithmSuite, Client, EncryptionContext};

/// Each measurement is the best of `BATCHES` batches of at least `BATCH_TIME`:
/// the machine may be shared, and interference only ever adds time.
const BATCH_TIME: Duration = Duration::from_millis(60);
const BATCHES: usize = 5;

/// Seconds per call of `f`.
fn time<F: FnMut()>(mut f: F) -> f64 {
    f(); // warm-up
    let mut best = f64::INFINITY;
    for _ in 0..BATCHES {
        let mut iters = 0u32;
        let start = Instant::now();
        loop {
            f();
            iters += 1;
            let elapsed = start.elapsed();
            if elapsed >= BATCH_TIME {
                best = best.min(elapsed.as_secs_f64() / f64::from(iters));
                break;
            }
        }
    }
    best
}

fn mbps(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

fn bare_encrypt(cipher: &Aes256Gcm, buf: &mut [u8], frame: usize) -> u8 {
    let nonce = Nonce::from_slice(&[0u8; 12]);
    let mut acc = 0u8;
    for chunk in buf.chunks_mut(frame) {
        let tag = cipher.encrypt_in_place_detached(nonce, b"aad of about the same size as ours", chunk).unwrap();
        acc ^= tag[0];
    }
    acc
}

fn bare_decrypt(cipher: &Aes256Gcm, buf: &mut [u8], tags: &[Tag], frame: usize) {
    let nonce = Nonce::from_slice(&[0u8; 12]);
    for (chunk, tag) in buf.chunks_mut(frame).zip(tags) {
        cipher.decrypt_in_place_detached(nonce, b"aad of about the same size as ours", chunk, tag).unwrap();
    }
}

fn main() {
    let keyring = RawAesKeyring::new("bench-ns", "bench-key", &[0x42; 32]).expect("valid AES-256 key");
    let cmm = DefaultCmm::new(&keyring);
    let ctx = EncryptionContext::from_pairs([("purpose", "bench")]).unwrap();
    let cipher = Aes256Gcm::new_from_slice(&[7u8; 32]).unwrap();

    println!("MB/s (ratio to bare AES-256-GCM over the same bytes in frame-sized chunks, same run).");
    println!("`new Vec`: encrypt/decrypt returning a fresh Vec; `reused`: encrypt_into/decrypt_into a reused Vec;");
    println!("`stream`: EncryptingWriter/DecryptingReader over reused buffers.");
    println!();
    println!(
        "| size | suite | frame | bare enc | enc new Vec | enc reused | enc stream | bare dec | dec new Vec | dec reused | dec stream |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut per_message = Vec::new();
    for (size_name, size) in [("1 KiB", 1usize << 10), ("1 MiB", 1 << 20), ("64 MiB", 64 << 20)] {
        let plaintext: Vec<u8> = (0..size).map(|i| i as u8).collect();
        for suite in
            [AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384]
        {
            for frame in [4096u32, 65536] {
                let client = Client::builder().algorithm_suite(suite).frame_length(frame).build().unwrap();
                let message = client.encrypt(&cmm, &plaintext, &ctx).unwrap();
                let enc = time(|| {
                    black_box(client.encrypt(&cmm, black_box(&plaintext), &ctx).unwrap());
                });
                let dec = time(|| {
                    black_box(client.decrypt(&cmm, black_box(&message), &ctx).unwrap());
                });
                let mut buf = plaintext.clone();
                let bare_enc = time(|| {
                    // Copy in, as a message writer must, then seal each frame.
                    buf.copy_from_slice(&plaintext);
                    black_box(bare_encrypt(&cipher, &mut buf, frame as usize));
                });
                buf.copy_from_slice(&plaintext);
                let nonce = Nonce::from_slice(&[0u8; 12]);
                let tags: Vec<Tag> = buf
                    .chunks_mut(frame as usize)
                    .map(|c| cipher.encrypt_in_place_detached(nonce, b"aad of about the same size as ours", c).unwrap())
                    .collect();
                let sealed = buf.clone();
                let bare_dec = time(|| {
                    buf.copy_from_slice(&sealed);
                    bare_decrypt(&cipher, &mut buf, &tags, frame as usize);
                    black_box(&buf);
                });
                let mut reused = Vec::with_capacity(message.len() + 1024);
                let enc_into = time(|| {
                    reused.clear();
                    client.encrypt_into(&cmm, black_box(&plaintext), &ctx, &mut reused).unwrap();
                });
                let mut reused_pt = Vec::with_capacity(size);
                let dec_into = time(|| {
                    reused_pt.clear();
                    client.decrypt_into(&cmm, black_box(&message), &ctx, &mut reused_pt).unwrap();
                });
                let mut sink = Vec::with_capacity(message.len() + 1024);
                let stream_enc = time(|| {
                    sink.clear();
                    let mut w = client.encrypt_stream(&cmm, &ctx, &mut sink).unwrap();
                    w.write_all(black_box(&plaintext)).unwrap();
                    w.finish().unwrap();
                });
                let mut out = vec![0u8; size];
                let stream_dec = time(|| {
                    let mut r = client.decrypt_stream(&cmm, &ctx, black_box(&message[..])).unwrap();
                    r.read_exact(&mut out).unwrap();
                    assert_eq!(r.read(&mut [0u8; 1]).unwrap(), 0);
                });
                let cell = |secs: f64, bare: f64| format!("{:.0} ({:.2}x)", mbps(size, secs), bare / secs);
                println!(
                    "| {size_name} | 0x{:04X} | {} KiB | {:.0} | {} | {} | {} | {:.0} | {} | {} | {} |",
                    suite.id(),
                    frame / 1024,
                    mbps(size, bare_enc),
                    cell(enc, bare_enc),
                    cell(enc_into, bare_enc),
                    cell(stream_enc, bare_enc),
                    mbps(size, bare_dec),
                    cell(dec, bare_dec),
                    cell(dec_into, bare_dec),
                    cell(stream_dec, bare_dec),
                );
                if size == 1 << 10 && frame == 4096 {
                    per_message.push((suite, enc_into * 1e6, dec_into * 1e6));
                }
            }
        }
    }
    println!();
    println!("| 1 KiB message, raw AES keyring | encrypt µs | decrypt µs |");
    println!("|---|---|---|");
    for (suite, e, d) in per_message {
        println!("| 0x{:04X} | {e:.1} | {d:.1} |", suite.id());
    }
}
