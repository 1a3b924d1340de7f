//! A DynamoDB client that encrypts on write and decrypts on read (cargo
//! feature `dynamodb-client`).
//!
//! [`EncryptedClient`] wraps an [`aws_sdk_dynamodb::Client`] and a
//! [`TableConfig`] (with a [`LegacyPolicy`]) per physical table name. Single
//! item calls take the SDK's own fluent builders, so every parameter of the
//! request stays available; the item goes in and comes out as this crate's
//! [`Item`]. Requests to tables without a configuration pass through
//! unchanged (their items are returned as they are stored).
//!
//! - [`put_item`](EncryptedClient::put_item),
//!   [`transact_write_items`](EncryptedClient::transact_write_items) and
//!   [`batch_write_item`](EncryptedClient::batch_write_item) encrypt with
//!   [`encrypt_item`] / [`encrypt_items`];
//! - [`get_item`](EncryptedClient::get_item), [`query`](EncryptedClient::query),
//!   [`scan`](EncryptedClient::scan) and
//!   [`batch_get_item`](EncryptedClient::batch_get_item) decrypt with
//!   [`decrypt_any_item`] (legacy items as the table's policy says) and
//!   return nothing unless every item verified;
//! - [`delete_item`](EncryptedClient::delete_item) checks its condition.
//!
//! Expressions are checked before anything is sent: key condition, filter,
//! condition and projection expressions may name signed-only and unsigned
//! attributes but not encrypted ones (their stored values are ciphertext),
//! and an update expression (in a transaction) may name only unsigned
//! attributes. The check reads top-level attribute names, plain or
//! `#placeholder` (resolved through `ExpressionAttributeNames`); it skips
//! `:values`, numbers, the words `AND OR NOT BETWEEN IN SET REMOVE ADD
//! DELETE`, function names (a name followed by `(`) and the inner parts of
//! document paths (`a.b[0]` is `a`). A refused expression is an
//! [`Error::Config`] (kind `Usage`). A projection must keep every signed
//! attribute and `aws_dbe_head` / `aws_dbe_foot`, or the item does not verify.
//!
//! Batches share data keys through a [`CachingCmm`](crate::cmm::CachingCmm)
//! configured in the table's configuration, only among items whose
//! encryption contexts are equal: the context holds the table name and the
//! primary key, so writes and reads of the same primary key share a key
//! fetch and different primary keys never do.
//!
//! Errors of the service are [`Error::DynamoDb`], naming the operation.

mod batch;
mod expr;
mod ops;

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};

pub use aws_sdk_dynamodb;
pub use batch::{BatchReport, Write};
pub use ops::Page;

use crate::error::{Error, Result};
use crate::items::legacy::{decrypt_any_item, LegacyPolicy};
use crate::items::{decrypt_items, encrypt_item, encrypt_items, from_sdk_item, into_sdk_item, Item, TableConfig};

/// The SDK's item type.
pub type SdkItem = HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

/// One table's configuration and legacy policy.
#[derive(Clone, Debug)]
struct Table {
    config: TableConfig,
    legacy: LegacyPolicy,
}

impl Table {
    fn decrypt(&self, items: Vec<SdkItem>) -> Result<Vec<Item>> {
        let items: Vec<Item> = items.into_iter().map(from_sdk_item).collect::<Result<_>>()?;
        if matches!(self.legacy, LegacyPolicy::ForbidLegacy) {
            // Every item must be in the new format: one batch call.
            if items.iter().any(crate::items::legacy::is_legacy_item) {
                return items.iter().map(|i| decrypt_any_item(&self.config, &self.legacy, i)).collect();
            }
            return decrypt_items(&self.config, &items);
        }
        items.iter().map(|i| decrypt_any_item(&self.config, &self.legacy, i)).collect()
    }

    fn encrypt(&self, items: &[Item]) -> Result<Vec<SdkItem>> {
        Ok(encrypt_items(&self.config, items)?.into_iter().map(into_sdk_item).collect())
    }

    fn encrypt_one(&self, item: &Item) -> Result<SdkItem> {
        Ok(into_sdk_item(encrypt_item(&self.config, item)?))
    }
}

/// A DynamoDB client whose configured tables are encrypted transparently.
/// See the [module documentation](self).
#[derive(Clone, Debug)]
pub struct EncryptedClient {
    client: aws_sdk_dynamodb::Client,
    tables: HashMap<String, Table>,
}

impl EncryptedClient {
    /// Wrap `client`; add tables with [`table`](Self::table).
    pub fn new(client: aws_sdk_dynamodb::Client) -> Self {
        EncryptedClient { client, tables: HashMap::new() }
    }

    /// Encrypt the items of the physical table `name` with `config`; legacy
    /// items are read as `legacy` says (new items are always written in
    /// the new format).
    #[must_use]
    pub fn table(mut self, name: impl Into<String>, config: TableConfig, legacy: LegacyPolicy) -> Self {
        self.tables.insert(name.into(), Table { config, legacy });
        self
    }

    /// The wrapped client, to build requests (`client.inner().put_item()`)
    /// or to reach tables without encryption.
    pub fn inner(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    fn table_of(&self, name: Option<&String>) -> Option<&Table> {
        name.and_then(|n| self.tables.get(n))
    }
}

/// An error of the SDK for `operation` as an [`Error::DynamoDb`].
fn service<E, R>(operation: &'static str) -> impl FnOnce(aws_sdk_dynamodb::error::SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    move |e| Error::DynamoDb {
        operation,
        code: e.code().map(str::to_owned),
        reason: DisplayErrorContext(&e).to_string(),
    }
}
