//! PKCS#11 AES keyring against bare cryptoki calls, on one SoftHSM token.
//!
//! One operation = wrap a 32-byte data key with AES-GCM and unwrap it again.
//! "bare" is `C_Encrypt` + `C_Decrypt` on an open session with a known key
//! handle; "keyring" is `Pkcs11AesKeyring::on_encrypt` + `on_decrypt` (session
//! pool, handle cache, EDK layout, context serialization, random IV).
//! Prints a markdown table; targets: keyring/bare time <= 1.15x, and 2 threads
//! >= 1.6x the throughput of 1 thread.
//!
//! Then whole messages: 1 KiB encrypted and decrypted through `Client` with
//! the keyring (suite 0x0478, and 0x0578 whose ECDSA signature dominates).
//! The last rows are a network HSM: 1 ms more per token operation
//! (`C_EncryptInit`, `C_DecryptInit`), from the fault-injecting module's
//! latency rule when `HSM_KEYRING_FAULT_MODULE` names it (`ci/faults.sh`),
//! else from a keyring wrapper that sleeps in process; 1 and 8 threads on a
//! pool of 8 sessions. Each cell is the best of three rounds, measured in
//! turns so that load on a shared machine hits every case alike.

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
    AlgorithmSuite, Client, DataKey, DecryptionMaterials, EncryptedDataKey, EncryptionContext, EncryptionMaterials,
    Keyring,
};

const RUN: Duration = Duration::from_millis(1500);

/// Simulated network round trip per token operation.
const TOKEN_LATENCY: Duration = Duration::from_millis(1);

/// A keyring that sleeps `TOKEN_LATENCY` before each call of the inner one
/// (one token operation each for the AES keyring).
#[derive(Debug)]
struct Delayed(Arc<Pkcs11AesKeyring>);

impl Keyring for Delayed {
    fn on_encrypt(&self, materials: EncryptionMaterials) -> hsm_keyring::Result<EncryptionMaterials> {
        std::thread::sleep(TOKEN_LATENCY);
        self.0.on_encrypt(materials)
    }

    fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> hsm_keyring::Result<DecryptionMaterials> {
        std::thread::sleep(TOKEN_LATENCY);
        self.0.on_decrypt(materials, edks)
    }

    fn description(&self) -> String {
        format!("{} (+{TOKEN_LATENCY:?} per call)", self.0.description())
    }
}

/// Set in the child process that measures the network-HSM rows through the
/// fault module: a process logs in to a token through one module path only
/// (the PIN check of `Token`), and the rest of the run uses SoftHSM's.
const NETWORK_CHILD: &str = "HSM_KEYRING_BENCH_NETWORK_CHILD";

/// The wrap + unwrap round trip of `keyring`, for [`measure`].
fn round_trip_op(
    keyring: Arc<dyn Keyring>,
    suite: AlgorithmSuite,
    context: EncryptionContext,
    data_key: DataKey,
) -> impl Fn(usize) -> Box<dyn FnMut() + Send> + Sync {
    move |_t| {
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
    }
}

/// Best of three rounds of the network-HSM keyring with 1 and 8 threads.
fn network_rounds(keyring: Arc<dyn Keyring>) -> (f64, f64) {
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let context = EncryptionContext::from_pairs([("purpose", "bench"), ("tenant", "a")]).expect("context");
    let op = round_trip_op(keyring, suite, context, DataKey::generate(32).expect("data key"));
    let (mut n1, mut n8) = (0f64, 0f64);
    for _ in 0..3 {
        n1 = n1.max(measure(1, &op));
        n8 = n8.max(measure(8, &op));
    }
    (n1, n8)
}

/// The child's side: a token of its own through the fault module, whose
/// latency rule (read when the module loads) slows every operation down.
/// Prints the two figures.
fn network_child() {
    if common::softhsm().is_none() {
        return;
    }
    let module = std::env::var_os("HSM_KEYRING_FAULT_MODULE").expect("fault module");
    let uri = Pkcs11Uri::parse(&format!(
        "pkcs11:token={}?module-path={}&pin-value={}",
        common::TOKEN_LABEL,
        std::path::Path::new(&module).display(),
        common::USER_PIN
    ))
    .expect("uri");
    let token = Token::open_with(&uri, TokenOptions::default().pool_size(8)).expect("token through the fault module");
    let key = token.generate_aes_key("bench-net", None).expect("key");
    let (n1, n8) = network_rounds(Arc::new(Pkcs11AesKeyring::new(token, &key).expect("keyring")));
    println!("{n1} {n8}");
}

/// The network-HSM rows: through the fault module's latency rule in a child
/// process when `HSM_KEYRING_FAULT_MODULE` is set, else [`Delayed`] here.
/// Returns the figures and how the latency was made.
fn network_rows(hsm: &common::SoftHsm, key_uri: &Pkcs11Uri) -> (f64, f64, &'static str) {
    if std::env::var_os("HSM_KEYRING_FAULT_MODULE").is_some_and(|p| !p.is_empty()) {
        let out = std::process::Command::new(std::env::current_exe().expect("bench binary"))
            .env(NETWORK_CHILD, "1")
            .env("PKCS11_FAULTS_MODULE", &hsm.module)
            .env("PKCS11_FAULTS", format!("C_EncryptInit|C_DecryptInit = latency:{}us", TOKEN_LATENCY.as_micros()))
            .env_remove("PKCS11_FAULTS_CONFIG")
            .output()
            .expect("run the network-HSM child");
        assert!(out.status.success(), "network-HSM child: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        let mut figures = text.split_whitespace().map(|f| f.parse::<f64>().expect("figure"));
        let (n1, n8) = (figures.next().expect("1 thread"), figures.next().expect("8 threads"));
        return (n1, n8, "fault module latency rule");
    }
    let uri = Pkcs11Uri::parse(&hsm.token_uri()).expect("uri");
    let token = Token::open_with(&uri, TokenOptions::default().pool_size(8)).expect("token");
    let keyring = Pkcs11AesKeyring::new(token, key_uri).expect("keyring");
    let (n1, n8) = network_rounds(Arc::new(Delayed(Arc::new(keyring))));
    (n1, n8, "in-process sleep")
}

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
    if std::env::var_os(NETWORK_CHILD).is_some() {
        return network_child();
    }
    let Some(hsm) = common::softhsm() else { return };
    let uri = Pkcs11Uri::parse(&hsm.token_uri()).expect("uri");
    let token = Token::open_with(&uri, TokenOptions::default().pool_size(2)).expect("token");
    let key_uri = token.generate_aes_key("bench-aes", None).expect("key");
    let net_key = key_uri.clone();
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
    let (n1, n8, latency_source) = network_rows(hsm, &net_key);
    let ms = TOKEN_LATENCY.as_millis();
    println!(
        "| Pkcs11AesKeyring, +{ms} ms per token operation ({latency_source}) | 1 | {n1:.0} | {:.2}x | 1.00x |",
        bare1 / n1
    );
    println!(
        "| Pkcs11AesKeyring, +{ms} ms per token operation ({latency_source}) | 8 | {n8:.0} | {:.2}x | {:.2}x |",
        bare2 / n8,
        n8 / n1
    );
    println!("\ntargets: keyring time vs bare <= 1.15x; keyring 2 threads >= 1.6x of 1 thread");
}
