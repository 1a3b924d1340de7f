//! The wire codec of the message format: header (versions 1 and 2), body
//! records and footer.
//!
//! Parsing goes through a private cursor with bounded sub-readers for every
//! length-prefixed field and checked arithmetic; every failure is an
//! [`Error::Malformed`](crate::Error::Malformed) naming the field and its
//! byte offset. The header keeps the exact bytes it was read from, and its
//! authentication tag is checked over those bytes, never over a
//! re-serialization. Cryptography lives in [`crate::crypto`] and the message
//! logic behind [`Client`](crate::Client); this module only moves bytes.

pub(crate) mod body;
pub(crate) mod context;
pub(crate) mod edk;
mod header;
pub(crate) mod reader;

pub(crate) use header::{append_auth, check_needed, parse, serialize_body, HeaderFields, COMMIT_KEY_LEN};
pub use header::{parse_header, Header, HeaderLimits};

/// Default largest accepted header: 1 MiB.
pub(crate) const DEFAULT_MAX_HEADER_LEN: usize = 1 << 20;

/// Body layout of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[non_exhaustive]
pub enum ContentType {
    /// Single-block body (read only).
    NonFramed,
    /// Framed body.
    Framed,
}
