//! Cell walkers shared by the interop test binaries: the contexts, suites and
//! sizes of the matrix, round trips for every sender and receiver, the
//! negative cells, and a report that names every failing cell.
#![allow(dead_code)]

use hsm_keyring::{AlgorithmSuite, CommitmentPolicy};
use interop::{decrypt, encrypt, plaintext, DecryptSpec, EncryptSpec, KeyringPair, Pairs, Party};

/// Sizes round-tripped with every suite: empty, one byte, and just under, on
/// and just over the 4096-byte frame.
pub const SIZES: [usize; 5] = [0, 1, 4095, 4096, 4097];

/// The large size, round-tripped with one suite per keyring kind (see [`Plan::large_suite`]).
pub const LARGE: usize = 1 << 20;

pub const EMPTY: &Pairs = &[];
pub const TWO_PAIRS: &Pairs = &[("tenant", "acme"), ("purpose", "interop")];
pub const NON_ASCII: &Pairs = &[("clé", "värde ✓"), ("日本語", "テキスト"), ("emoji", "🔐")];

pub const CONTEXTS: [(&str, &Pairs); 3] = [("empty", EMPTY), ("two pairs", TWO_PAIRS), ("non-ASCII", NON_ASCII)];

/// A suite with the sender's and the receiver's commitment policies.
pub type SuiteCell = (AlgorithmSuite, CommitmentPolicy, CommitmentPolicy);

/// Every suite of the matrix: the two committing suites of message format v2
/// under the default policy, and 0x0178 (v1) where the policy allows it.
pub const SUITES: [SuiteCell; 3] = [
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

/// Which cells a table walks.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Suites, each with sender and receiver policies.
    pub suites: &'static [SuiteCell],
    /// Sizes round-tripped with the two-pair context (the other contexts use 4097 bytes).
    pub sizes: &'static [usize],
    /// The one suite whose round trips also carry a [`LARGE`] plaintext, for
    /// every sender and receiver; `None` for no large cells.
    pub large_suite: Option<AlgorithmSuite>,
}

/// Failures of a table, reported together.
#[derive(Default)]
pub struct Report {
    cells: usize,
    failures: Vec<String>,
}

impl Report {
    /// Count one cell; keep its name and reason if it failed.
    pub fn check(&mut self, cell: &str, outcome: Result<(), String>) {
        self.cells += 1;
        if let Err(reason) = outcome {
            self.failures.push(format!("{cell}: {reason}"));
        }
    }

    /// Print the summary line, then fail with every failing cell, if any.
    pub fn finish(self, table: &str) {
        println!("interop {table}: {} cells passed, {} failed", self.cells - self.failures.len(), self.failures.len());
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

/// A negative cell passes when the operation failed.
pub fn expect_failure(what: &str, outcome: Result<Vec<u8>, String>) -> Result<(), String> {
    match outcome {
        Ok(_) => Err(format!("{what} was accepted")),
        Err(_) => Ok(()),
    }
}

/// Round trips for every sender, receiver, suite, size and context of `plan`.
pub async fn positive_cells(pair: &KeyringPair, plan: &Plan, report: &mut Report) {
    for sender in pair.parties() {
        for receiver in pair.parties() {
            for &(suite, send_policy, receive_policy) in plan.suites {
                for (ctx_name, ctx) in CONTEXTS {
                    // Every size with two pairs; the other contexts on a frame-crossing size.
                    let mut sizes: Vec<usize> = if ctx_name == "two pairs" { plan.sizes.to_vec() } else { vec![4097] };
                    if ctx_name == "two pairs" && plan.large_suite == Some(suite) {
                        sizes.push(LARGE);
                    }
                    for size in sizes {
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

/// One round trip: `sender` encrypts, `receiver` decrypts, the plaintext comes back.
#[allow(clippy::too_many_arguments)]
pub async fn round_trip(
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

/// Tampering, truncation, wrong or extra reproduced context and policy: every
/// receiver refuses; a subset of the context and the untouched message pass.
pub async fn negative_cells(pair: &KeyringPair, plan: &Plan, report: &mut Report) {
    for sender in pair.parties() {
        for &(suite, send_policy, receive_policy) in plan.suites {
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
                // A reproduced pair the message does not have: refused (AES: the EDK's AAD; RSA: the header).
                let extra: &Pairs = &[("tenant", "acme"), ("purpose", "interop"), ("extra", "x")];
                let outcome = decrypt(receiver, pair, DecryptSpec { context: extra, ..dec }, &message).await;
                report.check(&format!("{base}, extra reproduced pair"), expect_failure("an extra pair", outcome));
                // A subset of the stored context is a valid reproduction.
                let subset: &Pairs = &[("tenant", "acme")];
                let outcome = decrypt(receiver, pair, DecryptSpec { context: subset, ..dec }, &message)
                    .await
                    .and_then(|out| if out == pt { Ok(()) } else { Err("plaintext differs".into()) });
                report.check(&format!("{base}, subset of the context reproduced"), outcome);
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
pub async fn wrong_key_cells(pair: &KeyringPair, other: &KeyringPair, report: &mut Report) {
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
