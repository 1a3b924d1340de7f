//! The function list handed to applications: one `extern "C"` function per
//! PKCS#11 2.40 function, each counting the call against the rules, applying
//! what they ask for (latency, logout, a return code) and otherwise
//! forwarding to the real module, through a vendor behaviour handler for
//! the few functions that have one.

use std::os::raw::c_void;

use cryptoki_sys::*;

use crate::rules::Plan;
use crate::{ops, real, state, vendor};

/// Applies a call's plan: sleeps, logs the session out, and returns the
/// code to fail with, if any, with whether the session was closed for it.
///
/// A failure with `CKR_SESSION_HANDLE_INVALID` or `CKR_SESSION_CLOSED`
/// closes the real session too, so that the handle stays dead as it would
/// on a token that lost it.
///
/// # Safety
/// `session` must come from the call being made (the application's own
/// session handle argument).
unsafe fn apply(real: &CK_FUNCTION_LIST, plan: Plan, session: Option<CK_SESSION_HANDLE>) -> Option<(CK_RV, bool)> {
    if !plan.latency.is_zero() {
        std::thread::sleep(plan.latency);
    }
    if plan.logout {
        if let (Some(session), Some(logout)) = (session, real.C_Logout) {
            // SAFETY: the real module's C_Logout with a handle it gave out;
            // its result (e.g. already logged out) does not matter here.
            unsafe { logout(session) };
        }
    }
    let rv = plan.fail?;
    if let (Some(session), Some(close)) = (session, real.C_CloseSession) {
        if rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED {
            vendor::forget_iv(session);
            // SAFETY: as for C_Logout above.
            unsafe { close(session) };
            return Some((rv, true));
        }
    }
    Some((rv, false))
}

macro_rules! functions {
    ($( $name:ident [$kind:ident $(, $how:ident $ender:ident)?] ( $($arg:ident : $ty:ty),* ) $(=> $handler:path)? ; )*) => {
        $(
            #[allow(non_snake_case)]
            unsafe extern "C" fn $name($($arg: $ty),*) -> CK_RV {
                let Some(real) = real::functions() else { return CKR_GENERAL_ERROR };
                let (plan, vendor) = state::plan(stringify!($name));
                // SAFETY: the session handle is this call's own argument.
                if let Some((rv, closed)) = unsafe { apply(real, plan, functions!(@session $kind $($arg),*)) } {
                    if !closed {
                        functions!(@maybe_end real ($($arg),*) $([$how $ender])?);
                    }
                    return rv;
                }
                let _ = vendor;
                functions!(@call real vendor $name ($($arg),*) $($handler)?)
            }
        )*

        /// The function list given to applications.
        pub(crate) static LIST: CK_FUNCTION_LIST = CK_FUNCTION_LIST {
            version: CK_VERSION { major: 2, minor: 40 },
            C_GetFunctionList: Some(crate::C_GetFunctionList),
            $( $name: Some($name), )*
        };
    };
    (@session session $first:ident $(, $rest:ident)*) => { Some($first) };
    (@session global $($arg:ident),*) => { None };
    (@maybe_end $real:ident ($($arg:ident),*)) => { () };
    (@maybe_end $real:ident ($($arg:ident),*) [$how:ident $ender:ident]) => {
        // SAFETY: the application's arguments, as it passed them to the
        // function whose operation is being ended.
        unsafe { functions!(@end $how $ender $real ($($arg),*)) }
    };
    (@end all $ender:ident $real:ident ($($arg:ident),*)) => { ops::$ender($real, $($arg),*) };
    (@end session $ender:ident $real:ident ($first:ident $(, $rest:ident)*)) => { ops::$ender($real, $first) };
    (@call $real:ident $vendor:ident $name:ident ($($arg:ident),*)) => {
        match $real.$name {
            // SAFETY: the application's arguments, passed on unchanged to
            // the same function of the real module.
            Some(f) => unsafe { f($($arg),*) },
            None => CKR_FUNCTION_NOT_SUPPORTED,
        }
    };
    (@call $real:ident $vendor:ident $name:ident ($($arg:ident),*) $handler:path) => {
        // SAFETY: the handler receives the application's arguments unchanged
        // and has the same contract as the function it stands for.
        unsafe { $handler($real, $vendor, $($arg),*) }
    };
}

functions! {
    C_Initialize[global](init_args: *mut c_void);
    C_Finalize[global](reserved: *mut c_void) => vendor::finalize;
    C_GetInfo[global](info: *mut CK_INFO);
    C_GetSlotList[global](token_present: CK_BBOOL, slots: *mut CK_SLOT_ID, count: *mut CK_ULONG);
    C_GetSlotInfo[global](slot: CK_SLOT_ID, info: *mut CK_SLOT_INFO);
    C_GetTokenInfo[global](slot: CK_SLOT_ID, info: *mut CK_TOKEN_INFO);
    C_GetMechanismList[global](slot: CK_SLOT_ID, list: *mut CK_MECHANISM_TYPE, count: *mut CK_ULONG)
        => vendor::get_mechanism_list;
    C_GetMechanismInfo[global](slot: CK_SLOT_ID, mechanism: CK_MECHANISM_TYPE, info: *mut CK_MECHANISM_INFO)
        => vendor::get_mechanism_info;
    C_InitToken[global](slot: CK_SLOT_ID, pin: *mut CK_UTF8CHAR, pin_len: CK_ULONG, label: *mut CK_UTF8CHAR);
    C_InitPIN[session](session: CK_SESSION_HANDLE, pin: *mut CK_UTF8CHAR, pin_len: CK_ULONG);
    C_SetPIN[session](
        session: CK_SESSION_HANDLE,
        old_pin: *mut CK_UTF8CHAR,
        old_len: CK_ULONG,
        new_pin: *mut CK_UTF8CHAR,
        new_len: CK_ULONG
    );
    C_OpenSession[global](
        slot: CK_SLOT_ID,
        flags: CK_FLAGS,
        application: *mut c_void,
        notify: CK_NOTIFY,
        session: *mut CK_SESSION_HANDLE
    );
    C_CloseSession[session](session: CK_SESSION_HANDLE) => vendor::close_session;
    C_CloseAllSessions[global](slot: CK_SLOT_ID) => vendor::close_all_sessions;
    C_GetSessionInfo[session](session: CK_SESSION_HANDLE, info: *mut CK_SESSION_INFO);
    C_GetOperationState[session](session: CK_SESSION_HANDLE, state: *mut CK_BYTE, state_len: *mut CK_ULONG);
    C_SetOperationState[session](
        session: CK_SESSION_HANDLE,
        state: *mut CK_BYTE,
        state_len: CK_ULONG,
        encryption_key: CK_OBJECT_HANDLE,
        authentication_key: CK_OBJECT_HANDLE
    );
    C_Login[session](session: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: *mut CK_UTF8CHAR, pin_len: CK_ULONG);
    C_Logout[session](session: CK_SESSION_HANDLE);
    C_CreateObject[session](
        session: CK_SESSION_HANDLE,
        template: *mut CK_ATTRIBUTE,
        count: CK_ULONG,
        object: *mut CK_OBJECT_HANDLE
    );
    C_CopyObject[session](
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: *mut CK_ATTRIBUTE,
        count: CK_ULONG,
        new_object: *mut CK_OBJECT_HANDLE
    );
    C_DestroyObject[session](session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE);
    C_GetObjectSize[session](session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE, size: *mut CK_ULONG);
    C_GetAttributeValue[session](
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: *mut CK_ATTRIBUTE,
        count: CK_ULONG
    );
    C_SetAttributeValue[session](
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        template: *mut CK_ATTRIBUTE,
        count: CK_ULONG
    );
    C_FindObjectsInit[session](session: CK_SESSION_HANDLE, template: *mut CK_ATTRIBUTE, count: CK_ULONG);
    C_FindObjects[session](
        session: CK_SESSION_HANDLE,
        objects: *mut CK_OBJECT_HANDLE,
        max: CK_ULONG,
        count: *mut CK_ULONG
    );
    C_FindObjectsFinal[session](session: CK_SESSION_HANDLE);
    C_EncryptInit[session](session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE)
        => vendor::encrypt_init;
    C_Encrypt[session, all encrypt](
        session: CK_SESSION_HANDLE,
        data: *mut CK_BYTE,
        data_len: CK_ULONG,
        out: *mut CK_BYTE,
        out_len: *mut CK_ULONG
    ) => vendor::encrypt;
    C_EncryptUpdate[session, session encrypt_final](
        session: CK_SESSION_HANDLE,
        data: *mut CK_BYTE,
        data_len: CK_ULONG,
        out: *mut CK_BYTE,
        out_len: *mut CK_ULONG
    );
    C_EncryptFinal[session, session encrypt_final](session: CK_SESSION_HANDLE, out: *mut CK_BYTE, out_len: *mut CK_ULONG)
        => vendor::encrypt_final;
    C_DecryptInit[session](session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE)
        => vendor::decrypt_init;
    C_Decrypt[session, all decrypt](
        session: CK_SESSION_HANDLE,
        data: *mut CK_BYTE,
        data_len: CK_ULONG,
        out: *mut CK_BYTE,
        out_len: *mut CK_ULONG
    );
    C_DecryptUpdate[session, session decrypt_final](
        session: CK_SESSION_HANDLE,
        data: *mut CK_BYTE,
        data_len: CK_ULONG,
        out: *mut CK_BYTE,
        out_len: *mut CK_ULONG
    );
    C_DecryptFinal[session, session decrypt_final](session: CK_SESSION_HANDLE, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_DigestInit[session](session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM);
    C_Digest[session, all digest](
        session: CK_SESSION_HANDLE,
        data: *mut CK_BYTE,
        data_len: CK_ULONG,
        out: *mut CK_BYTE,
        out_len: *mut CK_ULONG
    );
    C_DigestUpdate[session, session digest_final](session: CK_SESSION_HANDLE, data: *mut CK_BYTE, data_len: CK_ULONG);
    C_DigestKey[session, session digest_final](session: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE);
    C_DigestFinal[session, session digest_final](session: CK_SESSION_HANDLE, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_SignInit[session](session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE);
    C_Sign[session, all sign](
        session: CK_SESSION_HANDLE,
        data: *mut CK_BYTE,
        data_len: CK_ULONG,
        signature: *mut CK_BYTE,
        signature_len: *mut CK_ULONG
    );
    C_SignUpdate[session, session sign_final](session: CK_SESSION_HANDLE, data: *mut CK_BYTE, data_len: CK_ULONG);
    C_SignFinal[session, session sign_final](session: CK_SESSION_HANDLE, signature: *mut CK_BYTE, signature_len: *mut CK_ULONG);
    C_SignRecoverInit[session](session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE);
    C_SignRecover[session, all sign_recover](
        session: CK_SESSION_HANDLE,
        data: *mut CK_BYTE,
        data_len: CK_ULONG,
        signature: *mut CK_BYTE,
        signature_len: *mut CK_ULONG
    );
    C_VerifyInit[session](session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE);
    C_Verify[session, all verify](
        session: CK_SESSION_HANDLE,
        data: *mut CK_BYTE,
        data_len: CK_ULONG,
        signature: *mut CK_BYTE,
        signature_len: CK_ULONG
    );
    C_VerifyUpdate[session, session verify_final](session: CK_SESSION_HANDLE, data: *mut CK_BYTE, data_len: CK_ULONG);
    C_VerifyFinal[session, session verify_final](session: CK_SESSION_HANDLE, signature: *mut CK_BYTE, signature_len: CK_ULONG);
    C_VerifyRecoverInit[session](session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE);
    C_VerifyRecover[session, all verify_recover](
        session: CK_SESSION_HANDLE,
        signature: *mut CK_BYTE,
        signature_len: CK_ULONG,
        data: *mut CK_BYTE,
        data_len: *mut CK_ULONG
    );
    C_DigestEncryptUpdate[session](
        session: CK_SESSION_HANDLE,
        data: *mut CK_BYTE,
        data_len: CK_ULONG,
        out: *mut CK_BYTE,
        out_len: *mut CK_ULONG
    );
    C_DecryptDigestUpdate[session](
        session: CK_SESSION_HANDLE,
        data: *mut CK_BYTE,
        data_len: CK_ULONG,
        out: *mut CK_BYTE,
        out_len: *mut CK_ULONG
    );
    C_SignEncryptUpdate[session](
        session: CK_SESSION_HANDLE,
        data: *mut CK_BYTE,
        data_len: CK_ULONG,
        out: *mut CK_BYTE,
        out_len: *mut CK_ULONG
    );
    C_DecryptVerifyUpdate[session](
        session: CK_SESSION_HANDLE,
        data: *mut CK_BYTE,
        data_len: CK_ULONG,
        out: *mut CK_BYTE,
        out_len: *mut CK_ULONG
    );
    C_GenerateKey[session](
        session: CK_SESSION_HANDLE,
        mechanism: *mut CK_MECHANISM,
        template: *mut CK_ATTRIBUTE,
        count: CK_ULONG,
        key: *mut CK_OBJECT_HANDLE
    );
    C_GenerateKeyPair[session](
        session: CK_SESSION_HANDLE,
        mechanism: *mut CK_MECHANISM,
        public_template: *mut CK_ATTRIBUTE,
        public_count: CK_ULONG,
        private_template: *mut CK_ATTRIBUTE,
        private_count: CK_ULONG,
        public_key: *mut CK_OBJECT_HANDLE,
        private_key: *mut CK_OBJECT_HANDLE
    );
    C_WrapKey[session](
        session: CK_SESSION_HANDLE,
        mechanism: *mut CK_MECHANISM,
        wrapping_key: CK_OBJECT_HANDLE,
        key: CK_OBJECT_HANDLE,
        wrapped: *mut CK_BYTE,
        wrapped_len: *mut CK_ULONG
    ) => vendor::wrap_key;
    C_UnwrapKey[session](
        session: CK_SESSION_HANDLE,
        mechanism: *mut CK_MECHANISM,
        unwrapping_key: CK_OBJECT_HANDLE,
        wrapped: *mut CK_BYTE,
        wrapped_len: CK_ULONG,
        template: *mut CK_ATTRIBUTE,
        count: CK_ULONG,
        key: *mut CK_OBJECT_HANDLE
    ) => vendor::unwrap_key;
    C_DeriveKey[session](
        session: CK_SESSION_HANDLE,
        mechanism: *mut CK_MECHANISM,
        base_key: CK_OBJECT_HANDLE,
        template: *mut CK_ATTRIBUTE,
        count: CK_ULONG,
        key: *mut CK_OBJECT_HANDLE
    );
    C_SeedRandom[session](session: CK_SESSION_HANDLE, seed: *mut CK_BYTE, seed_len: CK_ULONG);
    C_GenerateRandom[session](session: CK_SESSION_HANDLE, out: *mut CK_BYTE, out_len: CK_ULONG);
    C_GetFunctionStatus[session](session: CK_SESSION_HANDLE);
    C_CancelFunction[session](session: CK_SESSION_HANDLE);
    C_WaitForSlotEvent[global](flags: CK_FLAGS, slot: *mut CK_SLOT_ID, reserved: *mut c_void);
}
