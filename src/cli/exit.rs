//! Exit codes and the one-line error the command prints.

use std::fmt;
use std::process::ExitCode;

use hsm_keyring::{Error, ErrorKind};

/// What kind of failure, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 1: decryption or authentication failed.
    Decrypt,
    /// 2: usage or configuration error.
    Usage,
    /// 3: token (PKCS#11) error, or an internal failure.
    Token,
}

impl Kind {
    /// The exit-code kind of a library error kind: 1 for a message that
    /// cannot be opened (malformed, not authentic, no key opens it), 2 for
    /// usage, 3 for the token and for internal failures.
    pub fn of(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::Malformed | ErrorKind::NotAuthentic | ErrorKind::NotThisKey => Kind::Decrypt,
            ErrorKind::Usage => Kind::Usage,
            _ => Kind::Token,
        }
    }
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

    /// Classify a library error met while doing `what`: the exit code comes
    /// from [`Error::kind`] alone.
    pub fn from_lib(what: &str, err: Error) -> Self {
        let message = format!("{what}: {err}");
        CliError { kind: Kind::of(err.kind()), message }
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
