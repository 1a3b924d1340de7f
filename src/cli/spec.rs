//! `--wrapping-key SPEC` parsing: a comma-separated list of `name=value`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::exit::CliError;

/// One wrapping key as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySpec {
    /// A key in a PKCS#11 token, named by an RFC 7512 URI.
    Pkcs11 { uri: String, namespace: Option<String>, name: Option<String>, padding: Option<String> },
    /// A raw AES key file (16, 24 or 32 raw bytes).
    Aes { path: PathBuf, namespace: String, name: String },
    /// A raw RSA key in a PEM file.
    Rsa { path: PathBuf, namespace: String, name: String, padding: String },
}

const KNOWN: &[&str] = &["type", "uri", "path", "namespace", "name", "padding"];

impl KeySpec {
    /// Parse `type=...,uri=...` etc. A `uri=` value may itself contain commas.
    pub fn parse(text: &str) -> Result<Self, CliError> {
        let mut fields: BTreeMap<String, String> = BTreeMap::new();
        let mut current: Option<String> = None;
        for part in text.split(',') {
            let starts_field = part.split_once('=').filter(|(k, _)| KNOWN.contains(&k.trim()));
            match (starts_field, &current) {
                (Some((k, v)), _) => {
                    let k = k.trim().to_owned();
                    if fields.contains_key(&k) {
                        return Err(CliError::usage(format!("wrapping key spec `{text}`: `{k}` given twice")));
                    }
                    fields.insert(k.clone(), v.to_owned());
                    current = Some(k);
                }
                (None, Some(k)) if k == "uri" => {
                    // A comma inside a URI: glue it back.
                    if let Some(v) = fields.get_mut("uri") {
                        v.push(',');
                        v.push_str(part);
                    }
                }
                (None, _) => {
                    return Err(CliError::usage(format!(
                        "wrapping key spec `{text}`: `{part}` is not name=value with a name among {}",
                        KNOWN.join(", ")
                    )))
                }
            }
        }
        let mut take = |k: &str| fields.remove(k).filter(|v| !v.is_empty());
        let kind = take("type")
            .ok_or_else(|| CliError::usage(format!("wrapping key spec `{text}` has no type= (pkcs11, aes or rsa)")))?;
        let need = |v: Option<String>, k: &str| {
            v.ok_or_else(|| CliError::usage(format!("wrapping key spec `{text}`: type={kind} needs {k}=")))
        };
        let spec = match kind.as_str() {
            "pkcs11" => KeySpec::Pkcs11 {
                uri: need(take("uri"), "uri")?,
                namespace: take("namespace"),
                name: take("name"),
                padding: take("padding"),
            },
            "aes" => KeySpec::Aes {
                path: PathBuf::from(need(take("path"), "path")?),
                namespace: need(take("namespace"), "namespace")?,
                name: need(take("name"), "name")?,
            },
            "rsa" => KeySpec::Rsa {
                path: PathBuf::from(need(take("path"), "path")?),
                namespace: need(take("namespace"), "namespace")?,
                name: need(take("name"), "name")?,
                padding: need(take("padding"), "padding")?,
            },
            other => {
                return Err(CliError::usage(format!(
                    "wrapping key spec `{text}`: unknown type `{other}` (expected pkcs11, aes or rsa)"
                )))
            }
        };
        if let Some(extra) = fields.keys().next() {
            return Err(CliError::usage(format!(
                "wrapping key spec `{text}`: `{extra}=` does not apply to type={kind}"
            )));
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind() {
        let s = KeySpec::parse("type=aes,path=k.bin,namespace=ns,name=n").unwrap();
        assert_eq!(s, KeySpec::Aes { path: "k.bin".into(), namespace: "ns".into(), name: "n".into() });
        let s = KeySpec::parse("type=pkcs11,uri=pkcs11:token=a,b;object=k?pin-source=file:/p,name=x").unwrap();
        assert_eq!(
            s,
            KeySpec::Pkcs11 {
                uri: "pkcs11:token=a,b;object=k?pin-source=file:/p".into(),
                namespace: None,
                name: Some("x".into()),
                padding: None
            }
        );
        let s = KeySpec::parse("type=rsa,path=k.pem,namespace=ns,name=n,padding=oaep-sha256").unwrap();
        assert!(matches!(s, KeySpec::Rsa { ref padding, .. } if padding == "oaep-sha256"));
    }

    #[test]
    fn refuses_bad_specs() {
        for bad in [
            "",
            "path=x",
            "type=aes,path=k",
            "type=nope,uri=x",
            "type=aes,path=k,namespace=n,name=m,padding=pkcs1",
            "type=pkcs11,path=k",
            "type=aes,path=k,path=j,namespace=n,name=m",
            "type=aes,junk,namespace=n,name=m,path=k",
        ] {
            assert!(KeySpec::parse(bad).is_err(), "{bad}");
        }
    }
}
