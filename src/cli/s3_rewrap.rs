//! `hsm-keyring s3 rewrap`: move S3 objects to a new wrapping key without
//! moving their bodies. Metadata in the object: a server-side `CopyObject`
//! of the object onto itself (`MetadataDirective=REPLACE`, conditional on
//! the ETag read); metadata in `<key>.instruction`: only that file is
//! rewritten. The object body is never requested (HeadObject, CopyObject).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::MetadataDirective;
use aws_sdk_s3::Client;
use clap::Args;
use hsm_keyring::rewrap::bulk::{self, Checkpoint, Outcome, RewrapSource};
use hsm_keyring::rewrap::{S3Rewrapped, S3Rewrapper};
use hsm_keyring::s3::store::DEFAULT_PART_SIZE;
use hsm_keyring::s3::{
    instruction_file_key, MetadataLocation, ObjectMetadata, S3Metadata, INSTRUCTION_FILE_MARKER,
    INSTRUCTION_FILE_SUFFIX,
};
use hsm_keyring::Error;

use super::{client, keyring, S3Common};
use crate::exit::CliError;
use crate::tokens::Tokens;
use crate::Cli;

#[derive(Debug, Args)]
pub struct RewrapArgs {
    /// s3://BUCKET/KEY, or s3://BUCKET/PREFIX/ (ending in `/`) for every
    /// object under the prefix (`.instruction` files are not listed).
    pub url: String,
    /// The current wrapping key (same forms as -w).
    #[arg(long, value_name = "SPEC")]
    pub from: String,
    /// Material description the current key requires, KEY=VALUE, repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub from_context: Vec<String>,
    /// The new wrapping key: `type=pkcs11,uri=URI`, `type=aes,path=FILE` or
    /// `type=rsa,path=FILE.pem` (OAEP-SHA1).
    #[arg(short = 'w', long = "wrapping-key", value_name = "SPEC")]
    pub wrapping_key: String,
    /// Material description written with the new key, KEY=VALUE, repeatable.
    #[arg(short, long = "context", value_name = "KEY=VALUE")]
    pub context: Vec<String>,
    /// S3-compatible endpoint instead of AWS (e.g. http://127.0.0.1:9000).
    /// Plain HTTP and path-style requests only for loopback addresses.
    #[arg(long, value_name = "URL", env = "HSM_KEYRING_S3_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// With a prefix: how many objects are rewrapped at a time.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub jobs: usize,
    /// With a prefix: record completed objects here (synced per object) and
    /// skip those already recorded, so that an interrupted run resumes.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
}

fn store(operation: &str, key: &str, e: impl std::error::Error) -> Error {
    Error::Store { operation: operation.into(), key: key.into(), reason: DisplayErrorContext(&e).to_string() }
}

/// The objects of one bucket, rewrapped in place.
struct S3Source<'a> {
    runtime: &'a tokio::runtime::Runtime,
    client: Client,
    bucket: String,
    prefix: String,
    rewrapper: S3Rewrapper,
}

impl S3Source<'_> {
    async fn rewrap_object(&self, key: &str) -> hsm_keyring::Result<Outcome> {
        let head = self.client.head_object().bucket(&self.bucket).key(key).send().await;
        let head = head.map_err(|e| store("HeadObject", key, e))?;
        let fields: ObjectMetadata =
            head.metadata().into_iter().flatten().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
        if S3Metadata::location(&fields) == MetadataLocation::InstructionFile {
            let name = instruction_file_key(key);
            let file = self.client.get_object().bucket(&self.bucket).key(&name).send().await;
            let file = file.map_err(|e| store("GetObject", &name, e))?;
            let bytes = file.body.collect().await.map_err(|e| store("GetObject", &name, e))?.into_bytes();
            let metadata = S3Metadata::from_instruction_file(&fields, &String::from_utf8_lossy(&bytes))?;
            let S3Rewrapped::Rewrapped(new) = self.rewrapper.rewrap(&metadata)? else {
                return Ok(Outcome::Skipped);
            };
            let (_, json) = new.to_instruction_file()?;
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&name)
                .metadata(INSTRUCTION_FILE_MARKER, "")
                .body(ByteStream::from(json.into_bytes()))
                .send()
                .await
                .map_err(|e| store("PutObject", &name, e))?;
            return Ok(Outcome::Rewrapped);
        }
        let metadata = S3Metadata::from_object_metadata(&fields)?;
        let S3Rewrapped::Rewrapped(new) = self.rewrapper.rewrap(&metadata)? else {
            return Ok(Outcome::Skipped);
        };
        // Keep the caller's own user metadata; replace the encryption fields.
        let mut user: HashMap<String, String> = fields.into_iter().collect();
        for old in
            metadata.to_object_metadata()?.keys().map(String::as_str).chain(["x-amz-m", "x-amz-t", "x-amz-matdesc"])
        {
            user.remove(old);
        }
        user.extend(new.to_object_metadata()?);
        let mut copy = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(key)
            .copy_source(format!("{}/{}", self.bucket, encode_key(key)))
            .metadata_directive(MetadataDirective::Replace)
            .set_metadata(Some(user))
            .set_content_type(head.content_type().map(str::to_owned))
            .set_content_encoding(head.content_encoding().map(str::to_owned))
            .set_content_disposition(head.content_disposition().map(str::to_owned))
            .set_content_language(head.content_language().map(str::to_owned))
            .set_cache_control(head.cache_control().map(str::to_owned));
        if let Some(etag) = head.e_tag() {
            copy = copy.copy_source_if_match(etag);
        }
        copy.send().await.map_err(|e| store("CopyObject", key, e))?;
        Ok(Outcome::Rewrapped)
    }
}

impl RewrapSource for S3Source<'_> {
    fn list(&self) -> hsm_keyring::Result<Vec<String>> {
        self.runtime.block_on(async {
            let mut keys = Vec::new();
            let mut pages =
                self.client.list_objects_v2().bucket(&self.bucket).prefix(&self.prefix).into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| store("ListObjectsV2", &self.prefix, e))?;
                keys.extend(
                    page.contents()
                        .iter()
                        .filter_map(|o| o.key())
                        .filter(|k| !k.ends_with(INSTRUCTION_FILE_SUFFIX))
                        .map(str::to_owned),
                );
            }
            keys.sort();
            Ok(keys)
        })
    }

    fn rewrap(&self, id: &str) -> hsm_keyring::Result<Outcome> {
        self.runtime.block_on(self.rewrap_object(id))
    }
}

/// An object key for `x-amz-copy-source`: percent-encoded but for `/` and
/// the unreserved characters.
fn encode_key(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

pub fn run(cli: &Cli, tokens: &mut Tokens, args: &RewrapArgs) -> Result<(), CliError> {
    let rest = args.url.strip_prefix("s3://").unwrap_or("");
    let (bucket, key) = rest
        .split_once('/')
        .filter(|(b, _)| !b.is_empty())
        .ok_or_else(|| CliError::usage(format!("`{}` is not s3://BUCKET/KEY or s3://BUCKET/PREFIX/", args.url)))?;
    let common = |wrapping_key: &str, context: &[String]| S3Common {
        endpoint_url: args.endpoint_url.clone(),
        wrapping_key: wrapping_key.to_owned(),
        context: context.to_vec(),
        part_size: DEFAULT_PART_SIZE,
    };
    let from = keyring(tokens, &common(&args.from, &args.from_context))?;
    let to_common = common(&args.wrapping_key, &args.context);
    let to = keyring(tokens, &to_common)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::token(format!("cannot start the I/O runtime: {e}")))?;
    let client = runtime.block_on(client(&to_common))?;
    let source = S3Source {
        runtime: &runtime,
        client,
        bucket: bucket.to_owned(),
        prefix: key.to_owned(),
        rewrapper: S3Rewrapper::new(from, to),
    };
    if !key.is_empty() && !key.ends_with('/') {
        let outcome = source.rewrap(key).map_err(|e| CliError::from_lib(&format!("rewrap {}", args.url), e))?;
        if !cli.quiet {
            eprintln!(
                "{}: {}",
                args.url,
                match outcome {
                    Outcome::Skipped => "skipped (already under the new key)",
                    _ => "rewrapped",
                }
            );
        }
        return Ok(());
    }
    let checkpoint = match &args.checkpoint {
        Some(p) => {
            Some(Checkpoint::open(p).map_err(|e| CliError::usage(format!("checkpoint {}: {}", p.display(), e)))?)
        }
        None => None,
    };
    let verbose = !cli.quiet && std::io::stderr().is_terminal();
    let progress = |id: &str, r: &hsm_keyring::Result<Outcome>| {
        if verbose && r.is_ok() {
            eprintln!("{id}");
        }
    };
    let summary =
        bulk::run(&source, args.jobs, checkpoint.as_ref(), &progress).map_err(|e| CliError::from_lib("rewrap", e))?;
    crate::rewrap::report(cli, &summary, "key", "objects")
}
