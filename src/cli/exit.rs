//! Exit codes and the one-line error the command prints.

use std::fmt;
use std::process::ExitCode;

use hsm_keyring::Error;

/// What kind of failure, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 1: decryption or authentication failed.
    Decrypt,
    /// 2: usage or configuration error.
    Usage,
    /// 3: token (PKCS#11) error.
    Token,
}

/// An error on its way to the terminal.
#[derive(Debug)]
pub struct CliError {
    pub kind: Kind,
    pub message: String,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        CliError { kind: Kind::Usage, message: message.into() }
    }

    pub fn token(message: impl Into<String>) -> Self {
        CliError { kind: Kind::Token, message: message.into() }
    }

    /// Classify a library error met while doing `what`.
    pub fn from_lib(what: &str, err: Error) -> Self {
        let message = format!("{what}: {err}");
        let kind = match &err {
            Error::Pkcs11(_) => Kind::Token,
            Error::InvalidUri { .. }
            | Error::InvalidKey { .. }
            | Error::Config { .. }
            | Error::InvalidEncryptionContext { .. }
            | Error::PolicyViolation { .. } => Kind::Usage,
            Error::Io(_) => Kind::Usage,
            _ if err.is_authentication_failure() => Kind::Decrypt,
            Error::TooManyEncryptedDataKeys { .. } | Error::UnsupportedSuite(_) => Kind::Decrypt,
            // A keyring that failed on a token key reports through Pkcs11 above;
            // any other keyring failure on decrypt is an authentication failure.
            Error::Keyring { .. } => Kind::Decrypt,
            _ => Kind::Usage,
        };
        CliError { kind, message }
    }

    /// Classify a library error met while encrypting. Nothing is authenticated
    /// there, so what would be a decryption failure (exit 1), such as more
    /// encrypted data keys than `--max-encrypted-data-keys`, is a usage or
    /// configuration error.
    pub fn from_encrypt(err: Error) -> Self {
        let mut e = Self::from_lib("encrypt", err);
        if e.kind == Kind::Decrypt {
            e.kind = Kind::Usage;
        }
        e
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self.kind {
            Kind::Decrypt => 1,
            Kind::Usage => 2,
            Kind::Token => 3,
        })
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::usage(format!("I/O error: {e}"))
    }
}
