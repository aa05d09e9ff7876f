//! One syntax for every time the command takes (`--wait`, `--timeout`):
//! milliseconds (`500`), a unit (`500ms`, `5s`, `1.5s`, `2m`, `1h`), or
//! `forever` in any case. Anything else, negative times included, is one
//! clear usage error naming the flag.

use std::time::Duration;

/// A time as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Time {
    After(Duration),
    Forever,
}

/// The clap value parser for every time flag.
pub(crate) fn parse(s: &str) -> Result<Time, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("forever") {
        return Ok(Time::Forever);
    }
    if t.starts_with('-') {
        return Err(format!("{s:?} is negative: a time is 0 or more (or `forever`)"));
    }
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" | "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => f64::NAN,
    };
    let value: f64 = number.parse().unwrap_or(f64::NAN);
    let secs = value * scale;
    // A bare number is whole milliseconds; units may take a fraction.
    let whole_ms = !unit.is_empty() || !number.contains('.');
    if !secs.is_finite() || !whole_ms || number.is_empty() || secs > 365.0 * 86_400.0 {
        return Err(format!(
            "{s:?} is not a time: give milliseconds (500), a unit (500ms, 5s, 2m) or `forever`"
        ));
    }
    Ok(Time::After(Duration::from_secs_f64(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_units_and_forever() {
        let ms = |n| Ok(Time::After(Duration::from_millis(n)));
        assert_eq!(parse("500"), ms(500));
        assert_eq!(parse("500ms"), ms(500));
        assert_eq!(parse("5s"), ms(5000));
        assert_eq!(parse("1.5s"), ms(1500));
        assert_eq!(parse("2m"), ms(120_000));
        assert_eq!(parse("1H"), ms(3_600_000));
        assert_eq!(parse("0"), ms(0));
        for f in ["forever", "FOREVER", "Forever"] {
            assert_eq!(parse(f), Ok(Time::Forever));
        }
        for bad in [
            "",
            "soon",
            "5 parsecs",
            "1.5",
            "-5",
            "-1s",
            "5x",
            "s",
            "1e9",
            "999999999h",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(parse("-5").unwrap_err().contains("negative"));
    }
}
