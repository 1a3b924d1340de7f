//! Worker threads that live as long as a streaming message: a bounded
//! [`Pool`] that hands results back in submission order, and a
//! [`HashThread`] that feeds the signature hash in message order.

use std::collections::BTreeMap;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};

use super::worker_lost;
use crate::crypto::SignatureHasher;
use crate::error::{Error, Result};

/// Runs one hash over items in the order they are sent, then forwards each
/// item to `forward`. Dropping it (or [`HashThread::finish`]) ends the thread.
pub(crate) struct HashThread<T> {
    tx: Option<mpsc::Sender<T>>,
    handle: Option<JoinHandle<SignatureHasher>>,
}

impl<T: Send + 'static> HashThread<T> {
    pub(crate) fn start(mut hasher: SignatureHasher, forward: mpsc::Sender<T>, bytes: fn(&T) -> &[u8]) -> Result<Self> {
        let (tx, rx) = mpsc::channel::<T>();
        let handle = thread::Builder::new().name("hsm-keyring-hash".into()).spawn(move || {
            for item in rx {
                hasher.update(bytes(&item));
                // The receiver is gone only when the message was given up.
                let _ = forward.send(item);
            }
            hasher
        })?;
        Ok(HashThread { tx: Some(tx), handle: Some(handle) })
    }

    pub(crate) fn send(&self, item: T) -> Result<()> {
        self.tx.as_ref().and_then(|tx| tx.send(item).ok()).ok_or_else(|| worker_lost("hashing"))
    }

    /// Wait until every item sent is hashed and forwarded; the hash so far.
    pub(crate) fn finish(mut self) -> Result<SignatureHasher> {
        self.tx = None;
        let handle = self.handle.take().ok_or_else(|| worker_lost("hashing"))?;
        handle.join().map_err(|_| worker_lost("hashing"))
    }
}

impl<T> Drop for HashThread<T> {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A hash run over every job before the workers see it, and the bytes of a
/// job it takes in.
pub(crate) type FrontHash<J> = (SignatureHasher, fn(&(u64, J)) -> &[u8]);

/// A job function: the job and a scratch buffer of the worker (for AADs).
type Work<J, R> = dyn Fn(J, &mut Vec<u8>) -> R + Send + Sync;

/// A fixed set of worker threads running `work` on jobs; at most `capacity`
/// jobs are submitted and not yet taken back, and results come back in the
/// order the jobs were submitted. With a front hash, every job goes through
/// a [`HashThread`] (in order) before a worker sees it.
pub(crate) struct Pool<J: Send + 'static, R: Send + 'static> {
    jobs: Option<mpsc::Sender<(u64, J)>>,
    front: Option<HashThread<(u64, J)>>,
    results: mpsc::Receiver<(u64, R)>,
    threads: Vec<JoinHandle<()>>,
    submitted: u64,
    taken: u64,
    /// Jobs sent to the threads whose results have not come back.
    at_workers: usize,
    done: BTreeMap<u64, R>,
    capacity: usize,
}

impl<J: Send + 'static, R: Send + 'static> Pool<J, R> {
    /// Start `workers` threads. With `front`, jobs are hashed (the bytes
    /// `front.1` picks) before they are worked on.
    pub(crate) fn start(
        workers: usize,
        capacity: usize,
        work: Arc<Work<J, R>>,
        front: Option<FrontHash<J>>,
    ) -> Result<Self> {
        let (jobs_tx, jobs_rx) = mpsc::channel::<(u64, J)>();
        let (results_tx, results) = mpsc::channel::<(u64, R)>();
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let mut threads = Vec::with_capacity(workers);
        for _ in 0..workers.max(1) {
            let (jobs_rx, results_tx, work) = (Arc::clone(&jobs_rx), results_tx.clone(), Arc::clone(&work));
            let spawned = thread::Builder::new().name("hsm-keyring-frames".into()).spawn(move || {
                let mut scratch = Vec::with_capacity(96);
                loop {
                    let job = jobs_rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok((i, job)) = job else { return };
                    if results_tx.send((i, work(job, &mut scratch))).is_err() {
                        return;
                    }
                }
            });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    drop(jobs_tx);
                    threads.into_iter().for_each(|t: JoinHandle<()>| drop(t.join()));
                    return Err(Error::Io(e));
                }
            }
        }
        let (jobs, front) = match front {
            Some((hasher, bytes)) => (None, Some(HashThread::start(hasher, jobs_tx, bytes)?)),
            None => (Some(jobs_tx), None),
        };
        Ok(Pool {
            jobs,
            front,
            results,
            threads,
            submitted: 0,
            taken: 0,
            at_workers: 0,
            done: BTreeMap::new(),
            capacity: capacity.max(1),
        })
    }

    /// Jobs submitted and not taken back.
    pub(crate) fn in_flight(&self) -> usize {
        (self.submitted - self.taken) as usize
    }

    pub(crate) fn is_full(&self) -> bool {
        self.in_flight() >= self.capacity
    }

    /// Whether the threads have enough queued (`IN_FLIGHT_PER_WORKER` jobs
    /// each) that the caller may as well do the next job itself.
    pub(crate) fn backlogged(&self) -> bool {
        self.at_workers >= super::IN_FLIGHT_PER_WORKER * self.threads.len()
    }

    /// Count a job the caller did itself; its result comes back in order like the others.
    pub(crate) fn submit_done(&mut self, result: R) {
        self.done.insert(self.submitted, result);
        self.submitted += 1;
    }

    /// Submit a job (the caller keeps to the capacity: see [`Pool::is_full`]).
    pub(crate) fn submit(&mut self, job: J) -> Result<()> {
        let item = (self.submitted, job);
        match (&self.front, &self.jobs) {
            (Some(front), _) => front.send(item)?,
            (None, Some(jobs)) => jobs.send(item).map_err(|_| worker_lost("frame"))?,
            (None, None) => return Err(Error::config("no more jobs are accepted")),
        }
        self.submitted += 1;
        self.at_workers += 1;
        Ok(())
    }

    /// The result of the oldest job not taken yet, waiting for it; `None`
    /// when every job was taken.
    pub(crate) fn next(&mut self) -> Result<Option<R>> {
        if self.taken == self.submitted {
            return Ok(None);
        }
        loop {
            if let Some(r) = self.done.remove(&self.taken) {
                self.taken += 1;
                return Ok(Some(r));
            }
            let (i, r) = self.results.recv().map_err(|_| worker_lost("frame"))?;
            self.at_workers -= 1;
            self.done.insert(i, r);
        }
    }

    /// Like [`Pool::next`], without waiting: `None` if the oldest job is not done.
    pub(crate) fn ready(&mut self) -> Option<R> {
        while let Ok((i, r)) = self.results.try_recv() {
            self.at_workers -= 1;
            self.done.insert(i, r);
        }
        let r = self.done.remove(&self.taken)?;
        self.taken += 1;
        Some(r)
    }

    /// Accept no more jobs; returns the front hash once every job has passed it.
    pub(crate) fn close(&mut self) -> Result<Option<SignatureHasher>> {
        self.jobs = None;
        self.front.take().map(HashThread::finish).transpose()
    }
}

impl<J: Send + 'static, R: Send + 'static> Drop for Pool<J, R> {
    fn drop(&mut self) {
        self.front = None;
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
