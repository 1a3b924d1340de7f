//! Rewrapping one DynamoDB item: new EDKs in `aws_dbe_head`, the footer's
//! HMACs (and, for 0x6701, its signature) recomputed; every attribute value
//! stays byte for byte as it was (encrypted ones are not decrypted).

use std::sync::Arc;

use base64::Engine as _;

use crate::cmm::DefaultCmm;
use crate::error::{Error, Result};
use crate::items::decrypt::{verify_item, Verified};
use crate::items::footer::{self, record_hash, RecordField};
use crate::items::header::Header;
use crate::items::{AttributeValue, CryptoAction, Item, TableConfig};
use crate::materials::{EncryptionMaterials, FooterSigner, PUBLIC_KEY_FIELD};
use crate::Keyring;

/// Rewraps items of one table: `from` is the table's configuration with
/// the keys that open the items now; `to` wraps their data keys instead.
#[derive(Debug, Clone)]
pub struct ItemRewrapper {
    from: TableConfig,
    to: Arc<dyn Keyring>,
    /// `from` with the `to` keyrings: what opens an item already rewrapped.
    to_config: TableConfig,
    signer: Option<Arc<dyn FooterSigner>>,
}

impl ItemRewrapper {
    /// `to` is given the data key to wrap: a
    /// [`MultiKeyring`](crate::keyrings::MultiKeyring) there must have no generator.
    pub fn new(from: TableConfig, to: Arc<dyn Keyring>) -> Self {
        let to_config = TableConfig { cmm: Arc::new(DefaultCmm::new(to.clone())), ..from.clone() };
        ItemRewrapper { from, to, to_config, signer: None }
    }

    /// Rewrap items of the signing suite 0x6701 too: this long-lived signer
    /// signs the new footer and its public key replaces the item's.
    pub fn with_signer(mut self, signer: Arc<dyn FooterSigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// [`rewrap`](Self::rewrap) `item`, or `None` when it is already under
    /// the new keys (the `from` keyrings no longer open it, the `to` ones
    /// do), so that it is never rewrapped twice. An item the `from` keyrings
    /// still open is rewrapped. On any other failure the error of the
    /// `from` keyrings is returned.
    pub fn rewrap_or_skip(&self, item: &Item) -> Result<Option<Item>> {
        match self.rewrap(item) {
            Ok(new) => Ok(Some(new)),
            Err(_) if verify_item(&self.to_config, item).is_ok() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Verify `item` with the `from` configuration (header, commitment,
    /// footer; nothing is decrypted) and return it with a new header and
    /// footer whose data key is wrapped by the `to` keyrings.
    pub fn rewrap(&self, item: &Item) -> Result<Item> {
        let Verified { header, fields, stored: values, materials, commit_key, .. } = verify_item(&self.from, item)?;
        let suite = header.suite;
        let mut full = materials.encryption_context().clone();
        let mut stored = header.stored_context.clone();
        let signer = match (suite.is_signing(), &self.signer) {
            (false, _) => None,
            (true, None) => {
                return Err(Error::Signature {
                    reason: format!(
                        "suite 0x{:04X} signs each item with a key of its own, which was not kept: the item \
                         cannot be rewrapped without a long-lived signer",
                        suite.id()
                    ),
                })
            }
            (true, Some(signer)) => {
                let public = base64::engine::general_purpose::STANDARD.encode(signer.public_key());
                if stored.contains_key(PUBLIC_KEY_FIELD) {
                    stored.insert_reserved(PUBLIC_KEY_FIELD, public.clone());
                }
                full.insert_reserved(PUBLIC_KEY_FIELD, public);
                Some(&**signer)
            }
        };
        let data_key = materials.data_key().ok_or_else(|| Error::config("no data key"))?;
        let mut enc = EncryptionMaterials::new(suite, full.clone());
        enc.set_data_key(data_key.clone())?;
        let enc = self.to.on_encrypt(enc)?;
        let edks = enc.encrypted_data_keys();
        if edks.is_empty() || edks.len() > 255 {
            return Err(Error::TooManyEncryptedDataKeys { count: edks.len(), max: 255 });
        }
        if enc.symmetric_signing_keys().len() != edks.len() {
            return Err(Error::keyring(
                self.to.description(),
                "no symmetric signing key for every encrypted data key (items need keyrings that wrap \
                 through an intermediate key)",
            ));
        }
        let new_header = Header {
            version: header.version,
            suite,
            message_id: header.message_id,
            legend: header.legend.clone(),
            stored_context: stored,
            edks: edks.to_vec(),
        };
        let header_bytes = new_header.serialize(&commit_key[..])?;
        let record = fields.iter().zip(&values).map(|(f, v)| {
            let field = match f.action {
                CryptoAction::EncryptAndSign => RecordField::Encrypted(v),
                _ => RecordField::Plaintext(f.terminal.type_id, &f.terminal.value),
            };
            (f.path.as_slice(), field)
        });
        let hash = record_hash(&header_bytes, &crate::items::context::serialize(&full)?, record)?;
        let footer = footer::create(&hash, enc.symmetric_signing_keys(), signer)?;
        let mut out = item.clone();
        out.insert(crate::items::HEADER_ATTRIBUTE.to_owned(), AttributeValue::B(header_bytes));
        out.insert(crate::items::FOOTER_ATTRIBUTE.to_owned(), AttributeValue::B(footer));
        Ok(out)
    }
}
