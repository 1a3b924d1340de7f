//! What a reader needs to know about a legacy table: its name, its key
//! attributes, the attribute actions its writers used, and the materials.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::super::config::{CryptoAction, TableConfig};
use crate::error::{Error, Result};
use crate::master_keys::{LegacyUnwrapKey, LegacyVerifyKey};

/// Where a legacy item's content key comes from.
#[derive(Clone)]
pub(crate) enum ContentKey {
    /// The wrapped materials provider: the key in the material description,
    /// unwrapped by this key.
    Wrapped(Arc<dyn LegacyUnwrapKey>),
    /// The static materials provider: this AES key, or none (sign-only).
    Static(Option<Arc<Zeroizing<Vec<u8>>>>),
}

/// The keys that open legacy items: as the legacy client's wrapped
/// materials provider (an unwrapping key and a verification key) or its
/// static materials provider (an AES content key, or none for sign-only
/// tables, and a verification key). `Debug` names the keys' kinds only.
#[derive(Clone)]
pub struct LegacyMaterials {
    pub(crate) content: ContentKey,
    pub(crate) verify: Arc<dyn LegacyVerifyKey>,
}

impl fmt::Debug for LegacyMaterials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let content = match &self.content {
            ContentKey::Wrapped(k) => format!("wrapped ({})", k.wrap_algorithm().name()),
            ContentKey::Static(Some(k)) => format!("static AES-{}", k.len() * 8),
            ContentKey::Static(None) => "none (sign-only)".to_owned(),
        };
        f.debug_struct("LegacyMaterials")
            .field("content_key", &content)
            .field("signing", &self.verify.signing_algorithm().name())
            .finish()
    }
}

impl LegacyMaterials {
    /// The wrapped materials provider: content keys unwrapped by `unwrap`
    /// (AES key wrap or RSA-OAEP), signatures verified by `verify` (HMAC-SHA256
    /// or SHA256withRSA). Either key may be in memory or in a token.
    pub fn wrapped(unwrap: impl LegacyUnwrapKey + 'static, verify: impl LegacyVerifyKey + 'static) -> Self {
        LegacyMaterials { content: ContentKey::Wrapped(Arc::new(unwrap)), verify: Arc::new(verify) }
    }

    /// The static materials provider: attributes encrypted directly under
    /// the AES key `content_key` (16, 24 or 32 bytes).
    pub fn static_key(content_key: &[u8], verify: impl LegacyVerifyKey + 'static) -> Result<Self> {
        if !matches!(content_key.len(), 16 | 24 | 32) {
            return Err(Error::InvalidKey {
                reason: format!("legacy AES content key of {} bytes (expected 16, 24 or 32)", content_key.len()),
            });
        }
        let key = Arc::new(Zeroizing::new(content_key.to_vec()));
        Ok(LegacyMaterials { content: ContentKey::Static(Some(key)), verify: Arc::new(verify) })
    }

    /// The static materials provider without an encryption key: items whose
    /// attributes are signed only.
    pub fn sign_only(verify: impl LegacyVerifyKey + 'static) -> Self {
        LegacyMaterials { content: ContentKey::Static(None), verify: Arc::new(verify) }
    }
}

/// How the legacy DynamoDB Encryption Client wrote one table: name (signed
/// into every item), key attributes (always signed, never encrypted), the
/// attribute actions (encrypt-and-sign, sign-only, do-nothing) and the
/// materials that open its items.
#[derive(Clone, Debug)]
pub struct LegacyConfig {
    pub(crate) table_name: String,
    pub(crate) key_names: Vec<String>,
    pub(crate) actions: BTreeMap<String, CryptoAction>,
    pub(crate) default_action: Option<CryptoAction>,
    pub(crate) unsigned: Vec<String>,
    pub(crate) unsigned_prefix: Option<String>,
    pub(crate) materials: LegacyMaterials,
}

impl LegacyConfig {
    /// A configuration for table `table_name` with partition key
    /// `partition_key`; every other attribute is encrypted and signed (the
    /// legacy client's default) unless set otherwise.
    pub fn builder(
        table_name: impl Into<String>,
        partition_key: impl Into<String>,
        materials: LegacyMaterials,
    ) -> LegacyConfigBuilder {
        LegacyConfigBuilder {
            config: LegacyConfig {
                table_name: table_name.into(),
                key_names: vec![partition_key.into()],
                actions: BTreeMap::new(),
                default_action: Some(CryptoAction::EncryptAndSign),
                unsigned: Vec::new(),
                unsigned_prefix: None,
                materials,
            },
        }
    }

    /// The legacy configuration matching a new-format table configuration:
    /// same table name, keys and actions (sign-and-include becomes
    /// sign-only, attributes allowed unsigned are do-nothing), so that a
    /// table migrating item by item reads both formats with one set of
    /// actions.
    pub fn from_table(table: &TableConfig, materials: LegacyMaterials) -> Result<Self> {
        let mut actions = BTreeMap::new();
        for (name, action) in &table.actions {
            actions.insert(name.clone(), legacy_action(*action));
        }
        let config = LegacyConfig {
            table_name: table.table_name.clone(),
            key_names: table.key_names().map(str::to_owned).collect(),
            actions,
            default_action: table.default_action.map(legacy_action),
            unsigned: table.allowed_unsigned.clone(),
            unsigned_prefix: table.allowed_unsigned_prefix.clone(),
            materials,
        };
        config.check()?;
        Ok(config)
    }

    /// The table name.
    pub fn table_name(&self) -> &str {
        &self.table_name
    }

    /// The action for attribute `name`: as set, else do-nothing when allowed
    /// unsigned, else the default; key attributes sign at most.
    pub(crate) fn action(&self, name: &str) -> Result<CryptoAction> {
        let action = if let Some(a) = self.actions.get(name) {
            *a
        } else if self.unsigned.iter().any(|u| u == name)
            || self.unsigned_prefix.as_deref().is_some_and(|p| name.starts_with(p))
        {
            CryptoAction::DoNothing
        } else {
            self.default_action.ok_or_else(|| Error::MalformedItem {
                reason: format!("no crypto action is configured for attribute `{name}`"),
            })?
        };
        // As the legacy client's `set_index_keys`: a key attribute is never encrypted.
        Ok(if action == CryptoAction::EncryptAndSign && self.key_names.iter().any(|k| k == name) {
            CryptoAction::SignOnly
        } else {
            action
        })
    }

    fn check(&self) -> Result<()> {
        for key in &self.key_names {
            if self.actions.get(key) == Some(&CryptoAction::EncryptAndSign) {
                return Err(Error::config(format!("key attribute `{key}` cannot be encrypted")));
            }
        }
        Ok(())
    }
}

fn legacy_action(action: CryptoAction) -> CryptoAction {
    match action {
        CryptoAction::SignAndIncludeInEncryptionContext => CryptoAction::SignOnly,
        other => other,
    }
}

/// Builds a [`LegacyConfig`].
#[derive(Debug)]
pub struct LegacyConfigBuilder {
    config: LegacyConfig,
}

impl LegacyConfigBuilder {
    /// The sort key attribute.
    pub fn sort_key(mut self, name: impl Into<String>) -> Self {
        self.config.key_names.push(name.into());
        self
    }

    /// The action for one attribute: [`CryptoAction::EncryptAndSign`],
    /// [`CryptoAction::SignOnly`] or [`CryptoAction::DoNothing`].
    pub fn action(mut self, name: impl Into<String>, action: CryptoAction) -> Self {
        self.config.actions.insert(name.into(), action);
        self
    }

    /// The action for attributes not named by [`action`](Self::action)
    /// (default: encrypt-and-sign).
    pub fn default_action(mut self, action: CryptoAction) -> Self {
        self.config.default_action = Some(action);
        self
    }

    /// Check the actions (no sign-and-include, no encrypted key attribute).
    pub fn build(self) -> Result<LegacyConfig> {
        let c = &self.config;
        if let Some((name, _)) = c.actions.iter().find(|(_, a)| **a == CryptoAction::SignAndIncludeInEncryptionContext)
        {
            return Err(Error::config(format!(
                "attribute `{name}`: the legacy format has no sign-and-include action (use sign-only)"
            )));
        }
        if c.default_action == Some(CryptoAction::SignAndIncludeInEncryptionContext) {
            return Err(Error::config("the legacy format has no sign-and-include action (use sign-only)"));
        }
        c.check()?;
        Ok(self.config)
    }
}
