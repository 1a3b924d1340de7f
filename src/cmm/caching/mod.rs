//! A CMM that caches the materials of another CMM, to spare the keyring (for
//! example a PKCS#11 token) one wrap or unwrap per message.
//!
//! The behaviour follows the AWS Encryption SDK's caching CMM and local
//! cryptographic materials cache: entries are found by a SHA-512 entry
//! identifier over the partition id, the suite, the encryption context (and,
//! for decryption, the sorted encrypted data keys), hashed in one pass
//! rather than as the specification's nested hashes; every entry has a
//! time-to-live; encryption entries also count the messages and bytes they
//! protected and are retired once a limit is reached; the cache holds a
//! bounded number of entries and evicts the least recently used.
//!
//! The parts: the store (`store.rs`: LRU, TTL, single flight), the entry
//! identifiers (`entry_id.rs`), the CMM (`cmm.rs`) and its builder
//! (`builder.rs`).

mod builder;
mod cmm;
mod entry_id;
mod store;
#[cfg(test)]
mod test_support;

pub use builder::CachingCmmBuilder;
pub use cmm::CachingCmm;
pub use store::{CacheStats, Clock, MaterialsCache, SystemClock};

/// Messages one data key may protect when no limit is configured (2^32).
pub const DEFAULT_MAX_MESSAGES: u64 = 1 << 32;
/// Bytes one data key may protect when no limit is configured (2^63 - 1),
/// which is also the largest accepted limit.
pub const DEFAULT_MAX_BYTES: u64 = i64::MAX as u64;
/// Entries a cache holds when no capacity is configured.
pub const DEFAULT_CAPACITY: usize = 1000;
