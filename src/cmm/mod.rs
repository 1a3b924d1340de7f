//! Cryptographic materials managers: [`DefaultCmm`] (one keyring, footer
//! signing keys) and [`RequiredEncryptionContextCmm`] (context pairs that are
//! authenticated but not stored in the message).

mod default;
mod required_ec;

pub use default::DefaultCmm;
pub use required_ec::RequiredEncryptionContextCmm;
