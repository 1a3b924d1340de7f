//! aws-esdk cases: the AWS Encryption SDK for Rust with its raw AES keyring.
//!
//! Its API is `async` in shape only (the raw AES keyring is synchronous);
//! each thread drives it with its own current-thread tokio runtime, its own
//! client and its own keyring handle (a `KeyringRef` is a mutex: sharing one
//! would serialize the threads).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_esdk::client::Client as EsdkClient;
use aws_esdk::material_providers::client::Client as MplClient;
use aws_esdk::material_providers::types::keyring::KeyringRef;
use aws_esdk::material_providers::types::material_providers_config::MaterialProvidersConfig;
use aws_esdk::material_providers::types::{AesWrappingAlg, EsdkAlgorithmSuiteId, EsdkCommitmentPolicy};
use aws_esdk::types::aws_encryption_sdk_config::AwsEncryptionSdkConfig;

use crate::case::{Case, Metric, Mode, Outcome, CONTEXT, FRAME, KEY_NAME, KEY_NAMESPACE, WRAPPING_KEY};
use crate::measure::{plaintext, rate, Op, PeakMeter, R};

/// Timed runs of a large case (one 64 MiB message takes aws-esdk well under a
/// second here; set this to 1 if it ever takes many seconds).
const LARGE_RUNS: u32 = 3;

fn err(e: impl std::fmt::Display) -> String {
    format!("aws-esdk: {e}")
}

/// One thread's aws-esdk: runtime, client, keyring.
struct Esdk {
    runtime: tokio::runtime::Runtime,
    client: EsdkClient,
    keyring: KeyringRef,
    suite: EsdkAlgorithmSuiteId,
    context: HashMap<String, String>,
}

impl Esdk {
    fn new(suite: u16) -> R<Self> {
        let suite = match suite {
            0x0478 => EsdkAlgorithmSuiteId::AlgAes256GcmHkdfSha512CommitKey,
            0x0578 => EsdkAlgorithmSuiteId::AlgAes256GcmHkdfSha512CommitKeyEcdsaP384,
            other => return Err(format!("suite 0x{other:04X} is not benchmarked")),
        };
        let runtime = tokio::runtime::Builder::new_current_thread().build().map_err(err)?;
        let mpl = MplClient::from_conf(MaterialProvidersConfig::builder().build().map_err(err)?).map_err(err)?;
        let keyring = runtime
            .block_on(
                mpl.create_raw_aes_keyring()
                    .key_namespace(KEY_NAMESPACE)
                    .key_name(KEY_NAME)
                    .wrapping_key(WRAPPING_KEY.to_vec())
                    .wrapping_alg(AesWrappingAlg::AlgAes256GcmIv12Tag16)
                    .send(),
            )
            .map_err(err)?;
        let config = AwsEncryptionSdkConfig::builder()
            .commitment_policy(EsdkCommitmentPolicy::RequireEncryptRequireDecrypt)
            .build()
            .map_err(err)?;
        let client = EsdkClient::from_conf(config).map_err(err)?;
        let context = CONTEXT.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Ok(Esdk { runtime, client, keyring, suite, context })
    }

    fn encrypt(&self, plaintext: Vec<u8>) -> R<Vec<u8>> {
        let out = self
            .runtime
            .block_on(
                self.client
                    .encrypt()
                    .plaintext(plaintext)
                    .keyring(self.keyring.clone())
                    .encryption_context(self.context.clone())
                    .algorithm_suite_id(self.suite)
                    .frame_length(FRAME as i64)
                    .send(),
            )
            .map_err(err)?;
        out.ciphertext.map(|b| b.into_inner()).ok_or_else(|| "aws-esdk returned no ciphertext".to_owned())
    }

    fn decrypt(&self, message: Vec<u8>) -> R<Vec<u8>> {
        let out = self
            .runtime
            .block_on(
                self.client
                    .decrypt()
                    .ciphertext(message)
                    .keyring(self.keyring.clone())
                    .encryption_context(self.context.clone())
                    .send(),
            )
            .map_err(err)?;
        out.plaintext.map(|b| b.into_inner()).ok_or_else(|| "aws-esdk returned no plaintext".to_owned())
    }
}

/// Run an aws-esdk case.
pub fn run(case: &Case) -> R<Outcome> {
    match case.mode {
        Mode::Rate => rate_case(case),
        Mode::Large => large_case(case),
    }
}

fn rate_case(case: &Case) -> R<Outcome> {
    let setup = Esdk::new(case.suite)?;
    let pt = plaintext(case.size);
    let message = setup.encrypt(pt.clone())?;
    if setup.decrypt(message.clone())? != pt {
        return Err("aws-esdk: round trip changed the plaintext".to_owned());
    }
    drop(setup);
    let (pt, message) = (&pt, &message);
    // The copies into owned buffers are part of the API's cost: it takes
    // its input by value.
    let enc = move |_t: usize| -> R<Op<'_>> {
        let esdk = Esdk::new(case.suite)?;
        Ok(Box::new(move || esdk.encrypt(pt.clone()).map(drop)))
    };
    let dec = move |_t: usize| -> R<Op<'_>> {
        let esdk = Esdk::new(case.suite)?;
        Ok(Box::new(move || {
            if esdk.decrypt(message.clone())?.len() != pt.len() {
                return Err("aws-esdk: wrong plaintext length".to_owned());
            }
            Ok(())
        }))
    };
    let run = Duration::from_secs_f64(case.round_secs);
    Ok(Outcome {
        encrypt: Metric { per_sec: rate(case.threads, run, &enc)?, ..Metric::default() },
        decrypt: Metric { per_sec: rate(case.threads, run, &dec)?, ..Metric::default() },
        notes: Vec::new(),
    })
}

fn large_case(case: &Case) -> R<Outcome> {
    let esdk = Esdk::new(case.suite)?;
    let file = tempfile::NamedTempFile::new().map_err(err)?;

    // Encrypt one-shot: the plaintext is produced in memory (inside the
    // measured peak: a one-shot caller has to hold it), the time covers the
    // encrypt call.
    let meter = PeakMeter::start()?;
    let mut enc = f64::INFINITY;
    for _ in 0..LARGE_RUNS {
        let pt = plaintext(case.size);
        let start = Instant::now();
        let message = esdk.encrypt(pt)?;
        enc = enc.min(start.elapsed().as_secs_f64());
        std::fs::write(file.path(), &message).map_err(err)?;
    }
    let enc_peak = meter.growth_kib()?;

    // Decrypt one-shot: the message is read into memory, the time covers the decrypt call.
    let meter = PeakMeter::start()?;
    let mut dec = f64::INFINITY;
    for _ in 0..LARGE_RUNS {
        let message = std::fs::read(file.path()).map_err(err)?;
        let start = Instant::now();
        let pt = esdk.decrypt(message)?;
        dec = dec.min(start.elapsed().as_secs_f64());
        if pt.len() != case.size {
            return Err(format!("aws-esdk: decrypted {} bytes, expected {}", pt.len(), case.size));
        }
    }
    let dec_peak = meter.growth_kib()?;
    Ok(Outcome {
        encrypt: Metric { per_sec: 1.0 / enc, peak_kib: Some(enc_peak), runs: Some(LARGE_RUNS) },
        decrypt: Metric { per_sec: 1.0 / dec, peak_kib: Some(dec_peak), runs: Some(LARGE_RUNS) },
        notes: Vec::new(),
    })
}
