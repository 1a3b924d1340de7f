//! Sender x receiver interoperability between hsm-keyring and the AWS
//! Encryption SDK for Rust (`aws-esdk`).
//!
//! A *party* is one implementation of the message format (`aws-esdk` or
//! hsm-keyring) holding a keyring of one implementation; a foreign keyring is
//! used through the adapters of `hsm_keyring::interop::aws_esdk`. The tests in
//! `tests/` encrypt with one party and decrypt with another, for every pair.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use aws_esdk::material_providers::client::Client as MplClient;
use aws_esdk::material_providers::types::keyring::KeyringRef;
use aws_esdk::material_providers::types::material_providers_config::MaterialProvidersConfig;
use aws_esdk::material_providers::types::{AesWrappingAlg, PaddingScheme};
use aws_esdk::types::aws_encryption_sdk_config::AwsEncryptionSdkConfig;
use hsm_keyring::cmm::{DefaultCmm, RequiredEncryptionContextCmm};
use hsm_keyring::interop::aws_esdk::{
    esdk_algorithm_suite_id, esdk_commitment_policy, esdk_error_text, AwsEsdkKeyring, FromAwsEsdk,
};
use hsm_keyring::{
    AlgorithmSuite, Client, CommitmentPolicy, CryptographicMaterialsManager, EncryptionContext, Keyring,
};

pub mod software;

/// Frame length used by both sides, so that 4095/4096/4097-byte plaintexts
/// fall just under, on and just over a frame boundary.
pub const FRAME_LENGTH: u32 = 4096;

/// Results of this crate carry a readable reason.
pub type Result<T> = std::result::Result<T, String>;

/// Which implementation writes or reads the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    /// The AWS Encryption SDK for Rust.
    Esdk,
    /// hsm-keyring.
    Ours,
}

/// Which implementation's keyring holds the wrapping key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyringImpl {
    /// An `aws-esdk` keyring.
    Theirs,
    /// An hsm-keyring keyring.
    Ours,
}

/// One side of a cell: a message implementation with a keyring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Party {
    /// Who writes/reads the message.
    pub message: Impl,
    /// Whose keyring wraps/unwraps the data key.
    pub keyring: KeyringImpl,
}

impl fmt::Display for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = match self.message {
            Impl::Esdk => "aws-esdk",
            Impl::Ours => "hsm-keyring",
        };
        let k = match self.keyring {
            KeyringImpl::Theirs => "aws-esdk keyring",
            KeyringImpl::Ours => "hsm-keyring keyring",
        };
        write!(f, "{m} with {k}")
    }
}

/// The same wrapping key held by a keyring of each implementation.
#[derive(Clone)]
pub struct KeyringPair {
    /// Name for failure messages, e.g. `raw AES-256`.
    pub name: String,
    /// The `aws-esdk` keyring.
    pub theirs: KeyringRef,
    /// The hsm-keyring keyring.
    pub ours: Arc<dyn Keyring>,
}

impl KeyringPair {
    /// Both keyring implementations.
    pub fn keyring_impls(&self) -> [KeyringImpl; 2] {
        [KeyringImpl::Theirs, KeyringImpl::Ours]
    }

    /// Every party: each message implementation with each keyring implementation.
    pub fn parties(&self) -> Vec<Party> {
        let mut v = Vec::new();
        for message in [Impl::Esdk, Impl::Ours] {
            for keyring in self.keyring_impls() {
                v.push(Party { message, keyring });
            }
        }
        v
    }

    /// The keyring in the shape `aws-esdk` takes.
    pub fn for_esdk(&self, which: KeyringImpl) -> KeyringRef {
        match which {
            KeyringImpl::Theirs => self.theirs.clone(),
            KeyringImpl::Ours => AwsEsdkKeyring::keyring_ref(self.ours.clone()),
        }
    }

    /// The keyring in the shape hsm-keyring takes.
    pub fn for_ours(&self, which: KeyringImpl) -> Arc<dyn Keyring> {
        match which {
            KeyringImpl::Theirs => Arc::new(FromAwsEsdk::new(self.theirs.clone(), format!("aws-esdk {}", self.name))),
            KeyringImpl::Ours => self.ours.clone(),
        }
    }
}

/// RSA padding of a raw RSA keyring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaPadding {
    /// OAEP with SHA-1 and MGF1-SHA-1.
    OaepSha1,
    /// OAEP with SHA-256 and MGF1-SHA-256.
    OaepSha256,
}

/// Key namespace of every test keyring.
pub const NAMESPACE: &str = "hsm-keyring-interop";

/// `aws-esdk` material providers client.
pub fn mpl() -> Result<MplClient> {
    let config = MaterialProvidersConfig::builder().build().map_err(|e| e.to_string())?;
    MplClient::from_conf(config).map_err(|e| esdk_error_text(&e))
}

/// `aws-esdk`'s raw AES-256 keyring over `key`.
pub async fn esdk_raw_aes(namespace: &str, name: &str, key: &[u8]) -> Result<KeyringRef> {
    mpl()?
        .create_raw_aes_keyring()
        .key_namespace(namespace)
        .key_name(name)
        .wrapping_key(key.to_vec())
        .wrapping_alg(AesWrappingAlg::AlgAes256GcmIv12Tag16)
        .send()
        .await
        .map_err(|e| esdk_error_text(&e))
}

/// A raw AES-256 keyring pair over `key`.
pub async fn raw_aes_pair(name: &str, key: &[u8; 32]) -> Result<KeyringPair> {
    let theirs = esdk_raw_aes(NAMESPACE, name, key).await?;
    let ours = software::raw_aes(NAMESPACE, name, key)?;
    Ok(KeyringPair { name: format!("raw AES-256 {NAMESPACE}/{name}"), theirs, ours })
}

/// A raw RSA keyring pair over a PKCS#8 private key and SPKI public key (PEM).
pub async fn raw_rsa_pair(name: &str, private_pem: &str, public_pem: &str, padding: RsaPadding) -> Result<KeyringPair> {
    let scheme = match padding {
        RsaPadding::OaepSha1 => PaddingScheme::OaepSha1Mgf1,
        RsaPadding::OaepSha256 => PaddingScheme::OaepSha256Mgf1,
    };
    let theirs = mpl()?
        .create_raw_rsa_keyring()
        .key_namespace(NAMESPACE)
        .key_name(name)
        .padding_scheme(scheme)
        .public_key(public_pem.as_bytes().to_vec())
        .private_key(private_pem.as_bytes().to_vec())
        .send()
        .await
        .map_err(|e| esdk_error_text(&e))?;
    let ours = software::raw_rsa(NAMESPACE, name, private_pem, padding)?;
    Ok(KeyringPair { name: format!("raw RSA {padding:?} {NAMESPACE}/{name}"), theirs, ours })
}

/// An encryption context as ordered pairs.
pub type Pairs = [(&'static str, &'static str)];

fn esdk_context(pairs: &Pairs) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn our_context(pairs: &Pairs) -> Result<EncryptionContext> {
    EncryptionContext::from_pairs(pairs.iter().copied()).map_err(|e| e.to_string())
}

fn esdk_text(err: &aws_esdk::types::error::Error) -> String {
    use aws_esdk::types::error::Error as E;
    match err {
        E::AwsEncryptionSdkException { message } => message.clone(),
        E::AwsCryptographicMaterialProvidersError { error } => esdk_error_text(error),
        E::CollectionOfErrors { list, message } => {
            let inner: Vec<String> = list.iter().map(esdk_text).collect();
            format!("{message}: {}", inner.join("; "))
        }
        other => other.to_string(),
    }
}

fn esdk_client(policy: CommitmentPolicy) -> Result<aws_esdk::client::Client> {
    let config = AwsEncryptionSdkConfig::builder()
        .commitment_policy(esdk_commitment_policy(policy))
        .build()
        .map_err(|e| e.to_string())?;
    aws_esdk::client::Client::from_conf(config).map_err(|e| esdk_text(&e))
}

async fn esdk_cmm(
    keyring: KeyringRef,
    required_keys: &[&str],
) -> Result<aws_esdk::material_providers::types::cryptographic_materials_manager::CryptographicMaterialsManagerRef> {
    let mpl = mpl()?;
    let cmm = mpl
        .create_default_cryptographic_materials_manager()
        .keyring(keyring)
        .send()
        .await
        .map_err(|e| esdk_error_text(&e))?;
    mpl.create_required_encryption_context_cmm()
        .underlying_cmm(cmm)
        .required_encryption_context_keys(required_keys.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>())
        .send()
        .await
        .map_err(|e| esdk_error_text(&e))
}

fn our_cmm(keyring: Arc<dyn Keyring>, required_keys: &[&str]) -> Result<Box<dyn CryptographicMaterialsManager>> {
    let cmm = DefaultCmm::new(keyring);
    if required_keys.is_empty() {
        return Ok(Box::new(cmm));
    }
    let keys = required_keys.iter().map(|k| (*k).to_owned()).collect();
    Ok(Box::new(RequiredEncryptionContextCmm::new(cmm, keys).map_err(|e| e.to_string())?))
}

fn our_client(policy: CommitmentPolicy, suite: Option<AlgorithmSuite>) -> Result<Client> {
    let mut builder = Client::builder().commitment_policy(policy).frame_length(FRAME_LENGTH);
    if let Some(suite) = suite {
        builder = builder.algorithm_suite(suite);
    }
    builder.build().map_err(|e| e.to_string())
}

/// What to encrypt and how.
#[derive(Debug, Clone, Copy)]
pub struct EncryptSpec<'a> {
    /// The suite.
    pub suite: AlgorithmSuite,
    /// The sender's commitment policy.
    pub policy: CommitmentPolicy,
    /// The full encryption context.
    pub context: &'a Pairs,
    /// Context keys authenticated but not stored (required-encryption-context CMM); empty for the default CMM.
    pub required_keys: &'a [&'a str],
}

/// How to decrypt.
#[derive(Debug, Clone, Copy)]
pub struct DecryptSpec<'a> {
    /// The receiver's commitment policy.
    pub policy: CommitmentPolicy,
    /// The context the receiver supplies (the reproduced context).
    pub context: &'a Pairs,
    /// Required keys of the receiver's required-encryption-context CMM; empty for the default CMM.
    pub required_keys: &'a [&'a str],
}

/// Encrypt `plaintext` as `party` with the keyring pair.
pub async fn encrypt(party: Party, pair: &KeyringPair, spec: EncryptSpec<'_>, plaintext: &[u8]) -> Result<Vec<u8>> {
    match party.message {
        Impl::Esdk => {
            let client = esdk_client(spec.policy)?;
            let keyring = pair.for_esdk(party.keyring);
            let mut request = client
                .encrypt()
                .plaintext(plaintext.to_vec())
                .encryption_context(esdk_context(spec.context))
                .algorithm_suite_id(esdk_algorithm_suite_id(spec.suite))
                .frame_length(i64::from(FRAME_LENGTH));
            request = if spec.required_keys.is_empty() {
                request.keyring(keyring)
            } else {
                request.materials_manager(esdk_cmm(keyring, spec.required_keys).await?)
            };
            let out = request.send().await.map_err(|e| esdk_text(&e))?;
            out.ciphertext.map(|b| b.into_inner()).ok_or_else(|| "aws-esdk returned no ciphertext".to_owned())
        }
        Impl::Ours => {
            let client = our_client(spec.policy, Some(spec.suite))?;
            let cmm = our_cmm(pair.for_ours(party.keyring), spec.required_keys)?;
            client.encrypt(&*cmm, plaintext, &our_context(spec.context)?).map_err(|e| e.to_string())
        }
    }
}

/// Decrypt `message` as `party` with the keyring pair.
pub async fn decrypt(party: Party, pair: &KeyringPair, spec: DecryptSpec<'_>, message: &[u8]) -> Result<Vec<u8>> {
    match party.message {
        Impl::Esdk => {
            let client = esdk_client(spec.policy)?;
            let keyring = pair.for_esdk(party.keyring);
            let mut request =
                client.decrypt().ciphertext(message.to_vec()).encryption_context(esdk_context(spec.context));
            request = if spec.required_keys.is_empty() {
                request.keyring(keyring)
            } else {
                request.materials_manager(esdk_cmm(keyring, spec.required_keys).await?)
            };
            let out = request.send().await.map_err(|e| esdk_text(&e))?;
            out.plaintext.map(|b| b.into_inner()).ok_or_else(|| "aws-esdk returned no plaintext".to_owned())
        }
        Impl::Ours => {
            let client = our_client(spec.policy, None)?;
            let cmm = our_cmm(pair.for_ours(party.keyring), spec.required_keys)?;
            let out = client.decrypt(&*cmm, message, &our_context(spec.context)?).map_err(|e| e.to_string())?;
            Ok(out.plaintext)
        }
    }
}

/// The encryption context stored in a message's header, as hsm-keyring parses it.
pub fn stored_context(message: &[u8]) -> Result<EncryptionContext> {
    let header = Client::new().inspect(message).map_err(|e| e.to_string())?;
    Ok(header.encryption_context)
}

/// A deterministic plaintext of `len` bytes.
pub fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31).wrapping_add(7) % 251) as u8).collect()
}
