//! Scaling of parallel frames: 64 MiB messages (4 KiB frames, raw AES
//! keyring) sealed and opened with 1, 2 and, where the machine has more
//! cores, as many workers as cores; streaming (`encrypt_stream` from a
//! generator into a sink, `decrypt_stream` from memory into a sink) and
//! one-shot (`encrypt`/`decrypt`, each call allocating its output). Signed
//! suites are compared with bare SHA-384 (`aws-lc-rs`) over the same number
//! of bytes, measured in the same run: their hash is the part that cannot be
//! split over workers.
//!
//! All configurations of one round run one after the other, for `--runs`
//! rounds; each keeps its best round, so load on a shared machine falls on
//! them alike. Runs in this process (no peak-memory figures here).

use std::sync::Arc;
use std::time::Instant;

use hsm_keyring::cmm::DefaultCmm;
use hsm_keyring::keyrings::RawAesKeyring;
use hsm_keyring::{AlgorithmSuite, Client, EncryptionContext};

use crate::case::{CONTEXT, FRAME, KEY_NAME, KEY_NAMESPACE, WRAPPING_KEY};
use crate::measure::{pattern, plaintext, pump, CountingSink, Generator, R};
use crate::LARGE;

/// Which API a row measures.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Api {
    Stream,
    OneShot,
}

/// One measured configuration: best seconds for encrypt and decrypt.
#[derive(Debug, Clone)]
struct Row {
    suite: u16,
    api: Api,
    workers: usize,
    enc: f64,
    dec: f64,
    /// CPU seconds of the process (all threads) and wall seconds, summed over every round.
    cpu: f64,
    wall: f64,
}

/// CPU time of this process so far (user + system, all threads), in seconds,
/// from `/proc/self/stat` (clock ticks of 10 ms).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which ends with the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Parse `--runs N`, `--suite 0x0478|0x0578`, `--api stream|one-shot`;
/// measure, print the table and the targets.
pub fn run(args: &[String]) -> R<()> {
    let mut runs = 5u32;
    let mut only_workers: Option<Vec<usize>> = None;
    let mut suites = vec![0x0478u16, 0x0578];
    let mut apis = vec![Api::Stream, Api::OneShot];
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--runs" => runs = value("--runs")?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--workers" => {
                let list = value("--workers")?;
                let parsed: Result<Vec<usize>, _> = list.split(',').map(str::parse).collect();
                only_workers = Some(parsed.map_err(|e| format!("--workers: {e}"))?);
            }
            "--suite" => match value("--suite")?.as_str() {
                "0x0478" => suites = vec![0x0478],
                "0x0578" => suites = vec![0x0578],
                other => return Err(format!("--suite: {other:?} is not 0x0478 or 0x0578")),
            },
            "--api" => match value("--api")?.as_str() {
                "stream" => apis = vec![Api::Stream],
                "one-shot" => apis = vec![Api::OneShot],
                other => return Err(format!("--api: {other:?} is not stream or one-shot")),
            },
            other => return Err(format!("unknown argument {other:?} after --scaling")),
        }
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut workers = vec![1, 2];
    if cores > 2 {
        workers.push(cores);
    }
    if let Some(list) = only_workers {
        workers = list;
    }
    let keyring = RawAesKeyring::new(KEY_NAMESPACE, KEY_NAME, &WRAPPING_KEY).map_err(err)?;
    let cmm = DefaultCmm::new(keyring);
    let context = EncryptionContext::from_pairs(CONTEXT).map_err(err)?;
    let pt = plaintext(LARGE);
    let pat = pattern();

    let mut rows = Vec::new();
    let mut messages = Vec::new();
    for suite in [0x0478u16, 0x0578] {
        let s = AlgorithmSuite::from_id(suite).map_err(err)?;
        let c = Client::builder().algorithm_suite(s).frame_length(FRAME as u32).build().map_err(err)?;
        messages.push(c.encrypt(&cmm, &pt, &context).map_err(err)?);
        if !suites.contains(&suite) {
            continue;
        }
        for &api in &apis {
            for &w in &workers {
                rows.push(Row { suite, api, workers: w, enc: f64::INFINITY, dec: f64::INFINITY, cpu: 0.0, wall: 0.0 });
            }
        }
    }
    let mut sha = f64::INFINITY;
    for round in 0..runs {
        eprintln!("scaling: round {}/{runs}", round + 1);
        for row in rows.iter_mut() {
            let s = AlgorithmSuite::from_id(row.suite).map_err(err)?;
            let c = Client::builder()
                .algorithm_suite(s)
                .frame_length(FRAME as u32)
                .workers(row.workers)
                .build()
                .map_err(err)?;
            let message = &messages[usize::from(row.suite == 0x0578)];
            let (cpu0, wall0) = (cpu_secs(), Instant::now());
            let (enc, dec) = match row.api {
                Api::Stream => {
                    let start = Instant::now();
                    let mut w = c.encrypt_stream(&cmm, &context, CountingSink::default()).map_err(err)?;
                    pump(&mut Generator::new(Arc::clone(&pat), LARGE), &mut w)?;
                    let sink = w.finish().map_err(err)?;
                    let enc = start.elapsed().as_secs_f64();
                    // The same length as the one-shot message, up to the DER signature's.
                    if (sink.written as usize).abs_diff(message.len()) > 4 {
                        return Err("scaling: streamed message of the wrong length".to_owned());
                    }
                    let start = Instant::now();
                    let mut r = c.decrypt_stream(&cmm, &context, message.as_slice()).map_err(err)?;
                    let n = pump(&mut r, &mut CountingSink::default())?;
                    let dec = start.elapsed().as_secs_f64();
                    if n as usize != LARGE {
                        return Err(format!("scaling: decrypted {n} bytes"));
                    }
                    (enc, dec)
                }
                Api::OneShot => {
                    let start = Instant::now();
                    let sealed = c.encrypt(&cmm, &pt, &context).map_err(err)?;
                    let enc = start.elapsed().as_secs_f64();
                    if sealed.len().abs_diff(message.len()) > 4 {
                        return Err("scaling: one-shot message of the wrong length".to_owned());
                    }
                    drop(sealed);
                    let start = Instant::now();
                    let opened = c.decrypt(&cmm, message, &context).map_err(err)?;
                    let dec = start.elapsed().as_secs_f64();
                    if opened.plaintext != pt {
                        return Err("scaling: one-shot round trip changed the plaintext".to_owned());
                    }
                    (enc, dec)
                }
            };
            row.cpu += cpu_secs() - cpu0;
            row.wall += wall0.elapsed().as_secs_f64();
            row.enc = row.enc.min(enc);
            row.dec = row.dec.min(dec);
        }
        // Bare SHA-384 over as many bytes as a 0x0578 message hashes.
        let start = Instant::now();
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA384);
        for chunk in messages[1].chunks(64 << 10) {
            ctx.update(chunk);
        }
        let digest = ctx.finish();
        sha = sha.min(start.elapsed().as_secs_f64());
        if digest.as_ref().len() != 48 {
            return Err("scaling: SHA-384 digest of the wrong length".to_owned());
        }
    }
    print(&rows, sha, messages[1].len(), runs, cores);
    Ok(())
}

fn mbps(secs: f64) -> f64 {
    LARGE as f64 / secs / 1e6
}

fn print(rows: &[Row], sha: f64, sha_bytes: usize, runs: u32, cores: usize) {
    let sha_mbps = sha_bytes as f64 / sha / 1e6;
    println!("## Parallel frames: scaling\n");
    println!(
        "64 MiB plaintext, 4 KiB frames, raw AES keyring, hsm-keyring on aws-lc, best of {runs} interleaved \
         rounds. Bare SHA-384 (`aws-lc-rs`, the {} MiB of a 0x0578 message in 64 KiB updates): {:.0} MB/s.\n",
        sha_bytes >> 20,
        sha_mbps
    );
    println!(
        "| suite | API | workers | encrypt | decrypt | encrypt vs 1 worker | decrypt vs 1 worker | vs bare SHA-384 (enc / dec) | CPU time vs 1 worker | CPUs busy |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let base = rows.iter().find(|b| b.suite == r.suite && b.api == r.api && b.workers == 1);
        let (e1, d1) = base.map_or((f64::NAN, f64::NAN), |b| (b.enc / r.enc, b.dec / r.dec));
        let sha_cell = if r.suite == 0x0578 {
            format!("{:.2}x / {:.2}x", mbps(r.enc) / sha_mbps, mbps(r.dec) / sha_mbps)
        } else {
            String::new()
        };
        let cpu_vs_1 = base.map_or(f64::NAN, |b| r.cpu / b.cpu);
        let busy = r.cpu / r.wall;
        println!(
            "| 0x{:04X} | {} | {} | {:.0} MB/s | {:.0} MB/s | {e1:.2}x | {d1:.2}x | {sha_cell} | {cpu_vs_1:.2}x | {busy:.2} |",
            r.suite,
            match r.api {
                Api::Stream => "stream",
                Api::OneShot => "one-shot",
            },
            r.workers,
            mbps(r.enc),
            mbps(r.dec)
        );
    }
    println!(
        "\nCPU time: user + system time of the process over all rounds of the row (10 ms ticks); \
         \"CPU time vs 1 worker\" is the extra work parallel frames cost, \"CPUs busy\" the CPU time \
         over the wall time of the row (below the worker count when other processes hold the cores)."
    );
    println!("\n### Targets\n");
    for api in [Api::Stream, Api::OneShot] {
        let find = |suite: u16, w: usize| rows.iter().find(|r| r.suite == suite && r.api == api && r.workers == w);
        if let (Some(one), Some(two)) = (find(0x0478, 1), find(0x0478, 2)) {
            for (what, ratio) in [("encrypt", one.enc / two.enc), ("decrypt", one.dec / two.dec)] {
                let verdict = if ratio >= 1.7 { "met" } else { "missed" };
                println!("- 0x0478 {api:?} {what}, 2 workers vs 1: {ratio:.2}x (goal >= 1.7x): {verdict}");
            }
        }
        if let Some(best) = find(0x0578, cores.max(2)).or_else(|| find(0x0578, 2)) {
            for (what, secs) in [("encrypt", best.enc), ("decrypt", best.dec)] {
                let ratio = mbps(secs) / sha_mbps;
                let verdict = if ratio >= 0.9 { "met" } else { "missed" };
                println!(
                    "- 0x0578 {api:?} {what}, {} workers vs bare SHA-384: {ratio:.2}x (goal >= 0.9x): {verdict}",
                    best.workers
                );
            }
        }
    }
    println!("\n{}", crate::report::machine());
}
