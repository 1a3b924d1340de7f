//! Loading PKCS#11 modules: once per path per process, initialized once.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use once_cell::sync::Lazy;

use super::recovery::with_backoff;
use super::{ErrCtx, Pin, Pkcs11Operation};
use crate::error::Result;

/// Environment variable naming the default module.
pub const MODULE_ENV: &str = "PKCS11_MODULE";

/// Module used when neither the URI nor [`MODULE_ENV`] names one.
const FALLBACK_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// The default module path: `$PKCS11_MODULE`, else SoftHSM's usual path.
pub fn default_module_path() -> PathBuf {
    match std::env::var_os(MODULE_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(FALLBACK_MODULE),
    }
}

static MODULES: Lazy<Mutex<HashMap<PathBuf, Arc<Loaded>>>> = Lazy::new(|| Mutex::new(HashMap::new()));

/// What the registry keeps per module path.
struct Loaded {
    ctx: Pkcs11,
    /// Written while creating or destroying token objects; read around every
    /// other token call when `fragile_store`. See [`Module::object_lock`].
    objects: RwLock<()>,
    /// The module's object store cannot take object changes concurrently
    /// with other calls (SoftHSM 2).
    fragile_store: bool,
    /// Per token (label and serial): a salted hash of the PIN this process
    /// logged in with through this crate. Held around `C_Login`.
    logins: Mutex<HashMap<(String, String), [u8; 32]>>,
    /// The process that last called `C_Initialize` (a forked child must
    /// call it again), and how many times that changed.
    pid: AtomicU32,
    epoch: AtomicU64,
    reinit: Mutex<()>,
}

impl Loaded {
    /// `C_Initialize` again (after `C_Finalize` if `finalize`) as process
    /// `pid`, in a new epoch: sessions opened before are not used again.
    /// Returns whether `C_Initialize` succeeded. Called with `reinit` held.
    fn initialize_again(&self, pid: u32, finalize: bool) -> bool {
        if finalize {
            let _ = self.ctx.clone().finalize();
        }
        let initialized = self.ctx.initialize(init_args()).is_ok();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.pid.store(pid, Ordering::Release);
        initialized
    }
}

fn init_args() -> CInitializeArgs {
    CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)
}

/// Proof that the caller holds [`Module::object_lock`]: token calls made
/// while holding it do not take the shared side again.
pub(crate) struct ObjectGuard<'a>(#[allow(dead_code)] RwLockWriteGuard<'a, ()>);

/// A loaded and initialized PKCS#11 module, shared by everything in the
/// process that names the same path. Cheap to clone.
///
/// The module is initialized with OS locking on first load (a module that
/// reports it is already initialized is accepted) and is never finalized:
/// other users in the process may still need it. A process forked from one
/// that loaded the module initializes it again on its first use (PKCS#11
/// requires it of a child), and every [`Token`](super::Token) then leaves
/// the sessions it had before the fork alone and opens new ones.
#[derive(Clone)]
pub struct Module {
    path: PathBuf,
    loaded: Arc<Loaded>,
}

impl fmt::Debug for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Module").field("path", &self.path).finish()
    }
}

/// What a slot with a token reports, for listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSummary {
    /// Slot id.
    pub slot_id: u64,
    /// Token label (trailing blanks removed).
    pub label: String,
    /// Manufacturer id.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Serial number.
    pub serial: String,
    /// True once the token was initialized.
    pub initialized: bool,
}

impl Module {
    /// Load (once per process) and initialize the module at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut modules = MODULES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(loaded) = modules.get(&path) {
            return Ok(Module { path, loaded: Arc::clone(loaded) });
        }
        let err = ErrCtx::default();
        let ctx = Pkcs11::new(&path).map_err(|e| match e {
            CkError::LibraryLoading(inner) => err.step(
                Pkcs11Operation::LoadModule,
                format!(
                    "cannot load the PKCS#11 module {}: {inner}; set module-path in the URI or {MODULE_ENV}",
                    path.display()
                ),
            ),
            other => err.ck(other),
        })?;
        match ctx.initialize(init_args()) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(err.ck(e)),
        }
        // SoftHSM 2's file object store (2.6.1 included) fails object
        // creation with CKR_GENERAL_ERROR when another thread of the process
        // uses the token at the same moment (SoftHSMv2 issue 573).
        let fragile_store = ctx.get_library_info().map(|i| i.manufacturer_id().contains("SoftHSM")).unwrap_or(false);
        let loaded = Arc::new(Loaded {
            ctx,
            objects: RwLock::new(()),
            fragile_store,
            logins: Mutex::new(HashMap::new()),
            pid: AtomicU32::new(std::process::id()),
            epoch: AtomicU64::new(0),
            reinit: Mutex::new(()),
        });
        modules.insert(path.clone(), Arc::clone(&loaded));
        Ok(Module { path, loaded })
    }

    /// Serializes changes to the set of token objects (generate, import,
    /// delete) within this process.
    ///
    /// Key management is rare, so this costs nothing that matters, and it
    /// makes "is this label free?" and "create it" one step for the threads
    /// of this process. On SoftHSM 2, whose file object store fails object
    /// creation with `CKR_GENERAL_ERROR` while another thread uses the
    /// token, every other token call also waits for it (see
    /// [`use_guard`](Module::use_guard)); on other modules cryptographic
    /// calls never take it.
    pub(crate) fn object_lock(&self) -> ObjectGuard<'_> {
        ObjectGuard(self.loaded.objects.write().unwrap_or_else(|e| e.into_inner()))
    }

    /// The shared side of [`object_lock`](Module::object_lock), held around
    /// a token call; `None` (no lock at all) unless the module's object store
    /// needs it.
    pub(crate) fn use_guard(&self) -> Option<RwLockReadGuard<'_, ()>> {
        self.loaded.fragile_store.then(|| self.loaded.objects.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Load the module named by `$PKCS11_MODULE` or the SoftHSM default.
    pub fn load_default() -> Result<Self> {
        Self::load(default_module_path())
    }

    /// The module's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Initialize a new token in the first slot whose token is not yet
    /// initialized (SoftHSM always offers one), set its security officer and
    /// user PINs, and return what the new token reports.
    ///
    /// This is provisioning: it is what `softhsm2-util --init-token --free`
    /// does, without putting the PINs on a command line. Both PINs must be
    /// UTF-8. Fails if no free slot exists or a token with `label` exists.
    pub fn init_token(&self, label: &str, so_pin: &Pin, user_pin: &Pin) -> Result<TokenSummary> {
        let err = ErrCtx { token: Some(label.to_owned()), key: None };
        if self.tokens()?.iter().any(|t| t.initialized && t.label == label) {
            return Err(err.step(Pkcs11Operation::InitToken, format!("a token labelled `{label}` already exists")));
        }
        let to_auth = |pin: &Pin| -> Result<AuthPin> {
            let text = std::str::from_utf8(pin.as_bytes())
                .map_err(|_| err.step(Pkcs11Operation::InitToken, "PINs used to initialize a token must be UTF-8"))?;
            Ok(AuthPin::from(text.to_owned()))
        };
        let so = to_auth(so_pin)?;
        let user = to_auth(user_pin)?;
        let free = self
            .ctx()
            .get_all_slots()
            .map_err(|e| err.ck(e))?
            .into_iter()
            .find(|slot| self.ctx().get_token_info(*slot).map(|info| !info.token_initialized()).unwrap_or(false))
            .ok_or_else(|| {
                err.step(Pkcs11Operation::InitToken, "no slot with an uninitialized token is free in this module")
            })?;
        self.ctx().init_token(free, &so, label).map_err(|e| err.ck(e))?;
        // Some modules (SoftHSM among them) move a freshly initialized token
        // to a new slot id: look it up again by label.
        let summary = self.tokens()?.into_iter().find(|t| t.initialized && t.label == label).ok_or_else(|| {
            err.step(Pkcs11Operation::InitToken, "the initialized token did not appear in the slot list")
        })?;
        let session = self
            .ctx()
            .open_rw_session(Slot::try_from(summary.slot_id).map_err(|e| err.ck(e))?)
            .map_err(|e| err.ck(e))?;
        session.login(UserType::So, Some(&so)).map_err(|e| err.ck(e))?;
        session.init_pin(&user).map_err(|e| err.ck(e))?;
        session.logout().map_err(|e| err.ck(e))?;
        Ok(summary)
    }

    /// The tokens present in the module's slots.
    pub fn tokens(&self) -> Result<Vec<TokenSummary>> {
        let err = ErrCtx::default();
        let slots = self.ctx().get_slots_with_token().map_err(|e| err.ck(e))?;
        let mut out = Vec::with_capacity(slots.len());
        for slot in slots {
            // SoftHSM fails this with CKR_GENERAL_ERROR while another process
            // rewrites the token file; retried while the slot still shows it.
            let info = with_backoff(
                || self.ctx().get_token_info(slot),
                || self.ctx().get_slot_info(slot).map(|i| i.token_present()).unwrap_or(false),
                || {},
            )
            .map_err(|e| err.ck(e))?;
            out.push(TokenSummary {
                slot_id: slot.id(),
                label: info.label().trim_end().to_owned(),
                manufacturer: info.manufacturer_id().trim_end().to_owned(),
                model: info.model().trim_end().to_owned(),
                serial: info.serial_number().trim_end().to_owned(),
                initialized: info.token_initialized(),
            });
        }
        Ok(out)
    }

    /// The salted PIN hashes of the tokens this process logged in to.
    pub(crate) fn logins(&self) -> MutexGuard<'_, HashMap<(String, String), [u8; 32]>> {
        self.loaded.logins.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn ctx(&self) -> &Pkcs11 {
        self.check_process(std::process::id());
        &self.loaded.ctx
    }

    /// How many times the module was initialized again in a new process
    /// (checked now): sessions opened under another value are not this
    /// process's.
    pub(crate) fn epoch(&self) -> u64 {
        self.check_process(std::process::id());
        self.loaded.epoch.load(Ordering::Acquire)
    }

    /// Initialize the module again when `pid` is not the process that last
    /// did (a forked child). Returns true
    /// when it did. Called with the current process id before every use;
    /// public for tests, which pass another id to act as a forked child.
    /// A failing `C_Initialize` is not reported here: the calls that follow
    /// report `CKR_CRYPTOKI_NOT_INITIALIZED` with their own function.
    #[doc(hidden)]
    pub fn check_process(&self, pid: u32) -> bool {
        let loaded = &self.loaded;
        if loaded.pid.load(Ordering::Acquire) == pid {
            return false;
        }
        let _one = loaded.reinit.lock().unwrap_or_else(|e| e.into_inner());
        if loaded.pid.load(Ordering::Acquire) == pid {
            return false;
        }
        // In a forked child the module holds its parent's state; a module
        // that says it is initialized (the same process, in tests) is fine.
        // The remembered PIN hashes stay: a child logs in again, and a module
        // that kept the parent's login is checked against them as before.
        loaded.initialize_again(pid, false);
        true
    }

    /// Finalize and initialize the module again, so that it reads its
    /// tokens afresh, but only while nothing else in the process holds it
    /// (the registry and `self` are its only handles: no token, so no
    /// session, can be affected). Returns whether it did and the module
    /// initialized again.
    ///
    /// SoftHSM 2 reads its token directory once, at `C_Initialize`, and
    /// leaves out for the life of the process a token whose file another
    /// process was rewriting at that moment.
    pub(crate) fn reload_if_unused(&self) -> bool {
        // Held throughout: no new handle can be taken from the registry.
        let _modules = MODULES.lock().unwrap_or_else(|e| e.into_inner());
        if Arc::strong_count(&self.loaded) != 2 {
            return false;
        }
        let _one = self.loaded.reinit.lock().unwrap_or_else(|e| e.into_inner());
        self.loaded.initialize_again(std::process::id(), true)
    }

    pub(crate) fn slot(&self, summary: &TokenSummary) -> Result<Slot> {
        Slot::try_from(summary.slot_id).map_err(|e| ErrCtx::default().ck(e))
    }
}
