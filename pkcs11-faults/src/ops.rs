//! Ending the real module's operation when a call inside it is made to fail.
//!
//! PKCS#11 says an error (other than `CKR_BUFFER_TOO_SMALL`) from
//! `C_Encrypt`, `C_EncryptUpdate`, `C_EncryptFinal` and their kin ends the
//! operation, so the session can start another one. When such a call fails
//! by a rule, the real module never saw it and still has the operation
//! open; these functions end it by finishing it into a scratch buffer (the
//! same single-part call again, or the operation's final call), results
//! discarded. Init functions need nothing: the failure stops them before
//! the real module starts anything.
//!
//! Each function has the contract of the PKCS#11 function it follows: the
//! arguments are the application's, as it passed them to that function.

use cryptoki_sys::*;

use crate::vendor;

type SinglePart = unsafe extern "C" fn(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG) -> CK_RV;
type Final = unsafe extern "C" fn(CK_SESSION_HANDLE, *mut CK_BYTE, *mut CK_ULONG) -> CK_RV;

/// Runs a single-part function again into a scratch buffer.
///
/// # Safety
/// `data`/`len` as the application passed them to `f`.
unsafe fn redo(f: Option<SinglePart>, session: CK_SESSION_HANDLE, data: *mut CK_BYTE, len: CK_ULONG) {
    let Some(f) = f else { return };
    let mut n: CK_ULONG = 0;
    // SAFETY: the application's input; a size query into a local.
    if unsafe { f(session, data, len, std::ptr::null_mut(), &mut n) } == CKR_OK {
        let mut scratch = vec![0u8; n as usize];
        // SAFETY: `scratch` holds the `n` bytes the module asked for.
        unsafe { f(session, data, len, scratch.as_mut_ptr(), &mut n) };
    }
}

/// Finishes a multi-part operation into a scratch buffer.
unsafe fn finish(f: Option<Final>, session: CK_SESSION_HANDLE) {
    let Some(f) = f else { return };
    let mut n: CK_ULONG = 0;
    // SAFETY: a size query into a local.
    if unsafe { f(session, std::ptr::null_mut(), &mut n) } == CKR_OK {
        let mut scratch = vec![0u8; n as usize];
        // SAFETY: `scratch` holds the `n` bytes the module asked for.
        unsafe { f(session, scratch.as_mut_ptr(), &mut n) };
    }
}

/// After `C_Encrypt`.
///
/// # Safety
/// See the module documentation.
pub unsafe fn encrypt(
    real: &CK_FUNCTION_LIST,
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
    _out: *mut CK_BYTE,
    _out_len: *mut CK_ULONG,
) {
    vendor::forget_iv(session);
    // SAFETY: the application's input.
    unsafe { redo(real.C_Encrypt, session, data, len) }
}

/// After `C_EncryptUpdate` or `C_EncryptFinal`.
///
/// # Safety
/// See the module documentation.
pub unsafe fn encrypt_final(real: &CK_FUNCTION_LIST, session: CK_SESSION_HANDLE) {
    vendor::forget_iv(session);
    // SAFETY: no application pointer is used.
    unsafe { finish(real.C_EncryptFinal, session) }
}

/// After `C_Decrypt`.
///
/// # Safety
/// See the module documentation.
pub unsafe fn decrypt(
    real: &CK_FUNCTION_LIST,
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
    _out: *mut CK_BYTE,
    _out_len: *mut CK_ULONG,
) {
    // SAFETY: the application's input.
    unsafe { redo(real.C_Decrypt, session, data, len) }
}

/// After `C_DecryptUpdate` or `C_DecryptFinal`.
///
/// # Safety
/// See the module documentation.
pub unsafe fn decrypt_final(real: &CK_FUNCTION_LIST, session: CK_SESSION_HANDLE) {
    // SAFETY: no application pointer is used.
    unsafe { finish(real.C_DecryptFinal, session) }
}

/// After `C_Digest`.
///
/// # Safety
/// See the module documentation.
pub unsafe fn digest(
    real: &CK_FUNCTION_LIST,
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
    _out: *mut CK_BYTE,
    _out_len: *mut CK_ULONG,
) {
    // SAFETY: the application's input.
    unsafe { redo(real.C_Digest, session, data, len) }
}

/// After `C_DigestUpdate`, `C_DigestKey` or `C_DigestFinal`.
///
/// # Safety
/// See the module documentation.
pub unsafe fn digest_final(real: &CK_FUNCTION_LIST, session: CK_SESSION_HANDLE) {
    // SAFETY: no application pointer is used.
    unsafe { finish(real.C_DigestFinal, session) }
}

/// After `C_Sign`.
///
/// # Safety
/// See the module documentation.
pub unsafe fn sign(
    real: &CK_FUNCTION_LIST,
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
    _out: *mut CK_BYTE,
    _out_len: *mut CK_ULONG,
) {
    // SAFETY: the application's input.
    unsafe { redo(real.C_Sign, session, data, len) }
}

/// After `C_SignUpdate` or `C_SignFinal`.
///
/// # Safety
/// See the module documentation.
pub unsafe fn sign_final(real: &CK_FUNCTION_LIST, session: CK_SESSION_HANDLE) {
    // SAFETY: no application pointer is used.
    unsafe { finish(real.C_SignFinal, session) }
}

/// After `C_SignRecover`.
///
/// # Safety
/// See the module documentation.
pub unsafe fn sign_recover(
    real: &CK_FUNCTION_LIST,
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
    _out: *mut CK_BYTE,
    _out_len: *mut CK_ULONG,
) {
    // SAFETY: the application's input.
    unsafe { redo(real.C_SignRecover, session, data, len) }
}

/// After `C_VerifyRecover`.
///
/// # Safety
/// See the module documentation.
pub unsafe fn verify_recover(
    real: &CK_FUNCTION_LIST,
    session: CK_SESSION_HANDLE,
    signature: *mut CK_BYTE,
    len: CK_ULONG,
    _out: *mut CK_BYTE,
    _out_len: *mut CK_ULONG,
) {
    // SAFETY: the application's input.
    unsafe { redo(real.C_VerifyRecover, session, signature, len) }
}

/// After `C_Verify`: the same verification again, result discarded.
///
/// # Safety
/// See the module documentation.
pub unsafe fn verify(
    real: &CK_FUNCTION_LIST,
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
    signature: *mut CK_BYTE,
    signature_len: CK_ULONG,
) {
    if let Some(f) = real.C_Verify {
        // SAFETY: the application's arguments, unchanged.
        unsafe { f(session, data, len, signature, signature_len) };
    }
}

/// After `C_VerifyUpdate` or `C_VerifyFinal`: a final call with a one-byte
/// signature, which ends the operation as invalid.
///
/// # Safety
/// See the module documentation.
pub unsafe fn verify_final(real: &CK_FUNCTION_LIST, session: CK_SESSION_HANDLE) {
    if let Some(f) = real.C_VerifyFinal {
        let mut signature = [0u8; 1];
        // SAFETY: a local one-byte buffer.
        unsafe { f(session, signature.as_mut_ptr(), 1) };
    }
}
