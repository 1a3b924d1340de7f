//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `--version`: the crate version and the primitive backend.
#[cfg(feature = "aws-lc")]
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (crypto backend: aws-lc)");
#[cfg(not(feature = "aws-lc"))]
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (crypto backend: rustcrypto)");

/// Envelope encryption with master keys in a PKCS#11 token (AWS Encryption SDK message format).
///
/// Exit codes: 0 success, 1 decryption or authentication failure, 2 usage or
/// configuration error, 3 token error or internal failure; 128 + N when stopped by signal N
/// (SIGTERM, SIGINT or SIGHUP, which first remove any temporary output file;
/// SIGKILL cannot be caught and leaves it: it is 0600 and named
/// `.NAME.XXXXXX.partial`).
#[derive(Debug, Parser)]
#[command(name = "hsm-keyring", version = VERSION, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// No progress bar and no informational messages.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// TOML file of named keyrings (default: the user's config directory,
    /// hsm-keyring/config.toml). Relative paths in it start at its folder.
    #[arg(long, global = true, value_name = "FILE", env = "HSM_KEYRING_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory of the SoftHSM dev token used when a URI names no module-path
    /// (unless SOFTHSM2_CONF or PKCS11_MODULE is set: the environment wins).
    #[arg(long, global = true, value_name = "DIR", env = "HSM_KEYRING_DEV_DIR")]
    pub dev_dir: Option<PathBuf>,
    /// Accept `pin-value=` in URIs given on the command line (the PIN then shows in the process list).
    #[arg(long, global = true)]
    pub insecure_pin_in_uri: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Encrypt a file or a pipe.
    Encrypt(EncryptArgs),
    /// Decrypt a file or a pipe; a failure leaves no output file behind.
    Decrypt(DecryptArgs),
    /// Print a message's header as JSON, without any key.
    Inspect(InspectArgs),
    /// Encrypt or decrypt DynamoDB items (JSON Lines of DynamoDB JSON).
    #[command(subcommand)]
    Item(crate::items::ItemCommand),
    /// Replace the encrypted data keys of messages (key rotation) without touching their bodies.
    Rewrap(crate::rewrap::RewrapArgs),
    /// Put and get S3 objects encrypted client-side (Amazon S3 Encryption Client format).
    #[cfg(feature = "s3")]
    #[command(subcommand)]
    S3(crate::s3::S3Command),
    /// Manage keys in a token.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// A SoftHSM development token that every command uses by default.
    #[command(subcommand)]
    DevToken(DevTokenCommand),
}

/// Options shared by encrypt and decrypt.
#[derive(Debug, Args)]
pub struct CommonCrypt {
    /// Input file (default: stdin; `-` for stdin).
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Output file (default: stdout; `-` or /dev/stdout for stdout). A regular
    /// file is written as a temporary `.FILE.XXXXXX.partial` (0600) beside it
    /// and renamed onto FILE only on success (SIGTERM, SIGINT and SIGHUP
    /// remove it; SIGKILL cannot be caught and leaves it); a device or FIFO is
    /// written in place, never replaced.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Wrapping key, repeatable; the first generates the data key. SPEC is
    /// `type=pkcs11,uri=URI[,namespace=NS][,name=NAME]`,
    /// `type=aes,path=FILE,namespace=NS,name=NAME` or
    /// `type=rsa,path=FILE.pem,namespace=NS,name=NAME,padding=pkcs1|oaep-sha1|oaep-sha256|oaep-sha384|oaep-sha512`.
    /// A value containing a comma is percent-encoded (`%2C` in a URI, as in
    /// every URI the command prints) or quoted whole: `uri="pkcs11:..."`.
    #[arg(short = 'w', long = "wrapping-key", value_name = "SPEC")]
    pub wrapping_keys: Vec<String>,
    /// A named keyring from the config file (instead of, or before, --wrapping-key).
    #[arg(short, long, value_name = "NAME")]
    pub keyring: Option<String>,
    /// Encryption context pair, repeatable.
    #[arg(short, long = "context", value_name = "KEY=VALUE")]
    pub context: Vec<String>,
    /// Commitment policy.
    #[arg(long, value_enum, default_value_t = PolicyArg::RequireEncryptRequireDecrypt)]
    pub commitment_policy: PolicyArg,
    /// Refuse messages (or keyrings) with more encrypted data keys than this
    /// (default 32; a message over the limit is refused before any token call).
    #[arg(long, value_name = "N")]
    pub max_encrypted_data_keys: Option<usize>,
    /// Threads sealing or opening frames (default: the available cores; 1: all on one thread).
    #[arg(long, value_name = "N")]
    pub workers: Option<std::num::NonZeroUsize>,
}

#[derive(Debug, Args)]
pub struct EncryptArgs {
    #[command(flatten)]
    pub common: CommonCrypt,
    /// Algorithm suite: hex id such as 0x0478, or its name (default 0x0578).
    #[arg(long, value_name = "SUITE")]
    pub suite: Option<String>,
    /// Frame length in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    pub frame_length: u32,
    /// Sign 0x0578 messages with this long-lived token key (PKCS#11 URI of an EC P-384 private key).
    #[arg(long, value_name = "URI")]
    pub signer: Option<String>,
}

#[derive(Debug, Args)]
pub struct DecryptArgs {
    #[command(flatten)]
    pub common: CommonCrypt,
    /// Accept only messages signed by this key (PEM file or PKCS#11 URI),
    /// repeatable. Unsigned messages and messages signed by any other key are
    /// refused before any keyring is called (exit 1, nothing written).
    #[arg(long, value_name = "PEM|URI")]
    pub trusted_signer: Vec<String>,
    /// Refuse unsigned messages (suites such as 0x0478), whatever key signed
    /// the others; implied by --trusted-signer.
    #[arg(long)]
    pub require_signed: bool,
    /// Hold the plaintext in a private temporary file (0600, unnamed, in the
    /// temporary directory) until the whole message has verified, then write
    /// it to stdout (or the device or FIFO given with -o); on failure nothing
    /// is written. The default for signed messages when the output is not a
    /// terminal. (An -o regular file is always written only on success.)
    #[arg(long, conflicts_with = "no_buffer")]
    pub buffer: bool,
    /// Stream to stdout (or a device or FIFO) without holding the plaintext:
    /// each frame is written once its own tag verifies, so a truncated or
    /// tampered message ends with exit 1 after its earlier frames were
    /// written, and a signed message's signature is checked only at the end.
    #[arg(long)]
    pub no_buffer: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Input file (default: stdin).
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// List every encrypted data key. By default a header with more than 32
    /// lists the first 32, with counts per provider id.
    #[arg(long)]
    pub all_edks: bool,
}

/// The commitment policies, named as in the AWS Encryption SDK.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PolicyArg {
    ForbidEncryptAllowDecrypt,
    RequireEncryptAllowDecrypt,
    RequireEncryptRequireDecrypt,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum KeyType {
    #[value(name = "aes-256")]
    Aes256,
    #[value(name = "rsa-3072")]
    Rsa3072,
    #[value(name = "rsa-4096")]
    Rsa4096,
    #[value(name = "ec-p384")]
    EcP384,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a key in the token (sensitive, non-extractable).
    Generate {
        /// Key type.
        #[arg(long = "type", value_enum)]
        key_type: KeyType,
        /// Label (CKA_LABEL) of the new key.
        #[arg(long)]
        label: String,
        /// Token URI (default: the dev token).
        #[arg(long, value_name = "URI")]
        token: Option<String>,
    },
    /// List the keys in the token with their URIs.
    List {
        /// Token URI (default: the dev token).
        #[arg(long, value_name = "URI")]
        token: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the public key of an RSA or EC key as PEM.
    ExportPublic {
        /// Key URI.
        #[arg(long, value_name = "URI")]
        key: String,
        /// Output file (default: stdout), written like encrypt's -o.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Delete the keys a URI names (every matching secret, private and public
    /// key object; the URI must name `object=` or `id=`) and print them.
    Delete {
        /// Key URI.
        #[arg(long, value_name = "URI")]
        key: String,
        /// Do not ask: required when stdin is not a terminal.
        #[arg(long)]
        yes: bool,
    },
    /// Import a raw AES key (escrow and interoperability testing only: the key
    /// existed outside the token before).
    ImportAes {
        /// File with 16, 24 or 32 raw key bytes.
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
        /// Label (CKA_LABEL) of the imported key.
        #[arg(long)]
        label: String,
        /// Token URI (default: the dev token).
        #[arg(long, value_name = "URI")]
        token: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DevTokenCommand {
    /// Create the SoftHSM dev token with a wrapping key and a signing key.
    Init {
        /// Where to create it (default: the user's data directory,
        /// hsm-keyring/dev-token): a new directory (made 0700) or an empty one.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Replace a dev token that this command created in that directory
        /// (only its own files are removed).
        #[arg(long)]
        force: bool,
    },
}
