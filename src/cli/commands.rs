//! The subcommands.

use std::io::{self, Read, Write};
use std::sync::Arc;

use hsm_keyring::keyrings::raw_aes_edk;
use hsm_keyring::pkcs11::Pkcs11Uri;
use hsm_keyring::{AlgorithmSuite, Client, CommitmentPolicy, DefaultCmm, HeaderInfo, Keyring};
use serde_json::json;

use crate::args::{CommonCrypt, DecryptArgs, EncryptArgs, InspectArgs, KeyType, KeysCommand, PolicyArg};
use crate::config;
use crate::context::parse_context;
use crate::exit::CliError;
use crate::io::{open_input, Output};
use crate::spec::KeySpec;
use crate::tokens::{Tokens, DEV_TOKEN_LABEL};
use crate::Cli;

/// `println!` that reports a closed stdout as an error instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        writeln!(io::stdout().lock(), $($arg)*).map_err(|e| CliError::usage(format!("writing stdout: {e}")))?
    };
}

fn policy(p: PolicyArg) -> CommitmentPolicy {
    match p {
        PolicyArg::ForbidEncryptAllowDecrypt => CommitmentPolicy::ForbidEncryptAllowDecrypt,
        PolicyArg::RequireEncryptAllowDecrypt => CommitmentPolicy::RequireEncryptAllowDecrypt,
        PolicyArg::RequireEncryptRequireDecrypt => CommitmentPolicy::RequireEncryptRequireDecrypt,
    }
}

/// Specs from `--keyring NAME` (first) and `--wrapping-key` (after), plus the named keyring.
fn specs(cli: &Cli, common: &CommonCrypt) -> Result<(Vec<KeySpec>, Option<config::NamedKeyring>), CliError> {
    let named = match &common.keyring {
        Some(name) => Some(config::named_keyring(cli.config.as_deref(), name)?),
        None => None,
    };
    let mut texts: Vec<&str> = named.iter().flat_map(|n| n.wrapping_keys.iter().map(String::as_str)).collect();
    texts.extend(common.wrapping_keys.iter().map(String::as_str));
    let specs = texts.into_iter().map(KeySpec::parse).collect::<Result<Vec<_>, _>>()?;
    Ok((specs, named))
}

pub fn encrypt(cli: &Cli, tokens: &mut Tokens, args: &EncryptArgs) -> Result<(), CliError> {
    let (specs, named) = specs(cli, &args.common)?;
    let context = parse_context(&args.common.context)?;
    let mut builder =
        Client::builder().commitment_policy(policy(args.common.commitment_policy)).frame_length(args.frame_length);
    let suite = match &args.suite {
        Some(s) => Some(AlgorithmSuite::parse(s).map_err(|e| CliError::usage(format!("--suite: {e}")))?),
        None => None,
    };
    if let Some(suite) = suite {
        builder = builder.algorithm_suite(suite);
    }
    if let Some(max) = args.common.max_encrypted_data_keys {
        builder = builder.max_encrypted_data_keys(max);
    }
    let client = builder.build().map_err(|e| CliError::from_lib("configuration", e))?;
    let signer = args.signer.as_deref().or(named.as_ref().and_then(|n| n.signer.as_deref()));
    if let (Some(signer), Some(suite)) = (signer, suite) {
        // Never drop a requested signature silently.
        if !suite.is_signing() {
            return Err(CliError::usage(format!(
                "--suite: suite 0x{:04X} does not sign, but a signer was given ({signer})",
                suite.id()
            )));
        }
    }
    let keyring = tokens.keyring_for(&specs)?;
    let mut cmm = DefaultCmm::new(keyring);
    if let Some(signer) = signer {
        cmm = cmm.with_signer(Arc::new(tokens.signer(signer)?));
    }
    let mut input = open_input(args.common.input.as_deref(), cli.quiet, "encrypting")?;
    let output = Output::create(args.common.output.as_deref())?;
    let mut writer = client.encrypt_stream(&cmm, &context, output).map_err(CliError::from_encrypt)?;
    copy(&mut input, &mut writer).map_err(CliError::from_encrypt)?;
    let output = writer.finish().map_err(CliError::from_encrypt)?;
    output.commit()
}

pub fn decrypt(cli: &Cli, tokens: &mut Tokens, args: &DecryptArgs) -> Result<(), CliError> {
    let (specs, named) = specs(cli, &args.common)?;
    let context = parse_context(&args.common.context)?;
    let mut builder = Client::builder().commitment_policy(policy(args.common.commitment_policy));
    if let Some(max) = args.common.max_encrypted_data_keys {
        builder = builder.max_encrypted_data_keys(max);
    }
    let mut trusted = Vec::new();
    for t in args.trusted_signer.iter().chain(named.iter().flat_map(|n| n.trusted_signers.iter())) {
        trusted.push(tokens.trusted_signer(t)?);
    }
    if !trusted.is_empty() {
        builder = builder.trusted_signers(trusted);
    }
    let client = builder.build().map_err(|e| CliError::from_lib("configuration", e))?;
    let keyring: Arc<dyn Keyring> = tokens.keyring_for(&specs)?;
    // Pairs given here that the message does not store are checked as
    // required encryption context (authenticated, not stored).
    let cmm = DefaultCmm::new(keyring);
    let input = open_input(args.common.input.as_deref(), cli.quiet, "decrypting")?;
    let mut output = Output::create(args.common.output.as_deref())?;
    let mut reader = client.decrypt_stream(&cmm, &context, input).map_err(|e| CliError::from_lib("decrypt", e))?;
    copy(&mut reader, &mut output).map_err(|e| CliError::from_lib("decrypt", e))?;
    // Dropping `output` on any error above removes the partial file.
    output.commit()
}

/// Copy with a fixed buffer, keeping the library error inside I/O errors.
fn copy(from: &mut dyn Read, to: &mut dyn Write) -> hsm_keyring::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(unwrap_io(e)),
        };
        to.write_all(&buf[..n]).map_err(unwrap_io)?;
    }
    to.flush().map_err(unwrap_io)
}

/// The streaming adapters carry library errors inside `io::Error`; get them back.
fn unwrap_io(e: io::Error) -> hsm_keyring::Error {
    if e.get_ref().is_some_and(|inner| inner.is::<hsm_keyring::Error>()) {
        match e.into_inner().map(|b| b.downcast::<hsm_keyring::Error>()) {
            Some(Ok(err)) => *err,
            Some(Err(other)) => hsm_keyring::Error::Io(io::Error::other(other)),
            None => hsm_keyring::Error::Io(io::Error::other("I/O error")),
        }
    } else {
        hsm_keyring::Error::Io(e)
    }
}

pub fn inspect(cli: &Cli, args: &InspectArgs) -> Result<(), CliError> {
    let input = open_input(args.input.as_deref(), true, "reading")?;
    let _ = cli;
    let header = Client::new().inspect(input).map_err(|e| CliError::from_lib("inspect", e))?;
    let text = serde_json::to_string_pretty(&header_json(&header)).map_err(|e| CliError::usage(e.to_string()))?;
    out!("{text}");
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn header_json(h: &HeaderInfo) -> serde_json::Value {
    let edks: Vec<_> = h
        .encrypted_data_keys
        .iter()
        .map(|e| {
            // Raw AES EDKs end with tag length, IV length and IV; the key name is before them.
            let name = raw_aes_edk::key_name(&e.provider_info)
                .map(str::to_owned)
                .or_else(|| std::str::from_utf8(&e.provider_info).ok().map(str::to_owned));
            json!({
                "provider_id": e.provider_id,
                "key_name": name,
                "provider_info_hex": hex(&e.provider_info),
                "ciphertext_len": e.ciphertext.len(),
            })
        })
        .collect();
    json!({
        "version": h.version,
        "algorithm_suite": {
            "id": format!("0x{:04X}", h.algorithm_suite.id()),
            "name": h.algorithm_suite.name(),
            "key_commitment": h.algorithm_suite.is_committing(),
        },
        "message_id": hex(&h.message_id),
        "encryption_context": h.encryption_context,
        "encrypted_data_keys": edks,
        "content_type": match h.content_type {
            hsm_keyring::message::ContentType::Framed => "framed",
            _ => "non-framed",
        },
        "frame_length": h.frame_length,
        "signed": h.algorithm_suite.is_signing(),
        "header_length": h.header_len,
    })
}

fn token_uri(tokens: &Tokens, given: Option<&str>) -> Result<Pkcs11Uri, CliError> {
    match given {
        Some(t) => tokens.parse_uri(t),
        None => Ok(Pkcs11Uri { token: Some(DEV_TOKEN_LABEL.into()), ..Pkcs11Uri::default() }),
    }
}

pub fn keys(cli: &Cli, tokens: &mut Tokens, cmd: &KeysCommand) -> Result<(), CliError> {
    let lib = |what: &'static str| move |e| CliError::from_lib(what, e);
    match cmd {
        KeysCommand::Generate { key_type, label, token } => {
            let uri = token_uri(tokens, token.as_deref())?;
            let token = tokens.token(&uri)?;
            let key = match key_type {
                KeyType::Aes256 => token.generate_aes_key(label, None),
                KeyType::Rsa3072 => token.generate_rsa_key_pair(label, 3072, None),
                KeyType::Rsa4096 => token.generate_rsa_key_pair(label, 4096, None),
                KeyType::EcP384 => token.generate_ec_p384_key_pair(label, None),
            }
            .map_err(lib("generate key"))?;
            out!("{}", tokens.display_uri(&key));
        }
        KeysCommand::List { token, json } => {
            let uri = token_uri(tokens, token.as_deref())?;
            let token = tokens.token(&uri)?;
            let keys = token.list_keys().map_err(lib("list keys"))?;
            if *json {
                let rows: Vec<_> = keys
                    .iter()
                    .map(|k| {
                        json!({
                            "uri": tokens.display_uri(&k.uri), "label": k.label, "id": hex(&k.id),
                            "type": k.object_type.as_str(), "kind": format!("{:?}", k.kind),
                            "bits": k.bits, "curve": k.curve, "usages": k.usages,
                            "sensitive": k.sensitive, "extractable": k.extractable,
                        })
                    })
                    .collect();
                out!("{}", serde_json::to_string_pretty(&rows).map_err(|e| CliError::usage(e.to_string()))?);
            } else {
                for k in &keys {
                    let size = k.bits.map(|b| format!("{b}")).or(k.curve.map(str::to_owned)).unwrap_or_default();
                    out!(
                        "{:<11} {:<4} {:<6} {:<24} {}",
                        k.object_type.as_str(),
                        format!("{:?}", k.kind),
                        size,
                        k.usages.join(","),
                        tokens.display_uri(&k.uri)
                    );
                }
                if keys.is_empty() && !cli.quiet {
                    eprintln!("no keys on token `{}`", token.label());
                }
            }
        }
        KeysCommand::ExportPublic { key, output } => {
            let uri = tokens.parse_uri(key)?;
            let token = tokens.token(&uri)?;
            let pem = token.export_public_key_pem(&uri).map_err(lib("export public key"))?;
            let mut out = Output::create(output.as_deref())?;
            out.write_all(pem.as_bytes())?;
            out.commit()?;
        }
        KeysCommand::ImportAes { key_file, label, token } => {
            let bytes = hsm_keyring::DataKey::new(
                std::fs::read(key_file)
                    .map_err(|e| CliError::usage(format!("cannot read {}: {e}", key_file.display())))?,
            );
            let uri = token_uri(tokens, token.as_deref())?;
            let token = tokens.token(&uri)?;
            let key = token.import_aes_key(label, bytes.as_bytes(), None).map_err(lib("import AES key"))?;
            let key = tokens.display_uri(&key);
            if !cli.quiet {
                eprintln!("imported: this key existed outside the token; keep that copy as safe as the token (escrow/testing only)");
            }
            out!("{key}");
        }
    }
    Ok(())
}

pub fn dev_token_init(cli: &Cli, tokens: &mut Tokens, dir: &std::path::Path, force: bool) -> Result<(), CliError> {
    let created = tokens.init_dev_token(force)?;
    if !cli.quiet {
        eprintln!("dev token created in {} (SoftHSM; for development only)", dir.display());
    }
    for (what, uri) in created {
        out!("{what:<13} {}", tokens.display_uri(&uri));
    }
    if !cli.quiet {
        eprintln!("commands use this token when a URI names no module-path, e.g.");
        eprintln!("  hsm-keyring encrypt -w 'type=pkcs11,uri=pkcs11:token={DEV_TOKEN_LABEL};object=dev-wrapping-key' -i FILE -o FILE.enc");
    }
    Ok(())
}
