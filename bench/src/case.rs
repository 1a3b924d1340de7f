//! What one child process measures, and what it reports back.

use serde::{Deserialize, Serialize};

use crate::measure::R;

/// Message frame length of every message implementation, and the chunk size of
/// the bare AES-GCM ceilings.
pub const FRAME: usize = 4096;

/// The encryption context of every message.
pub const CONTEXT: [(&str, &str); 2] = [("purpose", "bench"), ("tenant", "a")];

/// The raw AES-256 wrapping key shared by every raw AES keyring.
pub const WRAPPING_KEY: [u8; 32] = [0x42; 32];
/// Key namespace (provider id) of the raw AES keyrings.
pub const KEY_NAMESPACE: &str = "bench";
/// Key name of the raw AES keyrings.
pub const KEY_NAME: &str = "aes-256";
/// Label of the SoftHSM AES key.
pub const HSM_KEY_LABEL: &str = "bench-aes";

/// hsm-keyring's primitive backend, fixed per build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backend {
    /// RustCrypto (the default).
    RustCrypto,
    /// aws-lc-rs (feature `aws-lc`).
    AwsLc,
}

impl Backend {
    /// The backend this binary was built with.
    pub fn this_build() -> Self {
        if cfg!(feature = "aws-lc") {
            Backend::AwsLc
        } else {
            Backend::RustCrypto
        }
    }

    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Backend::RustCrypto => "rustcrypto",
            Backend::AwsLc => "aws-lc",
        }
    }
}

/// Which keyring hsm-keyring uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OurKeyring {
    /// `RawAesKeyring` with [`WRAPPING_KEY`].
    RawAes,
    /// `Pkcs11AesKeyring` on the SoftHSM token, optionally behind a `CachingCmm`.
    SoftHsm {
        /// Behind a `CachingCmm` (max age 60 s, 10 000 messages per key).
        cached: bool,
    },
}

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Subject {
    /// Bare `aes-gcm` `Aes256Gcm` over the plaintext in frame-sized chunks.
    BareAesGcm,
    /// Bare `aws-lc-rs` AES-256-GCM over the plaintext in frame-sized chunks.
    BareAwsLc,
    /// hsm-keyring messages.
    Ours {
        /// Primitive backend (selects the binary that runs the case).
        backend: Backend,
        /// Keyring.
        keyring: OurKeyring,
    },
    /// aws-esdk messages with its raw AES keyring.
    Esdk,
}

/// How the case is timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Messages per second over fixed-length rounds, plaintexts and messages in memory.
    Rate,
    /// A few whole runs over one large message, with peak memory: hsm-keyring
    /// streams from a generator to a sink, aws-esdk works one-shot in memory.
    Large,
}

/// One measurement, run in its own process.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// What is measured.
    pub subject: Subject,
    /// Algorithm suite id (ignored by the bare ceilings).
    pub suite: u16,
    /// Plaintext length in bytes.
    pub size: usize,
    /// Threads running messages at once.
    pub threads: usize,
    /// Simulated delay per token call, in milliseconds (SoftHSM keyrings only).
    pub latency_ms: u64,
    /// Timing mode.
    pub mode: Mode,
    /// Seconds per rate round.
    pub round_secs: f64,
}

/// The result for one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Messages (or bare seals/opens of the whole plaintext) per second, all threads together.
    pub per_sec: f64,
    /// Growth of the peak resident memory over the case, KiB ([`Mode::Large`] only).
    pub peak_kib: Option<u64>,
    /// Timed runs ([`Mode::Large`] only).
    pub runs: Option<u32>,
}

/// What a child reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Encryption (sealing).
    pub encrypt: Metric,
    /// Decryption (opening).
    pub decrypt: Metric,
    /// Remarks for the notes under the table.
    pub notes: Vec<String>,
}

/// Run `case` in this process.
pub fn run(case: &Case) -> R<Outcome> {
    match case.subject {
        Subject::BareAesGcm => crate::bare::aes_gcm(case),
        #[cfg(feature = "references")]
        Subject::BareAwsLc => crate::bare::aws_lc(case),
        #[cfg(feature = "references")]
        Subject::Esdk => crate::esdk::run(case),
        #[cfg(not(feature = "references"))]
        Subject::BareAwsLc | Subject::Esdk => Err("this build has no reference implementations".to_owned()),
        Subject::Ours { backend, keyring } => {
            if backend != Backend::this_build() {
                return Err(format!("this build uses the {} backend", Backend::this_build().name()));
            }
            crate::ours::run(case, keyring)
        }
    }
}
