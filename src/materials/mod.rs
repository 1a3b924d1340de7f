//! Materials and the traits around them: algorithm suites, encryption context,
//! data keys and EDKs, the [`Keyring`] and [`CryptographicMaterialsManager`] traits.

pub mod cmm;
pub mod context;
pub mod data;
pub mod keyring;
pub mod suite;

pub use cmm::{CryptographicMaterialsManager, DecryptMaterialsRequest, EncryptionMaterialsRequest};
pub use context::EncryptionContext;
pub use data::{DataKey, DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, FooterSigner};
pub use keyring::Keyring;
pub use suite::{AlgorithmSuite, CommitmentPolicy, HashAlg, Kdf, SignatureCurve};
