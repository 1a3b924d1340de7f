//! `hsm-keyring rewrap`: key rotation of messages without touching their bodies.

use std::io::{self, BufReader, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use hsm_keyring::keyrings::MultiKeyring;
use hsm_keyring::rewrap::bulk::{self, Checkpoint, DirSource, Outcome};
use hsm_keyring::rewrap::lines::{self, LineOutcome, LinesCheckpoint};
use hsm_keyring::rewrap::{InPlaceMethod, InPlaceOutcome, ItemRewrapper, Rewrapper};
use hsm_keyring::{Client, Keyring};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::args::PolicyArg;
use crate::commands::policy;
use crate::config;
use crate::exit::{CliError, Kind};
use crate::io::{open_input, Output};
use crate::spec::KeySpec;
use crate::tokens::Tokens;
use crate::Cli;

/// Replace the encrypted data keys of messages: the data key is opened with
/// the `--from` keys and wrapped with the `-w` keys; the body is copied byte
/// for byte, never decrypted. Messages of signing suites are refused (their
/// per-message signing key was not kept) unless --signer is given. A failure
/// writes nothing.
///
/// When the output is the input file itself (-i F -o F, or --dir), the suite
/// does not sign and the new header has the old one's length, only the
/// header is rewritten, in place, under a journal (.F.rewrap-journal) that a
/// later run uses to finish an interrupted rewrite; otherwise the file is
/// rewritten whole and renamed over the old one.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").args(["input", "dir"])))]
pub struct RewrapArgs {
    /// Input message (default: stdin).
    #[arg(short, long, value_name = "FILE", conflicts_with = "dir")]
    pub input: Option<PathBuf>,
    /// Output file (default: stdout), written to a temporary file and renamed
    /// on success; the input file itself to rewrap in place.
    #[arg(short, long, value_name = "FILE", conflicts_with = "dir")]
    pub output: Option<PathBuf>,
    /// Rewrap every regular file under DIR in place (its header rewritten
    /// under a journal, or the file replaced atomically).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Key that opens the data key now, repeatable: a SPEC as for -w, or the
    /// name of a keyring of the config file.
    #[arg(long, value_name = "SPEC|NAME", required = true)]
    pub from: Vec<String>,
    /// New wrapping key, repeatable (same SPEC as encrypt's -w): the new
    /// header carries exactly these keys' encrypted data keys.
    #[arg(short = 'w', long = "wrapping-key", value_name = "SPEC|NAME", required = true)]
    pub wrapping_keys: Vec<String>,
    /// Rewrap signed messages too (suites such as 0x0578): this long-lived
    /// token key (PKCS#11 URI of an EC private key of the suite's curve)
    /// signs the new footer, and its public key replaces the per-message one
    /// in the header. The body is hashed, not decrypted; the old footer is
    /// checked first.
    #[arg(long, value_name = "URI")]
    pub signer: Option<String>,
    /// First check every frame's tag with the --from keys (the plaintext is
    /// discarded, never written): reads the message twice.
    #[arg(long, conflicts_with = "dir")]
    pub verify: bool,
    /// With --dir: how many files are rewrapped at a time.
    #[arg(long, value_name = "N", default_value_t = 8, requires = "dir")]
    pub jobs: usize,
    /// With --dir: record completed files here (synced per file) and skip
    /// those already recorded, so that an interrupted run resumes.
    #[arg(long, value_name = "FILE", requires = "dir")]
    pub checkpoint: Option<PathBuf>,
    /// Say how each file was rewritten: header in place, or copied (and why).
    #[arg(short, long)]
    pub verbose: bool,
    /// Commitment policy for the messages read.
    #[arg(long, value_enum, default_value_t = PolicyArg::RequireEncryptRequireDecrypt)]
    pub commitment_policy: PolicyArg,
}

/// Keyrings from specs or config names (a value without `=` is a name), as
/// one multi-keyring without a generator: every member wraps the data key
/// it is given, and any member may open one.
pub fn keyring_from(cli: &Cli, tokens: &mut Tokens, texts: &[String]) -> Result<Arc<dyn Keyring>, CliError> {
    let mut specs = Vec::new();
    for text in texts {
        if text.contains('=') {
            specs.push(KeySpec::parse(text)?);
            continue;
        }
        let named = config::named_keyring(cli.config.as_deref(), text)?;
        for t in &named.wrapping_keys {
            specs.push(match KeySpec::parse(t)? {
                KeySpec::Aes { path, namespace, name } => KeySpec::Aes { path: named.resolve(&path), namespace, name },
                KeySpec::Rsa { path, namespace, name, padding } => {
                    KeySpec::Rsa { path: named.resolve(&path), namespace, name, padding }
                }
                spec => spec,
            });
        }
    }
    let mut rings = Vec::with_capacity(specs.len());
    for spec in &specs {
        rings.push(tokens.keyring(spec)?);
    }
    let multi = MultiKeyring::new(None, rings).map_err(|e| CliError::from_lib("keyring", e))?;
    Ok(Arc::new(multi))
}

pub fn run(cli: &Cli, tokens: &mut Tokens, args: &RewrapArgs) -> Result<(), CliError> {
    let client = Client::builder()
        .commitment_policy(policy(args.commitment_policy))
        .build()
        .map_err(|e| CliError::from_lib("configuration", e))?;
    let from = keyring_from(cli, tokens, &args.from)?;
    let to = keyring_from(cli, tokens, &args.wrapping_keys)?;
    let mut rewrapper = Rewrapper::new(client.clone(), from.clone(), to);
    if let Some(uri) = &args.signer {
        rewrapper = rewrapper.with_signer(Arc::new(tokens.signer(uri)?));
    }
    let fail = |e| CliError::from_lib("rewrap", e);
    if let Some(dir) = &args.dir {
        return run_dir(cli, rewrapper, dir, args);
    }
    if args.verify {
        let Some(path) = &args.input else {
            return Err(CliError::usage("--verify reads the input twice: give it with -i FILE"));
        };
        let f = std::fs::File::open(path)
            .map_err(|e| CliError::usage(format!("cannot open input {}: {e}", path.display())))?;
        let cmm = hsm_keyring::cmm::DefaultCmm::new(from);
        let mut reader =
            client.decrypt_stream(&cmm, &Default::default(), BufReader::with_capacity(64 * 1024, f)).map_err(fail)?;
        io::copy(&mut reader, &mut io::sink()).map_err(|e| fail(hsm_keyring::Error::from(e)))?;
    }
    if let (Some(input), Some(output)) = (&args.input, &args.output) {
        if same_file(input, output) {
            let outcome = rewrapper.rewrap_file_in_place(input).map_err(fail)?;
            if args.verbose && !cli.quiet {
                say_in_place(input, &outcome);
            }
            return Ok(());
        }
    }
    let mut output = Output::create(args.output.as_deref())?;
    // On an error `output` is dropped and its temporary file removed.
    match (args.input.as_deref().filter(|p| *p != std::path::Path::new("-")), output.file_writer()) {
        // File to file: the body is copied by the kernel (copy_file_range).
        (Some(path), Some(writer)) => {
            let f = std::fs::File::open(path)
                .map_err(|e| CliError::usage(format!("cannot open input {}: {e}", path.display())))?;
            rewrapper.rewrap_stream(BufReader::with_capacity(64 * 1024, f), writer).map_err(fail)?;
        }
        _ => {
            let input = open_input(args.input.as_deref(), cli.quiet, "rewrapping")?;
            let input = BufReader::with_capacity(64 * 1024, input.reader);
            rewrapper.rewrap_stream(input, &mut output).map_err(fail)?;
        }
    }
    output.commit()
}

/// True when `a` and `b` name one existing file (same device and inode).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if [a, b].iter().any(|p| p.as_os_str() == "-") {
        return false;
    }
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => (x.dev(), x.ino()) == (y.dev(), y.ino()),
        _ => false,
    }
}

fn say_in_place(path: &std::path::Path, outcome: &InPlaceOutcome) {
    if outcome.recovered {
        eprintln!("{}: finished an interrupted in-place rewrite (journal)", path.display());
    }
    let what = match &outcome.method {
        InPlaceMethod::InPlace => "header rewritten in place".to_owned(),
        InPlaceMethod::Copied(reason) => format!("rewritten whole and renamed ({reason})"),
        InPlaceMethod::AlreadyRewrapped => "already under the new keys: left as it was".to_owned(),
        _ => "rewrapped".to_owned(),
    };
    eprintln!("{}: {what}", path.display());
}

fn run_dir(cli: &Cli, rewrapper: Rewrapper, dir: &std::path::Path, args: &RewrapArgs) -> Result<(), CliError> {
    let checkpoint = match &args.checkpoint {
        Some(p) => {
            Some(Checkpoint::open(p).map_err(|e| CliError::usage(format!("checkpoint {}: {}", p.display(), e)))?)
        }
        None => None,
    };
    let mut source = DirSource::new(dir, rewrapper);
    if let Some(p) = &args.checkpoint {
        source = source.exclude(p);
    }
    let bar = progress_bar(cli, "files");
    let verbose = args.verbose && !cli.quiet;
    let progress = |id: &str, r: &hsm_keyring::Result<Outcome>| {
        bar.inc(1);
        let what = match r {
            Ok(Outcome::RewrappedInPlace) => "header rewritten in place",
            Ok(Outcome::Rewrapped) => "rewritten whole and renamed",
            Ok(Outcome::Skipped) => "already under the new keys",
            _ => return,
        };
        match (verbose, bar.is_hidden()) {
            (false, _) => {}
            (true, true) => eprintln!("{id}: {what}"),
            (true, false) => bar.println(format!("{id}: {what}")),
        }
    };
    let summary =
        bulk::run(&source, args.jobs, checkpoint.as_ref(), &progress).map_err(|e| CliError::from_lib("rewrap", e))?;
    bar.finish_and_clear();
    report(cli, &summary, "keys", "files")
}

/// The progress of a bulk run on stderr when it is a terminal (and not --quiet).
fn progress_bar(cli: &Cli, objects: &str) -> ProgressBar {
    if cli.quiet || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
        ProgressStyle::with_template(&format!("rewrapping {{pos}} {objects} {{per_sec}} {{msg}}"))
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    )
}

/// Print a bulk run's failures and summary; exit 1 when anything failed.
pub fn report(cli: &Cli, summary: &bulk::Summary, keys: &str, objects: &str) -> Result<(), CliError> {
    for (id, reason) in &summary.failed {
        eprintln!("hsm-keyring: {id}: {reason}");
    }
    if !cli.quiet {
        eprintln!(
            "rewrapped {}, skipped {} (already under the new {keys}), done by an earlier run {}, failed {}",
            summary.rewrapped,
            summary.skipped,
            summary.resumed,
            summary.failed.len()
        );
        if objects == "files" && summary.rewrapped > 0 {
            eprintln!(
                "header rewritten in place {}, file rewritten whole {}",
                summary.in_place,
                summary.rewrapped - summary.in_place
            );
        }
    }
    if summary.failed.is_empty() {
        Ok(())
    } else {
        Err(CliError {
            kind: Kind::Decrypt,
            message: format!("{} {objects} could not be rewrapped", summary.failed.len()),
        })
    }
}

/// `hsm-keyring item rewrap`: the table's configuration as for item encrypt
/// and decrypt; `-w` names the new keys and `--from` the current ones.
#[derive(Debug, Args)]
pub struct ItemRewrapArgs {
    /// The table configuration (as for item decrypt); here -w names the new
    /// wrapping keys, whose encrypted data keys replace the item's.
    #[command(flatten)]
    pub table: crate::items::ItemArgs,
    /// Key that opens the items now, repeatable: a SPEC as for -w, or the
    /// name of a keyring of the config file.
    #[arg(long, value_name = "SPEC|NAME", required = true)]
    pub from: Vec<String>,
    /// Rewrap 0x6701 items too: this long-lived token key (PKCS#11 URI of an
    /// EC P-384 private key) signs the new footers, and its public key
    /// replaces the item's.
    #[arg(long, value_name = "URI")]
    pub signer: Option<String>,
    /// Items rewrapped at a time, each on a thread of its own (default: the
    /// number of cores); output lines stay in input order, and at most
    /// 2 × N items are held in memory.
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Make the run resumable (needs -i FILE and -o FILE): the output is
    /// appended to OUT.partial and FILE records, every 256 items, how much
    /// of the input is done. Run the same command again after an
    /// interruption to continue where it stopped; the input must not change
    /// in between. At the end OUT.partial becomes OUT and FILE is removed.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
}

pub fn run_items(cli: &Cli, tokens: &mut Tokens, args: &ItemRewrapArgs) -> Result<(), CliError> {
    let table = &args.table;
    if table.legacy.legacy {
        return Err(CliError::usage(
            "--legacy is for item decrypt: legacy items have no encrypted data keys to rewrap",
        ));
    }
    let from = keyring_from(cli, tokens, &args.from)?;
    let to = keyring_from(cli, tokens, &table.wrapping_keys)?;
    let config = crate::items::table_builder(table, from)?
        .build()
        .map_err(|e| CliError::usage(format!("table configuration: {e}")))?;
    let mut rewrapper = ItemRewrapper::new(config, to);
    if let Some(uri) = &args.signer {
        rewrapper = rewrapper.with_signer(Arc::new(tokens.signer(uri)?));
    }
    let jobs = crate::items::jobs_or_cores(args.jobs)?;
    let f = |line: &[u8]| -> hsm_keyring::Result<LineOutcome> {
        let malformed = |reason: String| hsm_keyring::Error::MalformedItem { reason };
        let text = std::str::from_utf8(line).map_err(|_| malformed("the line is not UTF-8".into()))?;
        let item = crate::items::item_from_json(text).map_err(malformed)?;
        Ok(match rewrapper.rewrap_or_skip(&item)? {
            Some(new) => LineOutcome::Rewrapped(
                serde_json::to_vec(&crate::items::item_to_json(&new)).map_err(|e| malformed(e.to_string()))?,
            ),
            None => LineOutcome::Skipped,
        })
    };
    let bar = progress_bar(cli, "items");
    let progress = |_: u64| bar.inc(1);
    let fail = |e| CliError::from_lib("rewrap", e);
    let mut summary = match &args.checkpoint {
        Some(path) => {
            let (Some(input), Some(output)) = (&table.input, &table.output) else {
                return Err(CliError::usage("--checkpoint needs the input and output as files: -i FILE -o FILE"));
            };
            if [input, output].iter().any(|p| p.as_os_str() == "-") {
                return Err(CliError::usage("--checkpoint needs the input and output as files: -i FILE -o FILE"));
            }
            let run = LinesCheckpoint::open(path, input, output)
                .map_err(|e| CliError::usage(format!("--checkpoint {}: {e}", path.display())))?;
            run.run(jobs, &f, &progress).map_err(fail)?
        }
        None => {
            let input = open_input(table.input.as_deref(), true, "rewrapping")?;
            let mut input = BufReader::with_capacity(64 * 1024, input.reader);
            let mut output = Output::create(table.output.as_deref())?;
            let summary = lines::rewrap_lines(&mut input, &mut output, jobs, &f, &progress).map_err(fail)?;
            // With failures a file output is dropped: its temporary file is removed.
            if summary.failed.is_empty() {
                output.commit()?;
            }
            summary
        }
    };
    bar.finish_and_clear();
    for failure in &mut summary.failed {
        failure.1 = crate::spec::redact_line(&failure.1);
    }
    report(cli, &summary, "keys", "items")
}
