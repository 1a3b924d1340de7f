//! The encryption context of an item, rebuilt by the reader from its
//! configuration and the item (so none of it is stored in the header).
//!
//! * Always: `aws-crypto-table-name`, `aws-crypto-partition-name`, and
//!   `aws-crypto-sort-name` when the table has a sort key.
//! * Version 1: `aws-crypto-attr.<key>` = base64(type id || value) for the
//!   partition and sort keys.
//! * Version 2: `aws-crypto-attr.<name>` for every attribute included in the
//!   context (S and N as their text, NULL `null`, BOOL `true`/`false`,
//!   others as in version 1), and `aws-crypto-legend`: one letter per
//!   included attribute in key order (S, N, L for null and booleans, B
//!   otherwise).
//!
//! The format's serialization of a context (header and signed record) is a
//! u16 count then the pairs sorted by key bytes, each string with a u16 length.

use base64::Engine;

use super::config::TableConfig;
use super::value::{type_id, Terminal};
use crate::error::{Error, Result};
use crate::materials::EncryptionContext;

const TABLE_NAME: &str = "aws-crypto-table-name";
const PARTITION_NAME: &str = "aws-crypto-partition-name";
const SORT_NAME: &str = "aws-crypto-sort-name";
const ATTR_PREFIX: &str = "aws-crypto-attr.";
const LEGEND: &str = "aws-crypto-legend";

fn b64(t: &Terminal) -> String {
    base64::engine::general_purpose::STANDARD.encode(t.to_bytes())
}

/// The context pairs of `config` for an item whose key terminals are
/// `key_value(name)`, and whose context-included attributes are `included`
/// (name, terminal), for configuration `version`.
pub(crate) fn item_context(
    config: &TableConfig,
    version: u8,
    key_value: impl Fn(&str) -> Option<Terminal>,
    included: &[(&str, &Terminal)],
) -> Result<Vec<(String, String)>> {
    let mut pairs = vec![
        (TABLE_NAME.to_owned(), config.table_name.clone()),
        (PARTITION_NAME.to_owned(), config.partition_key.clone()),
    ];
    if let Some(sort) = &config.sort_key {
        pairs.push((SORT_NAME.to_owned(), sort.clone()));
    }
    for key in config.key_names() {
        let value = key_value(key)
            .ok_or_else(|| Error::MalformedItem { reason: format!("the item has no key attribute `{key}`") })?;
        if version == 1 {
            pairs.push((format!("{ATTR_PREFIX}{key}"), b64(&value)));
        }
    }
    if version == 2 {
        let mut attrs: Vec<(String, String, char)> = Vec::with_capacity(included.len());
        for (name, t) in included {
            let (value, letter) = match t.type_id {
                type_id::S => (utf8(&t.value)?, 'S'),
                type_id::N => (utf8(&t.value)?, 'N'),
                type_id::NULL => ("null".to_owned(), 'L'),
                type_id::BOOL => ((if t.value == [0] { "false" } else { "true" }).to_owned(), 'L'),
                _ => (b64(t), 'B'),
            };
            attrs.push((format!("{ATTR_PREFIX}{name}"), value, letter));
        }
        attrs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let legend: String = attrs.iter().map(|a| a.2).collect();
        pairs.extend(attrs.into_iter().map(|(k, v, _)| (k, v)));
        pairs.push((LEGEND.to_owned(), legend));
    }
    Ok(pairs)
}

fn utf8(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::MalformedItem { reason: "a string is not UTF-8".into() })
}

/// The format's serialization of a context: u16 count, sorted pairs.
pub(crate) fn serialize(context: &EncryptionContext) -> Result<Vec<u8>> {
    let too_big = || Error::InvalidEncryptionContext { reason: "too large for the item header".into() };
    let mut pairs: Vec<(&str, &str)> = context.iter().collect();
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = Vec::new();
    out.extend_from_slice(&u16::try_from(pairs.len()).map_err(|_| too_big())?.to_be_bytes());
    for (k, v) in pairs {
        for s in [k, v] {
            out.extend_from_slice(&u16::try_from(s.len()).map_err(|_| too_big())?.to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::items::config::CryptoAction;
    use crate::items::AttributeValue;
    use crate::keyrings::RawAesKeyring;

    fn config(v2: bool) -> TableConfig {
        let mut b =
            TableConfig::builder("tbl", "pk").sort_key("sk").keyring(RawAesKeyring::new("ns", "k", &[1; 32]).unwrap());
        if v2 {
            b = b.action("c", CryptoAction::SignAndIncludeInEncryptionContext);
        }
        b.build().unwrap()
    }

    fn term(v: AttributeValue) -> Terminal {
        v.to_terminal("x").unwrap()
    }

    #[test]
    fn version_1_holds_the_key_values() {
        let pk = term(AttributeValue::S("id".into()));
        let sk = term(AttributeValue::N("5".into()));
        let keys = |n: &str| if n == "pk" { Some(pk.clone()) } else { Some(sk.clone()) };
        let pairs = item_context(&config(false), 1, keys, &[]).unwrap();
        let get = |k: &str| pairs.iter().find(|p| p.0 == k).map(|p| p.1.as_str());
        assert_eq!(get("aws-crypto-table-name"), Some("tbl"));
        assert_eq!(get("aws-crypto-partition-name"), Some("pk"));
        assert_eq!(get("aws-crypto-sort-name"), Some("sk"));
        // base64 of 00 01 'i' 'd' and of 00 02 '5'.
        assert_eq!(get("aws-crypto-attr.pk"), Some("AAFpZA=="));
        assert_eq!(get("aws-crypto-attr.sk"), Some("AAI1"));
        assert_eq!(pairs.len(), 5);
        assert!(item_context(&config(false), 1, |_| None, &[]).is_err());
    }

    #[test]
    fn version_2_holds_included_attributes_and_the_legend() {
        let pk = term(AttributeValue::S("id".into()));
        let n = term(AttributeValue::Null);
        let b = term(AttributeValue::Bool(false));
        let bin = term(AttributeValue::B(vec![1]));
        let num = term(AttributeValue::N("1.50".into()));
        let included = [("pk", &pk), ("z", &n), ("b", &b), ("bin", &bin), ("n", &num)];
        let pairs = item_context(&config(true), 2, |_| Some(pk.clone()), &included).unwrap();
        let get = |k: &str| pairs.iter().find(|p| p.0 == k).map(|p| p.1.as_str());
        assert_eq!(get("aws-crypto-attr.pk"), Some("id"));
        assert_eq!(get("aws-crypto-attr.z"), Some("null"));
        assert_eq!(get("aws-crypto-attr.b"), Some("false"));
        assert_eq!(get("aws-crypto-attr.bin"), Some("//8B"));
        assert_eq!(get("aws-crypto-attr.n"), Some("1.5"));
        // Keys in byte order: b, bin, n, pk, z.
        assert_eq!(get("aws-crypto-legend"), Some("LBNSL"));
        assert_eq!(get("aws-crypto-attr.sk"), None);
    }

    #[test]
    fn serialization_counts_even_when_empty() {
        assert_eq!(serialize(&EncryptionContext::new()).unwrap(), [0, 0]);
        let c = EncryptionContext::from_pairs([("b", "2"), ("a", "1")]).unwrap();
        assert_eq!(serialize(&c).unwrap(), [0, 2, 0, 1, b'a', 0, 1, b'1', 0, 1, b'b', 0, 1, b'2']);
    }
}
