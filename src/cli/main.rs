//! The `hsm-keyring` command.
fn main() {}
