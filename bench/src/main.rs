//! Side-by-side benchmark of hsm-keyring against the AWS Encryption SDK for
//! Rust (`aws-esdk`) and bare AES-256-GCM, printed as one markdown table.
//!
//! Run it with `bench/run.sh` (see `bench/README.md`).
//!
//! # Two backends in one run
//!
//! hsm-keyring's primitive backend is a cargo feature (`aws-lc`), and a
//! feature is decided once per package per build: one binary cannot contain
//! hsm-keyring both with and without it. So the benchmark is built twice
//! from the same source:
//!
//! * the **main** binary, with the `references` feature (aws-esdk, aws-lc-rs)
//!   and hsm-keyring's `aws-lc` backend;
//! * the **worker** binary, built with `--no-default-features` into its own
//!   target directory: hsm-keyring with the default RustCrypto backend and
//!   nothing else.
//!
//! The main binary is the orchestrator. Every measurement (a [`case::Case`])
//! runs in a fresh child process: the main binary re-executes itself with
//! `--case <json>`, or runs the worker with `--case <json>` for the cases of
//! the other backend, and reads one JSON [`case::Outcome`] back from the
//! child's standard output. Cases of the two backends and of the references
//! are run one after the other for each cell of the table, so load on a
//! shared machine hits them alike, and a fresh process per case gives each
//! its own peak-memory measurement (`VmHWM`, reset through
//! `/proc/self/clear_refs` after the case's setup).

#![forbid(unsafe_code)]

mod bare;
mod case;
#[path = "../../tests/common/mod.rs"]
mod common;
#[cfg(feature = "references")]
mod esdk;
mod latency;
mod measure;
mod ours;
mod report;
#[cfg(feature = "references")]
mod scaling;

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use case::{Backend, Case, Mode, OurKeyring, Outcome, Subject};
use measure::R;

const USAGE: &str = "\
usage: bench [--worker PATH] [--token-latency-ms N] [--round-ms N] [--no-large]
       bench --scaling [--runs N] [--suite 0x0478|0x0578] [--api stream|one-shot] [--workers 1,2,..]

  --worker PATH          the bench binary built with the other hsm-keyring backend
                         (default: $BENCH_WORKER; without it only this build's backend is measured)
  --token-latency-ms N   simulated delay per token call for the network-HSM rows (default 1; 0: no such rows)
  --round-ms N           length of one timed round of the rate measurements (default 300)
  --no-large             skip the 64 MiB cases
  --scaling              only the scaling of parallel frames: 64 MiB messages with 1, 2 and
                         (more cores) all workers, against bare SHA-384; --runs N rounds (default 5),
                         --suite and --api pick one suite or one API, --workers the counts
";

/// Command-line options of the orchestrator.
#[derive(Debug)]
struct Options {
    worker: Option<PathBuf>,
    latency_ms: u64,
    round_secs: f64,
    large: bool,
}

fn parse_options(args: &[String]) -> R<Options> {
    let mut options = Options {
        worker: std::env::var_os("BENCH_WORKER").filter(|v| !v.is_empty()).map(PathBuf::from),
        latency_ms: 1,
        round_secs: 0.3,
        large: true,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--worker" => options.worker = Some(PathBuf::from(value("--worker")?)),
            "--token-latency-ms" => {
                options.latency_ms =
                    value("--token-latency-ms")?.parse().map_err(|e| format!("--token-latency-ms: {e}"))?
            }
            "--round-ms" => {
                let ms: u64 = value("--round-ms")?.parse().map_err(|e| format!("--round-ms: {e}"))?;
                options.round_secs = ms.max(10) as f64 / 1000.0;
            }
            "--no-large" => options.large = false,
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--case") => child(args.get(1).map(String::as_str).unwrap_or_default()),
        #[cfg(feature = "references")]
        Some("--scaling") => scaling::run(&args[1..]),
        Some("--backend") => {
            println!("{}", Backend::this_build().name());
            Ok(())
        }
        Some("--help" | "-h") => {
            print!("{USAGE}");
            Ok(())
        }
        _ => parse_options(&args).and_then(|o| orchestrate(&o)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Child mode: run one case, print its outcome as one JSON line.
fn child(json: &str) -> R<()> {
    let case: Case = serde_json::from_str(json).map_err(|e| format!("bad case {json:?}: {e}"))?;
    let outcome = case::run(&case)?;
    println!("{}", serde_json::to_string(&outcome).map_err(|e| e.to_string())?);
    Ok(())
}

/// A measured (or failed) case.
#[derive(Debug, Clone)]
pub struct Row {
    /// The case.
    pub case: Case,
    /// Its outcome, or why it failed.
    pub outcome: Result<Outcome, String>,
}

fn orchestrate(options: &Options) -> R<()> {
    let started = Instant::now();
    let own = Backend::this_build();
    let me = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    if !cfg!(feature = "references") {
        return Err("the orchestrator needs the `references` feature (this is a worker build)".to_owned());
    }
    let mut backends = vec![own];
    let mut notes = Vec::new();
    if let Some(worker) = &options.worker {
        let out = Command::new(worker).arg("--backend").output().map_err(|e| format!("{}: {e}", worker.display()))?;
        let name = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let other = match name.as_str() {
            "rustcrypto" => Backend::RustCrypto,
            "aws-lc" => Backend::AwsLc,
            _ => return Err(format!("{} is not a bench binary (said {name:?})", worker.display())),
        };
        if other == own {
            return Err(format!("the worker {} uses the same backend ({name}) as this build", worker.display()));
        }
        backends.insert(0, other);
        backends.sort_by_key(|b| *b != Backend::RustCrypto);
    } else {
        notes.push(format!("No worker binary given: only the {} backend was measured.", own.name()));
    }

    // The SoftHSM token: created here, used by the children through SOFTHSM2_CONF.
    let hsm = common::softhsm();
    if hsm.is_some() {
        ours::create_softhsm_key()?;
    } else {
        notes.push("SoftHSM is not installed: no SoftHSM rows.".to_owned());
    }

    let cases = plan(options, &backends, hsm.is_some());
    let mut rows = Vec::with_capacity(cases.len());
    for (i, case) in cases.iter().enumerate() {
        let exe = match case.subject {
            Subject::Ours { backend, .. } if backend != own => options.worker.as_ref().unwrap_or(&me),
            _ => &me,
        };
        eprintln!(
            "[{:>2}/{}] {:>5.0} s  {}",
            i + 1,
            cases.len(),
            started.elapsed().as_secs_f64(),
            report::describe(case)
        );
        let outcome = run_child(exe, case);
        if let Err(e) = &outcome {
            eprintln!("        failed: {e}");
        }
        rows.push(Row { case: *case, outcome });
    }
    if let Some(hsm) = hsm {
        // The token directory is held by a static and never dropped: remove it here.
        let _ = std::fs::remove_dir_all(&hsm.dir);
    }
    let elapsed = started.elapsed();
    report::print(&rows, options.latency_ms, &notes, elapsed);
    Ok(())
}

fn run_child(exe: &PathBuf, case: &Case) -> R<Outcome> {
    let json = serde_json::to_string(case).map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .arg("--case")
        .arg(&json)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    if !out.status.success() {
        return Err(format!("child exited with {}", out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().ok_or("child printed nothing")?;
    serde_json::from_str(line).map_err(|e| format!("bad child output {line:?}: {e}"))
}

/// The 1 KiB, 1 MiB and 64 MiB sizes.
pub const KIB: usize = 1 << 10;
/// One mebibyte.
pub const MIB: usize = 1 << 20;
/// The large size.
pub const LARGE: usize = 64 << 20;
/// The two suites compared.
pub const SUITES: [u16; 2] = [0x0478, 0x0578];

/// Every case, in run order: all implementations of one cell one after the other.
fn plan(options: &Options, backends: &[Backend], softhsm: bool) -> Vec<Case> {
    let own = Backend::this_build();
    let base = |subject, suite, size, threads, mode| Case {
        subject,
        suite,
        size,
        threads,
        latency_ms: 0,
        mode,
        round_secs: options.round_secs,
    };
    let mut cases = Vec::new();
    let mut sizes = vec![(KIB, 1), (KIB, 2), (MIB, 1)];
    if options.large {
        sizes.push((LARGE, 1));
    }
    for (size, threads) in sizes {
        let mode = if size == LARGE { Mode::Large } else { Mode::Rate };
        cases.push(base(Subject::BareAesGcm, 0x0478, size, threads, mode));
        cases.push(base(Subject::BareAwsLc, 0x0478, size, threads, mode));
        for suite in SUITES {
            for &backend in backends {
                cases.push(base(Subject::Ours { backend, keyring: OurKeyring::RawAes }, suite, size, threads, mode));
            }
            cases.push(base(Subject::Esdk, suite, size, threads, mode));
        }
        if softhsm && size == KIB {
            let mut latencies = vec![0];
            if options.latency_ms > 0 {
                latencies.push(options.latency_ms);
            }
            for latency_ms in latencies {
                for cached in [false, true] {
                    let subject = Subject::Ours { backend: own, keyring: OurKeyring::SoftHsm { cached } };
                    cases.push(Case { latency_ms, ..base(subject, 0x0478, size, threads, mode) });
                }
            }
        }
    }
    cases
}
