//! Randomness: the operating system's CSPRNG (through the backend), with
//! one draw per message setup instead of one per value.
//!
//! Setting up one message takes several random values (the data key, the
//! IV of each AES wrap, the message id), each of them a system call (or a
//! DRBG call) of its own. [`batch`] draws enough for all of them at once and
//! serves [`fill`] from that draw while its closure runs on this thread. The
//! bytes are handed out once each, wiped as they are taken, and whatever is
//! left is wiped when the closure returns: nothing drawn outlives the call,
//! so no other thread, later message or forked child can see it again.

use std::cell::RefCell;

use zeroize::{Zeroize, Zeroizing};

use crate::error::Result;

/// Bytes drawn per batch: a message id (32), a data key (32) and the IVs
/// of a few AES wraps (12 each). A request the batch cannot serve in full
/// goes to the backend.
pub(crate) const BATCH: usize = 128;

struct Batch {
    bytes: Zeroizing<[u8; BATCH]>,
    /// Bytes before this were handed out (and wiped).
    taken: usize,
}

thread_local! {
    static CURRENT: RefCell<Option<Batch>> = const { RefCell::new(None) };
}

/// Fill `buf` with fresh random bytes.
pub(crate) fn fill(buf: &mut [u8]) -> Result<()> {
    let served = CURRENT.with(|cell| {
        let mut cell = cell.borrow_mut();
        match cell.as_mut() {
            Some(batch) if BATCH - batch.taken >= buf.len() => {
                let end = batch.taken + buf.len();
                let src = &mut batch.bytes[batch.taken..end];
                buf.copy_from_slice(src);
                src.zeroize();
                batch.taken = end;
                true
            }
            _ => false,
        }
    });
    if served {
        Ok(())
    } else {
        super::backend::fill_random(buf)
    }
}

/// Run `f` with one draw serving the random values it asks for on this
/// thread (see the module documentation). Nested calls share the outer draw.
pub(crate) fn batch<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    if CURRENT.with(|cell| cell.borrow().is_some()) {
        return f();
    }
    let mut bytes = Zeroizing::new([0u8; BATCH]);
    super::backend::fill_random(&mut bytes[..])?;
    CURRENT.with(|cell| *cell.borrow_mut() = Some(Batch { bytes, taken: 0 }));
    // Wiped (dropped) on return and on unwinding alike.
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            let _ = CURRENT.try_with(|cell| cell.borrow_mut().take());
        }
    }
    let _clear = Clear;
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_hands_out_each_byte_once_and_leaves_nothing_behind() {
        let (a, b, big) = batch(|| {
            let mut a = [0u8; 32];
            let mut b = [0u8; 32];
            fill(&mut a)?;
            fill(&mut b)?;
            // Larger than what is left: served by the backend.
            let mut big = [0u8; BATCH];
            fill(&mut big)?;
            // The inner call shares the outer draw.
            batch(|| Ok(()))?;
            Ok((a, b, big))
        })
        .unwrap();
        assert_ne!(a, b);
        assert_ne!(a, [0; 32]);
        assert_ne!(&big[..32], &a[..]);
        assert!(CURRENT.with(|cell| cell.borrow().is_none()));
        // Outside a batch, values come straight from the backend.
        let mut c = [0u8; 32];
        fill(&mut c).unwrap();
        assert_ne!(c, a);
        assert_ne!(c, b);
    }

    #[test]
    fn the_draw_is_wiped_when_the_closure_fails() {
        let r: Result<()> = batch(|| Err(crate::Error::crypto("stop")));
        assert!(r.is_err());
        assert!(CURRENT.with(|cell| cell.borrow().is_none()));
    }
}
