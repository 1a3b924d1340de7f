//! The subcommands.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Read, Seek, Write};
use std::sync::Arc;

use hsm_keyring::cmm::DefaultCmm;
use hsm_keyring::keyrings::raw_aes_edk;
use hsm_keyring::pkcs11::{EcCurve, KeyInfo, Pkcs11Uri};
use hsm_keyring::{AlgorithmSuite, Client, CommitmentPolicy, EncryptedDataKey, HeaderInfo, Keyring};
use serde::Serialize;
use serde_json::json;

use crate::args::{CommonCrypt, DecryptArgs, EncryptArgs, InspectArgs, KeyType, KeysCommand, PolicyArg};
use crate::config;
use crate::context::parse_context;
use crate::exit::CliError;
use crate::io::{open_input, plain, Output};
use crate::pipe::{for_each_chunk, ChunkReader, ChunkWriter, CHUNK};
use crate::spec::{redact, KeySpec};
use crate::tokens::{environment_chooses_module, matching_keys, Tokens, DEV_TOKEN_LABEL};
use crate::Cli;

/// `println!` that reports a closed stdout as an error instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        writeln!(io::stdout().lock(), $($arg)*).map_err(|e| CliError::usage(format!("writing stdout: {e}")))?
    };
}

pub fn policy(p: PolicyArg) -> CommitmentPolicy {
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
    let mut specs = Vec::new();
    if let Some(n) = &named {
        for text in &n.wrapping_keys {
            // Key files named in the config file are relative to its folder.
            specs.push(match KeySpec::parse(text)? {
                KeySpec::Aes { path, namespace, name } => KeySpec::Aes { path: n.resolve(&path), namespace, name },
                KeySpec::Rsa { path, namespace, name, padding } => {
                    KeySpec::Rsa { path: n.resolve(&path), namespace, name, padding }
                }
                spec => spec,
            });
        }
    }
    for text in &common.wrapping_keys {
        specs.push(KeySpec::parse(text)?);
    }
    Ok((specs, named))
}

pub fn encrypt(cli: &Cli, tokens: &mut Tokens, args: &EncryptArgs) -> Result<(), CliError> {
    let (specs, named) = specs(cli, &args.common)?;
    let context = parse_context(&args.common.context)?;
    let mut builder =
        Client::builder().commitment_policy(policy(args.common.commitment_policy)).frame_length(args.frame_length);
    if let Some(n) = args.common.workers {
        builder = builder.workers(n.get());
    }
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
                "--suite: suite 0x{:04X} does not sign, but a signer was given ({})",
                suite.id(),
                redact(signer)
            )));
        }
    }
    let keyring = tokens.keyring_for(&specs)?;
    let mut cmm = DefaultCmm::new(keyring);
    if let Some(signer) = signer {
        cmm = cmm.with_signer(Arc::new(tokens.signer(signer)?));
    }
    let input = open_input(args.common.input.as_deref(), cli.quiet, "encrypting")?;
    let output = Output::create(args.common.output.as_deref())?;
    // Reading, sealing and writing overlap: the input and the output each
    // have a thread of their own (see `pipe`).
    let mut input = ChunkReader::spawn(input.reader, input.regular)?;
    let sink = ChunkWriter::spawn(output)?;
    let mut writer = client.encrypt_stream(&cmm, &context, sink).map_err(CliError::from_encrypt)?;
    if let Err(e) = for_each_chunk(&mut input, |data| writer.write_all(data)) {
        // The error says what happened; dropping the sink removes the partial output.
        writer.abandon();
        return Err(CliError::from_encrypt(unwrap_io(e)));
    }
    let sink = writer.finish().map_err(CliError::from_encrypt)?;
    let output = sink.finish().map_err(|e| CliError::from_encrypt(unwrap_io(e)))?;
    output.commit()
}

pub fn decrypt(cli: &Cli, tokens: &mut Tokens, args: &DecryptArgs) -> Result<(), CliError> {
    let (specs, named) = specs(cli, &args.common)?;
    let context = parse_context(&args.common.context)?;
    let mut builder = Client::builder().commitment_policy(policy(args.common.commitment_policy));
    if let Some(n) = args.common.workers {
        builder = builder.workers(n.get());
    }
    if let Some(max) = args.common.max_encrypted_data_keys {
        builder = builder.max_encrypted_data_keys(max);
    }
    let mut trusted = Vec::new();
    for t in args.trusted_signer.iter().cloned().chain(named.iter().flat_map(|n| n.trusted_signers())) {
        trusted.push(tokens.trusted_signer(&t)?);
    }
    if !trusted.is_empty() {
        builder = builder.trusted_signers(trusted);
    }
    if args.require_signed || named.as_ref().is_some_and(|n| n.require_signed) {
        builder = builder.require_signed(true);
    }
    let client = builder.build().map_err(|e| CliError::from_lib("configuration", e))?;
    let keyring: Arc<dyn Keyring> = tokens.keyring_for(&specs)?;
    // Pairs given here that the message does not store are checked as
    // required encryption context (authenticated, not stored).
    let cmm = DefaultCmm::new(keyring);
    let input = open_input(args.common.input.as_deref(), cli.quiet, "decrypting")?;
    let mut output = Output::create(args.common.output.as_deref())?;
    let fail = |e| CliError::from_lib("decrypt", e);
    // The input is read ahead on its own thread (see `pipe`).
    let input = ChunkReader::spawn(input.reader, input.regular)?;
    let mut reader = client.decrypt_stream(&cmm, &context, input).map_err(fail)?;
    let signed = reader.header().algorithm_suite.is_signing();
    let buffer = output.releases_early() && (args.buffer || (!args.no_buffer && signed && !output.is_terminal()));
    if buffer {
        // Nothing reaches the output before the whole message verified. The
        // file has no name (it is gone with the process, whatever stops it).
        let tmp = tempfile::tempfile()
            .map_err(|e| CliError::usage(format!("cannot create a temporary file: {}", plain(&e))))?;
        let mut held = io::BufWriter::with_capacity(CHUNK, tmp);
        copy(&mut reader, &mut held).map_err(fail)?;
        let mut tmp = held.into_inner().map_err(|e| CliError::from(e.into_error()))?;
        tmp.seek(io::SeekFrom::Start(0))?;
        io::copy(&mut tmp, &mut output).map_err(|e| CliError::usage(format!("writing output: {}", plain(&e))))?;
        // Dropping `output` on any error above removes the partial file.
        return output.commit();
    }
    // Opening and writing overlap: the output has a thread of its own. On
    // an error, dropping the sink removes the partial file.
    let mut sink = ChunkWriter::spawn(output)?;
    open_into(&mut reader, &mut sink).map_err(fail)?;
    let output = sink.finish().map_err(|e| fail(unwrap_io(e)))?;
    output.commit()
}

/// Decrypt straight into the sink's buffers: no copy in between.
fn open_into(from: &mut dyn Read, to: &mut ChunkWriter) -> hsm_keyring::Result<()> {
    loop {
        let space = to.space().map_err(unwrap_io)?;
        match from.read(space) {
            Ok(0) => return Ok(()),
            Ok(n) => to.advance(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(unwrap_io(e)),
        }
    }
}

/// Copy with a fixed buffer, keeping the library error inside I/O errors.
fn copy(from: &mut dyn Read, to: &mut dyn Write) -> hsm_keyring::Result<()> {
    let mut buf = vec![0u8; CHUNK];
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
    let header = Client::new()
        .inspect(io::BufReader::with_capacity(64 * 1024, input.reader))
        .map_err(|e| CliError::from_lib("inspect", e))?;
    let shown = header_out(&header, args.all_edks);
    // Written as it is serialized: no JSON tree of the whole header.
    let mut out = io::BufWriter::new(io::stdout().lock());
    let written = serde_json::to_writer_pretty(&mut out, &shown)
        .map_err(io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush());
    written.map_err(|e| CliError::usage(format!("writing stdout: {e}")))
}

/// EDKs listed by `inspect` without `--all-edks`; also the number of
/// provider ids counted.
pub const INSPECT_EDKS: usize = 32;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Serialize)]
struct HeaderOut<'a> {
    version: u8,
    algorithm_suite: SuiteOut,
    message_id: String,
    encryption_context: &'a hsm_keyring::EncryptionContext,
    encrypted_data_key_count: usize,
    encrypted_data_keys: EdkList<'a>,
    /// EDKs not listed (only when some are not).
    #[serde(skip_serializing_if = "Option::is_none")]
    encrypted_data_keys_not_listed: Option<usize>,
    /// EDKs per provider id (only when some are not listed), most first.
    #[serde(skip_serializing_if = "Option::is_none")]
    encrypted_data_keys_per_provider: Option<Vec<ProviderCount<'a>>>,
    /// Provider ids not counted above (only when there are).
    #[serde(skip_serializing_if = "Option::is_none")]
    other_provider_ids: Option<usize>,
    content_type: &'static str,
    frame_length: u32,
    signed: bool,
    header_length: usize,
}

#[derive(Serialize)]
struct SuiteOut {
    id: String,
    name: &'static str,
    key_commitment: bool,
}

#[derive(Serialize)]
struct ProviderCount<'a> {
    provider_id: &'a str,
    count: usize,
}

/// A list of EDKs serialized one at a time.
struct EdkList<'a>(&'a [EncryptedDataKey]);

impl Serialize for EdkList<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(edk_json))
    }
}

fn edk_json(e: &EncryptedDataKey) -> serde_json::Value {
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
}

fn header_out(h: &HeaderInfo, all: bool) -> HeaderOut<'_> {
    let edks = &h.encrypted_data_keys;
    let listed = if all { edks.len() } else { edks.len().min(INSPECT_EDKS) };
    let (not_listed, per_provider, other) = if listed < edks.len() {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for e in edks {
            *counts.entry(e.provider_id.as_str()).or_default() += 1;
        }
        let mut counts: Vec<ProviderCount<'_>> =
            counts.into_iter().map(|(provider_id, count)| ProviderCount { provider_id, count }).collect();
        counts.sort_by(|a, b| b.count.cmp(&a.count).then(a.provider_id.cmp(b.provider_id)));
        let other = counts.len().saturating_sub(INSPECT_EDKS);
        counts.truncate(INSPECT_EDKS);
        (Some(edks.len() - listed), Some(counts), (other > 0).then_some(other))
    } else {
        (None, None, None)
    };
    HeaderOut {
        version: h.version,
        algorithm_suite: SuiteOut {
            id: format!("0x{:04X}", h.algorithm_suite.id()),
            name: h.algorithm_suite.name(),
            key_commitment: h.algorithm_suite.is_committing(),
        },
        message_id: hex(&h.message_id),
        encryption_context: &h.encryption_context,
        encrypted_data_key_count: edks.len(),
        encrypted_data_keys: EdkList(&edks[..listed]),
        encrypted_data_keys_not_listed: not_listed,
        encrypted_data_keys_per_provider: per_provider,
        other_provider_ids: other,
        content_type: match h.content_type {
            hsm_keyring::format::ContentType::Framed => "framed",
            _ => "non-framed",
        },
        frame_length: h.frame_length,
        signed: h.algorithm_suite.is_signing(),
        header_length: h.header_len,
    }
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
                            "bits": k.bits, "curve": curve_name(k), "usages": usage_names(k),
                            "sensitive": k.sensitive, "extractable": k.extractable,
                        })
                    })
                    .collect();
                out!("{}", serde_json::to_string_pretty(&rows).map_err(|e| CliError::usage(e.to_string()))?);
            } else {
                for k in &keys {
                    let size = k.bits.map(|b| format!("{b}")).or(curve_name(k).map(str::to_owned)).unwrap_or_default();
                    out!(
                        "{:<11} {:<4} {:<6} {:<24} {}",
                        k.object_type.as_str(),
                        format!("{:?}", k.kind),
                        size,
                        usage_names(k).join(","),
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
        KeysCommand::Delete { key, yes } => {
            let uri = tokens.parse_uri(key)?;
            if uri.object.is_none() && uri.id.is_none() {
                return Err(CliError::usage(format!("keys delete: {uri} names no key; add object= or id=")));
            }
            let token = tokens.token(&uri)?;
            let matching = matching_keys(&token, &uri)?;
            if matching.is_empty() {
                return Err(CliError::token(format!(
                    "keys delete: no key matches {uri} on token `{}`; nothing deleted",
                    token.label()
                )));
            }
            if !yes {
                confirm_delete(tokens, token.label(), &matching)?;
            }
            token.delete_keys(&uri).map_err(lib("delete keys"))?;
            for k in &matching {
                out!("deleted {}", tokens.display_uri(&k.uri));
            }
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

/// The curve `keys list` shows: a named curve, nothing for another one.
fn curve_name(key: &KeyInfo) -> Option<&'static str> {
    key.curve.filter(|c| *c != EcCurve::Other).map(EcCurve::name)
}

/// The usages `keys list` shows, in lower case.
fn usage_names(key: &KeyInfo) -> Vec<&'static str> {
    key.usages.iter().map(|u| u.as_str()).collect()
}

/// Ask on the terminal before deleting keys; refuse when stdin is no terminal.
fn confirm_delete(tokens: &Tokens, label: &str, keys: &[KeyInfo]) -> Result<(), CliError> {
    if !io::stdin().is_terminal() {
        return Err(CliError::usage("keys delete: stdin is not a terminal to confirm on; give --yes to delete"));
    }
    eprintln!("keys delete: on token `{label}`, this deletes:");
    for k in keys {
        eprintln!("  {}", tokens.display_uri(&k.uri));
    }
    eprint!("Delete {} key object(s)? [y/N] ", keys.len());
    let mut answer = String::new();
    io::stdin().read_line(&mut answer)?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(CliError::usage("keys delete: not confirmed; nothing deleted"))
    }
}

pub fn dev_token_init(cli: &Cli, tokens: &mut Tokens, dir: &std::path::Path, force: bool) -> Result<(), CliError> {
    let env_module = environment_chooses_module();
    let created = tokens.init_dev_token(force)?;
    if !cli.quiet {
        eprintln!("dev token created in {} (SoftHSM; for development only)", dir.display());
        if env_module {
            eprintln!(
                "note: SOFTHSM2_CONF or PKCS11_MODULE is set: other commands use that instead of this dev token \
                 until it is unset"
            );
        }
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
