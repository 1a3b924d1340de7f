//! The optional TOML file of named keyrings.
//!
//! ```toml
//! [keyrings.prod]
//! wrapping-keys = [
//!   "type=pkcs11,uri=pkcs11:token=prod;object=master-2026;type=secret-key",
//!   "type=rsa,path=/etc/hsm-keyring/escrow.pub.pem,namespace=escrow,name=escrow-2026,padding=oaep-sha256",
//! ]
//! signer = "pkcs11:token=prod;object=signer-2026;type=private"
//! trusted-signers = ["/etc/hsm-keyring/signer-2026.pem"]
//! require-signed = true
//! ```
//!
//! Relative key and PEM paths in the file are relative to the file's folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::exit::CliError;
use crate::spec::redact;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub keyrings: BTreeMap<String, NamedKeyring>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NamedKeyring {
    /// Wrapping key specs, the generator first.
    pub wrapping_keys: Vec<String>,
    /// Token signer URI for signed suites.
    pub signer: Option<String>,
    /// Trusted signers (PEM files or URIs) checked on decrypt.
    #[serde(default)]
    pub trusted_signers: Vec<String>,
    /// Refuse unsigned messages on decrypt (implied by trusted signers).
    #[serde(default)]
    pub require_signed: bool,
    /// The folder of the config file: relative paths in it start there.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

impl NamedKeyring {
    /// A path from the file, relative to the file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    /// The trusted signers: URIs as they are, PEM paths resolved.
    pub fn trusted_signers(&self) -> impl Iterator<Item = String> + '_ {
        self.trusted_signers.iter().map(|t| {
            if t.starts_with("pkcs11:") {
                t.clone()
            } else {
                self.resolve(Path::new(t)).to_string_lossy().into_owned()
            }
        })
    }
}

/// The default config path: `$XDG_CONFIG_HOME/hsm-keyring/config.toml` or `~/.config/...`.
pub fn default_path() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|d| d.join("hsm-keyring").join("config.toml"))
}

/// Find the named keyring in `path` (or the default file).
pub fn named_keyring(path: Option<&Path>, name: &str) -> Result<NamedKeyring, CliError> {
    let path = path
        .map(Path::to_path_buf)
        .or_else(default_path)
        .ok_or_else(|| CliError::usage(format!("--keyring {name}: no config file (give --config FILE)")))?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CliError::usage(format!("--keyring {name}: cannot read {}: {e}", path.display())))?;
    let mut config: Config = toml::from_str(&text).map_err(|e| {
        // One line: the parser's own text quotes the offending line below its message.
        let line = e.span().map(|s| text.get(..s.start).unwrap_or("").matches('\n').count() + 1);
        let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
        let message = redact(e.message().trim_end()).replace('\n', "; ");
        CliError::usage(format!("config {}: {message}{at}", path.display()))
    })?;
    let mut keyring = config.keyrings.remove(name).ok_or_else(|| {
        CliError::usage(format!(
            "config {} has no keyring `{name}` (it has: {})",
            path.display(),
            config.keyrings.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    keyring.base_dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok(keyring)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_unknown_fields() {
        let c: Config =
            toml::from_str("[keyrings.a]\nwrapping-keys = [\"type=aes,path=k,namespace=n,name=m\"]\n").unwrap();
        assert_eq!(c.keyrings["a"].wrapping_keys.len(), 1);
        assert!(toml::from_str::<Config>("[keyrings.a]\nwrapping-keys = []\nbogus = 1\n").is_err());
    }

    #[test]
    fn parse_errors_are_one_line_with_the_line_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[keyrings.a]\nwrapping-keys = []\nbogus = 1\n").unwrap();
        let e = named_keyring(Some(&path), "a").unwrap_err();
        assert!(!e.message.contains('\n'), "{}", e.message);
        assert!(e.message.contains("bogus") && e.message.ends_with("(line 3)"), "{}", e.message);
        std::fs::write(&path, "[keyrings.a\n").unwrap();
        let e = named_keyring(Some(&path), "a").unwrap_err();
        assert!(!e.message.contains('\n') && e.message.ends_with("(line 1)"), "{}", e.message);
    }

    #[test]
    fn parse_errors_never_show_a_pin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[keyrings.a]\nwrapping-keys = \"type=pkcs11,uri=pkcs11:?pin-value=TOPSECRET99\"\n")
            .unwrap();
        let e = named_keyring(Some(&path), "a").unwrap_err();
        assert!(!e.message.contains("TOPSECRET99") && e.message.contains("(line 2)"), "{}", e.message);
    }

    #[test]
    fn relative_paths_start_at_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[keyrings.a]\nwrapping-keys = []\ntrusted-signers = [\"s.pem\", \"/abs.pem\", \"pkcs11:object=s\"]\n",
        )
        .unwrap();
        let k = named_keyring(Some(&path), "a").unwrap();
        assert_eq!(k.resolve(Path::new("k.bin")), dir.path().join("k.bin"));
        assert_eq!(k.resolve(Path::new("/k.bin")), PathBuf::from("/k.bin"));
        let t: Vec<String> = k.trusted_signers().collect();
        assert_eq!(
            t,
            [dir.path().join("s.pem").to_string_lossy().into_owned(), "/abs.pem".into(), "pkcs11:object=s".into()]
        );
    }
}
