//! `numeric` between its decimal text (`type numeric = string`) and PostgreSQL's
//! binary form: `ndigits`, `weight`, `sign`, `dscale` (each 16 bits, big-endian)
//! and `ndigits` base-10000 digits, the first worth `10000^weight`.

const POSITIVE: u16 = 0x0000;
const NEGATIVE: u16 = 0x4000;
const NAN: u16 = 0xC000;
const PLUS_INFINITY: u16 = 0xD000;
const MINUS_INFINITY: u16 = 0xF000;
/// The largest display scale PostgreSQL takes.
const MAX_SCALE: usize = 0x3FFF;

/// The decimal text of a binary `numeric`, as PostgreSQL prints it.
pub fn to_text(raw: &[u8]) -> Result<String, String> {
    let word = |i: usize| -> Result<u16, String> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "a numeric value is cut short".to_owned())
    };
    let ndigits = usize::from(word(0)?);
    let weight = i64::from(word(1)? as i16);
    let sign = word(2)?;
    let dscale = usize::from(word(3)?);
    let digits = (0..ndigits)
        .map(|i| word(4 + i))
        .collect::<Result<Vec<_>, _>>()?;
    match sign {
        NAN => return Ok("NaN".into()),
        PLUS_INFINITY => return Ok("Infinity".into()),
        MINUS_INFINITY => return Ok("-Infinity".into()),
        POSITIVE | NEGATIVE => {}
        other => return Err(format!("unknown numeric sign {other:#x}")),
    }
    let digit = |i: i64| -> u16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut text = String::new();
    if sign == NEGATIVE {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        text.push_str(&digit(0).to_string());
        for i in 1..=weight {
            text.push_str(&format!("{:04}", digit(i)));
        }
    }
    if dscale > 0 {
        let mut fraction = String::with_capacity(dscale + 4);
        let mut i = weight + 1;
        while fraction.len() < dscale {
            fraction.push_str(&format!("{:04}", digit(i)));
            i += 1;
        }
        fraction.truncate(dscale);
        text.push('.');
        text.push_str(&fraction);
    }
    Ok(text)
}

/// The binary `numeric` of decimal text: `[+-]digits[.digits][e[+-]digits]`,
/// `NaN`, `Infinity` or `-Infinity`.
pub fn from_text(text: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("'{text}' is not a decimal number");
    let trimmed = text.trim();
    let special = match trimmed.to_ascii_lowercase().as_str() {
        "nan" => Some(NAN),
        "infinity" | "+infinity" | "inf" => Some(PLUS_INFINITY),
        "-infinity" | "-inf" => Some(MINUS_INFINITY),
        _ => None,
    };
    if let Some(sign) = special {
        return Ok(encode(0, sign, 0, &[]));
    }
    let (negative, unsigned) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().map_err(|_| bad())?),
        None => (unsigned, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return Err(bad());
    }
    if exponent.unsigned_abs() > 1_000_000 {
        return Err(format!("'{text}' is out of numeric's range"));
    }
    let scale = (frac.len() as i64 - exponent).max(0) as usize;
    if scale > MAX_SCALE {
        return Err(format!("'{text}' has more than {MAX_SCALE} decimals"));
    }
    // The decimal digits and how many of them stand before the point.
    let mut digits: Vec<u8> = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
    let mut point = int.len() as i64 + exponent;
    if point < 0 {
        digits.splice(0..0, std::iter::repeat_n(0, (-point) as usize));
        point = 0;
    }
    // Align the point on a group of four digits, then pad to whole groups.
    let lead = (4 - point % 4) % 4;
    digits.splice(0..0, std::iter::repeat_n(0, lead as usize));
    point += lead;
    let len = (digits.len() as i64).max(point);
    digits.resize(((len + 3) / 4 * 4) as usize, 0);
    let mut groups: Vec<u16> = digits
        .chunks(4)
        .map(|c| c.iter().fold(0u16, |n, d| n * 10 + u16::from(*d)))
        .collect();
    let mut weight = point / 4 - 1;
    let leading_zeros = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..leading_zeros);
    weight -= leading_zeros as i64;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        return Ok(encode(0, POSITIVE, scale as u16, &[]));
    }
    let weight =
        i16::try_from(weight).map_err(|_| format!("'{text}' is out of numeric's range"))?;
    let sign = if negative { NEGATIVE } else { POSITIVE };
    Ok(encode(weight, sign, scale as u16, &groups))
}

fn encode(weight: i16, sign: u16, scale: u16, groups: &[u16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + groups.len() * 2);
    out.extend((groups.len() as u16).to_be_bytes());
    out.extend(weight.to_be_bytes());
    out.extend(sign.to_be_bytes());
    out.extend(scale.to_be_bytes());
    for g in groups {
        out.extend(g.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips() {
        for text in [
            "0",
            "1",
            "-1",
            "10000",
            "12345.678",
            "-0.0001",
            "0.00012300",
            "99999999999999999999999999999999999999.000000000000000000001",
            "NaN",
            "Infinity",
            "-Infinity",
            "3.14",
            "100000000",
            "0.5",
        ] {
            assert_eq!(to_text(&from_text(text).unwrap()).unwrap(), text);
        }
    }

    #[test]
    fn other_spellings_are_normalized() {
        for (text, normal) in [
            ("+7", "7"),
            ("1e3", "1000"),
            ("1.5E-2", "0.015"),
            (".5", "0.5"),
            ("5.", "5"),
            ("-0", "0"),
            ("007.10", "7.10"),
        ] {
            assert_eq!(
                to_text(&from_text(text).unwrap()).unwrap(),
                normal,
                "{text}"
            );
        }
        for bad in ["", "-", "1.2.3", "abc", "1e", "١", "1e-9223372036854775808"] {
            assert!(from_text(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_binary_form_is_postgres_own() {
        // 12345.678 = 1 2345 . 6780 with weight 1 and scale 3.
        assert_eq!(
            from_text("12345.678").unwrap(),
            [0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c]
        );
        assert!(to_text(&[0, 1, 0, 0]).is_err());
    }
}
