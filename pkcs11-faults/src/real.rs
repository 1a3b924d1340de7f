//! The real module every call is forwarded to: loaded once per process with
//! `libloading` from `PKCS11_FAULTS_MODULE` (default SoftHSM) and never
//! unloaded.

use std::sync::OnceLock;

use cryptoki_sys::{CKR_OK, CK_FUNCTION_LIST, CK_FUNCTION_LIST_PTR_PTR, CK_RV};
use libloading::Library;

/// Environment variable naming the real module.
pub const MODULE_VAR: &str = "PKCS11_FAULTS_MODULE";
/// The real module when `PKCS11_FAULTS_MODULE` is not set.
pub const DEFAULT_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

struct Real {
    // Kept so the module stays loaded for the life of the process.
    _library: Library,
    list: *const CK_FUNCTION_LIST,
}

// SAFETY: `list` points into the loaded module's own data, which lives as
// long as `_library` (the whole process, as `Real` sits in a static) and is
// only read. PKCS#11 modules initialized with `CKF_OS_LOCKING_OK` (what
// cryptoki asks for) are callable from any thread.
unsafe impl Send for Real {}
// SAFETY: as above; nothing is ever written through `list`.
unsafe impl Sync for Real {}

static REAL: OnceLock<Result<Real, String>> = OnceLock::new();

fn load() -> Result<Real, String> {
    let path = std::env::var(MODULE_VAR).ok().filter(|p| !p.is_empty()).unwrap_or_else(|| DEFAULT_MODULE.to_string());
    // SAFETY: loading a PKCS#11 module runs its initializers; that is what
    // every PKCS#11 application does with the module it is given.
    let library = unsafe { Library::new(&path) }.map_err(|e| format!("{MODULE_VAR}={path}: {e}"))?;
    let mut list: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
    // SAFETY: `C_GetFunctionList` has this signature in every PKCS#11
    // module; the symbol is only used while `library` is alive (below).
    let rv = unsafe {
        let get: libloading::Symbol<unsafe extern "C" fn(CK_FUNCTION_LIST_PTR_PTR) -> CK_RV> =
            library.get(b"C_GetFunctionList\0").map_err(|e| format!("{path}: {e}"))?;
        get(&mut list)
    };
    if rv != CKR_OK || list.is_null() {
        return Err(format!("{path}: C_GetFunctionList returned {}", crate::rv::name(rv)));
    }
    Ok(Real { _library: library, list })
}

/// Loads the real module, once per process; the error says why it could not be.
pub fn init() -> Result<(), String> {
    REAL.get_or_init(load).as_ref().map(|_| ()).map_err(Clone::clone)
}

/// The real module's function list, `None` if it could not be loaded.
pub fn functions() -> Option<&'static CK_FUNCTION_LIST> {
    match REAL.get_or_init(load) {
        // SAFETY: checked non-null in `load`, valid for the life of the
        // process (see `Real`), never written.
        Ok(real) => Some(unsafe { &*real.list }),
        Err(_) => None,
    }
}
