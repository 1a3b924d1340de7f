//! A resumable line rewrap from one file to another.
//!
//! The output is appended to `OUT.partial`. Every [`BATCH_LINES`] lines (or
//! [`BATCH_BYTES`] of output) the partial output is synced, and then the
//! checkpoint is replaced (written to a temporary file, synced, renamed):
//! it records the input's size, how many input lines and bytes are done
//! with the SHA-256 of those bytes, and the synced length of the partial
//! output. A run killed at any moment is started again with the same
//! arguments: the partial output is cut back to the recorded length and
//! the recorded input lines are skipped (after checking that the input has
//! the same size and the same done prefix), so every line is written exactly
//! once. At the end the partial output is renamed to `OUT` and the
//! checkpoint removed. A run with failures removes both and writes no `OUT`.

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::bulk::Summary;
use super::lines::{map_ordered, LineFn};
use crate::error::{Error, Result};

/// Lines between two checkpoints.
pub const BATCH_LINES: u64 = 256;
/// Output bytes between two checkpoints.
pub const BATCH_BYTES: u64 = 1 << 20;

const MAGIC: &str = "hsm-keyring lines checkpoint 1";

/// What a checkpoint records.
#[derive(Debug, Default, Clone)]
struct State {
    input_size: u64,
    input_bytes: u64,
    input_lines: u64,
    input_sha256: String,
    output_bytes: u64,
    done: usize,
    failed: Vec<(String, String)>,
}

impl State {
    fn to_text(&self) -> String {
        let mut s = format!(
            "{MAGIC}\ninput-size {}\ninput-bytes {}\ninput-lines {}\ninput-sha256 {}\noutput-bytes {}\ndone {}\n",
            self.input_size, self.input_bytes, self.input_lines, self.input_sha256, self.output_bytes, self.done
        );
        for (id, reason) in &self.failed {
            let _ = writeln!(s, "failed {id}\t{}", reason.replace(['\n', '\t'], " "));
        }
        s
    }

    fn parse(text: &str) -> Option<State> {
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let mut s = State::default();
        for line in lines {
            let (key, value) = line.split_once(' ')?;
            match key {
                "input-size" => s.input_size = value.parse().ok()?,
                "input-bytes" => s.input_bytes = value.parse().ok()?,
                "input-lines" => s.input_lines = value.parse().ok()?,
                "input-sha256" => s.input_sha256 = value.to_owned(),
                "output-bytes" => s.output_bytes = value.parse().ok()?,
                "done" => s.done = value.parse().ok()?,
                "failed" => {
                    let (id, reason) = value.split_once('\t')?;
                    s.failed.push((id.to_owned(), reason.to_owned()));
                }
                _ => return None,
            }
        }
        Some(s)
    }
}

fn hex(hasher: &Sha256) -> String {
    hasher.clone().finalize().iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// Make the entries of the directory holding `path` durable.
fn sync_dir(path: &Path) -> Result<()> {
    super::journal::sync_dir(super::journal::parent(path))
}

/// A checkpointed run of [`rewrap_lines`](super::lines::rewrap_lines) from
/// the file `input` to the file `output`, resumed where an earlier run with
/// the same checkpoint stopped.
#[derive(Debug)]
pub struct LinesCheckpoint {
    path: PathBuf,
    output: PathBuf,
    partial: PathBuf,
    input: BufReader<File>,
    hasher: Sha256,
    state: State,
    /// An earlier run renamed the output but was stopped before removing the checkpoint.
    finished: bool,
}

impl LinesCheckpoint {
    /// Open the checkpoint at `path` (a missing one starts from the first
    /// line), check that `input` is the file it was written for, and cut
    /// the partial output (`output` with `.partial` appended) back to its
    /// recorded length. Fails with [`Error::Config`] naming what differs
    /// when the input changed or the partial output is missing or short.
    pub fn open(path: &Path, input: &Path, output: &Path) -> Result<Self> {
        let partial = with_suffix(output, ".partial");
        let file = File::open(input)?;
        let size = file.metadata()?.len();
        let mut input = BufReader::with_capacity(64 * 1024, file);
        let mut hasher = Sha256::new();
        let text = match fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        let Some(text) = text else {
            let state = State { input_size: size, input_sha256: hex(&hasher), ..State::default() };
            File::create(&partial)?.sync_all()?;
            save(path, &state)?;
            return Ok(LinesCheckpoint {
                path: path.into(),
                output: output.into(),
                partial,
                input,
                hasher,
                state,
                finished: false,
            });
        };
        let bad = |reason: String| Error::config(format!("checkpoint {}: {reason}", path.display()));
        let state = State::parse(&text).ok_or_else(|| bad("not a checkpoint of a line rewrap".into()))?;
        let changed = |what: String| {
            bad(format!(
                "the input changed since the checkpoint was written ({what}); remove the checkpoint and \
                         {} to start again",
                partial.display()
            ))
        };
        if state.input_size != size {
            return Err(changed(format!("it was {} bytes, it is {size}", state.input_size)));
        }
        let read = io::copy(&mut (&mut input).take(state.input_bytes), &mut hasher)?;
        if read != state.input_bytes || hex(&hasher) != state.input_sha256 {
            return Err(changed(format!("its first {} lines differ", state.input_lines)));
        }
        let mut finished = false;
        match OpenOptions::new().write(true).open(&partial) {
            Ok(f) => {
                if f.metadata()?.len() < state.output_bytes {
                    return Err(bad(format!(
                        "{} is shorter than the {} bytes recorded",
                        partial.display(),
                        state.output_bytes
                    )));
                }
                f.set_len(state.output_bytes)?;
                f.sync_all()?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let whole = fs::metadata(output).map(|m| m.len() == state.output_bytes).unwrap_or(false);
                if state.input_bytes != size || !whole {
                    return Err(bad(format!("{} is missing", partial.display())));
                }
                finished = true;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(LinesCheckpoint { path: path.into(), output: output.into(), partial, input, hasher, state, finished })
    }

    /// Lines (rewrapped or skipped) an earlier run recorded as done.
    pub fn resumed(&self) -> usize {
        self.state.done
    }

    /// The partial output this run appends to.
    pub fn partial_path(&self) -> &Path {
        &self.partial
    }

    /// Rewrap the rest of the input with `f` on `jobs` threads, as
    /// [`rewrap_lines`](super::lines::rewrap_lines) does; `progress` gets
    /// each line number done. Without failures the output is renamed into
    /// place and the checkpoint removed; with failures (of this run or an
    /// earlier one, listed in [`Summary::failed`]) the partial output and the
    /// checkpoint are removed and no output is written.
    pub fn run(mut self, jobs: usize, f: &LineFn<'_>, progress: &dyn Fn(u64)) -> Result<Summary> {
        let mut summary = Summary { resumed: self.state.done, failed: self.state.failed.clone(), ..Summary::default() };
        if self.finished {
            fs::remove_file(&self.path)?;
            return Ok(summary);
        }
        let file = OpenOptions::new().append(true).open(&self.partial)?;
        let mut out = BufWriter::with_capacity(256 * 1024, file);
        let (mut lines, mut bytes) = (0u64, 0u64);
        let (state, hasher, path) = (&mut self.state, &mut self.hasher, &self.path);
        map_ordered(&mut self.input, state.input_lines, jobs, f, &mut |done| {
            let number = done.number;
            hasher.update(&done.raw);
            state.input_bytes += done.raw.len() as u64;
            state.input_lines += 1;
            let written = done.write_to(&mut out, &mut summary)?;
            state.output_bytes += written;
            progress(number);
            lines += 1;
            bytes += written;
            if lines >= BATCH_LINES || bytes >= BATCH_BYTES {
                (lines, bytes) = (0, 0);
                checkpoint(&mut out, state, hasher, &summary, path)?;
            }
            Ok(())
        })?;
        if !summary.failed.is_empty() {
            drop(out);
            fs::remove_file(&self.partial)?;
            fs::remove_file(&self.path)?;
            return Ok(summary);
        }
        checkpoint(&mut out, &mut self.state, &self.hasher, &summary, &self.path)?;
        drop(out);
        fs::rename(&self.partial, &self.output)?;
        sync_dir(&self.output)?;
        fs::remove_file(&self.path)?;
        Ok(summary)
    }
}

/// Sync the output written so far, then record it.
fn checkpoint(
    out: &mut BufWriter<File>,
    state: &mut State,
    hasher: &Sha256,
    summary: &Summary,
    path: &Path,
) -> Result<()> {
    out.flush()?;
    out.get_ref().sync_data()?;
    state.input_sha256 = hex(hasher);
    state.done = summary.resumed + summary.rewrapped + summary.skipped;
    state.failed.clone_from(&summary.failed);
    save(path, state)
}

/// Replace the checkpoint file atomically.
fn save(path: &Path, state: &State) -> Result<()> {
    let tmp = with_suffix(path, ".tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(state.to_text().as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    sync_dir(path)
}
