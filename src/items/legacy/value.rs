//! The legacy client's attribute serialization: `0x00` then a one-letter
//! type tag (`b` B, `n` N, `s` S, `?` BOOL, `0x00` NULL, `B` BS, `N` NS,
//! `S` SS, `L` L, `M` M); scalars as a u32 big-endian length and their bytes
//! (BOOL one byte, NULL nothing); sets as a u32 count then each member as
//! length and bytes, sorted by those bytes; lists as a u32 count then each
//! member serialized; maps as a u32 count then, sorted by the key's UTF-8
//! bytes, the key serialized as a string and the value serialized. Numbers
//! are normalized (no exponent, no trailing fractional zeros).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::super::number::normalize;
use super::super::value::{utf16_cmp, AttributeValue, MAX_DEPTH};
use crate::error::{Error, Result};

const B: u8 = b'b';
const N: u8 = b'n';
const S: u8 = b's';
const BOOL: u8 = b'?';
const NULL: u8 = 0;
const BS: u8 = b'B';
const NS: u8 = b'N';
const SS: u8 = b'S';
const L: u8 = b'L';
const M: u8 = b'M';

fn malformed(field: &str, reason: impl std::fmt::Display) -> Error {
    Error::MalformedItem { reason: format!("attribute `{field}`: {reason}") }
}

fn put_len(out: &mut Vec<u8>, len: usize, field: &str) -> Result<()> {
    let len = u32::try_from(len).map_err(|_| malformed(field, "a value longer than 4 GiB"))?;
    out.extend_from_slice(&len.to_be_bytes());
    Ok(())
}

fn put_value(out: &mut Vec<u8>, bytes: &[u8], field: &str) -> Result<()> {
    put_len(out, bytes.len(), field)?;
    out.extend_from_slice(bytes);
    Ok(())
}

/// Which writer's serialization: they differ in orders and numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// The Python package: strings (names, map keys, string-set members)
    /// and binary-set members sorted by unsigned bytes; numbers exact.
    Python,
    /// [`Dialect::Python`] with numbers rounded half-even to 28 significant
    /// digits, as the package does (its `normalize()` runs in Python's
    /// default decimal context).
    Python28,
    /// Java: strings sorted by UTF-16 code units, binary-set members by
    /// signed bytes (`ByteBuffer.compareTo`); numbers exact.
    Java,
}

impl Dialect {
    /// The order of attribute names, map keys and string-set members.
    pub(crate) fn cmp_str(self, a: &str, b: &str) -> Ordering {
        match self {
            Dialect::Java => utf16_cmp(a, b),
            _ => a.cmp(b),
        }
    }

    fn cmp_bytes(self, a: &[u8], b: &[u8]) -> Ordering {
        match self {
            Dialect::Java => a.iter().map(|x| *x as i8).cmp(b.iter().map(|x| *x as i8)),
            _ => a.cmp(b),
        }
    }
}

/// Significant digits kept by [`Dialect::Python28`].
const PYTHON_DIGITS: usize = 28;

fn number(text: &str, field: &str, dialect: Dialect) -> Result<String> {
    let exact = normalize(text).map_err(|e| malformed(field, e))?;
    Ok(match dialect {
        Dialect::Python28 => round_significant(&exact, PYTHON_DIGITS),
        _ => exact,
    })
}

/// `normalized` (plain, no exponent) rounded half-even to `keep` significant digits.
pub(crate) fn round_significant(normalized: &str, keep: usize) -> String {
    let (negative, body) = match normalized.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, normalized),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let mut digits: Vec<u8> = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
    let mut point = int.len();
    let lead = digits.iter().take_while(|d| **d == 0).count();
    if digits.len() - lead <= keep {
        return normalized.to_owned();
    }
    let cut = lead + keep;
    let first = digits[cut];
    let beyond = digits[cut + 1..].iter().any(|d| *d != 0);
    let up = first > 5 || (first == 5 && (beyond || digits[cut - 1] % 2 == 1));
    digits[cut..].iter_mut().for_each(|d| *d = 0);
    if up {
        let mut i = cut;
        loop {
            if i == 0 {
                digits.insert(0, 1);
                point += 1;
                break;
            }
            i -= 1;
            if digits[i] == 9 {
                digits[i] = 0;
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let text: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
    let plain = format!("{}{}.{}0", if negative { "-" } else { "" }, &text[..point], &text[point..]);
    normalize(&plain).unwrap_or(plain)
}

/// The legacy serialization of `value` (of attribute `field`, for errors).
pub(crate) fn serialize(value: &AttributeValue, field: &str, dialect: Dialect) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    write(&mut out, value, field, 0, dialect)?;
    Ok(out)
}

/// A set whose members are already in order.
fn write_set(out: &mut Vec<u8>, tag: u8, members: Vec<Vec<u8>>, field: &str) -> Result<()> {
    out.extend_from_slice(&[0, tag]);
    put_len(out, members.len(), field)?;
    for m in &members {
        put_value(out, m, field)?;
    }
    Ok(())
}

fn write(out: &mut Vec<u8>, value: &AttributeValue, field: &str, depth: usize, dialect: Dialect) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(malformed(field, format!("nested deeper than {MAX_DEPTH}")));
    }
    match value {
        AttributeValue::S(s) => {
            out.extend_from_slice(&[0, S]);
            put_value(out, s.as_bytes(), field)
        }
        AttributeValue::N(n) => {
            out.extend_from_slice(&[0, N]);
            put_value(out, number(n, field, dialect)?.as_bytes(), field)
        }
        AttributeValue::B(b) => {
            out.extend_from_slice(&[0, B]);
            put_value(out, b, field)
        }
        AttributeValue::Bool(b) => {
            out.extend_from_slice(&[0, BOOL, u8::from(*b)]);
            Ok(())
        }
        AttributeValue::Null => {
            out.extend_from_slice(&[0, NULL]);
            Ok(())
        }
        AttributeValue::Ss(set) => {
            let mut members: Vec<&String> = set.iter().collect();
            members.sort_by(|a, b| dialect.cmp_str(a, b));
            write_set(out, SS, members.into_iter().map(|s| s.as_bytes().to_vec()).collect(), field)
        }
        AttributeValue::Ns(set) => {
            // Normalized numbers are ASCII: one order for every writer.
            let mut members =
                set.iter().map(|n| number(n, field, dialect).map(String::into_bytes)).collect::<Result<Vec<_>>>()?;
            members.sort();
            write_set(out, NS, members, field)
        }
        AttributeValue::Bs(set) => {
            let mut members = set.clone();
            members.sort_by(|a, b| dialect.cmp_bytes(a, b));
            write_set(out, BS, members, field)
        }
        AttributeValue::L(list) => {
            out.extend_from_slice(&[0, L]);
            put_len(out, list.len(), field)?;
            list.iter().try_for_each(|m| write(out, m, field, depth + 1, dialect))
        }
        AttributeValue::M(map) => {
            out.extend_from_slice(&[0, M]);
            put_len(out, map.len(), field)?;
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| dialect.cmp_str(a.0, b.0));
            for (k, v) in entries {
                out.extend_from_slice(&[0, S]);
                put_value(out, k.as_bytes(), field)?;
                write(out, v, field, depth + 1, dialect)?;
            }
            Ok(())
        }
    }
}

/// Reads a serialized value back.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    field: &'a str,
}

impl<'a> Reader<'a> {
    fn err(&self, reason: &str) -> Error {
        malformed(self.field, format!("decrypted value at byte {}: {reason}", self.at))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len()).ok_or_else(|| self.err("truncated"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn len(&mut self) -> Result<usize> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn value(&mut self) -> Result<&'a [u8]> {
        let n = self.len()?;
        self.take(n)
    }

    fn text(&mut self) -> Result<String> {
        let b = self.value()?;
        String::from_utf8(b.to_vec()).map_err(|_| self.err("a string is not UTF-8"))
    }

    fn number(&mut self) -> Result<String> {
        let text = self.text()?;
        normalize(&text).map_err(|e| self.err(&e))
    }

    /// A count of members, each taking at least `min` bytes (so a hostile
    /// count cannot reserve memory the input does not hold).
    fn count(&mut self, min: usize) -> Result<usize> {
        let n = self.len()?;
        if n.saturating_mul(min) > self.bytes.len() - self.at {
            return Err(self.err("a count larger than the value"));
        }
        Ok(n)
    }

    fn read(&mut self, depth: usize) -> Result<AttributeValue> {
        if depth > MAX_DEPTH {
            return Err(self.err(&format!("nested deeper than {MAX_DEPTH}")));
        }
        let tag = self.take(2)?;
        if tag[0] != 0 {
            return Err(self.err("a type tag does not start with 0x00"));
        }
        Ok(match tag[1] {
            S => AttributeValue::S(self.text()?),
            N => AttributeValue::N(self.number()?),
            B => AttributeValue::B(self.value()?.to_vec()),
            BOOL => match self.take(1)?[0] {
                0 => AttributeValue::Bool(false),
                1 => AttributeValue::Bool(true),
                _ => return Err(self.err("a boolean is neither 0 nor 1")),
            },
            NULL => AttributeValue::Null,
            SS => {
                let n = self.count(4)?;
                AttributeValue::Ss((0..n).map(|_| self.text()).collect::<Result<_>>()?)
            }
            NS => {
                let n = self.count(4)?;
                AttributeValue::Ns((0..n).map(|_| self.number()).collect::<Result<_>>()?)
            }
            BS => {
                let n = self.count(4)?;
                AttributeValue::Bs((0..n).map(|_| self.value().map(<[u8]>::to_vec)).collect::<Result<_>>()?)
            }
            L => {
                let n = self.count(2)?;
                AttributeValue::L((0..n).map(|_| self.read(depth + 1)).collect::<Result<_>>()?)
            }
            M => {
                let n = self.count(8)?;
                let mut map = BTreeMap::new();
                for _ in 0..n {
                    let key = match self.read(depth + 1)? {
                        AttributeValue::S(k) => k,
                        _ => return Err(self.err("a map key is not a string")),
                    };
                    let value = self.read(depth + 1)?;
                    if map.insert(key, value).is_some() {
                        return Err(self.err("a map key appears twice"));
                    }
                }
                AttributeValue::M(map)
            }
            _ => return Err(self.err(&format!("unknown type tag 0x{:02x}", tag[1]))),
        })
    }
}

/// The value serialized in `bytes` (a decrypted attribute named `field`).
pub(crate) fn deserialize(bytes: &[u8], field: &str) -> Result<AttributeValue> {
    let mut r = Reader { bytes, at: 0, field };
    let value = r.read(0)?;
    if r.at != bytes.len() {
        return Err(r.err("bytes after the value"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serialize_exact(v: &AttributeValue, field: &str) -> Result<Vec<u8>> {
        serialize(v, field, Dialect::Python)
    }

    #[test]
    fn numbers_round_to_28_digits_as_the_python_package_does() {
        let r = |s: &str| round_significant(s, PYTHON_DIGITS);
        assert_eq!(r("123"), "123");
        assert_eq!(r("1234567890123456789012345678"), "1234567890123456789012345678");
        assert_eq!(r("12345678901234567890123456789"), "12345678901234567890123456790");
        assert_eq!(r("-12345678901234567890123456785"), "-12345678901234567890123456780");
        assert_eq!(r("12345678901234567890123456775"), "12345678901234567890123456780");
        assert_eq!(r("99999999999999999999999999999"), "100000000000000000000000000000");
        assert_eq!(r("0.000123456789012345678901234567891"), "0.0001234567890123456789012345679");
        assert_eq!(r("9.9999999999999999999999999999"), "10");
        assert_eq!(r("1.00000000000000000000000000001"), "1");
    }

    #[test]
    fn java_orders_strings_by_utf16_and_binaries_by_signed_bytes() {
        let ss = AttributeValue::Ss(vec!["\u{1F600}".into(), "\u{FFFD}".into()]);
        let bs = AttributeValue::Bs(vec![vec![0x01], vec![0x80]]);
        let python = |v: &AttributeValue| serialize(v, "a", Dialect::Python).unwrap();
        let java = |v: &AttributeValue| serialize(v, "a", Dialect::Java).unwrap();
        // U+FFFD first by UTF-8 bytes, U+1F600 first by UTF-16 (surrogates sort below U+FFFD).
        assert_eq!(&python(&ss)[10..13], "\u{FFFD}".as_bytes());
        assert_eq!(&java(&ss)[10..14], "\u{1F600}".as_bytes());
        assert_eq!(python(&bs)[10], 0x01);
        assert_eq!(java(&bs)[10], 0x80);
        let m = map(&[("\u{1F600}", AttributeValue::Null), ("\u{FFFD}", AttributeValue::Null)]);
        assert_ne!(python(&m), java(&m));
        assert_eq!(deserialize(&java(&m), "a").unwrap(), m);
    }

    fn map(pairs: &[(&str, AttributeValue)]) -> AttributeValue {
        AttributeValue::M(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    #[test]
    fn scalars_serialize_as_the_legacy_client_does() {
        assert_eq!(serialize_exact(&AttributeValue::S("hé".into()), "a").unwrap(), b"\x00s\x00\x00\x00\x03h\xc3\xa9");
        assert_eq!(
            serialize_exact(&AttributeValue::N("1.2300E+5".into()), "a").unwrap(),
            b"\x00n\x00\x00\x00\x06123000"
        );
        assert_eq!(serialize_exact(&AttributeValue::Bool(true), "a").unwrap(), b"\x00?\x01");
        assert_eq!(serialize_exact(&AttributeValue::Null, "a").unwrap(), b"\x00\x00");
        assert_eq!(serialize_exact(&AttributeValue::B(vec![1, 2]), "a").unwrap(), b"\x00b\x00\x00\x00\x02\x01\x02");
        // Set members sorted by bytes: "10" before "9".
        assert_eq!(
            serialize_exact(&AttributeValue::Ns(vec!["9".into(), "10".into()]), "a").unwrap(),
            b"\x00N\x00\x00\x00\x02\x00\x00\x00\x0210\x00\x00\x00\x019"
        );
        assert_eq!(
            serialize_exact(&map(&[("k", AttributeValue::Null)]), "a").unwrap(),
            b"\x00M\x00\x00\x00\x01\x00s\x00\x00\x00\x01k\x00\x00"
        );
    }

    #[test]
    fn values_round_trip() {
        let v = map(&[
            (
                "é",
                AttributeValue::L(vec![
                    AttributeValue::Bool(false),
                    AttributeValue::Null,
                    AttributeValue::N("-1.5".into()),
                ]),
            ),
            ("s", AttributeValue::Ss(vec!["a".into(), "b".into()])),
            ("bs", AttributeValue::Bs(vec![vec![0], vec![1, 2]])),
            ("e", map(&[])),
        ]);
        let bytes = serialize_exact(&v, "a").unwrap();
        assert_eq!(deserialize(&bytes, "a").unwrap(), v);
    }

    #[test]
    fn bad_bytes_are_malformed_not_panics() {
        let good = serialize_exact(&map(&[("k", AttributeValue::S("v".into()))]), "a").unwrap();
        for cut in 0..good.len() {
            assert!(deserialize(&good[..cut], "a").is_err(), "cut at {cut}");
        }
        let mut extra = good.clone();
        extra.push(0);
        let err = deserialize(&extra, "a").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Malformed);
        assert!(err.to_string().contains("attribute `a`"));
        for bad in [&b"\x01s"[..], b"\x00z", b"\x00?\x02", b"\x00L\xff\xff\xff\xff", b"\x00n\x00\x00\x00\x01x"] {
            assert!(deserialize(bad, "a").is_err());
        }
        let mut deep = Vec::new();
        for _ in 0..40 {
            deep.extend_from_slice(b"\x00L\x00\x00\x00\x01");
        }
        deep.extend_from_slice(b"\x00\x00");
        assert!(deserialize(&deep, "a").is_err());
    }
}
