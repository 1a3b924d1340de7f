//! Sender x receiver matrix: encrypt with {aws-esdk, hsm-keyring} x decrypt
//! with {aws-esdk, hsm-keyring}, each holding a keyring of either
//! implementation, over suites, plaintext sizes and encryption contexts; then
//! the negative cells (flipped byte, truncation, wrong context, policy) and
//! the required-encryption-context CMM on both sides.
//!
//! One test function per keyring kind walks its table of cells and reports
//! every failing cell by name.

use std::sync::Arc;

use hsm_keyring::interop::aws_esdk::{AwsEsdkKeyring, FromAwsEsdk};
use hsm_keyring::{AlgorithmSuite, CommitmentPolicy, Keyring};
use interop::{
    decrypt, encrypt, mpl, plaintext, raw_aes_pair, raw_rsa_pair, software, stored_context, DecryptSpec, EncryptSpec,
    Impl, KeyringImpl, KeyringPair, Pairs, Party, RsaPadding,
};

const SIZES: [usize; 6] = [0, 1, 4095, 4096, 4097, 1 << 20];

const EMPTY: &Pairs = &[];
const TWO_PAIRS: &Pairs = &[("tenant", "acme"), ("purpose", "interop")];
const NON_ASCII: &Pairs = &[("clé", "värde ✓"), ("日本語", "テキスト"), ("emoji", "🔐")];

const CONTEXTS: [(&str, &Pairs); 3] = [("empty", EMPTY), ("two pairs", TWO_PAIRS), ("non-ASCII", NON_ASCII)];

/// Suites with the sender's and receiver's commitment policies.
const SUITES: [(AlgorithmSuite, CommitmentPolicy, CommitmentPolicy); 3] = [
    (
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        CommitmentPolicy::RequireEncryptRequireDecrypt,
        CommitmentPolicy::RequireEncryptRequireDecrypt,
    ),
    (
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        CommitmentPolicy::RequireEncryptRequireDecrypt,
        CommitmentPolicy::RequireEncryptRequireDecrypt,
    ),
    (
        AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha256,
        CommitmentPolicy::ForbidEncryptAllowDecrypt,
        CommitmentPolicy::RequireEncryptAllowDecrypt,
    ),
];

const AES_KEY: [u8; 32] = *b"interop raw AES-256 wrapping key";
const OTHER_AES_KEY: [u8; 32] = *b"another raw AES-256 wrapping key";

const RSA_PRIVATE: &str = include_str!("data/rsa-2048-private.pem");
const RSA_PUBLIC: &str = include_str!("data/rsa-2048-public.pem");
const OTHER_RSA_PRIVATE: &str = include_str!("data/rsa-2048-other-private.pem");
const OTHER_RSA_PUBLIC: &str = include_str!("data/rsa-2048-other-public.pem");

/// Failures of a table, reported together.
#[derive(Default)]
struct Report {
    cells: usize,
    failures: Vec<String>,
}

impl Report {
    fn check(&mut self, cell: &str, outcome: Result<(), String>) {
        self.cells += 1;
        if let Err(reason) = outcome {
            self.failures.push(format!("{cell}: {reason}"));
        }
    }

    fn finish(self, table: &str) {
        assert!(self.cells > 0, "{table}: no cells ran");
        assert!(
            self.failures.is_empty(),
            "{table}: {} of {} cells failed:\n  {}",
            self.failures.len(),
            self.cells,
            self.failures.join("\n  ")
        );
    }
}

fn expect_failure(what: &str, outcome: Result<Vec<u8>, String>) -> Result<(), String> {
    match outcome {
        Ok(_) => Err(format!("{what} was accepted")),
        Err(_) => Ok(()),
    }
}

/// Round trips for every sender, receiver, suite, size and context.
async fn positive_cells(pair: &KeyringPair, report: &mut Report) {
    for sender in pair.parties() {
        for receiver in pair.parties() {
            for (suite, send_policy, receive_policy) in SUITES {
                for (ctx_name, ctx) in CONTEXTS {
                    // Every size with two pairs; the other contexts on a frame-crossing size.
                    let sizes: &[usize] = if ctx_name == "two pairs" { &SIZES } else { &[4097] };
                    for &size in sizes {
                        let cell = format!(
                            "[{}] {sender} -> {receiver}, suite 0x{:04X}, {size} bytes, context {ctx_name}",
                            pair.name,
                            suite.id()
                        );
                        let outcome =
                            round_trip(pair, sender, receiver, suite, send_policy, receive_policy, ctx, size).await;
                        report.check(&cell, outcome);
                    }
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn round_trip(
    pair: &KeyringPair,
    sender: Party,
    receiver: Party,
    suite: AlgorithmSuite,
    send_policy: CommitmentPolicy,
    receive_policy: CommitmentPolicy,
    ctx: &Pairs,
    size: usize,
) -> Result<(), String> {
    let pt = plaintext(size);
    let enc = EncryptSpec { suite, policy: send_policy, context: ctx, required_keys: &[] };
    let message = encrypt(sender, pair, enc, &pt).await.map_err(|e| format!("encrypt: {e}"))?;
    // A run of 16 plaintext bytes in the message means it was not encrypted.
    if size >= 16 && message.windows(16).any(|w| w == &pt[..16]) {
        return Err("the message contains the plaintext".into());
    }
    let dec = DecryptSpec { policy: receive_policy, context: ctx, required_keys: &[] };
    let out = decrypt(receiver, pair, dec, &message).await.map_err(|e| format!("decrypt: {e}"))?;
    if out != pt {
        return Err(format!("decrypted {} bytes that differ from the {} encrypted", out.len(), pt.len()));
    }
    Ok(())
}

/// Tampering, truncation, wrong context and policy: every receiver refuses.
async fn negative_cells(pair: &KeyringPair, report: &mut Report) {
    for sender in pair.parties() {
        for (suite, send_policy, receive_policy) in SUITES {
            let pt = plaintext(4097);
            let enc = EncryptSpec { suite, policy: send_policy, context: TWO_PAIRS, required_keys: &[] };
            let message = match encrypt(sender, pair, enc, &pt).await {
                Ok(m) => m,
                Err(e) => {
                    report.check(&format!("[{}] {sender} encrypt 0x{:04X}", pair.name, suite.id()), Err(e));
                    continue;
                }
            };
            for receiver in pair.parties() {
                let base = format!("[{}] {sender} -> {receiver}, suite 0x{:04X}", pair.name, suite.id());
                let dec = DecryptSpec { policy: receive_policy, context: TWO_PAIRS, required_keys: &[] };
                // Any single flipped byte: header fields, EDKs, body, last byte (tag or signature).
                let last = message.len().saturating_sub(1);
                for pos in [0, 1, 4, 40, 120, message.len() / 2, last] {
                    let mut bad = message.clone();
                    if let Some(b) = bad.get_mut(pos) {
                        *b ^= 0x01;
                    }
                    let outcome = decrypt(receiver, pair, dec, &bad).await;
                    report.check(&format!("{base}, byte {pos} flipped"), expect_failure("a tampered message", outcome));
                }
                let outcome = decrypt(receiver, pair, dec, &message[..last]).await;
                report.check(&format!("{base}, last byte cut"), expect_failure("a truncated message", outcome));
                let wrong: &Pairs = &[("tenant", "evil"), ("purpose", "interop")];
                let spec = DecryptSpec { context: wrong, ..dec };
                let outcome = decrypt(receiver, pair, spec, &message).await;
                report.check(&format!("{base}, wrong context"), expect_failure("a wrong context", outcome));
                if !suite.is_committing() {
                    let spec = DecryptSpec { policy: CommitmentPolicy::RequireEncryptRequireDecrypt, ..dec };
                    let outcome = decrypt(receiver, pair, spec, &message).await;
                    report.check(
                        &format!("{base}, require-decrypt policy"),
                        expect_failure("a non-committing suite", outcome),
                    );
                }
                // Sanity: the untouched message does decrypt, so the failures above are meaningful.
                let outcome = decrypt(receiver, pair, dec, &message).await.and_then(|out| {
                    if out == pt {
                        Ok(())
                    } else {
                        Err("plaintext differs".into())
                    }
                });
                report.check(&format!("{base}, untouched control"), outcome);
            }
        }
    }
}

/// A keyring holding another key fails on every message of the pair.
async fn wrong_key_cells(pair: &KeyringPair, other: &KeyringPair, report: &mut Report) {
    for sender in pair.parties() {
        let enc = EncryptSpec {
            suite: AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
            policy: CommitmentPolicy::default(),
            context: TWO_PAIRS,
            required_keys: &[],
        };
        let message = match encrypt(sender, pair, enc, &plaintext(100)).await {
            Ok(m) => m,
            Err(e) => {
                report.check(&format!("[{}] {sender} encrypt", pair.name), Err(e));
                continue;
            }
        };
        for receiver in other.parties() {
            let dec = DecryptSpec { policy: CommitmentPolicy::default(), context: TWO_PAIRS, required_keys: &[] };
            let outcome = decrypt(receiver, other, dec, &message).await;
            let cell = format!("[{} -> {}] {sender} -> {receiver}, wrong key", pair.name, other.name);
            report.check(&cell, expect_failure("another key", outcome));
        }
    }
}

#[tokio::test]
async fn raw_aes_matrix() {
    let pair = raw_aes_pair("aes-key-1", &AES_KEY).await.expect("raw AES keyrings");
    let other = raw_aes_pair("aes-key-1", &OTHER_AES_KEY).await.expect("other raw AES keyrings");
    let mut report = Report::default();
    positive_cells(&pair, &mut report).await;
    negative_cells(&pair, &mut report).await;
    wrong_key_cells(&pair, &other, &mut report).await;
    report.finish("raw AES");
}

async fn raw_rsa_matrix(padding: RsaPadding) {
    let pair = raw_rsa_pair("rsa-key-1", RSA_PRIVATE, RSA_PUBLIC, padding).await.expect("raw RSA keyrings");
    let other =
        raw_rsa_pair("rsa-key-1", OTHER_RSA_PRIVATE, OTHER_RSA_PUBLIC, padding).await.expect("other raw RSA keyrings");
    let mut report = Report::default();
    positive_cells(&pair, &mut report).await;
    negative_cells(&pair, &mut report).await;
    wrong_key_cells(&pair, &other, &mut report).await;
    // The same key with the other padding must not open the EDK.
    let flipped = match padding {
        RsaPadding::OaepSha1 => RsaPadding::OaepSha256,
        RsaPadding::OaepSha256 => RsaPadding::OaepSha1,
    };
    let other_padding = raw_rsa_pair("rsa-key-1", RSA_PRIVATE, RSA_PUBLIC, flipped).await.expect("RSA keyrings");
    wrong_key_cells(&pair, &other_padding, &mut report).await;
    report.finish(&format!("raw RSA {padding:?}"));
}

#[tokio::test]
async fn raw_rsa_oaep_sha1_matrix() {
    raw_rsa_matrix(RsaPadding::OaepSha1).await;
}

#[tokio::test]
async fn raw_rsa_oaep_sha256_matrix() {
    raw_rsa_matrix(RsaPadding::OaepSha256).await;
}

/// The required-encryption-context CMM on both sides: the required pair is
/// authenticated but not stored, and must be reproduced to decrypt.
#[tokio::test]
async fn required_encryption_context_matrix() {
    let pair = raw_aes_pair("aes-key-1", &AES_KEY).await.expect("raw AES keyrings");
    let full: &Pairs = &[("tenant", "acme"), ("purpose", "interop"), ("record", "Ω-42")];
    let required: &[&str] = &["record"];
    let reproduced: &Pairs = &[("record", "Ω-42")];
    let wrong: &Pairs = &[("record", "Ω-43")];
    let mut report = Report::default();
    for sender in pair.parties() {
        for suite in
            [AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384]
        {
            let policy = CommitmentPolicy::default();
            let pt = plaintext(5000);
            let enc = EncryptSpec { suite, policy, context: full, required_keys: required };
            let base = format!("[required context] {sender}, suite 0x{:04X}", suite.id());
            let message = match encrypt(sender, &pair, enc, &pt).await {
                Ok(m) => m,
                Err(e) => {
                    report.check(&format!("{base} encrypt"), Err(e));
                    continue;
                }
            };
            let stored = stored_context(&message).map_err(|e| format!("inspect: {e}")).and_then(|ctx| {
                match (ctx.get("record"), ctx.get("tenant")) {
                    (None, Some("acme")) => Ok(()),
                    _ => Err(format!("stored context is {ctx:?}")),
                }
            });
            report.check(&format!("{base}: required pair not stored, others stored"), stored);
            for receiver in pair.parties() {
                let cell = format!("{base} -> {receiver}");
                let ok = DecryptSpec { policy, context: reproduced, required_keys: required };
                let outcome = decrypt(receiver, &pair, ok, &message).await.and_then(|out| {
                    if out == pt {
                        Ok(())
                    } else {
                        Err("plaintext differs".into())
                    }
                });
                report.check(&format!("{cell}, reproduced pair"), outcome);
                let spec = DecryptSpec { context: wrong, ..ok };
                let outcome = decrypt(receiver, &pair, spec, &message).await;
                report.check(&format!("{cell}, wrong reproduced value"), expect_failure("a wrong value", outcome));
                let spec = DecryptSpec { context: &[], required_keys: &[], ..ok };
                let outcome = decrypt(receiver, &pair, spec, &message).await;
                report.check(&format!("{cell}, pair not reproduced"), expect_failure("a missing pair", outcome));
            }
        }
    }
    report.finish("required encryption context");
}

/// Adapters inside multi-keyrings: `aws-esdk`'s multi-keyring with one of our
/// keyrings as a child, and ours with one of theirs; each child alone opens the message.
#[tokio::test]
async fn multi_keyring_matrix() {
    let aes = raw_aes_pair("aes-key-1", &AES_KEY).await.expect("raw AES keyrings");
    let rsa =
        raw_rsa_pair("rsa-key-1", RSA_PRIVATE, RSA_PUBLIC, RsaPadding::OaepSha256).await.expect("raw RSA keyrings");
    let mut report = Report::default();
    let spec = EncryptSpec {
        suite: AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        policy: CommitmentPolicy::default(),
        context: TWO_PAIRS,
        required_keys: &[],
    };
    let dec = DecryptSpec { policy: CommitmentPolicy::default(), context: TWO_PAIRS, required_keys: &[] };
    let pt = plaintext(9000);

    // Theirs: generator = their AES, child = the RSA child of each implementation, through the adapter.
    for child_impl in rsa.keyring_impls() {
        let cell = format!("[multi] aws-esdk multi-keyring (AES + {child_impl:?} RSA child)");
        let child = match child_impl {
            KeyringImpl::Theirs => {
                // Their RSA keyring, through both adapters: exercises them inside their multi-keyring.
                let ours = Arc::new(FromAwsEsdk::new(rsa.theirs.clone(), "aws-esdk RSA")) as Arc<dyn Keyring>;
                AwsEsdkKeyring::keyring_ref(ours)
            }
            KeyringImpl::Ours => match rsa.for_esdk(KeyringImpl::Ours) {
                Ok(k) => k,
                Err(e) => {
                    report.check(&cell, Err(e));
                    continue;
                }
            },
        };
        let multi = mpl()
            .expect("mpl")
            .create_multi_keyring()
            .generator(aes.theirs.clone())
            .child_keyrings(vec![child])
            .send()
            .await;
        let multi = match multi {
            Ok(m) => m,
            Err(e) => {
                report.check(&cell, Err(format!("{e:?}")));
                continue;
            }
        };
        let multi_pair = KeyringPair { name: "multi".into(), theirs: multi, ours: None };
        let sender = Party { message: Impl::Esdk, keyring: KeyringImpl::Theirs };
        let message = match encrypt(sender, &multi_pair, spec, &pt).await {
            Ok(m) => m,
            Err(e) => {
                report.check(&format!("{cell} encrypt"), Err(e));
                continue;
            }
        };
        for (name, single) in [("AES", &aes), ("RSA", &rsa)] {
            for receiver in single.parties() {
                let outcome = decrypt(receiver, single, dec, &message).await.and_then(|out| {
                    if out == pt {
                        Ok(())
                    } else {
                        Err("plaintext differs".into())
                    }
                });
                report.check(&format!("{cell} -> {receiver} with {name} alone"), outcome);
            }
        }
    }

    // Ours: generator = our AES (if built), child = their RSA through the adapter.
    let generator = match aes.ours.clone() {
        Some(g) => Some(g),
        None => aes.for_ours(KeyringImpl::Theirs).ok(),
    };
    if let Some(generator) = generator {
        let child = rsa.for_ours(KeyringImpl::Theirs).expect("adapter");
        match software::multi(generator, vec![child]) {
            Ok(Some(multi)) => {
                let multi_pair =
                    KeyringPair { name: "our multi".into(), theirs: rsa.theirs.clone(), ours: Some(multi) };
                let sender = Party { message: Impl::Ours, keyring: KeyringImpl::Ours };
                match encrypt(sender, &multi_pair, spec, &pt).await {
                    Ok(message) => {
                        for (name, single) in [("AES", &aes), ("RSA", &rsa)] {
                            for receiver in single.parties() {
                                let outcome = decrypt(receiver, single, dec, &message).await.and_then(|out| {
                                    if out == pt {
                                        Ok(())
                                    } else {
                                        Err("plaintext differs".into())
                                    }
                                });
                                report.check(
                                    &format!("[multi] our multi-keyring -> {receiver} with {name} alone"),
                                    outcome,
                                );
                            }
                        }
                    }
                    Err(e) => report.check("[multi] our multi-keyring encrypt", Err(e)),
                }
            }
            Ok(None) => {} // No software multi-keyring in this build.
            Err(e) => report.check("[multi] our multi-keyring", Err(e)),
        }
    }
    report.finish("multi-keyring");
}

// ---------------------------------------------------------------------------
// TODO(SoftHSM): cells that need the PKCS#11 layer and a SoftHSM token.
//
// * `pkcs11_aes_vs_raw_aes_matrix`: import one AES-256 key into the token
//   (CKA_EXTRACTABLE false) and the same bytes into `aws-esdk`'s raw AES
//   keyring with the same namespace/name; build a `KeyringPair` with
//   `theirs` = that raw AES keyring and `ours` = the PKCS#11 AES keyring, then
//   run `positive_cells`, `negative_cells` and `wrong_key_cells` on it.
// * `pkcs11_aes_inside_aws_esdk`: the PKCS#11 AES keyring wrapped in
//   `AwsEsdkKeyring`, used by `aws-esdk` alone (both sender and receiver
//   `Impl::Esdk` with `KeyringImpl::Ours`), plus inside its multi-keyring as
//   in `multi_keyring_matrix`.
// * Skip (do not fail) when no SoftHSM module is configured, with a message.
// ---------------------------------------------------------------------------
