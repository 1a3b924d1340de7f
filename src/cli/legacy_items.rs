//! `hsm-keyring item decrypt --legacy`: the legacy DynamoDB Encryption
//! Client's keys, given as specs like `--wrapping-key`'s and split by the
//! same code (comma-separated `name=value`; a comma inside a URI is `%2C`,
//! or the URI is quoted whole: `uri="pkcs11:..."`).

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use hsm_keyring::items::legacy::{LegacyConfig, LegacyMaterials, LegacyPolicy};
use hsm_keyring::items::TableConfig;
use hsm_keyring::master_keys::{LegacyUnwrapKey, LegacyVerifyKey, MemoryAesWrapKey, MemoryHmacKey, MemoryLegacyRsaKey};
use hsm_keyring::pkcs11::{KeyKind, Pkcs11AesWrapKey, Pkcs11HmacKey, Pkcs11LegacyRsaKey};
use zeroize::Zeroizing;

use crate::exit::CliError;
use crate::spec::{redact, split_fields};
use crate::tokens::Tokens;

/// Options for items written by the legacy DynamoDB Encryption Client.
#[derive(Debug, Args)]
pub struct LegacyArgs {
    /// Also read items written by the legacy DynamoDB Encryption Client
    /// (those with `*amzn-ddb-map-sig*`), with the same table name, keys and
    /// actions and the keys given by --legacy-wrap or --legacy-static and
    /// --legacy-sign; other items are read as usual. Decrypt only.
    #[arg(long)]
    pub legacy: bool,
    /// Legacy wrapped materials provider, the key that unwraps content keys:
    /// type=aes,path=FILE (AES key wrap, a raw 16/24/32-byte key),
    /// type=rsa,path=PEM (RSA-OAEP SHA-256 with MGF1-SHA1, a private key) or
    /// type=pkcs11,uri=URI (an AES key: CKM_AES_KEY_WRAP, needs CKA_UNWRAP;
    /// an RSA key pair: CKM_RSA_PKCS_OAEP). A value holding a comma is quoted
    /// whole, as for -w: uri="pkcs11:...".
    #[arg(long, value_name = "SPEC", requires = "legacy", conflicts_with = "legacy_static")]
    pub legacy_wrap: Option<String>,
    /// Legacy static materials provider, the AES content key itself:
    /// type=aes,path=FILE. Without --legacy-wrap or --legacy-static, legacy
    /// items may only have signed attributes.
    #[arg(long, value_name = "SPEC", requires = "legacy")]
    pub legacy_static: Option<String>,
    /// The key that verifies legacy signatures (required with --legacy):
    /// type=hmac,path=FILE (HmacSHA256, a raw key of 16 bytes or more),
    /// type=rsa,path=PEM (SHA256withRSA, a public or private key) or
    /// type=pkcs11,uri=URI (a secret key: CKM_SHA256_HMAC; an RSA key:
    /// CKM_SHA256_RSA_PKCS). A value holding a comma is quoted whole, as
    /// for -w: uri="pkcs11:...".
    #[arg(long, value_name = "SPEC", requires = "legacy")]
    pub legacy_sign: Option<String>,
}

/// A parsed legacy key spec: its type and where the key is.
struct Spec {
    kind: String,
    path: Option<PathBuf>,
    uri: Option<String>,
}

fn parse(option: &str, text: &str, kinds: &[&str]) -> Result<Spec, CliError> {
    let err = |what: String| CliError::usage(format!("{option} `{}`: {what}", redact(text)));
    let (mut kind, mut path, mut uri) = (None, None, None);
    for field in split_fields(text, &["type", "path", "uri"]).map_err(err)? {
        let slot = match field.name {
            "type" => &mut kind,
            "path" => &mut path,
            _ => &mut uri,
        };
        // Spaces around an unquoted value are dropped; a quoted one is taken as is.
        let value = if field.quoted { field.value } else { field.value.trim() };
        *slot = Some(value.to_owned());
    }
    let kind = kind.ok_or_else(|| err(format!("no type= ({})", kinds.join(", "))))?;
    if !kinds.contains(&kind.as_str()) {
        return Err(err(format!("unknown type `{kind}` (expected {})", kinds.join(", "))));
    }
    match (kind.as_str(), &path, &uri) {
        ("pkcs11", None, Some(_)) => {}
        ("pkcs11", _, _) => return Err(err("type=pkcs11 takes uri= alone".into())),
        (_, Some(_), None) => {}
        _ => return Err(err(format!("type={kind} takes path= alone"))),
    }
    Ok(Spec { kind, path: path.map(PathBuf::from), uri })
}

fn read_secret(option: &str, path: &PathBuf) -> Result<Zeroizing<Vec<u8>>, CliError> {
    fs::read(path)
        .map(Zeroizing::new)
        .map_err(|e| CliError::usage(format!("{option}: cannot read {}: {e}", path.display())))
}

fn read_pem(option: &str, path: &PathBuf) -> Result<Zeroizing<String>, CliError> {
    fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| CliError::usage(format!("{option}: cannot read {}: {e}", path.display())))
}

fn key_error(option: &'static str) -> impl Fn(hsm_keyring::Error) -> CliError {
    move |e| CliError::from_lib(option, e)
}

fn unwrap_key(tokens: &mut Tokens, text: &str) -> Result<Arc<dyn LegacyUnwrapKey>, CliError> {
    const OPT: &str = "--legacy-wrap";
    let spec = parse(OPT, text, &["aes", "rsa", "pkcs11"])?;
    Ok(match (spec.kind.as_str(), &spec.path, &spec.uri) {
        ("aes", Some(p), _) => Arc::new(MemoryAesWrapKey::new(&read_secret(OPT, p)?).map_err(key_error(OPT))?),
        ("rsa", Some(p), _) => {
            let pem = read_pem(OPT, p)?;
            Arc::new(MemoryLegacyRsaKey::from_private_pem(&pem).map_err(key_error(OPT))?)
        }
        (_, _, Some(uri)) => {
            let uri = tokens.parse_uri(uri)?;
            let token = tokens.token(&uri)?;
            if tokens.key_kind(&token, &uri)? == KeyKind::Rsa {
                Arc::new(Pkcs11LegacyRsaKey::new(token, &uri).map_err(key_error(OPT))?)
            } else {
                Arc::new(Pkcs11AesWrapKey::new(token, &uri).map_err(key_error(OPT))?)
            }
        }
        _ => unreachable!("checked by parse"),
    })
}

fn verify_key(tokens: &mut Tokens, text: &str) -> Result<Arc<dyn LegacyVerifyKey>, CliError> {
    const OPT: &str = "--legacy-sign";
    let spec = parse(OPT, text, &["hmac", "rsa", "pkcs11"])?;
    Ok(match (spec.kind.as_str(), &spec.path, &spec.uri) {
        ("hmac", Some(p), _) => Arc::new(MemoryHmacKey::new(&read_secret(OPT, p)?).map_err(key_error(OPT))?),
        ("rsa", Some(p), _) => {
            let pem = read_pem(OPT, p)?;
            let key = if pem.contains("PRIVATE KEY") {
                MemoryLegacyRsaKey::from_private_pem(&pem)
            } else {
                MemoryLegacyRsaKey::from_public_pem(&pem)
            };
            Arc::new(key.map_err(key_error(OPT))?)
        }
        (_, _, Some(uri)) => {
            let uri = tokens.parse_uri(uri)?;
            let token = tokens.token(&uri)?;
            if tokens.key_kind(&token, &uri)? == KeyKind::Rsa {
                Arc::new(Pkcs11LegacyRsaKey::new(token, &uri).map_err(key_error(OPT))?)
            } else {
                Arc::new(Pkcs11HmacKey::new(token, &uri).map_err(key_error(OPT))?)
            }
        }
        _ => unreachable!("checked by parse"),
    })
}

/// The legacy policy the options ask for: `None` without `--legacy`.
pub fn policy(args: &LegacyArgs, tokens: &mut Tokens, table: &TableConfig) -> Result<Option<LegacyPolicy>, CliError> {
    if !args.legacy {
        return Ok(None);
    }
    let sign = args.legacy_sign.as_deref().ok_or_else(|| {
        CliError::usage("--legacy needs --legacy-sign SPEC (the key that verifies legacy signatures)")
    })?;
    let verify = verify_key(tokens, sign)?;
    let materials = match (&args.legacy_wrap, &args.legacy_static) {
        (Some(w), _) => LegacyMaterials::wrapped(unwrap_key(tokens, w)?, verify),
        (None, Some(s)) => {
            const OPT: &str = "--legacy-static";
            let spec = parse(OPT, s, &["aes"])?;
            let path = spec.path.as_ref().ok_or_else(|| CliError::usage(format!("{OPT}: type=aes takes path=")))?;
            LegacyMaterials::static_key(&read_secret(OPT, path)?, verify).map_err(key_error(OPT))?
        }
        (None, None) => LegacyMaterials::sign_only(verify),
    };
    let config = LegacyConfig::from_table(table, materials).map_err(key_error("legacy table configuration"))?;
    Ok(Some(LegacyPolicy::ReadLegacyWriteNew(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_refuse_mistakes() {
        let s = parse("--legacy-wrap", "type=aes,path=k.bin", &["aes", "rsa", "pkcs11"]).unwrap();
        assert_eq!((s.kind.as_str(), s.path.unwrap()), ("aes", PathBuf::from("k.bin")));
        let s = parse("--legacy-sign", "type=pkcs11,uri=pkcs11:object=h%2Cx", &["hmac", "pkcs11"]).unwrap();
        assert_eq!(s.uri.as_deref(), Some("pkcs11:object=h%2Cx"));
        for bad in [
            "path=k",
            "type=des,path=k",
            "type=aes",
            "type=aes,path=a,path=b",
            "type=aes,uri=x",
            "type=pkcs11,path=k",
            "nonsense",
        ] {
            assert!(parse("--legacy-wrap", bad, &["aes", "rsa", "pkcs11"]).is_err(), "{bad}");
        }
        let err =
            parse("--legacy-sign", "type=pkcs11,uri=pkcs11:x?pin-value=secret,path=p", &["pkcs11"]).err().unwrap();
        assert!(!err.message.contains("secret"), "{}", err.message);
    }

    #[test]
    fn a_quoted_uri_is_taken_whole() {
        let kinds = ["aes", "rsa", "pkcs11"];
        let uri = "pkcs11:token=a,b;object=wrap,name=x;type=secret-key?pin-source=file:/p,q";
        for q in ['"', '\''] {
            for option in ["--legacy-wrap", "--legacy-sign"] {
                let s = parse(option, &format!("type=pkcs11,uri={q}{uri}{q}"), &kinds).unwrap();
                assert_eq!((s.kind.as_str(), s.uri.as_deref(), s.path), ("pkcs11", Some(uri), None));
                // The URI may come first too.
                let s = parse(option, &format!("uri={q}{uri}{q},type=pkcs11"), &kinds).unwrap();
                assert_eq!(s.uri.as_deref(), Some(uri));
            }
        }
        let s = parse("--legacy-wrap", "type=aes,path=\"keys, old/k.bin\"", &kinds).unwrap();
        assert_eq!(s.path, Some(PathBuf::from("keys, old/k.bin")));
        // Unquoted, the comma is refused: the URI's end cannot be told.
        let e = parse("--legacy-wrap", &format!("type=pkcs11,uri={uri}"), &kinds).err().unwrap();
        assert!(e.message.contains("uri=\"pkcs11:...\""), "{}", e.message);
    }

    #[test]
    fn unbalanced_quotes_are_refused() {
        let kinds = ["hmac", "rsa", "pkcs11"];
        for (bad, says) in [
            ("type=pkcs11,uri=\"pkcs11:object=k;type=secret-key", "has no closing quote"),
            ("type=pkcs11,uri='pkcs11:object=k\"", "has no closing quote"),
            ("type=pkcs11,uri=\"pkcs11:object=k\"x", "must be followed by `,` or the end"),
            ("type=pkcs11,uri=\"pkcs11:a\",uri=\"pkcs11:b\"", "`uri` given twice"),
        ] {
            let e = parse("--legacy-sign", bad, &kinds).err().unwrap();
            assert!(e.message.starts_with("--legacy-sign `"), "{}", e.message);
            assert!(e.message.contains(says), "{bad}: {}", e.message);
        }
        let e = parse("--legacy-sign", "type=pkcs11,uri=\"pkcs11:token=t?pin-value=TOP,SECRET", &kinds).err().unwrap();
        assert!(!e.message.contains("TOP") && !e.message.contains("SECRET"), "{}", e.message);
    }
}
