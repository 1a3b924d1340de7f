//! 100 MiB through `hsm-keyring encrypt | hsm-keyring decrypt` over pipes,
//! with the peak resident memory (VmHWM) of both processes.
//!
//! Memory use is a deterministic property of the streaming design (about one
//! frame and a few I/O buffers), so it is asserted; time is not. The peaks are
//! compared with each process's own baseline: the same pipeline on 1 MiB, held
//! open after the data so that the processes are measured in full swing.

#![cfg(target_os = "linux")]

mod cli_support;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use cli_support::{bytes, fill, Work, Xorshift, BIN};

const MIB: usize = 1 << 20;
/// Largest peak resident set accepted for either process.
const MAX_PEAK_KIB: u64 = 32 * 1024;
/// Largest growth over the 1 MiB baseline accepted for either process.
const MAX_GROWTH_KIB: u64 = 8 * 1024;

/// VmHWM (peak resident set) of a running process, in KiB.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A child whose VmHWM is sampled until it exits.
struct Watched {
    child: Child,
    peak: u64,
    status: Option<std::process::ExitStatus>,
}

impl Watched {
    fn poll(&mut self) -> bool {
        if self.status.is_some() {
            return true;
        }
        // Read the peak before asking whether it exited: once reaped, /proc is gone.
        if let Some(kib) = vm_hwm_kib(self.child.id()) {
            self.peak = self.peak.max(kib);
        }
        match self.child.try_wait().expect("try_wait") {
            Some(status) => {
                self.status = Some(status);
                true
            }
            None => false,
        }
    }
}

struct Measured {
    encrypt_peak_kib: u64,
    decrypt_peak_kib: u64,
}

/// Generator -> encrypt -> decrypt -> checker, all over pipes. `hold` keeps
/// the encryptor's stdin open that long after the data (for baselines).
fn pipeline(work: &Work, suite: &str, len: usize, seed: u64, hold: Duration) -> Measured {
    let spec = format!("type=aes,path={},namespace=pipes,name=k1", work.file("k.bin").display());
    let mut encrypt = Command::new(BIN)
        .args(["encrypt", "-w", &spec, "--suite", suite, "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn encrypt");
    let message = encrypt.stdout.take().expect("encrypt stdout");
    let mut decrypt = Command::new(BIN)
        .args(["decrypt", "-w", &spec, "--quiet"])
        .stdin(Stdio::from(message))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn decrypt");

    let mut input = encrypt.stdin.take().expect("encrypt stdin");
    let feeder = thread::spawn(move || {
        let mut rng = Xorshift::new(seed);
        let mut buf = vec![0u8; 64 * 1024];
        let mut left = len;
        while left > 0 {
            let n = left.min(buf.len());
            fill(&mut buf[..n], &mut rng);
            input.write_all(&buf[..n]).expect("write to encrypt");
            left -= n;
        }
        thread::sleep(hold);
        // Dropping `input` closes the pipe: end of plaintext.
    });
    let mut output = decrypt.stdout.take().expect("decrypt stdout");
    let checker = thread::spawn(move || {
        // Regenerate the stream in the feeder's steps and compare.
        let mut rng = Xorshift::new(seed);
        let mut got = vec![0u8; 64 * 1024];
        let mut want = vec![0u8; 64 * 1024];
        let mut checked = 0usize;
        while checked < len {
            let n = (len - checked).min(want.len());
            fill(&mut want[..n], &mut rng);
            if output.read_exact(&mut got[..n]).is_err() {
                return (checked, Some(checked));
            }
            if got[..n] != want[..n] {
                return (checked, Some(checked));
            }
            checked += n;
        }
        let mut extra = Vec::new();
        output.read_to_end(&mut extra).expect("read from decrypt");
        (checked + extra.len(), None)
    });

    let mut watched =
        [Watched { child: encrypt, peak: 0, status: None }, Watched { child: decrypt, peak: 0, status: None }];
    loop {
        // Poll every process on each round (no short-circuit).
        let mut done = true;
        for w in &mut watched {
            done &= w.poll();
        }
        if done {
            break;
        }
        thread::sleep(Duration::from_millis(2));
    }
    feeder.join().expect("feeder");
    let (total, first_difference) = checker.join().expect("checker");
    for (w, what) in watched.iter().zip(["encrypt", "decrypt"]) {
        assert!(w.status.expect("exited").success(), "{what} ({suite}) failed: {:?}", w.status);
        assert!(w.peak > 0, "no VmHWM reading for {what}");
    }
    assert_eq!(total, len, "{suite}: decrypted length");
    assert_eq!(first_difference, None, "{suite}: decrypted bytes differ");
    Measured { encrypt_peak_kib: watched[0].peak, decrypt_peak_kib: watched[1].peak }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[test]
fn hundred_mib_through_pipes_in_bounded_memory() {
    let work = Work::new();
    work.write("k.bin", &bytes(32, 1));
    for (i, suite) in ["0x0478", "0x0578"].into_iter().enumerate() {
        let seed = 100 + i as u64;
        let base = pipeline(&work, suite, MIB, seed, Duration::from_millis(400));
        let big = pipeline(&work, suite, 100 * MIB, seed, Duration::ZERO);
        println!(
            "cli pipes {suite}: 100 MiB, peak RSS encrypt {:.1} MiB (1 MiB baseline {:.1}), decrypt {:.1} MiB (baseline {:.1})",
            mib(big.encrypt_peak_kib),
            mib(base.encrypt_peak_kib),
            mib(big.decrypt_peak_kib),
            mib(base.decrypt_peak_kib),
        );
        for (what, peak, baseline) in [
            ("encrypt", big.encrypt_peak_kib, base.encrypt_peak_kib),
            ("decrypt", big.decrypt_peak_kib, base.decrypt_peak_kib),
        ] {
            assert!(peak < MAX_PEAK_KIB, "{what} {suite}: peak RSS {peak} KiB over {MAX_PEAK_KIB} KiB");
            assert!(
                peak < baseline + MAX_GROWTH_KIB,
                "{what} {suite}: peak RSS {peak} KiB grows more than {MAX_GROWTH_KIB} KiB over the 1 MiB baseline {baseline} KiB"
            );
        }
    }
}

#[test]
fn a_cut_pipe_fails_decrypt_with_exit_1() {
    // The streaming decryptor on stdin: a message cut short is refused with
    // exit 1; what reached stdout before is a prefix of the plaintext, and
    // nothing at all for a signed message.
    let work = Work::new();
    let key = work.write("k.bin", &bytes(32, 2));
    let spec = format!("type=aes,path={key},namespace=pipes,name=k1");
    let plaintext = bytes(3 * MIB, 3);
    for suite in ["0x0478", "0x0578"] {
        let out = work.cmd(["encrypt", "-w", &spec, "--suite", suite]).write_stdin(plaintext.clone()).output().unwrap();
        assert!(out.status.success());
        let message = out.stdout;
        let cut = &message[..message.len() - 100];
        let out = work.cmd(["decrypt", "-w", &spec]).write_stdin(cut.to_vec()).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{suite}: {}", String::from_utf8_lossy(&out.stderr));
        if suite == "0x0478" {
            // The cut is in the final frame, which is never released unverified.
            assert!(out.stdout.len() < plaintext.len(), "{suite}: the whole plaintext was released");
        } else {
            // The cut is in the footer: a signed message reaching a pipe is
            // held back until its signature verified (--buffer by default).
            assert!(out.stdout.is_empty(), "{suite}: {} bytes released before the signature check", out.stdout.len());
        }
        assert!(plaintext.starts_with(&out.stdout), "{suite}: released bytes are not a prefix of the plaintext");
        let out = work.cmd(["decrypt", "-w", &spec]).write_stdin(message).output().unwrap();
        assert!(out.status.success() && out.stdout == plaintext);
    }
}
