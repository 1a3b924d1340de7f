//! PKCS#11 AES keyring against bare cryptoki calls, on one SoftHSM token.
//!
//! One operation = wrap a 32-byte data key with AES-GCM and unwrap it again.
//! "bare" is `C_Encrypt` + `C_Decrypt` on an open session with a known key
//! handle; "keyring" is `Pkcs11AesKeyring::on_encrypt` + `on_decrypt` (session
//! pool, handle cache, EDK layout, context serialization, random IV).
//! Prints a markdown table; targets: keyring/bare time <= 1.15x, and 2 threads
//! >= 1.6x the throughput of 1 thread.
//!
//! The last rows are whole messages: 1 KiB encrypted and decrypted through
//! `Client` with the keyring (suite 0x0478, and 0x0578 whose ECDSA signature
//! dominates). Each cell is the best of three rounds, measured in turns so
//! that load on a shared machine hits every case alike.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use hsm_keyring::cmm::DefaultCmm;
use hsm_keyring::pkcs11::Pkcs11AesKeyring;
use hsm_keyring::pkcs11::{Pkcs11Uri, Token, TokenOptions};
use hsm_keyring::{
    AlgorithmSuite, Client, DataKey, DecryptionMaterials, EncryptionContext, EncryptionMaterials, Keyring,
};

const RUN: Duration = Duration::from_millis(1500);

/// Ops per second of `threads` threads each running `op` for `RUN`.
fn measure(threads: usize, op: impl Fn(usize) -> Box<dyn FnMut() + Send> + Sync) -> f64 {
    let barrier = Arc::new(Barrier::new(threads));
    let counts: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = Arc::clone(&barrier);
                let mut f = op(t);
                s.spawn(move || {
                    for _ in 0..200 {
                        f();
                    }
                    barrier.wait();
                    let start = Instant::now();
                    let mut n = 0u64;
                    while start.elapsed() < RUN {
                        for _ in 0..50 {
                            f();
                        }
                        n += 50;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("bench thread")).collect()
    });
    counts.iter().sum::<u64>() as f64 / RUN.as_secs_f64()
}

fn main() {
    let Some(hsm) = common::softhsm() else { return };
    let uri = Pkcs11Uri::parse(&hsm.token_uri()).expect("uri");
    let token = Token::open_with(&uri, TokenOptions::default().pool_size(2)).expect("token");
    let key_uri = token.generate_aes_key("bench-aes", None).expect("key");
    let keyring = Arc::new(Pkcs11AesKeyring::new(token, &key_uri).expect("keyring"));
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let context = EncryptionContext::from_pairs([("purpose", "bench"), ("tenant", "a")]).expect("context");
    let aad = context.serialize().expect("aad");
    let data_key = DataKey::generate(32).expect("data key");

    let bare = |_t: usize| -> Box<dyn FnMut() + Send> {
        let session = hsm.raw_session();
        let handle = session
            .find_objects(&[Attribute::Label(b"bench-aes".to_vec())])
            .expect("find")
            .first()
            .copied()
            .expect("bench key");
        let aad = aad.clone();
        let key = data_key.as_bytes().to_vec();
        let mut counter = 0u64;
        Box::new(move || {
            counter += 1;
            let mut iv = [0u8; 12];
            iv[4..].copy_from_slice(&counter.to_be_bytes());
            let mut iv2 = iv;
            let ct = session
                .encrypt(&Mechanism::AesGcm(GcmParams::new(&mut iv, &aad, 128.into()).expect("gcm")), handle, &key)
                .expect("C_Encrypt");
            let pt = session
                .decrypt(&Mechanism::AesGcm(GcmParams::new(&mut iv2, &aad, 128.into()).expect("gcm")), handle, &ct)
                .expect("C_Decrypt");
            assert_eq!(pt.len(), 32);
        })
    };
    let with_keyring = |_t: usize| -> Box<dyn FnMut() + Send> {
        let keyring = Arc::clone(&keyring);
        let mut materials = EncryptionMaterials::new(suite, context.clone());
        materials.set_data_key(data_key.clone()).expect("set key");
        let context = context.clone();
        Box::new(move || {
            let enc = keyring.on_encrypt(materials.clone()).expect("on_encrypt");
            let dec = keyring
                .on_decrypt(DecryptionMaterials::new(suite, context.clone()), enc.encrypted_data_keys())
                .expect("on_decrypt");
            assert!(dec.data_key().is_some());
        })
    };

    let message = |suite: AlgorithmSuite| {
        let keyring = Arc::clone(&keyring);
        let context = context.clone();
        move |_t: usize| -> Box<dyn FnMut() + Send> {
            let cmm = DefaultCmm::new(Arc::clone(&keyring));
            let client = Client::builder().algorithm_suite(suite).build().expect("client");
            let context = context.clone();
            let plaintext = vec![0x5Au8; 1024];
            Box::new(move || {
                let ct = client.encrypt(&cmm, &plaintext, &context).expect("encrypt");
                let pt = client.decrypt(&cmm, &ct, &context).expect("decrypt");
                assert_eq!(pt.plaintext.len(), 1024);
            })
        }
    };
    let msg_0478 = message(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey);
    let msg_0578 = message(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384);

    let (mut bare1, mut ring1, mut bare2, mut ring2) = (0f64, 0f64, 0f64, 0f64);
    let (mut m1, mut m2, mut s1, mut s2) = (0f64, 0f64, 0f64, 0f64);
    for _ in 0..3 {
        bare1 = bare1.max(measure(1, bare));
        ring1 = ring1.max(measure(1, with_keyring));
        bare2 = bare2.max(measure(2, bare));
        ring2 = ring2.max(measure(2, with_keyring));
        m1 = m1.max(measure(1, &msg_0478));
        m2 = m2.max(measure(2, &msg_0478));
        s1 = s1.max(measure(1, &msg_0578));
        s2 = s2.max(measure(2, &msg_0578));
    }

    println!("\n| case (SoftHSM) | threads | ops/s | time vs bare | vs 1 thread |");
    println!("|---|---|---|---|---|");
    println!("| bare cryptoki C_Encrypt + C_Decrypt of a 32-byte key | 1 | {bare1:.0} | 1.00x | 1.00x |");
    println!("| Pkcs11AesKeyring on_encrypt + on_decrypt | 1 | {ring1:.0} | {:.2}x | 1.00x |", bare1 / ring1);
    println!(
        "| bare cryptoki C_Encrypt + C_Decrypt of a 32-byte key | 2 | {bare2:.0} | 1.00x | {:.2}x |",
        bare2 / bare1
    );
    println!(
        "| Pkcs11AesKeyring on_encrypt + on_decrypt | 2 | {ring2:.0} | {:.2}x | {:.2}x |",
        bare2 / ring2,
        ring2 / ring1
    );
    println!("| 1 KiB message 0x0478 encrypt + decrypt, HSM keyring | 1 | {m1:.0} | {:.2}x | 1.00x |", bare1 / m1);
    println!(
        "| 1 KiB message 0x0478 encrypt + decrypt, HSM keyring | 2 | {m2:.0} | {:.2}x | {:.2}x |",
        bare2 / m2,
        m2 / m1
    );
    println!("| 1 KiB message 0x0578 encrypt + decrypt, HSM keyring | 1 | {s1:.0} | {:.2}x | 1.00x |", bare1 / s1);
    println!(
        "| 1 KiB message 0x0578 encrypt + decrypt, HSM keyring | 2 | {s2:.0} | {:.2}x | {:.2}x |",
        bare2 / s2,
        s2 / s1
    );
    println!("\ntargets: keyring time vs bare <= 1.15x; keyring 2 threads >= 1.6x of 1 thread");
}
