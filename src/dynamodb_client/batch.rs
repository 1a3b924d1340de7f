//! `BatchWriteItem` and `BatchGetItem` over any number of items.

use std::time::Duration;

use aws_sdk_dynamodb::types::{DeleteRequest, KeysAndAttributes, PutRequest, WriteRequest};

use super::{service, EncryptedClient, SdkItem};
use crate::error::{Error, Result};
use crate::items::{from_sdk_item, to_sdk_item, Item};

/// DynamoDB's limits per request.
const WRITES_PER_REQUEST: usize = 25;
const GETS_PER_REQUEST: usize = 100;
/// Resends of unprocessed items or keys before giving up.
const MAX_RESENDS: u32 = 10;

/// One write of [`batch_write_item`](EncryptedClient::batch_write_item).
#[derive(Clone, Debug)]
pub enum Write {
    /// Put this item (plaintext; encrypted before sending).
    Put(Item),
    /// Delete the item with this primary key.
    Delete(Item),
}

/// What a batch call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchReport {
    /// Items written, or read.
    pub items: usize,
    /// Requests sent, resends included.
    pub requests: usize,
    /// Resends of unprocessed items or keys.
    pub resends: usize,
}

fn pause(attempt: u32) -> Duration {
    Duration::from_millis(10u64 << attempt.min(6))
}

impl EncryptedClient {
    /// Write `writes` to `table`: every put encrypted first (all, with
    /// [`encrypt_items`](crate::items::encrypt_items), before anything is
    /// sent), then sent in requests of 25 as DynamoDB requires; unprocessed
    /// items are sent again (up to 10 times, with a growing pause).
    pub async fn batch_write_item(&self, table: &str, writes: Vec<Write>) -> Result<BatchReport> {
        let (mut puts, mut order) = (Vec::new(), Vec::with_capacity(writes.len()));
        for w in writes {
            match w {
                Write::Put(item) => {
                    order.push(None);
                    puts.push(item);
                }
                Write::Delete(key) => order.push(Some(to_sdk_item(&key))),
            }
        }
        let stored = match self.tables.get(table) {
            Some(t) => t.encrypt(&puts)?,
            None => puts.iter().map(to_sdk_item).collect(),
        };
        let mut stored = stored.into_iter();
        let requests: Vec<WriteRequest> = order
            .into_iter()
            .map(|o| -> Result<WriteRequest> {
                Ok(match o {
                    None => {
                        let item = stored.next().unwrap_or_default();
                        let put = PutRequest::builder().set_item(Some(item)).build().map_err(build)?;
                        WriteRequest::builder().put_request(put).build()
                    }
                    Some(key) => {
                        let delete = DeleteRequest::builder().set_key(Some(key)).build().map_err(build)?;
                        WriteRequest::builder().delete_request(delete).build()
                    }
                })
            })
            .collect::<Result<_>>()?;
        let mut report = BatchReport { items: requests.len(), ..BatchReport::default() };
        for chunk in requests.chunks(WRITES_PER_REQUEST) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                report.requests += 1;
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(table, pending)
                    .send()
                    .await
                    .map_err(service("BatchWriteItem"))?;
                pending = out.unprocessed_items.and_then(|mut u| u.remove(table)).unwrap_or_default();
                if !pending.is_empty() {
                    before_resend(&self.client, "BatchWriteItem", pending.len(), &mut attempt, &mut report).await?;
                }
            }
        }
        Ok(report)
    }

    /// Read the items with primary keys `keys` from `table`, in requests of
    /// 100 (unprocessed keys sent again, up to 10 times), decrypted and
    /// verified together. Missing items are left out; the order is the
    /// server's.
    pub async fn batch_get_item(&self, table: &str, keys: Vec<Item>) -> Result<(Vec<Item>, BatchReport)> {
        let keys: Vec<SdkItem> = keys.iter().map(to_sdk_item).collect();
        let mut report = BatchReport::default();
        let mut stored = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(GETS_PER_REQUEST) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                report.requests += 1;
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build()
                    .map_err(build)?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(table, request)
                    .send()
                    .await
                    .map_err(service("BatchGetItem"))?;
                stored.extend(out.responses.and_then(|mut r| r.remove(table)).unwrap_or_default());
                pending = out.unprocessed_keys.and_then(|mut u| u.remove(table)).map(|k| k.keys).unwrap_or_default();
                if !pending.is_empty() {
                    before_resend(&self.client, "BatchGetItem", pending.len(), &mut attempt, &mut report).await?;
                }
            }
        }
        report.items = stored.len();
        let items = match self.tables.get(table) {
            Some(t) => t.decrypt(stored)?,
            None => stored.into_iter().map(from_sdk_item).collect::<Result<_>>()?,
        };
        Ok((items, report))
    }
}

fn build(e: aws_sdk_dynamodb::error::BuildError) -> Error {
    Error::config(format!("DynamoDB request: {e}"))
}

fn unprocessed(operation: &'static str, left: usize) -> Error {
    Error::DynamoDb {
        operation,
        code: None,
        reason: format!("{left} items still unprocessed after {MAX_RESENDS} resends"),
    }
}

/// Count one more resend of `left` unprocessed entries and wait before it;
/// an error once `MAX_RESENDS` were made.
async fn before_resend(
    client: &aws_sdk_dynamodb::Client,
    operation: &'static str,
    left: usize,
    attempt: &mut u32,
    report: &mut BatchReport,
) -> Result<()> {
    *attempt += 1;
    if *attempt > MAX_RESENDS {
        return Err(unprocessed(operation, left));
    }
    report.resends += 1;
    sleep(client, pause(*attempt)).await;
    Ok(())
}

/// A pause on the client's own sleep implementation (the SDK's Tokio sleep).
async fn sleep(client: &aws_sdk_dynamodb::Client, d: Duration) {
    use aws_sdk_dynamodb::config::AsyncSleep;
    if let Some(s) = client.config().sleep_impl() {
        s.sleep(d).await;
    }
}
