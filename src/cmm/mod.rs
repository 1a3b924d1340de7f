//! Cryptographic materials managers: [`DefaultCmm`] (one keyring, footer
//! signing keys) and [`RequiredEncryptionContextCmm`] (context pairs that are
//! authenticated but not stored in the message) and [`CachingCmm`] (data key
//! reuse within limits, for any keyring).

mod caching;
mod default;
mod required_ec;

pub use caching::{
    CacheStats, CachingCmm, CachingCmmBuilder, Clock, MaterialsCache, SystemClock, DEFAULT_CAPACITY, DEFAULT_MAX_BYTES,
    DEFAULT_MAX_MESSAGES,
};

pub use default::DefaultCmm;
pub use required_ec::RequiredEncryptionContextCmm;
