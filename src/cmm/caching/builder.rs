//! [`CachingCmmBuilder`]: the settings of a [`CachingCmm`], checked once.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use super::store::{Clock, MaterialsCache, SystemClock};
use super::{CachingCmm, DEFAULT_CAPACITY, DEFAULT_MAX_BYTES, DEFAULT_MAX_MESSAGES};
use crate::cmm::DefaultCmm;
use crate::error::{Error, Result};
use crate::materials::{CryptographicMaterialsManager, Keyring};

/// Builder for [`CachingCmm`]; [`max_age`](Self::max_age) is required.
#[derive(Debug)]
#[must_use]
pub struct CachingCmmBuilder<C> {
    inner: C,
    max_age: Option<Duration>,
    max_messages: u64,
    max_bytes: u64,
    capacity: Option<usize>,
    cache: Option<MaterialsCache>,
    partition_id: Option<String>,
    clock: Option<Arc<dyn Clock>>,
}

impl<C: CryptographicMaterialsManager> CachingCmmBuilder<C> {
    /// How long an entry may be used after it was made (required, more than zero).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Messages one data key may encrypt (at least 1; default 2^32).
    pub fn max_messages_per_key(mut self, max: u64) -> Self {
        self.max_messages = max;
        self
    }

    /// Plaintext bytes one data key may encrypt (at most 2^63 - 1, the default).
    pub fn max_bytes_per_key(mut self, max: u64) -> Self {
        self.max_bytes = max;
        self
    }

    /// Entries of a new private cache (default [`DEFAULT_CAPACITY`]); not
    /// together with [`cache`](Self::cache).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// Use this (possibly shared) cache instead of a new private one.
    pub fn cache(mut self, cache: MaterialsCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Share entries with the other caching CMMs of the same cache that use
    /// this partition id. Without one, the CMM uses a random partition of its own.
    pub fn partition_id(mut self, partition_id: impl Into<String>) -> Self {
        self.partition_id = Some(partition_id.into());
        self
    }

    /// Replace the time source (for tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Check the settings and build the CMM.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if `max_age` is missing or zero, `max_messages_per_key`
    /// is zero, `max_bytes_per_key` exceeds 2^63 - 1, or both `capacity` and
    /// `cache` were given.
    pub fn build(self) -> Result<CachingCmm<C>> {
        let max_age = self.max_age.ok_or_else(|| Error::config("the caching CMM needs a max age"))?;
        if max_age.is_zero() {
            return Err(Error::config("the caching CMM's max age must be more than zero"));
        }
        if self.max_messages == 0 {
            return Err(Error::config("the caching CMM's message limit per data key must be at least 1"));
        }
        if self.max_bytes > DEFAULT_MAX_BYTES {
            return Err(Error::config(format!(
                "the caching CMM's byte limit per data key may not exceed {DEFAULT_MAX_BYTES}"
            )));
        }
        let cache = match (self.cache, self.capacity) {
            (Some(_), Some(_)) => {
                return Err(Error::config("give the caching CMM either a capacity or a shared cache, not both"))
            }
            (Some(cache), None) => cache,
            (None, capacity) => MaterialsCache::new(capacity.unwrap_or(DEFAULT_CAPACITY)),
        };
        let partition_hash = match &self.partition_id {
            Some(id) => crate::crypto::sha512(id.as_bytes()),
            None => {
                let mut random = [0u8; 32];
                crate::crypto::fill_random(&mut random)?;
                crate::crypto::sha512(&random)
            }
        };
        Ok(CachingCmm {
            inner: self.inner,
            cache,
            partition_hash,
            max_age,
            max_messages: self.max_messages,
            max_bytes: self.max_bytes,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            underlying_calls: AtomicU64::new(0),
        })
    }
}

impl<C: CryptographicMaterialsManager> CachingCmm<C> {
    /// Start building a caching CMM around `inner`.
    pub fn builder(inner: C) -> CachingCmmBuilder<C> {
        CachingCmmBuilder {
            inner,
            max_age: None,
            max_messages: DEFAULT_MAX_MESSAGES,
            max_bytes: DEFAULT_MAX_BYTES,
            capacity: None,
            cache: None,
            partition_id: None,
            clock: None,
        }
    }
}

impl<K: Keyring> CachingCmm<DefaultCmm<K>> {
    /// Start building a caching CMM around a [`DefaultCmm`] of `keyring`.
    pub fn builder_for_keyring(keyring: K) -> CachingCmmBuilder<DefaultCmm<K>> {
        CachingCmm::builder(DefaultCmm::new(keyring))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn builder_validates() {
        let err = |b: CachingCmmBuilder<TestCmm>| matches!(b.build(), Err(Error::Config { .. }));
        assert!(err(CachingCmm::builder(TestCmm::new())), "max age is required");
        assert!(err(CachingCmm::builder(TestCmm::new()).max_age(Duration::ZERO)));
        assert!(err(caching(TestCmm::new()).max_messages_per_key(0)));
        assert!(err(caching(TestCmm::new()).max_bytes_per_key(DEFAULT_MAX_BYTES + 1)));
        assert!(err(caching(TestCmm::new()).capacity(3).cache(MaterialsCache::new(3))));
        assert!(caching(TestCmm::new()).max_bytes_per_key(DEFAULT_MAX_BYTES).build().is_ok());
        let zero = caching(TestCmm::new()).capacity(0).build().unwrap();
        zero.get_encryption_materials(enc_request(&ctx("a"), Some(1))).unwrap();
        zero.get_encryption_materials(enc_request(&ctx("a"), Some(1))).unwrap();
        assert_eq!(zero.inner().calls(), 2);
        let text = format!("{:?}", zero);
        assert!(text.contains("CachingCmm") && !text.contains("0x11"), "{text}");
    }
}
