//! The DynamoDB attribute value model and its serialization.
//!
//! Every top-level attribute is one terminal: a 2-byte type id and a value.
//! Scalars are their bytes (S as UTF-8, N normalized, BOOL one byte, NULL
//! empty); sets are a u32 count then u32-length members, sorted (strings and
//! numbers by UTF-16 code units, binaries by bytes); a list is a u32 count
//! then per member type id || u32 length || value; a map is a u32 count then,
//! sorted by key (UTF-16), the key as `0x0001 || u32 length || UTF-8` and the
//! value as in a list. All integers are big-endian.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::number::normalize;
use crate::error::{Error, Result};

/// A DynamoDB item: attribute names to values.
pub type Item = BTreeMap<String, AttributeValue>;

/// One DynamoDB attribute value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttributeValue {
    /// A string.
    S(String),
    /// A number, as its decimal text.
    N(String),
    /// Binary data.
    B(Vec<u8>),
    /// A boolean.
    Bool(bool),
    /// Null.
    Null,
    /// A string set.
    Ss(Vec<String>),
    /// A number set.
    Ns(Vec<String>),
    /// A binary set.
    Bs(Vec<Vec<u8>>),
    /// A list of values.
    L(Vec<AttributeValue>),
    /// A map of names to values.
    M(BTreeMap<String, AttributeValue>),
}

/// Type ids of the terminals.
pub(crate) mod type_id {
    pub const NULL: [u8; 2] = [0x00, 0x00];
    pub const S: [u8; 2] = [0x00, 0x01];
    pub const N: [u8; 2] = [0x00, 0x02];
    pub const BOOL: [u8; 2] = [0x00, 0x04];
    pub const B: [u8; 2] = [0xFF, 0xFF];
    pub const SS: [u8; 2] = [0x01, 0x01];
    pub const NS: [u8; 2] = [0x01, 0x02];
    pub const BS: [u8; 2] = [0x01, 0xFF];
    pub const M: [u8; 2] = [0x02, 0x00];
    pub const L: [u8; 2] = [0x03, 0x00];
}

/// Deepest nesting of lists and maps accepted.
pub const MAX_DEPTH: usize = 32;

/// Order of strings by UTF-16 code units (DynamoDB's order of set members
/// and map keys; differs from UTF-8 byte order above U+FFFF).
pub(crate) fn utf16_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// A serialized terminal: type id and value bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Terminal {
    pub(crate) type_id: [u8; 2],
    pub(crate) value: Vec<u8>,
}

impl Terminal {
    /// `type id || value`.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.value.len());
        out.extend_from_slice(&self.type_id);
        out.extend_from_slice(&self.value);
        out
    }
}

fn bad(name: &str, reason: impl std::fmt::Display) -> Error {
    Error::MalformedItem { reason: format!("attribute `{name}`: {reason}") }
}

fn push_len(out: &mut Vec<u8>, len: usize, name: &str) -> Result<()> {
    let len = u32::try_from(len).map_err(|_| bad(name, "a length does not fit in 32 bits"))?;
    out.extend_from_slice(&len.to_be_bytes());
    Ok(())
}

impl AttributeValue {
    /// The type id of this value.
    pub(crate) fn type_id(&self) -> [u8; 2] {
        match self {
            AttributeValue::S(_) => type_id::S,
            AttributeValue::N(_) => type_id::N,
            AttributeValue::B(_) => type_id::B,
            AttributeValue::Bool(_) => type_id::BOOL,
            AttributeValue::Null => type_id::NULL,
            AttributeValue::Ss(_) => type_id::SS,
            AttributeValue::Ns(_) => type_id::NS,
            AttributeValue::Bs(_) => type_id::BS,
            AttributeValue::L(_) => type_id::L,
            AttributeValue::M(_) => type_id::M,
        }
    }

    /// Serialize as a top-level terminal (`name` only names errors).
    pub(crate) fn to_terminal(&self, name: &str) -> Result<Terminal> {
        Ok(Terminal { type_id: self.type_id(), value: self.value_bytes(name, 0)? })
    }

    fn value_bytes(&self, name: &str, depth: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write_value(&mut out, name, depth)?;
        Ok(out)
    }

    /// Append the serialized value (no type id, no length) to `out`.
    fn write_value(&self, out: &mut Vec<u8>, name: &str, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(bad(name, format!("nested deeper than {MAX_DEPTH} levels")));
        }
        match self {
            AttributeValue::S(s) => out.extend_from_slice(s.as_bytes()),
            AttributeValue::N(n) => out.extend_from_slice(normalize(n).map_err(|e| bad(name, e))?.as_bytes()),
            AttributeValue::B(b) => out.extend_from_slice(b),
            AttributeValue::Bool(b) => out.push(u8::from(*b)),
            AttributeValue::Null => {}
            AttributeValue::Ss(set) => {
                let sorted = sorted_unique_strings(set.to_vec(), name, "string set")?;
                write_members(out, sorted.iter().map(|s| s.as_bytes()), sorted.len(), name)?;
            }
            AttributeValue::Ns(set) => {
                sorted_unique_strings(set.clone(), name, "number set")?;
                let normalized = set.iter().map(|n| normalize(n)).collect::<std::result::Result<Vec<_>, _>>();
                let normalized = normalized.map_err(|e| bad(name, e))?;
                let sorted = sorted_unique_strings(normalized, name, "number set (after normalization)")?;
                write_members(out, sorted.iter().map(|s| s.as_bytes()), sorted.len(), name)?;
            }
            AttributeValue::Bs(set) => {
                let mut sorted: Vec<&[u8]> = set.iter().map(Vec::as_slice).collect();
                sorted.sort();
                if sorted.windows(2).any(|w| w[0] == w[1]) {
                    return Err(bad(name, "binary set with duplicate members"));
                }
                write_members(out, sorted.iter().copied(), sorted.len(), name)?;
            }
            AttributeValue::L(list) => {
                push_len(out, list.len(), name)?;
                for member in list {
                    member.write_nested(out, name, depth + 1)?;
                }
            }
            AttributeValue::M(map) => {
                push_len(out, map.len(), name)?;
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort_by(|a, b| utf16_cmp(a, b));
                for key in keys {
                    if key.is_empty() || key.len() > 65535 {
                        return Err(bad(name, "a map key must be 1 to 65535 UTF-8 bytes"));
                    }
                    out.extend_from_slice(&type_id::S);
                    push_len(out, key.len(), name)?;
                    out.extend_from_slice(key.as_bytes());
                    map[key].write_nested(out, name, depth + 1)?;
                }
            }
        }
        Ok(())
    }

    /// Append a member of a list or map: type id, u32 length, value. The
    /// value is written in place and its length filled in after.
    fn write_nested(&self, out: &mut Vec<u8>, name: &str, depth: usize) -> Result<()> {
        out.extend_from_slice(&self.type_id());
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        self.write_value(out, name, depth)?;
        let len = u32::try_from(out.len() - at - 4).map_err(|_| bad(name, "a length does not fit in 32 bits"))?;
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    /// Parse a terminal back into a value; refuses trailing bytes,
    /// truncation, unknown type ids, invalid UTF-8 and duplicate members.
    pub(crate) fn from_terminal(type_id: [u8; 2], value: &[u8], name: &str) -> Result<Self> {
        let mut reader = Reader { data: value, pos: 0, name };
        let parsed = reader.value(type_id, value.len(), 0)?;
        Ok(parsed)
    }
}

fn sorted_unique_strings(mut members: Vec<String>, name: &str, what: &str) -> Result<Vec<String>> {
    members.sort_by(|a, b| utf16_cmp(a, b));
    if members.windows(2).any(|w| w[0] == w[1]) {
        return Err(bad(name, format!("{what} with duplicate members")));
    }
    Ok(members)
}

fn write_members<'a>(
    out: &mut Vec<u8>,
    members: impl Iterator<Item = &'a [u8]>,
    count: usize,
    name: &str,
) -> Result<()> {
    push_len(out, count, name)?;
    for member in members {
        push_len(out, member.len(), name)?;
        out.extend_from_slice(member);
    }
    Ok(())
}

/// A bounds-checked reader over a serialized value.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    name: &'a str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| bad(self.name, "serialized value is truncated"))?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<usize> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn text(&mut self, len: usize) -> Result<String> {
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| bad(self.name, "a string is not valid UTF-8"))
    }

    fn string_members(&mut self) -> Result<Vec<String>> {
        let count = self.u32()?;
        let mut members = Vec::new();
        for _ in 0..count {
            let len = self.u32()?;
            members.push(self.text(len)?);
        }
        Ok(members)
    }

    /// Parse a value of `len` bytes of type `type_id` at the current position.
    fn value(&mut self, type_id: [u8; 2], len: usize, depth: usize) -> Result<AttributeValue> {
        if depth > MAX_DEPTH {
            return Err(bad(self.name, format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let start = self.pos;
        let value = match type_id {
            type_id::S => AttributeValue::S(self.text(len)?),
            type_id::N => {
                let text = self.text(len)?;
                normalize(&text).map_err(|e| bad(self.name, e))?;
                AttributeValue::N(text)
            }
            type_id::B => AttributeValue::B(self.take(len)?.to_vec()),
            type_id::NULL => AttributeValue::Null,
            type_id::BOOL => match self.take(len)? {
                [0] => AttributeValue::Bool(false),
                [1] => AttributeValue::Bool(true),
                _ => return Err(bad(self.name, "a boolean is not one byte 0 or 1")),
            },
            type_id::SS => {
                let members = self.string_members()?;
                sorted_unique_strings(members.clone(), self.name, "string set")?;
                AttributeValue::Ss(members)
            }
            type_id::NS => {
                let members = self.string_members()?;
                for m in &members {
                    normalize(m).map_err(|e| bad(self.name, e))?;
                }
                sorted_unique_strings(members.clone(), self.name, "number set")?;
                AttributeValue::Ns(members)
            }
            type_id::BS => {
                let count = self.u32()?;
                let mut members: Vec<Vec<u8>> = Vec::new();
                for _ in 0..count {
                    let len = self.u32()?;
                    members.push(self.take(len)?.to_vec());
                }
                let mut sorted = members.clone();
                sorted.sort();
                if sorted.windows(2).any(|w| w[0] == w[1]) {
                    return Err(bad(self.name, "binary set with duplicate members"));
                }
                AttributeValue::Bs(members)
            }
            type_id::L => {
                let count = self.u32()?;
                let mut list = Vec::new();
                for _ in 0..count {
                    list.push(self.nested(depth)?);
                }
                AttributeValue::L(list)
            }
            type_id::M => {
                let count = self.u32()?;
                let mut map = BTreeMap::new();
                for _ in 0..count {
                    if self.take(2)? != type_id::S {
                        return Err(bad(self.name, "a map key is not a string"));
                    }
                    let len = self.u32()?;
                    let key = self.text(len)?;
                    let value = self.nested(depth)?;
                    if map.insert(key, value).is_some() {
                        return Err(bad(self.name, "a map with a duplicate key"));
                    }
                }
                AttributeValue::M(map)
            }
            other => return Err(bad(self.name, format!("unknown type id {:02X}{:02X}", other[0], other[1]))),
        };
        if self.pos - start != len {
            return Err(bad(self.name, "serialized value length does not match its contents"));
        }
        Ok(value)
    }

    fn nested(&mut self, depth: usize) -> Result<AttributeValue> {
        let t = self.take(2)?;
        let type_id = [t[0], t[1]];
        let len = self.u32()?;
        if self.data.len() - self.pos < len {
            return Err(bad(self.name, "serialized value is truncated"));
        }
        self.value(type_id, len, depth + 1)
    }
}

#[cfg(test)]
mod tests {
    //! Expected bytes are laid out by hand from the format's description.
    use super::*;

    fn ser(v: &AttributeValue) -> Vec<u8> {
        v.to_terminal("a").unwrap().to_bytes()
    }

    fn round_trip(v: &AttributeValue) -> AttributeValue {
        let t = v.to_terminal("a").unwrap();
        AttributeValue::from_terminal(t.type_id, &t.value, "a").unwrap()
    }

    #[test]
    fn scalars_have_their_type_ids() {
        assert_eq!(ser(&AttributeValue::S("hé".into())), [0, 1, b'h', 0xC3, 0xA9]);
        assert_eq!(ser(&AttributeValue::N("012.50".into())), [0, 2, b'1', b'2', b'.', b'5']);
        assert_eq!(ser(&AttributeValue::B(vec![1, 2])), [0xFF, 0xFF, 1, 2]);
        assert_eq!(ser(&AttributeValue::Bool(true)), [0, 4, 1]);
        assert_eq!(ser(&AttributeValue::Bool(false)), [0, 4, 0]);
        assert_eq!(ser(&AttributeValue::Null), [0, 0]);
    }

    #[test]
    fn sets_are_sorted_and_counted() {
        let ss = AttributeValue::Ss(vec!["b".into(), "a".into()]);
        assert_eq!(ser(&ss), [1, 1, 0, 0, 0, 2, 0, 0, 0, 1, b'a', 0, 0, 0, 1, b'b']);
        // "10" sorts before "9" as text; "1.0" normalizes to "1".
        let ns = AttributeValue::Ns(vec!["9".into(), "10".into(), "1.0".into()]);
        assert_eq!(ser(&ns), [1, 2, 0, 0, 0, 3, 0, 0, 0, 1, b'1', 0, 0, 0, 2, b'1', b'0', 0, 0, 0, 1, b'9']);
        let bs = AttributeValue::Bs(vec![vec![2], vec![1, 5]]);
        assert_eq!(ser(&bs), [1, 0xFF, 0, 0, 0, 2, 0, 0, 0, 2, 1, 5, 0, 0, 0, 1, 2]);
        // UTF-16 order: U+FF61 sorts after U+1F600 (a surrogate pair), unlike UTF-8.
        let ss = AttributeValue::Ss(vec!["\u{FF61}".into(), "\u{1F600}".into()]);
        let bytes = ser(&ss);
        assert_eq!(&bytes[10..14], "\u{1F600}".as_bytes());
    }

    #[test]
    fn duplicate_set_members_are_refused() {
        assert!(AttributeValue::Ss(vec!["a".into(), "a".into()]).to_terminal("x").is_err());
        assert!(AttributeValue::Ns(vec!["1".into(), "1.0".into()]).to_terminal("x").is_err());
        assert!(AttributeValue::Bs(vec![vec![1], vec![1]]).to_terminal("x").is_err());
        assert!(AttributeValue::Ns(vec!["1e200".into()]).to_terminal("x").is_err());
    }

    #[test]
    fn lists_and_maps_nest() {
        let mut m = BTreeMap::new();
        m.insert("k".to_string(), AttributeValue::Null);
        m.insert("é".to_string(), AttributeValue::L(vec![AttributeValue::Bool(true)]));
        let v = AttributeValue::M(m);
        let expected: Vec<u8> = [
            &[2, 0][..],
            &[0, 0, 0, 2],
            &[0, 1, 0, 0, 0, 1, b'k'],
            &[0, 0, 0, 0, 0, 0],
            &[0, 1, 0, 0, 0, 2, 0xC3, 0xA9],
            &[3, 0, 0, 0, 0, 11],
            &[0, 0, 0, 1, 0, 4, 0, 0, 0, 1, 1],
        ]
        .concat();
        assert_eq!(ser(&v), expected);
        assert_eq!(round_trip(&v), v);
    }

    #[test]
    fn every_type_round_trips() {
        let values = [
            AttributeValue::S(String::new()),
            AttributeValue::N("-0.001".into()),
            AttributeValue::B(vec![]),
            AttributeValue::Ss(vec!["a".into(), "b".into()]),
            AttributeValue::Ns(vec!["1".into(), "2".into()]),
            AttributeValue::Bs(vec![vec![], vec![0]]),
            AttributeValue::L(vec![]),
            AttributeValue::M(BTreeMap::new()),
        ];
        for v in values {
            assert_eq!(round_trip(&v), v);
        }
    }

    #[test]
    fn bad_bytes_are_refused_not_panicking() {
        let cases: [(&[u8; 2], &[u8]); 8] = [
            (&type_id::BOOL, &[2]),
            (&type_id::S, &[0xFF]),
            (&type_id::L, &[0, 0, 0, 1]),
            (&type_id::L, &[0, 0, 0, 1, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF]),
            (&type_id::SS, &[0, 0, 0, 1, 0, 0, 0, 1, b'a', 9]),
            (&type_id::M, &[0, 0, 0, 1, 0, 2, 0, 0, 0, 0]),
            (&[9, 9], &[]),
            (&type_id::N, b"1e999"),
        ];
        for (t, v) in cases {
            assert!(AttributeValue::from_terminal(*t, v, "x").is_err(), "{t:?} {v:?}");
        }
        let mut deep = AttributeValue::Null;
        for _ in 0..40 {
            deep = AttributeValue::L(vec![deep]);
        }
        assert!(deep.to_terminal("x").is_err());
    }
}
