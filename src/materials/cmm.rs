//! The cryptographic materials manager (CMM) trait and its requests.

use std::fmt;
use std::sync::Arc;

use super::context::EncryptionContext;
use super::data::{DecryptionMaterials, EncryptedDataKey, EncryptionMaterials};
use super::suite::{AlgorithmSuite, CommitmentPolicy};
use crate::error::Result;

/// What the message writer asks a CMM for.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EncryptionMaterialsRequest {
    /// The caller's encryption context.
    pub encryption_context: EncryptionContext,
    /// The configured commitment policy.
    pub commitment_policy: CommitmentPolicy,
    /// A suite the caller asked for; otherwise the policy's default.
    pub algorithm_suite: Option<AlgorithmSuite>,
    /// Plaintext length if known in advance (one-shot encrypt).
    pub max_plaintext_length: Option<u64>,
}

impl EncryptionMaterialsRequest {
    /// A request with the given context and policy, no suite, unknown length.
    pub fn new(encryption_context: EncryptionContext, commitment_policy: CommitmentPolicy) -> Self {
        EncryptionMaterialsRequest {
            encryption_context,
            commitment_policy,
            algorithm_suite: None,
            max_plaintext_length: None,
        }
    }
}

/// What the message reader asks a CMM for.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DecryptMaterialsRequest {
    /// The message's suite.
    pub algorithm_suite: AlgorithmSuite,
    /// The configured commitment policy.
    pub commitment_policy: CommitmentPolicy,
    /// The message's EDKs.
    pub encrypted_data_keys: Vec<EncryptedDataKey>,
    /// The context stored in the header.
    pub encryption_context: EncryptionContext,
    /// The context the caller supplied to decrypt, if any.
    pub reproduced_encryption_context: Option<EncryptionContext>,
}

impl DecryptMaterialsRequest {
    /// Build a request.
    pub fn new(
        algorithm_suite: AlgorithmSuite,
        commitment_policy: CommitmentPolicy,
        encrypted_data_keys: Vec<EncryptedDataKey>,
        encryption_context: EncryptionContext,
        reproduced_encryption_context: Option<EncryptionContext>,
    ) -> Self {
        DecryptMaterialsRequest {
            algorithm_suite,
            commitment_policy,
            encrypted_data_keys,
            encryption_context,
            reproduced_encryption_context,
        }
    }
}

/// A CMM turns requests into materials, usually by calling a keyring.
pub trait CryptographicMaterialsManager: Send + Sync + fmt::Debug {
    /// Materials to encrypt one message.
    fn get_encryption_materials(&self, request: EncryptionMaterialsRequest) -> Result<EncryptionMaterials>;
    /// Materials to decrypt one message.
    fn decrypt_materials(&self, request: DecryptMaterialsRequest) -> Result<DecryptionMaterials>;
}

impl<C: CryptographicMaterialsManager + ?Sized> CryptographicMaterialsManager for Arc<C> {
    fn get_encryption_materials(&self, request: EncryptionMaterialsRequest) -> Result<EncryptionMaterials> {
        (**self).get_encryption_materials(request)
    }
    fn decrypt_materials(&self, request: DecryptMaterialsRequest) -> Result<DecryptionMaterials> {
        (**self).decrypt_materials(request)
    }
}
