//! `decrypt_item`: verify and decrypt one item under a table configuration.

use subtle::ConstantTimeEq;

use super::config::{CryptoAction, TableConfig};
use super::context::{item_context, serialize};
use super::crypt::{commitment, decrypt_field, message_keys, FieldKeys, Key32};
use super::encrypt::{included, to_context, Field};
use super::footer::{self, record_hash, RecordField};
use super::header::{Header, COMMITMENT_LEN};
use super::path::canonical_path;
use super::value::{AttributeValue, Item};
use super::{FOOTER_ATTRIBUTE, HEADER_ATTRIBUTE};
use crate::error::{Error, Result};
use crate::materials::{CommitmentPolicy, DecryptMaterialsRequest, DecryptionMaterials};

fn binary<'a>(item: &'a Item, name: &str) -> Result<&'a [u8]> {
    match item.get(name) {
        Some(AttributeValue::B(bytes)) => Ok(bytes),
        Some(_) => Err(Error::MalformedItem { reason: format!("`{name}` is not a binary value") }),
        None => Err(Error::MalformedItem { reason: format!("the item has no `{name}` attribute") }),
    }
}

fn altered(reason: impl Into<String>) -> Error {
    Error::ItemAuthentication { reason: reason.into() }
}

/// Verify `item` (written by [`encrypt_item`](super::encrypt_item) or the
/// AWS Database Encryption SDK) and decrypt its encrypted attributes.
///
/// Every attribute that is not allowed unsigned must be covered by the
/// item's signature; the result holds the decrypted item without
/// `aws_dbe_head` and `aws_dbe_foot`. Nothing is returned unless every
/// check passed and every attribute decrypted.
pub fn decrypt_item(config: &TableConfig, item: &Item) -> Result<Item> {
    let Verified { fields, stored, root, .. } = verify_item(config, item)?;
    let encrypted = fields.iter().filter(|f| f.action == CryptoAction::EncryptAndSign).count();
    let keys = FieldKeys::new(&root[..], encrypted)?;
    let mut decrypted: Vec<Option<AttributeValue>> = vec![None; item.len()];
    let encrypted_fields = fields.iter().zip(&stored).filter(|(f, _)| f.action == CryptoAction::EncryptAndSign);
    for (index, (field, stored)) in encrypted_fields.enumerate() {
        let plain = decrypt_field(&keys, index, &field.path, stored, field.name)?;
        decrypted[field.order] = Some(AttributeValue::from_terminal(plain.type_id, &plain.value, field.name)?);
    }
    // The item in name order without the header and footer, each decrypted
    // value in place of its ciphertext.
    Ok(item
        .iter()
        .zip(decrypted)
        .filter(|((name, _), _)| name.as_str() != HEADER_ATTRIBUTE && name.as_str() != FOOTER_ATTRIBUTE)
        .map(|((name, value), plain)| (name.clone(), plain.unwrap_or_else(|| value.clone())))
        .collect())
}

/// An item whose header, commitment and footer verified (nothing decrypted).
pub(crate) struct Verified<'a> {
    pub(crate) header: Header,
    /// The signed attributes in canonical order, encrypted ones as stored.
    pub(crate) fields: Vec<Field<'a>>,
    /// The stored bytes of each encrypted field (empty for the others).
    pub(crate) stored: Vec<&'a [u8]>,
    pub(crate) materials: DecryptionMaterials,
    /// The item's commitment key (it authenticates the header).
    pub(crate) commit_key: Key32,
    /// The root key of the item's field keys.
    pub(crate) root: Key32,
}

/// Every check of [`decrypt_item`] (header, trusted signers, commitment,
/// footer), without decrypting any attribute.
pub(crate) fn verify_item<'a>(config: &TableConfig, item: &'a Item) -> Result<Verified<'a>> {
    let header_bytes = binary(item, HEADER_ATTRIBUTE)?;
    let footer_bytes = binary(item, FOOTER_ATTRIBUTE)?;
    let header = Header::parse(header_bytes)?;
    super::signers::check_header(config.trusted_signers.as_deref(), &header)?;

    // (path, position in the item, name, value) of every signed attribute, in canonical order.
    let mut signed: Vec<(Vec<u8>, usize, &str, &AttributeValue)> = item
        .iter()
        .enumerate()
        .filter(|(_, (name, _))| !config.is_allowed_unsigned(name))
        .map(|(order, (n, v))| (canonical_path(&config.table_name, n), order, n.as_str(), v))
        .collect();
    signed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if signed.len() != header.legend.len() {
        return Err(altered(format!(
            "the item has {} signed attributes but was written with {}",
            signed.len(),
            header.legend.len()
        )));
    }
    let mut fields: Vec<Field<'_>> = Vec::with_capacity(signed.len());
    // The stored value of each field: encrypted ones are read in place.
    let mut stored: Vec<&[u8]> = Vec::with_capacity(signed.len());
    for ((path, order, name, value), legend) in signed.into_iter().zip(&header.legend) {
        let action = CryptoAction::from_legend(*legend).ok_or_else(|| altered("invalid legend"))?;
        let terminal = match (action, value) {
            (CryptoAction::EncryptAndSign, AttributeValue::B(bytes)) => {
                stored.push(bytes);
                super::value::Terminal { type_id: super::value::type_id::B, value: Vec::new() }
            }
            (CryptoAction::EncryptAndSign, _) => {
                return Err(altered(format!("encrypted attribute `{name}` is not binary")))
            }
            (_, value) => {
                stored.push(&[]);
                value.to_terminal(name)?
            }
        };
        fields.push(Field { order, name, action, path, terminal });
    }
    let key_value = |key: &str| {
        fields.iter().find(|f| f.name == key && f.action != CryptoAction::EncryptAndSign).map(|f| f.terminal.clone())
    };
    let pairs = item_context(config, header.version, key_value, &included(&fields))?;

    let request = DecryptMaterialsRequest::new(
        header.suite,
        CommitmentPolicy::RequireEncryptRequireDecrypt,
        header.edks.clone(),
        header.stored_context.clone(),
        Some(to_context(&pairs)),
    );
    let materials = config.cmm.decrypt_materials(request)?;
    if materials.algorithm_suite() != header.suite {
        return Err(Error::config("the materials manager changed the suite"));
    }
    let data_key = materials.data_key().ok_or_else(|| Error::config("no data key"))?;
    let signing_key =
        materials.symmetric_signing_key().ok_or_else(|| Error::config("the keyring gave no symmetric signing key"))?;
    for (k, v) in &pairs {
        if materials.encryption_context().get(k) != Some(v.as_str()) {
            return Err(Error::EncryptionContextMismatch { reason: format!("`{k}` differs") });
        }
    }

    let (commit_key, root) = message_keys(data_key, &header.message_id)?;
    let (body, stored_commitment) = header_bytes.split_at(header_bytes.len() - COMMITMENT_LEN);
    let expected = commitment(&commit_key[..], body)?;
    if !bool::from(expected.ct_eq(stored_commitment)) {
        return Err(Error::CommitmentMismatch);
    }

    let record = fields.iter().zip(&stored).map(|(f, s)| {
        let field = match f.action {
            CryptoAction::EncryptAndSign => RecordField::Encrypted(s),
            _ => RecordField::Plaintext(f.terminal.type_id, &f.terminal.value),
        };
        (f.path.as_slice(), field)
    });
    let hash = record_hash(header_bytes, &serialize(materials.encryption_context())?, record)?;
    let verification_key = match (header.suite.is_signing(), materials.verification_key()) {
        (true, Some(key)) => Some(key),
        (true, None) => return Err(Error::Signature { reason: "no verification key for a signed item".into() }),
        (false, _) => None,
    };
    if let (Some(trusted), Some(key)) = (config.trusted_signers.as_deref(), verification_key) {
        super::signers::check_key(trusted, key)?;
    }
    footer::verify(footer_bytes, &hash, header.edks.len(), signing_key, verification_key)?;
    Ok(Verified { header, fields, stored, materials, commit_key, root })
}
