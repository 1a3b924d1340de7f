//! Normalization of DynamoDB numbers, as the reference implementation does
//! it before serializing: no exponent, no leading zeros (but "0.x"), no
//! trailing fractional zeros, "-0" is "0"; refused beyond 38 significant
//! digits and outside the magnitudes DynamoDB stores (about 1E-130 to 1E126).

/// Why a number was refused.
pub(crate) type NumberError = String;

/// The normalized text of `text`, or why it is not a storable number.
pub(crate) fn normalize(text: &str) -> Result<String, NumberError> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if unsigned.is_empty() {
        return Err(format!("`{text}` is not a number"));
    }
    let positive = normalize_positive(unsigned).map_err(|e| format!("{e} in `{text}`"))?;
    let trimmed = trim_zeros(&positive);
    Ok(if negative && trimmed != "0" { format!("-{trimmed}") } else { trimmed })
}

/// Digits (without the point), digits before the point, exponent.
fn parse(text: &str) -> Result<(String, i64, i64), NumberError> {
    let bytes = text.as_bytes();
    let count_digits = |from: usize| bytes[from..].iter().take_while(|b| b.is_ascii_digit()).count();
    let before = count_digits(0);
    if before == bytes.len() {
        return Ok((text.to_owned(), before as i64, 0));
    }
    let (digits, point, rest) = if bytes[before] == b'.' {
        let after = count_digits(before + 1);
        if before + after == 0 {
            return Err("no digits".into());
        }
        let end = before + 1 + after;
        (format!("{}{}", &text[..before], &text[before + 1..end]), before, end)
    } else if before == 0 {
        return Err("no digits".into());
    } else {
        (text[..before].to_owned(), before, before)
    };
    if rest == bytes.len() {
        return Ok((digits, point as i64, 0));
    }
    if bytes[rest] != b'e' && bytes[rest] != b'E' {
        return Err(format!("invalid character at `{}`", &text[rest..]));
    }
    Ok((digits, point as i64, parse_exponent(&text[rest + 1..])?))
}

fn parse_exponent(text: &str) -> Result<i64, NumberError> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("invalid exponent".into());
    }
    // Beyond this the number is out of range whatever its digits.
    let value: i64 = digits.trim_start_matches('0').parse().unwrap_or(if digits.trim_start_matches('0').is_empty() {
        0
    } else {
        i64::MAX / 4
    });
    let value = value.min(i64::MAX / 4);
    Ok(if negative { -value } else { value })
}

fn normalize_positive(text: &str) -> Result<String, NumberError> {
    let (digits, point, exponent) = parse(text)?;
    // Drop leading zeros before the point and trailing zeros after it.
    let mut value: &str = &digits;
    let mut pos = point;
    while value.starts_with('0') && pos > 0 {
        value = &value[1..];
        pos -= 1;
    }
    while value.ends_with('0') && pos < value.len() as i64 {
        value = &value[..value.len() - 1];
    }
    let significant = value.trim_start_matches('0').trim_end_matches('0');
    if significant.len() > 38 {
        return Err("more than 38 significant digits".into());
    }
    if significant.is_empty() {
        return Ok("0".into());
    }
    let leading_zeros = (value.len() - value.trim_start_matches('0').len()) as i64;
    let new_pos = pos + exponent;
    let len = value.len() as i64;
    if new_pos <= 0 {
        if new_pos - leading_zeros < -129 {
            return Err("magnitude smaller than the supported range".into());
        }
        Ok(format!("0.{}{value}", "0".repeat((-new_pos) as usize)))
    } else if new_pos >= len {
        if new_pos - leading_zeros > 126 {
            return Err("magnitude larger than the supported range".into());
        }
        Ok(format!("{value}{}", "0".repeat((new_pos - len) as usize)))
    } else {
        let split = new_pos as usize;
        Ok(format!("{}.{}", &value[..split], &value[split..]))
    }
}

/// Remove leading zeros (keeping one before a point) and, when there is a
/// point, trailing fractional zeros (and the point if nothing follows).
fn trim_zeros(text: &str) -> String {
    let mut s = text;
    while s.len() > 1 && s.starts_with('0') && s.as_bytes()[1] != b'.' {
        s = &s[1..];
    }
    if !s.contains('.') {
        return s.to_owned();
    }
    let mut s = s.to_owned();
    while s.len() > 1 && s.ends_with('0') {
        if s.as_bytes()[s.len() - 2] == b'.' {
            s.truncate(s.len() - 2);
            break;
        }
        s.pop();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normal_forms() {
        let cases = [
            ("0", "0"),
            ("-0", "0"),
            ("+7", "7"),
            ("012.50", "12.5"),
            ("1.0", "1"),
            ("100", "100"),
            ("1e2", "100"),
            ("1.5E+3", "1500"),
            ("123.456e-2", "1.23456"),
            ("-.05", "-0.05"),
            ("5.", "5"),
            ("0.000", "0"),
            ("0e99", "0"),
            ("1e-130", &format!("0.{}1", "0".repeat(129))),
            ("9.9e125", &format!("99{}", "0".repeat(124))),
            ("-00012300", "-12300"),
            ("12345678901234567890123456789012345678", "12345678901234567890123456789012345678"),
            ("1234567890123456789012345678901234567800000", "1234567890123456789012345678901234567800000"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize(input).unwrap(), expected, "{input}");
        }
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            "-",
            "abc",
            "1.2.3",
            ".",
            "e5",
            "1e",
            "1e+",
            "1x",
            " 1",
            "123456789012345678901234567890123456789",
            "1e127",
            "1e-131",
            "1e99999999999999999999999",
        ] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
    }
}
