//! DynamoDB item encryption, byte-compatible with the AWS Database
//! Encryption SDK ("structured encryption", suites 0x6700 and 0x6701).
//!
//! An item is a map of attribute names to [`AttributeValue`]s. A
//! [`TableConfig`] says, for one table, which attributes are encrypted and
//! signed ([`CryptoAction::EncryptAndSign`]), signed only
//! ([`CryptoAction::SignOnly`]), signed and bound into the encryption
//! context ([`CryptoAction::SignAndIncludeInEncryptionContext`], which makes
//! the configuration version 2), or left alone ([`CryptoAction::DoNothing`],
//! only for attributes allowed unsigned by name or prefix), and where the
//! data keys come from: any keyring of this crate (raw AES, raw RSA, token
//! AES, token RSA) or a CMM. The keyrings wrap item data keys through an
//! intermediate key, as the SDK's raw keyrings do for these suites.
//!
//! [`encrypt_item`] adds two binary attributes, `aws_dbe_head` (version,
//! suite, message id, legend, stored context, EDKs, key commitment) and
//! `aws_dbe_foot` (an HMAC-SHA384 tag per EDK and, for 0x6701, an ECDSA
//! P-384 signature) over the table name, the encryption context and every
//! signed attribute. [`decrypt_item`] refuses any change to a signed or
//! encrypted attribute, a removed signed attribute, an added attribute that
//! is not allowed unsigned, values moved between attributes or items,
//! another item's header or footer, another table name or key value.
//!
//! ```
//! use hsm_keyring::items::{decrypt_item, encrypt_item, AttributeValue, CryptoAction, Item, TableConfig};
//! use hsm_keyring::keyrings::RawAesKeyring;
//!
//! let config = TableConfig::builder("orders", "id")
//!     .action("card", CryptoAction::EncryptAndSign)
//!     .action("total", CryptoAction::SignOnly)
//!     .keyring(RawAesKeyring::new("ns", "key-1", &[7; 32])?)
//!     .build()?;
//! let mut item = Item::new();
//! item.insert("id".into(), AttributeValue::S("o-1".into()));
//! item.insert("card".into(), AttributeValue::S("4111".into()));
//! item.insert("total".into(), AttributeValue::N("12.50".into()));
//! let stored = encrypt_item(&config, &item)?;
//! assert!(matches!(stored["card"], AttributeValue::B(_)));
//! assert_eq!(decrypt_item(&config, &stored)?, item);
//! # Ok::<(), hsm_keyring::Error>(())
//! ```
//!
//! Batches: [`encrypt_items`] and [`decrypt_items`], with what a caching CMM
//! shares between items. A long-lived signer and pinned readers:
//! [`TableConfigBuilder::signer`] and [`TableConfigBuilder::trusted_signers`].
//! With the cargo feature `dynamodb`, values convert to and from
//! `aws_sdk_dynamodb::types::AttributeValue` (`From`, `TryFrom`) and items
//! with `to_sdk_item` / `from_sdk_item`. Serde types become items and back
//! with `to_item` / `from_item`.

mod batch;
mod config;
pub(crate) mod context;
pub(crate) mod crypt;
pub(crate) mod decrypt;
#[cfg(feature = "dynamodb")]
mod dynamodb;
mod encrypt;
pub(crate) mod footer;
pub(crate) mod header;
pub mod legacy;
mod number;
mod path;
mod serde_item;
mod signers;
mod value;

#[cfg(test)]
mod cache_tests;
#[cfg(test)]
mod tests;

pub use batch::{decrypt_items, encrypt_items};
pub use config::{CryptoAction, TableConfig, TableConfigBuilder, RESERVED_PREFIX};
pub use decrypt::decrypt_item;
#[cfg(feature = "dynamodb-client")]
pub(crate) use dynamodb::into_sdk_item;
#[cfg(feature = "dynamodb")]
pub use dynamodb::{from_sdk_item, to_sdk_item};
pub use encrypt::encrypt_item;
pub use serde_item::{from_item, to_item};
pub use value::{AttributeValue, Item, MAX_DEPTH};

/// The header attribute.
pub const HEADER_ATTRIBUTE: &str = "aws_dbe_head";
/// The footer attribute.
pub const FOOTER_ATTRIBUTE: &str = "aws_dbe_foot";
