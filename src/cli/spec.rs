//! `--wrapping-key SPEC` parsing: a comma-separated list of `name=value`
//! ([`split_fields`] splits the legacy item key specs the same way).
//!
//! A value that contains a comma is either percent-encoded (URIs: `%2C`, as
//! every URI the command prints is) or quoted whole: `uri="pkcs11:..."` or
//! `uri='pkcs11:...'`. A spec that cannot be split unambiguously is refused.

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

/// Text with every `pin-value=` value replaced by `***`, for error messages.
/// The value is taken to run up to the next `&` or the end of the text, so a
/// PIN holding a comma or a quote is hidden whole.
pub fn redact(text: &str) -> String {
    redact_until(text, &['&'])
}

/// [`redact`] for a whole error line: a value also ends at a space, a comma,
/// a quote or a backquote, so that the rest of the line stays readable.
pub fn redact_line(text: &str) -> String {
    redact_until(text, &['&', ',', ' ', '`', '"', '\'', '\n'])
}

fn redact_until(text: &str, stops: &[char]) -> String {
    const KEY: &str = "pin-value=";
    // ASCII lower-casing keeps byte offsets.
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    while let Some(i) = lower.get(pos..).and_then(|rest| rest.find(KEY)) {
        let start = pos + i + KEY.len();
        out.push_str(&text[pos..start]);
        let rest = &text[start..];
        let end = rest.find(stops).unwrap_or(rest.len());
        out.push_str("***");
        pos = start + end;
    }
    out.push_str(&text[pos..]);
    out
}

/// One `name=value` field; `quoted` when the value was in quotes.
pub struct Field<'a> {
    pub name: &'a str,
    pub value: &'a str,
    pub quoted: bool,
}

/// Split a spec into its `name=value` fields, each name among `known`, as
/// `--wrapping-key` and the legacy key options take them: a value holding a
/// comma is quoted whole (`uri="pkcs11:..."` or `uri='...'`) or, in a URI,
/// percent-encoded. A name given twice, an unterminated quote, or a comma
/// that may belong to an unquoted URI is refused with the message returned
/// (which never shows a PIN).
pub fn split_fields<'a>(text: &'a str, known: &[&str]) -> Result<Vec<Field<'a>>, String> {
    let list = split(text, known).map_err(|e| match e {
        SplitError::NotAField(piece) => {
            // Never echo a piece that redaction hid (the tail of a PIN).
            let shown = redact(text);
            let piece = if !piece.is_empty() && shown.contains(piece) { format!("`{piece}` ") } else { String::new() };
            let hint = if text.contains("uri=") { format!("; {COMMA_HINT}") } else { String::new() };
            format!("{piece}is not name=value with a name among {}{hint}", known.join(", "))
        }
        SplitError::Unterminated(name) => format!("the quoted value of `{name}=` has no closing quote"),
        SplitError::AfterQuote(name) => format!("the quoted value of `{name}=` must be followed by `,` or the end"),
    })?;
    let mut uri_unquoted = false;
    for (i, f) in list.iter().enumerate() {
        if list[..i].iter().any(|g| g.name == f.name) {
            return Err(format!("`{}` given twice", f.name));
        }
        if f.name == "uri" {
            uri_unquoted = !f.quoted;
        } else if uri_unquoted && !f.quoted && f.value.contains([';', '?', '&']) {
            // `uri=pkcs11:object=a,name=b;type=private`: the comma may
            // belong to the URI (a key labelled `a,name=b`).
            return Err(format!("cannot tell where the URI ends; {COMMA_HINT}"));
        }
    }
    Ok(list)
}

/// Split a spec into fields, honouring quoted values.
fn split<'a>(text: &'a str, known: &[&str]) -> Result<Vec<Field<'a>>, SplitError<'a>> {
    let mut fields = Vec::new();
    let mut rest = text;
    loop {
        let (name, after) = match rest.split_once('=') {
            Some((n, a)) if !n.contains(',') && known.contains(&n.trim()) => (n.trim(), a),
            _ => {
                let piece = rest.split(',').next().unwrap_or(rest);
                return Err(SplitError::NotAField(piece));
            }
        };
        let (value, quoted, next) = match after.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let inner = &after[1..];
                let close = inner.find(q).ok_or(SplitError::Unterminated(name))?;
                let tail = &inner[close + 1..];
                let next = match tail.strip_prefix(',') {
                    Some(n) => Some(n),
                    None if tail.is_empty() => None,
                    None => return Err(SplitError::AfterQuote(name)),
                };
                (&inner[..close], true, next)
            }
            _ => match after.split_once(',') {
                Some((v, n)) => (v, false, Some(n)),
                None => (after, false, None),
            },
        };
        fields.push(Field { name, value, quoted });
        match next {
            Some(n) => rest = n,
            None => return Ok(fields),
        }
    }
}

enum SplitError<'a> {
    /// A piece that is not `known-name=value`.
    NotAField(&'a str),
    /// A quoted value without its closing quote.
    Unterminated(&'a str),
    /// Something other than `,` after a closing quote.
    AfterQuote(&'a str),
}

/// What to say when a comma probably belonged to an unquoted URI.
const COMMA_HINT: &str = "a comma inside a value must be percent-encoded (`%2C` in a URI) or the whole value \
                          quoted, as in uri=\"pkcs11:...\"";

impl KeySpec {
    /// Parse `type=...,uri=...` etc.
    pub fn parse(text: &str) -> Result<Self, CliError> {
        Self::parse_with(text, true)
    }

    /// Parse a spec whose raw keys need no namespace, name or padding (the
    /// S3 format stores none): missing ones are left empty.
    #[cfg_attr(not(feature = "s3"), allow(dead_code))]
    pub fn parse_unnamed(text: &str) -> Result<Self, CliError> {
        Self::parse_with(text, false)
    }

    fn parse_with(text: &str, names_required: bool) -> Result<Self, CliError> {
        let shown = redact(text);
        let err = |what: String| CliError::usage(format!("wrapping key spec `{shown}`: {what}"));
        let list = split_fields(text, KNOWN).map_err(err)?;
        let mut fields: BTreeMap<&str, &str> = list.iter().map(|f| (f.name, f.value)).collect();
        let mut take = |k: &str| fields.remove(k).filter(|v| !v.is_empty()).map(str::to_owned);
        let kind = take("type").ok_or_else(|| err("no type= (pkcs11, aes or rsa)".into()))?;
        let need = |v: Option<String>, k: &str| v.ok_or_else(|| err(format!("type={kind} needs {k}=")));
        let named = |v: Option<String>, k: &str| if names_required { need(v, k) } else { Ok(v.unwrap_or_default()) };
        let spec = match kind.as_str() {
            "pkcs11" => KeySpec::Pkcs11 {
                uri: need(take("uri"), "uri")?,
                namespace: take("namespace"),
                name: take("name"),
                padding: take("padding"),
            },
            "aes" => KeySpec::Aes {
                path: PathBuf::from(need(take("path"), "path")?),
                namespace: named(take("namespace"), "namespace")?,
                name: named(take("name"), "name")?,
            },
            "rsa" => KeySpec::Rsa {
                path: PathBuf::from(need(take("path"), "path")?),
                namespace: named(take("namespace"), "namespace")?,
                name: named(take("name"), "name")?,
                padding: named(take("padding"), "padding")?,
            },
            other => return Err(err(format!("unknown type `{other}` (expected pkcs11, aes or rsa)"))),
        };
        if let Some(extra) = fields.keys().next() {
            return Err(err(format!("`{extra}=` does not apply to type={kind}")));
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
        let s = KeySpec::parse("type=pkcs11,uri=pkcs11:token=a%2Cb;object=k?pin-source=file:/p,name=x").unwrap();
        assert_eq!(
            s,
            KeySpec::Pkcs11 {
                uri: "pkcs11:token=a%2Cb;object=k?pin-source=file:/p".into(),
                namespace: None,
                name: Some("x".into()),
                padding: None
            }
        );
        let s = KeySpec::parse("type=rsa,path=k.pem,namespace=ns,name=n,padding=oaep-sha256").unwrap();
        assert!(matches!(s, KeySpec::Rsa { ref padding, .. } if padding == "oaep-sha256"));
    }

    #[test]
    fn quoted_values_are_taken_whole() {
        for q in ['"', '\''] {
            let text = format!("type=pkcs11,uri={q}pkcs11:token=a,b;object=rsa3k,name=foo;type=private{q},name=x");
            let s = KeySpec::parse(&text).unwrap();
            assert_eq!(
                s,
                KeySpec::Pkcs11 {
                    uri: "pkcs11:token=a,b;object=rsa3k,name=foo;type=private".into(),
                    namespace: None,
                    name: Some("x".into()),
                    padding: None
                }
            );
        }
        let s = KeySpec::parse("type=aes,path=\"a,b.bin\",namespace=ns,name='n,1'").unwrap();
        assert_eq!(s, KeySpec::Aes { path: "a,b.bin".into(), namespace: "ns".into(), name: "n,1".into() });
    }

    #[test]
    fn a_comma_in_an_unquoted_uri_is_refused() {
        for bad in [
            // The URI of a key labelled `rsa3k,name=foo`, pasted with a raw comma.
            "type=pkcs11,uri=pkcs11:token=t;object=rsa3k,name=foo;type=private",
            "type=pkcs11,uri=pkcs11:token=a,b;object=k",
            "type=pkcs11,uri=pkcs11:object=k?pin-source=file:/a,b",
        ] {
            let e = KeySpec::parse(bad).unwrap_err();
            assert!(e.message.contains("%2C") && e.message.contains("uri=\""), "{}", e.message);
        }
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
            "type=pkcs11,uri=\"pkcs11:object=k",
            "type=pkcs11,uri=\"pkcs11:object=k\"x,name=n",
            "type=pkcs11,uri='pkcs11:object=k\",name=n",
        ] {
            assert!(KeySpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_never_show_a_pin() {
        for bad in [
            "type=pkcs11,uri=pkcs11:token=t?pin-value=TOPSECRET99,type=pkcs11",
            "type=pkcs11,uri=pkcs11:token=t?pin-value=TOPSECRET99,junk",
            "type=pkcs11,uri=pkcs11:token=t?pin-value=TOP,SECRET99,name=n",
            "type=pkcs11,uri=pkcs11:token=t?PIN-VALUE=TOPSECRET99&x=1,type=x",
            "type=pkcs11,uri=\"pkcs11:token=t?pin-value=TOPSECRET99\",uri=x",
            "uri=pkcs11:token=t?pin-value=TOPSECRET99",
        ] {
            let e = KeySpec::parse(bad).unwrap_err();
            assert!(!e.message.contains("TOP") && !e.message.contains("SECRET"), "{}", e.message);
            assert!(e.message.contains("***"), "{}", e.message);
        }
    }

    #[test]
    fn redaction() {
        assert_eq!(redact("pkcs11:token=t?pin-value=1,2&x=y"), "pkcs11:token=t?pin-value=***&x=y");
        assert_eq!(redact("a PIN-Value=x, rest"), "a PIN-Value=***");
        assert_eq!(
            redact_line("spec `x?pin-value=9`: bad, pin-value=8 here"),
            "spec `x?pin-value=***`: bad, pin-value=*** here"
        );
        assert_eq!(redact_line("nothing here"), "nothing here");
    }
}
