//! Text formatting that must match JavaScript byte for byte.
//!
//! Node peers produce Socket.IO JSON with `JSON.stringify`, and object keys
//! with `String(value)`. To emit the same text from Rust we need JS's string
//! escaping, its `Number::toString` algorithm (shortest round-trip digits,
//! plain notation between 1e-7 and 1e21, `1e+21` style beyond) and
//! `Date.prototype.toISOString`.

use std::fmt::Write as _;

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Appends `value` as a JSON string literal, escaped like `JSON.stringify`:
/// `"` and `\`, the short escapes `\b \f \n \r \t`, other control characters
/// as `\u00xx` (lowercase hex); everything else verbatim (including U+2028,
/// U+2029 and `/`).
pub(crate) fn write_json_string(out: &mut String, value: &str) {
    out.reserve(value.len() + 2);
    out.push('"');
    let bytes = value.as_bytes();
    let mut run_start = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let short_escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Every byte we stop at is ASCII, so these are char boundaries.
        out.push_str(&value[run_start..index]);
        if short_escape.is_empty() {
            out.push_str("\\u00");
            out.push(HEX_DIGITS[usize::from(byte >> 4)] as char);
            out.push(HEX_DIGITS[usize::from(byte & 0xf)] as char);
        } else {
            out.push_str(short_escape);
        }
        run_start = index + 1;
    }
    out.push_str(&value[run_start..]);
    out.push('"');
}

/// Appends a JSON number the way `JSON.stringify` prints it; `NaN` and the
/// infinities become `null`.
pub(crate) fn write_json_f64(out: &mut String, value: f64) {
    if value.is_finite() {
        write_js_finite(out, value);
    } else {
        out.push_str("null");
    }
}

/// Appends `String(value)` for a JS number (used for object keys).
pub(crate) fn write_js_number(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        write_js_finite(out, value);
    }
}

/// ECMAScript Number::toString(10) for a finite number.
fn write_js_finite(out: &mut String, value: f64) {
    if value == 0.0 {
        // covers -0, which JS prints as "0"
        out.push('0');
        return;
    }
    // Below 1e15 every integral double is printed as its plain digits.
    if value.fract() == 0.0 && value.abs() < 1e15 {
        let mut digits = itoa::Buffer::new();
        out.push_str(digits.format(value as i64));
        return;
    }
    let mut shortest = ryu::Buffer::new();
    let text = shortest.format_finite(value);
    // For non-integral values ryu prints plain decimals only well inside JS's
    // plain range (1e-7 <= |x| < 1e21), with the same shortest digits: the
    // common case. (Integral ones would get a trailing ".0".)
    if value.fract() != 0.0 && !text.contains(['e', 'E']) {
        out.push_str(text);
        return;
    }
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let (integer_part, fraction_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));

    // Normalise to value = 0.DIGITS * 10^point (ECMAScript's s, k and n).
    let mut digits: Vec<u8> = Vec::with_capacity(24);
    digits.extend(integer_part.bytes());
    digits.extend(fraction_part.bytes());
    let mut point = integer_part.len() as i32 + exponent;
    let leading_zeros = digits.iter().take_while(|&&d| d == b'0').count();
    digits.drain(..leading_zeros);
    point -= leading_zeros as i32;
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    if digits.is_empty() {
        out.push('0');
        return;
    }
    let digit_count = digits.len() as i32;
    // ASCII digits only, so this cannot fail.
    let digits = std::str::from_utf8(&digits).unwrap_or("0");

    if negative {
        out.push('-');
    }
    if digit_count <= point && point <= 21 {
        out.push_str(digits);
        out.extend(std::iter::repeat_n('0', (point - digit_count) as usize));
    } else if 0 < point && point <= 21 {
        let (whole, fraction) = digits.split_at(point as usize);
        out.push_str(whole);
        out.push('.');
        out.push_str(fraction);
    } else if -6 < point && point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(digits);
    } else {
        let exponent = point - 1;
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if exponent < 0 { '-' } else { '+' });
        let _ = write!(out, "{}", exponent.unsigned_abs());
    }
}

/// Largest time value a JS `Date` can hold, in milliseconds.
pub(crate) const MAX_DATE_MS: f64 = 8.64e15;

/// Appends `new Date(ms).toISOString()` (without quotes); `ms` must already
/// be a valid, integral time value (|ms| <= 8.64e15).
pub(crate) fn write_iso_date(out: &mut String, ms: i64) {
    let days = ms.div_euclid(86_400_000);
    let ms_of_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    if (0..=9999).contains(&year) {
        let _ = write!(out, "{year:04}");
    } else {
        let sign = if year < 0 { '-' } else { '+' };
        let _ = write!(out, "{sign}{:06}", year.unsigned_abs());
    }
    let _ = write!(
        out,
        "-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000
    );
}

/// Proleptic Gregorian date of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn js(value: f64) -> String {
        let mut out = String::new();
        write_js_number(&mut out, value);
        out
    }

    #[test]
    fn numbers_print_like_javascript() {
        // Expected strings are what `String(x)` prints in Node.
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (123456789012345680000.0, "123456789012345680000"),
            (1.5e-7, "1.5e-7"),
            (1e-7, "1e-7"),
            (0.000001, "0.000001"),
            (0.0000015, "0.0000015"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (5e-324, "5e-324"),
            (18446744073709551615.0, "18446744073709552000"),
            (9007199254740993.0, "9007199254740992"),
            (1e15, "1000000000000000"),
            (123.456, "123.456"),
            (-1e-10, "-1e-10"),
            (f64::from(0.1f32), "0.10000000149011612"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for &(value, expected) in cases {
            assert_eq!(js(value), expected, "formatting {value:?}");
        }
    }

    #[test]
    fn json_numbers_turn_non_finite_into_null() {
        let mut out = String::new();
        write_json_f64(&mut out, f64::NAN);
        out.push(',');
        write_json_f64(&mut out, f64::NEG_INFINITY);
        assert_eq!(out, "null,null");
    }

    #[test]
    fn strings_escape_like_json_stringify() {
        let mut out = String::new();
        write_json_string(
            &mut out,
            "a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}/\u{2028}é😀",
        );
        assert_eq!(
            out,
            "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\u{7f}/\u{2028}é😀\""
        );
    }

    #[test]
    fn dates_print_like_to_iso_string() {
        let iso = |ms| {
            let mut out = String::new();
            write_iso_date(&mut out, ms);
            out
        };
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(iso(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(iso(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso(8_640_000_000_000_000), "+275760-09-13T00:00:00.000Z");
        assert_eq!(iso(-8_640_000_000_000_000), "-271821-04-20T00:00:00.000Z");
        assert_eq!(iso(-62_198_755_200_000), "-000001-01-01T00:00:00.000Z");
        assert_eq!(iso(253_402_300_800_000), "+010000-01-01T00:00:00.000Z");
    }
}
