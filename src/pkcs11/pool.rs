//! The bounded pool of sessions a [`Token`](super::Token) lends out.

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
}

impl Pool {
    /// An empty pool that opens at most `size` sessions (at least 1).
    pub(super) fn new(size: usize) -> Self {
        Pool { size: size.max(1), state: Mutex::new(State { idle: Vec::new(), open: 0 }), available: Condvar::new() }
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
            if let Some(session) = state.idle.pop() {
                return Ok(Lease { pool: self, session: Some(session), _use: guard });
            }
            if state.open < self.size {
                state.open += 1;
                drop(state);
                return match open() {
                    Ok(session) => Ok(Lease { pool: self, session: Some(session), _use: guard }),
                    Err(e) => {
                        self.closed();
                        Err(e)
                    }
                };
            }
            state = self.available.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// One open session is gone: make room for a new one.
    fn closed(&self) {
        self.state().open -= 1;
        self.available.notify_one();
    }
}

/// A session borrowed from the pool; goes back on drop.
pub(crate) struct Lease<'a> {
    pool: &'a Pool,
    session: Option<Session>,
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

    /// Close the session instead of returning it to the pool.
    pub(super) fn discard(mut self) {
        if let Some(session) = self.session.take() {
            drop(session);
            self.pool.closed();
        }
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
            self.pool.state().idle.push(session);
            self.pool.available.notify_one();
        }
    }
}
