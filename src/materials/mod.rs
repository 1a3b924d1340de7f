//! Materials and the traits around them: algorithm suites, encryption context,
//! data keys and EDKs, the [`Keyring`] and [`CryptographicMaterialsManager`] traits.
//! Private: its items are re-exported at the crate root.

pub(crate) mod cmm;
pub(crate) mod context;
pub(crate) mod data;
pub(crate) mod keyring;
pub(crate) mod suite;

pub use cmm::{CryptographicMaterialsManager, DecryptMaterialsRequest, EncryptionMaterialsRequest};
pub use context::{EncryptionContext, PUBLIC_KEY_FIELD, RESERVED_PREFIX};
pub use data::{DataKey, DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, FooterSigner};
pub use keyring::Keyring;
pub use suite::{AlgorithmSuite, CommitmentPolicy, HashAlg, Kdf, SignatureCurve};
