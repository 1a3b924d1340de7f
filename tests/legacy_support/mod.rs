//! Items written by the legacy client's Python package
//! (`interop/legacy-items/write_items.py`): loading the JSON lines, the
//! fixed keys they were written under, and DynamoDB JSON.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine;
use hsm_keyring::items::legacy::{LegacyConfig, LegacyMaterials};
use hsm_keyring::items::{AttributeValue, CryptoAction, Item};
use serde_json::Value;

/// The AES-256 wrapping key (wrapped provider) and content key (static provider).
pub fn aes_key() -> Vec<u8> {
    (0u8..32).collect()
}

/// The HMAC-SHA256 signing key.
pub fn hmac_key() -> Vec<u8> {
    (0x40u8..0x60).collect()
}

pub fn rsa_private_pem() -> String {
    std::fs::read_to_string(data("interop-rsa-2048-private.pem")).unwrap()
}

pub fn rsa_public_pem() -> String {
    std::fs::read_to_string(data("interop-rsa-2048-public.pem")).unwrap()
}

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// One item the peer wrote.
#[derive(Debug, Clone)]
pub struct PeerItem {
    pub case: String,
    /// `aes-wrap`, `rsa-oaep` or `aes-static`.
    pub wrap: String,
    /// `hmac` or `rsa-sign`.
    pub sign: String,
    pub table: String,
    pub default_action: CryptoAction,
    pub actions: BTreeMap<String, CryptoAction>,
    pub stored: Item,
    /// The peer's own decryption of `stored`.
    pub expected: Item,
}

impl PeerItem {
    /// The legacy configuration of this item's table, with `materials`.
    /// Check that `config` refuses this item as not authentic once its
    /// signature, its partition key or its encrypted `text` is altered.
    pub fn assert_alterations_refused(&self, config: &LegacyConfig) {
        use hsm_keyring::items::legacy::{decrypt_legacy_item, SIGNATURE_ATTRIBUTE};
        for name in [SIGNATURE_ATTRIBUTE, "pk", "text"] {
            assert!(self.stored.contains_key(name), "{}: no `{name}`", self.case);
            let mut bad = self.stored.clone();
            bad.insert(name.into(), altered(&self.stored[name]));
            let err = decrypt_legacy_item(config, &bad).unwrap_err();
            assert_eq!(err.kind(), hsm_keyring::ErrorKind::NotAuthentic, "{}: `{name}`: {err}", self.case);
        }
    }

    pub fn config(&self, materials: LegacyMaterials) -> LegacyConfig {
        let mut b =
            LegacyConfig::builder(&self.table, "pk", materials).sort_key("sk").default_action(self.default_action);
        for (name, action) in &self.actions {
            b = b.action(name, *action);
        }
        b.build().unwrap()
    }
}

/// The peer's items: from `HSM_KEYRING_LEGACY_PEER_ITEMS` when set (written
/// by `ci/legacy-items-peer.sh` in this run), else the committed ones.
pub fn peer_items() -> Vec<PeerItem> {
    let path = match std::env::var_os("HSM_KEYRING_LEGACY_PEER_ITEMS") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => data("legacy-items/peer-items.jsonl"),
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let items: Vec<PeerItem> = text.lines().filter(|l| !l.trim().is_empty()).map(parse_line).collect();
    assert!(items.len() >= 8, "{}: only {} items", path.display(), items.len());
    items
}

fn parse_line(line: &str) -> PeerItem {
    let v: Value = serde_json::from_str(line).unwrap();
    // The keys the line names are the fixed ones of this module.
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(v["keys"]["aes"], hex(&aes_key()).as_str());
    assert_eq!(v["keys"]["hmac"], hex(&hmac_key()).as_str());
    let s = |k: &str| v[k].as_str().unwrap().to_owned();
    let actions = v["actions"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, a)| (k.clone(), a.as_str().unwrap().parse().unwrap()))
        .collect();
    PeerItem {
        case: s("case"),
        wrap: s("wrap"),
        sign: s("sign"),
        table: s("table"),
        default_action: s("default_action").parse().unwrap(),
        actions,
        stored: item(&v["stored"]),
        expected: item(&v["expected"]),
    }
}

fn b64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

pub fn item(v: &Value) -> Item {
    v.as_object().unwrap().iter().map(|(k, v)| (k.clone(), value(v))).collect()
}

fn value(v: &Value) -> AttributeValue {
    let (tag, inner) = v.as_object().unwrap().iter().next().unwrap();
    match tag.as_str() {
        "S" => AttributeValue::S(inner.as_str().unwrap().into()),
        "N" => AttributeValue::N(inner.as_str().unwrap().into()),
        "B" => AttributeValue::B(b64(inner)),
        "BOOL" => AttributeValue::Bool(inner.as_bool().unwrap()),
        "NULL" => AttributeValue::Null,
        "SS" => AttributeValue::Ss(strings(inner)),
        "NS" => AttributeValue::Ns(strings(inner)),
        "BS" => AttributeValue::Bs(inner.as_array().unwrap().iter().map(b64).collect()),
        "L" => AttributeValue::L(inner.as_array().unwrap().iter().map(value).collect()),
        "M" => AttributeValue::M(inner.as_object().unwrap().iter().map(|(k, v)| (k.clone(), value(v))).collect()),
        other => panic!("unknown type {other}"),
    }
}

/// `item` with every set sorted, at any depth (sets have no order).
pub fn canonical(item: &Item) -> Item {
    item.iter().map(|(k, v)| (k.clone(), canonical_value(v))).collect()
}

fn canonical_value(v: &AttributeValue) -> AttributeValue {
    match v {
        AttributeValue::Ss(s) => AttributeValue::Ss(sorted(s)),
        AttributeValue::Ns(s) => AttributeValue::Ns(sorted(s)),
        AttributeValue::Bs(s) => AttributeValue::Bs(sorted(s)),
        AttributeValue::L(l) => AttributeValue::L(l.iter().map(canonical_value).collect()),
        AttributeValue::M(m) => AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), canonical_value(v))).collect()),
        other => other.clone(),
    }
}

fn sorted<T: Ord + Clone>(s: &[T]) -> Vec<T> {
    let mut s = s.to_vec();
    s.sort();
    s
}

/// `value` changed by one byte (or one member) in place.
pub fn altered(value: &AttributeValue) -> AttributeValue {
    match value {
        AttributeValue::B(b) => {
            let mut b = b.clone();
            let at = b.len() / 2;
            b[at] ^= 0x01;
            AttributeValue::B(b)
        }
        AttributeValue::S(s) => AttributeValue::S(format!("{s}x")),
        // The leading digit: the Python package signs numbers of more than
        // 28 significant digits rounded, so a change beyond is not covered.
        AttributeValue::N(n) => {
            let at = n.find(|c: char| c.is_ascii_digit()).unwrap();
            let d = n.as_bytes()[at];
            let other = if d == b'9' { '8' } else { char::from(d + 1) };
            AttributeValue::N(format!("{}{other}{}", &n[..at], &n[at + 1..]))
        }
        AttributeValue::Bool(b) => AttributeValue::Bool(!b),
        AttributeValue::Null => AttributeValue::Bool(true),
        AttributeValue::Ss(s) => AttributeValue::Ss([s.clone(), vec!["zz".into()]].concat()),
        AttributeValue::Ns(s) => AttributeValue::Ns([s.clone(), vec!["77".into()]].concat()),
        AttributeValue::Bs(s) => AttributeValue::Bs([s.clone(), vec![vec![9]]].concat()),
        AttributeValue::L(l) => AttributeValue::L([l.clone(), vec![AttributeValue::Null]].concat()),
        AttributeValue::M(m) => {
            let mut m = m.clone();
            m.insert("added".into(), AttributeValue::Null);
            AttributeValue::M(m)
        }
        other => panic!("unexpected value {other:?}"),
    }
}

fn other_rsa_private_pem() -> String {
    std::fs::read_to_string(data("interop-rsa-2048-other-private.pem")).unwrap()
}

/// Import a secret key into a token (sensitive, not extractable), with or
/// without `CKA_UNWRAP` and `CKA_VERIFY`.
pub fn import_secret(
    s: &cryptoki::session::Session,
    label: &str,
    kind: cryptoki::object::KeyType,
    value: Vec<u8>,
    unwrap: bool,
    verify: bool,
) {
    use cryptoki::object::{Attribute, ObjectClass};
    s.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(kind),
        Attribute::Value(value),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Unwrap(unwrap),
        Attribute::Verify(verify),
        Attribute::Label(label.as_bytes().to_vec()),
    ])
    .unwrap_or_else(|e| panic!("import {label}: {e}"));
}

/// Import into a token, through a logged-in read-write session: the peer's
/// AES wrapping key (`legacy-wrap`, `CKA_UNWRAP`), HMAC key (`legacy-hmac`,
/// `CKA_VERIFY`) and RSA key pair (`legacy-rsa`: private with `CKA_DECRYPT`,
/// public with `CKA_VERIFY`), and one other key of each (`...-other`).
pub fn import_peer_keys(s: &cryptoki::session::Session) {
    use cryptoki::object::{Attribute, KeyType, ObjectClass};
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};

    let secret = |label: &str, kind: KeyType, value: Vec<u8>, unwrap: bool, verify: bool| {
        import_secret(s, label, kind, value, unwrap, verify)
    };
    secret("legacy-wrap", KeyType::AES, aes_key(), true, false);
    secret("legacy-wrap-other", KeyType::AES, vec![0x22; 32], true, false);
    secret("legacy-hmac", KeyType::GENERIC_SECRET, hmac_key(), false, true);
    secret("legacy-hmac-other", KeyType::GENERIC_SECRET, vec![0x33; 32], false, true);
    for (label, pem) in [("legacy-rsa", rsa_private_pem()), ("legacy-rsa-other", other_rsa_private_pem())] {
        let private = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
        let be = |n: &rsa::BigUint| n.to_bytes_be();
        s.create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Modulus(be(private.n())),
            Attribute::PublicExponent(be(private.e())),
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .unwrap_or_else(|e| panic!("import the public key {label}: {e}"));
        s.create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Modulus(be(private.n())),
            Attribute::PublicExponent(be(private.e())),
            Attribute::PrivateExponent(be(private.d())),
            Attribute::Prime1(be(&private.primes()[0])),
            Attribute::Prime2(be(&private.primes()[1])),
            Attribute::Exponent1(be(private.dp().unwrap())),
            Attribute::Exponent2(be(private.dq().unwrap())),
            Attribute::Coefficient(be(&private.crt_coefficient().unwrap())),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Decrypt(true),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .unwrap_or_else(|e| panic!("import the private key {label}: {e}"));
    }
}
