//! Software keyrings: wrapping keys held in process memory.
//!
//! * [`RawAesKeyring`]: AES-GCM key wrap with a 128-, 192- or 256-bit key.
//! * [`RawRsaKeyring`]: RSA encryption (PKCS#1 v1.5 or OAEP) of the data key.
//! * [`MultiKeyring`]: a generator plus children, so that one message can be
//!   opened by any of several keys.
//! * [`FailoverKeyring`]: one key held by several tokens, with failover on
//!   token trouble and each member's health.
//!
//! The EDKs they write follow the raw keyring layouts of the AWS Encryption
//! SDK, so other implementations holding the same keys can open them and the
//! reverse. [`raw_aes_edk`] exposes the raw AES layout's wire helpers.
//!
//! Every keyring built on an EDK layout (`src/edk/`) shares one adapter
//! (`adapter.rs`) for the rules around the layout.

pub(crate) mod adapter;
mod failover;
mod multi;
mod raw_aes;
mod raw_rsa;

pub use crate::edk::raw_aes_wire as raw_aes_edk;

pub use failover::{FailoverKeyring, FailoverStrategy, MemberHealth, DEFAULT_RETRY_AFTER};
pub use multi::MultiKeyring;
pub use raw_aes::RawAesKeyring;
pub use raw_rsa::RawRsaKeyring;

pub use crate::edk::AWS_KMS_PROVIDER_ID;
