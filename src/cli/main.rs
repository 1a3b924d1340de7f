//! The `hsm-keyring` command: encrypt, decrypt and manage keys from the shell.
#![forbid(unsafe_code)]
// A binary: its items are not a public API.
#![allow(missing_docs)]

mod args;
mod cleanup;
mod commands;
mod config;
mod context;
mod early_sync;
mod exit;
mod io;
mod items;
mod legacy_items;
mod pipe;
mod rewrap;
#[cfg(feature = "s3")]
mod s3;
mod spec;
mod tokens;

use std::process::ExitCode;

use clap::Parser;

pub use args::Cli;
use args::{Command, DevTokenCommand};

fn run(cli: &Cli) -> Result<(), exit::CliError> {
    let dev_dir = match &cli.command {
        Command::DevToken(DevTokenCommand::Init { dir: Some(dir), .. }) => dir.clone(),
        _ => tokens::dev_dir(cli.dev_dir.as_deref()),
    };
    let mut tokens = tokens::Tokens::new(dev_dir.clone(), cli.insecure_pin_in_uri);
    match &cli.command {
        Command::Encrypt(a) => commands::encrypt(cli, &mut tokens, a),
        Command::Decrypt(a) => commands::decrypt(cli, &mut tokens, a),
        Command::Inspect(a) => commands::inspect(cli, a),
        Command::Item(c) => items::run(cli, &mut tokens, c),
        Command::Rewrap(a) => rewrap::run(cli, &mut tokens, a),
        #[cfg(feature = "s3")]
        Command::S3(c) => s3::run(cli, &mut tokens, c),
        Command::Keys(k) => commands::keys(cli, &mut tokens, k),
        Command::DevToken(DevTokenCommand::Init { force, .. }) => {
            commands::dev_token_init(cli, &mut tokens, &dev_dir, *force)
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if let Err(e) = cleanup::install() {
        eprintln!("hsm-keyring: cannot catch signals: {e}");
        return ExitCode::from(2);
    }
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Every message that echoes a spec, a URI or a config line goes
            // through the redaction (it hides `pin-value=` values).
            eprintln!("hsm-keyring: {}", spec::redact_line(&e.to_string()));
            e.exit_code()
        }
    }
}
