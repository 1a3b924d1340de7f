//! The provider id (key namespace) and key name a layout writes into its
//! EDKs, and the checks every keyring applies to them.

use std::fmt;

use crate::error::{Error, Result};

/// Provider id reserved for AWS KMS keyrings; raw keyrings refuse it as namespace.
pub const AWS_KMS_PROVIDER_ID: &str = "aws-kms";

/// Largest value a u16-length-prefixed header field can hold.
const MAX_FIELD_LEN: usize = u16::MAX as usize;

/// Namespace and key name of one key, checked against the EDK fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EdkName {
    pub(crate) namespace: String,
    pub(crate) key_name: String,
    /// Bytes that follow the key name in the provider info.
    suffix_len: usize,
}

impl EdkName {
    /// A checked name: the namespace `aws-kms` is reserved, and both must
    /// fit their header fields (`suffix_len` bytes follow the name in the
    /// provider info).
    pub(crate) fn new(namespace: String, key_name: String, suffix_len: usize) -> Result<Self> {
        check(&namespace, &key_name, suffix_len)?;
        Ok(EdkName { namespace, key_name, suffix_len })
    }

    /// Change the namespace (`aws-kms`, empty and over-long ones are refused).
    pub(crate) fn set_namespace(&mut self, namespace: String) -> Result<()> {
        if namespace.is_empty() {
            return Err(Error::config("key namespace must not be empty"));
        }
        check(&namespace, &self.key_name, self.suffix_len)?;
        self.namespace = namespace;
        Ok(())
    }

    /// Change the key name (empty and over-long ones are refused).
    pub(crate) fn set_key_name(&mut self, key_name: String) -> Result<()> {
        if key_name.is_empty() {
            return Err(Error::config("key name must not be empty"));
        }
        check(&self.namespace, &key_name, self.suffix_len)?;
        self.key_name = key_name;
        Ok(())
    }
}

/// `namespace/key_name`, as keyrings describe themselves.
impl fmt::Display for EdkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.key_name)
    }
}

fn check(namespace: &str, name: &str, suffix_len: usize) -> Result<()> {
    if namespace == AWS_KMS_PROVIDER_ID {
        return Err(Error::config(format!(
            "the key namespace `{AWS_KMS_PROVIDER_ID}` is reserved for AWS KMS keyrings"
        )));
    }
    if namespace.len() > MAX_FIELD_LEN {
        return Err(Error::config(format!(
            "a key namespace of {} bytes does not fit the 65535-byte provider id field",
            namespace.len()
        )));
    }
    if name.len().checked_add(suffix_len).is_none_or(|n| n > MAX_FIELD_LEN) {
        return Err(Error::config(format!(
            "a key name of {} bytes does not fit the 65535-byte provider info field",
            name.len()
        )));
    }
    Ok(())
}
