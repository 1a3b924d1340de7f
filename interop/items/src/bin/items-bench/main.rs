//! Item encryption speed, side by side: hsm-keyring against the AWS Database
//! Encryption SDK for Rust (its item encryptor with the Material Providers
//! Library's raw AES keyring), both over the same AES-256 key, for items of
//! 20 and 200 string attributes of 32 bytes plus a partition and a sort key,
//! suites 0x6700 and 0x6701, encryption and decryption.
//!
//! Every measurement is repeated in rounds (`ITEMS_BENCH_ROUNDS`, default 5)
//! that interleave both libraries, each run lasting at least
//! `ITEMS_BENCH_MS` milliseconds (default 250); the medians are printed with
//! the ratio ours/SDK and the linearity ratio (time per 200-attribute item
//! over time per 20-attribute item). With `ITEMS_BENCH_MODULE` set to a
//! PKCS#11 module holding the token `ITEMS_BENCH_TOKEN` (see `bench.sh`),
//! it also measures a token AES key behind the caching CMM.
//!
//! Run by hand in release mode, with hsm-keyring on aws-lc: `interop/items/bench.sh`.

mod token;

use std::time::{Duration, Instant};

use aws_db_esdk::item_encryptor::client::Client as SdkEncryptor;
use hsm_keyring::items::{decrypt_item, encrypt_item, AttributeValue, CryptoAction, Item, TableConfig};
use hsm_keyring::keyrings::RawAesKeyring;
use hsm_keyring::AlgorithmSuite;
use interop_items::{item_to_sdk, sdk_raw_aes, SdkItem, TableSpec};

/// The AES-256 wrapping key of both sides.
const KEY: [u8; 32] = *b"items benchmark AES-256 key, 32!";
const NAMESPACE: &str = "bench";
const KEY_NAME: &str = "aes-256";
const SIZES: [usize; 2] = [20, 200];

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The table: `pk` and `sk` signed, `a000`.. encrypted.
pub(crate) fn spec(suite: AlgorithmSuite, attributes: usize) -> TableSpec {
    let mut actions = vec![("pk".to_owned(), CryptoAction::SignOnly), ("sk".to_owned(), CryptoAction::SignOnly)];
    actions.extend((0..attributes).map(|i| (format!("a{i:03}"), CryptoAction::EncryptAndSign)));
    TableSpec {
        table: "bench-items".into(),
        partition_key: "pk".into(),
        sort_key: Some("sk".into()),
        actions,
        allowed_unsigned: Vec::new(),
        allowed_unsigned_prefix: None,
        suite,
    }
}

/// An item of `attributes` string attributes of 32 bytes under key (`pk`, `sk`).
pub(crate) fn item(attributes: usize, pk: &str, sk: &str) -> Item {
    let mut item = Item::new();
    item.insert("pk".into(), AttributeValue::S(pk.into()));
    item.insert("sk".into(), AttributeValue::S(sk.into()));
    for i in 0..attributes {
        item.insert(format!("a{i:03}"), AttributeValue::S(format!("value {i:03} of the benchmark item.")[..32].into()));
    }
    item
}

/// Items per second of `op`, run for at least `min` (and at least 3 times).
fn rate(min: Duration, mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while n < 3 || start.elapsed() < min {
        op();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One case: a suite and an item size, both libraries set up.
struct Case {
    suite: AlgorithmSuite,
    attributes: usize,
    ours: TableConfig,
    theirs: SdkEncryptor,
    plain: Item,
    plain_sdk: SdkItem,
    ours_stored: Item,
    theirs_stored: SdkItem,
    /// Items/s per round: ours encrypt, SDK encrypt, ours decrypt, SDK decrypt.
    rates: [Vec<f64>; 4],
}

impl Case {
    fn new(rt: &tokio::runtime::Runtime, suite: AlgorithmSuite, attributes: usize) -> Case {
        let spec = spec(suite, attributes);
        let ours = spec.ours(RawAesKeyring::new(NAMESPACE, KEY_NAME, &KEY).expect("our raw AES keyring"));
        let theirs = spec.theirs(sdk_raw_aes(NAMESPACE, KEY_NAME, &KEY));
        let plain = item(attributes, "partition-0001", "sort-0001");
        let plain_sdk = item_to_sdk(&plain);
        let ours_stored = encrypt_item(&ours, &plain).expect("our encryption");
        let theirs_stored = sdk_encrypt(rt, &theirs, &plain_sdk);
        // Each side reads the other's items: both do the same work.
        let from_sdk = interop_items::item_from_sdk(&theirs_stored);
        assert_eq!(decrypt_item(&ours, &from_sdk).expect("we read the SDK's item"), plain);
        let ours_for_sdk = item_to_sdk(&ours_stored);
        assert_eq!(sdk_decrypt(rt, &theirs, &ours_for_sdk), plain_sdk, "the SDK reads our item");
        Case {
            suite,
            attributes,
            ours,
            theirs,
            plain,
            plain_sdk,
            ours_stored,
            theirs_stored,
            rates: Default::default(),
        }
    }

    fn round(&mut self, rt: &tokio::runtime::Runtime, min: Duration) {
        let (ours, theirs) = (&self.ours, &self.theirs);
        let r = rate(min, || drop(encrypt_item(ours, &self.plain).expect("encrypt")));
        self.rates[0].push(r);
        let r = rate(min, || drop(sdk_encrypt(rt, theirs, &self.plain_sdk)));
        self.rates[1].push(r);
        let r = rate(min, || drop(decrypt_item(ours, &self.ours_stored).expect("decrypt")));
        self.rates[2].push(r);
        let r = rate(min, || drop(sdk_decrypt(rt, theirs, &self.theirs_stored)));
        self.rates[3].push(r);
    }

    fn medians(&self) -> [f64; 4] {
        [0, 1, 2, 3].map(|i| median(self.rates[i].clone()))
    }
}

fn sdk_encrypt(rt: &tokio::runtime::Runtime, encryptor: &SdkEncryptor, item: &SdkItem) -> SdkItem {
    let out = rt.block_on(encryptor.encrypt_item().plaintext_item(item.clone()).send()).expect("SDK encryption");
    out.encrypted_item.expect("SDK encrypted item")
}

fn sdk_decrypt(rt: &tokio::runtime::Runtime, encryptor: &SdkEncryptor, item: &SdkItem) -> SdkItem {
    let out = rt.block_on(encryptor.decrypt_item().encrypted_item(item.clone()).send()).expect("SDK decryption");
    out.plaintext_item.expect("SDK plaintext item")
}

fn main() {
    let rounds = env_number("ITEMS_BENCH_ROUNDS", 5).max(1);
    let min = Duration::from_millis(env_number("ITEMS_BENCH_MS", 250));
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("tokio runtime");
    println!(
        "items-bench: hsm-keyring ({} backend) vs aws-db-esdk, raw AES-256 keyring, \
         {rounds} interleaved rounds of >= {} ms per run, medians",
        if cfg!(feature = "aws-lc") { "aws-lc" } else { "RustCrypto" },
        min.as_millis()
    );
    let mut cases: Vec<Case> = AlgorithmSuite::ITEM_SUITES
        .into_iter()
        .flat_map(|suite| SIZES.map(|n| (suite, n)))
        .map(|(suite, n)| Case::new(&rt, suite, n))
        .collect();
    for _ in 0..rounds {
        for case in &mut cases {
            case.round(&rt, min);
        }
    }

    println!();
    println!("| suite | attributes | operation | hsm-keyring items/s | SDK items/s | ours/SDK |");
    println!("|---|---:|---|---:|---:|---:|");
    for case in &cases {
        let m = case.medians();
        for (op, ours, theirs) in [("encrypt", m[0], m[1]), ("decrypt", m[2], m[3])] {
            println!(
                "| 0x{:04X} | {} | {op} | {ours:.0} | {theirs:.0} | {:.1}x |",
                case.suite.id(),
                case.attributes,
                ours / theirs
            );
        }
    }
    println!();
    println!("Linearity: time per 200-attribute item / time per 20-attribute item (target <= 11x)");
    println!("| suite | operation | hsm-keyring | SDK |");
    println!("|---|---|---:|---:|");
    for pair in cases.chunks(2) {
        let (small, large) = (pair[0].medians(), pair[1].medians());
        for (op, i) in [("encrypt", 0), ("decrypt", 2)] {
            println!(
                "| 0x{:04X} | {op} | {:.1}x | {:.1}x |",
                pair[0].suite.id(),
                small[i] / large[i],
                small[i + 1] / large[i + 1]
            );
        }
    }

    if let Some(module) = std::env::var_os("ITEMS_BENCH_MODULE") {
        println!();
        token::run(std::path::Path::new(&module));
    }
}
