//! Item decryption with a fixed table configuration and raw AES keyring must
//! never panic or hang, and must never return an item the key holder did
//! not write.
//!
//! Input: a mode byte (bit 0: the version 2 configuration, else version 1),
//! then attributes until the input ends, each `name length (u8) || name ||
//! type (u8) || value length (u16, big-endian) || value`. Types: 0 B, 1 S,
//! 2 N, 3 BOOL (first byte odd), 4 NULL, 5 SS, 6 NS, 7 BS, 8 L of S, 9 M of
//! S (members split at 0 bytes; map members are key, value, key, ...);
//! names and strings are read as lossy UTF-8. The header and footer are the
//! `aws_dbe_head` and `aws_dbe_foot` attributes, type 0.
//!
//! With `DECRYPT_ITEM_WRITE_SEEDS=<dir>` set, the first run writes the
//! target's sample items to `<dir>` in this encoding (`fuzz/seeds/decrypt_item/`).
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use hsm_keyring::items::{decrypt_item, encrypt_item, AttributeValue, CryptoAction, Item, TableConfig};
use hsm_keyring::keyrings::RawAesKeyring;
use hsm_keyring::AlgorithmSuite;
use libfuzzer_sys::fuzz_target;

struct Fixture {
    configs: [TableConfig; 2],
    plaintexts: Vec<Item>,
}

fn config(v2: bool, suite: AlgorithmSuite) -> TableConfig {
    let keyring = RawAesKeyring::new("fuzz-ns", "fuzz-key", &[0x42; 32]).expect("valid AES-256 key");
    let mut b = TableConfig::builder("fuzz-table", "id")
        .sort_key("sort")
        .action("secret", CryptoAction::EncryptAndSign)
        .action("nested", CryptoAction::EncryptAndSign)
        .action("plain", CryptoAction::SignOnly)
        .allowed_unsigned("free")
        .suite(suite)
        .keyring(keyring);
    if v2 {
        b = b.action("ctx", CryptoAction::SignAndIncludeInEncryptionContext);
    } else {
        b = b.action("ctx", CryptoAction::SignOnly);
    }
    b.build().expect("configuration")
}

fn plaintext(n: u8) -> Item {
    let s = |t: &str| AttributeValue::S(t.to_owned());
    let nested = BTreeMap::from([
        ("list".to_owned(), AttributeValue::L(vec![s("a"), AttributeValue::N("1.5".into())])),
        ("set".to_owned(), AttributeValue::Ss(vec!["x".into(), "y".into()])),
    ]);
    Item::from([
        ("id".to_owned(), s(&format!("item-{n}"))),
        ("sort".to_owned(), AttributeValue::N(n.to_string())),
        ("secret".to_owned(), AttributeValue::B(vec![n; 8])),
        ("nested".to_owned(), AttributeValue::M(nested)),
        ("plain".to_owned(), AttributeValue::Bool(n % 2 == 0)),
        ("ctx".to_owned(), s("context")),
    ])
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let plaintexts: Vec<Item> = (0..3).map(plaintext).collect();
        if let Some(dir) = std::env::var_os("DECRYPT_ITEM_WRITE_SEEDS") {
            let signed = AlgorithmSuite::DbeAes256GcmHkdfSha512CommitKeyEcdsaP384SymsigHmacSha384;
            let unsigned = AlgorithmSuite::DbeAes256GcmHkdfSha512CommitKeySymsigHmacSha384;
            for (name, v2, suite, n) in
                [("v1-6701", false, signed, 0u8), ("v1-6700", false, unsigned, 1), ("v2-6701", true, signed, 2)]
            {
                let mut stored = encrypt_item(&config(v2, suite), &plaintexts[usize::from(n)]).expect("sample");
                stored.insert("free".into(), AttributeValue::S("unsigned".into()));
                let path = std::path::Path::new(&dir).join(name);
                std::fs::write(path, encode(u8::from(v2), &stored)).expect("write a seed");
            }
        }
        let signed = AlgorithmSuite::DbeAes256GcmHkdfSha512CommitKeyEcdsaP384SymsigHmacSha384;
        Fixture { configs: [config(false, signed), config(true, signed)], plaintexts }
    })
}

/// The inverse of [`decode`] for the types the samples use.
fn encode(mode: u8, item: &Item) -> Vec<u8> {
    let mut out = vec![mode];
    for (name, value) in item {
        let (tag, bytes): (u8, Vec<u8>) = match value {
            AttributeValue::B(b) => (0, b.clone()),
            AttributeValue::S(s) => (1, s.as_bytes().to_vec()),
            AttributeValue::N(n) => (2, n.as_bytes().to_vec()),
            AttributeValue::Bool(b) => (3, vec![u8::from(*b)]),
            AttributeValue::Null => (4, Vec::new()),
            other => panic!("samples do not hold {other:?} at the top level"),
        };
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.push(tag);
        out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        out.extend_from_slice(&bytes);
    }
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn parts(b: &[u8]) -> impl Iterator<Item = &[u8]> {
    b.split(|&x| x == 0)
}

fn decode(data: &[u8]) -> Item {
    let mut item = Item::new();
    let mut rest = data;
    while let Some((&name_len, r)) = rest.split_first() {
        let Some((name, r)) = r.split_at_checked(usize::from(name_len)) else { break };
        let Some((&[tag, a, b], r)) = r.split_first_chunk::<3>() else { break };
        let len = usize::from(u16::from_be_bytes([a, b])).min(r.len());
        let (value, r) = r.split_at(len);
        rest = r;
        let value = match tag % 10 {
            0 => AttributeValue::B(value.to_vec()),
            1 => AttributeValue::S(text(value)),
            2 => AttributeValue::N(text(value)),
            3 => AttributeValue::Bool(value.first().is_some_and(|v| v & 1 == 1)),
            4 => AttributeValue::Null,
            5 => AttributeValue::Ss(parts(value).map(text).collect()),
            6 => AttributeValue::Ns(parts(value).map(text).collect()),
            7 => AttributeValue::Bs(parts(value).map(<[u8]>::to_vec).collect()),
            8 => AttributeValue::L(parts(value).map(|p| AttributeValue::S(text(p))).collect()),
            _ => {
                let members: Vec<&[u8]> = parts(value).collect();
                AttributeValue::M(
                    members
                        .chunks(2)
                        .map(|kv| (text(kv[0]), AttributeValue::S(text(kv.get(1).unwrap_or(&&[][..])))))
                        .collect(),
                )
            }
        };
        item.insert(text(name), value);
    }
    item
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&mode, _)) = data.split_first() else { return };
    let item = decode(&data[1..]);
    if let Ok(mut out) = decrypt_item(&f.configs[usize::from(mode & 1)], &item) {
        out.remove("free");
        assert!(f.plaintexts.contains(&out), "accepted an item the key holder did not write: {out:?}");
    }
});
