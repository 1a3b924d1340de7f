//! Input and output for encrypt/decrypt: files or pipes, atomic output files
//! (devices and FIFOs are written in place), and a progress bar for long work
//! on a terminal.

use std::fs::{self, File};
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cleanup::Registered;
use crate::early_sync::EarlySync;
use crate::exit::CliError;

/// Inputs at least this large get a progress bar (on a terminal, unless quiet).
pub const PROGRESS_THRESHOLD: u64 = 4 * 1024 * 1024;

/// An opened input: unbuffered (callers read in large pieces or add a buffer).
pub struct Input {
    pub reader: Box<dyn Read + Send>,
    /// A regular file: reads return all that was asked until its end.
    pub regular: bool,
}

/// Open `-i PATH` (or stdin for `None` / `-`), wrapped in a progress reader.
pub fn open_input(path: Option<&Path>, quiet: bool, verb: &str) -> Result<Input, CliError> {
    let (reader, len, regular): (Box<dyn Read + Send>, Option<u64>, bool) = match path {
        None => (Box::new(io::stdin()), None, false),
        Some(p) if p == Path::new("-") => (Box::new(io::stdin()), None, false),
        Some(p) => {
            let f = File::open(p).map_err(|e| CliError::usage(format!("cannot open input {}: {e}", p.display())))?;
            let meta = f.metadata().ok();
            let regular = meta.as_ref().is_some_and(|m| m.is_file());
            let len = meta.map(|m| m.len());
            (Box::new(f), len, regular)
        }
    };
    let show = !quiet && io::stderr().is_terminal() && len.is_none_or(|l| l >= PROGRESS_THRESHOLD);
    if !show {
        return Ok(Input { reader, regular });
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
    let shown_from = if len.is_some() { 0 } else { PROGRESS_THRESHOLD };
    Ok(Input { reader: Box::new(ProgressReader { inner: reader, bar, shown_from }), regular })
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

/// Where output goes: stdout, a device or FIFO written in place, or a
/// temporary file renamed onto a regular file only on success.
pub enum Output {
    Stdout(BufWriter<io::Stdout>),
    /// A character or block device, a FIFO or a socket: written straight into.
    Direct(BufWriter<File>),
    File {
        tmp: tempfile::NamedTempFile,
        dest: PathBuf,
        writer: Option<BufWriter<File>>,
        registered: Registered,
        /// Syncs the file in the background as it grows.
        early: EarlySync,
    },
}

/// An I/O error's text without any path in it (tempfile names its temporary
/// paths in its errors; the user knows only the output path).
pub fn plain(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code).to_string(),
        None => e.kind().to_string(),
    }
}

/// Paths that name the process's own stdout.
fn is_stdout_path(p: &Path) -> bool {
    [Path::new("-"), Path::new("/dev/stdout"), Path::new("/dev/fd/1"), Path::new("/proc/self/fd/1")].contains(&p)
}

impl Output {
    /// Open `-o PATH` (or stdout for `None`, `-` or `/dev/stdout`). A regular
    /// file (or a new path) is written to a temporary file in the same
    /// directory and renamed by [`Output::commit`]; a device or FIFO is
    /// written straight into, never replaced. A symbolic link to a regular
    /// file is followed: the file it points to is replaced, the link stays.
    pub fn create(path: Option<&Path>) -> Result<Self, CliError> {
        let p = match path {
            None => return Ok(Output::Stdout(BufWriter::with_capacity(64 * 1024, io::stdout()))),
            Some(p) if is_stdout_path(p) => {
                return Ok(Output::Stdout(BufWriter::with_capacity(64 * 1024, io::stdout())))
            }
            Some(p) => p,
        };
        let cannot = |e: &io::Error| CliError::usage(format!("cannot write {}: {}", p.display(), plain(e)));
        let dest = match fs::symlink_metadata(p) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => p.to_path_buf(),
            Err(e) => return Err(cannot(&e)),
            Ok(meta) => {
                // Follow a symbolic link to what it names.
                let link = meta.file_type().is_symlink();
                let meta = if link { fs::metadata(p).map_err(|e| cannot(&e))? } else { meta };
                if meta.is_dir() {
                    return Err(CliError::usage(format!("cannot write {}: it is a directory", p.display())));
                }
                if !meta.is_file() {
                    let file = fs::OpenOptions::new().write(true).open(p).map_err(|e| cannot(&e))?;
                    return Ok(Output::Direct(BufWriter::with_capacity(64 * 1024, file)));
                }
                if link {
                    fs::canonicalize(p).map_err(|e| cannot(&e))?
                } else {
                    p.to_path_buf()
                }
            }
        };
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .tempfile_in(&dir)
            .map_err(|e| cannot(&e))?;
        let registered = Registered::new(tmp.path());
        let file = tmp.reopen().map_err(|e| cannot(&e))?;
        let early = EarlySync::new(&file);
        Ok(Output::File { tmp, dest, writer: Some(BufWriter::with_capacity(64 * 1024, file)), registered, early })
    }

    /// True when what is written reaches its destination at once (stdout, a
    /// device or a FIFO), rather than only on [`Output::commit`].
    pub fn releases_early(&self) -> bool {
        !matches!(self, Output::File { .. })
    }

    /// The buffered file behind a regular-file output (so that a copy from a
    /// file can be done by the kernel).
    pub fn file_writer(&mut self) -> Option<&mut BufWriter<File>> {
        match self {
            Output::File { writer: Some(w), .. } => Some(w),
            _ => None,
        }
    }

    /// True when the output is a terminal.
    pub fn is_terminal(&self) -> bool {
        match self {
            Output::Stdout(w) => w.get_ref().is_terminal(),
            Output::Direct(w) => w.get_ref().is_terminal(),
            Output::File { .. } => false,
        }
    }

    /// Flush and, for a file, make it durable (the background syncs' errors
    /// included) and move it into place. Dropping an `Output` without
    /// committing removes the temporary file.
    pub fn commit(self) -> Result<(), CliError> {
        match self {
            Output::Stdout(mut w) => w.flush().map_err(|e| CliError::usage(format!("writing stdout: {e}"))),
            Output::Direct(mut w) => w.flush().map_err(|e| CliError::usage(format!("writing output: {}", plain(&e)))),
            Output::File { tmp, dest, mut writer, registered, mut early } => {
                let cannot = |e: &io::Error| CliError::usage(format!("cannot write {}: {}", dest.display(), plain(e)));
                if let Some(mut w) = writer.take() {
                    w.flush().map_err(|e| cannot(&e))?;
                    early.finish().map_err(|e| cannot(&e))?;
                    w.get_ref().sync_all().map_err(|e| cannot(&e))?;
                }
                registered.commit(|| tmp.persist(&dest)).map_err(|e| cannot(&e.error))?;
                Ok(())
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(w) => w.write(buf),
            Output::Direct(w) => w.write(buf),
            Output::File { writer: Some(w), early, .. } => {
                let n = w.write(buf)?;
                early.wrote(n)?;
                Ok(n)
            }
            Output::File { writer: None, .. } => Err(io::Error::other("output already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.flush(),
            Output::Direct(w) => w.flush(),
            Output::File { writer: Some(w), .. } => w.flush(),
            Output::File { writer: None, .. } => Ok(()),
        }
    }
}
