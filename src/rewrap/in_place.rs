//! Rewrapping a message file where it lies.
//!
//! [`Rewrapper::rewrap_file_in_place`] rewrites only the header when that is
//! safe: the suite does not sign (a signed message's footer covers the
//! header and must be recomputed) and the new header has exactly the old
//! one's length (keys of the same kind with names of equal length). The body
//! and footer stay where they are on disk. Otherwise the file is rewritten
//! whole: the new header and the body go to `.NAME.PID.rewrap.partial`
//! beside it, which is synced and renamed over it (with the old file's
//! permissions).
//!
//! # Crash safety
//!
//! Before the file is touched, a journal (`.NAME.rewrap-journal` beside it)
//! records the file's device, inode and length, the header's offset and
//! length, the old and the new header bytes, and a SHA-512 checksum of all of
//! that; the journal and its directory are synced. Then the new header is
//! written at offset 0 (`write_at`), the file's data is synced, and the
//! journal is removed (the directory synced again). A crash leaves the file
//! with the old header, the new one, or a mix of both (a torn write); the
//! body is never at risk.
//!
//! Any later call on that file (and so any `rewrap` of it or of its
//! directory) first looks for a journal:
//!
//! * A sound journal of this file (same device and inode, same length):
//!   whatever the header bytes are now (old, new or torn), the new header
//!   is written again and synced, and the journal removed. Both old and new
//!   are valid headers of the same body, but the new one is what was asked.
//! * A sound journal of another file (the name now holds a different
//!   inode or length): removed if the file's header bytes equal its old or
//!   new header, otherwise the call is refused.
//! * A journal whose checksum fails: removed if the file's header is intact
//!   (it parses and authenticates under the `from` or the `to` keyrings),
//!   otherwise the call is refused, naming the journal. Nothing is written
//!   then: inspect the file and the journal by hand.
//!
//! The old header is authenticated (its tag checked with the data key the
//! `from` keyrings open) before any journal is written, so a tampered file
//! is refused untouched. A path that is not a regular file is refused; a
//! file that is not writable is rewritten by copy (the rename needs only the
//! directory writable).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::journal::{self, Journal};
use super::message::Built;
use super::{Rewrapped, Rewrapper};
use crate::error::{Error, Result};
use crate::format::Header;
use crate::message::decrypt;

/// How [`Rewrapper::rewrap_file_in_place`] rewrote a file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InPlaceMethod {
    /// Only the header bytes were rewritten, in place (journaled).
    InPlace,
    /// The file was rewritten whole through a temporary file and a rename,
    /// for the reason given.
    Copied(CopyReason),
    /// The `from` keyrings no longer open the file and the `to` keyrings
    /// do: it was left as it was.
    AlreadyRewrapped,
}

/// Why a file was rewritten whole rather than in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CopyReason {
    /// A signing suite: the footer is recomputed over the new header.
    Signed,
    /// The new header's length differs from the old one's.
    HeaderLength,
    /// The file is not writable (read-only permissions).
    NotWritable,
}

impl std::fmt::Display for CopyReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CopyReason::Signed => "the suite signs: the footer is recomputed",
            CopyReason::HeaderLength => "the new header's length differs from the old one's",
            CopyReason::NotWritable => "the file is not writable",
        })
    }
}

/// What [`Rewrapper::rewrap_file_in_place`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InPlaceOutcome {
    /// How the file was rewritten (or that it was already rewrapped).
    pub method: InPlaceMethod,
    /// The header lengths and body length (`None` when already rewrapped).
    pub rewrapped: Option<Rewrapped>,
    /// True when a journal left by an interrupted in-place rewrite was
    /// found and its new header written (before this call's own work).
    pub recovered: bool,
}

impl Rewrapper {
    /// Rewrap the message file at `path` in place: only its header rewritten
    /// when the suite does not sign and the new header has the old one's
    /// length, the whole file rewritten through a temporary file and a
    /// rename otherwise (see the [module docs](crate::rewrap::in_place) for the journal that
    /// makes the in-place rewrite crash-safe, and how a later call recovers
    /// from an interrupted one). A file that the `from` keyrings no longer
    /// open but the `to` keyrings do is left alone
    /// ([`InPlaceMethod::AlreadyRewrapped`]). On an error the file is as it
    /// was.
    pub fn rewrap_file_in_place(&self, path: &Path) -> Result<InPlaceOutcome> {
        let path = &fs::canonicalize(path)?;
        let meta = fs::metadata(path)?;
        if !meta.is_file() {
            return Err(Error::config(format!("{}: not a regular file", path.display())));
        }
        let recovered = self.recover(path)?;
        let (file, writable) = if meta.permissions().readonly() {
            (File::open(path)?, false)
        } else {
            match OpenOptions::new().read(true).write(true).open(path) {
                Ok(f) => (f, true),
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => (File::open(path)?, false),
                Err(e) => return Err(e.into()),
            }
        };
        let mut reader = BufReader::with_capacity(64 * 1024, &file);
        let (header, rest) = decrypt::read_header(&mut reader, &self.client().header_limits())?;
        let built = match self.build(&header) {
            Ok(built) => built,
            Err(e) => {
                if self.header_is_rewrapped(&header) {
                    return Ok(InPlaceOutcome { method: InPlaceMethod::AlreadyRewrapped, rewrapped: None, recovered });
                }
                return Err(e);
            }
        };
        let reason = if header.suite.is_signing() {
            Some(CopyReason::Signed)
        } else if built.0.len() != header.len() {
            Some(CopyReason::HeaderLength)
        } else if !writable {
            Some(CopyReason::NotWritable)
        } else {
            None
        };
        let (method, rewrapped) = match reason {
            Some(reason) => {
                let r = self.copy_over(path, &meta, &header, built, &rest, reader)?;
                (InPlaceMethod::Copied(reason), r)
            }
            None => {
                drop(reader);
                let r = write_header_in_place(path, &file, &meta, &header, built)?;
                (InPlaceMethod::InPlace, r)
            }
        };
        Ok(InPlaceOutcome { method, rewrapped: Some(rewrapped), recovered })
    }

    /// Finish (or clear) an interrupted in-place rewrite of `path`: true
    /// when a journal's new header was written.
    fn recover(&self, path: &Path) -> Result<bool> {
        let jpath = journal::path_of(path);
        let bytes = match fs::read(&jpath) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let refuse = |why: &str| {
            Err(Error::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "rewrap journal {}: {why}; nothing was written: check {} and the journal by hand",
                    jpath.display(),
                    path.display()
                ),
            )))
        };
        let Some(j) = Journal::decode(&bytes) else {
            if self.header_is_intact(path) {
                journal::remove(&jpath)?;
                return Ok(false);
            }
            return refuse("its checksum fails and the file's header is not intact");
        };
        let meta = fs::metadata(path)?;
        let mut now = vec![0u8; j.old.len()];
        let read = File::open(path)?.read_exact_at(&mut now, j.offset);
        let intact = read.is_ok() && (now == j.old || now == j.new);
        if journal::identity(&meta) != (j.dev, j.ino) || meta.len() != j.file_len {
            if intact {
                journal::remove(&jpath)?;
                return Ok(false);
            }
            return refuse("it records another file (device, inode or length differ) and the header matches neither");
        }
        let file = OpenOptions::new().write(true).open(path)?;
        file.write_all_at(&j.new, j.offset)?;
        file.sync_data()?;
        journal::remove(&jpath)?;
        Ok(true)
    }

    /// The file's header parses and authenticates under `from` or `to`.
    fn header_is_intact(&self, path: &Path) -> bool {
        let Ok(f) = File::open(path) else { return false };
        let Ok((header, _)) = decrypt::read_header(&mut BufReader::new(f), &self.client().header_limits()) else {
            return false;
        };
        self.open(&header, &**self.from_keyring()).is_ok() || self.open(&header, &**self.to_keyring()).is_ok()
    }

    /// Rewrite the file whole: a temporary file beside it, synced, renamed over it.
    fn copy_over(
        &self,
        path: &Path,
        meta: &fs::Metadata,
        header: &Header,
        built: Built,
        rest: &[u8],
        input: BufReader<&File>,
    ) -> Result<Rewrapped> {
        let dir = journal::parent(path);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.{}{}", std::process::id(), super::bulk::PARTIAL_SUFFIX));
        let result = (|| {
            let mut out = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
            let r = self.write_rewrapped(header, built, rest, input, &mut out)?;
            out.sync_all()?;
            fs::set_permissions(&tmp, meta.permissions())?;
            Ok(r)
        })();
        match result {
            Ok(r) => {
                fs::rename(&tmp, path)?;
                journal::sync_dir(dir)?;
                Ok(r)
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }
}

/// Journal, write the new header over the old one, sync, drop the journal.
fn write_header_in_place(
    path: &Path,
    file: &File,
    meta: &fs::Metadata,
    header: &Header,
    built: Built,
) -> Result<Rewrapped> {
    let (new_header, _, edk_count) = built;
    let (dev, ino) = journal::identity(meta);
    let j = Journal { dev, ino, file_len: meta.len(), offset: 0, old: header.raw().to_vec(), new: new_header };
    let jpath = journal::path_of(path);
    j.write(&jpath)?;
    file.write_all_at(&j.new, 0)?;
    file.sync_data()?;
    journal::remove(&jpath)?;
    Ok(Rewrapped {
        old_header_len: header.len(),
        new_header_len: j.new.len(),
        body_len: meta.len().saturating_sub(header.len() as u64),
        edk_count,
    })
}
