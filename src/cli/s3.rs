//! `hsm-keyring s3 put|get|rewrap`: objects encrypted client-side as the Amazon S3
//! Encryption Client does, through the AWS SDK's S3 client (credentials and
//! region from the usual environment variables and profile files).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use clap::{Args, Subcommand, ValueEnum};
use hsm_keyring::crypto::RsaPadding;
use hsm_keyring::pkcs11::{KeyKind, Pkcs11AesKeyring, Pkcs11RsaKeyring};
use hsm_keyring::s3::store::{BodyDecryptor, PartEncryptor, DEFAULT_PART_SIZE};
use hsm_keyring::s3::{
    instruction_file_key, MetadataLocation, ObjectMetadata, S3Crypto, S3Format, S3Keyring, S3Metadata,
    INSTRUCTION_FILE_MARKER,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use zeroize::Zeroizing;

use crate::exit::CliError;
use crate::io::Output;
use crate::spec::KeySpec;
use crate::tokens::{key_kind, kind_text, Tokens};
use crate::Cli;

#[path = "s3_rewrap.rs"]
mod rewrap;

/// Plaintext bytes released to a stream only after the tag verified.
const STREAM_HOLD_BACK: usize = 64 * 1024;

/// Body chunks of `s3 get` waiting between the download and the decryption thread.
const GET_QUEUE: usize = 32;

#[derive(Debug, Subcommand)]
pub enum S3Command {
    /// Encrypt FILE (or stdin: `-`) into s3://BUCKET/KEY.
    Put(PutArgs),
    /// Decrypt s3://BUCKET/KEY into FILE (or stdout: `-`); a failure leaves no output file.
    Get(GetArgs),
    /// Move s3://BUCKET/KEY (or every object under s3://BUCKET/PREFIX/) from
    /// the --from key to the -w key: only the wrapped data key changes, the
    /// body is never read (server-side copy, or the instruction file only).
    Rewrap(rewrap::RewrapArgs),
}

/// Where and with which key.
#[derive(Debug, Args)]
pub struct S3Common {
    /// S3-compatible endpoint instead of AWS (e.g. http://127.0.0.1:9000).
    /// Plain HTTP and path-style requests only for loopback addresses.
    #[arg(long, value_name = "URL", env = "HSM_KEYRING_S3_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Wrapping key: `type=pkcs11,uri=URI`, `type=aes,path=FILE` or
    /// `type=rsa,path=FILE.pem` (OAEP-SHA1; namespace and name are not used).
    #[arg(short = 'w', long = "wrapping-key", value_name = "SPEC", required = true)]
    pub wrapping_key: String,
    /// Material description entry KEY=VALUE, repeatable: written with the
    /// object, and required to match exactly on get.
    #[arg(short, long = "context", value_name = "KEY=VALUE")]
    pub context: Vec<String>,
    /// Plaintext bytes per multipart-upload part (at least 5 MiB on S3);
    /// larger objects go up in parts.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_PART_SIZE)]
    pub part_size: usize,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// Key-committing format (current reference clients).
    V3,
    /// AES-GCM format of the 2.x reference clients.
    V2,
}

#[derive(Debug, Args)]
pub struct PutArgs {
    /// Plaintext file, or `-` for stdin.
    pub input: PathBuf,
    /// Destination, s3://BUCKET/KEY.
    pub url: String,
    #[command(flatten)]
    pub common: S3Common,
    /// Write the metadata into KEY.instruction instead of the object's user metadata.
    #[arg(long)]
    pub instruction_file: bool,
    /// Object format.
    #[arg(long, value_enum, default_value_t = FormatArg::V3)]
    pub format: FormatArg,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Source, s3://BUCKET/KEY.
    pub url: String,
    /// Plaintext output file, or `-` for stdout.
    pub output: PathBuf,
    #[command(flatten)]
    pub common: S3Common,
}

pub fn run(cli: &Cli, tokens: &mut Tokens, cmd: &S3Command) -> Result<(), CliError> {
    if let S3Command::Rewrap(a) = cmd {
        return rewrap::run(cli, tokens, a);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::token(format!("cannot start the I/O runtime: {e}")))?;
    match cmd {
        S3Command::Put(a) => runtime.block_on(put(cli, tokens, a)),
        S3Command::Get(a) => runtime.block_on(get(cli, tokens, a)),
        S3Command::Rewrap(_) => Ok(()),
    }
}

/// `s3://BUCKET/KEY` split.
pub fn parse_url(url: &str) -> Result<(String, String), CliError> {
    let rest = url.strip_prefix("s3://").ok_or_else(|| CliError::usage(format!("`{url}` is not s3://BUCKET/KEY")))?;
    match rest.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok((bucket.to_owned(), key.to_owned())),
        _ => Err(CliError::usage(format!("`{url}` is not s3://BUCKET/KEY"))),
    }
}

/// True for http(s)://127.x.x.x, [::1] and localhost.
fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

async fn client(common: &S3Common) -> Result<Client, CliError> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    let mut path_style = false;
    if let Some(url) = &common.endpoint_url {
        let loopback = is_loopback(url);
        if url.starts_with("http://") && !loopback {
            return Err(CliError::usage(format!(
                "--endpoint-url {url}: plain HTTP is allowed for loopback addresses only; use https://"
            )));
        }
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(CliError::usage(format!("--endpoint-url {url}: not an http(s) URL")));
        }
        path_style = loopback;
        loader = loader.endpoint_url(url);
    }
    let shared = loader.load().await;
    let mut config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(path_style)
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired);
    if shared.region().is_none() {
        if common.endpoint_url.is_none() {
            return Err(CliError::usage("no AWS region: set AWS_REGION or a region in the profile"));
        }
        config = config.region(aws_sdk_s3::config::Region::new("us-east-1"));
    }
    Ok(Client::from_conf(config.build()))
}

fn keyring(tokens: &mut Tokens, common: &S3Common) -> Result<S3Keyring, CliError> {
    let spec = KeySpec::parse_unnamed(&common.wrapping_key)?;
    let mut description = BTreeMap::new();
    for pair in &common.context {
        let (k, v) =
            pair.split_once('=').ok_or_else(|| CliError::usage(format!("--context `{pair}` is not KEY=VALUE")))?;
        if k.is_empty() || description.insert(k.to_owned(), v.to_owned()).is_some() {
            return Err(CliError::usage(format!("--context `{pair}`: empty or repeated key")));
        }
    }
    let keyring = match spec {
        KeySpec::Aes { path, .. } => {
            let bytes = Zeroizing::new(
                fs::read(&path).map_err(|e| CliError::usage(format!("cannot read AES key {}: {e}", path.display())))?,
            );
            S3Keyring::aes(&bytes).map_err(|e| CliError::usage(format!("AES key {}: {e}", path.display())))?
        }
        KeySpec::Rsa { path, padding, .. } => {
            if !padding.is_empty() && padding != "oaep-sha1" {
                return Err(CliError::usage("S3 objects wrap with RSA OAEP-SHA1 only (padding=oaep-sha1)"));
            }
            let pem = Zeroizing::new(
                fs::read_to_string(&path)
                    .map_err(|e| CliError::usage(format!("cannot read RSA key {}: {e}", path.display())))?,
            );
            if pem.contains("PRIVATE KEY") {
                S3Keyring::rsa_from_private_pem(&pem)
            } else {
                S3Keyring::rsa_from_public_pem(&pem)
            }
            .map_err(|e| CliError::usage(format!("RSA key {}: {e}", path.display())))?
        }
        KeySpec::Pkcs11 { uri, .. } => {
            let uri = tokens.parse_uri(&uri)?;
            let token = tokens.token(&uri)?;
            let wrap = |e: hsm_keyring::Error| CliError::from_lib("wrapping key", e);
            match key_kind(&token, &uri)? {
                KeyKind::Aes => S3Keyring::from_pkcs11_aes(&Pkcs11AesKeyring::new(token, &uri).map_err(wrap)?),
                KeyKind::Rsa => {
                    S3Keyring::from_pkcs11_rsa(&Pkcs11RsaKeyring::new(token, &uri, RsaPadding::OaepSha1).map_err(wrap)?)
                }
                other => {
                    return Err(CliError::usage(format!(
                        "{uri} is {}; an S3 wrapping key must be AES or RSA",
                        kind_text(other)
                    )))
                }
            }
        }
    };
    Ok(keyring.with_material_description(description))
}

fn s3_error<E: std::error::Error>(what: &str, url: &str, e: E) -> CliError {
    CliError::usage(format!("{what} {url}: {}", DisplayErrorContext(&e)))
}

fn progress(cli: &Cli, total: Option<u64>, verb: &str) -> ProgressBar {
    if cli.quiet || !std::io::stderr().is_terminal() || total.is_some_and(|t| t < crate::io::PROGRESS_THRESHOLD) {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr()).with_style(style);
    bar.set_message(verb.to_owned());
    bar
}

async fn put(cli: &Cli, tokens: &mut Tokens, args: &PutArgs) -> Result<(), CliError> {
    let (bucket, key) = parse_url(&args.url)?;
    let format = match args.format {
        FormatArg::V3 => S3Format::V3,
        FormatArg::V2 => S3Format::V2,
    };
    let crypto = S3Crypto::new(keyring(tokens, &args.common)?)
        .with_format(format)
        .map_err(|e| CliError::from_lib("format", e))?;
    let (reader, total): (Box<dyn tokio::io::AsyncRead + Unpin + Send>, Option<u64>) = if args.input == Path::new("-") {
        (Box::new(tokio::io::stdin()), None)
    } else {
        let file = tokio::fs::File::open(&args.input)
            .await
            .map_err(|e| CliError::usage(format!("cannot open input {}: {e}", args.input.display())))?;
        let len = file.metadata().await.ok().map(|m| m.len());
        (Box::new(file), len)
    };
    let client = client(&args.common).await?;
    let encryptor = crypto.encryptor().map_err(CliError::from_encrypt)?;
    let mut parts = PartEncryptor::new(reader, encryptor, args.common.part_size)
        .map_err(|e| CliError::from_lib("--part-size", e))?;
    let metadata = parts.metadata().cloned().ok_or_else(|| CliError::token("no metadata"))?;
    let (object_fields, instruction) = if args.instruction_file {
        let (object, json) = metadata.to_instruction_file().map_err(CliError::from_encrypt)?;
        (object, Some(json))
    } else {
        (metadata.to_object_metadata().map_err(CliError::from_encrypt)?, None)
    };
    let user_metadata: HashMap<String, String> = object_fields.into_iter().collect();
    let bar = progress(cli, total, "put");
    let read_err = |e: hsm_keyring::Error| CliError::from_lib("put", e);
    let first = parts.next_part().await.map_err(read_err)?.ok_or_else(|| CliError::token("no first part"))?;
    if first.is_last {
        client
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .set_metadata(Some(user_metadata))
            .body(ByteStream::from(first.body))
            .send()
            .await
            .map_err(|e| s3_error("PutObject", &args.url, e))?;
    } else {
        let upload = client
            .create_multipart_upload()
            .bucket(&bucket)
            .key(&key)
            .set_metadata(Some(user_metadata))
            .send()
            .await
            .map_err(|e| s3_error("CreateMultipartUpload", &args.url, e))?;
        let upload_id = upload.upload_id().unwrap_or_default().to_owned();
        let result: Result<(), CliError> = async {
            let mut completed = Vec::new();
            let mut part = Some(first);
            while let Some(p) = part {
                let n = i32::try_from(p.number).map_err(|_| CliError::usage("too many parts"))?;
                let len = p.body.len() as u64;
                let out = client
                    .upload_part()
                    .bucket(&bucket)
                    .key(&key)
                    .upload_id(&upload_id)
                    .part_number(n)
                    .body(ByteStream::from(p.body))
                    .send()
                    .await
                    .map_err(|e| s3_error(&format!("UploadPart {n}"), &args.url, e))?;
                bar.inc(len);
                completed
                    .push(CompletedPart::builder().set_e_tag(out.e_tag().map(str::to_owned)).part_number(n).build());
                part = parts.next_part().await.map_err(read_err)?;
            }
            client
                .complete_multipart_upload()
                .bucket(&bucket)
                .key(&key)
                .upload_id(&upload_id)
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(completed)).build())
                .send()
                .await
                .map_err(|e| s3_error("CompleteMultipartUpload", &args.url, e))?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = client.abort_multipart_upload().bucket(&bucket).key(&key).upload_id(&upload_id).send().await;
            return Err(e);
        }
    }
    bar.finish_and_clear();
    if let Some(json) = instruction {
        client
            .put_object()
            .bucket(&bucket)
            .key(instruction_file_key(&key))
            .metadata(INSTRUCTION_FILE_MARKER, "")
            .body(ByteStream::from(json.into_bytes()))
            .send()
            .await
            .map_err(|e| s3_error("PutObject (instruction file)", &args.url, e))?;
    }
    Ok(())
}

async fn get(cli: &Cli, tokens: &mut Tokens, args: &GetArgs) -> Result<(), CliError> {
    let (bucket, key) = parse_url(&args.url)?;
    let crypto = S3Crypto::new(keyring(tokens, &args.common)?);
    let client = client(&args.common).await?;
    let object =
        client.get_object().bucket(&bucket).key(&key).send().await.map_err(|e| s3_error("GetObject", &args.url, e))?;
    let fields: ObjectMetadata =
        object.metadata().into_iter().flatten().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
    let malformed = |e| CliError::from_lib(&format!("get {}", args.url), e);
    let metadata = match S3Metadata::location(&fields) {
        MetadataLocation::InstructionFile => {
            let instruction =
                client.get_object().bucket(&bucket).key(instruction_file_key(&key)).send().await.map_err(|e| {
                    if e.as_service_error().is_some_and(|e| e.is_no_such_key()) {
                        CliError::from_lib(
                            &format!("get {}", args.url),
                            hsm_keyring::Error::S3Metadata {
                                field: "instruction file".into(),
                                reason: format!(
                                    "the object carries no encryption metadata and `{}` does not exist: \
                                     the object is not encrypted, or its instruction file is missing",
                                    instruction_file_key(&key)
                                ),
                            },
                        )
                    } else {
                        s3_error("GetObject (instruction file)", &args.url, e)
                    }
                })?;
            let bytes = instruction
                .body
                .collect()
                .await
                .map_err(|e| CliError::usage(format!("GetObject (instruction file) {}: {e}", args.url)))?
                .into_bytes();
            let json = String::from_utf8_lossy(&bytes);
            S3Metadata::from_instruction_file(&fields, &json).map_err(malformed)?
        }
        _ => S3Metadata::from_object_metadata(&fields).map_err(malformed)?,
    };
    let mut decryptor = BodyDecryptor::new(crypto.decryptor(&metadata).map_err(malformed)?);
    let total = object.content_length().and_then(|l| u64::try_from(l).ok());
    let mut body = object.body;
    let mut output = Output::create(Some(&args.output))?;
    let hold_back = if output.releases_early() { STREAM_HOLD_BACK } else { 0 };
    let bar = progress(cli, total, "get");
    // Decryption and writing run on a thread of their own, beside the
    // download, which hands over the body's chunks through a bounded queue
    // (at most GET_QUEUE chunks of the HTTP client's size wait in it).
    let (chunks, received) = std::sync::mpsc::sync_channel(GET_QUEUE);
    let url = args.url.clone();
    let worker = std::thread::Builder::new()
        .name("hsm-keyring-s3-get".into())
        .spawn(move || -> Result<Output, CliError> {
            let malformed = |e| CliError::from_lib(&format!("get {url}"), e);
            let write_err = |e: std::io::Error| CliError::usage(format!("writing output: {}", crate::io::plain(&e)));
            let mut held: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
            for chunk in received {
                let chunk: bytes::Bytes = chunk;
                let plain = decryptor.update(&chunk).map_err(malformed)?;
                if held.is_empty() && plain.len() > hold_back {
                    let release = plain.len() - hold_back;
                    output.write_all(&plain[..release]).map_err(write_err)?;
                    held.extend_from_slice(&plain[release..]);
                } else {
                    held.extend_from_slice(&plain);
                    if held.len() > hold_back {
                        let release = held.len() - hold_back;
                        output.write_all(&held[..release]).map_err(write_err)?;
                        held.drain(..release);
                    }
                }
            }
            decryptor.finish().map_err(malformed)?;
            output.write_all(&held).map_err(write_err)?;
            Ok(output)
        })
        .map_err(|e| CliError::usage(format!("cannot start a thread: {e}")))?;
    let downloaded = async {
        while let Some(chunk) =
            body.try_next().await.map_err(|e| CliError::usage(format!("GetObject {}: {e}", args.url)))?
        {
            bar.inc(chunk.len() as u64);
            if chunks.send(chunk).is_err() {
                // The worker stopped on an error: it is reported below.
                break;
            }
        }
        Ok::<(), CliError>(())
    }
    .await;
    drop(chunks);
    let written = worker.join().map_err(|_| CliError::usage("the decryption thread stopped unexpectedly"))?;
    bar.finish_and_clear();
    // A failed download wins over what the worker made of the cut body; either
    // way the output is dropped uncommitted (no file is left).
    downloaded?;
    written?.commit()
}
