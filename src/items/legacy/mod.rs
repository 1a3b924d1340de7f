//! Items written by the legacy **DynamoDB Encryption Client** (Java, and
//! Python 1.x-3.x), read and verified so that a table can move to the AWS
//! Database Encryption SDK format item by item (`docs/item-format.md`,
//! "Legacy items").
//!
//! A legacy item carries `*amzn-ddb-map-sig*` (an HMAC-SHA256 or
//! SHA256withRSA signature over the table name and the signed attributes)
//! and `*amzn-ddb-map-desc*` (the material description: encryption mode,
//! signing algorithm and, for the wrapped materials provider, the content
//! key wrapped with AES key wrap or RSA-OAEP). Encrypted attributes are
//! AES-CBC ciphertexts stored as binary. [`LegacyMaterials`] holds the keys
//! (wrapped or static provider; in memory or in a token, see
//! [`crate::master_keys::LegacyUnwrapKey`] and
//! [`crate::master_keys::LegacyVerifyKey`]); [`LegacyConfig`] the table's
//! name, keys and actions; [`decrypt_legacy_item`] reads one item.
//!
//! [`LegacyPolicy`] and [`decrypt_any_item`] serve a table during the move:
//! new items are written in the new format ([`encrypt_item`](super::encrypt_item)),
//! and reads take either format, or refuse legacy items once the move is done.
//!
//! ```
//! use hsm_keyring::items::legacy::{decrypt_any_item, LegacyConfig, LegacyMaterials, LegacyPolicy};
//! use hsm_keyring::items::{encrypt_item, AttributeValue, CryptoAction, Item, TableConfig};
//! use hsm_keyring::keyrings::RawAesKeyring;
//! use hsm_keyring::master_keys::{MemoryAesWrapKey, MemoryHmacKey};
//!
//! let table = TableConfig::builder("orders", "id")
//!     .action("total", CryptoAction::SignOnly)
//!     .default_action(CryptoAction::EncryptAndSign)
//!     .keyring(RawAesKeyring::new("ns", "key-1", &[7; 32])?)
//!     .build()?;
//! let legacy = LegacyMaterials::wrapped(MemoryAesWrapKey::new(&[1; 32])?, MemoryHmacKey::new(&[2; 32])?);
//! let policy = LegacyPolicy::ReadLegacyWriteNew(LegacyConfig::from_table(&table, legacy)?);
//!
//! let mut item = Item::new();
//! item.insert("id".into(), AttributeValue::S("o-1".into()));
//! item.insert("total".into(), AttributeValue::N("12.5".into()));
//! let stored = encrypt_item(&table, &item)?; // new items: the new format
//! assert_eq!(decrypt_any_item(&table, &policy, &stored)?, item);
//! # Ok::<(), hsm_keyring::Error>(())
//! ```

mod config;
mod decrypt;
mod desc;
mod value;

#[cfg(test)]
mod tests;

pub use config::{LegacyConfig, LegacyConfigBuilder, LegacyMaterials};
pub use decrypt::decrypt_legacy_item;

use super::value::Item;
use super::{decrypt_item, TableConfig, HEADER_ATTRIBUTE};
use crate::error::{Error, Result};

/// The legacy signature attribute.
pub const SIGNATURE_ATTRIBUTE: &str = "*amzn-ddb-map-sig*";
/// The legacy material description attribute.
pub const MATERIAL_DESCRIPTION_ATTRIBUTE: &str = "*amzn-ddb-map-desc*";

/// What a table does with items in the legacy format.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum LegacyPolicy {
    /// Legacy items are refused ([`Error::PolicyViolation`]): the move is done.
    ForbidLegacy,
    /// Legacy items are read with this configuration; new items are written
    /// (by [`encrypt_item`](super::encrypt_item)) in the new format.
    ReadLegacyWriteNew(LegacyConfig),
}

/// True when `item` is in the legacy format: it has the legacy signature
/// attribute and no new-format header.
pub fn is_legacy_item(item: &Item) -> bool {
    item.contains_key(SIGNATURE_ATTRIBUTE) && !item.contains_key(HEADER_ATTRIBUTE)
}

/// Decrypt an item in either format: a legacy item (see [`is_legacy_item`])
/// as `policy` allows, any other with [`decrypt_item`] and `table`. An item
/// carrying both formats' attributes is malformed.
pub fn decrypt_any_item(table: &TableConfig, policy: &LegacyPolicy, item: &Item) -> Result<Item> {
    if item.contains_key(HEADER_ATTRIBUTE)
        && (item.contains_key(SIGNATURE_ATTRIBUTE) || item.contains_key(MATERIAL_DESCRIPTION_ATTRIBUTE))
    {
        return Err(Error::MalformedItem {
            reason: format!("the item has both `{HEADER_ATTRIBUTE}` and legacy `*amzn-ddb-map-*` attributes"),
        });
    }
    if !is_legacy_item(item) {
        return decrypt_item(table, item);
    }
    match policy {
        LegacyPolicy::ForbidLegacy => Err(Error::PolicyViolation {
            reason: format!(
                "the item is in the legacy format (`{SIGNATURE_ATTRIBUTE}`) and the policy forbids legacy items"
            ),
        }),
        LegacyPolicy::ReadLegacyWriteNew(config) => decrypt_legacy_item(config, item),
    }
}
