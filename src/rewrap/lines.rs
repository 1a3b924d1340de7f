//! Rewrapping the lines of a file (such as DynamoDB items as JSON lines):
//! `jobs` worker threads, output in input order, a summary, and (with
//! [`LinesCheckpoint`]) a run that can be killed and started again.
//!
//! The input is read one line at a time and handed to the workers; at most
//! `2 × jobs` lines are in flight (read, being rewrapped, or done and waiting
//! for an earlier line to be written), so memory is bounded by that many
//! input lines and their rewrapped forms, whatever the size of the file.
//! Blank lines are dropped. A line the function skips ([`LineOutcome::Skipped`])
//! is copied through unchanged. A line that fails is written nowhere and
//! named in [`Summary::failed`] as `line N` with the reason; the run goes on,
//! so that every failure is reported at once, and the caller decides what
//! becomes of the output (the command discards it).
//!
//! [`map_lines`] runs the same workers for any line-to-line function (item
//! encryption and decryption) and hands each result back in input order.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

use super::bulk::Summary;
use crate::error::{Error, Result};

pub use super::lines_checkpoint::LinesCheckpoint;

/// What became of one line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineOutcome {
    /// Rewritten: the new line, without its newline.
    Rewrapped(Vec<u8>),
    /// Already under the new keys: copied through unchanged.
    Skipped,
}

/// The function applied to each line (given without its line ending).
pub type LineFn<'a> = dyn Fn(&[u8]) -> Result<LineOutcome> + Sync + 'a;

/// The function of [`map_lines`]: a line (without its line ending) to its
/// new form (without a newline), or the reason it failed.
pub type MapFn<'a> = dyn Fn(&[u8]) -> std::result::Result<Vec<u8>, String> + Sync + 'a;

/// One line, done, in input order.
pub(crate) struct Done<T = Result<LineOutcome>> {
    /// 1-based line number in the whole input.
    pub number: u64,
    /// The line as read, with its newline if it had one.
    pub raw: Vec<u8>,
    /// `None` for a blank line.
    pub result: Option<T>,
}

impl Done {
    /// Write what the line becomes; count it in `summary`. Returns the bytes written.
    pub(crate) fn write_to(self, out: &mut dyn Write, summary: &mut Summary) -> Result<u64> {
        let bytes: &[u8] = match &self.result {
            None => return Ok(0),
            Some(Ok(LineOutcome::Rewrapped(line))) => {
                summary.rewrapped += 1;
                line
            }
            Some(Ok(LineOutcome::Skipped)) => {
                summary.skipped += 1;
                strip_newline(&self.raw)
            }
            Some(Err(e)) => {
                summary.failed.push((format!("line {}", self.number), e.to_string().replace('\n', " ")));
                return Ok(0);
            }
        };
        out.write_all(bytes)?;
        out.write_all(b"\n")?;
        Ok(bytes.len() as u64 + 1)
    }
}

fn strip_newline(raw: &[u8]) -> &[u8] {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    raw.strip_suffix(b"\r").unwrap_or(raw)
}

/// Apply `f` to every line of `input` on `jobs` threads and write the
/// results to `output` in input order; `progress` is called with each line
/// number once it is written (or failed). Failures are collected in the
/// summary. `output` is flushed, not synced.
pub fn rewrap_lines(
    input: &mut dyn BufRead,
    output: &mut dyn Write,
    jobs: usize,
    f: &LineFn<'_>,
    progress: &dyn Fn(u64),
) -> Result<Summary> {
    let mut summary = Summary::default();
    map_ordered(input, 0, jobs, f, &mut |done| {
        let number = done.number;
        done.write_to(output, &mut summary)?;
        progress(number);
        Ok(())
    })?;
    output.flush()?;
    Ok(summary)
}

/// Apply `f` to every line of `input` on `jobs` threads, as [`rewrap_lines`]
/// does (at most `2 × jobs` lines in flight, blank lines dropped), and call
/// `emit` on this thread with each line's 1-based number and result, in
/// input order. A line whose `f` panics fails alone. An error reading
/// `input`, or one returned by `emit`, stops the run and is returned.
pub fn map_lines(
    input: &mut dyn BufRead,
    jobs: usize,
    f: &MapFn<'_>,
    emit: &mut dyn FnMut(u64, std::result::Result<Vec<u8>, String>) -> Result<()>,
) -> Result<()> {
    let panicked = || Err("processing this line panicked".to_owned());
    pool(input, 0, jobs, f, &panicked, &mut |done| match done.result {
        Some(result) => emit(done.number, result),
        None => Ok(()),
    })
}

/// The worker pool of the rewrap functions: read lines of `input` (numbered
/// from `first + 1`), run `f` on each, and call `emit` for each line in input
/// order, on this thread.
pub(crate) fn map_ordered(
    input: &mut dyn BufRead,
    first: u64,
    jobs: usize,
    f: &LineFn<'_>,
    emit: &mut dyn FnMut(Done) -> Result<()>,
) -> Result<()> {
    let panicked = || Err(Error::config("rewrapping this line panicked"));
    pool(input, first, jobs, f, &panicked, emit)
}

/// The worker pool for any result type `T`; `panicked` stands for the
/// result of a line whose `f` panicked.
fn pool<T: Send>(
    input: &mut dyn BufRead,
    first: u64,
    jobs: usize,
    f: &(dyn Fn(&[u8]) -> T + Sync + '_),
    panicked: &(dyn Fn() -> T + Sync),
    emit: &mut dyn FnMut(Done<T>) -> Result<()>,
) -> Result<()> {
    if jobs == 0 {
        return Err(Error::config("--jobs must be at least 1"));
    }
    let window = (jobs as u64).saturating_mul(2);
    let (job_tx, job_rx) = mpsc::sync_channel::<(u64, Vec<u8>)>(jobs.saturating_mul(2));
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = mpsc::channel::<(u64, Vec<u8>, T)>();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            let done_tx = done_tx.clone();
            let (job_rx, stop) = (&job_rx, &stop);
            s.spawn(move || loop {
                let job = match job_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => break,
                };
                let Ok((index, raw)) = job else { break };
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                // A panic must not leave the writer waiting for this line.
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(strip_newline(&raw))))
                    .unwrap_or_else(|_| panicked());
                if done_tx.send((index, raw, result)).is_err() {
                    break;
                }
            });
        }
        drop(done_tx);
        let result = coordinate(input, first, window, job_tx, &done_rx, emit);
        // On an error the workers finish the line in hand and stop.
        stop.store(true, Ordering::Relaxed);
        result
    })
}

fn coordinate<T>(
    input: &mut dyn BufRead,
    first: u64,
    window: u64,
    job_tx: mpsc::SyncSender<(u64, Vec<u8>)>,
    done_rx: &mpsc::Receiver<(u64, Vec<u8>, T)>,
    emit: &mut dyn FnMut(Done<T>) -> Result<()>,
) -> Result<()> {
    let mut pending: BTreeMap<u64, Done<T>> = BTreeMap::new();
    let (mut next_read, mut next_emit, mut eof) = (0u64, 0u64, false);
    let workers_gone = || Error::config("the worker threads stopped");
    loop {
        while !eof && next_read - next_emit < window {
            let mut raw = Vec::new();
            if input.read_until(b'\n', &mut raw)? == 0 {
                eof = true;
                break;
            }
            let index = next_read;
            next_read += 1;
            if raw.iter().all(u8::is_ascii_whitespace) {
                pending.insert(index, Done { number: first + index + 1, raw, result: None });
            } else {
                job_tx.send((index, raw)).map_err(|_| workers_gone())?;
            }
        }
        while let Some(done) = pending.remove(&next_emit) {
            emit(done)?;
            next_emit += 1;
        }
        if eof && next_emit == next_read {
            return Ok(());
        }
        if !eof && next_read - next_emit < window {
            continue;
        }
        let (index, raw, result) = done_rx.recv().map_err(|_| workers_gone())?;
        pending.insert(index, Done { number: first + index + 1, raw, result: Some(result) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upper(line: &[u8]) -> Result<LineOutcome> {
        match line {
            b"skip" => Ok(LineOutcome::Skipped),
            b"bad" => Err(Error::config("bad line")),
            _ => {
                // Later lines finish first.
                std::thread::sleep(std::time::Duration::from_micros(u64::from(line[line.len() - 1] % 7) * 50));
                Ok(LineOutcome::Rewrapped(line.to_ascii_uppercase()))
            }
        }
    }

    #[test]
    fn lines_come_out_in_order_with_a_summary() {
        let mut input = String::new();
        for i in 0..500 {
            input.push_str(&format!("l{i}\n"));
            if i % 100 == 3 {
                input.push_str("skip\n\n  \nbad\n");
            }
        }
        input.push_str("last");
        let mut out = Vec::new();
        let seen = std::cell::Cell::new(0u64);
        let summary =
            rewrap_lines(&mut input.as_bytes(), &mut out, 4, &upper, &|n| seen.set(seen.get().max(n))).unwrap();
        let mut expect = String::new();
        for i in 0..500 {
            expect.push_str(&format!("L{i}\n"));
            if i % 100 == 3 {
                expect.push_str("skip\n");
            }
        }
        expect.push_str("LAST\n");
        assert_eq!(String::from_utf8(out).unwrap(), expect);
        assert_eq!((summary.rewrapped, summary.skipped, summary.failed.len()), (501, 5, 5));
        assert_eq!(summary.failed[0], ("line 8".to_owned(), "invalid configuration: bad line".to_owned()));
        assert_eq!(seen.get(), 521);
        assert!(rewrap_lines(&mut &b"a\n"[..], &mut Vec::new(), 0, &upper, &|_| {}).is_err());
    }

    #[test]
    fn a_panicking_line_fails_alone() {
        let f = |line: &[u8]| if line == b"boom" { panic!("boom") } else { upper(line) };
        let mut out = Vec::new();
        let summary = rewrap_lines(&mut &b"a\nboom\nb\n"[..], &mut out, 2, &f, &|_| {}).unwrap();
        assert_eq!(out, b"A\nB\n");
        assert_eq!(summary.failed[0].0, "line 2");
    }

    #[test]
    fn map_lines_hands_back_every_result_in_order() {
        let f = |line: &[u8]| match line {
            b"bad" => Err("bad line".to_owned()),
            b"boom" => panic!("boom"),
            _ => upper(line).map_err(|e| e.to_string()).map(|o| match o {
                LineOutcome::Rewrapped(l) => l,
                LineOutcome::Skipped => b"skipped".to_vec(),
            }),
        };
        let mut input = String::new();
        for i in 0..300 {
            input.push_str(&format!("l{i}\n"));
        }
        input.push_str("bad\n\n \r\nboom\r\nend");
        let mut seen = Vec::new();
        map_lines(&mut input.as_bytes(), 3, &f, &mut |n, r| {
            seen.push((n, r));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len(), 303);
        for (i, (n, r)) in seen.iter().take(300).enumerate() {
            assert_eq!((*n, r.as_deref()), (i as u64 + 1, Ok(format!("L{i}").as_bytes())));
        }
        assert_eq!(seen[300], (301, Err("bad line".to_owned())));
        assert_eq!(seen[301], (304, Err("processing this line panicked".to_owned())));
        assert_eq!(seen[302], (305, Ok(b"END".to_vec())));
        // An error from `emit` stops the run and is returned.
        let mut calls = 0;
        let e = map_lines(&mut input.as_bytes(), 2, &f, &mut |_, _| {
            calls += 1;
            if calls == 5 {
                Err(Error::config("disk full"))
            } else {
                Ok(())
            }
        });
        assert!(e.unwrap_err().to_string().contains("disk full"));
        assert_eq!(calls, 5);
        assert!(map_lines(&mut &b"a\n"[..], 0, &f, &mut |_, _| Ok(())).is_err());
    }
}
