//! Durations as the GitLab agent writes them (Go's `time.ParseDuration`): `3600s`, `1h30m`, `500ms`.
//! GitLab agent configs are accepted unchanged, so their duration syntax is too.

use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// A duration written in Go's syntax: a sequence of whole numbers each followed by a unit (`h`, `m`, `s`,
/// `ms`, `us`, `ns`), e.g. `1h30m`. A bare number without a unit is refused (Go refuses it too, except 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct GoDuration(pub Duration);

impl GoDuration {
    pub fn get(self) -> Duration {
        self.0
    }
}

impl TryFrom<String> for GoDuration {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        parse_go_duration(&text).map(GoDuration)
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() == 0 {
            write!(f, "{}s", d.as_secs())
        } else {
            write!(f, "{}ms", d.as_millis())
        }
    }
}

/// Parses Go's duration syntax; see [`GoDuration`].
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration (write e.g. `300s` or `1h30m`)".to_owned());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "duration `{text}` is not a number followed by a unit (`300s`, `1h30m`)"
            ));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("duration `{text}` is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "h" => number.checked_mul(3600).map(Duration::from_secs),
            "m" => number.checked_mul(60).map(Duration::from_secs),
            "s" => Some(Duration::from_secs(number)),
            "ms" => Some(Duration::from_millis(number)),
            "us" | "µs" => Some(Duration::from_micros(number)),
            "ns" => Some(Duration::from_nanos(number)),
            "" => return Err(format!("duration `{text}` needs a unit (h, m, s, ms)")),
            _ => {
                return Err(format!(
                    "duration `{text}`: unknown unit `{unit}` (use h, m, s or ms)"
                ));
            }
        };
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| format!("duration `{text}` is too large"))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_syntax_parses() {
        assert_eq!(parse_go_duration("3600s"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_go_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(
            parse_go_duration("1m500ms"),
            Ok(Duration::from_millis(60_500))
        );
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations_say_why() {
        assert!(
            parse_go_duration("10")
                .unwrap_err()
                .contains("needs a unit")
        );
        assert!(
            parse_go_duration("ten minutes")
                .unwrap_err()
                .contains("not a number")
        );
        assert!(
            parse_go_duration("5d")
                .unwrap_err()
                .contains("unknown unit `d`")
        );
        assert!(
            parse_go_duration("99999999999999999999h")
                .unwrap_err()
                .contains("too large")
        );
        assert!(parse_go_duration("").is_err());
    }
}
