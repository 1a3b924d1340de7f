//! Crypto actions and the table configuration.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::cmm::DefaultCmm;
use crate::error::{Error, Result};
use crate::materials::{AlgorithmSuite, CryptographicMaterialsManager, FooterSigner, Keyring};

/// Names starting with this are the format's own (`aws_dbe_head`, `aws_dbe_foot`, ...).
pub const RESERVED_PREFIX: &str = "aws_dbe_";

/// What happens to an attribute on encrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CryptoAction {
    /// Encrypted and covered by the signature.
    EncryptAndSign,
    /// Left in plaintext, covered by the signature.
    SignOnly,
    /// Left in plaintext, covered by the signature and bound into the
    /// encryption context (configuration version 2).
    SignAndIncludeInEncryptionContext,
    /// Left alone: neither encrypted nor signed. Such attributes must be
    /// allowed unsigned (by name or prefix), so that decrypt knows too.
    DoNothing,
}

impl CryptoAction {
    /// True for the actions that sign.
    pub fn is_signed(self) -> bool {
        self != CryptoAction::DoNothing
    }

    /// The header legend byte of a signed action.
    pub(crate) fn legend(self) -> Option<u8> {
        match self {
            CryptoAction::EncryptAndSign => Some(b'e'),
            CryptoAction::SignOnly => Some(b's'),
            CryptoAction::SignAndIncludeInEncryptionContext => Some(b'c'),
            CryptoAction::DoNothing => None,
        }
    }

    /// The action of a header legend byte.
    pub(crate) fn from_legend(byte: u8) -> Option<Self> {
        match byte {
            b'e' => Some(CryptoAction::EncryptAndSign),
            b's' => Some(CryptoAction::SignOnly),
            b'c' => Some(CryptoAction::SignAndIncludeInEncryptionContext),
            _ => None,
        }
    }

    /// The SDK's name, e.g. `ENCRYPT_AND_SIGN`.
    pub fn name(self) -> &'static str {
        match self {
            CryptoAction::EncryptAndSign => "ENCRYPT_AND_SIGN",
            CryptoAction::SignOnly => "SIGN_ONLY",
            CryptoAction::SignAndIncludeInEncryptionContext => "SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT",
            CryptoAction::DoNothing => "DO_NOTHING",
        }
    }
}

impl fmt::Display for CryptoAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CryptoAction {
    type Err = Error;

    /// `ENCRYPT_AND_SIGN`, `encrypt-and-sign`, `EncryptAndSign`, ... (case
    /// and separators ignored), or the command's short names `encrypt`,
    /// `sign`, `sign-include` and `nothing`.
    fn from_str(text: &str) -> Result<Self> {
        let norm: String = text.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
        match norm.as_str() {
            "encryptandsign" | "encrypt" => Ok(CryptoAction::EncryptAndSign),
            "signonly" | "sign" => Ok(CryptoAction::SignOnly),
            "signandincludeinencryptioncontext" | "signinclude" => Ok(CryptoAction::SignAndIncludeInEncryptionContext),
            "donothing" | "nothing" => Ok(CryptoAction::DoNothing),
            _ => Err(Error::config(format!(
                "unknown crypto action `{text}` (expected encrypt, sign, sign-include or nothing, \
                 or ENCRYPT_AND_SIGN, SIGN_ONLY, SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT, DO_NOTHING)"
            ))),
        }
    }
}

/// How the items of one table are encrypted: the logical table name, the
/// key attributes, an action per attribute, which attributes are allowed
/// unsigned, the suite and the materials manager.
#[derive(Clone)]
pub struct TableConfig {
    pub(crate) table_name: String,
    pub(crate) partition_key: String,
    pub(crate) sort_key: Option<String>,
    pub(crate) actions: BTreeMap<String, CryptoAction>,
    pub(crate) default_action: Option<CryptoAction>,
    pub(crate) allowed_unsigned: Vec<String>,
    pub(crate) allowed_unsigned_prefix: Option<String>,
    pub(crate) suite: AlgorithmSuite,
    pub(crate) cmm: Arc<dyn CryptographicMaterialsManager>,
    pub(crate) version: u8,
    /// Compressed P-384 points of the trusted signers, if pinning is on.
    pub(crate) trusted_signers: Option<Arc<[Vec<u8>]>>,
}

impl fmt::Debug for TableConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableConfig")
            .field("table_name", &self.table_name)
            .field("partition_key", &self.partition_key)
            .field("sort_key", &self.sort_key)
            .field("actions", &self.actions)
            .field("default_action", &self.default_action)
            .field("allowed_unsigned", &self.allowed_unsigned)
            .field("allowed_unsigned_prefix", &self.allowed_unsigned_prefix)
            .field("suite", &format_args!("0x{:04X}", self.suite.id()))
            .field("version", &self.version)
            .field("trusted_signers", &self.trusted_signers.as_ref().map(|t| t.len()))
            .finish_non_exhaustive()
    }
}

impl TableConfig {
    /// Start a configuration for `table_name` whose partition key is `partition_key`.
    pub fn builder(table_name: impl Into<String>, partition_key: impl Into<String>) -> TableConfigBuilder {
        TableConfigBuilder {
            table_name: table_name.into(),
            partition_key: partition_key.into(),
            sort_key: None,
            actions: BTreeMap::new(),
            default_action: None,
            allowed_unsigned: Vec::new(),
            allowed_unsigned_prefix: None,
            suite: AlgorithmSuite::DbeAes256GcmHkdfSha512CommitKeyEcdsaP384SymsigHmacSha384,
            source: None,
            signer: None,
            trusted_signers: None,
        }
    }

    /// The logical table name.
    pub fn table_name(&self) -> &str {
        &self.table_name
    }

    /// The configuration version: 2 when some action is
    /// `SignAndIncludeInEncryptionContext`, 1 otherwise.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The suite used to encrypt.
    pub fn suite(&self) -> AlgorithmSuite {
        self.suite
    }

    /// True when `name` is allowed unsigned (by name, by prefix, or as one
    /// of the format's own attributes): outside the signature on decrypt.
    pub fn is_allowed_unsigned(&self, name: &str) -> bool {
        name.starts_with(RESERVED_PREFIX)
            || self.allowed_unsigned.iter().any(|a| a == name)
            || self.allowed_unsigned_prefix.as_deref().is_some_and(|p| name.starts_with(p))
    }

    /// The action for attribute `name` on encrypt.
    pub(crate) fn action_for(&self, name: &str) -> Result<CryptoAction> {
        if name.starts_with(RESERVED_PREFIX) {
            return Err(Error::MalformedItem {
                reason: format!("attribute `{name}` uses the reserved prefix `{RESERVED_PREFIX}`"),
            });
        }
        if let Some(action) = self.actions.get(name) {
            return Ok(*action);
        }
        if self.is_allowed_unsigned(name) {
            return Ok(CryptoAction::DoNothing);
        }
        self.default_action.ok_or_else(|| Error::MalformedItem {
            reason: format!("no crypto action is configured for attribute `{name}`"),
        })
    }

    /// The key attribute names (partition, then sort if any).
    pub(crate) fn key_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.partition_key.as_str()).chain(self.sort_key.as_deref())
    }
}

/// Builds a [`TableConfig`]; [`build`](Self::build) checks the key rules.
#[must_use]
pub struct TableConfigBuilder {
    table_name: String,
    partition_key: String,
    sort_key: Option<String>,
    actions: BTreeMap<String, CryptoAction>,
    default_action: Option<CryptoAction>,
    allowed_unsigned: Vec<String>,
    allowed_unsigned_prefix: Option<String>,
    suite: AlgorithmSuite,
    source: Option<Source>,
    signer: Option<Arc<dyn FooterSigner>>,
    trusted_signers: Option<Vec<Vec<u8>>>,
}

/// Where a configuration gets its materials.
enum Source {
    Keyring(Arc<dyn Keyring>),
    Cmm(Arc<dyn CryptographicMaterialsManager>),
}

impl TableConfigBuilder {
    /// The sort key attribute.
    pub fn sort_key(mut self, name: impl Into<String>) -> Self {
        self.sort_key = Some(name.into());
        self
    }

    /// The action for one attribute.
    pub fn action(mut self, name: impl Into<String>, action: CryptoAction) -> Self {
        self.actions.insert(name.into(), action);
        self
    }

    /// The action for attributes not named (otherwise they are refused).
    pub fn default_action(mut self, action: CryptoAction) -> Self {
        self.default_action = Some(action);
        self
    }

    /// Allow `name` unsigned: never signed on encrypt, never checked on decrypt.
    pub fn allowed_unsigned(mut self, name: impl Into<String>) -> Self {
        self.allowed_unsigned.push(name.into());
        self
    }

    /// Allow every attribute whose name starts with `prefix` unsigned.
    pub fn allowed_unsigned_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.allowed_unsigned_prefix = Some(prefix.into());
        self
    }

    /// The suite to encrypt with: 0x6700 or 0x6701 (the default).
    pub fn suite(mut self, suite: AlgorithmSuite) -> Self {
        self.suite = suite;
        self
    }

    /// Get materials from `keyring` (through a [`DefaultCmm`]).
    pub fn keyring<K: Keyring + 'static>(mut self, keyring: K) -> Self {
        self.source = Some(Source::Keyring(Arc::new(keyring)));
        self
    }

    /// Get materials from `cmm`.
    pub fn cmm(mut self, cmm: Arc<dyn CryptographicMaterialsManager>) -> Self {
        self.source = Some(Source::Cmm(cmm));
        self
    }

    /// Sign 0x6701 items with this long-lived ECDSA P-384 key (a
    /// [`Pkcs11Signer`](crate::pkcs11::Pkcs11Signer) in a token, or a
    /// [`SoftwareSigner`](crate::crypto::SoftwareSigner) in memory) instead of
    /// a fresh key per item. Its public key is stored in each item's header
    /// as `aws-crypto-public-key`, as the SDK stores its per-item keys, so
    /// any reader verifies the items as before, and readers that pin it
    /// ([`trusted_signers`](Self::trusted_signers)) accept only them.
    ///
    /// Needs the materials from a [`keyring`](Self::keyring); with a
    /// [`cmm`](Self::cmm), give the signer to its
    /// [`DefaultCmm::with_signer`] instead. [`build`](Self::build) refuses a
    /// signer that is not on P-384 or a suite that does not sign.
    pub fn signer(mut self, signer: Arc<dyn FooterSigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// On decrypt, accept only items signed by one of these keys (SEC1 P-384
    /// public points, compressed or not; see
    /// [`trusted_signer_from_pem`](crate::pkcs11::trusted_signer_from_pem) and
    /// [`trusted_signer_from_token`](crate::pkcs11::trusted_signer_from_token)).
    ///
    /// With a trusted set, [`decrypt_item`](super::decrypt_item) fails with
    /// [`Error::Signature`] before any keyring is called when the item is of
    /// the unsigned suite 0x6700 or its `aws-crypto-public-key` is not in the
    /// set. An empty set refuses every item.
    pub fn trusted_signers(mut self, keys: Vec<Vec<u8>>) -> Self {
        self.trusted_signers = Some(keys);
        self
    }

    /// Check the configuration: a keyring or CMM, an item suite, no
    /// reserved names, key attributes signed with the version's key action
    /// (`SignOnly` in version 1, `SignAndIncludeInEncryptionContext` in 2;
    /// set to it when not given), `DoNothing` exactly for the attributes
    /// allowed unsigned.
    pub fn build(self) -> Result<TableConfig> {
        let cmm: Arc<dyn CryptographicMaterialsManager> = match (self.source, self.signer) {
            (None, _) => return Err(Error::config("a table configuration needs a keyring or a CMM")),
            (Some(Source::Cmm(cmm)), None) => cmm,
            (Some(Source::Keyring(keyring)), None) => Arc::new(DefaultCmm::new(keyring)),
            (Some(Source::Keyring(keyring)), Some(signer)) => {
                super::signers::check_signer(self.suite, &*signer)?;
                Arc::new(DefaultCmm::new(keyring).with_signer(signer))
            }
            (Some(Source::Cmm(_)), Some(_)) => {
                return Err(Error::config(
                    "a signer needs a keyring; with a CMM, give the signer to its DefaultCmm (with_signer)",
                ))
            }
        };
        let trusted_signers = self.trusted_signers.map(super::signers::compress_trusted).transpose()?;
        if !self.suite.is_item_suite() {
            return Err(Error::config(format!("suite 0x{:04X} is not an item suite", self.suite.id())));
        }
        if self.table_name.is_empty() || self.partition_key.is_empty() || self.sort_key.as_deref() == Some("") {
            return Err(Error::config("the table name and key attribute names must not be empty"));
        }
        if self.sort_key.as_deref() == Some(self.partition_key.as_str()) {
            return Err(Error::config("the sort key must differ from the partition key"));
        }
        if self.default_action == Some(CryptoAction::DoNothing) {
            return Err(Error::config(
                "DO_NOTHING cannot be the default action: name the unsigned attributes (allowed unsigned) instead",
            ));
        }
        let v2 = CryptoAction::SignAndIncludeInEncryptionContext;
        let version = if self.actions.values().chain(self.default_action.iter()).any(|a| *a == v2) { 2 } else { 1 };
        let key_action = if version == 2 { v2 } else { CryptoAction::SignOnly };
        let mut config = TableConfig {
            table_name: self.table_name,
            partition_key: self.partition_key,
            sort_key: self.sort_key,
            actions: self.actions,
            default_action: self.default_action,
            allowed_unsigned: self.allowed_unsigned,
            allowed_unsigned_prefix: self.allowed_unsigned_prefix,
            suite: self.suite,
            cmm,
            version,
            trusted_signers,
        };
        let keys: Vec<String> = config.key_names().map(str::to_owned).collect();
        for key in keys {
            match config.actions.get(&key) {
                None => {
                    config.actions.insert(key, key_action);
                }
                Some(a) if *a == key_action => {}
                Some(a) => {
                    return Err(Error::config(format!(
                        "key attribute `{key}` is {a} but must be {key_action} in configuration version {version}"
                    )))
                }
            }
        }
        for (name, action) in &config.actions {
            if name.starts_with(RESERVED_PREFIX) {
                return Err(Error::config(format!("attribute `{name}` uses the reserved prefix `{RESERVED_PREFIX}`")));
            }
            let unsigned = config.is_allowed_unsigned(name);
            if (*action == CryptoAction::DoNothing) != unsigned {
                return Err(Error::config(if unsigned {
                    format!("attribute `{name}` is {action} but also allowed unsigned")
                } else {
                    format!("attribute `{name}` is DO_NOTHING but not allowed unsigned (by name or prefix)")
                }));
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyrings::RawAesKeyring;

    fn base() -> TableConfigBuilder {
        TableConfig::builder("t", "pk").keyring(RawAesKeyring::new("ns", "k", &[1; 32]).unwrap())
    }

    #[test]
    fn versions_and_key_actions() {
        let c = base().sort_key("sk").action("a", CryptoAction::EncryptAndSign).build().unwrap();
        assert_eq!(c.version(), 1);
        assert_eq!(c.actions["pk"], CryptoAction::SignOnly);
        assert_eq!(c.actions["sk"], CryptoAction::SignOnly);
        let c = base().action("a", CryptoAction::SignAndIncludeInEncryptionContext).build().unwrap();
        assert_eq!(c.version(), 2);
        assert_eq!(c.actions["pk"], CryptoAction::SignAndIncludeInEncryptionContext);
        // Wrong key actions are refused.
        assert!(base().action("pk", CryptoAction::EncryptAndSign).build().is_err());
        assert!(base()
            .action("pk", CryptoAction::SignOnly)
            .action("a", CryptoAction::SignAndIncludeInEncryptionContext)
            .build()
            .is_err());
    }

    #[test]
    fn unsigned_rules() {
        let c = base().allowed_unsigned("u").allowed_unsigned_prefix(":").action("u", CryptoAction::DoNothing);
        let c = c.build().unwrap();
        assert_eq!(c.action_for("u").unwrap(), CryptoAction::DoNothing);
        assert_eq!(c.action_for(":x").unwrap(), CryptoAction::DoNothing);
        assert!(c.action_for("other").is_err());
        assert!(c.action_for("aws_dbe_head").is_err());
        assert!(base().action("x", CryptoAction::DoNothing).build().is_err());
        assert!(base().allowed_unsigned("x").action("x", CryptoAction::SignOnly).build().is_err());
        assert!(base().allowed_unsigned("pk").build().is_err());
        assert!(base().action("aws_dbe_x", CryptoAction::SignOnly).build().is_err());
        assert!(base().default_action(CryptoAction::DoNothing).build().is_err());
        assert!(base().suite(AlgorithmSuite::default()).build().is_err());
        assert!(TableConfig::builder("t", "pk").build().is_err());
        let d = base().default_action(CryptoAction::EncryptAndSign).build().unwrap();
        assert_eq!(d.action_for("anything").unwrap(), CryptoAction::EncryptAndSign);
    }

    #[test]
    fn actions_parse() {
        for a in [
            CryptoAction::EncryptAndSign,
            CryptoAction::SignOnly,
            CryptoAction::SignAndIncludeInEncryptionContext,
            CryptoAction::DoNothing,
        ] {
            assert_eq!(a.name().parse::<CryptoAction>().unwrap(), a);
            assert_eq!(a.legend().and_then(CryptoAction::from_legend), a.legend().map(|_| a));
        }
        assert_eq!("sign-only".parse::<CryptoAction>().unwrap(), CryptoAction::SignOnly);
        for (short, action) in [
            ("encrypt", CryptoAction::EncryptAndSign),
            ("sign", CryptoAction::SignOnly),
            ("sign-include", CryptoAction::SignAndIncludeInEncryptionContext),
            ("nothing", CryptoAction::DoNothing),
        ] {
            assert_eq!(short.parse::<CryptoAction>().unwrap(), action);
        }
        for bad in ["", "encrypt-only", "signed", "none"] {
            assert!(bad.parse::<CryptoAction>().is_err(), "{bad}");
        }
    }
}
