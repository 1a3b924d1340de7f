//! The journal of an in-place header rewrite: which file, where its header
//! is, the old and the new header bytes, and a checksum of all of it.
//!
//! Layout (integers big-endian): the magic line, the file's device and inode
//! (u64 each), its length (u64), the header's offset (u64, always 0) and
//! length (u32), the old header, the new header (that length each), then the
//! SHA-512 of every byte before it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Suffix of the journal files written beside the files rewrapped in place
/// (`.NAME.rewrap-journal`).
pub const JOURNAL_SUFFIX: &str = ".rewrap-journal";

const MAGIC: &[u8] = b"hsm-keyring rewrap journal 1\n";
const SUM_LEN: usize = 64;

/// One in-place rewrite, as recorded before the file is touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Journal {
    pub dev: u64,
    pub ino: u64,
    pub file_len: u64,
    pub offset: u64,
    pub old: Vec<u8>,
    pub new: Vec<u8>,
}

/// The journal path of `file`: `.NAME.rewrap-journal` in its directory.
pub(super) fn path_of(file: &Path) -> PathBuf {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    parent(file).join(format!(".{name}{JOURNAL_SUFFIX}"))
}

/// The directory holding `file`.
pub(super) fn parent(file: &Path) -> &Path {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Make a directory's entries (a file created, renamed or removed) durable.
pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Device and inode of a file's metadata.
pub(super) fn identity(meta: &fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

impl Journal {
    pub(super) fn encode(&self) -> Result<Vec<u8>> {
        if self.old.len() != self.new.len() {
            return Err(Error::config("an in-place journal needs headers of one length"));
        }
        let len = u32::try_from(self.old.len()).map_err(|_| Error::config("header too long for a journal"))?;
        let mut out = Vec::with_capacity(MAGIC.len() + 36 + 2 * self.old.len() + SUM_LEN);
        out.extend_from_slice(MAGIC);
        for n in [self.dev, self.ino, self.file_len, self.offset] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.old);
        out.extend_from_slice(&self.new);
        let sum = crate::crypto::sha512(&out);
        out.extend_from_slice(&sum);
        Ok(out)
    }

    /// The journal in `bytes`, or `None` when it is cut short, has another
    /// layout or its checksum fails.
    pub(super) fn decode(bytes: &[u8]) -> Option<Journal> {
        let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(SUM_LEN)?)?;
        if crate::crypto::sha512(body)[..] != *sum {
            return None;
        }
        let rest = body.strip_prefix(MAGIC)?;
        let u64_at = |i: usize| rest.get(i..i + 8).map(|b| u64::from_be_bytes(b.try_into().unwrap_or([0; 8])));
        let len = usize::try_from(u32::from_be_bytes(rest.get(32..36)?.try_into().ok()?)).ok()?;
        let headers = rest.get(36..)?;
        if headers.len() != 2 * len {
            return None;
        }
        Some(Journal {
            dev: u64_at(0)?,
            ino: u64_at(8)?,
            file_len: u64_at(16)?,
            offset: u64_at(24)?,
            old: headers[..len].to_vec(),
            new: headers[len..].to_vec(),
        })
    }

    /// Write the journal to `path` and make it durable (file and directory).
    pub(super) fn write(&self, path: &Path) -> Result<()> {
        let bytes = self.encode()?;
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(path)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        sync_dir(parent(path))
    }
}

/// Remove the journal at `path` and make its removal durable.
pub(super) fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(parent(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Journal {
        Journal { dev: 1, ino: 2, file_len: 300, offset: 0, old: vec![1; 40], new: vec![2; 40] }
    }

    #[test]
    fn a_journal_round_trips_and_any_changed_byte_is_caught() {
        let j = sample();
        let bytes = j.encode().unwrap();
        assert_eq!(Journal::decode(&bytes), Some(j));
        for i in [0, MAGIC.len() + 3, bytes.len() / 2, bytes.len() - 1] {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert_eq!(Journal::decode(&b), None, "byte {i}");
        }
        assert_eq!(Journal::decode(&bytes[..bytes.len() - 1]), None);
        assert_eq!(Journal::decode(b"short"), None);
        assert_eq!(Journal::decode(&[]), None);
    }

    #[test]
    fn headers_of_different_lengths_are_not_journaled() {
        let mut j = sample();
        j.new.push(0);
        assert!(j.encode().is_err());
    }

    #[test]
    fn the_journal_sits_beside_its_file() {
        assert_eq!(path_of(Path::new("a/b/msg")), Path::new("a/b/.msg.rewrap-journal"));
        assert_eq!(path_of(Path::new("msg")), Path::new("./.msg.rewrap-journal"));
    }
}
