#![doc = include_str!("../README.md")]
#![deny(unsafe_op_in_unsafe_fn)]

mod ops;
pub mod real;
pub mod rules;
pub mod rv;
mod shim;
pub mod state;
mod vendor;

use cryptoki_sys::{CKR_ARGUMENTS_BAD, CKR_GENERAL_ERROR, CKR_OK, CK_FUNCTION_LIST, CK_RV};

/// The module's entry point: loads the real module and the configuration
/// (once per process) and hands out the forwarding function list.
///
/// Returns `CKR_GENERAL_ERROR`, after a message on standard error, when the
/// real module cannot be loaded or the configuration does not parse.
///
/// # Safety
/// `list` must be null (answered with `CKR_ARGUMENTS_BAD`) or valid for
/// writing one pointer, as PKCS#11 requires.
#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(list: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    if list.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    if let Err(e) = real::init().and_then(|()| state::init()) {
        eprintln!("pkcs11-faults: {e}");
        return CKR_GENERAL_ERROR;
    }
    // SAFETY: non-null and writable per the function's contract. The list is
    // a static that nobody writes through the pointer (PKCS#11 callers only
    // read it), the `*mut` being what the C signature asks for.
    unsafe { *list = &shim::LIST as *const CK_FUNCTION_LIST as *mut CK_FUNCTION_LIST };
    CKR_OK
}
