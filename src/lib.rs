#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cmm;
pub mod crypto;
pub(crate) mod edk;
pub mod error;
pub mod format;
#[cfg(feature = "aws-esdk")]
pub mod interop;
pub mod items;
pub mod keyrings;
pub mod master_keys;
pub mod materials;
pub mod message;
pub mod pkcs11;

pub use cmm::{DefaultCmm, RequiredEncryptionContextCmm};
pub use error::{Error, ErrorKind, KeyringFailure, Pkcs11Error, Result};
pub use keyrings::{MultiKeyring, RawAesKeyring, RawRsaKeyring};
pub use materials::{
    AlgorithmSuite, CommitmentPolicy, CryptographicMaterialsManager, DataKey, DecryptionMaterials, EncryptedDataKey,
    EncryptionContext, EncryptionMaterials, FooterSigner, Keyring,
};
pub use message::{Client, ClientBuilder, Decrypted, DecryptingReader, EncryptingWriter, HeaderInfo};
pub use pkcs11::{Pkcs11AesKeyring, Pkcs11RsaKeyring, Pkcs11Signer, Pkcs11Uri, Token};
