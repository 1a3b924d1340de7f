//! Timing, peak memory, and the plaintext generator shared by every case.

use std::io::{self, Read, Write};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Results carry a readable reason.
pub type R<T> = Result<T, String>;

/// One unit of work (one message encrypted or decrypted), run repeatedly by a thread.
pub type Op<'a> = Box<dyn FnMut() -> R<()> + 'a>;

/// Rounds per rate measurement; the best round counts (interference only adds time).
pub const ROUNDS: usize = 3;

/// Operations per second of `threads` threads, each running its own op built
/// by `make(thread_index)` inside the thread, for `run` per round; best of
/// [`ROUNDS`] rounds. The threads start each round together.
///
/// With `BENCH_CPU_TIME=1` in the environment a round's rate is counted per
/// second of the thread's own time on a CPU rather than of wall-clock time:
/// on a machine loaded by other work this leaves out the time the thread
/// waited for a CPU (it still includes what the other work costs through
/// shared caches).
pub fn rate<'a>(threads: usize, run: Duration, make: &(dyn Fn(usize) -> R<Op<'a>> + Sync)) -> R<f64> {
    let cpu_time = std::env::var_os("BENCH_CPU_TIME").is_some_and(|v| v == "1");
    let barrier = Arc::new(Barrier::new(threads));
    let per_thread: Vec<R<Vec<f64>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = Arc::clone(&barrier);
                s.spawn(move || -> R<Vec<f64>> {
                    // After a failure the thread keeps meeting the barrier, so
                    // that the other threads are not left waiting.
                    let mut failure = None;
                    let mut op = make(t).map_err(|e| failure = Some(e)).ok();
                    if let Some(op) = op.as_mut() {
                        let warm = Instant::now();
                        let mut n = 0;
                        while n < 2 || (warm.elapsed() < run / 10 && n < 1000) {
                            if let Err(e) = op() {
                                failure = Some(e);
                                break;
                            }
                            n += 1;
                        }
                    }
                    let mut rates = Vec::with_capacity(ROUNDS);
                    for _ in 0..ROUNDS {
                        barrier.wait();
                        let Some(op) = op.as_mut().filter(|_| failure.is_none()) else { continue };
                        let start = Instant::now();
                        let cpu_start = cpu_time.then(thread_cpu).flatten();
                        let mut n = 0u64;
                        loop {
                            if let Err(e) = op() {
                                failure = Some(e);
                                break;
                            }
                            n += 1;
                            let elapsed = start.elapsed();
                            if elapsed >= run {
                                let spent = match (cpu_start, thread_cpu()) {
                                    (Some(a), Some(b)) if b > a => b - a,
                                    _ => elapsed,
                                };
                                rates.push(n as f64 / spent.as_secs_f64());
                                break;
                            }
                        }
                    }
                    match failure {
                        Some(e) => Err(e),
                        None => Ok(rates),
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("bench thread panicked".to_owned()))).collect()
    });
    let per_thread = per_thread.into_iter().collect::<R<Vec<_>>>()?;
    let best = (0..ROUNDS).map(|r| per_thread.iter().map(|rates| rates[r]).sum::<f64>()).fold(0.0, f64::max);
    Ok(best)
}

/// Time the calling thread spent on a CPU (`/proc/thread-self/schedstat`).
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok().map(Duration::from_nanos)
}

/// Peak resident memory of this process in KiB (`VmHWM` of `/proc/self/status`).
pub fn peak_rss_kib() -> R<u64> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| format!("/proc/self/status: {e}"))?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).ok_or("no VmHWM in /proc/self/status")?;
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).ok_or_else(|| format!("bad line {line:?}"))
}

/// Reset the peak resident memory to the current resident memory (Linux >= 4.0:
/// writing 5 to `/proc/self/clear_refs`), so that a case's peak is not hidden by
/// its setup. Returns whether it worked.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Measures how much a case raises the peak resident memory.
#[derive(Debug)]
pub struct PeakMeter {
    baseline: u64,
}

impl PeakMeter {
    /// Reset the high-water mark and take the baseline.
    pub fn start() -> R<Self> {
        if !reset_peak_rss() {
            return Err("cannot reset VmHWM through /proc/self/clear_refs".to_owned());
        }
        Ok(PeakMeter { baseline: peak_rss_kib()? })
    }

    /// Growth of the peak over the baseline, in KiB.
    pub fn growth_kib(&self) -> R<u64> {
        Ok(peak_rss_kib()?.saturating_sub(self.baseline))
    }
}

/// Length of the repeating plaintext pattern (a prime, so frames never line up with it).
const PATTERN_LEN: usize = (1 << 20) + 7;

/// The benchmark's plaintext pattern: the same bytes in every process.
pub fn pattern() -> Arc<Vec<u8>> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut out = Vec::with_capacity(PATTERN_LEN);
    while out.len() < PATTERN_LEN {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(PATTERN_LEN);
    Arc::new(out)
}

/// The first `len` plaintext bytes, in memory.
pub fn plaintext(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut reader = Generator::new(pattern(), len);
    // Reading from a Generator cannot fail.
    let _ = reader.read_to_end(&mut out);
    out
}

/// A reader producing the first `len` plaintext bytes without holding them.
#[derive(Debug)]
pub struct Generator {
    pattern: Arc<Vec<u8>>,
    pos: usize,
    remaining: usize,
}

impl Generator {
    /// `len` bytes of `pattern`, repeated.
    pub fn new(pattern: Arc<Vec<u8>>, len: usize) -> Self {
        Generator { pattern, pos: 0, remaining: len }
    }
}

impl Read for Generator {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = &self.pattern[self.pos..];
        let n = buf.len().min(avail.len()).min(self.remaining);
        buf[..n].copy_from_slice(&avail[..n]);
        self.remaining -= n;
        self.pos += n;
        if self.pos == self.pattern.len() {
            self.pos = 0;
        }
        Ok(n)
    }
}

/// A writer that discards what it gets and counts it.
#[derive(Debug, Default)]
pub struct CountingSink {
    /// Bytes written so far.
    pub written: u64,
}

impl Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Copy `from` into `to` through a 64 KiB buffer; bytes copied.
pub fn pump(from: &mut impl Read, to: &mut impl Write) -> R<u64> {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read: {e}")),
        };
        to.write_all(&buf[..n]).map_err(|e| format!("write: {e}"))?;
        total += n as u64;
    }
}

/// Best (shortest) of timed runs of `f`, in seconds.
pub fn best_of(iters: u32, mut f: impl FnMut() -> R<Duration>) -> R<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..iters {
        best = best.min(f()?.as_secs_f64());
    }
    Ok(best)
}
