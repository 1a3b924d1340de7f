#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cmm;
pub mod crypto;
#[cfg(feature = "dynamodb-client")]
pub mod dynamodb_client;
pub(crate) mod edk;
mod error;
pub mod format;
#[cfg(feature = "aws-esdk")]
pub mod interop;
pub mod items;
pub mod keyrings;
pub mod master_keys;
mod materials;
mod message;
pub mod pkcs11;
pub mod rewrap;
pub mod s3;

pub use error::{Error, ErrorKind, KeyringFailure, Result, MAX_OFFERED_SHOWN};
pub use materials::{
    AlgorithmSuite, CommitmentPolicy, CryptographicMaterialsManager, DataKey, DecryptMaterialsRequest,
    DecryptionMaterials, EncryptedDataKey, EncryptionContext, EncryptionMaterials, EncryptionMaterialsRequest,
    FooterSigner, HashAlg, Kdf, Keyring, SignatureCurve, PUBLIC_KEY_FIELD, RESERVED_PREFIX,
};
pub use message::{
    Client, ClientBuilder, Decrypted, DecryptingReader, EncryptingWriter, HeaderInfo, DEFAULT_FRAME_LENGTH,
    DEFAULT_MAX_BODY_BUFFER, DEFAULT_MAX_ENCRYPTED_DATA_KEYS, DEFAULT_MAX_HEADER_LEN,
};
