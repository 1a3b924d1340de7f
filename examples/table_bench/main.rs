//! `put_item` / `get_item` through `EncryptedClient` against the plain SDK
//! client on the same DynamoDB-API server (run by `bench/table.sh`).
//!
//! 1 KiB items with 10 attributes (key, sort key, 6 encrypted, 2 signed
//! only), an AES key on a SoftHSM token, with a caching CMM and without.
//! Rounds interleave plain, cached and uncached writes and reads (each round
//! starting with the next client); each client writes and reads `KEYS` items
//! (50 by default) of its own primary keys (`SHARED_KEYS=1`: the three take
//! turns on the same keys, so each put replaces an item of another size); a
//! cached data key serves only its own primary key. Each round's time per
//! item is recorded and the medians printed, with their ratio to the plain
//! client's. A fourth row, "stored", has the plain client write and read
//! items encrypted beforehand (no encryption in the loop): the share of the
//! difference that comes from the larger item the server stores and sends,
//! not from the encryption itself. A fifth, "floor", does what "stored"
//! does and also computes, per item, the primitives the format requires
//! (`floor.rs`) where the encryption would run (before each put, after
//! each get): the least any implementation of the format could add.
//!
//! Then the same four write and read their items with `CONCURRENCY`
//! requests in flight (16 by default; 0 skips this part), `THROUGHPUT_ROUNDS`
//! rounds (default `ROUNDS`): items per second, and the time per item as
//! their inverse, as a service that serves many requests at once sees it.

mod floor;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use hsm_keyring::cmm::CachingCmm;
use hsm_keyring::dynamodb_client::{aws_sdk_dynamodb, EncryptedClient};
use hsm_keyring::items::legacy::LegacyPolicy;
use hsm_keyring::items::{to_sdk_item, AttributeValue, CryptoAction, Item, TableConfig};
use hsm_keyring::pkcs11::{Pkcs11AesKeyring, Pkcs11Uri, Token};

fn item(prefix: &str, i: usize) -> Item {
    let mut item = Item::from([
        ("pk".to_owned(), AttributeValue::S(format!("{prefix}-{i:04}"))),
        ("sk".to_owned(), AttributeValue::N("1".into())),
    ]);
    for a in 0..8 {
        item.insert(format!("attr{a}"), AttributeValue::S(format!("{a}").repeat(120)));
    }
    item
}

fn key(prefix: &str, i: usize) -> Item {
    Item::from([
        ("pk".to_owned(), AttributeValue::S(format!("{prefix}-{i:04}"))),
        ("sk".to_owned(), AttributeValue::N("1".into())),
    ])
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One line per operation (put, then get): the median of the plain
/// client's column, `extra` of it if any, then each other column's median
/// and `ratio(median, plain's median)`.
fn print_medians(rows: &mut [Vec<Vec<f64>>], extra: impl Fn(f64) -> Option<f64>, ratio: impl Fn(f64, f64) -> f64) {
    for (op, row) in ["put_item", "get_item"].iter().zip(rows.iter_mut()) {
        let m: Vec<f64> = row.iter_mut().map(|v| median(v)).collect();
        let mut line = format!("{op:<10} {:>14.0}", m[0]);
        if let Some(extra) = extra(m[0]) {
            line += &format!(" {extra:>10.0}");
        }
        for &other in &m[1..] {
            line += &format!(" {other:>14.0} {:>10.3}", ratio(other, m[0]));
        }
        println!("{line}");
    }
}

type SdkItem = HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

/// What one client writes: plain items (through `encrypted` if set) or
/// items stored as they are.
#[derive(Clone)]
enum Writes {
    Plain(Option<EncryptedClient>, Arc<Vec<Item>>),
    Stored(Arc<Vec<SdkItem>>),
}

/// Put (or, if `get`, read back) every item of `writes` with `concurrency`
/// tasks, each taking every `concurrency`-th item: items per second.
async fn throughput(
    plain: &aws_sdk_dynamodb::Client,
    table: &str,
    writes: &Writes,
    prefix: &'static str,
    get: bool,
    concurrency: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let count = match writes {
        Writes::Plain(_, items) => items.len(),
        Writes::Stored(items) => items.len(),
    };
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for first in 0..concurrency {
        let (plain, table, writes) = (plain.clone(), table.to_owned(), writes.clone());
        tasks.spawn(async move {
            for i in (first..count).step_by(concurrency) {
                let k = Some(to_sdk_item(&key(prefix, i)));
                match (&writes, get) {
                    (Writes::Plain(Some(e), _), true) => {
                        e.get_item(e.inner().get_item().table_name(&table).set_key(k)).await?.ok_or("missing item")?;
                    }
                    (_, true) => {
                        plain.get_item().table_name(&table).set_key(k).send().await?.item.ok_or("missing item")?;
                    }
                    (Writes::Plain(Some(e), items), false) => {
                        e.put_item(e.inner().put_item().table_name(&table), &items[i]).await?;
                    }
                    (Writes::Plain(None, items), false) => {
                        plain.put_item().table_name(&table).set_item(Some(to_sdk_item(&items[i]))).send().await?;
                    }
                    (Writes::Stored(items), false) => {
                        plain.put_item().table_name(&table).set_item(Some(items[i].clone())).send().await?;
                    }
                }
            }
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done?.map_err(|e| e.to_string())?;
    }
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::var("HSM_KEYRING_DYNAMODB_ENDPOINT")?;
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(9);
    // Items (primary keys) written and read per client per round.
    let keys: usize = std::env::var("KEYS").ok().and_then(|r| r.parse().ok()).unwrap_or(50);
    let token = Token::open(&Pkcs11Uri::parse(&std::env::var("HSM_KEYRING_TOKEN_URI")?)?)?;
    let key_uri = token.generate_aes_key("bench-table-key", None)?;
    let keyring = || Pkcs11AesKeyring::new(token.clone(), &key_uri);

    let sdk = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "bench"))
        .build();
    let plain = aws_sdk_dynamodb::Client::from_conf(sdk);
    let table = format!("bench-{}", std::process::id());
    plain
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build()?,
        )
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("sk").attribute_type(ScalarAttributeType::N).build()?,
        )
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build()?)
        .key_schema(KeySchemaElement::builder().attribute_name("sk").key_type(KeyType::Range).build()?)
        .send()
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // SUITE=0x6700 (no per-item ECDSA signature) or 0x6701 (the default).
    let suite = match std::env::var("SUITE").as_deref() {
        Ok("0x6700") => hsm_keyring::AlgorithmSuite::from_item_id(0x6700)?,
        Ok("0x6701") | Err(_) => hsm_keyring::AlgorithmSuite::from_item_id(0x6701)?,
        Ok(other) => return Err(format!("SUITE={other}: expected 0x6700 or 0x6701").into()),
    };
    let actions = |b: hsm_keyring::items::TableConfigBuilder| {
        b.suite(suite)
            .sort_key("sk")
            .action("attr6", CryptoAction::SignOnly)
            .action("attr7", CryptoAction::SignOnly)
            .default_action(CryptoAction::EncryptAndSign)
    };
    let cmm = Arc::new(
        CachingCmm::builder_for_keyring(keyring()?)
            .max_age(Duration::from_secs(600))
            .max_messages_per_key(100_000)
            .build()?,
    );
    let cached = actions(TableConfig::builder(&table, "pk")).cmm(cmm.clone()).build()?;
    let uncached = actions(TableConfig::builder(&table, "pk")).keyring(keyring()?).build()?;
    let cached = EncryptedClient::new(plain.clone()).table(&table, cached, LegacyPolicy::ForbidLegacy);
    let uncached = EncryptedClient::new(plain.clone()).table(&table, uncached, LegacyPolicy::ForbidLegacy);
    // Each client writes and reads items of its own primary keys, so that no
    // put replaces an item of another size; SHARED_KEYS=1 has the plain,
    // cached and uncached clients take turns on the same keys instead.
    let shared = std::env::var("SHARED_KEYS").is_ok_and(|v| v == "1");
    let prefixes: [&str; 5] = if shared {
        ["customer", "customer", "customer", "stored", "floor"]
    } else {
        ["plain", "cached", "uncached", "stored", "floor"]
    };
    let items: Vec<Vec<Item>> = prefixes.iter().map(|p| (0..keys).map(|i| item(p, i)).collect()).collect();
    // The same items encrypted once, for the plain client to store and read as
    // they are: what the larger encrypted item costs the server and the SDK,
    // without any encryption in the loop.
    let stored_cfg = actions(TableConfig::builder(&table, "pk")).keyring(keyring()?).build()?;
    let encrypted = |items: &[Item]| {
        items
            .iter()
            .map(|it| hsm_keyring::items::encrypt_item(&stored_cfg, it).map(|e| to_sdk_item(&e)))
            .collect::<Result<Vec<_>, _>>()
    };
    let (stored, floor_items) = (encrypted(&items[3])?, encrypted(&items[4])?);
    let size =
        to_sdk_item(&items[0][0]).iter().map(|(k, v)| k.len() + v.as_s().map(String::len).unwrap_or(1)).sum::<usize>();
    println!(
        "items: {} attributes, {size} bytes of names and values (plain); {keys} keys; {rounds} rounds; suite {suite:?}; \
         shared keys: {shared}",
        items[0][0].len()
    );

    // [plain, cached, uncached, stored, floor] x [put, get], microseconds per item per round.
    let mut t = vec![vec![Vec::new(); 5]; 2];
    for round in 0..=rounds {
        let clients = [None, Some(&cached), Some(&uncached), None, None];
        // Each round starts with a different client, so that whatever the
        // server does between rounds falls on all of them alike.
        for c in (0..5).map(|k| (k + round) % 5) {
            let client = clients[c];
            let start = Instant::now();
            for (i, it) in items[c].iter().enumerate() {
                match client {
                    None if c == 3 => {
                        plain.put_item().table_name(&table).set_item(Some(stored[i].clone())).send().await?;
                    }
                    None if c == 4 => {
                        floor::primitives()?;
                        plain.put_item().table_name(&table).set_item(Some(floor_items[i].clone())).send().await?;
                    }
                    None => {
                        plain.put_item().table_name(&table).set_item(Some(to_sdk_item(it))).send().await?;
                    }
                    Some(e) => {
                        e.put_item(e.inner().put_item().table_name(&table), it).await?;
                    }
                }
            }
            let put = start.elapsed().as_secs_f64() * 1e6 / keys as f64;
            let start = Instant::now();
            for i in 0..keys {
                let k = Some(to_sdk_item(&key(prefixes[c], i)));
                match client {
                    None => {
                        plain.get_item().table_name(&table).set_key(k).send().await?.item.ok_or("missing item")?;
                        if c == 4 {
                            floor::primitives()?;
                        }
                    }
                    Some(e) => {
                        e.get_item(e.inner().get_item().table_name(&table).set_key(k)).await?.ok_or("missing item")?;
                    }
                }
            }
            let get = start.elapsed().as_secs_f64() * 1e6 / keys as f64;
            if round > 0 {
                // Round 0 warms the connection pool and the cache.
                t[0][c].push(put);
                t[1][c].push(get);
            }
        }
    }
    println!(
        "{:<10} {:>14} {:>10} {:>14} {:>10} {:>14} {:>10} {:>14} {:>10} {:>14} {:>10}",
        "op",
        "plain us/item",
        "items/s",
        "cached us/item",
        "ratio",
        "uncached us",
        "ratio",
        "stored us",
        "ratio",
        "floor us",
        "ratio"
    );
    print_medians(&mut t, |plain| Some(1e6 / plain), |m, plain| m / plain);
    println!("caching CMM: {:?}", cmm.stats());

    let concurrency: usize = std::env::var("CONCURRENCY").ok().and_then(|r| r.parse().ok()).unwrap_or(16);
    if concurrency == 0 {
        return Ok(());
    }
    let t_rounds: usize = std::env::var("THROUGHPUT_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(rounds);
    let items: Vec<Arc<Vec<Item>>> = items.into_iter().map(Arc::new).collect();
    let writes = [
        Writes::Plain(None, items[0].clone()),
        Writes::Plain(Some(cached.clone()), items[1].clone()),
        Writes::Plain(Some(uncached.clone()), items[2].clone()),
        Writes::Stored(Arc::new(stored)),
    ];
    // [put, get] x [plain, cached, uncached, stored], items per second per round.
    let mut r = vec![vec![Vec::new(); 4]; 2];
    for round in 0..=t_rounds {
        for c in (0..4).map(|k| (k + round) % 4) {
            let put = throughput(&plain, &table, &writes[c], prefixes[c], false, concurrency).await?;
            let get = throughput(&plain, &table, &writes[c], prefixes[c], true, concurrency).await?;
            if round > 0 {
                r[0][c].push(put);
                r[1][c].push(get);
            }
        }
    }
    println!("{concurrency} requests in flight, {t_rounds} rounds: items/s (time per item as a ratio to plain's)");
    println!(
        "{:<10} {:>14} {:>14} {:>10} {:>14} {:>10} {:>14} {:>10}",
        "op", "plain items/s", "cached", "ratio", "uncached", "ratio", "stored", "ratio"
    );
    print_medians(&mut r, |_| None, |m, plain| plain / m);
    println!("caching CMM: {:?}", cmm.stats());
    Ok(())
}
