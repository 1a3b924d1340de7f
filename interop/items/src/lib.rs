//! Helpers for the item compatibility tests: conversions between this
//! crate's item model and the AWS SDK's, one table description that builds
//! both this crate's [`TableConfig`] and the AWS Database Encryption SDK's
//! item encryptor, and the SDK's raw keyrings.

use std::collections::HashMap;
use std::future::Future;

use aws_db_esdk::item_encryptor::client::Client as SdkEncryptor;
use aws_db_esdk::item_encryptor::types::dynamo_db_item_encryptor_config::DynamoDbItemEncryptorConfig;
use aws_db_esdk::material_providers::client::Client as MplClient;
use aws_db_esdk::material_providers::types::keyring::KeyringRef;
use aws_db_esdk::material_providers::types::material_providers_config::MaterialProvidersConfig;
use aws_db_esdk::material_providers::types::{AesWrappingAlg, DbeAlgorithmSuiteId, PaddingScheme};
use aws_db_esdk::CryptoAction as SdkAction;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue as SdkValue;
use hsm_keyring::cmm::DefaultCmm;
use hsm_keyring::items::{AttributeValue, CryptoAction, Item, TableConfig};
use hsm_keyring::{AlgorithmSuite, CryptographicMaterialsManager, Keyring};
use std::sync::Arc;

/// An item in the AWS SDK's model.
pub type SdkItem = HashMap<String, SdkValue>;

/// Run a future of the SDK to completion on a current-thread runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().expect("tokio runtime").block_on(future)
}

/// A string value.
pub fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number value, as written.
pub fn n(v: &str) -> AttributeValue {
    AttributeValue::N(v.into())
}

/// Flip one bit in the middle of the binary attribute `name` (an encrypted
/// value, the header or the footer), if the item has it.
pub fn flip(item: &mut Item, name: &str) {
    if let Some(AttributeValue::B(b)) = item.get_mut(name) {
        let at = b.len() / 2;
        b[at] ^= 0x01;
    }
}

/// Convert a value to the SDK's model.
pub fn to_sdk(value: &AttributeValue) -> SdkValue {
    match value {
        AttributeValue::S(s) => SdkValue::S(s.clone()),
        AttributeValue::N(n) => SdkValue::N(n.clone()),
        AttributeValue::B(b) => SdkValue::B(Blob::new(b.clone())),
        AttributeValue::Bool(b) => SdkValue::Bool(*b),
        AttributeValue::Null => SdkValue::Null(true),
        AttributeValue::Ss(v) => SdkValue::Ss(v.clone()),
        AttributeValue::Ns(v) => SdkValue::Ns(v.clone()),
        AttributeValue::Bs(v) => SdkValue::Bs(v.iter().map(|b| Blob::new(b.clone())).collect()),
        AttributeValue::L(v) => SdkValue::L(v.iter().map(to_sdk).collect()),
        AttributeValue::M(m) => SdkValue::M(m.iter().map(|(k, v)| (k.clone(), to_sdk(v))).collect()),
        other => panic!("no SDK form for {other:?}"),
    }
}

/// Convert a value from the SDK's model.
pub fn from_sdk(value: &SdkValue) -> AttributeValue {
    match value {
        SdkValue::S(s) => AttributeValue::S(s.clone()),
        SdkValue::N(n) => AttributeValue::N(n.clone()),
        SdkValue::B(b) => AttributeValue::B(b.as_ref().to_vec()),
        SdkValue::Bool(b) => AttributeValue::Bool(*b),
        SdkValue::Null(_) => AttributeValue::Null,
        SdkValue::Ss(v) => AttributeValue::Ss(v.clone()),
        SdkValue::Ns(v) => AttributeValue::Ns(v.clone()),
        SdkValue::Bs(v) => AttributeValue::Bs(v.iter().map(|b| b.as_ref().to_vec()).collect()),
        SdkValue::L(v) => AttributeValue::L(v.iter().map(from_sdk).collect()),
        SdkValue::M(m) => AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), from_sdk(v))).collect()),
        other => panic!("unknown SDK value {other:?}"),
    }
}

/// Convert an item to the SDK's model.
pub fn item_to_sdk(item: &Item) -> SdkItem {
    item.iter().map(|(k, v)| (k.clone(), to_sdk(v))).collect()
}

/// Convert an item from the SDK's model.
pub fn item_from_sdk(item: &SdkItem) -> Item {
    item.iter().map(|(k, v)| (k.clone(), from_sdk(v))).collect()
}

/// One table as both libraries configure it.
#[derive(Clone, Debug)]
pub struct TableSpec {
    /// Logical table name.
    pub table: String,
    /// Partition key name.
    pub partition_key: String,
    /// Sort key name.
    pub sort_key: Option<String>,
    /// Every attribute's action, keys included.
    pub actions: Vec<(String, CryptoAction)>,
    /// Attributes allowed unsigned.
    pub allowed_unsigned: Vec<String>,
    /// Prefix of attributes allowed unsigned.
    pub allowed_unsigned_prefix: Option<String>,
    /// 0x6700 or 0x6701.
    pub suite: AlgorithmSuite,
}

impl TableSpec {
    /// This crate's configuration over `keyring`.
    pub fn ours<K: Keyring + 'static>(&self, keyring: K) -> TableConfig {
        self.ours_cmm(Arc::new(DefaultCmm::new(keyring)))
    }

    /// This crate's configuration over `cmm`.
    pub fn ours_cmm(&self, cmm: Arc<dyn CryptographicMaterialsManager>) -> TableConfig {
        let mut b = TableConfig::builder(&self.table, &self.partition_key).suite(self.suite).cmm(cmm);
        if let Some(sk) = &self.sort_key {
            b = b.sort_key(sk);
        }
        for (name, action) in &self.actions {
            b = b.action(name, *action);
        }
        for name in &self.allowed_unsigned {
            b = b.allowed_unsigned(name);
        }
        if let Some(p) = &self.allowed_unsigned_prefix {
            b = b.allowed_unsigned_prefix(p);
        }
        b.build().expect("our table configuration")
    }

    /// The SDK's item encryptor over `keyring`.
    pub fn theirs(&self, keyring: KeyringRef) -> SdkEncryptor {
        let actions: HashMap<String, SdkAction> = self
            .actions
            .iter()
            .map(|(name, action)| {
                let a = match action {
                    CryptoAction::EncryptAndSign => SdkAction::EncryptAndSign,
                    CryptoAction::SignOnly => SdkAction::SignOnly,
                    CryptoAction::SignAndIncludeInEncryptionContext => SdkAction::SignAndIncludeInEncryptionContext,
                    _ => SdkAction::DoNothing,
                };
                (name.clone(), a)
            })
            .collect();
        let suite = if self.suite.id() == 0x6700 {
            DbeAlgorithmSuiteId::AlgAes256GcmHkdfSha512CommitKeySymsigHmacSha384
        } else {
            DbeAlgorithmSuiteId::AlgAes256GcmHkdfSha512CommitKeyEcdsaP384SymsigHmacSha384
        };
        let mut b = DynamoDbItemEncryptorConfig::builder()
            .logical_table_name(&self.table)
            .partition_key_name(&self.partition_key)
            .attribute_actions_on_encrypt(actions)
            .keyring(keyring)
            .algorithm_suite_id(suite);
        if let Some(sk) = &self.sort_key {
            b = b.sort_key_name(sk);
        }
        if !self.allowed_unsigned.is_empty() {
            b = b.allowed_unsigned_attributes(self.allowed_unsigned.clone());
        }
        if let Some(p) = &self.allowed_unsigned_prefix {
            b = b.allowed_unsigned_attribute_prefix(p);
        }
        SdkEncryptor::from_conf(b.build().expect("SDK config")).expect("SDK item encryptor")
    }
}

/// Encrypt with the SDK's item encryptor.
pub fn sdk_encrypt(encryptor: &SdkEncryptor, item: &Item) -> Result<Item, String> {
    let out =
        block_on(encryptor.encrypt_item().plaintext_item(item_to_sdk(item)).send()).map_err(|e| format!("{e:?}"))?;
    Ok(item_from_sdk(out.encrypted_item.as_ref().ok_or("no encrypted item")?))
}

/// Decrypt with the SDK's item encryptor.
pub fn sdk_decrypt(encryptor: &SdkEncryptor, item: &Item) -> Result<Item, String> {
    let out =
        block_on(encryptor.decrypt_item().encrypted_item(item_to_sdk(item)).send()).map_err(|e| format!("{e:?}"))?;
    Ok(item_from_sdk(out.plaintext_item.as_ref().ok_or("no plaintext item")?))
}

fn mpl() -> MplClient {
    MplClient::from_conf(MaterialProvidersConfig::builder().build().expect("MPL config")).expect("MPL client")
}

/// The SDK's raw AES keyring.
pub fn sdk_raw_aes(namespace: &str, name: &str, key: &[u8]) -> KeyringRef {
    block_on(
        mpl()
            .create_raw_aes_keyring()
            .key_namespace(namespace)
            .key_name(name)
            .wrapping_key(key.to_vec())
            .wrapping_alg(AesWrappingAlg::AlgAes256GcmIv12Tag16)
            .send(),
    )
    .expect("SDK raw AES keyring")
}

/// The SDK's raw RSA keyring with OAEP-SHA1 (`sha256 = false`) or OAEP-SHA256.
pub fn sdk_raw_rsa(namespace: &str, name: &str, public_pem: &str, private_pem: &str, sha256: bool) -> KeyringRef {
    let padding = if sha256 { PaddingScheme::OaepSha256Mgf1 } else { PaddingScheme::OaepSha1Mgf1 };
    block_on(
        mpl()
            .create_raw_rsa_keyring()
            .key_namespace(namespace)
            .key_name(name)
            .padding_scheme(padding)
            .public_key(public_pem.as_bytes().to_vec())
            .private_key(private_pem.as_bytes().to_vec())
            .send(),
    )
    .expect("SDK raw RSA keyring")
}

/// The SDK's raw RSA keyring (OAEP-SHA1) holding only a public key: it
/// encrypts, never decrypts.
pub fn sdk_raw_rsa_public(namespace: &str, name: &str, public_pem: &str) -> KeyringRef {
    block_on(
        mpl()
            .create_raw_rsa_keyring()
            .key_namespace(namespace)
            .key_name(name)
            .padding_scheme(PaddingScheme::OaepSha1Mgf1)
            .public_key(public_pem.as_bytes().to_vec())
            .send(),
    )
    .expect("SDK raw RSA keyring (public key only)")
}
