//! A token AES key (through the module in `ITEMS_BENCH_MODULE`, for example
//! the fault-injecting module adding 1 ms to every PKCS#11 call in front of
//! SoftHSM) behind the caching CMM: items/s and keyring calls, each of
//! which is one wrap or unwrap by the token.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hsm_keyring::cmm::{CachingCmm, DefaultCmm};
use hsm_keyring::items::{decrypt_item, encrypt_item, Item, TableConfig};
use hsm_keyring::pkcs11::{Pkcs11AesKeyring, Pkcs11Uri, Token};
use hsm_keyring::{
    AlgorithmSuite, CryptographicMaterialsManager, DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring,
    Result,
};

use crate::{item, spec, KEY};

/// Items written through the caching CMM.
const ITEMS: usize = 1000;
/// Distinct primary keys among them.
const KEYS: usize = 10;
/// Items written without the cache (every one costs a token wrap).
const UNCACHED_ITEMS: usize = 100;

/// A keyring that counts the calls reaching the one it wraps.
#[derive(Debug)]
struct Counting<K> {
    inner: K,
    calls: Arc<AtomicU64>,
}

impl<K: Keyring> Keyring for Counting<K> {
    fn on_encrypt(&self, materials: EncryptionMaterials) -> Result<EncryptionMaterials> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.on_encrypt(materials)
    }

    fn on_decrypt(&self, materials: DecryptionMaterials, edks: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.on_decrypt(materials, edks)
    }

    fn description(&self) -> String {
        self.inner.description()
    }
}

fn items(count: usize, keys: usize) -> Vec<Item> {
    (0..count).map(|i| item(20, &format!("partition-{:04}", i % keys), "sort-0001")).collect()
}

/// Encrypt then decrypt `items` under `cmm`: items/s of each and keyring calls of each.
fn measure(cmm: Arc<dyn CryptographicMaterialsManager>, calls: &AtomicU64, items: &[Item]) -> [(f64, u64); 2] {
    let config: TableConfig = spec(AlgorithmSuite::DbeAes256GcmHkdfSha512CommitKeySymsigHmacSha384, 20).ours_cmm(cmm);
    let start = Instant::now();
    let before = calls.load(Ordering::Relaxed);
    let stored: Vec<Item> = items.iter().map(|i| encrypt_item(&config, i).expect("token encryption")).collect();
    let encrypt = (items.len() as f64 / start.elapsed().as_secs_f64(), calls.load(Ordering::Relaxed) - before);
    let start = Instant::now();
    let before = calls.load(Ordering::Relaxed);
    for (s, i) in stored.iter().zip(items) {
        assert_eq!(&decrypt_item(&config, s).expect("token decryption"), i);
    }
    let decrypt = (items.len() as f64 / start.elapsed().as_secs_f64(), calls.load(Ordering::Relaxed) - before);
    [encrypt, decrypt]
}

pub(crate) fn run(module: &Path) {
    let label = std::env::var("ITEMS_BENCH_TOKEN").unwrap_or_else(|_| "items-bench".into());
    let pin = std::env::var("ITEMS_BENCH_PIN").unwrap_or_else(|_| "items-bench-pin".into());
    let uri = format!("pkcs11:token={label}?module-path={}&pin-value={pin}", module.display());
    let token = Token::open(&Pkcs11Uri::parse(&uri).expect("token URI")).expect("open the benchmark token");
    let key_label = format!("items-bench-{}", std::process::id());
    let key_uri = token.import_aes_key(&key_label, &KEY, None).expect("import the AES key");
    let calls = Arc::new(AtomicU64::new(0));
    let keyring = || Counting {
        inner: Pkcs11AesKeyring::new(token.clone(), &key_uri).expect("token AES keyring"),
        calls: calls.clone(),
    };
    let caching = Arc::new(
        CachingCmm::builder_for_keyring(keyring()).max_age(Duration::from_secs(300)).build().expect("caching CMM"),
    );
    let cached = measure(caching.clone(), &calls, &items(ITEMS, KEYS));
    let stats = caching.stats();
    let direct = measure(Arc::new(DefaultCmm::new(keyring())), &calls, &items(UNCACHED_ITEMS, UNCACHED_ITEMS));

    println!("Token AES key (module {}), suite 0x6700, 20 attributes", module.display());
    println!("| materials | items | primary keys | operation | items/s | keyring calls (token wraps/unwraps) |");
    println!("|---|---:|---:|---|---:|---:|");
    for (name, count, keys, figures) in
        [("caching CMM", ITEMS, KEYS, cached), ("default CMM", UNCACHED_ITEMS, UNCACHED_ITEMS, direct)]
    {
        for (op, (rate, n)) in ["encrypt", "decrypt"].into_iter().zip(figures) {
            println!("| {name} | {count} | {keys} | {op} | {rate:.0} | {n} |");
        }
    }
    println!("caching CMM: {} hits, {} misses, {} underlying calls", stats.hits, stats.misses, stats.underlying_calls);
}
