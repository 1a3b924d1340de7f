//! RFC 7512 `pkcs11:` URIs.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use super::pin::Pin;
use crate::error::{Error, Result};

/// Longest URI accepted, in bytes.
const MAX_URI_LEN: usize = 8192;

/// The `type` attribute: which class of object a URI names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectType {
    /// `public`: a public key.
    Public,
    /// `private`: a private key.
    Private,
    /// `cert`: a certificate.
    Cert,
    /// `secret-key`: a secret (symmetric) key.
    SecretKey,
    /// `data`: a data object.
    Data,
}

impl ObjectType {
    /// The attribute value, e.g. `secret-key`.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Public => "public",
            ObjectType::Private => "private",
            ObjectType::Cert => "cert",
            ObjectType::SecretKey => "secret-key",
            ObjectType::Data => "data",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "public" => ObjectType::Public,
            "private" => ObjectType::Private,
            "cert" => ObjectType::Cert,
            "secret-key" => ObjectType::SecretKey,
            "data" => ObjectType::Data,
            _ => return None,
        })
    }
}

/// A PKCS#11 URI (RFC 7512) naming a token, a key, and how to reach them.
///
/// ```
/// use hsm_keyring::pkcs11::{ObjectType, Pkcs11Uri};
///
/// let uri: Pkcs11Uri = "pkcs11:token=prod;object=master%202026;type=secret-key?pin-value=1234".parse()?;
/// assert_eq!(uri.object.as_deref(), Some("master 2026"));
/// assert_eq!(uri.object_type, Some(ObjectType::SecretKey));
/// // The PIN is never printed.
/// assert_eq!(uri.to_string(), "pkcs11:token=prod;object=master%202026;type=secret-key?pin-value=***");
/// assert_eq!(uri.to_path_string(), "pkcs11:token=prod;object=master%202026;type=secret-key");
/// # Ok::<(), hsm_keyring::Error>(())
/// ```
///
/// Parsing rules: the scheme is case-insensitive; attribute names are
/// case-sensitive (a known name in another case is refused with a hint);
/// percent escapes take hex digits of either case and are printed in upper
/// case; each attribute may appear once; `pin-value` and `pin-source` may not
/// both appear. Unknown attributes (such as `vendor-...`) are kept and printed
/// back but otherwise ignored.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token`: the token label.
    pub token: Option<String>,
    /// `manufacturer`: the token manufacturer.
    pub manufacturer: Option<String>,
    /// `model`: the token model.
    pub model: Option<String>,
    /// `serial`: the token serial number.
    pub serial: Option<String>,
    /// `slot-description`.
    pub slot_description: Option<String>,
    /// `slot-manufacturer`.
    pub slot_manufacturer: Option<String>,
    /// `slot-id`: the slot number.
    pub slot_id: Option<u64>,
    /// `object`: the object label (`CKA_LABEL`).
    pub object: Option<String>,
    /// `id`: the object id (`CKA_ID`) bytes.
    pub id: Option<Vec<u8>>,
    /// `type`: the object class.
    pub object_type: Option<ObjectType>,
    /// `library-manufacturer`.
    pub library_manufacturer: Option<String>,
    /// `library-description`.
    pub library_description: Option<String>,
    /// `library-version`, `major` or `major.minor`.
    pub library_version: Option<String>,
    /// `module-path` (query): the PKCS#11 module to load.
    pub module_path: Option<String>,
    /// `module-name` (query): the module's name (informational here).
    pub module_name: Option<String>,
    /// `pin-source` (query): where to read the PIN, e.g. `file:/run/secrets/pin`.
    pub pin_source: Option<String>,
    /// `pin-value` (query): the PIN itself. Never printed.
    pub pin_value: Option<Pin>,
    /// Unknown path attributes, in the order given (kept, printed, ignored).
    pub other_path: Vec<(String, String)>,
    /// Unknown query attributes, in the order given (kept, printed, ignored).
    pub other_query: Vec<(String, String)>,
}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pkcs11Uri({self})")
    }
}

const PATH_NAMES: [&str; 13] = [
    "library-description",
    "library-manufacturer",
    "library-version",
    "manufacturer",
    "model",
    "serial",
    "token",
    "slot-description",
    "slot-manufacturer",
    "slot-id",
    "object",
    "id",
    "type",
];
const QUERY_NAMES: [&str; 4] = ["module-name", "module-path", "pin-source", "pin-value"];

impl Pkcs11Uri {
    /// Parse a `pkcs11:` URI.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidUri { uri: redact(text), reason };
        if text.len() > MAX_URI_LEN {
            return Err(invalid(format!("longer than {MAX_URI_LEN} bytes")));
        }
        let rest = match text.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("pkcs11:") => &text[7..],
            _ => return Err(invalid("it must start with the scheme `pkcs11:`".into())),
        };
        if let Some(c) = rest.chars().find(|c| c.is_whitespace() || c.is_control() || *c == '#') {
            return Err(invalid(format!("character {c:?} must be percent-encoded")));
        }
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut uri = Pkcs11Uri::default();
        let mut seen: Vec<String> = Vec::new();
        for (part, is_query) in split_attrs(path, ';')
            .map(|p| (p, false))
            .chain(query.into_iter().flat_map(|q| split_attrs(q, '&')).map(|p| (p, true)))
        {
            let part = part.map_err(|()| invalid("empty attribute (doubled `;` or `&`)".into()))?;
            let (name, raw) =
                part.split_once('=').ok_or_else(|| invalid(format!("attribute `{part}` has no `=value`")))?;
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return Err(invalid(format!("bad attribute name `{name}`")));
            }
            if !is_query && name.contains('/') {
                return Err(invalid(format!("bad attribute name `{name}`")));
            }
            if seen.iter().any(|s| s == name) {
                return Err(invalid(format!("attribute `{name}` appears more than once")));
            }
            seen.push(name.to_owned());
            let known: &[&str] = if is_query { &QUERY_NAMES } else { &PATH_NAMES };
            let other: &[&str] = if is_query { &PATH_NAMES } else { &QUERY_NAMES };
            if other.contains(&name) {
                let (want, got) = if is_query { ("path", "query") } else { ("query", "path") };
                return Err(invalid(format!("`{name}` belongs in the {want}, not in the {got}")));
            }
            if !known.contains(&name) {
                let lower = name.to_ascii_lowercase();
                if known.contains(&lower.as_str()) || other.contains(&lower.as_str()) {
                    return Err(invalid(format!(
                        "unknown attribute `{name}` (attribute names are case-sensitive: use `{lower}`)"
                    )));
                }
            }
            let bytes = percent_decode(raw).map_err(invalid)?;
            let text_value = || {
                String::from_utf8(bytes.clone())
                    .map_err(|_| invalid(format!("value of `{name}` is not UTF-8 after percent-decoding")))
            };
            match name {
                "token" => uri.token = Some(text_value()?),
                "manufacturer" => uri.manufacturer = Some(text_value()?),
                "model" => uri.model = Some(text_value()?),
                "serial" => uri.serial = Some(text_value()?),
                "slot-description" => uri.slot_description = Some(text_value()?),
                "slot-manufacturer" => uri.slot_manufacturer = Some(text_value()?),
                "library-manufacturer" => uri.library_manufacturer = Some(text_value()?),
                "library-description" => uri.library_description = Some(text_value()?),
                "object" => uri.object = Some(text_value()?),
                "id" => uri.id = Some(bytes.clone()),
                "slot-id" => {
                    let v = text_value()?;
                    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(invalid(format!("slot-id `{v}` is not a decimal number")));
                    }
                    uri.slot_id = Some(v.parse().map_err(|_| invalid(format!("slot-id `{v}` is too large")))?);
                }
                "library-version" => {
                    let v = text_value()?;
                    let ok = match v.split_once('.') {
                        Some((a, b)) => is_digits(a) && is_digits(b),
                        None => is_digits(&v),
                    };
                    if !ok {
                        return Err(invalid(format!("library-version `{v}` is not `major` or `major.minor`")));
                    }
                    uri.library_version = Some(v);
                }
                "type" => {
                    let v = text_value()?;
                    uri.object_type = Some(ObjectType::parse(&v).ok_or_else(|| {
                        invalid(format!("unknown type `{v}` (expected public, private, cert, secret-key or data)"))
                    })?);
                }
                "module-path" => uri.module_path = Some(text_value()?),
                "module-name" => uri.module_name = Some(text_value()?),
                "pin-source" => uri.pin_source = Some(text_value()?),
                "pin-value" => uri.pin_value = Some(Pin::new(bytes.clone())),
                _ if is_query => uri.other_query.push((name.to_owned(), text_value()?)),
                _ => uri.other_path.push((name.to_owned(), text_value()?)),
            }
        }
        if uri.pin_value.is_some() && uri.pin_source.is_some() {
            return Err(invalid("`pin-value` and `pin-source` may not both be given".into()));
        }
        Ok(uri)
    }

    /// The URI without its query (no module path, no PIN attributes): the
    /// form to show as a key's name.
    pub fn to_path_string(&self) -> String {
        let mut out = String::from("pkcs11:");
        self.write_path(&mut out);
        out
    }

    /// A copy naming the same token (and module) but no object.
    pub fn token_only(&self) -> Pkcs11Uri {
        Pkcs11Uri { object: None, id: None, object_type: None, ..self.clone() }
    }

    fn write_path(&self, out: &mut String) {
        let mut first = true;
        let mut put = |out: &mut String, name: &str, value: &[u8], always_escape: bool| {
            if !first {
                out.push(';');
            }
            first = false;
            out.push_str(name);
            out.push('=');
            percent_encode(out, value, always_escape, false);
        };
        let texts: [(&str, &Option<String>); 9] = [
            ("library-description", &self.library_description),
            ("library-manufacturer", &self.library_manufacturer),
            ("library-version", &self.library_version),
            ("manufacturer", &self.manufacturer),
            ("model", &self.model),
            ("serial", &self.serial),
            ("token", &self.token),
            ("slot-description", &self.slot_description),
            ("slot-manufacturer", &self.slot_manufacturer),
        ];
        for (name, value) in texts {
            if let Some(v) = value {
                put(out, name, v.as_bytes(), false);
            }
        }
        if let Some(slot) = self.slot_id {
            put(out, "slot-id", slot.to_string().as_bytes(), false);
        }
        if let Some(v) = &self.object {
            put(out, "object", v.as_bytes(), false);
        }
        if let Some(v) = &self.id {
            put(out, "id", v, true);
        }
        if let Some(t) = self.object_type {
            put(out, "type", t.as_str().as_bytes(), false);
        }
        for (name, value) in &self.other_path {
            put(out, name, value.as_bytes(), false);
        }
    }
}

impl fmt::Display for Pkcs11Uri {
    /// Prints the URI; a `pin-value` is printed as `pin-value=***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::from("pkcs11:");
        self.write_path(&mut out);
        let mut query: Vec<(&str, &[u8])> = Vec::new();
        if let Some(v) = &self.module_name {
            query.push(("module-name", v.as_bytes()));
        }
        if let Some(v) = &self.module_path {
            query.push(("module-path", v.as_bytes()));
        }
        if let Some(v) = &self.pin_source {
            query.push(("pin-source", v.as_bytes()));
        }
        if self.pin_value.is_some() {
            query.push(("pin-value", b"***"));
        }
        for (name, value) in &self.other_query {
            query.push((name, value.as_bytes()));
        }
        for (i, (name, value)) in query.iter().enumerate() {
            out.push(if i == 0 { '?' } else { '&' });
            out.push_str(name);
            out.push('=');
            percent_encode(&mut out, value, false, true);
        }
        f.write_str(&out)
    }
}

impl FromStr for Pkcs11Uri {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Pkcs11Uri::parse(s)
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Split on `sep`; an empty input gives no attributes, an empty piece is an error.
fn split_attrs(s: &str, sep: char) -> impl Iterator<Item = std::result::Result<&str, ()>> {
    let pieces: Vec<&str> = if s.is_empty() { Vec::new() } else { s.split(sep).collect() };
    pieces.into_iter().map(|p| if p.is_empty() { Err(()) } else { Ok(p) })
}

fn percent_decode(raw: &str) -> std::result::Result<Vec<u8>, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
            match (hex(i + 1), hex(i + 2)) {
                (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                _ => {
                    let shown: String = raw.get(i..).unwrap_or("").chars().take(3).collect();
                    return Err(format!("bad percent escape `{shown}` (expected % and two hex digits)"));
                }
            }
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(out)
}

/// Percent-encode an attribute value. Besides what RFC 7512 requires, `,`
/// and `'` are always encoded (`"` and whitespace are anyway), so that a
/// printed URI can be pasted whole into a comma-separated list of settings,
/// such as the command's `--wrapping-key` specs.
fn percent_encode(out: &mut String, value: &[u8], always: bool, query: bool) {
    for &b in value {
        let plain = !always
            && (b.is_ascii_alphanumeric()
                || b"-._~:[]@!$()*+=".contains(&b)
                || (!query && b == b'&')
                || (query && b"/?|;".contains(&b)));
        if plain {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// The URI text with any pin-value replaced, for error messages.
fn redact(text: &str) -> String {
    let Some((head, query)) = text.split_once('?') else {
        return text.to_owned();
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|p| if p.starts_with("pin-value=") { "pin-value=***".to_owned() } else { p.to_owned() })
        .collect();
    format!("{head}?{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(text: &str) -> String {
        match Pkcs11Uri::parse(text) {
            Err(Error::InvalidUri { reason, uri }) => {
                assert!(!uri.contains("s3cret"), "PIN leaked into the error: {uri}");
                reason
            }
            other => panic!("{text}: expected InvalidUri, got {other:?}"),
        }
    }

    #[test]
    fn parses_all_attributes() {
        let uri = Pkcs11Uri::parse(
            "PKCS11:token=My%20Token;manufacturer=SoftHSM%20project;model=SoftHSM%20v2;serial=abc123;\
             slot-id=7;object=k%2fey;id=%01%aB%ff;type=private;library-version=2.6;vendor-x=y\
             ?module-path=/usr/lib/x.so&pin-source=file:/run/pin&vendor-q=1",
        )
        .unwrap();
        assert_eq!(uri.token.as_deref(), Some("My Token"));
        assert_eq!(uri.manufacturer.as_deref(), Some("SoftHSM project"));
        assert_eq!(uri.model.as_deref(), Some("SoftHSM v2"));
        assert_eq!(uri.serial.as_deref(), Some("abc123"));
        assert_eq!(uri.slot_id, Some(7));
        assert_eq!(uri.object.as_deref(), Some("k/ey"));
        assert_eq!(uri.id.as_deref(), Some(&[0x01, 0xAB, 0xFF][..]));
        assert_eq!(uri.object_type, Some(ObjectType::Private));
        assert_eq!(uri.library_version.as_deref(), Some("2.6"));
        assert_eq!(uri.module_path.as_deref(), Some("/usr/lib/x.so"));
        assert_eq!(uri.pin_source.as_deref(), Some("file:/run/pin"));
        assert_eq!(uri.other_path, vec![("vendor-x".to_owned(), "y".to_owned())]);
        assert_eq!(uri.other_query, vec![("vendor-q".to_owned(), "1".to_owned())]);
        // Display round-trips to an equal URI.
        let printed = uri.to_string();
        assert!(printed.contains("id=%01%AB%FF"), "{printed}");
        assert!(printed.contains("object=k%2Fey"), "{printed}");
        assert_eq!(Pkcs11Uri::parse(&printed).unwrap(), uri);
        assert!(!uri.to_path_string().contains('?'));
        assert!(uri.to_path_string().starts_with("pkcs11:"));
    }

    #[test]
    fn pin_value_redacted_everywhere() {
        let uri = Pkcs11Uri::parse("pkcs11:token=t?pin-value=s3cret").unwrap();
        assert_eq!(uri.pin_value.as_ref().map(|p| p.as_bytes().to_vec()), Some(b"s3cret".to_vec()));
        assert_eq!(uri.to_string(), "pkcs11:token=t?pin-value=***");
        assert!(!format!("{uri:?}").contains("s3cret"));
        // Errors redact it too (checked inside `reason`).
        reason("pkcs11:token=t;token=u?pin-value=s3cret");
    }

    #[test]
    fn empty_and_unusual_values() {
        let uri = Pkcs11Uri::parse("pkcs11:").unwrap();
        assert_eq!(uri, Pkcs11Uri::default());
        assert_eq!(uri.to_string(), "pkcs11:");
        let uri = Pkcs11Uri::parse("pkcs11:object=;token=a=b&c").unwrap();
        assert_eq!(uri.object.as_deref(), Some(""));
        assert_eq!(uri.token.as_deref(), Some("a=b&c"));
        assert_eq!(Pkcs11Uri::parse(&uri.to_string()).unwrap(), uri);
        let uri = Pkcs11Uri::parse("pkcs11:object=caf%C3%A9").unwrap();
        assert_eq!(uri.object.as_deref(), Some("café"));
        assert_eq!(uri.to_string(), "pkcs11:object=caf%C3%A9");
    }

    #[test]
    fn commas_and_quotes_in_values_are_printed_encoded() {
        let uri = Pkcs11Uri {
            token: Some("a,b".into()),
            object: Some("rsa3k,name=foo'\"".into()),
            pin_source: Some("file:/x,y".into()),
            ..Pkcs11Uri::default()
        };
        let printed = uri.to_string();
        assert_eq!(printed, "pkcs11:token=a%2Cb;object=rsa3k%2Cname=foo%27%22?pin-source=file:/x%2Cy");
        assert_eq!(uri.to_path_string(), "pkcs11:token=a%2Cb;object=rsa3k%2Cname=foo%27%22");
        assert!(!printed.contains([',', '\'', '"']), "{printed}");
        assert_eq!(Pkcs11Uri::parse(&printed).unwrap(), uri);
        // Raw commas are still accepted on input.
        assert_eq!(Pkcs11Uri::parse("pkcs11:token=a,b").unwrap().token.as_deref(), Some("a,b"));
    }

    #[test]
    fn malformed_uris_refused_with_reasons() {
        assert!(reason("token=a").contains("pkcs11:"));
        assert!(reason("pkcs:token=a").contains("pkcs11:"));
        assert!(reason("pkcs11:token=a%2").contains("percent"));
        assert!(reason("pkcs11:token=a%zz").contains("percent"));
        assert!(reason("pkcs11:id=%").contains("percent"));
        assert!(reason("pkcs11:token=a;token=b").contains("more than once"));
        assert!(reason("pkcs11:type=secret").contains("unknown type"));
        assert!(reason("pkcs11:type=SECRET-KEY").contains("unknown type"));
        assert!(reason("pkcs11:slot-id=x1").contains("slot-id"));
        assert!(reason("pkcs11:slot-id=99999999999999999999999").contains("slot-id"));
        assert!(reason("pkcs11:token").contains("=value"));
        assert!(reason("pkcs11:token=a;;object=b").contains("empty"));
        assert!(reason("pkcs11:Token=a").contains("case-sensitive"));
        assert!(reason("pkcs11:token=a b").contains("percent-encoded"));
        assert!(reason("pkcs11:object=%FF").contains("UTF-8"));
        assert!(reason("pkcs11:module-path=/x").contains("query"));
        assert!(reason("pkcs11:?token=x").contains("path"));
        assert!(reason("pkcs11:?pin-value=1&pin-source=file:/x").contains("both"));
        assert!(reason("pkcs11:library-version=1.x").contains("library-version"));
    }
}
