//! The bounded pool of sessions a [`Token`](super::Token) lends out.
//!
//! The pool has a generation: [`Pool::drain`] starts a new one, closing the
//! idle sessions, and a session of an older generation is closed when its
//! lease ends instead of going back to the pool. After a lost login every
//! session of the process is stale, so one drain replaces them all, and the
//! thread that drains is the only one that needs to (see [`Lease::drain`]).

use std::sync::{Condvar, Mutex, MutexGuard, RwLockReadGuard};

use cryptoki::error::Error as CkError;
use cryptoki::session::Session;

type CkResult<T> = std::result::Result<T, CkError>;

/// Idle sessions and a count of open ones, at most `size`.
pub(super) struct Pool {
    size: usize,
    state: Mutex<State>,
    available: Condvar,
}

struct State {
    idle: Vec<Session>,
    open: usize,
    generation: u64,
    /// Sessions of generations below this one belong to another process (the
    /// parent of a fork): they are forgotten, never closed, since their
    /// handles may now name sessions of this process.
    foreign_below: u64,
}

impl Pool {
    /// An empty pool that opens at most `size` sessions (at least 1).
    pub(super) fn new(size: usize) -> Self {
        Pool {
            size: size.max(1),
            state: Mutex::new(State { idle: Vec::new(), open: 0, generation: 0, foreign_below: 0 }),
            available: Condvar::new(),
        }
    }

    /// Most sessions open at once.
    pub(super) fn size(&self) -> usize {
        self.size
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Borrow a session: an idle one, a new one from `open` if fewer than
    /// `size` are open, else wait for one to come back. The lease keeps
    /// `guard` until its session is back in the pool.
    pub(super) fn checkout<'a>(
        &'a self,
        guard: Option<RwLockReadGuard<'a, ()>>,
        open: impl FnOnce() -> CkResult<Session>,
    ) -> CkResult<Lease<'a>> {
        let mut state = self.state();
        loop {
            let generation = state.generation;
            if let Some(session) = state.idle.pop() {
                return Ok(Lease { pool: self, session: Some(session), generation, _use: guard });
            }
            if state.open < self.size {
                state.open += 1;
                drop(state);
                return match open() {
                    Ok(session) => Ok(Lease { pool: self, session: Some(session), generation, _use: guard }),
                    Err(e) => {
                        self.closed();
                        Err(e)
                    }
                };
            }
            state = self.available.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Start a new generation: close every idle session (or forget them, when
    /// `foreign`: they belong to the process this one was forked from).
    /// Returns how many were dropped.
    pub(super) fn drain_all(&self, foreign: bool) -> usize {
        self.drain_from(None, foreign).unwrap_or(0)
    }

    /// [`drain_all`](Pool::drain_all) if the generation is still `seen`
    /// (always when `None`); `None` when another drain came first.
    fn drain_from(&self, seen: Option<u64>, foreign: bool) -> Option<usize> {
        let mut state = self.state();
        if seen.is_some_and(|g| g != state.generation) {
            return None;
        }
        state.generation += 1;
        if foreign {
            state.foreign_below = state.generation;
        }
        let idle = std::mem::take(&mut state.idle);
        state.open -= idle.len();
        drop(state);
        let n = idle.len();
        for session in idle {
            release(session, foreign);
        }
        self.available.notify_all();
        Some(n)
    }

    /// One open session is gone: make room for a new one.
    fn closed(&self) {
        self.state().open -= 1;
        self.available.notify_one();
    }
}

/// Close a session, or forget it without a call when it is not this
/// process's.
fn release(session: Session, foreign: bool) {
    if foreign {
        std::mem::forget(session);
    } else {
        drop(session);
    }
}

/// A session borrowed from the pool; goes back on drop.
pub(crate) struct Lease<'a> {
    pool: &'a Pool,
    session: Option<Session>,
    generation: u64,
    /// Released after the session is back in the pool.
    _use: Option<RwLockReadGuard<'a, ()>>,
}

impl Lease<'_> {
    pub(crate) fn session(&self) -> &Session {
        // Always `Some` until drop or discard, which consume the lease.
        match &self.session {
            Some(s) => s,
            None => unreachable_session(),
        }
    }

    /// This session went stale with its login: close it and, unless another
    /// thread already did since this session was lent, every idle one
    /// (a new generation). Returns true when this call drained the pool.
    pub(super) fn drain(mut self) -> bool {
        let Some(session) = self.session.take() else { return false };
        drop(session);
        self.pool.closed();
        self.pool.drain_from(Some(self.generation), false).is_some()
    }
}

#[cold]
fn unreachable_session() -> ! {
    // A lease holds its session from checkout until it is consumed.
    unreachable!("lease used after its session was released")
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let mut state = self.pool.state();
            if self.generation == state.generation {
                state.idle.push(session);
                drop(state);
                self.pool.available.notify_one();
            } else {
                let foreign = self.generation < state.foreign_below;
                state.open -= 1;
                drop(state);
                release(session, foreign);
                self.pool.available.notify_one();
            }
        }
    }
}
