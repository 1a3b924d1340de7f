//! `encrypt_item`: one item under a table configuration.

use super::config::{CryptoAction, TableConfig};
use super::context::{item_context, serialize};
use super::crypt::{encrypt_field, message_keys, FieldKeys};
use super::footer::{self, record_hash, RecordField};
use super::header::{Header, MESSAGE_ID_LEN};
use super::path::canonical_path;
use super::value::{AttributeValue, Item, Terminal};
use super::{FOOTER_ATTRIBUTE, HEADER_ATTRIBUTE};
use crate::error::{Error, Result};
use crate::materials::{CommitmentPolicy, EncryptionContext, EncryptionMaterials, EncryptionMaterialsRequest};

/// One attribute of the item with what is done to it.
pub(crate) struct Field<'a> {
    /// Position of the attribute in the item (its name order).
    pub(crate) order: usize,
    pub(crate) name: &'a str,
    pub(crate) action: CryptoAction,
    pub(crate) path: Vec<u8>,
    pub(crate) terminal: Terminal,
}

/// The context pairs as an encryption context.
pub(crate) fn to_context(pairs: &[(String, String)]) -> EncryptionContext {
    let mut context = EncryptionContext::new();
    for (k, v) in pairs {
        context.insert_reserved(k, v.clone());
    }
    context
}

/// The attributes included in the context (version 2), as name and terminal.
pub(crate) fn included<'a>(fields: &'a [Field<'a>]) -> Vec<(&'a str, &'a Terminal)> {
    let include = CryptoAction::SignAndIncludeInEncryptionContext;
    fields.iter().filter(|f| f.action == include).map(|f| (f.name, &f.terminal)).collect()
}

/// Encrypt and sign `item` as `config` says. The result holds every
/// attribute (encrypted ones as `B` values) plus `aws_dbe_head` and
/// `aws_dbe_foot`.
pub fn encrypt_item(config: &TableConfig, item: &Item) -> Result<Item> {
    let mut fields: Vec<Field<'_>> = Vec::with_capacity(item.len());
    let mut plaintext_len = 0u64;
    for (order, (name, value)) in item.iter().enumerate() {
        let action = config.action_for(name)?;
        if action.is_signed() {
            let path = canonical_path(&config.table_name, name);
            let terminal = value.to_terminal(name)?;
            if action == CryptoAction::EncryptAndSign {
                plaintext_len = plaintext_len.saturating_add(terminal.value.len() as u64);
            }
            fields.push(Field { order, name, action, path, terminal });
        }
    }
    fields.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    let key_value = |key: &str| fields.iter().find(|f| f.name == key).map(|f| f.terminal.clone());
    let pairs = item_context(config, config.version, key_value, &included(&fields))?;

    let mut request =
        EncryptionMaterialsRequest::new(to_context(&pairs), CommitmentPolicy::RequireEncryptRequireDecrypt);
    request.algorithm_suite = Some(config.suite);
    // What the data key protects: lets a caching CMM count it.
    request.max_plaintext_length = Some(plaintext_len);
    let materials = config.cmm.get_encryption_materials(request)?;
    check_materials(config, &materials)?;
    let data_key = materials.data_key().ok_or_else(|| Error::config("no data key"))?;

    let mut stored_context = materials.encryption_context().clone();
    for key in pairs
        .iter()
        .map(|p| p.0.as_str())
        .chain(materials.required_encryption_context_keys().iter().map(String::as_str))
    {
        stored_context.remove(key);
    }
    let mut message_id = [0u8; MESSAGE_ID_LEN];
    crate::crypto::fill_random(&mut message_id)?;
    let include = CryptoAction::SignAndIncludeInEncryptionContext;
    let header = Header {
        version: if fields.iter().any(|f| f.action == include) { 2 } else { 1 },
        suite: config.suite,
        message_id,
        legend: fields.iter().filter_map(|f| f.action.legend()).collect(),
        stored_context,
        edks: materials.encrypted_data_keys().to_vec(),
    };
    let (commit_key, root) = message_keys(data_key, &message_id)?;
    let header_bytes = header.serialize(&commit_key[..])?;

    let encrypted = fields.iter().filter(|f| f.action == CryptoAction::EncryptAndSign).count();
    let keys = FieldKeys::new(&root[..], encrypted)?;
    let mut stored: Vec<Option<Vec<u8>>> = Vec::with_capacity(fields.len());
    let mut index = 0;
    for field in &fields {
        if field.action == CryptoAction::EncryptAndSign {
            stored.push(Some(encrypt_field(&keys, index, &field.path, &field.terminal)?));
            index += 1;
        } else {
            stored.push(None);
        }
    }
    let record = fields.iter().zip(&stored).map(|(f, s)| {
        let field = match s {
            Some(bytes) => RecordField::Encrypted(bytes),
            None => RecordField::Plaintext(f.terminal.type_id, &f.terminal.value),
        };
        (f.path.as_slice(), field)
    });
    let hash = record_hash(&header_bytes, &serialize(materials.encryption_context())?, record)?;
    let footer = footer::create(&hash, materials.symmetric_signing_keys(), materials.signing_key().map(|s| &**s))?;

    // The item in name order, each encrypted value in place of its plaintext.
    let mut replaced: Vec<Option<Vec<u8>>> = vec![None; item.len()];
    for (field, bytes) in fields.iter().zip(stored) {
        replaced[field.order] = bytes;
    }
    let mut out: Item = item
        .iter()
        .zip(replaced)
        .map(|((name, value), bytes)| (name.clone(), bytes.map_or_else(|| value.clone(), AttributeValue::B)))
        .collect();
    out.insert(HEADER_ATTRIBUTE.to_owned(), AttributeValue::B(header_bytes));
    out.insert(FOOTER_ATTRIBUTE.to_owned(), AttributeValue::B(footer));
    Ok(out)
}

fn check_materials(config: &TableConfig, materials: &EncryptionMaterials) -> Result<()> {
    if materials.algorithm_suite() != config.suite {
        return Err(Error::config(format!(
            "the materials use suite 0x{:04X} but 0x{:04X} was configured",
            materials.algorithm_suite().id(),
            config.suite.id()
        )));
    }
    let edks = materials.encrypted_data_keys().len();
    if edks == 0 || edks > 255 {
        return Err(Error::TooManyEncryptedDataKeys { count: edks, max: 255 });
    }
    if materials.symmetric_signing_keys().len() != edks {
        return Err(Error::config(
            "the keyrings gave no symmetric signing key for every encrypted data key \
             (a keyring that does not wrap through an intermediate key cannot encrypt items)",
        ));
    }
    if config.suite.is_signing() != materials.signing_key().is_some() {
        return Err(Error::config("the materials' signing key does not fit the suite"));
    }
    Ok(())
}
