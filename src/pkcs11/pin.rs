//! The user PIN: a zeroizing secret, and where to find it.

use std::fmt;
use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::uri::Pkcs11Uri;
use crate::error::{Error, Result};

/// Environment variable read for the PIN when the URI gives none.
pub const PIN_ENV: &str = "HSM_KEYRING_PIN";

/// Longest PIN accepted, in bytes.
const MAX_PIN_LEN: usize = 1024;

/// A token PIN: zeroized on drop, never printed.
#[derive(Clone)]
pub struct Pin(Zeroizing<Vec<u8>>);

impl Pin {
    /// A PIN from the caller's bytes (or string).
    pub fn new(pin: impl Into<Vec<u8>>) -> Self {
        Pin(Zeroizing::new(pin.into()))
    }

    /// The PIN from environment variable `var`; `Ok(None)` if unset or empty.
    pub fn from_env(var: &str) -> Result<Option<Self>> {
        match std::env::var_os(var) {
            None => Ok(None),
            Some(value) => {
                let value = Zeroizing::new(value.into_encoded_bytes());
                if value.is_empty() {
                    Ok(None)
                } else {
                    Ok(Some(Pin::new(value.to_vec())))
                }
            }
        }
    }

    /// The PIN stored in a file; one trailing newline (`\n` or `\r\n`) is removed.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|e| pin_file_error(path, &e))?;
        if meta.len() > MAX_PIN_LEN as u64 {
            return Err(Error::config(format!(
                "PIN file {} is larger than {MAX_PIN_LEN} bytes; is it the right file?",
                path.display()
            )));
        }
        let mut bytes = Zeroizing::new(std::fs::read(path).map_err(|e| pin_file_error(path, &e))?);
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        if bytes.is_empty() {
            return Err(Error::config(format!("PIN file {} is empty", path.display())));
        }
        Ok(Pin::new(bytes.to_vec()))
    }

    /// The PIN bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

fn pin_file_error(path: &Path, e: &std::io::Error) -> Error {
    Error::config(format!("cannot read the PIN file {}: {e}", path.display()))
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin([REDACTED])")
    }
}

impl PartialEq for Pin {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && bool::from(self.0.ct_eq(&other.0))
    }
}

impl Eq for Pin {}

/// Where a PIN comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSource {
    /// The PIN itself.
    Value(Pin),
    /// A file holding the PIN (one trailing newline ignored).
    File(PathBuf),
    /// An environment variable holding the PIN.
    Env(String),
}

impl PinSource {
    /// Parse a `pin-source` value: `file:/path`, `file:///path`, a plain
    /// absolute path, or `env:VARIABLE`.
    pub fn parse(source: &str) -> Result<Self> {
        if let Some(rest) = source.strip_prefix("file://") {
            // Only the local host form `file:///path` (empty authority).
            if rest.starts_with('/') {
                return Ok(PinSource::File(PathBuf::from(rest)));
            }
            return Err(Error::config(format!("pin-source `{source}`: only local files (file:///path) are supported")));
        }
        if let Some(rest) = source.strip_prefix("file:") {
            if rest.is_empty() {
                return Err(Error::config("pin-source `file:` names no file"));
            }
            return Ok(PinSource::File(PathBuf::from(rest)));
        }
        if let Some(var) = source.strip_prefix("env:") {
            if var.is_empty() {
                return Err(Error::config("pin-source `env:` names no variable"));
            }
            return Ok(PinSource::Env(var.to_owned()));
        }
        if source.starts_with('/') {
            return Ok(PinSource::File(PathBuf::from(source)));
        }
        Err(Error::config(format!("unsupported pin-source `{source}` (use file:/path/to/pin-file or env:VARIABLE)")))
    }

    /// Read the PIN.
    pub fn read(&self) -> Result<Pin> {
        match self {
            PinSource::Value(pin) => Ok(pin.clone()),
            PinSource::File(path) => Pin::from_file(path),
            PinSource::Env(var) => Pin::from_env(var)?.ok_or_else(|| {
                Error::config(format!("pin-source names the environment variable {var}, which is unset"))
            }),
        }
    }
}

/// The PIN for a URI, looked up in this order: the URI's `pin-value`, its
/// `pin-source`, then the [`PIN_ENV`] (`HSM_KEYRING_PIN`) environment
/// variable. Fails with advice on how to provide one (an interactive prompt
/// is up to the caller).
pub fn resolve_pin(uri: &Pkcs11Uri) -> Result<Pin> {
    if let Some(pin) = &uri.pin_value {
        return Ok(pin.clone());
    }
    if let Some(source) = &uri.pin_source {
        return PinSource::parse(source)?.read();
    }
    if let Some(pin) = Pin::from_env(PIN_ENV)? {
        return Ok(pin);
    }
    Err(Error::config(format!(
        "no PIN for {}: add `pin-source=file:/path/to/pin-file` to the URI, or set {PIN_ENV}",
        uri.token_only().to_path_string()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let pin = Pin::new("123456");
        assert_eq!(format!("{pin:?}"), "Pin([REDACTED])");
        assert_eq!(format!("{:?}", PinSource::Value(pin)), "Value(Pin([REDACTED]))");
    }

    #[test]
    fn file_trims_one_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, b"1234\n\n").unwrap();
        assert_eq!(Pin::from_file(&path).unwrap().as_bytes(), b"1234\n");
        std::fs::write(&path, b"1234\r\n").unwrap();
        assert_eq!(Pin::from_file(&path).unwrap().as_bytes(), b"1234");
        std::fs::write(&path, b"\n").unwrap();
        assert!(Pin::from_file(&path).is_err());
        assert!(Pin::from_file(dir.path().join("missing")).is_err());
    }

    #[test]
    fn resolution_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, b"from-file\n").unwrap();
        let uri = Pkcs11Uri::parse("pkcs11:token=t?pin-value=from-uri").unwrap();
        assert_eq!(resolve_pin(&uri).unwrap().as_bytes(), b"from-uri");
        let uri = Pkcs11Uri::parse(&format!("pkcs11:token=t?pin-source=file:{}", path.display())).unwrap();
        assert_eq!(resolve_pin(&uri).unwrap().as_bytes(), b"from-file");
        let uri = Pkcs11Uri::parse(&format!("pkcs11:token=t?pin-source=file://{}", path.display())).unwrap();
        assert_eq!(resolve_pin(&uri).unwrap().as_bytes(), b"from-file");
        assert!(PinSource::parse("https://example.com/pin").is_err());
        assert!(PinSource::parse("file://host/pin").is_err());
        assert_eq!(PinSource::parse("env:X").unwrap(), PinSource::Env("X".into()));
    }
}
