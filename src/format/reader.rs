//! A cursor over a byte slice with bounded sub-readers and checked arithmetic.

use crate::error::Error;

/// Why a read failed: the input ended (more bytes may still arrive on a
/// stream), or the bytes are wrong.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The top-level input ended inside `field`; `needed` is the total number
    /// of input bytes (from the start of the top-level reader) that would let
    /// this read succeed.
    Incomplete {
        /// The field being read.
        field: &'static str,
        /// Offset of the field.
        offset: u64,
        /// Total input length that would satisfy the read.
        needed: usize,
    },
    /// The bytes are malformed (or a limit was exceeded).
    Fatal(Error),
}

impl ReadError {
    /// The error to report when no more input will come.
    pub(crate) fn into_error(self) -> Error {
        match self {
            ReadError::Incomplete { field, offset, needed } => {
                Error::malformed(field, offset, format!("the message ends early ({needed} bytes needed)"))
            }
            ReadError::Fatal(e) => e,
        }
    }
}

impl From<Error> for ReadError {
    fn from(e: Error) -> Self {
        ReadError::Fatal(e)
    }
}

/// A cursor over `buf`. A top-level reader reports running out of bytes as
/// [`ReadError::Incomplete`]; a sub-reader (a length-prefixed field) reports
/// it as malformed, since its length was declared.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` in the whole message.
    base: u64,
    /// Offset of `buf[0]` from the start of the top-level reader.
    top_base: usize,
    top_level: bool,
}

impl<'a> Reader<'a> {
    /// A top-level reader; `base` is the message offset of `buf[0]`.
    pub(crate) fn new(buf: &'a [u8], base: u64) -> Self {
        Reader { buf, pos: 0, base, top_base: 0, top_level: true }
    }

    /// Message offset of the next byte.
    pub(crate) fn offset(&self) -> u64 {
        self.base.saturating_add(self.pos as u64)
    }

    /// Bytes consumed so far.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// The bytes consumed since position `start`.
    pub(crate) fn slice_from(&self, start: usize) -> &'a [u8] {
        self.buf.get(start..self.pos).unwrap_or_default()
    }

    /// Bytes left.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Take `n` bytes for `field`.
    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], ReadError> {
        let offset = self.offset();
        match self.pos.checked_add(n) {
            Some(end) if end <= self.buf.len() => {
                let out = &self.buf[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            end => {
                if self.top_level {
                    let needed = end.and_then(|e| e.checked_add(self.top_base)).unwrap_or(usize::MAX);
                    Err(ReadError::Incomplete { field, offset, needed })
                } else {
                    Err(ReadError::Fatal(Error::malformed(
                        field,
                        offset,
                        format!("needs {n} bytes but its enclosing field has only {} left", self.remaining()),
                    )))
                }
            }
        }
    }

    /// Take exactly `N` bytes.
    pub(crate) fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], ReadError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, ReadError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, ReadError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, ReadError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, ReadError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// Read a big-endian u16 length, then a bounded sub-reader over that many
    /// bytes. The sub-reader must be consumed entirely ([`Reader::finish`]).
    pub(crate) fn sub_u16(&mut self, len_field: &'static str, field: &'static str) -> Result<Reader<'a>, ReadError> {
        let len = usize::from(self.u16(len_field)?);
        self.sub(len, field)
    }

    /// A bounded sub-reader over the next `len` bytes.
    pub(crate) fn sub(&mut self, len: usize, field: &'static str) -> Result<Reader<'a>, ReadError> {
        let base = self.offset();
        let top_base = self.top_base.saturating_add(self.pos);
        let bytes = self.take(len, field)?;
        Ok(Reader { buf: bytes, pos: 0, base, top_base, top_level: false })
    }

    /// Read a u16 length and that many bytes.
    pub(crate) fn bytes_u16(&mut self, len_field: &'static str, field: &'static str) -> Result<&'a [u8], ReadError> {
        let len = usize::from(self.u16(len_field)?);
        self.take(len, field)
    }

    /// The rest of the bytes.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_truncation_is_incomplete_sub_reader_truncation_is_fatal() {
        let data = [0u8, 3, 1, 2];
        let mut r = Reader::new(&data, 10);
        assert!(matches!(r.sub_u16("len", "field"), Err(ReadError::Incomplete { needed: 5, offset: 12, .. })));

        let data = [0u8, 2, 1, 2, 9];
        let mut r = Reader::new(&data, 10);
        let mut s = r.sub_u16("len", "field").unwrap();
        assert_eq!(s.offset(), 12);
        assert_eq!(s.u8("a").unwrap(), 1);
        match s.u16("b") {
            Err(ReadError::Fatal(Error::Malformed { field: "b", offset: 13, .. })) => {}
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(s.remaining(), 1);
        assert_eq!(r.remaining(), 1);
        match r.u16("c") {
            Err(ReadError::Incomplete { needed: 6, offset: 14, .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}
