//! RFC 3339 timestamps (`2027-03-01T00:00:00Z`, `2027-03-01T01:00:00+01:00`) to and from Unix
//! seconds: API-key expiries and GitHub's `expires_at`. Small enough not to need a date crate.

/// Unix seconds of an RFC 3339 `date-time` (§5.6); fractional seconds are ignored, a leap second
/// (`:60`) counts as `:59`.
///
/// # Errors
/// Anything that is not a complete RFC 3339 date-time with an offset.
pub fn parse(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not an RFC 3339 timestamp such as 2027-03-01T00:00:00Z");
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let s = text.get(range).ok_or_else(bad)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse::<i64>().map_err(|_| bad())
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?.min(59));
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(bad());
    }
    if hour > 23 || minute > 59 {
        return Err(bad());
    }
    let mut rest = &text[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6
            && matches!(rest.as_bytes()[0], b'+' | b'-')
            && rest.as_bytes()[3] == b':' =>
        {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let h = rest.get(1..3).and_then(num_of).ok_or_else(bad)?;
            let m = rest.get(4..6).and_then(num_of).ok_or_else(bad)?;
            if h > 23 || m > 59 {
                return Err(bad());
            }
            sign * (h * 3_600 + m * 60)
        }
        _ => return Err(bad()),
    };
    let days = days_from_civil(year, month, day);
    Ok(days * 86_400 + hour * 3_600 + minute * 60 + second - offset)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds.
pub fn format(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3_600,
        (secs % 3_600) / 60,
        secs % 60
    )
}

fn num_of(s: &str) -> Option<i64> {
    s.bytes()
        .all(|c| c.is_ascii_digit())
        .then(|| s.parse().ok())
        .flatten()
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(parse("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse("2001-09-09T01:46:40Z"), Ok(1_000_000_000));
        assert_eq!(parse("2001-09-09T02:46:40+01:00"), Ok(1_000_000_000));
        assert_eq!(parse("2001-09-09T01:46:40.123456Z"), Ok(1_000_000_000));
        assert_eq!(parse("2024-02-29T00:00:00Z"), Ok(1_709_164_800));
        assert_eq!(format(1_000_000_000), "2001-09-09T01:46:40Z");
        assert_eq!(format(1_709_164_800), "2024-02-29T00:00:00Z");
        for t in [0, 951_782_400, 4_102_444_800, 1_234_567_890] {
            assert_eq!(parse(&format(t)), Ok(t), "round trip {t}");
        }
    }

    #[test]
    fn malformed_timestamps_are_refused() {
        for bad in [
            "",
            "2027-03-01",
            "2027-03-01T00:00:00",
            "2027-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2027-03-01T24:00:00Z",
            "2027-03-01T00:00:00+0100",
            "2027-03-01T00:00:00.Z",
            "2027-03-01T00:00:00Zjunk",
            "+027-03-01T00:00:00Z",
            "٢٠٢٧-03-01T00:00:00Z",
            "2027-03-01T00:00:00+é:00",
            "2027-03-01T00:00:00éé",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
