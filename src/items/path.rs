//! Canonical paths: how an attribute is named in AAD and in the signed record.
//!
//! For a top-level attribute: the UTF-8 table name, the depth as a u64
//! (always 1 here), then `$`, the name's length as a u64 and the UTF-8 name.
//! The length counts UTF-16 code units, not bytes: the reference
//! implementation measures its strings that way (the same number for ASCII
//! names; "名前" counts 2). Sorting attributes by canonical path (bytewise)
//! puts shorter names first.

/// The canonical path of the top-level attribute `name` in table `table`.
pub(crate) fn canonical_path(table: &str, name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(table.len() + 17 + name.len());
    out.extend_from_slice(table.as_bytes());
    out.extend_from_slice(&1u64.to_be_bytes());
    out.push(b'$');
    out.extend_from_slice(&(name.encode_utf16().count() as u64).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::canonical_path;

    #[test]
    fn layout_and_order() {
        let p = canonical_path("tbl", "é");
        let expected: Vec<u8> =
            [&b"tbl"[..], &[0, 0, 0, 0, 0, 0, 0, 1], b"$", &[0, 0, 0, 0, 0, 0, 0, 1], &[0xC3, 0xA9]].concat();
        assert_eq!(p, expected);
        // An astral character is two UTF-16 code units (four UTF-8 bytes).
        assert_eq!(canonical_path("t", "\u{1F600}")[10..18], 2u64.to_be_bytes());
        // Shorter names sort first, then bytewise.
        assert!(canonical_path("t", "zz") < canonical_path("t", "aaa"));
        assert!(canonical_path("t", "ab") < canonical_path("t", "b_"));
    }
}
