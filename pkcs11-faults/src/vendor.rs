//! Vendor behaviours that SoftHSM does not have, for the functions they touch.
//!
//! * `gcm-iv-after-tag`: `C_EncryptInit` with `CKM_AES_GCM` ignores the IV
//!   in the caller's `CK_GCM_PARAMS` (keeping its length) and uses one drawn
//!   from the token (`C_GenerateRandom`); the encryption's output (single
//!   part `C_Encrypt`, or `C_EncryptFinal`) is followed by that IV:
//!   ciphertext || tag || IV. Decryption is unchanged: the caller passes the
//!   IV in the parameters and ciphertext || tag as data.
//! * `gcm-iv-generated`: `C_EncryptInit` with `CKM_AES_GCM` draws the IV
//!   from the token (`C_GenerateRandom`), writes it into the caller's IV
//!   buffer (`pIv`, `ulIvLen` bytes) and encrypts with it, as AWS CloudHSM
//!   does; the output is ciphertext || tag as usual.
//! * `no-gcm`: `C_GetMechanismList` leaves `CKM_AES_GCM` out,
//!   `C_GetMechanismInfo` and every init function taking a mechanism here
//!   (`C_EncryptInit`, `C_DecryptInit`, `C_WrapKey`, `C_UnwrapKey`) answer
//!   `CKR_MECHANISM_INVALID` for it.
//!
//! Every handler has the contract of the PKCS#11 function it stands for:
//! the pointers are the application's, valid as PKCS#11 requires.

use std::collections::HashMap;
use std::os::raw::c_void;
use std::sync::{LazyLock, Mutex};

use cryptoki_sys::*;

use crate::rules::Vendor;

/// The IV drawn for each session's pending GCM encryption.
static PENDING_IV: LazyLock<Mutex<HashMap<CK_SESSION_HANDLE, Vec<u8>>>> = LazyLock::new(Default::default);

fn pending() -> std::sync::MutexGuard<'static, HashMap<CK_SESSION_HANDLE, Vec<u8>>> {
    PENDING_IV.lock().unwrap_or_else(|e| e.into_inner())
}

/// Forgets the IV drawn for `session`, if any (its encryption ended).
pub fn forget_iv(session: CK_SESSION_HANDLE) {
    pending().remove(&session);
}

/// True when `mechanism` is AES-GCM and the token is to pretend it has none.
///
/// # Safety
/// `mechanism` is null or points to a `CK_MECHANISM`.
unsafe fn refused(vendor: Vendor, mechanism: *const CK_MECHANISM) -> bool {
    // SAFETY: null or valid, as the caller promises.
    vendor.no_gcm && !mechanism.is_null() && unsafe { (*mechanism).mechanism } == CKM_AES_GCM
}

/// `C_GetMechanismList`, without `CKM_AES_GCM` under `no-gcm`.
///
/// # Safety
/// The contract of `C_GetMechanismList`.
pub unsafe fn get_mechanism_list(
    real: &CK_FUNCTION_LIST,
    vendor: Vendor,
    slot: CK_SLOT_ID,
    list: *mut CK_MECHANISM_TYPE,
    count: *mut CK_ULONG,
) -> CK_RV {
    let Some(get) = real.C_GetMechanismList else { return CKR_FUNCTION_NOT_SUPPORTED };
    if !vendor.no_gcm {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { get(slot, list, count) };
    }
    if count.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    // Read the whole list, then answer from the filtered one.
    let mut n: CK_ULONG = 0;
    // SAFETY: a size query into a local.
    let rv = unsafe { get(slot, std::ptr::null_mut(), &mut n) };
    if rv != CKR_OK {
        return rv;
    }
    let mut all: Vec<CK_MECHANISM_TYPE> = vec![0; n as usize];
    // SAFETY: `all` has room for `n` entries.
    let rv = unsafe { get(slot, all.as_mut_ptr(), &mut n) };
    if rv != CKR_OK {
        return rv;
    }
    all.truncate(n as usize);
    all.retain(|m| *m != CKM_AES_GCM);
    let len = all.len() as CK_ULONG;
    // SAFETY: `count` is non-null and the caller's; `list`, when non-null,
    // has room for the `*count` entries the caller says.
    unsafe {
        if !list.is_null() {
            if *count < len {
                *count = len;
                return CKR_BUFFER_TOO_SMALL;
            }
            std::ptr::copy_nonoverlapping(all.as_ptr(), list, all.len());
        }
        *count = len;
    }
    CKR_OK
}

/// `C_GetMechanismInfo`, refusing `CKM_AES_GCM` under `no-gcm`.
///
/// # Safety
/// The contract of `C_GetMechanismInfo`.
pub unsafe fn get_mechanism_info(
    real: &CK_FUNCTION_LIST,
    vendor: Vendor,
    slot: CK_SLOT_ID,
    mechanism: CK_MECHANISM_TYPE,
    info: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    if vendor.no_gcm && mechanism == CKM_AES_GCM {
        return CKR_MECHANISM_INVALID;
    }
    match real.C_GetMechanismInfo {
        // SAFETY: the caller's arguments, unchanged.
        Some(f) => unsafe { f(slot, mechanism, info) },
        None => CKR_FUNCTION_NOT_SUPPORTED,
    }
}

/// `C_EncryptInit`: refuses GCM under `no-gcm`; under `gcm-iv-after-tag`
/// draws the IV and remembers it for the session.
///
/// # Safety
/// The contract of `C_EncryptInit`.
pub unsafe fn encrypt_init(
    real: &CK_FUNCTION_LIST,
    vendor: Vendor,
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    let Some(init) = real.C_EncryptInit else { return CKR_FUNCTION_NOT_SUPPORTED };
    forget_iv(session);
    // SAFETY: the caller's mechanism pointer.
    if unsafe { refused(vendor, mechanism) } {
        return CKR_MECHANISM_INVALID;
    }
    // SAFETY: the caller's mechanism pointer.
    if vendor.gcm_iv_generated && unsafe { is_gcm(mechanism) } {
        // SAFETY: the caller's GCM mechanism.
        let rv = unsafe { generate_iv_into_parameter(real, session, mechanism) };
        if rv != CKR_OK {
            return rv;
        }
    }
    // SAFETY: checked non-null; the caller's mechanism.
    if !vendor.gcm_iv_after_tag || mechanism.is_null() || unsafe { (*mechanism).mechanism } != CKM_AES_GCM {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { init(session, mechanism, key) };
    }
    // SAFETY: non-null, the caller's mechanism.
    let given = unsafe { std::ptr::read(mechanism) };
    if given.pParameter.is_null() || given.ulParameterLen as usize != std::mem::size_of::<CK_GCM_PARAMS>() {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    // SAFETY: a non-null parameter of the size of CK_GCM_PARAMS, which is
    // what CKM_AES_GCM takes.
    let mut params = unsafe { std::ptr::read_unaligned(given.pParameter as *const CK_GCM_PARAMS) };
    if params.ulIvLen == 0 || params.ulIvLen > 256 {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    let mut iv = vec![0u8; params.ulIvLen as usize];
    let Some(random) = real.C_GenerateRandom else { return CKR_FUNCTION_NOT_SUPPORTED };
    // SAFETY: `iv` has room for `ulIvLen` bytes.
    let rv = unsafe { random(session, iv.as_mut_ptr(), params.ulIvLen) };
    if rv != CKR_OK {
        return rv;
    }
    params.pIv = iv.as_mut_ptr();
    let mut ours = CK_MECHANISM {
        mechanism: CKM_AES_GCM,
        pParameter: &mut params as *mut CK_GCM_PARAMS as *mut c_void,
        ulParameterLen: given.ulParameterLen,
    };
    // SAFETY: the caller's parameters with our IV; `params` and `iv` outlive
    // the call (the module copies what it keeps).
    let rv = unsafe { init(session, &mut ours, key) };
    if rv == CKR_OK {
        pending().insert(session, iv);
    }
    rv
}

/// True for a non-null `CKM_AES_GCM` mechanism.
///
/// # Safety
/// `mechanism` is null or the caller's valid mechanism.
unsafe fn is_gcm(mechanism: *const CK_MECHANISM) -> bool {
    // SAFETY: checked non-null; the caller's mechanism.
    !mechanism.is_null() && unsafe { (*mechanism).mechanism } == CKM_AES_GCM
}

/// Draws an IV from the token into the caller's `CK_GCM_PARAMS` IV buffer.
///
/// # Safety
/// `mechanism` is the caller's non-null `CKM_AES_GCM` mechanism.
unsafe fn generate_iv_into_parameter(
    real: &CK_FUNCTION_LIST,
    session: CK_SESSION_HANDLE,
    mechanism: *const CK_MECHANISM,
) -> CK_RV {
    // SAFETY: non-null, the caller's mechanism.
    let given = unsafe { std::ptr::read(mechanism) };
    if given.pParameter.is_null() || given.ulParameterLen as usize != std::mem::size_of::<CK_GCM_PARAMS>() {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    // SAFETY: a non-null parameter of the size of CK_GCM_PARAMS.
    let params = unsafe { std::ptr::read_unaligned(given.pParameter as *const CK_GCM_PARAMS) };
    if params.pIv.is_null() || params.ulIvLen == 0 || params.ulIvLen > 256 {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    let Some(random) = real.C_GenerateRandom else { return CKR_FUNCTION_NOT_SUPPORTED };
    // SAFETY: the caller's IV buffer of `ulIvLen` bytes, which a token that
    // generates IVs writes as PKCS#11 3.0 allows.
    unsafe { random(session, params.pIv, params.ulIvLen) }
}

/// Runs the final step of an encryption (`call` writes at most `*len` bytes
/// to `out`, or only sets `*len` when `out` is null) and, when the session
/// has a pending drawn IV, appends the IV to the output.
///
/// # Safety
/// `out` and `out_len` as the encryption function's output arguments.
unsafe fn with_iv_appended(
    session: CK_SESSION_HANDLE,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
    call: impl Fn(*mut CK_BYTE, *mut CK_ULONG) -> CK_RV,
) -> CK_RV {
    let iv = pending().get(&session).cloned();
    let Some(iv) = iv else { return call(out, out_len) };
    if out_len.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    let iv_len = iv.len() as CK_ULONG;
    // A size query does not end the operation.
    let mut need: CK_ULONG = 0;
    let rv = call(std::ptr::null_mut(), &mut need);
    if rv != CKR_OK {
        pending().remove(&session);
        return rv;
    }
    // SAFETY: `out_len` is non-null and the caller's.
    unsafe {
        if out.is_null() {
            *out_len = need + iv_len;
            return CKR_OK;
        }
        if *out_len < need + iv_len {
            *out_len = need + iv_len;
            return CKR_BUFFER_TOO_SMALL;
        }
    }
    let mut written = need;
    let rv = call(out, &mut written);
    if rv == CKR_BUFFER_TOO_SMALL {
        return rv;
    }
    pending().remove(&session);
    if rv != CKR_OK {
        return rv;
    }
    // SAFETY: the caller's buffer holds `*out_len >= need + iv_len` bytes
    // and `written <= need`.
    unsafe {
        std::ptr::copy_nonoverlapping(iv.as_ptr(), out.add(written as usize), iv.len());
        *out_len = written + iv_len;
    }
    CKR_OK
}

/// `C_Encrypt`, with the drawn IV appended under `gcm-iv-after-tag`.
///
/// # Safety
/// The contract of `C_Encrypt`.
pub unsafe fn encrypt(
    real: &CK_FUNCTION_LIST,
    _vendor: Vendor,
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    let Some(encrypt) = real.C_Encrypt else { return CKR_FUNCTION_NOT_SUPPORTED };
    // SAFETY: the caller's arguments; only the output length may be a local.
    unsafe { with_iv_appended(session, out, out_len, |o, l| encrypt(session, data, data_len, o, l)) }
}

/// `C_EncryptFinal`, with the drawn IV appended under `gcm-iv-after-tag`.
///
/// # Safety
/// The contract of `C_EncryptFinal`.
pub unsafe fn encrypt_final(
    real: &CK_FUNCTION_LIST,
    _vendor: Vendor,
    session: CK_SESSION_HANDLE,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    let Some(finish) = real.C_EncryptFinal else { return CKR_FUNCTION_NOT_SUPPORTED };
    // SAFETY: the caller's arguments; only the output length may be a local.
    unsafe { with_iv_appended(session, out, out_len, |o, l| finish(session, o, l)) }
}

/// `C_DecryptInit`, refusing GCM under `no-gcm`.
///
/// # Safety
/// The contract of `C_DecryptInit`.
pub unsafe fn decrypt_init(
    real: &CK_FUNCTION_LIST,
    vendor: Vendor,
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    // SAFETY: the caller's mechanism pointer.
    if unsafe { refused(vendor, mechanism) } {
        return CKR_MECHANISM_INVALID;
    }
    match real.C_DecryptInit {
        // SAFETY: the caller's arguments, unchanged.
        Some(f) => unsafe { f(session, mechanism, key) },
        None => CKR_FUNCTION_NOT_SUPPORTED,
    }
}

/// `C_WrapKey`, refusing GCM under `no-gcm`.
///
/// # Safety
/// The contract of `C_WrapKey`.
// The arguments are C_WrapKey's, after the real module and the switches.
#[allow(clippy::too_many_arguments)]
pub unsafe fn wrap_key(
    real: &CK_FUNCTION_LIST,
    vendor: Vendor,
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    wrapping_key: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
    wrapped: *mut CK_BYTE,
    wrapped_len: *mut CK_ULONG,
) -> CK_RV {
    // SAFETY: the caller's mechanism pointer.
    if unsafe { refused(vendor, mechanism) } {
        return CKR_MECHANISM_INVALID;
    }
    match real.C_WrapKey {
        // SAFETY: the caller's arguments, unchanged.
        Some(f) => unsafe { f(session, mechanism, wrapping_key, key, wrapped, wrapped_len) },
        None => CKR_FUNCTION_NOT_SUPPORTED,
    }
}

/// `C_UnwrapKey`, refusing GCM under `no-gcm`.
///
/// # Safety
/// The contract of `C_UnwrapKey`.
// The arguments are C_UnwrapKey's, after the real module and the switches.
#[allow(clippy::too_many_arguments)]
pub unsafe fn unwrap_key(
    real: &CK_FUNCTION_LIST,
    vendor: Vendor,
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    unwrapping_key: CK_OBJECT_HANDLE,
    wrapped: *mut CK_BYTE,
    wrapped_len: CK_ULONG,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    // SAFETY: the caller's mechanism pointer.
    if unsafe { refused(vendor, mechanism) } {
        return CKR_MECHANISM_INVALID;
    }
    match real.C_UnwrapKey {
        // SAFETY: the caller's arguments, unchanged.
        Some(f) => unsafe { f(session, mechanism, unwrapping_key, wrapped, wrapped_len, template, count, key) },
        None => CKR_FUNCTION_NOT_SUPPORTED,
    }
}

/// `C_CloseSession`, forgetting the session's pending IV.
///
/// # Safety
/// The contract of `C_CloseSession`.
pub unsafe fn close_session(real: &CK_FUNCTION_LIST, _vendor: Vendor, session: CK_SESSION_HANDLE) -> CK_RV {
    pending().remove(&session);
    match real.C_CloseSession {
        // SAFETY: the caller's argument, unchanged.
        Some(f) => unsafe { f(session) },
        None => CKR_FUNCTION_NOT_SUPPORTED,
    }
}

/// `C_CloseAllSessions`, forgetting every pending IV (session handles do not name their slot).
///
/// # Safety
/// The contract of `C_CloseAllSessions`.
pub unsafe fn close_all_sessions(real: &CK_FUNCTION_LIST, _vendor: Vendor, slot: CK_SLOT_ID) -> CK_RV {
    pending().clear();
    match real.C_CloseAllSessions {
        // SAFETY: the caller's argument, unchanged.
        Some(f) => unsafe { f(slot) },
        None => CKR_FUNCTION_NOT_SUPPORTED,
    }
}

/// `C_Finalize`, forgetting every pending IV.
///
/// # Safety
/// The contract of `C_Finalize`.
pub unsafe fn finalize(real: &CK_FUNCTION_LIST, _vendor: Vendor, reserved: *mut c_void) -> CK_RV {
    pending().clear();
    match real.C_Finalize {
        // SAFETY: the caller's argument, unchanged.
        Some(f) => unsafe { f(reserved) },
        None => CKR_FUNCTION_NOT_SUPPORTED,
    }
}
