//! The header attribute `aws_dbe_head`.
//!
//! `version (1 or 2) || flavor (0 for 0x6700, 1 for 0x6701) || message id
//! (32) || legend (u16 length, one byte per signed attribute in canonical
//! order: e, s or c) || stored context (u16 count, sorted pairs of u16-length
//! strings) || EDKs (u8 count, then u16-length provider id, provider info,
//! ciphertext) || commitment (32)`.
//!
//! The commitment is HMAC-SHA512 over everything before it, under the
//! commit key, truncated to 32 bytes.

use super::crypt::commitment;
use crate::error::{Error, Result};
use crate::materials::{AlgorithmSuite, EncryptedDataKey, EncryptionContext};

/// Length of the message id.
pub(crate) const MESSAGE_ID_LEN: usize = 32;
/// Length of the commitment.
pub(crate) const COMMITMENT_LEN: usize = 32;

/// A parsed (or to-be-written) header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) version: u8,
    pub(crate) suite: AlgorithmSuite,
    pub(crate) message_id: [u8; MESSAGE_ID_LEN],
    pub(crate) legend: Vec<u8>,
    pub(crate) stored_context: EncryptionContext,
    pub(crate) edks: Vec<EncryptedDataKey>,
}

fn bad(reason: impl Into<String>) -> Error {
    Error::MalformedItem { reason: format!("header: {}", reason.into()) }
}

fn flavor(suite: AlgorithmSuite) -> Result<u8> {
    match suite.id() {
        0x6700 => Ok(0),
        0x6701 => Ok(1),
        id => Err(Error::UnsupportedSuite(id)),
    }
}

fn put_str(out: &mut Vec<u8>, bytes: &[u8], what: &str) -> Result<()> {
    let len = u16::try_from(bytes.len()).map_err(|_| bad(format!("{what} longer than 65535 bytes")))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

impl Header {
    /// Everything before the commitment.
    pub(crate) fn body(&self) -> Result<Vec<u8>> {
        let mut out = vec![self.version, flavor(self.suite)?];
        out.extend_from_slice(&self.message_id);
        put_str(&mut out, &self.legend, "legend")?;
        out.extend_from_slice(&super::context::serialize(&self.stored_context)?);
        let count = u8::try_from(self.edks.len()).ok().filter(|&n| n > 0);
        out.push(count.ok_or_else(|| bad("1 to 255 encrypted data keys are needed"))?);
        for edk in &self.edks {
            put_str(&mut out, edk.provider_id.as_bytes(), "provider id")?;
            put_str(&mut out, &edk.provider_info, "provider info")?;
            put_str(&mut out, &edk.ciphertext, "EDK ciphertext")?;
        }
        Ok(out)
    }

    /// The whole attribute value: body || commitment under `commit_key`.
    pub(crate) fn serialize(&self, commit_key: &[u8]) -> Result<Vec<u8>> {
        let mut out = self.body()?;
        let c = commitment(commit_key, &out)?;
        out.extend_from_slice(&c);
        Ok(out)
    }

    /// Parse the attribute value; the commitment is checked later, once the
    /// data key is known.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Header> {
        let mut r = Reader { data: bytes, pos: 0 };
        let version = r.take(1)?[0];
        if version != 1 && version != 2 {
            return Err(bad(format!("unsupported version {version}")));
        }
        let suite = match r.take(1)?[0] {
            0 => AlgorithmSuite::from_item_id(0x6700)?,
            1 => AlgorithmSuite::from_item_id(0x6701)?,
            f => return Err(Error::UnsupportedSuite(0x6700 | u16::from(f))),
        };
        let message_id: [u8; MESSAGE_ID_LEN] = r.take(MESSAGE_ID_LEN)?.try_into().map_err(|_| bad("message id"))?;
        let legend_len = r.u16()?;
        let legend = r.take(legend_len)?.to_vec();
        if legend.iter().any(|b| !matches!(b, b'e' | b's' | b'c')) {
            return Err(bad("invalid byte in the legend"));
        }
        let mut stored_context = EncryptionContext::new();
        let mut previous: Option<Vec<u8>> = None;
        for _ in 0..r.u16()? {
            let key = r.string()?;
            let value = r.string()?;
            if previous.as_deref().is_some_and(|p| p >= key.as_bytes()) {
                return Err(bad("encryption context keys out of order"));
            }
            previous = Some(key.as_bytes().to_vec());
            stored_context.insert_reserved(&key, value);
        }
        let count = r.take(1)?[0];
        if count == 0 {
            return Err(bad("no encrypted data key"));
        }
        let mut edks = Vec::with_capacity(count.into());
        for _ in 0..count {
            let provider_id = r.string()?;
            let len = r.u16()?;
            let provider_info = r.take(len)?.to_vec();
            let len = r.u16()?;
            let ciphertext = r.take(len)?.to_vec();
            edks.push(EncryptedDataKey { provider_id, provider_info, ciphertext });
        }
        if bytes.len() - r.pos != COMMITMENT_LEN {
            return Err(bad("wrong length after the encrypted data keys"));
        }
        Ok(Header { version, suite, message_id, legend, stored_context, edks })
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(|| bad("truncated"))?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u16(&mut self) -> Result<usize> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn string(&mut self) -> Result<String> {
        let len = self.u16()?;
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| bad("a string is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        let mut stored_context = EncryptionContext::new();
        stored_context.insert_reserved("aws-crypto-public-key", "AB".into());
        Header {
            version: 2,
            suite: AlgorithmSuite::DbeAes256GcmHkdfSha512CommitKeyEcdsaP384SymsigHmacSha384,
            message_id: [7; 32],
            legend: b"esc".to_vec(),
            stored_context,
            edks: vec![EncryptedDataKey { provider_id: "p".into(), provider_info: vec![1], ciphertext: vec![2, 3] }],
        }
    }

    #[test]
    fn layout_by_hand_and_round_trip() {
        let h = header();
        let bytes = h.serialize(&[0; 32]).unwrap();
        let mut expected = vec![2, 1];
        expected.extend_from_slice(&[7; 32]);
        expected.extend_from_slice(&[0, 3, b'e', b's', b'c']);
        expected.extend_from_slice(&[0, 1, 0, 21]);
        expected.extend_from_slice(b"aws-crypto-public-key");
        expected.extend_from_slice(&[0, 2, b'A', b'B']);
        expected.extend_from_slice(&[1, 0, 1, b'p', 0, 1, 1, 0, 2, 2, 3]);
        assert_eq!(&bytes[..bytes.len() - 32], &expected[..]);
        assert_eq!(Header::parse(&bytes).unwrap(), h);
    }

    #[test]
    fn malformed_headers_are_refused() {
        let bytes = header().serialize(&[0; 32]).unwrap();
        for cut in [0, 1, 10, 40, bytes.len() - 33, bytes.len() - 1] {
            assert!(Header::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Header::parse(&longer).is_err());
        for (i, v) in [(0usize, 3u8), (1, 2), (36, b'x')] {
            let mut bad = bytes.clone();
            bad[i] = v;
            assert!(Header::parse(&bad).is_err(), "byte {i}");
        }
        let mut bad = bytes.clone();
        let edk_count_at = expected_edk_count_offset();
        bad[edk_count_at] = 0;
        assert!(Header::parse(&bad).is_err());
    }

    fn expected_edk_count_offset() -> usize {
        2 + 32 + 5 + 4 + 21 + 4
    }
}
