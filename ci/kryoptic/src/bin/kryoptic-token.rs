//! Initializes the token of a Kryoptic slot: `C_InitToken` with the security
//! officer PIN and label, then `C_InitPIN` for the user PIN.
//!
//! Usage: `kryoptic-token MODULE LABEL`, with `KRYOPTIC_CONF` naming the
//! configuration and the PINs in `KRYOPTIC_SO_PIN` and `KRYOPTIC_USER_PIN`
//! (environment, not arguments, so they do not show in process listings).
//! Prints the slot number on success.

use std::process::ExitCode;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

fn pin(var: &str) -> Result<AuthPin, String> {
    let value = std::env::var(var).map_err(|_| format!("{var} is not set"))?;
    // Kryoptic refuses PINs shorter than 8 characters.
    if value.chars().count() < 8 {
        return Err(format!("{var} must be at least 8 characters"));
    }
    Ok(AuthPin::new(value.into()))
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [module, label] = args.as_slice() else {
        return Err("usage: kryoptic-token MODULE LABEL (KRYOPTIC_CONF, KRYOPTIC_SO_PIN, KRYOPTIC_USER_PIN)".into());
    };
    if std::env::var_os("KRYOPTIC_CONF").is_none() {
        return Err("KRYOPTIC_CONF is not set".into());
    }
    let so_pin = pin("KRYOPTIC_SO_PIN")?;
    let user_pin = pin("KRYOPTIC_USER_PIN")?;
    let ctx = Pkcs11::new(module).map_err(|e| format!("load {module}: {e}"))?;
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).map_err(|e| format!("C_Initialize: {e}"))?;
    let slot = *ctx
        .get_all_slots()
        .map_err(|e| format!("C_GetSlotList: {e}"))?
        .first()
        .ok_or("the configuration defines no slot")?;
    ctx.init_token(slot, &so_pin, label).map_err(|e| format!("C_InitToken: {e}"))?;
    let session = ctx.open_rw_session(slot).map_err(|e| format!("C_OpenSession: {e}"))?;
    session.login(UserType::So, Some(&so_pin)).map_err(|e| format!("C_Login (SO): {e}"))?;
    session.init_pin(&user_pin).map_err(|e| format!("C_InitPIN: {e}"))?;
    session.logout().map_err(|e| format!("C_Logout: {e}"))?;
    println!("{}", slot.id());
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kryoptic-token: {e}");
            ExitCode::FAILURE
        }
    }
}
