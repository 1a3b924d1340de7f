//! Keyring adapters between this crate and the AWS Encryption SDK for Rust
//! (the `aws-esdk` crate, material providers library).
//!
//! * [`AwsEsdkKeyring`] wraps any keyring of this crate (for example a PKCS#11
//!   keyring) so that `aws-esdk` can use it: `KeyringRef::from(AwsEsdkKeyring::new(k))`
//!   goes into `client.encrypt().keyring(..)`, `decrypt().keyring(..)`, its
//!   multi-keyring or its CMMs.
//! * [`FromAwsEsdk`] wraps an `aws-esdk` `KeyringRef` (raw AES, raw RSA, KMS,
//!   ...) as a [`Keyring`] of this crate, so it can sit in this crate's
//!   multi-keyring or CMMs.
//!
//! Materials are mapped field by field: the algorithm suite by its two-byte id,
//! the full encryption context (including the reserved `aws-crypto-public-key`
//! field of signed suites), the required encryption context keys, the
//! encrypted data keys and the plaintext data key. Signing and verification
//! keys are never given to the wrapped keyring's side as secrets: keyrings do
//! not use them, so [`AwsEsdkKeyring`] hands the `aws-esdk` values back
//! untouched, and [`FromAwsEsdk`] keeps this crate's signer and gives the other
//! side only a placeholder where its material validation insists on one.
//!
//! `aws-esdk` keyrings are synchronous behind its `async` builders; the
//! adapters call the keyring trait methods directly and need no runtime.
//! `aws-esdk` keeps each `KeyringRef` behind its own mutex, so one `KeyringRef`
//! serves one call at a time; this module adds no lock of its own, and
//! [`AwsEsdkKeyring`] is cheap to clone (share the inner `Arc`), so concurrent
//! callers can each hold their own `KeyringRef`.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

pub use ::aws_esdk;
use ::aws_esdk::material_providers::client::Client as MplClient;
use ::aws_esdk::material_providers::operation::on_decrypt::{OnDecryptInput, OnDecryptOutput};
use ::aws_esdk::material_providers::operation::on_encrypt::{OnEncryptInput, OnEncryptOutput};
use ::aws_esdk::material_providers::types::error::Error as MplError;
use ::aws_esdk::material_providers::types::keyring::{Keyring as EsdkKeyring, KeyringRef};
use ::aws_esdk::material_providers::types::material_providers_config::MaterialProvidersConfig;
use ::aws_esdk::material_providers::types::{
    AlgorithmSuiteId, AlgorithmSuiteInfo, DecryptionMaterials as EsdkDecryptionMaterials,
    EncryptedDataKey as EsdkEncryptedDataKey, EncryptionMaterials as EsdkEncryptionMaterials, EsdkAlgorithmSuiteId,
    EsdkCommitmentPolicy,
};
use aws_smithy_types::Blob;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::error::{Error, Result};
use crate::materials::{
    AlgorithmSuite, CommitmentPolicy, DataKey, DecryptionMaterials, EncryptedDataKey, EncryptionContext,
    EncryptionMaterials, Keyring,
};

// ---------------------------------------------------------------------------
// Suites and policies
// ---------------------------------------------------------------------------

/// The `aws-esdk` name of a suite, for `client.encrypt().algorithm_suite_id(..)`.
///
/// The DynamoDB item suites have no message-format id; they map to the
/// message suite with the same key derivation and signature (0x0478, 0x0578).
pub fn esdk_algorithm_suite_id(suite: AlgorithmSuite) -> EsdkAlgorithmSuiteId {
    use AlgorithmSuite as S;
    use EsdkAlgorithmSuiteId as E;
    match suite {
        S::Aes128GcmIv12Tag16NoKdf => E::AlgAes128GcmIv12Tag16NoKdf,
        S::Aes192GcmIv12Tag16NoKdf => E::AlgAes192GcmIv12Tag16NoKdf,
        S::Aes256GcmIv12Tag16NoKdf => E::AlgAes256GcmIv12Tag16NoKdf,
        S::Aes128GcmIv12Tag16HkdfSha256 => E::AlgAes128GcmIv12Tag16HkdfSha256,
        S::Aes192GcmIv12Tag16HkdfSha256 => E::AlgAes192GcmIv12Tag16HkdfSha256,
        S::Aes256GcmIv12Tag16HkdfSha256 => E::AlgAes256GcmIv12Tag16HkdfSha256,
        S::Aes128GcmIv12Tag16HkdfSha256EcdsaP256 => E::AlgAes128GcmIv12Tag16HkdfSha256EcdsaP256,
        S::Aes192GcmIv12Tag16HkdfSha384EcdsaP384 => E::AlgAes192GcmIv12Tag16HkdfSha384EcdsaP384,
        S::Aes256GcmIv12Tag16HkdfSha384EcdsaP384 => E::AlgAes256GcmIv12Tag16HkdfSha384EcdsaP384,
        S::Aes256GcmHkdfSha512CommitKey => E::AlgAes256GcmHkdfSha512CommitKey,
        S::Aes256GcmHkdfSha512CommitKeyEcdsaP384 | S::DbeAes256GcmHkdfSha512CommitKeyEcdsaP384SymsigHmacSha384 => {
            E::AlgAes256GcmHkdfSha512CommitKeyEcdsaP384
        }
        S::DbeAes256GcmHkdfSha512CommitKeySymsigHmacSha384 => E::AlgAes256GcmHkdfSha512CommitKey,
    }
}

/// This crate's suite for an `aws-esdk` suite name.
pub fn suite_from_esdk(id: EsdkAlgorithmSuiteId) -> AlgorithmSuite {
    use AlgorithmSuite as S;
    use EsdkAlgorithmSuiteId as E;
    match id {
        E::AlgAes128GcmIv12Tag16NoKdf => S::Aes128GcmIv12Tag16NoKdf,
        E::AlgAes192GcmIv12Tag16NoKdf => S::Aes192GcmIv12Tag16NoKdf,
        E::AlgAes256GcmIv12Tag16NoKdf => S::Aes256GcmIv12Tag16NoKdf,
        E::AlgAes128GcmIv12Tag16HkdfSha256 => S::Aes128GcmIv12Tag16HkdfSha256,
        E::AlgAes192GcmIv12Tag16HkdfSha256 => S::Aes192GcmIv12Tag16HkdfSha256,
        E::AlgAes256GcmIv12Tag16HkdfSha256 => S::Aes256GcmIv12Tag16HkdfSha256,
        E::AlgAes128GcmIv12Tag16HkdfSha256EcdsaP256 => S::Aes128GcmIv12Tag16HkdfSha256EcdsaP256,
        E::AlgAes192GcmIv12Tag16HkdfSha384EcdsaP384 => S::Aes192GcmIv12Tag16HkdfSha384EcdsaP384,
        E::AlgAes256GcmIv12Tag16HkdfSha384EcdsaP384 => S::Aes256GcmIv12Tag16HkdfSha384EcdsaP384,
        E::AlgAes256GcmHkdfSha512CommitKey => S::Aes256GcmHkdfSha512CommitKey,
        E::AlgAes256GcmHkdfSha512CommitKeyEcdsaP384 => S::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
    }
}

/// The `aws-esdk` commitment policy with the same meaning.
pub fn esdk_commitment_policy(policy: CommitmentPolicy) -> EsdkCommitmentPolicy {
    match policy {
        CommitmentPolicy::ForbidEncryptAllowDecrypt => EsdkCommitmentPolicy::ForbidEncryptAllowDecrypt,
        CommitmentPolicy::RequireEncryptAllowDecrypt => EsdkCommitmentPolicy::RequireEncryptAllowDecrypt,
        CommitmentPolicy::RequireEncryptRequireDecrypt => EsdkCommitmentPolicy::RequireEncryptRequireDecrypt,
    }
}

/// Our suite for the suite of `aws-esdk` materials: by the two-byte binary id,
/// cross-checked against the symbolic id when both are present.
fn suite_from_info(info: Option<&AlgorithmSuiteInfo>) -> Result<AlgorithmSuite> {
    let info = info.ok_or_else(|| mapping_error("the materials carry no algorithm suite"))?;
    let from_binary = match info.binary_id.as_ref().map(Blob::as_ref) {
        Some(&[hi, lo]) => Some(AlgorithmSuite::from_id(u16::from_be_bytes([hi, lo]))?),
        Some(other) => {
            return Err(mapping_error(format!("algorithm suite binary id of {} bytes, expected 2", other.len())))
        }
        None => None,
    };
    let from_symbolic = match &info.id {
        Some(AlgorithmSuiteId::Esdk(id)) => Some(suite_from_esdk(*id)),
        Some(other) => return Err(mapping_error(format!("algorithm suite {other:?} is not a message-format suite"))),
        None => None,
    };
    match (from_binary, from_symbolic) {
        (Some(a), Some(b)) if a != b => Err(mapping_error(format!(
            "algorithm suite binary id 0x{:04X} disagrees with its name {}",
            a.id(),
            b.name()
        ))),
        (Some(s), _) | (None, Some(s)) => Ok(s),
        (None, None) => Err(mapping_error("the algorithm suite has neither a binary id nor a name")),
    }
}

/// The `aws-esdk` description of one of our suites, fetched once from its
/// material providers library and kept for the life of the process.
fn suite_info(suite: AlgorithmSuite) -> Result<AlgorithmSuiteInfo> {
    static TABLE: OnceLock<std::result::Result<Vec<(AlgorithmSuite, AlgorithmSuiteInfo)>, String>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mpl = MaterialProvidersConfig::builder()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|config| MplClient::from_conf(config).map_err(|e| esdk_error_text(&e)))?;
        AlgorithmSuite::ALL
            .into_iter()
            .map(|s| {
                let fut = mpl.get_algorithm_suite_info().binary_id(s.id().to_be_bytes().to_vec()).send();
                let info = resolve_now(fut)
                    .ok_or_else(|| "the suite lookup did not complete synchronously".to_owned())?
                    .map_err(|e| esdk_error_text(&e))?;
                // The operation's output is a distinct (but identical) struct; copy it over.
                let info = AlgorithmSuiteInfo::builder()
                    .set_binary_id(info.binary_id)
                    .set_commitment(info.commitment)
                    .set_edk_wrapping(info.edk_wrapping)
                    .set_encrypt(info.encrypt)
                    .set_id(info.id)
                    .set_kdf(info.kdf)
                    .set_message_version(info.message_version)
                    .set_signature(info.signature)
                    .set_symmetric_signature(info.symmetric_signature)
                    .build()
                    .map_err(|e| e.to_string())?;
                Ok((s, info))
            })
            .collect()
    });
    let table =
        table.as_ref().map_err(|reason| mapping_error(format!("cannot describe algorithm suites: {reason}")))?;
    table.iter().find(|(s, _)| *s == suite).map(|(_, info)| info.clone()).ok_or(Error::UnsupportedSuite(suite.id()))
}

/// Drive a future that completes without suspending (the `aws-esdk` builders
/// are `async` in signature only); `None` if it would have waited.
fn resolve_now<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

// ---------------------------------------------------------------------------
// Context, EDKs, data keys
// ---------------------------------------------------------------------------

fn context_from_esdk(map: Option<&HashMap<String, String>>) -> EncryptionContext {
    match map {
        Some(map) => EncryptionContext::from_pairs_unchecked(map.iter().map(|(k, v)| (k.clone(), v.clone()))),
        None => EncryptionContext::new(),
    }
}

fn context_to_esdk(ctx: &EncryptionContext) -> HashMap<String, String> {
    ctx.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

fn edk_from_esdk(edk: &EsdkEncryptedDataKey) -> Result<EncryptedDataKey> {
    let provider_id = edk.key_provider_id.clone().ok_or_else(|| mapping_error("an EDK has no provider id"))?;
    let provider_info =
        edk.key_provider_info.as_ref().ok_or_else(|| mapping_error("an EDK has no provider info"))?.as_ref().to_vec();
    let ciphertext =
        edk.ciphertext.as_ref().ok_or_else(|| mapping_error("an EDK has no ciphertext"))?.as_ref().to_vec();
    Ok(EncryptedDataKey { provider_id, provider_info, ciphertext })
}

fn edk_to_esdk(edk: &EncryptedDataKey) -> Result<EsdkEncryptedDataKey> {
    EsdkEncryptedDataKey::builder()
        .key_provider_id(edk.provider_id.clone())
        .key_provider_info(Blob::new(edk.provider_info.clone()))
        .ciphertext(Blob::new(edk.ciphertext.clone()))
        .build()
        .map_err(|e| mapping_error(e.to_string()))
}

fn edks_from_esdk(edks: Option<&Vec<EsdkEncryptedDataKey>>) -> Result<Vec<EncryptedDataKey>> {
    edks.map(|v| v.iter().map(edk_from_esdk).collect()).unwrap_or_else(|| Ok(Vec::new()))
}

fn edks_to_esdk(edks: &[EncryptedDataKey]) -> Result<Vec<EsdkEncryptedDataKey>> {
    edks.iter().map(edk_to_esdk).collect()
}

/// Move a data key out of an `aws-esdk` blob into a zeroizing [`DataKey`]
/// (no copy is left behind in the blob's buffer).
fn data_key_from_blob(blob: Blob) -> DataKey {
    DataKey::new(blob.into_inner())
}

/// The `aws-esdk` side owns (and does not zeroize) the blob it is given.
fn data_key_to_blob(key: &DataKey) -> Blob {
    Blob::new(key.as_bytes().to_vec())
}

fn same_key(a: &DataKey, b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b))
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

fn mapping_error(reason: impl fmt::Display) -> Error {
    Error::keyring("aws-esdk adapter", reason)
}

/// Our error as an `aws-esdk` error carrying our text: "not mine" becomes an
/// empty collection of errors (what its own keyrings report when no EDK was
/// theirs), anything else its generic exception.
pub fn error_to_esdk(err: &Error) -> MplError {
    if err.is_not_mine() {
        return MplError::CollectionOfErrors { list: Vec::new(), message: err.to_string() };
    }
    MplError::AwsCryptographicMaterialProvidersException { message: err.to_string() }
}

/// The human-readable text of an `aws-esdk` material providers error, without
/// its `Debug` noise: messages of nested errors are joined with `; `.
pub fn esdk_error_text(err: &MplError) -> String {
    match err {
        MplError::AwsCryptographicMaterialProvidersException { message }
        | MplError::EntryAlreadyExists { message }
        | MplError::EntryDoesNotExist { message }
        | MplError::InFlightTtlExceeded { message }
        | MplError::InvalidAlgorithmSuiteInfo { message }
        | MplError::InvalidAlgorithmSuiteInfoOnDecrypt { message }
        | MplError::InvalidAlgorithmSuiteInfoOnEncrypt { message }
        | MplError::InvalidDecryptionMaterials { message }
        | MplError::InvalidDecryptionMaterialsTransition { message }
        | MplError::InvalidEncryptionMaterials { message }
        | MplError::InvalidEncryptionMaterialsTransition { message } => message.clone(),
        MplError::CollectionOfErrors { list, message } => {
            let mut text = message.clone();
            for (i, e) in list.iter().enumerate() {
                text.push_str(&format!("; [{}] {}", i + 1, esdk_error_text(e)));
            }
            text
        }
        MplError::OpaqueWithText { objMessage: message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// True if an `aws-esdk` decrypt error says that none of the EDKs belonged to
/// the keyring: a collection of errors (what its keyrings return on decrypt)
/// that is empty or holds only "did not match" entries. This reads its error
/// messages, so anything unrecognised counts as a real failure.
fn esdk_not_mine(err: &MplError) -> bool {
    match err {
        MplError::CollectionOfErrors { list, .. } => list.iter().all(esdk_not_mine),
        MplError::AwsCryptographicMaterialProvidersException { message } => {
            // Raw AES/RSA/ECDH keyrings, then the KMS keyrings.
            (message.starts_with("EncryptedDataKey ") && message.contains(" did not match "))
                || message.starts_with("Unable to decrypt data key: No Encrypted Data Keys found to match")
        }
        _ => false,
    }
}

/// An `aws-esdk` keyring error as ours; on decrypt (`edk_count` given), the
/// "none of these EDKs is mine" outcome becomes [`Error::NotMine`].
fn error_from_esdk(keyring: &str, err: &MplError, edk_count: Option<usize>) -> Error {
    if let Some(edk_count) = edk_count {
        if matches!(err, MplError::CollectionOfErrors { .. }) && esdk_not_mine(err) {
            return Error::NotMine { keyring: keyring.to_owned(), edk_count };
        }
    }
    Error::keyring(keyring, esdk_error_text(err))
}

// ---------------------------------------------------------------------------
// Our keyring inside aws-esdk
// ---------------------------------------------------------------------------

/// Any keyring of this crate as an `aws-esdk` keyring.
///
/// ```no_run
/// # use std::sync::Arc;
/// use hsm_keyring::interop::aws_esdk::AwsEsdkKeyring;
/// use hsm_keyring::interop::aws_esdk::aws_esdk::material_providers::types::keyring::KeyringRef;
/// # fn demo(ours: Arc<dyn hsm_keyring::Keyring>) {
/// let theirs = KeyringRef::from(AwsEsdkKeyring::new(ours));
/// // client.encrypt().plaintext(..).keyring(theirs.clone()).send().await
/// # let _ = theirs;
/// # }
/// ```
#[derive(Clone)]
pub struct AwsEsdkKeyring<K = Arc<dyn Keyring>> {
    inner: K,
}

impl<K: Keyring> AwsEsdkKeyring<K> {
    /// Wrap `keyring`.
    pub fn new(keyring: K) -> Self {
        AwsEsdkKeyring { inner: keyring }
    }

    /// The wrapped keyring.
    pub fn inner(&self) -> &K {
        &self.inner
    }

    /// Wrap `keyring` and box it as an `aws-esdk` [`KeyringRef`].
    pub fn keyring_ref(keyring: K) -> KeyringRef
    where
        K: 'static,
    {
        KeyringRef::from(Self::new(keyring))
    }

    fn encrypt(&self, mut theirs: EsdkEncryptionMaterials) -> Result<EsdkEncryptionMaterials> {
        let suite = suite_from_info(theirs.algorithm_suite.as_ref())?;
        // Keyrings do not sign; the other side's signing key stays in `theirs`.
        let mut ours = EncryptionMaterials::new(suite, context_from_esdk(theirs.encryption_context.as_ref()));
        ours.set_required_encryption_context_keys(theirs.required_encryption_context_keys.clone().unwrap_or_default());
        if let Some(key) = theirs.plaintext_data_key.take() {
            ours.set_data_key(data_key_from_blob(key))?;
        }
        for edk in edks_from_esdk(theirs.encrypted_data_keys.as_ref())? {
            ours.add_encrypted_data_key(edk)?;
        }
        let input_edks = ours.encrypted_data_keys().to_vec();
        let input_key = ours.data_key().cloned();
        let out = self.inner.on_encrypt(ours)?;
        let key = out.data_key().ok_or_else(|| {
            Error::keyring(self.inner.description(), "on_encrypt returned materials without a data key")
        })?;
        if let Some(input_key) = &input_key {
            if !same_key(input_key, key.as_bytes()) {
                return Err(Error::keyring(self.inner.description(), "on_encrypt replaced the existing data key"));
            }
        }
        if out.encrypted_data_keys().len() <= input_edks.len() || !out.encrypted_data_keys().starts_with(&input_edks) {
            return Err(Error::keyring(
                self.inner.description(),
                "on_encrypt did not append an EDK to the existing ones",
            ));
        }
        theirs.plaintext_data_key = Some(data_key_to_blob(key));
        theirs.encrypted_data_keys = Some(edks_to_esdk(out.encrypted_data_keys())?);
        Ok(theirs)
    }

    fn decrypt(
        &self,
        mut theirs: EsdkDecryptionMaterials,
        edks: Option<&Vec<EsdkEncryptedDataKey>>,
    ) -> Result<EsdkDecryptionMaterials> {
        let suite = suite_from_info(theirs.algorithm_suite.as_ref())?;
        let mut ours = DecryptionMaterials::new(suite, context_from_esdk(theirs.encryption_context.as_ref()));
        ours.set_required_encryption_context_keys(theirs.required_encryption_context_keys.clone().unwrap_or_default());
        ours.set_verification_key(theirs.verification_key.as_ref().map(|b| b.as_ref().to_vec()));
        if let Some(key) = theirs.plaintext_data_key.take() {
            ours.set_data_key(data_key_from_blob(key))?;
        }
        let edks = edks_from_esdk(edks)?;
        let out = self.inner.on_decrypt(ours, &edks)?;
        let key = out.data_key().ok_or_else(|| {
            Error::keyring(self.inner.description(), "on_decrypt returned materials without a data key")
        })?;
        theirs.plaintext_data_key = Some(data_key_to_blob(key));
        Ok(theirs)
    }
}

impl<K: Keyring> fmt::Debug for AwsEsdkKeyring<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AwsEsdkKeyring").field(&self.inner.description()).finish()
    }
}

impl<K: Keyring> EsdkKeyring for AwsEsdkKeyring<K> {
    fn on_encrypt(&self, input: OnEncryptInput) -> std::result::Result<OnEncryptOutput, MplError> {
        let materials =
            input.materials.ok_or_else(|| error_to_esdk(&mapping_error("on_encrypt was called without materials")))?;
        let materials = self.encrypt(materials).map_err(|e| error_to_esdk(&e))?;
        OnEncryptOutput::builder().materials(materials).build().map_err(|e| error_to_esdk(&mapping_error(e)))
    }

    fn on_decrypt(&self, input: OnDecryptInput) -> std::result::Result<OnDecryptOutput, MplError> {
        let materials =
            input.materials.ok_or_else(|| error_to_esdk(&mapping_error("on_decrypt was called without materials")))?;
        let materials = self.decrypt(materials, input.encrypted_data_keys.as_ref()).map_err(|e| error_to_esdk(&e))?;
        OnDecryptOutput::builder().materials(materials).build().map_err(|e| error_to_esdk(&mapping_error(e)))
    }
}

// ---------------------------------------------------------------------------
// An aws-esdk keyring inside this crate
// ---------------------------------------------------------------------------

/// An `aws-esdk` keyring ([`KeyringRef`]) as a keyring of this crate.
///
/// Any of its keyrings works: raw AES, raw RSA, its multi-keyring, and the KMS
/// keyrings when they can reach KMS. A decrypt failure in which no EDK matched
/// the keyring is reported as [`Error::NotMine`] (recognised from the other
/// side's messages); every other failure as [`Error::Keyring`] carrying the
/// other side's message.
#[derive(Clone)]
pub struct FromAwsEsdk {
    keyring: KeyringRef,
    name: String,
}

impl FromAwsEsdk {
    /// Wrap `keyring`; `name` appears in errors (e.g. `aws-esdk raw AES ns/key`).
    pub fn new(keyring: KeyringRef, name: impl Into<String>) -> Self {
        FromAwsEsdk { keyring, name: name.into() }
    }

    /// The wrapped `aws-esdk` keyring.
    pub fn keyring_ref(&self) -> &KeyringRef {
        &self.keyring
    }

    fn call<T>(&self, f: impl FnOnce(&dyn EsdkKeyring) -> Result<T>) -> Result<T> {
        // The mutex belongs to `KeyringRef`; `aws-esdk` takes it the same way.
        let guard = self
            .keyring
            .inner
            .lock()
            .map_err(|_| Error::keyring(self.description(), "the keyring's lock was poisoned by a panic"))?;
        f(&*guard)
    }

    fn esdk_encryption_materials(&self, ours: &EncryptionMaterials) -> Result<EsdkEncryptionMaterials> {
        let suite = ours.algorithm_suite();
        EsdkEncryptionMaterials::builder()
            .algorithm_suite(suite_info(suite)?)
            .encryption_context(context_to_esdk(ours.encryption_context()))
            .required_encryption_context_keys(ours.required_encryption_context_keys().to_vec())
            .set_plaintext_data_key(ours.data_key().map(data_key_to_blob))
            .encrypted_data_keys(edks_to_esdk(ours.encrypted_data_keys())?)
            // The other side insists on a signing key for signed suites, but its
            // keyrings never use it; our signer (possibly in a token) stays here.
            .set_signing_key(suite.is_signing().then(|| Blob::new(Vec::new())))
            .build()
            .map_err(|e| mapping_error(e.to_string()))
    }

    fn esdk_decryption_materials(&self, ours: &DecryptionMaterials) -> Result<EsdkDecryptionMaterials> {
        let suite = ours.algorithm_suite();
        let verification_key = match ours.verification_key() {
            Some(key) => Some(Blob::new(key.to_vec())),
            None if suite.is_signing() => Some(Blob::new(Vec::new())),
            None => None,
        };
        EsdkDecryptionMaterials::builder()
            .algorithm_suite(suite_info(suite)?)
            .encryption_context(context_to_esdk(ours.encryption_context()))
            .required_encryption_context_keys(ours.required_encryption_context_keys().to_vec())
            .set_verification_key(verification_key)
            .build()
            .map_err(|e| mapping_error(e.to_string()))
    }
}

impl fmt::Debug for FromAwsEsdk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FromAwsEsdk").field(&self.name).finish()
    }
}

impl Keyring for FromAwsEsdk {
    fn on_encrypt(&self, mut materials: EncryptionMaterials) -> Result<EncryptionMaterials> {
        let theirs = self.esdk_encryption_materials(&materials)?;
        let input = OnEncryptInput::builder().materials(theirs).build().map_err(|e| mapping_error(e.to_string()))?;
        let output = self.call(|k| k.on_encrypt(input).map_err(|e| error_from_esdk(&self.description(), &e, None)))?;
        let mut out =
            output.materials.ok_or_else(|| Error::keyring(self.description(), "on_encrypt returned no materials"))?;
        let edks = edks_from_esdk(out.encrypted_data_keys.as_ref())?;
        let known = materials.encrypted_data_keys().len();
        if edks.len() <= known || !edks.starts_with(materials.encrypted_data_keys()) {
            return Err(Error::keyring(self.description(), "on_encrypt did not append an EDK to the existing ones"));
        }
        let mut key = out
            .plaintext_data_key
            .take()
            .ok_or_else(|| Error::keyring(self.description(), "on_encrypt returned no data key"))?
            .into_inner();
        match materials.data_key() {
            Some(existing) => {
                let same = same_key(existing, &key);
                key.zeroize();
                if !same {
                    return Err(Error::keyring(self.description(), "on_encrypt replaced the existing data key"));
                }
            }
            None => materials.set_data_key(DataKey::new(key))?,
        }
        for edk in edks.into_iter().skip(known) {
            materials.add_encrypted_data_key(edk)?;
        }
        Ok(materials)
    }

    fn on_decrypt(&self, mut materials: DecryptionMaterials, edks: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
        if materials.data_key().is_some() {
            return Err(Error::keyring(self.description(), "the decryption materials already hold a data key"));
        }
        let theirs = self.esdk_decryption_materials(&materials)?;
        let input = OnDecryptInput::builder()
            .materials(theirs)
            .encrypted_data_keys(edks_to_esdk(edks)?)
            .build()
            .map_err(|e| mapping_error(e.to_string()))?;
        let output =
            self.call(|k| k.on_decrypt(input).map_err(|e| error_from_esdk(&self.description(), &e, Some(edks.len()))))?;
        let key = output
            .materials
            .and_then(|m| m.plaintext_data_key)
            .ok_or_else(|| Error::keyring(self.description(), "on_decrypt returned no data key"))?;
        materials.set_data_key(data_key_from_blob(key))?;
        Ok(materials)
    }

    fn description(&self) -> String {
        self.name.clone()
    }
}

#[cfg(test)]
#[path = "aws_esdk_tests.rs"]
mod tests;
