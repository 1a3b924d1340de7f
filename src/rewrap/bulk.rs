//! Rewrapping many objects: bounded concurrency, a summary and a resumable
//! checkpoint.
//!
//! A [`RewrapSource`] lists its objects by stable identifiers and rewraps
//! one of them atomically (the old object stays whole until the new one
//! replaces it) or recoverably (a journaled in-place header rewrite that the
//! next run finishes). [`run`] hands the identifiers to `jobs` worker threads and
//! records each completion in a [`Checkpoint`]: one line, written and synced
//! before the next is reported, so a run that is killed and started again
//! skips what was already done. An object rewritten but not yet recorded
//! when the run was killed is found again as already under the new keys
//! (its old keys no longer open it, its new ones do) and counted as skipped,
//! never rewrapped twice. [`DirSource`] is the source of the files of a
//! directory tree; other stores plug in through the same trait.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::{InPlaceMethod, Rewrapper, JOURNAL_SUFFIX};
use crate::error::{Error, Result};

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Rewritten under the new keys.
    Rewrapped,
    /// Rewritten under the new keys by rewriting only its header, in place
    /// (counted among the rewrapped objects too).
    RewrappedInPlace,
    /// Already under the new keys: left as it was.
    Skipped,
}

/// A store of objects to rewrap.
pub trait RewrapSource: Sync {
    /// Identifiers of every object, in a stable order.
    fn list(&self) -> Result<Vec<String>>;
    /// Rewrap one object in place, atomically or recoverably.
    fn rewrap(&self, id: &str) -> Result<Outcome>;
}

/// Totals of a run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// Objects rewritten in this run.
    pub rewrapped: usize,
    /// How many of `rewrapped` had only their header rewritten, in place.
    pub in_place: usize,
    /// Objects found already under the new keys.
    pub skipped: usize,
    /// Objects the checkpoint recorded as done by an earlier run.
    pub resumed: usize,
    /// Objects that failed, with the reason.
    pub failed: Vec<(String, String)>,
}

/// Completions, one line per object (`rewrapped ID` or `skipped ID`),
/// appended and synced one at a time.
#[derive(Debug)]
pub struct Checkpoint {
    done: HashSet<String>,
    file: Mutex<File>,
}

impl Checkpoint {
    /// Open (or create) the checkpoint file and read what it records. A last
    /// line cut short by a crash (no newline) is ignored: its object is done
    /// again, or found already rewrapped.
    pub fn open(path: &Path) -> Result<Self> {
        let mut done = HashSet::new();
        match fs::read(path) {
            Ok(bytes) => {
                // Only whole lines: a torn last one could name a prefix of another id.
                for line in bytes.split_inclusive(|b| *b == b'\n').filter_map(|l| l.strip_suffix(b"\n")) {
                    let Ok(line) = std::str::from_utf8(line) else { continue };
                    if let Some(id) = line.strip_prefix("rewrapped ").or_else(|| line.strip_prefix("skipped ")) {
                        done.insert(id.to_owned());
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        // A torn last line must not glue onto the next record.
        file.write_all(b"\n")?;
        Ok(Checkpoint { done, file: Mutex::new(file) })
    }

    /// True when an earlier run recorded `id`.
    pub fn is_done(&self, id: &str) -> bool {
        self.done.contains(id)
    }

    fn record(&self, id: &str, outcome: Outcome) -> Result<()> {
        let word = match outcome {
            Outcome::Rewrapped | Outcome::RewrappedInPlace => "rewrapped",
            Outcome::Skipped => "skipped",
        };
        let mut f = self.file.lock().map_err(|_| Error::config("checkpoint lock poisoned"))?;
        f.write_all(format!("{word} {id}\n").as_bytes())?;
        f.sync_data()?;
        Ok(())
    }
}

/// Rewrap every object of `source` not recorded in `checkpoint`, with at
/// most `jobs` at a time; `progress` is called once per object (done,
/// skipped or failed) from the worker threads. Failures do not stop the run.
pub fn run(
    source: &dyn RewrapSource,
    jobs: usize,
    checkpoint: Option<&Checkpoint>,
    progress: &(dyn Fn(&str, &Result<Outcome>) + Sync),
) -> Result<Summary> {
    if jobs == 0 {
        return Err(Error::config("--jobs must be at least 1"));
    }
    let ids = source.list()?;
    let (todo, resumed): (Vec<String>, Vec<String>) =
        ids.into_iter().partition(|id| !checkpoint.is_some_and(|c| c.is_done(id)));
    let summary = Mutex::new(Summary { resumed: resumed.len(), ..Summary::default() });
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..jobs.min(todo.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = todo.get(i) else { break };
                let mut result = source.rewrap(id);
                if let (Ok(outcome), Some(c)) = (&result, checkpoint) {
                    if let Err(e) = c.record(id, *outcome) {
                        result = Err(e);
                    }
                }
                progress(id, &result);
                if let Ok(mut sum) = summary.lock() {
                    match result {
                        Ok(Outcome::Rewrapped) => sum.rewrapped += 1,
                        Ok(Outcome::RewrappedInPlace) => {
                            sum.rewrapped += 1;
                            sum.in_place += 1;
                        }
                        Ok(Outcome::Skipped) => sum.skipped += 1,
                        Err(e) => sum.failed.push((id.clone(), e.to_string())),
                    }
                }
            });
        }
    });
    let mut summary = summary.into_inner().map_err(|_| Error::config("summary lock poisoned"))?;
    summary.failed.sort();
    Ok(summary)
}

/// Suffix of the temporary files [`DirSource`] writes (and never lists).
pub const PARTIAL_SUFFIX: &str = ".rewrap.partial";

/// The regular files of a directory tree, each rewrapped where it lies with
/// [`Rewrapper::rewrap_file_in_place`]: only its header rewritten (under a
/// journal) when the suite does not sign and the new header has the old
/// one's length, otherwise through a temporary file renamed over it; a
/// journal left by an interrupted run is recovered first. Identifiers are
/// paths relative to the root; symbolic links are not followed; files whose
/// names end in [`PARTIAL_SUFFIX`] or [`JOURNAL_SUFFIX`] and the names in
/// `exclude` are left out.
#[derive(Debug)]
pub struct DirSource {
    root: PathBuf,
    rewrapper: Rewrapper,
    exclude: Vec<PathBuf>,
}

impl DirSource {
    /// The files under `root`.
    pub fn new(root: impl Into<PathBuf>, rewrapper: Rewrapper) -> Self {
        DirSource { root: root.into(), rewrapper, exclude: Vec::new() }
    }

    /// Leave out this file (such as a checkpoint kept inside the tree).
    pub fn exclude(mut self, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        self.exclude.push(fs::canonicalize(&path).unwrap_or(path));
        self
    }

    fn walk(&self, dir: &Path, out: &mut Vec<String>) -> Result<()> {
        let mut entries = fs::read_dir(dir)?.collect::<io::Result<Vec<_>>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let ty = entry.file_type()?;
            let path = entry.path();
            if ty.is_dir() {
                self.walk(&path, out)?;
            } else if ty.is_file() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(PARTIAL_SUFFIX)
                    || name.ends_with(JOURNAL_SUFFIX)
                    || self.exclude.iter().any(|x| fs::canonicalize(&path).ok().as_ref() == Some(x))
                {
                    continue;
                }
                let rel = path.strip_prefix(&self.root).unwrap_or(&path);
                out.push(rel.to_string_lossy().into_owned());
            }
        }
        Ok(())
    }
}

impl RewrapSource for DirSource {
    fn list(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        self.walk(&self.root, &mut out)?;
        Ok(out)
    }

    fn rewrap(&self, id: &str) -> Result<Outcome> {
        let outcome = self.rewrapper.rewrap_file_in_place(&self.root.join(id))?;
        Ok(match outcome.method {
            InPlaceMethod::InPlace => Outcome::RewrappedInPlace,
            InPlaceMethod::AlreadyRewrapped => Outcome::Skipped,
            _ => Outcome::Rewrapped,
        })
    }
}
