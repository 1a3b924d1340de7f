//! Tokens for the command: the SoftHSM dev token, PIN resolution (URI, then
//! `HSM_KEYRING_PIN`, then, only when none of these is set, the dev token's
//! PIN file, then a prompt), one
//! logged-in [`Token`] per token per run, and keyrings built from specs.

use std::collections::HashMap;
use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hsm_keyring::crypto::RsaPadding;
use hsm_keyring::keyrings::{MultiKeyring, RawAesKeyring, RawRsaKeyring};
use hsm_keyring::pkcs11::{
    default_module_path, resolve_pin, trusted_signer_from_pem, trusted_signer_from_token, KeyInfo, KeyKind, Module,
    ObjectType, Pin, Pkcs11AesKeyring, Pkcs11RsaKeyring, Pkcs11Signer, Pkcs11Uri, Token, TokenOptions,
};
use hsm_keyring::{DataKey, Keyring};

use crate::exit::CliError;
use crate::spec::KeySpec;

/// Label of the dev token.
pub const DEV_TOKEN_LABEL: &str = "hsm-keyring-dev";
/// Label of the dev token's AES-256 wrapping key.
pub const DEV_WRAPPING_KEY: &str = "dev-wrapping-key";
/// Label of the dev token's EC P-384 signing key.
pub const DEV_SIGNING_KEY: &str = "dev-signing-key";
/// Environment variable holding a PIN.
pub const PIN_ENV: &str = "HSM_KEYRING_PIN";

/// Where the dev token lives: `--dev-dir`, `$HSM_KEYRING_DEV_DIR`, or the
/// user's data directory.
pub fn dev_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_path_buf();
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("hsm-keyring").join("dev-token")
}

/// The file that marks a directory as made by `dev-token init`.
const DEV_MARKER: &str = ".hsm-keyring-dev-token";
/// What `dev-token init` creates in its directory (and `--force` removes).
const DEV_FILES: [&str; 3] = ["softhsm2.conf", "user.pin", "so.pin"];
const DEV_TOKENS_DIR: &str = "tokens";

/// True when the user's environment chose a PKCS#11 module or a SoftHSM
/// configuration: it then wins over the dev token.
pub fn environment_chooses_module() -> bool {
    std::env::var_os("SOFTHSM2_CONF").is_some() || std::env::var_os("PKCS11_MODULE").is_some()
}

/// Everything one run needs to reach tokens.
pub struct Tokens {
    dev_dir: PathBuf,
    allow_pin_in_uri: bool,
    open: HashMap<String, Token>,
    /// [`environment_chooses_module`] when the run started (the dev token
    /// itself sets `SOFTHSM2_CONF` once it is used).
    env_module: bool,
}

impl Tokens {
    pub fn new(dev_dir: PathBuf, allow_pin_in_uri: bool) -> Self {
        Tokens { dev_dir, allow_pin_in_uri, open: HashMap::new(), env_module: environment_chooses_module() }
    }

    fn dev_conf(&self) -> PathBuf {
        self.dev_dir.join("softhsm2.conf")
    }

    /// True when a URI without `module-path` should use the dev token.
    /// A URI naming SoftHSM's default module (as the dev token's own URIs do
    /// when printed by other tools) also uses the dev token. Never when the
    /// environment chose a SoftHSM configuration (`SOFTHSM2_CONF`) or a
    /// module (`PKCS11_MODULE`): the user's environment wins.
    fn dev_mode(&self, uri: &Pkcs11Uri) -> bool {
        let module_ok = match &uri.module_path {
            None => true,
            Some(p) => Path::new(p) == default_module_path(),
        };
        module_ok && !self.env_module && self.dev_conf().is_file()
    }

    /// How to print a URI: without `module-path` when it leads to the dev token.
    pub fn display_uri(&self, uri: &Pkcs11Uri) -> String {
        let mut shown = uri.clone();
        if self.dev_conf().is_file() && shown.module_path.as_deref().map(PathBuf::from) == Some(default_module_path()) {
            shown.module_path = None;
        }
        shown.to_string()
    }

    /// Parse a URI given on the command line (refusing `pin-value` unless allowed).
    pub fn parse_uri(&self, text: &str) -> Result<Pkcs11Uri, CliError> {
        let uri = Pkcs11Uri::parse(text).map_err(|e| CliError::usage(e.to_string()))?;
        if uri.pin_value.is_some() && !self.allow_pin_in_uri {
            return Err(CliError::usage(format!(
                "the URI {uri} carries pin-value: a PIN on the command line shows in the process list; \
                 use pin-source=file:..., {PIN_ENV}, the prompt, or pass --insecure-pin-in-uri"
            )));
        }
        Ok(uri)
    }

    /// The logged-in token named by `uri` (opened once per run).
    pub fn token(&mut self, uri: &Pkcs11Uri) -> Result<Token, CliError> {
        let dev = self.dev_mode(uri);
        let cache_key = format!("{}|{:?}|{dev}", uri.token_only().to_path_string(), uri.module_path);
        if let Some(t) = self.open.get(&cache_key) {
            return Ok(t.clone());
        }
        let mut options = TokenOptions::default();
        if dev {
            // SoftHSM reads its configuration when the module is loaded.
            std::env::set_var("SOFTHSM2_CONF", self.dev_conf());
            options = options.module_path(default_module_path());
        }
        // The module first: a module that does not load is reported as such,
        // not as a missing PIN, and no PIN is asked for in vain.
        let module_path = match (&options.module_path, &uri.module_path) {
            (Some(path), _) => path.clone(),
            (None, Some(path)) => PathBuf::from(path),
            (None, None) => default_module_path(),
        };
        Module::load(&module_path).map_err(|e| token_error(e, dev, &self.dev_dir))?;
        let pin = match resolve_pin(uri) {
            Ok(pin) => pin,
            // A PIN source that was given but cannot be used is an error;
            // only "no PIN configured at all" falls back.
            Err(e) if uri.pin_value.is_some() || uri.pin_source.is_some() => {
                return Err(CliError::usage(e.to_string()));
            }
            Err(resolve_err) => {
                let pin_file = self.dev_dir.join("user.pin");
                if dev && pin_file.is_file() {
                    Pin::from_file(&pin_file).map_err(|e| CliError::usage(e.to_string()))?
                } else if std::io::stderr().is_terminal() {
                    let label = uri.token.clone().unwrap_or_else(|| "the token".into());
                    let text = rpassword::prompt_password(format!("PIN for {label}: "))
                        .map_err(|e| CliError::usage(format!("cannot read the PIN from the terminal: {e}")))?;
                    Pin::new(text.into_bytes())
                } else {
                    return Err(CliError::usage(format!(
                        "{resolve_err}{}",
                        if self.dev_conf().is_file() || uri.module_path.is_some() {
                            String::new()
                        } else {
                            " (or create a dev token with `hsm-keyring dev-token init`)".into()
                        }
                    )));
                }
            }
        };
        options = options.pin(pin);
        let token = Token::open_with(uri, options).map_err(|e| token_error(e, dev, &self.dev_dir))?;
        self.open.insert(cache_key, token.clone());
        Ok(token)
    }

    /// Build the keyring for one `--wrapping-key` spec.
    pub fn keyring(&mut self, spec: &KeySpec) -> Result<Arc<dyn Keyring>, CliError> {
        match spec {
            KeySpec::Aes { path, namespace, name } => {
                let bytes = DataKey::new(
                    fs::read(path)
                        .map_err(|e| CliError::usage(format!("cannot read AES key {}: {e}", path.display())))?,
                );
                let k = RawAesKeyring::new(namespace.clone(), name.clone(), bytes.as_bytes())
                    .map_err(|e| CliError::usage(format!("AES key {}: {e}", path.display())))?;
                Ok(Arc::new(k))
            }
            KeySpec::Rsa { path, namespace, name, padding } => {
                let padding = RsaPadding::parse(padding).map_err(|e| CliError::usage(e.to_string()))?;
                let pem = fs::read_to_string(path)
                    .map_err(|e| CliError::usage(format!("cannot read RSA key {}: {e}", path.display())))?;
                let pem = zeroize::Zeroizing::new(pem);
                let k = if pem.contains("PRIVATE KEY") {
                    RawRsaKeyring::from_private_pem(namespace.clone(), name.clone(), padding, &pem)
                } else {
                    RawRsaKeyring::from_public_pem(namespace.clone(), name.clone(), padding, &pem)
                }
                .map_err(|e| CliError::usage(format!("RSA key {}: {e}", path.display())))?;
                Ok(Arc::new(k))
            }
            KeySpec::Pkcs11 { uri, namespace, name, padding } => {
                let uri = self.parse_uri(uri)?;
                let token = self.token(&uri)?;
                let kind = key_kind(&token, &uri)?;
                let wrap = |e: hsm_keyring::Error| CliError::from_lib("wrapping key", e);
                match kind {
                    KeyKind::Aes => {
                        let mut k = Pkcs11AesKeyring::new(token, &uri).map_err(wrap)?;
                        if let Some(ns) = namespace {
                            k = k.with_namespace(ns.clone()).map_err(wrap)?;
                        }
                        if let Some(n) = name {
                            k = k.with_key_name(n.clone()).map_err(wrap)?;
                        }
                        Ok(Arc::new(k))
                    }
                    KeyKind::Rsa => {
                        let padding = RsaPadding::parse(padding.as_deref().unwrap_or("oaep-sha1"))
                            .map_err(|e| CliError::usage(e.to_string()))?;
                        let mut k = Pkcs11RsaKeyring::new(token, &uri, padding).map_err(wrap)?;
                        if let Some(ns) = namespace {
                            k = k.with_namespace(ns.clone()).map_err(wrap)?;
                        }
                        if let Some(n) = name {
                            k = k.with_key_name(n.clone()).map_err(wrap)?;
                        }
                        Ok(Arc::new(k))
                    }
                    other => Err(CliError::usage(format!(
                        "{uri} is {}; a wrapping key must be AES (secret-key) or RSA",
                        kind_text(other)
                    ))),
                }
            }
        }
    }

    /// One keyring for all specs: the first generates, the others wrap too.
    /// Always a multi-keyring, so a failed decrypt reports every key's reason.
    pub fn keyring_for(&mut self, specs: &[KeySpec]) -> Result<Arc<dyn Keyring>, CliError> {
        if specs.is_empty() {
            return Err(CliError::usage("no wrapping key: give --wrapping-key SPEC (or --keyring NAME)"));
        }
        let mut rings = Vec::with_capacity(specs.len());
        for spec in specs {
            rings.push(self.keyring(spec)?);
        }
        let generator = rings.remove(0);
        let multi = MultiKeyring::new(Some(generator), rings).map_err(|e| CliError::from_lib("keyring", e))?;
        Ok(Arc::new(multi))
    }

    /// The kind of key `uri` names on `token` (AES, RSA, ...).
    pub fn key_kind(&self, token: &Token, uri: &Pkcs11Uri) -> Result<KeyKind, CliError> {
        key_kind(token, uri)
    }

    /// The token-held footer signer named by `uri`.
    pub fn signer(&mut self, uri: &str) -> Result<Pkcs11Signer, CliError> {
        let uri = self.parse_uri(uri)?;
        let token = self.token(&uri)?;
        let kind = key_kind(&token, &uri)?;
        if kind != KeyKind::Ec {
            return Err(CliError::usage(format!(
                "signer {uri} is {}; a signer must be an EC P-384 key",
                kind_text(kind)
            )));
        }
        Pkcs11Signer::new(token, &uri).map_err(|e| CliError::from_lib("signer", e))
    }

    /// The compressed public key of a trusted signer: a PEM file or a token key URI.
    pub fn trusted_signer(&mut self, what: &str) -> Result<Vec<u8>, CliError> {
        if what.starts_with("pkcs11:") {
            let uri = self.parse_uri(what)?;
            let token = self.token(&uri)?;
            trusted_signer_from_token(&token, &uri).map_err(|e| CliError::from_lib("trusted signer", e))
        } else {
            let pem = fs::read_to_string(what)
                .map_err(|e| CliError::usage(format!("cannot read trusted signer {what}: {e}")))?;
            trusted_signer_from_pem(&pem).map_err(|e| CliError::usage(format!("trusted signer {what}: {e}")))
        }
    }

    /// Create the dev token: configuration, PINs, token, a wrapping and a signing key.
    ///
    /// The directory is new (created 0700), empty, or one this command made
    /// (it holds [`DEV_MARKER`]); in the last case `force` replaces the
    /// token, removing only the files this command creates. The permissions
    /// of an existing directory are left alone.
    pub fn init_dev_token(&mut self, force: bool) -> Result<Vec<(String, Pkcs11Uri)>, CliError> {
        let dir = self.dev_dir.clone();
        let shown = dir.display();
        let cannot = |what: &str, path: &Path, e: std::io::Error| {
            CliError::usage(format!("cannot {what} {}: {e}", path.display()))
        };
        match fs::read_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                    fs::create_dir_all(parent).map_err(|e| cannot("create", parent, e))?;
                }
                let mut builder = fs::DirBuilder::new();
                #[cfg(unix)]
                {
                    use std::os::unix::fs::DirBuilderExt;
                    builder.mode(0o700);
                }
                builder.create(&dir).map_err(|e| cannot("create", &dir, e))?;
            }
            Err(e) => return Err(cannot("read", &dir, e)),
            Ok(entries) => {
                let names: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.file_name())).collect();
                // A dev token made before the marker existed holds only these.
                let only_ours = self.dev_conf().is_file()
                    && names.iter().all(|n| DEV_FILES.contains(&&*n.to_string_lossy()) || n == DEV_TOKENS_DIR);
                if dir.join(DEV_MARKER).is_file() || only_ours {
                    if self.dev_conf().exists() && !force {
                        return Err(CliError::usage(format!(
                            "a dev token already exists in {shown}; use --force to replace it"
                        )));
                    }
                    for name in DEV_FILES {
                        let path = dir.join(name);
                        if path.exists() {
                            fs::remove_file(&path).map_err(|e| cannot("remove", &path, e))?;
                        }
                    }
                    let tokens_dir = dir.join(DEV_TOKENS_DIR);
                    if tokens_dir.exists() {
                        fs::remove_dir_all(&tokens_dir).map_err(|e| cannot("remove", &tokens_dir, e))?;
                    }
                } else if !names.is_empty() {
                    return Err(CliError::usage(format!(
                        "{shown} is not empty and was not made by `hsm-keyring dev-token init`; \
                         give --dir a new or empty directory"
                    )));
                }
            }
        }
        fs::write(dir.join(DEV_MARKER), "This directory holds the hsm-keyring SoftHSM dev token.\n")
            .map_err(|e| cannot("create", &dir.join(DEV_MARKER), e))?;
        let tokens_dir = dir.join(DEV_TOKENS_DIR);
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(&tokens_dir).map_err(|e| cannot("create", &tokens_dir, e))?;
        fs::write(
            self.dev_conf(),
            format!(
                "# SoftHSM configuration of the hsm-keyring dev token.\ndirectories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens_dir.display()
            ),
        )?;
        let user_pin = random_pin()?;
        let so_pin = random_pin()?;
        write_secret(&dir.join("user.pin"), user_pin.as_bytes())?;
        write_secret(&dir.join("so.pin"), so_pin.as_bytes())?;

        // This token, whatever the environment chose for other commands.
        self.env_module = false;
        std::env::set_var("SOFTHSM2_CONF", self.dev_conf());
        let module = Module::load(default_module_path()).map_err(|e| token_error(e, true, &dir))?;
        module.init_token(DEV_TOKEN_LABEL, &so_pin, &user_pin).map_err(|e| token_error(e, true, &dir))?;

        let token_uri = Pkcs11Uri { token: Some(DEV_TOKEN_LABEL.into()), ..Pkcs11Uri::default() };
        let token = self.token(&token_uri)?;
        let fail = |e| CliError::from_lib("dev token", e);
        let wrap = token.generate_aes_key(DEV_WRAPPING_KEY, None).map_err(fail)?;
        let sign = token.generate_ec_p384_key_pair(DEV_SIGNING_KEY, None).map_err(fail)?;
        Ok(vec![("token".into(), token_uri), ("wrapping key".into(), wrap), ("signing key".into(), sign)])
    }
}

/// "an AES key", "an RSA key", "an EC key".
pub fn kind_text(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Aes => "an AES key",
        KeyKind::Rsa => "an RSA key",
        KeyKind::Ec => "an EC key",
        _ => "a key of another kind",
    }
}

/// The key objects a URI names (by `object`, `id` and `type`).
pub fn matching_keys(token: &Token, uri: &Pkcs11Uri) -> Result<Vec<KeyInfo>, CliError> {
    let keys = token.list_keys().map_err(|e| CliError::from_lib("list keys", e))?;
    Ok(keys
        .into_iter()
        .filter(|k| uri.object.as_deref().is_none_or(|o| o == k.label))
        .filter(|k| uri.id.as_deref().is_none_or(|id| id == k.id.as_slice()))
        .filter(|k| uri.object_type.is_none_or(|t| t == k.object_type))
        .collect())
}

/// Find the kind of the key a URI names (AES, RSA, EC).
pub fn key_kind(token: &Token, uri: &Pkcs11Uri) -> Result<KeyKind, CliError> {
    match uri.object_type {
        Some(ObjectType::SecretKey) => return Ok(KeyKind::Aes),
        Some(ObjectType::Private | ObjectType::Public) if uri.object.is_none() && uri.id.is_none() => {}
        _ => {}
    }
    let matching = matching_keys(token, uri)?;
    let first = matching.first().ok_or_else(|| {
        CliError::token(format!(
            "no key matches {uri} on token `{}`; `hsm-keyring keys list` shows what is there",
            token.label()
        ))
    })?;
    if matching.iter().any(|k| k.kind != first.kind) {
        return Err(CliError::usage(format!("{uri} names keys of different kinds; add type= or id= to the URI")));
    }
    Ok(first.kind)
}

/// Token errors exit with 3 and say how to reach the dev token.
fn token_error(e: hsm_keyring::Error, dev: bool, dev_dir: &Path) -> CliError {
    let mut err = CliError::from_lib("token", e);
    if !dev && !dev_dir.join("softhsm2.conf").exists() && err.message.contains("find token") {
        err.message.push_str(" (no dev token either: `hsm-keyring dev-token init` creates one)");
    }
    err
}

fn random_pin() -> Result<Pin, CliError> {
    let bytes = DataKey::generate(12).map_err(|e| CliError::usage(e.to_string()))?;
    let hex: String = bytes.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Pin::new(hex.into_bytes()))
}

fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path).map_err(|e| CliError::usage(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(bytes)?;
    Ok(())
}
