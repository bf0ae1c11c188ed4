//! Sprig's date functions. Formatting a given time is deterministic; reading the clock (`now`,
//! or a date argument Sprig does not understand, which it replaces by now) is recorded as
//! non-deterministic. Times are UTC: the sandbox has no time-zone database.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::conv::to_i64;
use super::{CallContext, arity, record, string_arg};
use crate::value::{Object, Value};

type R = Result<Value, String>;

/// An instant in UTC (zones other than UTC are not available in the sandbox).
#[derive(Debug, Clone, Copy)]
pub struct Time {
    secs: i64,
    nanos: u32,
}

impl Time {
    fn now() -> Time {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Time {
            secs: d.as_secs() as i64,
            nanos: d.subsec_nanos(),
        }
    }

    /// (year, month, day, hour, minute, second, weekday 0=Sunday, day of year)
    fn civil(&self) -> (i64, u32, u32, u32, u32, u32, u32, u32) {
        let days = self.secs.div_euclid(86400);
        let rem = self.secs.rem_euclid(86400);
        // Howard Hinnant's civil_from_days.
        let z = days + 719468;
        let era = z.div_euclid(146097);
        let doe = z - era * 146097;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
        let weekday = (days + 4).rem_euclid(7) as u32;
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        const CUM: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let yday = CUM[(m - 1) as usize] + d + if leap && m > 2 { 1 } else { 0 };
        (
            y,
            m,
            d,
            (rem / 3600) as u32,
            (rem % 3600 / 60) as u32,
            (rem % 60) as u32,
            weekday,
            yday,
        )
    }

    /// Go's time.Format for the layout elements charts use.
    pub fn format(&self, layout: &str) -> String {
        const MONTHS: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        const DAYS: [&str; 7] = [
            "Sunday",
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
        ];
        let (y, mo, d, h, mi, s, wd, yd) = self.civil();
        let mut out = String::new();
        let mut rest = layout;
        // Longest tokens first, as Go's nextStdChunk effectively does.
        let tokens: &[&str] = &[
            "January",
            "Monday",
            "2006",
            "-07:00:00",
            "Z07:00:00",
            "-07:00",
            "Z07:00",
            "-0700",
            "Z0700",
            "-07",
            "Z07",
            "Jan",
            "Mon",
            "MST",
            "002",
            "__2",
            "_2",
            "01",
            "02",
            "03",
            "04",
            "05",
            "06",
            "15",
            "PM",
            "pm",
            ".000000000",
            ".999999999",
            ".000000",
            ".999999",
            ".000",
            ".999",
            "1",
            "2",
            "3",
            "4",
            "5",
        ];
        'outer: while !rest.is_empty() {
            for t in tokens {
                if let Some(after) = rest.strip_prefix(t) {
                    // "Jan"/"Mon" must not be a prefix of a longer word (Go checks lowercase next).
                    if (*t == "Jan" || *t == "Mon")
                        && after.starts_with(|c: char| c.is_ascii_lowercase())
                    {
                        continue;
                    }
                    let h12 = if h % 12 == 0 { 12 } else { h % 12 };
                    let text = match *t {
                        "January" => MONTHS[(mo - 1) as usize].to_string(),
                        "Jan" => MONTHS[(mo - 1) as usize][..3].to_string(),
                        "Monday" => DAYS[wd as usize].to_string(),
                        "Mon" => DAYS[wd as usize][..3].to_string(),
                        "2006" => format!("{y:04}"),
                        "06" => format!("{:02}", y.rem_euclid(100)),
                        "01" => format!("{mo:02}"),
                        "1" => mo.to_string(),
                        "02" => format!("{d:02}"),
                        "2" => d.to_string(),
                        "_2" => format!("{d:>2}"),
                        "002" => format!("{yd:03}"),
                        "__2" => format!("{yd:>3}"),
                        "15" => format!("{h:02}"),
                        "03" => format!("{h12:02}"),
                        "3" => h12.to_string(),
                        "04" => format!("{mi:02}"),
                        "4" => mi.to_string(),
                        "05" => format!("{s:02}"),
                        "5" => s.to_string(),
                        "PM" => (if h >= 12 { "PM" } else { "AM" }).to_string(),
                        "pm" => (if h >= 12 { "pm" } else { "am" }).to_string(),
                        "MST" => "UTC".to_string(),
                        "Z07:00" | "Z0700" | "Z07" | "Z07:00:00" => "Z".to_string(),
                        "-07:00" => "+00:00".to_string(),
                        "-0700" => "+0000".to_string(),
                        "-07" => "+00".to_string(),
                        "-07:00:00" => "+00:00:00".to_string(),
                        frac => {
                            let digits = frac.len() - 1;
                            let f = format!("{:09}", self.nanos);
                            if frac.as_bytes()[1] == b'0' {
                                format!(".{}", &f[..digits])
                            } else {
                                let trimmed = f[..digits].trim_end_matches('0');
                                if trimmed.is_empty() {
                                    String::new()
                                } else {
                                    format!(".{trimmed}")
                                }
                            }
                        }
                    };
                    out.push_str(&text);
                    rest = after;
                    continue 'outer;
                }
            }
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }
}

impl Object for Time {
    fn field(&self, _name: &str) -> Option<Value> {
        None
    }

    fn call(&self, method: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let (y, mo, d, h, mi, s, _, _) = self.civil();
        Some(Ok(match method {
            "Unix" => Value::Int(self.secs),
            "UnixNano" => Value::Int(self.secs * 1_000_000_000 + self.nanos as i64),
            "UTC" | "Local" => Value::Object(Arc::new(*self)),
            "Year" => Value::Int(y),
            "Month" => Value::Int(mo as i64),
            "Day" => Value::Int(d as i64),
            "Hour" => Value::Int(h as i64),
            "Minute" => Value::Int(mi as i64),
            "Second" => Value::Int(s as i64),
            "String" => Value::str(self.display()),
            "Format" => match args.first() {
                Some(Value::String(layout)) => Value::str(self.format(layout)),
                _ => return Some(Err("Format needs a layout string".into())),
            },
            _ => return None,
        }))
    }

    fn type_name(&self) -> String {
        "time.Time".into()
    }

    fn display(&self) -> String {
        self.format("2006-01-02 15:04:05.999999999 -0700 MST")
    }
}

/// The time a date argument names, or now (recorded) for anything else, as Sprig does.
fn time_of(ctx: &mut CallContext, v: &Value) -> Time {
    match v {
        Value::Int(i) | Value::Int64(i) => Time { secs: *i, nanos: 0 },
        Value::Object(o) if o.type_name() == "time.Time" => {
            let secs = o
                .call("Unix", &[])
                .and_then(Result::ok)
                .map_or(0, |v| to_i64(&v));
            let nanos = o
                .call("UnixNano", &[])
                .and_then(Result::ok)
                .map_or(0, |v| to_i64(&v).rem_euclid(1_000_000_000) as u32);
            Time { secs, nanos }
        }
        _ => {
            record(ctx, "date");
            Time::now()
        }
    }
}

pub fn now(ctx: &mut CallContext, a: &[Value]) -> R {
    arity(a, 0)?;
    record(ctx, "now");
    Ok(Value::Object(Arc::new(Time::now())))
}

pub fn date(ctx: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    let layout = string_arg(a, 0)?;
    Ok(Value::str(time_of(ctx, &a[1]).format(layout)))
}

pub fn date_in_zone(ctx: &mut CallContext, a: &[Value]) -> R {
    arity(a, 3)?;
    let layout = string_arg(a, 0)?;
    string_arg(a, 2)?;
    Ok(Value::str(time_of(ctx, &a[1]).format(layout)))
}

pub fn html_date(ctx: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::str(time_of(ctx, &a[0]).format("2006-01-02")))
}

pub fn html_date_in_zone(ctx: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    string_arg(a, 1)?;
    Ok(Value::str(time_of(ctx, &a[0]).format("2006-01-02")))
}

pub fn unix_epoch(ctx: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::str(time_of(ctx, &a[0]).secs.to_string()))
}

/// Parse `YYYY-MM-DD[THH:MM:SS[Z]]`-shaped text for the layouts charts pass to toDate.
pub fn to_date(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    string_arg(a, 0)?;
    let s = string_arg(a, 1)?;
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|t| t.parse::<i64>().ok());
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return Err(format!("parsing time {s:?}: cannot parse"));
    };
    let (h, mi, sec) = (
        num(11..13).unwrap_or(0),
        num(14..16).unwrap_or(0),
        num(17..19).unwrap_or(0),
    );
    // days_from_civil.
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Ok(Value::Object(Arc::new(Time {
        secs: days * 86400 + h * 3600 + mi * 60 + sec,
        nanos: 0,
    })))
}

/// Go's time.ParseDuration, in nanoseconds.
fn parse_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[u..];
        total += v * unit;
    }
    Some(if neg { -total as i64 } else { total as i64 })
}

/// Go's time.Duration.String.
fn duration_string(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let neg = nanos < 0;
    let u = nanos.unsigned_abs();
    let sign = if neg { "-" } else { "" };
    if u < 1_000_000_000 {
        let (v, unit) = if u < 1_000 {
            return format!("{sign}{u}ns");
        } else if u < 1_000_000 {
            (u as f64 / 1e3, "µs")
        } else {
            (u as f64 / 1e6, "ms")
        };
        return format!(
            "{sign}{}{unit}",
            crate::printf::format_float_g(v, None, false)
        );
    }
    let h = u / 3_600_000_000_000;
    let m = u / 60_000_000_000 % 60;
    let s_nanos = u % 60_000_000_000;
    let secs = format!("{}", s_nanos / 1_000_000_000);
    let frac = s_nanos % 1_000_000_000;
    let secs = if frac > 0 {
        let f = format!("{frac:09}");
        format!("{secs}.{}", f.trim_end_matches('0'))
    } else {
        secs
    };
    if h > 0 {
        format!("{sign}{h}h{m}m{secs}s")
    } else if m > 0 {
        format!("{sign}{m}m{secs}s")
    } else {
        format!("{sign}{secs}s")
    }
}

pub fn duration(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let secs = match &a[0] {
        Value::String(s) => s.parse::<i64>().unwrap_or(0),
        // Sprig takes int64 only: a template's int literal is 0 seconds.
        Value::Int64(i) => *i,
        _ => 0,
    };
    Ok(Value::str(duration_string(
        secs.saturating_mul(1_000_000_000),
    )))
}

pub fn duration_round(ctx: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let d: i64 = match &a[0] {
        Value::String(s) => parse_duration(s).unwrap_or(0),
        Value::Int64(i) => *i,
        Value::Object(_) => {
            let t = time_of(ctx, &a[0]);
            record(ctx, "durationRound");
            let now = Time::now();
            (now.secs - t.secs) * 1_000_000_000
        }
        _ => 0,
    };
    let u = d.unsigned_abs();
    const S: u64 = 1_000_000_000;
    let units = [
        (S * 3600 * 24 * 365, "y"),
        (S * 3600 * 24 * 30, "mo"),
        (S * 3600 * 24, "d"),
        (S * 3600, "h"),
        (S * 60, "m"),
        (S, "s"),
    ];
    for (size, name) in units {
        if u > size {
            return Ok(Value::str(format!("{}{name}", u / size)));
        }
    }
    Ok(Value::str("0s"))
}

pub fn ago(ctx: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    record(ctx, "ago");
    let t = time_of(ctx, &a[0]);
    let now = Time::now();
    Ok(Value::str(duration_string(
        (now.secs - t.secs) * 1_000_000_000,
    )))
}

pub fn date_modify(ctx: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    let d = parse_duration(string_arg(a, 0)?)
        .ok_or_else(|| format!("time: invalid duration {:?}", a[0].go_string()))?;
    let t = time_of(ctx, &a[1]);
    let total = t.secs as i128 * 1_000_000_000 + t.nanos as i128 + d as i128;
    Ok(Value::Object(Arc::new(Time {
        secs: total.div_euclid(1_000_000_000) as i64,
        nanos: total.rem_euclid(1_000_000_000) as u32,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_go_layouts() {
        let t = Time {
            secs: 1_700_000_000,
            nanos: 120_000_000,
        };
        assert_eq!(
            t.format("2006-01-02T15:04:05Z07:00"),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            t.format("Jan 2, 2006 at 3:04pm (MST)"),
            "Nov 14, 2023 at 10:13pm (UTC)"
        );
        assert_eq!(t.format("Monday .000"), "Tuesday .120");
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(duration_string(95 * 1_000_000_000), "1m35s");
        assert_eq!(duration_string(3600 * 1_000_000_000), "1h0m0s");
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
    }
}
