//! Finding the token a URI names among a module's slots.

use super::module::{Module, TokenSummary};
use super::recovery::BACKOFF;
use super::{ErrCtx, Pkcs11Operation, Pkcs11Uri};
use crate::error::{Error, Result};

/// The one initialized token of `module` that `uri` names.
///
/// SoftHSM 2 leaves out a token whose file another process was rewriting
/// (every login does) when it read its token directory, at `C_Initialize`,
/// for the life of the process. So when no initialized token matches, the
/// module is initialized again if nothing else in the process uses it
/// ([`Module::reload_if_unused`]) and the slots are listed again, after each
/// wait of the backoff (75 ms in all), before that is reported; a URI that
/// matches several tokens is refused at once.
pub(crate) fn select_token(module: &Module, uri: &Pkcs11Uri) -> Result<TokenSummary> {
    select_from(|| module.tokens(), || module.reload_if_unused(), &module.path().display().to_string(), uri)
}

/// [`select_token`] over the listings `list` returns, one per attempt,
/// calling `reload` before each new attempt.
fn select_from(
    mut list: impl FnMut() -> Result<Vec<TokenSummary>>,
    mut reload: impl FnMut() -> bool,
    module: &str,
    uri: &Pkcs11Uri,
) -> Result<TokenSummary> {
    let mut waits = BACKOFF.iter();
    loop {
        match pick(&list()?, module, uri) {
            Pick::One(token) => return Ok(token),
            Pick::Ambiguous(error) => return Err(error),
            Pick::None(error) => match waits.next() {
                Some(wait) => {
                    std::thread::sleep(*wait);
                    reload();
                }
                None => return Err(error),
            },
        }
    }
}

enum Pick {
    One(TokenSummary),
    /// No initialized token matches (maybe only for now).
    None(Error),
    /// Several initialized tokens match.
    Ambiguous(Error),
}

fn pick(tokens: &[TokenSummary], module: &str, uri: &Pkcs11Uri) -> Pick {
    let ctx = ErrCtx { token: uri.token.clone(), key: None };
    let matches: Vec<&TokenSummary> = tokens
        .iter()
        .filter(|t| {
            uri.token.as_ref().is_none_or(|v| *v == t.label)
                && uri.serial.as_ref().is_none_or(|v| *v == t.serial)
                && uri.slot_id.is_none_or(|v| v == t.slot_id)
                && uri.manufacturer.as_ref().is_none_or(|v| *v == t.manufacturer)
                && uri.model.as_ref().is_none_or(|v| *v == t.model)
        })
        .collect();
    let available = || {
        let list: Vec<String> = tokens
            .iter()
            .filter(|t| t.initialized)
            .map(|t| format!("`{}` (serial {}, slot {})", t.label, t.serial, t.slot_id))
            .collect();
        if list.is_empty() {
            "the module has no initialized token".to_owned()
        } else {
            format!("available: {}", list.join(", "))
        }
    };
    // Uninitialized slots (SoftHSM always shows a free one) do not count.
    let initialized: Vec<&&TokenSummary> = matches.iter().filter(|t| t.initialized).collect();
    match (matches.as_slice(), initialized.as_slice()) {
        (_, [one]) => Pick::One((**one).clone()),
        ([], _) => Pick::None(ctx.step(
            Pkcs11Operation::FindToken,
            format!("no token matches {} in module {module}; {}", uri.token_only().to_path_string(), available()),
        )),
        ([one], []) => Pick::None(
            ctx.step(Pkcs11Operation::FindToken, format!("token in slot {} is not initialized", one.slot_id)),
        ),
        (_, []) => Pick::None(ctx.step(
            Pkcs11Operation::FindToken,
            format!(
                "no initialized token matches {} in module {module}; {}",
                uri.token_only().to_path_string(),
                available()
            ),
        )),
        (_, many) => Pick::Ambiguous(ctx.step(
            Pkcs11Operation::FindToken,
            format!("{} tokens match; add `token=`, `serial=` or `slot-id=`; {}", many.len(), available()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn token(slot_id: u64, label: &str, initialized: bool) -> TokenSummary {
        TokenSummary {
            slot_id,
            label: label.into(),
            manufacturer: "SoftHSM project".into(),
            model: "SoftHSM v2".into(),
            serial: format!("serial-{slot_id}"),
            initialized,
        }
    }

    fn uri(text: &str) -> Pkcs11Uri {
        Pkcs11Uri::parse(text).unwrap()
    }

    /// A module whose listings are `listings` in turn (the last one repeated),
    /// and how many times it was listed; each listing after the first must
    /// follow a reload.
    fn run(listings: Vec<Vec<TokenSummary>>, uri: &Pkcs11Uri) -> (Result<TokenSummary>, usize) {
        let calls = std::cell::Cell::new(0usize);
        let reloads = std::cell::Cell::new(0usize);
        let result = select_from(
            || {
                assert_eq!(reloads.get(), calls.get(), "a listing again without a reload first");
                calls.set(calls.get() + 1);
                Ok(listings[(calls.get() - 1).min(listings.len() - 1)].clone())
            },
            || {
                reloads.set(reloads.get() + 1);
                true
            },
            "/usr/lib/softhsm/libsofthsm2.so",
            uri,
        );
        assert_eq!(reloads.get(), calls.get() - 1, "one reload between two listings");
        (result, calls.get())
    }

    #[test]
    fn a_token_missing_while_its_file_is_rewritten_is_found_on_a_later_listing() {
        let free = token(9, "", false);
        let dev = token(3, "dev", true);
        // Absent twice (only the free slot shows), then there.
        let (found, calls) = run(
            vec![vec![free.clone()], vec![free.clone()], vec![free.clone(), dev.clone()]],
            &uri("pkcs11:token=dev"),
        );
        assert_eq!(found.unwrap(), dev);
        assert_eq!(calls, 3);
        // Shown as an uninitialized slot of its own label once, then initialized.
        let half_read = token(3, "dev", false);
        let (found, calls) =
            run(vec![vec![half_read, free.clone()], vec![dev.clone(), free]], &uri("pkcs11:token=dev"));
        assert_eq!(found.unwrap(), dev);
        assert_eq!(calls, 2);
    }

    #[test]
    fn a_token_that_stays_missing_is_reported_after_the_backoff() {
        let (err, calls) = run(vec![vec![token(9, "", false), token(1, "other", true)]], &uri("pkcs11:token=dev"));
        let err = err.unwrap_err();
        assert_eq!(calls, 1 + BACKOFF.len());
        assert_eq!(err.kind(), ErrorKind::Token, "{err}");
        let text = err.to_string();
        assert!(text.contains("no token matches pkcs11:token=dev"), "{text}");
        assert!(text.contains("available: `other`"), "{text}");
        let (err, _) = run(vec![vec![token(9, "", false)]], &uri("pkcs11:token=dev"));
        assert!(err.unwrap_err().to_string().contains("the module has no initialized token"));
    }

    #[test]
    fn several_matching_tokens_are_refused_at_once() {
        let both = vec![token(1, "a", true), token(2, "b", true), token(9, "", false)];
        let (err, calls) = run(vec![both.clone()], &uri("pkcs11:model=SoftHSM%20v2"));
        assert_eq!(calls, 1);
        assert!(err.unwrap_err().to_string().contains("2 tokens match"));
        // One of them named by serial: found.
        let (found, _) = run(vec![both], &uri("pkcs11:serial=serial-2"));
        assert_eq!(found.unwrap().label, "b");
    }
}
