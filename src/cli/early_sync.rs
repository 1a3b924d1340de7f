//! Making an output file durable while it is written, not only at the end.
//!
//! An output file is fsynced before it is renamed into place. Left to the
//! end, that fsync waits for the whole file to reach the disk: for 256 MiB
//! about as long again as writing it. Instead, every [`SYNC_EVERY`] bytes a
//! helper thread runs `fdatasync` on a second handle to the file, so the disk
//! works while the writing goes on and the final fsync has only the tail
//! left. The writes never wait for the helper: a request made while one is
//! still running is merged into it. An error the helper meets is reported by
//! the next write or by [`EarlySync::finish`], so it is never lost (on Linux
//! a write-back error is reported once per open file, whichever handle asks).

use std::fs::File;
use std::io;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread::{self, JoinHandle};

/// Bytes written between two background syncs.
pub const SYNC_EVERY: u64 = 16 * 1024 * 1024;

type SyncFn = Box<dyn FnMut() -> io::Result<()> + Send>;

/// Background syncs of one file (see the module documentation).
pub struct EarlySync {
    /// Bytes written since the last request.
    unsynced: u64,
    /// The helper thread, started at the first request.
    helper: Option<Helper>,
    /// What the helper runs, until it starts (`None` without a second handle:
    /// then the file is simply synced at the end).
    sync: Option<SyncFn>,
}

struct Helper {
    kick: SyncSender<()>,
    thread: JoinHandle<io::Result<()>>,
}

impl Helper {
    /// Stop the helper and return the first error it met.
    fn stop(self) -> io::Result<()> {
        drop(self.kick);
        self.thread.join().unwrap_or_else(|_| Err(io::Error::other("the sync thread panicked")))
    }
}

impl EarlySync {
    /// Background syncs of `file` (through a second handle to it).
    pub fn new(file: &File) -> Self {
        let sync = file.try_clone().ok().map(|file| Box::new(move || file.sync_data()) as SyncFn);
        Self::with(sync)
    }

    /// Background syncs that call `sync`.
    fn with(sync: Option<SyncFn>) -> Self {
        EarlySync { unsynced: 0, helper: None, sync }
    }

    /// Count `n` more bytes written; every [`SYNC_EVERY`] bytes ask the
    /// helper to sync. Fails with the helper's error if it met one.
    pub fn wrote(&mut self, n: usize) -> io::Result<()> {
        self.unsynced += n as u64;
        if self.unsynced < SYNC_EVERY {
            return Ok(());
        }
        self.unsynced = 0;
        if self.helper.is_none() {
            self.helper = self.start();
        }
        let Some(helper) = &self.helper else { return Ok(()) };
        match helper.kick.try_send(()) {
            // A sync is already asked for; it covers these bytes too.
            Ok(()) | Err(TrySendError::Full(())) => Ok(()),
            // The helper stopped on an error: report it now.
            Err(TrySendError::Disconnected(())) => match self.helper.take().map(Helper::stop) {
                Some(Err(e)) => Err(e),
                _ => Err(io::Error::other("the sync thread stopped")),
            },
        }
    }

    /// Start the helper; without one (no second handle, no thread) the
    /// file is simply synced at the end.
    fn start(&mut self) -> Option<Helper> {
        let mut sync = self.sync.take()?;
        let (kick, kicked) = mpsc::sync_channel::<()>(1);
        let thread = thread::Builder::new()
            .name("sync".into())
            .spawn(move || {
                for () in kicked.iter() {
                    sync()?;
                }
                Ok(())
            })
            .ok()?;
        Some(Helper { kick, thread })
    }

    /// Wait for the helper to finish and return the first error it met.
    /// The caller then syncs the file itself, which covers the rest.
    pub fn finish(&mut self) -> io::Result<()> {
        self.helper.take().map_or(Ok(()), Helper::stop)
    }
}

impl Drop for EarlySync {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    const STEP: usize = 1024 * 1024;

    fn counting(calls: &Arc<AtomicUsize>, fail_from: usize) -> EarlySync {
        let calls = Arc::clone(calls);
        EarlySync::with(Some(Box::new(move || {
            if calls.fetch_add(1, Ordering::SeqCst) + 1 >= fail_from {
                Err(io::Error::other("write-back failed"))
            } else {
                Ok(())
            }
        })))
    }

    #[test]
    fn small_outputs_start_no_helper_and_large_ones_sync_as_they_go() {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut sync = counting(&calls, usize::MAX);
        for _ in 0..(SYNC_EVERY as usize / STEP - 1) {
            sync.wrote(STEP).unwrap();
        }
        assert!(sync.helper.is_none(), "no sync below the threshold");
        for _ in 0..(4 * SYNC_EVERY as usize / STEP) {
            sync.wrote(STEP).unwrap();
        }
        sync.finish().unwrap();
        let n = calls.load(Ordering::SeqCst);
        // Four or five requests, some of which may merge into one sync.
        assert!((1..=5).contains(&n), "{n} syncs");
    }

    #[test]
    fn an_error_of_the_helper_is_reported_by_a_later_write_or_at_the_end() {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut sync = counting(&calls, 1);
        let mut failed = None;
        for _ in 0..(64 * SYNC_EVERY as usize / STEP) {
            if let Err(e) = sync.wrote(STEP) {
                failed = Some(e);
                break;
            }
            std::thread::yield_now();
        }
        let e = match failed {
            Some(e) => e,
            None => sync.finish().expect_err("the helper's error is not lost"),
        };
        assert_eq!(e.to_string(), "write-back failed");

        // Stopped before any write: the error still comes out of finish.
        let mut sync = counting(&Arc::new(AtomicUsize::new(0)), 1);
        sync.wrote(SYNC_EVERY as usize).unwrap();
        let e = sync.finish().expect_err("reported at the end");
        assert_eq!(e.to_string(), "write-back failed");
    }

    #[test]
    fn a_real_file_gets_every_byte() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut out = file.reopen().unwrap();
        let mut sync = EarlySync::new(&out);
        let data: Vec<u8> = (0..STEP).map(|i| (i * 7 % 251) as u8).collect();
        for _ in 0..(2 * SYNC_EVERY as usize / STEP + 3) {
            out.write_all(&data).unwrap();
            sync.wrote(data.len()).unwrap();
        }
        sync.finish().unwrap();
        out.sync_all().unwrap();
        let back = std::fs::read(file.path()).unwrap();
        assert_eq!(back.len(), data.len() * (2 * SYNC_EVERY as usize / STEP + 3));
        assert!(back.chunks(STEP).all(|c| c == &data[..]));
    }
}
