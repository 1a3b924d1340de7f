//! `hsm-keyring item encrypt|decrypt`: DynamoDB items as JSON Lines.
//!
//! Each input line is one item in DynamoDB JSON (the `Item` of
//! `aws dynamodb get-item`: attribute names to `{"S": ...}`, `{"N": ...}`,
//! `{"B": base64}`, `{"BOOL": ...}`, `{"NULL": true}`, `{"SS"|"NS"|"BS": [...]}`,
//! `{"L": [...]}`, `{"M": {...}}`); each output line is the item encrypted or
//! decrypted, in the same shape. Items are processed on `--jobs` threads
//! and written in input order. An item that fails is named by its line
//! number on stderr and nothing is written for it; the others are written,
//! and the command exits 1 at the end.

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use clap::{Args, Subcommand};
use hsm_keyring::items::legacy::decrypt_any_item;
use hsm_keyring::items::{
    decrypt_item, encrypt_item, AttributeValue, CryptoAction, Item, TableConfig, TableConfigBuilder,
};
use hsm_keyring::rewrap::lines::map_lines;
use hsm_keyring::{AlgorithmSuite, Keyring};
use serde_json::{Map, Value};

use crate::exit::{CliError, Kind};
use crate::io::{open_input, Output};
use crate::legacy_items::LegacyArgs;
use crate::spec::KeySpec;
use crate::tokens::Tokens;
use crate::Cli;

#[derive(Debug, Subcommand)]
pub enum ItemCommand {
    /// Encrypt and sign items (JSON Lines of DynamoDB JSON).
    Encrypt(ItemEncryptArgs),
    /// Verify and decrypt items (JSON Lines of DynamoDB JSON).
    Decrypt(ItemDecryptArgs),
    /// Replace the encrypted data keys of items (key rotation): every
    /// attribute value is kept byte for byte, header and footer are rewritten.
    ///
    /// Items are rewrapped on --jobs threads and written in input order. An
    /// item already under the new keys (the --from keys no longer open it,
    /// the -w keys do) is copied through unchanged and counted as skipped.
    /// Every item that fails is named by its line number; then no output
    /// file is written (to stdout, the other items are) and the command
    /// exits 1. A summary (rewrapped, skipped, failed) ends the run.
    Rewrap(Box<crate::rewrap::ItemRewrapArgs>),
}

#[derive(Debug, Args)]
pub struct ItemEncryptArgs {
    #[command(flatten)]
    pub table: ItemArgs,
    /// Sign 0x6701 items with this long-lived token key (PKCS#11 URI of an EC
    /// P-384 private key) instead of a fresh key per item; its public key is
    /// stored in each item's header, where any reader finds it.
    #[arg(long, value_name = "URI")]
    pub signer: Option<String>,
    #[command(flatten)]
    pub jobs: JobsArg,
}

#[derive(Debug, Args)]
pub struct ItemDecryptArgs {
    #[command(flatten)]
    pub table: ItemArgs,
    /// Accept only items signed by this key (PEM file or PKCS#11 URI),
    /// repeatable. Items of the unsigned suite 0x6700 and items signed by any
    /// other key fail before any keyring is called.
    #[arg(long, value_name = "PEM|URI")]
    pub trusted_signer: Vec<String>,
    #[command(flatten)]
    pub jobs: JobsArg,
}

/// `--jobs` of item encrypt and decrypt.
#[derive(Debug, Args)]
pub struct JobsArg {
    /// Items processed at a time, each on a thread of its own (default: the
    /// number of cores; 1 processes one at a time); output lines stay in
    /// input order, and at most 2 × N items are held in memory.
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
}

/// The number of threads `--jobs` asks for: the number of cores by default;
/// 0 is a usage error.
pub fn jobs_or_cores(jobs: Option<usize>) -> Result<usize, CliError> {
    match jobs {
        Some(0) => Err(CliError::usage("--jobs must be at least 1")),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// The table configuration and the keys.
#[derive(Debug, Args)]
pub struct ItemArgs {
    /// Logical table name (bound into every item).
    #[arg(long, value_name = "NAME")]
    pub table: String,
    /// Partition key attribute.
    #[arg(long, value_name = "NAME")]
    pub partition_key: String,
    /// Sort key attribute.
    #[arg(long, value_name = "NAME")]
    pub sort_key: Option<String>,
    /// Action for one attribute, repeatable: ATTR=encrypt, sign, sign-include or
    /// nothing (the SDK's names, such as ENCRYPT_AND_SIGN, are accepted too).
    /// The partition and sort keys default to sign, or sign-include when any
    /// attribute is sign-include.
    #[arg(long = "action", value_name = "ATTR=ACTION")]
    pub actions: Vec<String>,
    /// Action for attributes not named with --action (and not allowed unsigned).
    #[arg(long, value_name = "ACTION", default_value = "encrypt")]
    pub default_action: String,
    /// Attribute left unsigned, repeatable.
    #[arg(long, value_name = "ATTR")]
    pub allowed_unsigned: Vec<String>,
    /// Attributes starting with this are left unsigned.
    #[arg(long, value_name = "PREFIX")]
    pub allowed_unsigned_prefix: Option<String>,
    /// Suite: 0x6700 (HMAC only) or 0x6701 (also ECDSA P-384, the default).
    #[arg(long, value_name = "SUITE")]
    pub suite: Option<String>,
    /// Wrapping key, repeatable (as for encrypt); the first generates the data key.
    #[arg(short = 'w', long = "wrapping-key", value_name = "SPEC", required = true)]
    pub wrapping_keys: Vec<String>,
    /// Input file (default: stdin).
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Output file (default: stdout), written like encrypt's -o.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Items of the legacy DynamoDB Encryption Client (decrypt only).
    #[command(flatten)]
    pub legacy: LegacyArgs,
}

pub fn run(cli: &Cli, tokens: &mut Tokens, command: &ItemCommand) -> Result<(), CliError> {
    let (args, jobs, encrypt) = match command {
        ItemCommand::Encrypt(a) => (&a.table, a.jobs.jobs, true),
        ItemCommand::Decrypt(a) => (&a.table, a.jobs.jobs, false),
        ItemCommand::Rewrap(a) => return crate::rewrap::run_items(cli, tokens, a),
    };
    let jobs = jobs_or_cores(jobs)?;
    let specs = args.wrapping_keys.iter().map(|t| KeySpec::parse(t)).collect::<Result<Vec<_>, _>>()?;
    let keyring: Arc<dyn Keyring> = tokens.keyring_for(&specs)?;
    let mut builder = table_builder(args, keyring)?;
    match command {
        ItemCommand::Encrypt(ItemEncryptArgs { signer: Some(uri), .. }) => {
            builder = builder.signer(Arc::new(tokens.signer(uri)?));
        }
        ItemCommand::Decrypt(ItemDecryptArgs { trusted_signer, .. }) if !trusted_signer.is_empty() => {
            let keys = trusted_signer.iter().map(|t| tokens.trusted_signer(t)).collect::<Result<Vec<_>, _>>()?;
            builder = builder.trusted_signers(keys);
        }
        _ => {}
    }
    let config = builder.build().map_err(|e| CliError::usage(format!("table configuration: {e}")))?;
    if encrypt && args.legacy.legacy {
        return Err(CliError::usage("--legacy is for item decrypt: items are always written in the new format"));
    }
    let legacy = crate::legacy_items::policy(&args.legacy, tokens, &config)?;
    let what = if encrypt { "encrypting" } else { "decrypting" };
    map_item_lines(cli, args, what, jobs, &|item| {
        let out = match (&legacy, encrypt) {
            (_, true) => encrypt_item(&config, item),
            (Some(policy), false) => decrypt_any_item(&config, policy, item),
            (None, false) => decrypt_item(&config, item),
        };
        out.map_err(|e| e.to_string())
    })
}

/// Read DynamoDB JSON lines from `-i`, apply `f` to each item on `jobs`
/// threads and write the results to `-o` in input order. A line that fails
/// is named on stderr and left out; the command then exits 1.
pub fn map_item_lines(
    cli: &Cli,
    args: &ItemArgs,
    what: &str,
    jobs: usize,
    f: &(dyn Fn(&Item) -> Result<Item, String> + Sync),
) -> Result<(), CliError> {
    let input = open_input(args.input.as_deref(), cli.quiet, what)?;
    let mut input = BufReader::with_capacity(64 * 1024, input.reader);
    let mut output = Output::create(args.output.as_deref())?;
    let line_fn = |line: &[u8]| -> Result<Vec<u8>, String> {
        let text = std::str::from_utf8(line).map_err(|_| "the line is not UTF-8".to_owned())?;
        let item = f(&item_from_json(text)?)?;
        serde_json::to_vec(&item_to_json(&item)).map_err(|e| e.to_string())
    };
    let (mut failed, mut write_error) = (0usize, None);
    let run = map_lines(&mut input, jobs, &line_fn, &mut |number, result| {
        match result {
            Ok(line) => {
                if let Err(e) = output.write_all(&line).and_then(|()| output.write_all(b"\n")) {
                    write_error = Some(CliError::usage(format!("writing output: {e}")));
                    return Err(e.into());
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("hsm-keyring: line {number}: {}", crate::spec::redact_line(&e));
            }
        }
        Ok(())
    });
    if let Err(e) = run {
        return Err(write_error.unwrap_or_else(|| CliError::usage(format!("reading the input: {e}"))));
    }
    output.commit()?;
    if failed > 0 {
        return Err(CliError {
            kind: Kind::Decrypt,
            message: format!("{failed} item(s) failed, nothing was written for them"),
        });
    }
    Ok(())
}

pub fn table_builder(args: &ItemArgs, keyring: Arc<dyn Keyring>) -> Result<TableConfigBuilder, CliError> {
    let usage = |what: &str, e: hsm_keyring::Error| CliError::usage(format!("{what}: {e}"));
    let mut b = TableConfig::builder(&args.table, &args.partition_key).keyring(keyring);
    if let Some(sk) = &args.sort_key {
        b = b.sort_key(sk);
    }
    for text in &args.actions {
        let (name, action) =
            text.rsplit_once('=').ok_or_else(|| CliError::usage(format!("--action `{text}`: expected ATTR=ACTION")))?;
        b = b.action(name, action.parse::<CryptoAction>().map_err(|e| usage("--action", e))?);
    }
    b = b.default_action(args.default_action.parse::<CryptoAction>().map_err(|e| usage("--default-action", e))?);
    for name in &args.allowed_unsigned {
        b = b.allowed_unsigned(name);
    }
    if let Some(p) = &args.allowed_unsigned_prefix {
        b = b.allowed_unsigned_prefix(p);
    }
    if let Some(s) = &args.suite {
        let hex = s.trim().trim_start_matches("0x").trim_start_matches("0X");
        let id = u16::from_str_radix(hex, 16)
            .map_err(|_| CliError::usage(format!("--suite `{s}`: expected 0x6700 or 0x6701")))?;
        b = b.suite(AlgorithmSuite::from_item_id(id).map_err(|e| usage("--suite", e))?);
    }
    Ok(b)
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Parse one line of DynamoDB JSON.
pub fn item_from_json(line: &str) -> Result<Item, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let map = value.as_object().ok_or("an item is a JSON object")?;
    map.iter().map(|(k, v)| Ok((k.clone(), value_from_json(v).map_err(|e| format!("attribute `{k}`: {e}"))?))).collect()
}

fn strings(v: &Value) -> Result<Vec<String>, String> {
    let list = v.as_array().ok_or("a set is a JSON array")?;
    list.iter().map(|s| s.as_str().map(str::to_owned).ok_or_else(|| "a set member is a string".to_owned())).collect()
}

fn bytes(v: &Value) -> Result<Vec<u8>, String> {
    let text = v.as_str().ok_or("a binary value is a base64 string")?;
    b64().decode(text).map_err(|_| "a binary value is not valid base64".to_owned())
}

fn value_from_json(v: &Value) -> Result<AttributeValue, String> {
    let map = v.as_object().filter(|m| m.len() == 1).ok_or("a value is an object with one type key")?;
    let (tag, inner) = map.iter().next().ok_or("empty value")?;
    let text = || inner.as_str().map(str::to_owned).ok_or_else(|| format!("`{tag}` holds a string"));
    Ok(match tag.as_str() {
        "S" => AttributeValue::S(text()?),
        "N" => AttributeValue::N(text()?),
        "B" => AttributeValue::B(bytes(inner)?),
        "BOOL" => AttributeValue::Bool(inner.as_bool().ok_or("`BOOL` holds true or false")?),
        "NULL" => AttributeValue::Null,
        "SS" => AttributeValue::Ss(strings(inner)?),
        "NS" => AttributeValue::Ns(strings(inner)?),
        "BS" => AttributeValue::Bs(
            inner.as_array().ok_or("`BS` holds an array")?.iter().map(bytes).collect::<Result<_, _>>()?,
        ),
        "L" => AttributeValue::L(
            inner.as_array().ok_or("`L` holds an array")?.iter().map(value_from_json).collect::<Result<_, _>>()?,
        ),
        "M" => {
            let m = inner.as_object().ok_or("`M` holds an object")?;
            AttributeValue::M(
                m.iter()
                    .map(|(k, v)| Ok((k.clone(), value_from_json(v)?)))
                    .collect::<Result<BTreeMap<_, _>, String>>()?,
            )
        }
        other => return Err(format!("unknown type `{other}`")),
    })
}

/// One item as DynamoDB JSON.
pub fn item_to_json(item: &Item) -> Value {
    Value::Object(item.iter().map(|(k, v)| (k.clone(), value_to_json(v))).collect::<Map<_, _>>())
}

fn value_to_json(v: &AttributeValue) -> Value {
    let (tag, inner) = match v {
        AttributeValue::S(s) => ("S", Value::from(s.as_str())),
        AttributeValue::N(n) => ("N", Value::from(n.as_str())),
        AttributeValue::B(b) => ("B", Value::from(b64().encode(b))),
        AttributeValue::Bool(b) => ("BOOL", Value::from(*b)),
        AttributeValue::Ss(s) => ("SS", Value::from(s.clone())),
        AttributeValue::Ns(s) => ("NS", Value::from(s.clone())),
        AttributeValue::Bs(s) => ("BS", Value::from(s.iter().map(|b| b64().encode(b)).collect::<Vec<_>>())),
        AttributeValue::L(l) => ("L", Value::from(l.iter().map(value_to_json).collect::<Vec<_>>())),
        AttributeValue::M(m) => ("M", Value::Object(m.iter().map(|(k, v)| (k.clone(), value_to_json(v))).collect())),
        _ => ("NULL", Value::from(true)),
    };
    let mut map = Map::new();
    map.insert(tag.to_owned(), inner);
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamodb_json_round_trips() {
        let line = r#"{"a":{"S":"x"},"b":{"N":"1.5"},"c":{"B":"AAE="},"d":{"BOOL":true},"e":{"NULL":true},"f":{"SS":["p"]},"g":{"NS":["2"]},"h":{"BS":["AQ=="]},"i":{"L":[{"S":"y"}]},"j":{"M":{"k":{"N":"3"}}}}"#;
        let item = item_from_json(line).unwrap();
        assert_eq!(item["c"], AttributeValue::B(vec![0, 1]));
        let back = serde_json::to_string(&item_to_json(&item)).unwrap();
        assert_eq!(item_from_json(&back).unwrap(), item);
        for bad in
            ["[]", "{\"a\":{\"X\":\"1\"}}", "{\"a\":{\"B\":\"!!\"}}", "{\"a\":{\"S\":\"x\",\"N\":\"1\"}}", "nope"]
        {
            assert!(item_from_json(bad).is_err(), "{bad}");
        }
    }
}
