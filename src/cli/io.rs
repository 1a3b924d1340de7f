//! Input and output for encrypt/decrypt: files or pipes, atomic output files,
//! and a progress bar for long work on a terminal.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::exit::CliError;

/// Inputs at least this large get a progress bar (on a terminal, unless quiet).
pub const PROGRESS_THRESHOLD: u64 = 4 * 1024 * 1024;

/// Open `-i PATH` (or stdin for `None` / `-`), wrapped in a progress reader.
pub fn open_input(path: Option<&Path>, quiet: bool, verb: &str) -> Result<Box<dyn Read>, CliError> {
    let (reader, len): (Box<dyn Read>, Option<u64>) = match path {
        None => (Box::new(io::stdin().lock()), None),
        Some(p) if p == Path::new("-") => (Box::new(io::stdin().lock()), None),
        Some(p) => {
            let f = File::open(p).map_err(|e| CliError::usage(format!("cannot open input {}: {e}", p.display())))?;
            let len = f.metadata().ok().map(|m| m.len());
            (Box::new(f), len)
        }
    };
    let reader = BufReader::with_capacity(64 * 1024, reader);
    let show = !quiet && io::stderr().is_terminal() && len.is_none_or(|l| l >= PROGRESS_THRESHOLD);
    if !show {
        return Ok(Box::new(reader));
    }
    let bar = match len {
        Some(l) => ProgressBar::with_draw_target(Some(l), ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{msg} {bytes} {binary_bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_message(verb.to_owned());
    Ok(Box::new(ProgressReader { inner: reader, bar, shown_from: if len.is_some() { 0 } else { PROGRESS_THRESHOLD } }))
}

struct ProgressReader<R> {
    inner: R,
    bar: ProgressBar,
    /// For pipes of unknown size: draw only once this many bytes went through.
    shown_from: u64,
}

impl<R: Read> Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        if n == 0 {
            self.bar.finish_and_clear();
        } else if self.bar.position() < self.shown_from {
            self.bar.set_draw_target(ProgressDrawTarget::hidden());
        } else if self.bar.is_hidden() {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        Ok(n)
    }
}

impl<R> Drop for ProgressReader<R> {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// Where output goes: stdout, or a temporary file renamed into place only on success.
pub enum Output {
    Stdout(BufWriter<io::Stdout>),
    File { tmp: tempfile::NamedTempFile, dest: PathBuf, writer: Option<BufWriter<File>> },
}

impl Output {
    /// Open `-o PATH` (or stdout for `None` / `-`). A file is written to a
    /// temporary file in the same directory and renamed by [`Output::commit`].
    pub fn create(path: Option<&Path>) -> Result<Self, CliError> {
        match path {
            None => Ok(Output::Stdout(BufWriter::with_capacity(64 * 1024, io::stdout()))),
            Some(p) if p == Path::new("-") => Ok(Output::Stdout(BufWriter::with_capacity(64 * 1024, io::stdout()))),
            Some(p) => {
                let dir = match p.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let tmp = tempfile::Builder::new()
                    .prefix(&format!(".{name}."))
                    .suffix(".partial")
                    .tempfile_in(&dir)
                    .map_err(|e| CliError::usage(format!("cannot create output in {}: {e}", dir.display())))?;
                let file = tmp.reopen().map_err(|e| CliError::usage(format!("cannot open temporary output: {e}")))?;
                Ok(Output::File { tmp, dest: p.to_path_buf(), writer: Some(BufWriter::with_capacity(64 * 1024, file)) })
            }
        }
    }

    /// Flush and, for a file, move it into place. Dropping an `Output` without
    /// committing removes the temporary file.
    pub fn commit(self) -> Result<(), CliError> {
        match self {
            Output::Stdout(mut w) => w.flush().map_err(|e| CliError::usage(format!("writing stdout: {e}"))),
            Output::File { tmp, dest, mut writer } => {
                if let Some(mut w) = writer.take() {
                    w.flush()?;
                    w.get_ref().sync_all()?;
                }
                tmp.persist(&dest)
                    .map_err(|e| CliError::usage(format!("cannot move output into {}: {}", dest.display(), e.error)))?;
                Ok(())
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(w) => w.write(buf),
            Output::File { writer: Some(w), .. } => w.write(buf),
            Output::File { writer: None, .. } => Err(io::Error::other("output already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.flush(),
            Output::File { writer: Some(w), .. } => w.flush(),
            Output::File { writer: None, .. } => Ok(()),
        }
    }
}
