//! `--context KEY=VALUE` parsing.

use hsm_keyring::EncryptionContext;

use crate::exit::CliError;

/// Build an encryption context from repeated `KEY=VALUE` arguments.
pub fn parse_context(pairs: &[String]) -> Result<EncryptionContext, CliError> {
    let mut ctx = EncryptionContext::new();
    for pair in pairs {
        let (k, v) =
            pair.split_once('=').ok_or_else(|| CliError::usage(format!("--context `{pair}` is not KEY=VALUE")))?;
        if k.is_empty() {
            return Err(CliError::usage(format!("--context `{pair}` has an empty key")));
        }
        if ctx.contains_key(k) {
            return Err(CliError::usage(format!("--context key `{k}` given twice")));
        }
        ctx.insert(k, v).map_err(|e| CliError::usage(format!("--context `{pair}`: {e}")))?;
    }
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_errors() {
        let ctx = parse_context(&["a=1".into(), "b=x=y".into(), "ü=".into()]).unwrap();
        assert_eq!(ctx.get("b"), Some("x=y"));
        assert_eq!(ctx.get("ü"), Some(""));
        assert!(parse_context(&["novalue".into()]).is_err());
        assert!(parse_context(&["=v".into()]).is_err());
        assert!(parse_context(&["a=1".into(), "a=2".into()]).is_err());
        assert!(parse_context(&["aws-crypto-public-key=x".into()]).is_err());
    }
}
