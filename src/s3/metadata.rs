//! The S3 encryption metadata: parsed from and written to the object's user
//! metadata, or split between the object and its instruction file.
//!
//! Keys are the user-metadata names as the AWS SDKs show them (without the
//! `x-amz-meta-` prefix of the HTTP headers), all lower case.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::error::{Error, Result};

/// Object user metadata (or instruction-file JSON) as a sorted map.
pub type ObjectMetadata = BTreeMap<String, String>;

/// Suffix of the instruction file's object key: `<key>.instruction`.
pub const INSTRUCTION_FILE_SUFFIX: &str = ".instruction";
/// User-metadata key the reference clients set on the instruction file object itself.
pub const INSTRUCTION_FILE_MARKER: &str = "x-amz-crypto-instr-file";

pub(crate) const V3_CIPHER: &str = "x-amz-c";
pub(crate) const V3_EDK: &str = "x-amz-3";
pub(crate) const V3_MATDESC: &str = "x-amz-m";
pub(crate) const V3_CONTEXT: &str = "x-amz-t";
pub(crate) const V3_WRAP: &str = "x-amz-w";
pub(crate) const V3_COMMITMENT: &str = "x-amz-d";
pub(crate) const V3_MESSAGE_ID: &str = "x-amz-i";
pub(crate) const V2_EDK: &str = "x-amz-key-v2";
pub(crate) const V1_EDK: &str = "x-amz-key";
pub(crate) const IV: &str = "x-amz-iv";
pub(crate) const WRAP: &str = "x-amz-wrap-alg";
pub(crate) const CEK_ALG: &str = "x-amz-cek-alg";
pub(crate) const MATDESC: &str = "x-amz-matdesc";
pub(crate) const TAG_LEN_KEY: &str = "x-amz-tag-len";
pub(crate) const UNENCRYPTED_LENGTH: &str = "x-amz-unencrypted-content-length";

/// The committing suite id (ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY), as written in `x-amz-c`.
pub const V3_SUITE_ID: u16 = 0x0073;
/// Length of the V3 message id (`x-amz-i`) and key commitment (`x-amz-d`).
pub const V3_NONCE_LEN: usize = 28;

/// Every key the formats define (instruction files may hold only these).
const S3EC_KEYS: &[&str] = &[
    V3_CIPHER,
    V3_EDK,
    V3_MATDESC,
    V3_CONTEXT,
    V3_WRAP,
    V3_COMMITMENT,
    V3_MESSAGE_ID,
    V2_EDK,
    V1_EDK,
    IV,
    WRAP,
    CEK_ALG,
    MATDESC,
    TAG_LEN_KEY,
    UNENCRYPTED_LENGTH,
];

/// The object format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum S3Format {
    /// The current format: committing suite 0x0073 (HKDF-SHA512 derived
    /// key, 28-byte key commitment), metadata `x-amz-c`, `x-amz-3`, ...
    V3,
    /// AES-256-GCM with a random IV, metadata `x-amz-key-v2`, `x-amz-iv`, ...
    V2,
    /// Legacy AES-256-CBC, metadata `x-amz-key`; read only, behind an opt-in.
    V1,
}

/// How the data key is wrapped (`x-amz-w` / `x-amz-wrap-alg`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WrapAlgorithm {
    /// AES-GCM under an AES key (`AES/GCM`, V3 code `02`).
    AesGcm,
    /// RSA-OAEP with SHA-1 (`RSA-OAEP-SHA1`, V3 code `22`).
    RsaOaepSha1,
    /// Anything else (`kms+context`, `kms`, legacy `AESWrap`, `RSA`, ...), as written.
    Other(String),
}

impl WrapAlgorithm {
    /// The V2 name (`x-amz-wrap-alg`).
    pub fn name(&self) -> &str {
        match self {
            WrapAlgorithm::AesGcm => "AES/GCM",
            WrapAlgorithm::RsaOaepSha1 => "RSA-OAEP-SHA1",
            WrapAlgorithm::Other(s) => s,
        }
    }

    fn from_name(name: &str) -> Self {
        match name {
            "AES/GCM" => WrapAlgorithm::AesGcm,
            "RSA-OAEP-SHA1" => WrapAlgorithm::RsaOaepSha1,
            other => WrapAlgorithm::Other(other.to_owned()),
        }
    }

    fn v3_code(&self) -> Result<&'static str> {
        match self {
            WrapAlgorithm::AesGcm => Ok("02"),
            WrapAlgorithm::RsaOaepSha1 => Ok("22"),
            WrapAlgorithm::Other(s) if s == "kms+context" => Ok("12"),
            WrapAlgorithm::Other(s) => Err(bad(V3_WRAP, format!("`{s}` has no V3 code"))),
        }
    }

    fn from_v3_code(code: &str) -> Result<Self> {
        match code {
            "02" => Ok(WrapAlgorithm::AesGcm),
            "22" => Ok(WrapAlgorithm::RsaOaepSha1),
            "12" => Ok(WrapAlgorithm::Other("kms+context".into())),
            other => Err(bad(V3_WRAP, format!("unknown wrapping algorithm code `{other}` (expected 02, 12 or 22)"))),
        }
    }
}

fn bad(field: &str, reason: impl Into<String>) -> Error {
    Error::S3Metadata { field: field.to_owned(), reason: reason.into() }
}

/// Where an object's encryption metadata is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetadataLocation {
    /// In the object's user metadata.
    ObjectMetadata,
    /// In the instruction file `<key>.instruction` (the object holds none of
    /// the wrapped-key fields).
    InstructionFile,
}

/// The encryption metadata of one object: its format, the wrapped data key,
/// and what the content cipher needs (IV, or message id and commitment).
#[derive(Clone, PartialEq, Eq)]
pub struct S3Metadata {
    pub(crate) format: S3Format,
    pub(crate) encrypted_data_key: Vec<u8>,
    pub(crate) wrap: WrapAlgorithm,
    pub(crate) material_description: BTreeMap<String, String>,
    /// `x-amz-t` (KMS keyrings only), kept as written.
    pub(crate) kms_context: Option<String>,
    /// V2: 12-byte IV; V1: 16-byte IV; V3: empty.
    pub(crate) iv: Vec<u8>,
    /// V3: the 28-byte message id (`x-amz-i`).
    pub(crate) message_id: [u8; V3_NONCE_LEN],
    /// V3: the 28-byte key commitment (`x-amz-d`).
    pub(crate) commitment: [u8; V3_NONCE_LEN],
}

impl std::fmt::Debug for S3Metadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Metadata")
            .field("format", &self.format)
            .field("wrap", &self.wrap)
            .field("encrypted_data_key_len", &self.encrypted_data_key.len())
            .field("material_description", &self.material_description)
            .finish()
    }
}

fn get<'a>(map: &'a ObjectMetadata, key: &str) -> Result<&'a str> {
    map.get(key).map(String::as_str).ok_or_else(|| bad(key, "missing"))
}

fn b64(map: &ObjectMetadata, key: &str) -> Result<Vec<u8>> {
    B64.decode(get(map, key)?).map_err(|e| bad(key, format!("not base64: {e}")))
}

fn fixed<const N: usize>(map: &ObjectMetadata, key: &str) -> Result<[u8; N]> {
    let bytes = b64(map, key)?;
    bytes.as_slice().try_into().map_err(|_| bad(key, format!("{} bytes, expected {N}", bytes.len())))
}

fn json_map(map: &ObjectMetadata, key: &str) -> Result<BTreeMap<String, String>> {
    match map.get(key) {
        None => Ok(BTreeMap::new()),
        Some(text) => serde_json::from_str(text).map_err(|e| bad(key, format!("not a JSON object of strings: {e}"))),
    }
}

impl S3Metadata {
    /// Where the metadata of an object with user metadata `object` is:
    /// in it when it holds a wrapped data key (`x-amz-3`, `x-amz-key-v2` or
    /// `x-amz-key`), else in the instruction file. A V2 object with an
    /// instruction file carries no encryption metadata at all, so an object
    /// that is not encrypted also reports the instruction file: a missing
    /// `<key>.instruction` then means "not encrypted".
    pub fn location(object: &ObjectMetadata) -> MetadataLocation {
        if [V3_EDK, V2_EDK, V1_EDK].iter().any(|k| object.contains_key(*k)) {
            MetadataLocation::ObjectMetadata
        } else {
            MetadataLocation::InstructionFile
        }
    }

    /// Parse the metadata of an object that carries it in its user metadata
    /// (other user metadata is ignored).
    pub fn from_object_metadata(object: &ObjectMetadata) -> Result<Self> {
        let present: Vec<&str> = [V3_EDK, V2_EDK, V1_EDK].into_iter().filter(|k| object.contains_key(*k)).collect();
        match present.as_slice() {
            [V3_EDK] => Self::parse_v3(object),
            [V2_EDK] => Self::parse_v2(object, S3Format::V2),
            [V1_EDK] => Self::parse_v2(object, S3Format::V1),
            [] => Err(bad(
                V3_EDK,
                "no wrapped data key (x-amz-3, x-amz-key-v2 or x-amz-key) in the object metadata: \
                 not encrypted, or the metadata is in the instruction file",
            )),
            several => Err(bad(several[0], format!("several formats' keys at once: {}", several.join(", ")))),
        }
    }

    /// Parse the metadata of an object whose wrapped key is in its
    /// instruction file: `object` is the object's user metadata (V3 keeps
    /// `x-amz-c`, `x-amz-d` and `x-amz-i` there), `instruction_file` the
    /// JSON body of `<key>.instruction`.
    pub fn from_instruction_file(object: &ObjectMetadata, instruction_file: &str) -> Result<Self> {
        let file: BTreeMap<String, serde_json::Value> = serde_json::from_str(instruction_file)
            .map_err(|e| bad("instruction file", format!("not a JSON object: {e}")))?;
        let mut merged = ObjectMetadata::new();
        for (key, value) in file {
            if !S3EC_KEYS.contains(&key.as_str()) {
                return Err(bad("instruction file", format!("holds `{key}`, not an S3 encryption metadata key")));
            }
            let serde_json::Value::String(value) = value else {
                return Err(bad(&key, "not a string in the instruction file"));
            };
            merged.insert(key, value);
        }
        // As the reference clients: the V3 content fields live only in the
        // object metadata, and a V1/V2 object carries no content fields of
        // its own when its metadata is in an instruction file.
        for key in [V3_CIPHER, V3_COMMITMENT, V3_MESSAGE_ID] {
            if merged.contains_key(key) {
                return Err(bad(key, "found in the instruction file; it belongs to the object metadata only"));
            }
        }
        if merged.contains_key(V3_EDK) {
            for key in [V3_CIPHER, V3_COMMITMENT, V3_MESSAGE_ID] {
                if let Some(value) = object.get(key) {
                    merged.insert(key.to_owned(), value.clone());
                }
            }
        } else {
            for key in [CEK_ALG, IV, WRAP] {
                if object.contains_key(key) {
                    return Err(bad(key, "in the object metadata while the metadata is in the instruction file"));
                }
            }
        }
        Self::from_object_metadata(&merged)
    }

    fn parse_v3(map: &ObjectMetadata) -> Result<Self> {
        let cipher = get(map, V3_CIPHER)?;
        if cipher != V3_SUITE_ID.to_string() {
            return Err(bad(V3_CIPHER, format!("unsupported content suite `{cipher}` (expected 115)")));
        }
        Ok(S3Metadata {
            format: S3Format::V3,
            encrypted_data_key: b64(map, V3_EDK)?,
            wrap: WrapAlgorithm::from_v3_code(get(map, V3_WRAP)?)?,
            material_description: json_map(map, V3_MATDESC)?,
            kms_context: map.get(V3_CONTEXT).cloned(),
            iv: Vec::new(),
            message_id: fixed(map, V3_MESSAGE_ID)?,
            commitment: fixed(map, V3_COMMITMENT)?,
        })
    }

    fn parse_v2(map: &ObjectMetadata, format: S3Format) -> Result<Self> {
        let (edk_key, iv_len) = match format {
            S3Format::V1 => (V1_EDK, 16),
            _ => (V2_EDK, 12),
        };
        let iv = b64(map, IV)?;
        if iv.len() != iv_len {
            return Err(bad(IV, format!("{} bytes, expected {iv_len}", iv.len())));
        }
        let wrap = match (format, map.get(WRAP)) {
            (_, Some(name)) => WrapAlgorithm::from_name(name),
            // As the Java client: without a wrapping algorithm a V1 key is
            // RSA when longer than 48 bytes (an AES-256 key plus padding), else AES.
            (S3Format::V1, None) => {
                let long = B64.decode(get(map, edk_key)?).is_ok_and(|k| k.len() > 48);
                WrapAlgorithm::Other(if long { "RSA" } else { "AES" }.into())
            }
            (_, None) => return Err(bad(WRAP, "missing")),
        };
        if format == S3Format::V2 {
            let cek = get(map, CEK_ALG)?;
            if cek != "AES/GCM/NoPadding" {
                return Err(bad(CEK_ALG, format!("unsupported content cipher `{cek}` (expected AES/GCM/NoPadding)")));
            }
            // Optional (the Java client does not require it); 128 when present.
            let tag_len = map.get(TAG_LEN_KEY).map_or("128", String::as_str);
            if tag_len != "128" {
                return Err(bad(TAG_LEN_KEY, format!("unsupported tag length `{tag_len}` (expected 128)")));
            }
        } else if let Some(cek) = map.get(CEK_ALG) {
            if cek != "AES/CBC/PKCS5Padding" {
                return Err(bad(CEK_ALG, format!("unsupported legacy content cipher `{cek}`")));
            }
        }
        Ok(S3Metadata {
            format,
            encrypted_data_key: b64(map, edk_key)?,
            wrap,
            material_description: json_map(map, MATDESC)?,
            kms_context: None,
            iv,
            message_id: [0; V3_NONCE_LEN],
            commitment: [0; V3_NONCE_LEN],
        })
    }

    /// The object format.
    pub fn format(&self) -> S3Format {
        self.format
    }

    /// How the data key is wrapped.
    pub fn wrap_algorithm(&self) -> &WrapAlgorithm {
        &self.wrap
    }

    /// The wrapped data key (`x-amz-3`, `x-amz-key-v2` or `x-amz-key`, decoded).
    pub fn encrypted_data_key(&self) -> &[u8] {
        &self.encrypted_data_key
    }

    /// The material description (`x-amz-m` or `x-amz-matdesc`). Not
    /// authenticated by the format: it names a key, it proves nothing.
    pub fn material_description(&self) -> &BTreeMap<String, String> {
        &self.material_description
    }

    /// The plaintext length of a body of `body_len` bytes (for V3 and V2,
    /// the body less its 16-byte tag; `None` for a body shorter than the
    /// tag, and for V1, whose padding is known only once decrypted).
    /// Ranged reads map plaintext offsets to the same body offsets.
    pub fn plaintext_len(&self, body_len: u64) -> Option<u64> {
        match self.format {
            S3Format::V1 => None,
            _ => body_len.checked_sub(crate::crypto::TAG_LEN as u64),
        }
    }

    /// Every metadata entry, for the object's user metadata.
    pub fn to_object_metadata(&self) -> Result<ObjectMetadata> {
        let mut map = ObjectMetadata::new();
        match self.format {
            S3Format::V3 => {
                map.insert(V3_CIPHER.into(), V3_SUITE_ID.to_string());
                map.insert(V3_EDK.into(), B64.encode(&self.encrypted_data_key));
                map.insert(V3_WRAP.into(), self.wrap.v3_code()?.into());
                map.insert(V3_COMMITMENT.into(), B64.encode(self.commitment));
                map.insert(V3_MESSAGE_ID.into(), B64.encode(self.message_id));
                if !self.material_description.is_empty() {
                    map.insert(V3_MATDESC.into(), to_json(&self.material_description)?);
                }
                if let Some(context) = &self.kms_context {
                    map.insert(V3_CONTEXT.into(), context.clone());
                }
            }
            S3Format::V2 => {
                map.insert(V2_EDK.into(), B64.encode(&self.encrypted_data_key));
                map.insert(IV.into(), B64.encode(&self.iv));
                map.insert(CEK_ALG.into(), "AES/GCM/NoPadding".into());
                map.insert(TAG_LEN_KEY.into(), "128".into());
                map.insert(WRAP.into(), self.wrap.name().into());
                map.insert(MATDESC.into(), to_json(&self.material_description)?);
            }
            S3Format::V1 => return Err(Error::config("V1 (AES-CBC) objects are read only; nothing writes them")),
        }
        Ok(map)
    }

    /// The metadata split for an instruction file: what the object's user
    /// metadata keeps (V3: `x-amz-c`, `x-amz-d`, `x-amz-i`; V2: nothing)
    /// and the JSON body of `<key>.instruction` (the rest). Store the
    /// instruction file with user metadata [`INSTRUCTION_FILE_MARKER`].
    pub fn to_instruction_file(&self) -> Result<(ObjectMetadata, String)> {
        let mut all = self.to_object_metadata()?;
        let mut object = ObjectMetadata::new();
        if self.format == S3Format::V3 {
            for key in [V3_CIPHER, V3_COMMITMENT, V3_MESSAGE_ID] {
                if let Some(value) = all.remove(key) {
                    object.insert(key.to_owned(), value);
                }
            }
        }
        Ok((object, to_json(&all)?))
    }
}

fn to_json(map: &BTreeMap<String, String>) -> Result<String> {
    serde_json::to_string(map).map_err(|e| Error::crypto(format!("JSON encoding of S3 metadata: {e}")))
}

/// The object key of the instruction file of `object_key`.
pub fn instruction_file_key(object_key: &str) -> String {
    format!("{object_key}{INSTRUCTION_FILE_SUFFIX}")
}
