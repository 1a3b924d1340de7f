//! Single-item calls, queries, scans and transactions.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput;
use aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

use super::expr::{check, Refuse};
use super::{service, EncryptedClient, SdkItem, Table};
use crate::error::{Error, Result};
use crate::items::{from_sdk_item, Item};

/// One page of a [`query`](EncryptedClient::query) or
/// [`scan`](EncryptedClient::scan): the decrypted items and where the next
/// page starts (pass it as `exclusive_start_key`).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Page {
    /// The items, decrypted and verified, in the server's order.
    pub items: Vec<Item>,
    /// The key to continue from, if the server stopped early.
    pub last_evaluated_key: Option<SdkItem>,
    /// Items the server read before its filter.
    pub scanned_count: i32,
}

impl EncryptedClient {
    /// `PutItem` with `item` encrypted. `request` is the SDK's builder
    /// (`client.inner().put_item().table_name(..)` plus any condition);
    /// its own item, if set, is replaced.
    pub async fn put_item(&self, request: PutItemFluentBuilder, item: &Item) -> Result<PutItemOutput> {
        let input = request.as_input();
        let table = self.table_of(input.get_table_name().as_ref());
        refuse_encrypted(
            table,
            input.get_table_name(),
            input.get_expression_attribute_names(),
            [("condition expression", input.get_condition_expression())],
        )?;
        let stored = match table {
            None => crate::items::to_sdk_item(item),
            Some(table) => table.encrypt_one(item)?,
        };
        request.set_item(Some(stored)).send().await.map_err(service("PutItem"))
    }

    /// `GetItem`, the item decrypted and verified (`None` when there is none).
    pub async fn get_item(&self, request: GetItemFluentBuilder) -> Result<Option<Item>> {
        let input = request.as_input();
        let table = self.table_of(input.get_table_name().as_ref());
        refuse_encrypted(
            table,
            input.get_table_name(),
            input.get_expression_attribute_names(),
            [("projection expression", input.get_projection_expression())],
        )?;
        let out = request.send().await.map_err(service("GetItem"))?;
        let Some(stored) = out.item else { return Ok(None) };
        match table {
            None => from_sdk_item(stored).map(Some),
            Some(t) => Ok(t.decrypt(vec![stored])?.pop()),
        }
    }

    /// One page of `Query`, decrypted. Key condition, filter and projection
    /// may not name encrypted attributes.
    pub async fn query(&self, request: QueryFluentBuilder) -> Result<Page> {
        let input = request.as_input();
        let table = self.table_of(input.get_table_name().as_ref());
        refuse_encrypted(
            table,
            input.get_table_name(),
            input.get_expression_attribute_names(),
            [
                ("key condition expression", input.get_key_condition_expression()),
                ("filter expression", input.get_filter_expression()),
                ("projection expression", input.get_projection_expression()),
            ],
        )?;
        let out = request.send().await.map_err(service("Query"))?;
        page(table, out.items, out.last_evaluated_key, out.scanned_count)
    }

    /// One page of `Scan`, decrypted. Filter and projection may not name
    /// encrypted attributes.
    pub async fn scan(&self, request: ScanFluentBuilder) -> Result<Page> {
        let input = request.as_input();
        let table = self.table_of(input.get_table_name().as_ref());
        refuse_encrypted(
            table,
            input.get_table_name(),
            input.get_expression_attribute_names(),
            [
                ("filter expression", input.get_filter_expression()),
                ("projection expression", input.get_projection_expression()),
            ],
        )?;
        let out = request.send().await.map_err(service("Scan"))?;
        page(table, out.items, out.last_evaluated_key, out.scanned_count)
    }

    /// `DeleteItem`; its condition may not name encrypted attributes. The
    /// output is the SDK's (old attributes, if asked for, as stored).
    pub async fn delete_item(&self, request: DeleteItemFluentBuilder) -> Result<DeleteItemOutput> {
        let input = request.as_input();
        refuse_encrypted(
            self.table_of(input.get_table_name().as_ref()),
            input.get_table_name(),
            input.get_expression_attribute_names(),
            [("condition expression", input.get_condition_expression())],
        )?;
        request.send().await.map_err(service("DeleteItem"))
    }

    /// `TransactWriteItems`: every `Put` to a configured table has its item
    /// (given in plaintext) encrypted; conditions of puts, deletes and
    /// condition checks may not name encrypted attributes; an `Update`
    /// may change only unsigned attributes.
    pub async fn transact_write_items(&self, items: Vec<TransactWriteItem>) -> Result<TransactWriteItemsOutput> {
        let mut out = Vec::with_capacity(items.len());
        for write in items {
            if let Some(put) = write.put() {
                if let Some(t) = self.tables.get(put.table_name()) {
                    let names = put.expression_attribute_names.as_ref();
                    check(
                        &t.config,
                        put.table_name(),
                        "condition expression",
                        put.condition_expression.as_ref(),
                        names,
                        Refuse::Encrypted,
                    )?;
                    let plain = from_sdk_item(put.item().clone())?;
                    let stored = t.encrypt_one(&plain)?;
                    let put = Put::builder()
                        .set_item(Some(stored))
                        .table_name(put.table_name())
                        .set_condition_expression(put.condition_expression.clone())
                        .set_expression_attribute_names(put.expression_attribute_names.clone())
                        .set_expression_attribute_values(put.expression_attribute_values.clone())
                        .set_return_values_on_condition_check_failure(
                            put.return_values_on_condition_check_failure.clone(),
                        )
                        .build()
                        .map_err(|e| Error::config(format!("TransactWriteItems put: {e}")))?;
                    out.push(TransactWriteItem::builder().put(put).build());
                    continue;
                }
            }
            if let Some(d) = write.delete() {
                if let Some(t) = self.tables.get(d.table_name()) {
                    check(
                        &t.config,
                        d.table_name(),
                        "condition expression",
                        d.condition_expression.as_ref(),
                        d.expression_attribute_names.as_ref(),
                        Refuse::Encrypted,
                    )?;
                }
            }
            if let Some(c) = write.condition_check() {
                if let Some(t) = self.tables.get(c.table_name()) {
                    check(
                        &t.config,
                        c.table_name(),
                        "condition expression",
                        Some(&c.condition_expression),
                        c.expression_attribute_names.as_ref(),
                        Refuse::Encrypted,
                    )?;
                }
            }
            if let Some(u) = write.update() {
                if let Some(t) = self.tables.get(u.table_name()) {
                    let names = u.expression_attribute_names.as_ref();
                    check(
                        &t.config,
                        u.table_name(),
                        "update expression",
                        Some(&u.update_expression),
                        names,
                        Refuse::Signed,
                    )?;
                    check(
                        &t.config,
                        u.table_name(),
                        "condition expression",
                        u.condition_expression.as_ref(),
                        names,
                        Refuse::Encrypted,
                    )?;
                }
            }
            out.push(write);
        }
        self.client
            .transact_write_items()
            .set_transact_items(Some(out))
            .send()
            .await
            .map_err(service("TransactWriteItems"))
    }
}

/// Refuse, before anything is sent, read expressions of a configured table
/// that name encrypted attributes.
fn refuse_encrypted<const N: usize>(
    table: Option<&Table>,
    name: &Option<String>,
    names: &Option<HashMap<String, String>>,
    expressions: [(&str, &Option<String>); N],
) -> Result<()> {
    let Some(t) = table else { return Ok(()) };
    let name = name.as_deref().unwrap_or_default();
    for (what, e) in expressions {
        check(&t.config, name, what, e.as_ref(), names.as_ref(), Refuse::Encrypted)?;
    }
    Ok(())
}

/// One page of a query or scan, decrypted when the table is configured.
fn page(
    table: Option<&Table>,
    items: Option<Vec<SdkItem>>,
    last_evaluated_key: Option<SdkItem>,
    scanned_count: i32,
) -> Result<Page> {
    let items = items.unwrap_or_default();
    Ok(Page {
        items: match table {
            None => items.into_iter().map(from_sdk_item).collect::<Result<_>>()?,
            Some(t) => t.decrypt(items)?,
        },
        last_evaluated_key,
        scanned_count,
    })
}
