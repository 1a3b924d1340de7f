//! The Kryoptic PKCS#11 module, re-exported from `kryoptic-lib` as a shared
//! object (`libkryoptic_pkcs11.so`), the same three entry points as the
//! `kryoptic` crate's own `cdylib`.
//!
//! `#[no_mangle]` is what makes the symbols visible to `dlopen`; the
//! functions only forward to Kryoptic's implementations.
#![allow(unsafe_code)]

use kryoptic_lib::fns::general::{fn_get_function_list, fn_get_interface, fn_get_interface_list};
use kryoptic_lib::pkcs11::{
    CK_FLAGS, CK_FUNCTION_LIST_PTR_PTR, CK_INTERFACE_PTR, CK_INTERFACE_PTR_PTR, CK_RV, CK_ULONG_PTR, CK_UTF8CHAR_PTR,
    CK_VERSION_PTR,
};

/// `C_GetFunctionList`: Kryoptic's function list.
#[no_mangle]
pub extern "C" fn C_GetFunctionList(fnlist: CK_FUNCTION_LIST_PTR_PTR) -> CK_RV {
    fn_get_function_list(fnlist)
}

/// `C_GetInterface` (PKCS#11 3.0).
#[no_mangle]
pub extern "C" fn C_GetInterface(
    interface_name: CK_UTF8CHAR_PTR,
    version: CK_VERSION_PTR,
    interface: CK_INTERFACE_PTR_PTR,
    flags: CK_FLAGS,
) -> CK_RV {
    fn_get_interface(interface_name, version, interface, flags)
}

/// `C_GetInterfaceList` (PKCS#11 3.0).
#[no_mangle]
pub extern "C" fn C_GetInterfaceList(interfaces_list: CK_INTERFACE_PTR, count: CK_ULONG_PTR) -> CK_RV {
    fn_get_interface_list(interfaces_list, count)
}
