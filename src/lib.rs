#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cmm;
pub mod crypto;
pub mod error;
#[cfg(feature = "aws-esdk")]
pub mod interop;
pub mod materials;
pub mod message;

pub use cmm::{DefaultCmm, RequiredEncryptionContextCmm};
pub use error::{Error, KeyringFailure, Pkcs11Error, Result};
pub use materials::{
    AlgorithmSuite, CommitmentPolicy, CryptographicMaterialsManager, DataKey, DecryptionMaterials, EncryptedDataKey,
    EncryptionContext, EncryptionMaterials, FooterSigner, Keyring,
};
pub use message::{Client, ClientBuilder, Decrypted, DecryptingReader, EncryptingWriter, HeaderInfo};
