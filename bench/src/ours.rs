//! hsm-keyring cases: raw AES or SoftHSM AES keyring, with either backend.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hsm_keyring::cmm::CachingCmm;
use hsm_keyring::cmm::DefaultCmm;
use hsm_keyring::keyrings::RawAesKeyring;
use hsm_keyring::pkcs11::Pkcs11AesKeyring;
use hsm_keyring::pkcs11::{Pkcs11Uri, Token, TokenOptions};
use hsm_keyring::{AlgorithmSuite, Client, CryptographicMaterialsManager, EncryptionContext, Keyring};

use crate::case::{
    Case, Metric, Mode, OurKeyring, Outcome, FRAME, HSM_KEY_LABEL, KEY_NAME, KEY_NAMESPACE, WRAPPING_KEY,
};
use crate::latency::Delayed;
use crate::measure::{best_of, pattern, plaintext, pump, rate, CountingSink, Generator, Op, PeakMeter, R};

/// Timed runs of a large case.
const LARGE_RUNS: u32 = 3;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The SoftHSM AES key, on the token whose configuration `SOFTHSM2_CONF` names.
fn softhsm_keyring() -> R<Pkcs11AesKeyring> {
    let label = crate::common::TOKEN_LABEL;
    let pin = crate::common::USER_PIN;
    let token_uri = Pkcs11Uri::parse(&format!("pkcs11:token={label}?pin-value={pin}")).map_err(err)?;
    let key_uri =
        Pkcs11Uri::parse(&format!("pkcs11:token={label};object={HSM_KEY_LABEL};type=secret-key")).map_err(err)?;
    let token = Token::open_with(&token_uri, TokenOptions::default().pool_size(2)).map_err(err)?;
    Pkcs11AesKeyring::new(token, &key_uri).map_err(err)
}

/// Create the SoftHSM AES key once, before any case runs.
pub fn create_softhsm_key() -> R<()> {
    let label = crate::common::TOKEN_LABEL;
    let pin = crate::common::USER_PIN;
    let token_uri = Pkcs11Uri::parse(&format!("pkcs11:token={label}?pin-value={pin}")).map_err(err)?;
    let token = Token::open_with(&token_uri, TokenOptions::default().pool_size(1)).map_err(err)?;
    token.generate_aes_key(HSM_KEY_LABEL, None).map_err(err)?;
    Ok(())
}

/// A CMM, and the cache inside it if there is one (for its statistics).
type CmmAndCache = (Box<dyn CryptographicMaterialsManager>, Option<Arc<Cached>>);

/// A CMM for `keyring`, with a cache if asked.
fn cmm_for(case: &Case, keyring: OurKeyring) -> R<CmmAndCache> {
    match keyring {
        OurKeyring::RawAes => {
            let ring = RawAesKeyring::new(KEY_NAMESPACE, KEY_NAME, &WRAPPING_KEY).map_err(err)?;
            Ok((Box::new(DefaultCmm::new(ring)), None))
        }
        OurKeyring::SoftHsm { cached } => {
            let ring = softhsm_keyring()?;
            let ring: Arc<dyn Keyring> = if case.latency_ms > 0 {
                Arc::new(Delayed::new(ring, Duration::from_millis(case.latency_ms)))
            } else {
                Arc::new(ring)
            };
            if cached {
                let cmm = Arc::new(
                    CachingCmm::builder_for_keyring(ring)
                        .max_age(Duration::from_secs(60))
                        .max_messages_per_key(10_000)
                        .build()
                        .map_err(err)?,
                );
                Ok((Box::new(Arc::clone(&cmm)), Some(cmm)))
            } else {
                Ok((Box::new(DefaultCmm::new(ring)), None))
            }
        }
    }
}

/// The caching CMM of the SoftHSM cases.
type Cached = CachingCmm<DefaultCmm<Arc<dyn Keyring>>>;

/// Run an hsm-keyring case.
pub fn run(case: &Case, keyring: OurKeyring) -> R<Outcome> {
    let suite = AlgorithmSuite::from_id(case.suite).map_err(err)?;
    let client = Client::builder().algorithm_suite(suite).frame_length(FRAME as u32).build().map_err(err)?;
    let context = EncryptionContext::from_pairs(crate::case::CONTEXT).map_err(err)?;
    let (cmm, cache) = cmm_for(case, keyring)?;
    let mut outcome = match case.mode {
        Mode::Rate => rate_case(case, &client, &*cmm, &context)?,
        Mode::Large => large_case(case, &client, &*cmm, &context)?,
    };
    if let Some(cache) = cache {
        let stats = cache.stats();
        outcome.notes.push(format!(
            "{} thread(s){}: cache hits {}, misses {}, keyring calls {}",
            case.threads,
            if case.latency_ms > 0 { format!(", +{} ms", case.latency_ms) } else { String::new() },
            stats.hits,
            stats.misses,
            stats.underlying_calls
        ));
    }
    Ok(outcome)
}

fn rate_case(
    case: &Case,
    client: &Client,
    cmm: &dyn CryptographicMaterialsManager,
    context: &EncryptionContext,
) -> R<Outcome> {
    let pt = plaintext(case.size);
    let message = client.encrypt(cmm, &pt, context).map_err(err)?;
    let back = client.decrypt(cmm, &message, context).map_err(err)?;
    if back.plaintext != pt {
        return Err("hsm-keyring: round trip changed the plaintext".to_owned());
    }
    let (pt, message) = (&pt, &message);
    let enc = move |_t: usize| -> R<Op<'_>> {
        let mut out = Vec::with_capacity(message.len() + 4096);
        Ok(Box::new(move || {
            out.clear();
            client.encrypt_into(cmm, pt, context, &mut out).map_err(err)
        }))
    };
    let dec = move |_t: usize| -> R<Op<'_>> {
        let mut out = Vec::with_capacity(pt.len());
        Ok(Box::new(move || {
            out.clear();
            client.decrypt_into(cmm, message, context, &mut out).map_err(err)?;
            if out.len() != pt.len() {
                return Err("hsm-keyring: wrong plaintext length".to_owned());
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

fn large_case(
    case: &Case,
    client: &Client,
    cmm: &dyn CryptographicMaterialsManager,
    context: &EncryptionContext,
) -> R<Outcome> {
    let pattern = pattern();
    let size = case.size as u64;

    // Encrypt: generator -> EncryptingWriter -> counting sink.
    let meter = PeakMeter::start()?;
    let enc = best_of(LARGE_RUNS, || {
        let start = Instant::now();
        let mut writer = client.encrypt_stream(cmm, context, CountingSink::default()).map_err(err)?;
        pump(&mut Generator::new(Arc::clone(&pattern), case.size), &mut writer)?;
        let sink = writer.finish().map_err(err)?;
        let elapsed = start.elapsed();
        if sink.written <= size {
            return Err("hsm-keyring: message shorter than the plaintext".to_owned());
        }
        Ok(elapsed)
    })?;
    let enc_peak = meter.growth_kib()?;

    // A message to decrypt, in a temporary file.
    let file = tempfile::NamedTempFile::new().map_err(err)?;
    {
        let out = BufWriter::with_capacity(64 << 10, File::create(file.path()).map_err(err)?);
        let mut writer = client.encrypt_stream(cmm, context, out).map_err(err)?;
        pump(&mut Generator::new(Arc::clone(&pattern), case.size), &mut writer)?;
        writer.finish().map_err(err)?.flush().map_err(err)?;
    }

    // Peak memory of decryption: stream the message from the file, so that
    // nothing of message size is held anywhere.
    let meter = PeakMeter::start()?;
    {
        let input = BufReader::with_capacity(64 << 10, File::open(file.path()).map_err(err)?);
        let mut reader = client.decrypt_stream(cmm, context, input).map_err(err)?;
        let n = pump(&mut reader, &mut CountingSink::default())?;
        if n != size {
            return Err(format!("hsm-keyring: decrypted {n} bytes, expected {size}"));
        }
    }
    let dec_peak = meter.growth_kib()?;

    // Time of decryption: from the message already in memory, as aws-esdk's
    // one-shot decrypt and the bare ceiling are timed.
    let message = std::fs::read(file.path()).map_err(err)?;
    let dec = best_of(LARGE_RUNS, || {
        let start = Instant::now();
        let mut reader = client.decrypt_stream(cmm, context, message.as_slice()).map_err(err)?;
        let n = pump(&mut reader, &mut CountingSink::default())?;
        let elapsed = start.elapsed();
        if n != size {
            return Err(format!("hsm-keyring: decrypted {n} bytes, expected {size}"));
        }
        Ok(elapsed)
    })?;
    Ok(Outcome {
        encrypt: Metric { per_sec: 1.0 / enc, peak_kib: Some(enc_peak), runs: Some(LARGE_RUNS) },
        decrypt: Metric { per_sec: 1.0 / dec, peak_kib: Some(dec_peak), runs: Some(LARGE_RUNS) },
        notes: Vec::new(),
    })
}
