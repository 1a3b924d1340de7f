//! The material description (`*amzn-ddb-map-desc*`): a 4-byte version
//! (zero), then name/value pairs, each a u32 big-endian length and UTF-8.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// Attribute encryption mode (`/CBC/PKCS5Padding`).
pub(crate) const SYM_MODE: &str = "amzn-ddb-map-sym-mode";
/// Signing algorithm (`HmacSHA256`, `SHA256withRSA`).
pub(crate) const SIGNING_ALG: &str = "amzn-ddb-map-signingAlg";
/// The wrapped content key, base64.
pub(crate) const ENV_KEY: &str = "amzn-ddb-env-key";
/// The content key's algorithm and size (`AES/256`).
pub(crate) const ENV_ALG: &str = "amzn-ddb-env-alg";
/// The wrapping algorithm (`AESWrap`, `RSA/ECB/OAEPWithSHA-256AndMGF1Padding`).
pub(crate) const WRAP_ALG: &str = "amzn-ddb-wrap-alg";
/// The only attribute encryption mode the legacy client writes.
pub(crate) const CBC_PKCS5: &str = "/CBC/PKCS5Padding";

fn malformed(reason: impl std::fmt::Display) -> Error {
    Error::MalformedItem { reason: format!("attribute `{}`: {reason}", super::MATERIAL_DESCRIPTION_ATTRIBUTE) }
}

/// One length-prefixed UTF-8 string.
fn text(rest: &mut &[u8], what: &str) -> Result<String> {
    let (len, tail) = rest.split_at_checked(4).ok_or_else(|| malformed(format!("truncated {what} length")))?;
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let (value, tail) = tail.split_at_checked(len).ok_or_else(|| malformed(format!("truncated {what}")))?;
    *rest = tail;
    String::from_utf8(value.to_vec()).map_err(|_| malformed(format!("a {what} is not UTF-8")))
}

/// The pairs of a serialized material description.
pub(crate) fn parse(bytes: &[u8]) -> Result<BTreeMap<String, String>> {
    let (version, mut rest) = bytes.split_at_checked(4).ok_or_else(|| malformed("shorter than its version"))?;
    if version != [0u8; 4] {
        return Err(malformed(format!("unknown version {version:02x?}")));
    }
    let mut out = BTreeMap::new();
    while !rest.is_empty() {
        let name = text(&mut rest, "name")?;
        let value = text(&mut rest, "value")?;
        if out.insert(name.clone(), value).is_some() {
            return Err(malformed(format!("`{name}` appears twice")));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u32).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }

    #[test]
    fn parses_pairs_and_refuses_bad_bytes() {
        let mut bytes = vec![0, 0, 0, 0];
        pair(&mut bytes, SYM_MODE);
        pair(&mut bytes, CBC_PKCS5);
        pair(&mut bytes, SIGNING_ALG);
        pair(&mut bytes, "HmacSHA256");
        let desc = parse(&bytes).unwrap();
        assert_eq!(desc[SYM_MODE], CBC_PKCS5);
        assert_eq!(desc[SIGNING_ALG], "HmacSHA256");
        assert!(parse(&[0, 0, 0, 0]).unwrap().is_empty());
        for cut in 0..bytes.len() {
            if cut != 4 && cut != 4 + 8 + SYM_MODE.len() + CBC_PKCS5.len() {
                let err = parse(&bytes[..cut]).unwrap_err();
                assert_eq!(err.kind(), crate::ErrorKind::Malformed, "cut at {cut}");
                assert!(err.to_string().contains("*amzn-ddb-map-desc*"));
            }
        }
        let mut v1 = bytes.clone();
        v1[3] = 1;
        assert!(parse(&v1).unwrap_err().to_string().contains("version"));
        let mut twice = bytes.clone();
        pair(&mut twice, SYM_MODE);
        pair(&mut twice, "x");
        assert!(parse(&twice).unwrap_err().to_string().contains("twice"));
    }
}
