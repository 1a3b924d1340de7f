//! Conversions to and from `aws_sdk_dynamodb` attribute values (cargo feature `dynamodb`).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue as SdkValue;

use super::value::{AttributeValue, Item, MAX_DEPTH};
use crate::error::{Error, Result};

fn bad(name: &str, reason: impl std::fmt::Display) -> Error {
    Error::MalformedItem { reason: format!("attribute `{name}`: {reason}") }
}

impl From<AttributeValue> for SdkValue {
    fn from(value: AttributeValue) -> Self {
        match value {
            AttributeValue::S(s) => SdkValue::S(s),
            AttributeValue::N(n) => SdkValue::N(n),
            AttributeValue::B(b) => SdkValue::B(Blob::new(b)),
            AttributeValue::Bool(b) => SdkValue::Bool(b),
            AttributeValue::Null => SdkValue::Null(true),
            AttributeValue::Ss(set) => SdkValue::Ss(set),
            AttributeValue::Ns(set) => SdkValue::Ns(set),
            AttributeValue::Bs(set) => SdkValue::Bs(set.into_iter().map(Blob::new).collect()),
            AttributeValue::L(list) => SdkValue::L(list.into_iter().map(SdkValue::from).collect()),
            AttributeValue::M(map) => SdkValue::M(map.into_iter().map(|(k, v)| (k, SdkValue::from(v))).collect()),
        }
    }
}

impl From<&AttributeValue> for SdkValue {
    fn from(value: &AttributeValue) -> Self {
        SdkValue::from(value.clone())
    }
}

impl TryFrom<&SdkValue> for AttributeValue {
    type Error = Error;

    /// Fails on a variant unknown to this crate (`Unknown`, or one added to
    /// the SDK later), on `Null(false)`, and beyond [`MAX_DEPTH`] levels.
    fn try_from(value: &SdkValue) -> Result<Self> {
        from_sdk(value.clone(), "(value)", 0)
    }
}

impl TryFrom<SdkValue> for AttributeValue {
    type Error = Error;

    /// As for `&SdkValue`.
    fn try_from(value: SdkValue) -> Result<Self> {
        from_sdk(value, "(value)", 0)
    }
}

/// The values are moved, not copied.
fn from_sdk(value: SdkValue, name: &str, depth: usize) -> Result<AttributeValue> {
    if depth > MAX_DEPTH {
        return Err(bad(name, format!("nested deeper than {MAX_DEPTH} levels")));
    }
    Ok(match value {
        SdkValue::S(s) => AttributeValue::S(s),
        SdkValue::N(n) => AttributeValue::N(n),
        SdkValue::B(b) => AttributeValue::B(b.into_inner()),
        SdkValue::Bool(b) => AttributeValue::Bool(b),
        SdkValue::Null(true) => AttributeValue::Null,
        SdkValue::Null(false) => return Err(bad(name, "NULL must be true")),
        SdkValue::Ss(set) => AttributeValue::Ss(set),
        SdkValue::Ns(set) => AttributeValue::Ns(set),
        SdkValue::Bs(set) => AttributeValue::Bs(set.into_iter().map(Blob::into_inner).collect()),
        SdkValue::L(list) => {
            AttributeValue::L(list.into_iter().map(|v| from_sdk(v, name, depth + 1)).collect::<Result<_>>()?)
        }
        SdkValue::M(map) => AttributeValue::M(
            map.into_iter().map(|(k, v)| Ok((k, from_sdk(v, name, depth + 1)?))).collect::<Result<BTreeMap<_, _>>>()?,
        ),
        other => return Err(bad(name, format!("unknown DynamoDB attribute value type {other:?}"))),
    })
}

/// An SDK item (as `GetItem` returns it) as an [`Item`]; fails as
/// `TryFrom<&SdkValue>` does, naming the attribute.
pub fn from_sdk_item(item: HashMap<String, SdkValue>) -> Result<Item> {
    item.into_iter()
        .map(|(name, value)| {
            let value = from_sdk(value, &name, 0)?;
            Ok((name, value))
        })
        .collect()
}

/// An [`Item`] as an SDK item (as `PutItem` takes it).
///
/// SDK's `aws_sdk_dynamodb::types::AttributeValue` (cargo feature `dynamodb`).
///
/// Values convert with `From` (to the SDK, never fails) and `TryFrom` (from
/// the SDK: fails on a variant this crate does not know, on `NULL` set to
/// `false`, and beyond [`MAX_DEPTH`] levels of nesting). Whole items convert
/// with [`to_sdk_item`] and [`from_sdk_item`] (an [`Item`] is a `BTreeMap`,
/// so `From` between it and the SDK's `HashMap` cannot be written here).
///
/// ```
/// use std::collections::HashMap;
/// use aws_sdk_dynamodb::types::AttributeValue as Sdk;
/// use hsm_keyring::items::{from_sdk_item, to_sdk_item, AttributeValue};
///
/// let sdk: HashMap<String, Sdk> = HashMap::from([
///     ("id".to_string(), Sdk::S("o-1".into())),
///     ("tags".to_string(), Sdk::Ss(vec!["a".into(), "b".into()])),
/// ]);
/// let item = from_sdk_item(sdk.clone())?;
/// assert_eq!(item["id"], AttributeValue::S("o-1".into()));
/// assert_eq!(to_sdk_item(&item), sdk);
/// # Ok::<(), hsm_keyring::Error>(())
/// ```
pub fn to_sdk_item(item: &Item) -> HashMap<String, SdkValue> {
    into_sdk_item(item.clone())
}

/// [`to_sdk_item`] of an item no longer needed: its names and values are
/// moved, not copied.
pub(crate) fn into_sdk_item(item: Item) -> HashMap<String, SdkValue> {
    item.into_iter().map(|(name, value)| (name, SdkValue::from(value))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_type() -> Item {
        let mut inner = BTreeMap::new();
        inner.insert("deep".to_owned(), AttributeValue::L(vec![AttributeValue::Null, AttributeValue::B(vec![0, 255])]));
        Item::from([
            ("s".to_owned(), AttributeValue::S("text".into())),
            ("n".to_owned(), AttributeValue::N("-1.5".into())),
            ("b".to_owned(), AttributeValue::B(vec![1, 2, 3])),
            ("bool".to_owned(), AttributeValue::Bool(true)),
            ("null".to_owned(), AttributeValue::Null),
            ("ss".to_owned(), AttributeValue::Ss(vec!["x".into(), "y".into()])),
            ("ns".to_owned(), AttributeValue::Ns(vec!["1".into(), "2.5".into()])),
            ("bs".to_owned(), AttributeValue::Bs(vec![vec![1], vec![2, 2]])),
            ("l".to_owned(), AttributeValue::L(vec![AttributeValue::S("a".into()), AttributeValue::M(inner.clone())])),
            ("m".to_owned(), AttributeValue::M(inner)),
        ])
    }

    #[test]
    fn every_type_round_trips_nested() {
        let item = every_type();
        let sdk = to_sdk_item(&item);
        assert_eq!(sdk.len(), 10);
        assert_eq!(sdk["null"], SdkValue::Null(true));
        assert_eq!(sdk["b"], SdkValue::B(Blob::new(vec![1, 2, 3])));
        assert_eq!(sdk["bs"], SdkValue::Bs(vec![Blob::new(vec![1]), Blob::new(vec![2, 2])]));
        let SdkValue::M(m) = &sdk["m"] else { panic!("not a map: {:?}", sdk["m"]) };
        assert_eq!(m["deep"], SdkValue::L(vec![SdkValue::Null(true), SdkValue::B(Blob::new(vec![0, 255]))]));
        assert_eq!(into_sdk_item(item.clone()), sdk);
        assert_eq!(from_sdk_item(sdk).unwrap(), item);
        for (name, value) in &item {
            let sdk = SdkValue::from(value.clone());
            assert_eq!(AttributeValue::try_from(&sdk).unwrap(), *value, "{name}");
            assert_eq!(AttributeValue::try_from(sdk).unwrap(), *value, "{name}");
        }
    }

    #[test]
    fn false_null_is_refused_with_the_attribute_name() {
        // (`Unknown`, the variant of types the SDK does not know, cannot be
        // built outside the SDK; it takes the same error path.)
        let err = from_sdk_item(HashMap::from([("odd".to_owned(), SdkValue::Null(false))])).unwrap_err();
        assert!(matches!(err, Error::MalformedItem { .. }), "{err}");
        assert!(err.to_string().contains("`odd`") && err.to_string().contains("NULL must be true"), "{err}");
        let nested = SdkValue::M(HashMap::from([("x".to_owned(), SdkValue::L(vec![SdkValue::Null(false)]))]));
        let err = from_sdk_item(HashMap::from([("outer".to_owned(), nested)])).unwrap_err();
        assert!(err.to_string().contains("`outer`"), "{err}");
        let err = AttributeValue::try_from(SdkValue::Null(false)).unwrap_err();
        assert!(err.to_string().contains("NULL must be true"), "{err}");
    }

    #[test]
    fn nesting_beyond_the_limit_is_refused() {
        let mut value = SdkValue::S("leaf".into());
        for _ in 0..MAX_DEPTH {
            value = SdkValue::L(vec![value]);
        }
        assert!(AttributeValue::try_from(&value).is_ok());
        let deeper = SdkValue::L(vec![value]);
        let err = AttributeValue::try_from(&deeper).unwrap_err();
        assert!(err.to_string().contains("deeper"), "{err}");
    }

    #[test]
    fn a_converted_item_encrypts_and_decrypts() {
        use crate::items::{decrypt_item, encrypt_item, CryptoAction, TableConfig};
        use crate::keyrings::RawAesKeyring;
        let config = TableConfig::builder("t", "s")
            .default_action(CryptoAction::EncryptAndSign)
            .keyring(RawAesKeyring::new("ns", "k", &[3; 32]).unwrap())
            .build()
            .unwrap();
        let stored = to_sdk_item(&encrypt_item(&config, &every_type()).unwrap());
        assert!(matches!(stored["aws_dbe_head"], SdkValue::B(_)));
        assert!(matches!(stored["m"], SdkValue::B(_)));
        assert_eq!(decrypt_item(&config, &from_sdk_item(stored).unwrap()).unwrap(), every_type());
    }
}
