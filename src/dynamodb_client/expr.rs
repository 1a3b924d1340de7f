//! The attribute names an expression reads or writes, and the check that
//! refuses expressions on encrypted attributes before a request is sent.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::items::{CryptoAction, TableConfig};

/// Words of the expression grammar that are not attribute names (compared
/// without case): operators and the update clauses.
const KEYWORDS: &[&str] = &["and", "or", "not", "between", "in", "set", "remove", "add", "delete"];

/// The top-level attribute names of `expression`, in order: plain names and
/// `#placeholders` (resolved through `names`). Skipped: `:values`, numbers,
/// the keywords above, any name directly followed by `(` (a function), and
/// the parts of a document path after its first (`a.b[0].c` names `a`).
pub(crate) fn attribute_names(expression: &str, names: Option<&HashMap<String, String>>) -> Result<Vec<String>> {
    let chars: Vec<char> = expression.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut after_dot = false;
    while i < chars.len() {
        let c = chars[i];
        let name_char = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
        if c == '#' || c == ':' || c.is_alphabetic() || c == '_' {
            let start = i;
            i += 1;
            while i < chars.len() && name_char(chars[i]) {
                i += 1;
            }
            let token: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let is_function = j < chars.len() && chars[j] == '(';
            let nested = after_dot;
            after_dot = false;
            if nested || c == ':' || is_function || KEYWORDS.contains(&token.to_ascii_lowercase().as_str()) {
                continue;
            }
            if c == '#' {
                let resolved = names.and_then(|n| n.get(&token)).ok_or_else(|| {
                    Error::config(format!("expression `{expression}`: `{token}` is not in ExpressionAttributeNames"))
                })?;
                out.push(resolved.clone());
            } else {
                out.push(token);
            }
            continue;
        }
        if c == '.' {
            after_dot = true;
        } else if c.is_ascii_digit() && !after_dot {
            while i + 1 < chars.len() && (chars[i + 1].is_ascii_digit() || chars[i + 1] == '.') {
                i += 1;
            }
        } else if c == ']' {
            // `a[0].b`: what follows the index is still inside `a`.
        } else if !c.is_whitespace() && c != '[' && !c.is_ascii_digit() {
            after_dot = false;
        }
        i += 1;
    }
    Ok(out)
}

/// Which attributes an expression may not name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refuse {
    /// Key condition, filter, condition, projection: encrypted attributes
    /// (their stored values are ciphertext, so no comparison can hold).
    Encrypted,
    /// Update: every signed attribute (a server-side change would break the
    /// item's signature).
    Signed,
}

/// Refuse `expression` (the `what` of the request to table `table`) when it
/// names an attribute `refuse` forbids, with a usage error naming both.
pub(crate) fn check(
    config: &TableConfig,
    table: &str,
    what: &str,
    expression: Option<&String>,
    names: Option<&HashMap<String, String>>,
    refuse: Refuse,
) -> Result<()> {
    let Some(expression) = expression else { return Ok(()) };
    for name in attribute_names(expression, names)? {
        if name.starts_with(crate::items::RESERVED_PREFIX) {
            return Err(Error::config(format!(
                "table `{table}`: the {what} names `{name}`, an attribute of the encryption format"
            )));
        }
        // An attribute without an action cannot be in a stored item: leave it to the server.
        let Ok(action) = config.action_for(&name) else { continue };
        let refused = match refuse {
            Refuse::Encrypted => action == CryptoAction::EncryptAndSign,
            Refuse::Signed => action.is_signed(),
        };
        if refused {
            return Err(Error::config(format!(
                "table `{table}`: the {what} `{expression}` names attribute `{name}`, which is {}; \
                 only attributes that are not encrypted{} can be used in expressions",
                action.name(),
                if refuse == Refuse::Signed { " or signed" } else { "" },
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(e: &str, n: &[(&str, &str)]) -> Vec<String> {
        let map: HashMap<String, String> = n.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        attribute_names(e, Some(&map)).unwrap()
    }

    #[test]
    fn names_of_expressions() {
        assert_eq!(names("pk = :p AND begins_with(sk, :s)", &[]), ["pk", "sk"]);
        assert_eq!(names("#a BETWEEN :x AND :y", &[("#a", "total")]), ["total"]);
        assert_eq!(names("attribute_not_exists(pk) OR size(doc.items[2].x) > 3", &[]), ["pk", "doc"]);
        assert_eq!(names("a, b.c, d[1]", &[]), ["a", "b", "d"]);
        assert_eq!(
            names("SET #n = :v, other = list_append(other, :l) REMOVE gone", &[("#n", "name")]),
            ["name", "other", "other", "gone"]
        );
        assert_eq!(names("x IN (:a, :b) and not contains(y, :c)", &[]), ["x", "y"]);
    }

    #[test]
    fn unknown_placeholder_is_refused() {
        let e = attribute_names("#missing = :v", None).unwrap_err();
        assert!(e.to_string().contains("#missing"), "{e}");
    }
}
