//! Encryption context: authenticated, non-secret UTF-8 key/value pairs.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Prefix reserved for keys the library itself adds (such as the signing public key).
pub const RESERVED_PREFIX: &str = "aws-crypto-";

/// The context key under which signed suites carry the base64 verification key.
pub const PUBLIC_KEY_FIELD: &str = "aws-crypto-public-key";

/// An encryption context: UTF-8 pairs, kept sorted by key bytes (the wire order).
///
/// Callers build one with [`EncryptionContext::new`] and [`EncryptionContext::insert`],
/// which refuse the reserved `aws-crypto-` prefix. Clones share the pairs
/// until one of them changes (a cache hit hands out its context this way).
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EncryptionContext {
    // `String` orders by UTF-8 bytes, which is the order the format requires.
    pairs: Arc<BTreeMap<String, String>>,
}

impl fmt::Debug for EncryptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.pairs.iter()).finish()
    }
}

impl EncryptionContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Build a context from caller pairs; refuses reserved keys.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self> {
        let mut ctx = Self::new();
        for (k, v) in pairs {
            ctx.insert(k, v)?;
        }
        Ok(ctx)
    }

    /// Add a caller pair; keys starting with `aws-crypto-` are refused.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Result<()> {
        let key = key.into();
        if key.starts_with(RESERVED_PREFIX) {
            return Err(Error::InvalidEncryptionContext {
                reason: format!("key `{key}` uses the reserved prefix `{RESERVED_PREFIX}`"),
            });
        }
        Arc::make_mut(&mut self.pairs).insert(key, value.into());
        Ok(())
    }

    /// Build a context from pairs without the reserved-prefix check: for
    /// materials handed over by another implementation, which already carry
    /// the library's own fields (such as `aws-crypto-public-key`).
    #[cfg_attr(not(feature = "aws-esdk"), allow(dead_code))]
    pub(crate) fn from_pairs_unchecked<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        EncryptionContext { pairs: Arc::new(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect()) }
    }

    /// Add a pair without the reserved-prefix check (for the library's own fields).
    pub(crate) fn insert_reserved(&mut self, key: &str, value: String) {
        Arc::make_mut(&mut self.pairs).insert(key.to_owned(), value);
    }

    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.get(key).map(String::as_str)
    }

    /// Remove `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        if !self.pairs.contains_key(key) {
            return None;
        }
        Arc::make_mut(&mut self.pairs).remove(key)
    }

    /// True if `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.pairs.contains_key(key)
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True if there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Pairs in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Keys in wire order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.pairs.keys().map(String::as_str)
    }

    /// The pairs whose keys are in `keys` (missing keys are skipped).
    pub fn subset<'a>(&self, keys: impl IntoIterator<Item = &'a str>) -> EncryptionContext {
        let mut out = BTreeMap::new();
        for k in keys {
            if let Some(v) = self.pairs.get(k) {
                out.insert(k.to_owned(), v.clone());
            }
        }
        EncryptionContext::from_map(out)
    }

    /// The pairs whose keys are not in `keys`.
    pub fn without<'a>(&self, keys: impl IntoIterator<Item = &'a str> + Clone) -> EncryptionContext {
        let mut out = self.clone();
        for k in keys {
            // Shares the pairs when there is nothing to remove.
            out.remove(k);
        }
        out
    }

    /// Wire serialization: pair count (u16), then `len key len value` sorted
    /// by key; the empty context serializes to zero bytes.
    pub fn serialize(&self) -> Result<Vec<u8>> {
        crate::format::context::serialize(self)
    }

    /// Parse a wire serialization (the bytes after the u16 length field).
    /// `offset` is where those bytes start in the message, for error reports.
    /// Duplicate keys, invalid UTF-8 and trailing bytes are refused.
    pub fn deserialize(bytes: &[u8], offset: u64) -> Result<Self> {
        crate::format::context::parse(bytes, offset)
    }

    /// A context of exactly these pairs (for the wire decoder, which has
    /// already checked them).
    pub(crate) fn from_map(pairs: BTreeMap<String, String>) -> Self {
        EncryptionContext { pairs: Arc::new(pairs) }
    }
}

impl<'a> IntoIterator for &'a EncryptionContext {
    type Item = (&'a String, &'a String);
    type IntoIter = std::collections::btree_map::Iter<'a, String, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.pairs.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialization_is_sorted_and_round_trips() {
        let ctx = EncryptionContext::from_pairs([("b", "2"), ("a", "1"), ("ü", "ß")]).unwrap();
        let bytes = ctx.serialize().unwrap();
        assert_eq!(&bytes[..2], &[0, 3]);
        assert_eq!(&bytes[2..7], &[0, 1, b'a', 0, 1]);
        assert_eq!(EncryptionContext::deserialize(&bytes, 0).unwrap(), ctx);
        assert!(EncryptionContext::new().serialize().unwrap().is_empty());
    }

    #[test]
    fn reserved_prefix_refused() {
        let mut ctx = EncryptionContext::new();
        assert!(matches!(ctx.insert("aws-crypto-public-key", "x"), Err(Error::InvalidEncryptionContext { .. })));
        assert!(ctx.is_empty());
    }

    #[test]
    fn bad_serializations_refused() {
        let good = EncryptionContext::from_pairs([("a", "1"), ("b", "2")]).unwrap().serialize().unwrap();
        for cut in 1..good.len() {
            assert!(EncryptionContext::deserialize(&good[..cut], 0).is_err(), "cut at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(EncryptionContext::deserialize(&trailing, 0).is_err());
        // Same key twice.
        let dup = [0, 2, 0, 1, b'a', 0, 0, 0, 1, b'a', 0, 0];
        assert!(EncryptionContext::deserialize(&dup, 0).is_err());
        assert!(EncryptionContext::deserialize(&[0, 0], 0).is_err());
        let bad_utf8 = [0, 1, 0, 1, 0xff, 0, 0];
        assert!(EncryptionContext::deserialize(&bad_utf8, 0).is_err());
    }
}
