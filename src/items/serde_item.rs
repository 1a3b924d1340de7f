//! serde types to items and back.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Number, Value};

use super::number::normalize;
use super::value::{AttributeValue, Item, MAX_DEPTH};
use crate::error::{Error, Result};

fn bad(name: &str, reason: impl std::fmt::Display) -> Error {
    Error::MalformedItem { reason: format!("attribute `{name}`: {reason}") }
}

/// `value` (a struct or a map with string keys) as an item.
///
/// `serde_json::Value`.
///
/// [`to_item`] maps a struct (or map) to an [`Item`]: strings to `S`, numbers
/// to `N` in DynamoDB's normalized form, booleans to `BOOL`, `None`/unit to
/// `NULL`, sequences and tuples to `L`, structs and maps to `M`. What serde
/// does first applies: enums are tagged as serde tags them, a `Vec<u8>` is a
/// list of numbers, and a non-finite float becomes `NULL`.
///
/// [`from_item`] reads an item back: `S`, `N`, `BOOL`, `NULL`, `L` and `M`
/// the other way; a string or number set as a list of strings or numbers (so
/// a `Vec<String>` or `BTreeSet<String>` field reads an `SS`); `B` as a list
/// of bytes (so a `Vec<u8>` field reads it) and `BS` as a list of those. A
/// number is read exactly when it is an integer that fits in 64 bits, and
/// otherwise as the nearest `f64`.
///
/// Sets and binary values cannot come out of [`to_item`]: set them on the
/// item afterwards (`item.insert("tags".into(), AttributeValue::Ss(..))`),
/// and leave such fields out of the serialized form
/// (`#[serde(skip_serializing)]`) or let [`from_item`] read them as above.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use hsm_keyring::items::{from_item, to_item, AttributeValue};
///
/// #[derive(Serialize, Deserialize, PartialEq, Debug)]
/// struct Order { id: String, total: f64, paid: bool, note: Option<String> }
///
/// let order = Order { id: "o-1".into(), total: 12.5, paid: true, note: None };
/// let item = to_item(&order)?;
/// assert_eq!(item["total"], AttributeValue::N("12.5".into()));
/// assert_eq!(item["note"], AttributeValue::Null);
/// assert_eq!(from_item::<Order>(&item)?, order);
/// # Ok::<(), hsm_keyring::Error>(())
/// ```
pub fn to_item<T: Serialize + ?Sized>(value: &T) -> Result<Item> {
    let json = serde_json::to_value(value).map_err(|e| bad("(item)", format!("cannot be serialized: {e}")))?;
    let Value::Object(map) = json else {
        return Err(bad("(item)", "an item must serialize as a struct or a map"));
    };
    map.into_iter()
        .map(|(name, v)| {
            let value = json_to_value(v, &name, 0)?;
            Ok((name, value))
        })
        .collect()
}

/// The item (decrypted, or never encrypted) as a `T`.
pub fn from_item<T: DeserializeOwned>(item: &Item) -> Result<T> {
    let mut map = Map::new();
    for (name, value) in item {
        map.insert(name.clone(), value_to_json(value, name, 0)?);
    }
    serde_json::from_value(Value::Object(map)).map_err(|e| bad("(item)", format!("cannot be deserialized: {e}")))
}

fn json_to_value(value: Value, name: &str, depth: usize) -> Result<AttributeValue> {
    if depth > MAX_DEPTH {
        return Err(bad(name, format!("nested deeper than {MAX_DEPTH} levels")));
    }
    Ok(match value {
        Value::Null => AttributeValue::Null,
        Value::Bool(b) => AttributeValue::Bool(b),
        Value::String(s) => AttributeValue::S(s),
        Value::Number(n) => AttributeValue::N(normalize(&n.to_string()).map_err(|e| bad(name, e))?),
        Value::Array(list) => {
            AttributeValue::L(list.into_iter().map(|v| json_to_value(v, name, depth + 1)).collect::<Result<_>>()?)
        }
        Value::Object(map) => AttributeValue::M(
            map.into_iter()
                .map(|(k, v)| Ok((k, json_to_value(v, name, depth + 1)?)))
                .collect::<Result<BTreeMap<_, _>>>()?,
        ),
    })
}

fn number(text: &str, name: &str) -> Result<Value> {
    if let Ok(n) = text.parse::<u64>() {
        return Ok(Value::from(n));
    }
    if let Ok(n) = text.parse::<i64>() {
        return Ok(Value::from(n));
    }
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| bad(name, format!("`{text}` is not a number")))
}

fn bytes(b: &[u8]) -> Value {
    Value::Array(b.iter().map(|&x| Value::from(x)).collect())
}

fn value_to_json(value: &AttributeValue, name: &str, depth: usize) -> Result<Value> {
    if depth > MAX_DEPTH {
        return Err(bad(name, format!("nested deeper than {MAX_DEPTH} levels")));
    }
    Ok(match value {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => number(n, name)?,
        AttributeValue::B(b) => bytes(b),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null => Value::Null,
        AttributeValue::Ss(set) => Value::Array(set.iter().cloned().map(Value::String).collect()),
        AttributeValue::Ns(set) => Value::Array(set.iter().map(|n| number(n, name)).collect::<Result<_>>()?),
        AttributeValue::Bs(set) => Value::Array(set.iter().map(|b| bytes(b)).collect()),
        AttributeValue::L(list) => {
            Value::Array(list.iter().map(|v| value_to_json(v, name, depth + 1)).collect::<Result<_>>()?)
        }
        AttributeValue::M(map) => Value::Object(
            map.iter().map(|(k, v)| Ok((k.clone(), value_to_json(v, name, depth + 1)?))).collect::<Result<_>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use serde::Deserialize;

    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Line {
        sku: String,
        qty: u32,
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Order {
        id: String,
        total: f64,
        count: i64,
        big: u64,
        paid: bool,
        note: Option<String>,
        lines: Vec<Line>,
        attrs: HashMap<String, String>,
    }

    fn order() -> Order {
        Order {
            id: "o-1".into(),
            total: 1200.0,
            count: -3,
            big: u64::MAX,
            paid: false,
            note: None,
            lines: vec![Line { sku: "a".into(), qty: 2 }],
            attrs: HashMap::from([("k".into(), "v".into())]),
        }
    }

    #[test]
    fn a_struct_becomes_an_item_and_back() {
        let item = to_item(&order()).unwrap();
        assert_eq!(item["id"], AttributeValue::S("o-1".into()));
        assert_eq!(item["total"], AttributeValue::N("1200".into()));
        assert_eq!(item["count"], AttributeValue::N("-3".into()));
        assert_eq!(item["big"], AttributeValue::N(u64::MAX.to_string()));
        assert_eq!(item["paid"], AttributeValue::Bool(false));
        assert_eq!(item["note"], AttributeValue::Null);
        let line = BTreeMap::from([
            ("qty".to_owned(), AttributeValue::N("2".into())),
            ("sku".to_owned(), AttributeValue::S("a".into())),
        ]);
        assert_eq!(item["lines"], AttributeValue::L(vec![AttributeValue::M(line)]));
        assert_eq!(from_item::<Order>(&item).unwrap(), order());
    }

    #[test]
    fn sets_and_binary_read_as_lists() {
        #[derive(Deserialize)]
        struct Blobs {
            tags: BTreeSet<String>,
            scores: Vec<f64>,
            data: Vec<u8>,
            parts: Vec<Vec<u8>>,
        }
        let item = Item::from([
            ("tags".to_owned(), AttributeValue::Ss(vec!["b".into(), "a".into()])),
            ("scores".to_owned(), AttributeValue::Ns(vec!["1.5".into(), "2".into()])),
            ("data".to_owned(), AttributeValue::B(vec![0, 255])),
            ("parts".to_owned(), AttributeValue::Bs(vec![vec![1], vec![]])),
        ]);
        let b: Blobs = from_item(&item).unwrap();
        assert_eq!(b.tags, BTreeSet::from(["a".to_owned(), "b".to_owned()]));
        assert_eq!(b.scores, [1.5, 2.0]);
        assert_eq!(b.data, [0, 255]);
        assert_eq!(b.parts, [vec![1], vec![]]);
    }

    #[test]
    fn what_is_not_an_item_is_refused() {
        for err in [to_item(&5).unwrap_err(), to_item(&vec!["a"]).unwrap_err(), to_item("text").unwrap_err()] {
            assert!(matches!(err, Error::MalformedItem { .. }), "{err}");
        }
        let item = Item::from([("id".to_owned(), AttributeValue::N("not a number".into()))]);
        assert!(from_item::<BTreeMap<String, f64>>(&item).unwrap_err().to_string().contains("`id`"));
        let item = Item::from([("id".to_owned(), AttributeValue::S("x".into()))]);
        let err = from_item::<Order>(&item).unwrap_err();
        assert!(err.to_string().contains("cannot be deserialized"), "{err}");
    }
}
