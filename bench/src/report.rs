//! The table, its ratios, and the targets.

use std::time::Duration;

use crate::case::{Backend, Case, Metric, Mode, OurKeyring, Subject};
use crate::{Row, KIB, LARGE, MIB};

/// Human name of a case's implementation.
pub fn implementation(case: &Case) -> String {
    match case.subject {
        Subject::BareAesGcm => "bare AES-256-GCM, `aes-gcm`".to_owned(),
        Subject::BareAwsLc => "bare AES-256-GCM, `aws-lc-rs`".to_owned(),
        Subject::Esdk => "aws-esdk, raw AES".to_owned(),
        Subject::Ours { backend, keyring } => {
            let ring = match keyring {
                OurKeyring::RawAes => "raw AES".to_owned(),
                OurKeyring::SoftHsm { cached } => {
                    let mut s = "SoftHSM AES".to_owned();
                    if cached {
                        s.push_str(", cached");
                    }
                    if case.latency_ms > 0 {
                        s.push_str(&format!(", +{} ms/token call", case.latency_ms));
                    }
                    s
                }
            };
            format!("hsm-keyring ({}), {ring}", backend.name())
        }
    }
}

fn size_name(size: usize) -> String {
    if size >= MIB {
        format!("{} MiB", size / MIB)
    } else {
        format!("{} KiB", size / KIB)
    }
}

fn is_bare(case: &Case) -> bool {
    matches!(case.subject, Subject::BareAesGcm | Subject::BareAwsLc)
}

/// One line for the progress log.
pub fn describe(case: &Case) -> String {
    let suite = if is_bare(case) { String::new() } else { format!(" 0x{:04X}", case.suite) };
    format!("{} {}{} x{} thread(s)", size_name(case.size), implementation(case), suite, case.threads)
}

/// Thousands separators.
fn group(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn cell(case: &Case, m: &Metric) -> String {
    if case.size <= 64 * KIB {
        let latency_us = case.threads as f64 / m.per_sec * 1e6;
        format!("{} msg/s, {latency_us:.1} µs", group(m.per_sec))
    } else {
        let mbps = m.per_sec * case.size as f64 / 1e6;
        let runs = match m.runs {
            Some(1) => " (1 run)".to_owned(),
            _ => String::new(),
        };
        format!("{} MB/s{runs}", group(mbps))
    }
}

fn find(rows: &[Row], pred: impl Fn(&Case) -> bool) -> Option<&Row> {
    rows.iter().find(|r| pred(&r.case))
}

/// The aws-esdk row of the same cell.
fn esdk_of<'a>(rows: &'a [Row], case: &Case) -> Option<&'a Row> {
    find(rows, |c| {
        c.subject == Subject::Esdk && c.suite == case.suite && c.size == case.size && c.threads == case.threads
    })
}

/// The bare AES-GCM row with the same primitives.
fn bare_of<'a>(rows: &'a [Row], case: &Case) -> Option<&'a Row> {
    let subject = match case.subject {
        Subject::Ours { backend: Backend::RustCrypto, .. } => Subject::BareAesGcm,
        Subject::Ours { backend: Backend::AwsLc, .. } | Subject::Esdk => Subject::BareAwsLc,
        _ => return None,
    };
    find(rows, |c| c.subject == subject && c.size == case.size && c.threads == case.threads)
}

fn ratio(a: &Row, b: Option<&Row>, decrypt: bool) -> Option<f64> {
    let (a, b) = (a.outcome.as_ref().ok()?, b?.outcome.as_ref().ok()?);
    let (x, y) = if decrypt { (a.decrypt.per_sec, b.decrypt.per_sec) } else { (a.encrypt.per_sec, b.encrypt.per_sec) };
    Some(x / y)
}

fn ratio_cell(r: Option<f64>) -> String {
    match r {
        Some(r) if r >= 10.0 => format!("{r:.0}x"),
        Some(r) => format!("{r:.2}x"),
        None => "—".to_owned(),
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Print the table, the targets and the notes.
pub fn print(rows: &[Row], latency_ms: u64, notes: &[String], elapsed: Duration) {
    println!("## hsm-keyring vs aws-esdk vs bare AES-256-GCM");
    println!();
    println!("{}", machine());
    println!();
    println!("| size | implementation | suite | threads | encrypt | decrypt | enc × aws-esdk | dec × aws-esdk | enc × bare | dec × bare | peak memory enc / dec |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut all_notes: Vec<String> = notes.to_vec();
    for row in rows {
        let case = &row.case;
        let suite = if is_bare(case) { "—".to_owned() } else { format!("0x{:04X}", case.suite) };
        let head = format!("| {} | {} | {suite} | {} |", size_name(case.size), implementation(case), case.threads);
        match &row.outcome {
            Err(e) => {
                println!("{head} failed | failed | | | | | |");
                all_notes.push(format!("{}: failed: {e}", describe(case)));
            }
            Ok(o) => {
                let vs_esdk = if matches!(case.subject, Subject::Ours { .. }) { esdk_of(rows, case) } else { None };
                let bare = bare_of(rows, case);
                let peak = match (o.encrypt.peak_kib, o.decrypt.peak_kib) {
                    (Some(e), Some(d)) => format!("{} / {}", mib(e), mib(d)),
                    _ => "—".to_owned(),
                };
                println!(
                    "{head} {} | {} | {} | {} | {} | {} | {peak} |",
                    cell(case, &o.encrypt),
                    cell(case, &o.decrypt),
                    ratio_cell(ratio(row, vs_esdk, false)),
                    ratio_cell(ratio(row, vs_esdk, true)),
                    ratio_cell(ratio(row, bare, false)),
                    ratio_cell(ratio(row, bare, true)),
                );
                all_notes.extend(o.notes.iter().map(|n| format!("{}: {n}", implementation(case))));
            }
        }
    }
    println!();
    println!("1 KiB cells: messages per second over all threads, and the mean time per message seen by one thread.");
    println!("Larger cells: MB/s (10^6 bytes of plaintext per second). Ratios are throughput ratios against a row");
    println!("of the same run: `× aws-esdk` against aws-esdk with the same suite, size and threads; `× bare` against");
    println!("bare AES-256-GCM of the same library (`aes-gcm` for RustCrypto, `aws-lc-rs` for aws-lc and aws-esdk),");
    println!("which seals the plaintext in 4 KiB chunks (the frame length of every message here) with no key");
    println!("derivation, header or signature. 1 KiB and 1 MiB: in memory, best of 3 timed rounds; hsm-keyring uses");
    println!("`encrypt_into`/`decrypt_into` with reused buffers, aws-esdk takes owned copies (its API takes input by");
    println!("value). 64 MiB: hsm-keyring streams (`encrypt_stream` from a generator into a sink, `decrypt_stream`");
    println!("from the message in memory into a sink), best of 3, and so do the bare ceilings (4 KiB chunk and");
    println!("tag records); aws-esdk is one-shot (plaintext or message in memory), best of 3, timing only the call.");
    println!("Peak memory: growth of VmHWM over the case, in a process of its own; hsm-keyring's decryption peak");
    println!("comes from a separate run that streams the message from a file; the in-memory input of a one-shot");
    println!("call is included.");
    println!();
    print_targets(rows, latency_ms);
    if !all_notes.is_empty() {
        println!();
        println!("Notes:");
        println!();
        for n in &all_notes {
            println!("- {n}");
        }
    }
    println!();
    println!("Run time: {:.0} s.", elapsed.as_secs_f64());
}

pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!("Machine: {cpus} CPUs, {model}; load average at the end: {load}.")
}

struct Target {
    what: String,
    measured: Option<f64>,
    goal: f64,
    /// `true`: measured must be at least goal; `false`: below it.
    at_least: bool,
    unit: &'static str,
    /// Bare AES-GCM of the same library against the same reference: the best any message format could do.
    ceiling: Option<f64>,
}

fn ours(backend: Backend) -> impl Fn(&Case, u16, usize, usize) -> bool {
    move |c, suite, size, threads| {
        c.subject == (Subject::Ours { backend, keyring: OurKeyring::RawAes })
            && c.suite == suite
            && c.size == size
            && c.threads == threads
    }
}

fn print_targets(rows: &[Row], latency_ms: u64) {
    let mut targets = Vec::new();
    let dirs = [(false, "encrypt"), (true, "decrypt")];
    for (backend, goal) in [(Backend::AwsLc, 40.0), (Backend::RustCrypto, 10.0)] {
        for size in [MIB, LARGE] {
            for (decrypt, dir) in dirs {
                let row = find(rows, |c| ours(backend)(c, 0x0478, size, 1));
                targets.push(Target {
                    what: format!(
                        "hsm-keyring ({}) 0x0478 {} {dir} throughput vs aws-esdk 0x0478",
                        backend.name(),
                        size_name(size)
                    ),
                    measured: row.and_then(|r| ratio(r, esdk_of(rows, &r.case), decrypt)),
                    goal,
                    at_least: true,
                    unit: "x",
                    ceiling: row.and_then(|r| ratio(bare_of(rows, &r.case)?, esdk_of(rows, &r.case), decrypt)),
                });
            }
        }
    }
    for threads in [1, 2] {
        for (decrypt, dir) in dirs {
            let row = find(rows, |c| ours(Backend::AwsLc)(c, 0x0578, KIB, threads));
            targets.push(Target {
                what: format!("hsm-keyring (aws-lc) 0x0578 1 KiB {dir} messages/s vs aws-esdk, {threads} thread(s)"),
                measured: row.and_then(|r| ratio(r, esdk_of(rows, &r.case), decrypt)),
                goal: 1.5,
                at_least: true,
                unit: "x",
                ceiling: None,
            });
        }
    }
    if latency_ms > 0 {
        for threads in [1, 2] {
            for (decrypt, dir) in dirs {
                let hsm = |cached: bool| {
                    find(rows, |c| {
                        matches!(c.subject, Subject::Ours { keyring: OurKeyring::SoftHsm { cached: k }, .. } if k == cached)
                            && c.latency_ms == latency_ms
                            && c.threads == threads
                    })
                };
                targets.push(Target {
                    what: format!(
                        "SoftHSM AES +{latency_ms} ms/token call, 1 KiB {dir} messages/s: cached vs uncached, {threads} thread(s)"
                    ),
                    measured: hsm(true).and_then(|r| ratio(r, hsm(false), decrypt)),
                    goal: 50.0,
                    at_least: true,
                    unit: "x",
                    ceiling: None,
                });
            }
        }
    }
    for row in rows.iter().filter(|r| r.case.mode == Mode::Large && matches!(r.case.subject, Subject::Ours { .. })) {
        for (decrypt, dir) in dirs {
            let peak =
                row.outcome.as_ref().ok().and_then(|o| if decrypt { o.decrypt.peak_kib } else { o.encrypt.peak_kib });
            targets.push(Target {
                what: format!(
                    "{} 0x{:04X} 64 MiB streamed {dir}: peak memory",
                    implementation(&row.case),
                    row.case.suite
                ),
                measured: peak.map(|k| k as f64 / 1024.0),
                goal: 16.0,
                at_least: false,
                unit: " MiB",
                ceiling: None,
            });
        }
    }
    println!("### Targets (reported, not asserted)");
    println!();
    println!("`ceiling`: bare AES-256-GCM of the same library against the same aws-esdk row, i.e. the ratio a");
    println!("message format with zero overhead would reach.");
    println!();
    println!("| target | goal | measured | ceiling | |");
    println!("|---|---|---|---|---|");
    for t in &targets {
        let goal = if t.at_least { format!("≥ {}{}", t.goal, t.unit) } else { format!("< {}{}", t.goal, t.unit) };
        let (measured, verdict) = match t.measured {
            None => ("—".to_owned(), "not measured"),
            Some(m) => {
                let met = if t.at_least { m >= t.goal } else { m < t.goal };
                let text = if t.unit == "x" { ratio_cell(Some(m)) } else { format!("{m:.1}{}", t.unit) };
                (text, if met { "met" } else { "**missed**" })
            }
        };
        println!("| {} | {goal} | {measured} | {} | {verdict} |", t.what, ratio_cell(t.ceiling));
    }
}
