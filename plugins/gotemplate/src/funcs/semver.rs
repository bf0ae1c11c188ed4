//! Sprig's `semver` and `semverCompare` with Masterminds/semver v3 rules: loose versions (`v1.2`),
//! constraint groups joined by `||`, comparisons joined by `,` or spaces, wildcards, hyphen
//! ranges, and prerelease versions matching only constraints that name a prerelease
//! (hence charts write `>=1.21-0` for GKE's `1.21.3-gke.100`).

use std::cmp::Ordering;
use std::sync::{Arc, OnceLock};

use regex::Regex;

use super::{CallContext, arity, string_arg};
use crate::value::{Object, Value};

type R = Result<Value, String>;

const CV: &str = r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";
const OPS: &str = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^";

struct Patterns {
    version: Regex,
    constraint: Regex,
    range: Regex,
    find: Regex,
    valid: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        // Go's `\s` is ASCII whitespace; the crate is built without Unicode Perl classes.
        let re = |s: String| {
            Regex::new(&s.replace(r"\s", r"[\t\n\f\r ]")).expect("semver patterns are valid")
        };
        Patterns {
            version: re(r"^v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?$".to_string()),
            constraint: re(format!(r"^\s*({OPS})\s*({CV})\s*$")),
            range: re(format!(r"\s*({CV})\s+-\s+({CV})\s*")),
            find: re(format!(r"({OPS})\s*({CV})")),
            valid: re(format!(
                r"^(\s*({OPS})\s*({CV})\s*)((?:\s+|,\s*)({OPS})\s*({CV})\s*)*$"
            )),
        }
    })
}

#[derive(Debug, Clone)]
pub struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
    metadata: String,
    original: String,
}

impl Version {
    pub fn parse(v: &str) -> Result<Version, String> {
        let m = patterns()
            .version
            .captures(v)
            .ok_or("invalid semantic version")?;
        let seg = |i: usize| -> Result<u64, String> {
            match m.get(i) {
                Some(s) => s
                    .as_str()
                    .trim_start_matches('.')
                    .parse()
                    .map_err(|e| format!("Error parsing version segment: {e}")),
                None => Ok(0),
            }
        };
        let pre = m.get(5).map_or("", |s| s.as_str()).to_string();
        if pre
            .split('.')
            .any(|p| p.len() > 1 && p.starts_with('0') && p.chars().all(|c| c.is_ascii_digit()))
        {
            return Err("Version segment starts with 0".into());
        }
        Ok(Version {
            major: seg(1)?,
            minor: seg(2)?,
            patch: seg(3)?,
            pre,
            metadata: m.get(8).map_or("", |s| s.as_str()).to_string(),
            original: v.to_string(),
        })
    }

    fn cmp(&self, o: &Version) -> Ordering {
        self.major
            .cmp(&o.major)
            .then(self.minor.cmp(&o.minor))
            .then(self.patch.cmp(&o.patch))
            .then_with(|| match (self.pre.is_empty(), o.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_prerelease(&self.pre, &o.pre),
            })
    }

    fn canonical(&self) -> String {
        let mut s = format!("{}.{}.{}", self.major, self.minor, self.patch);
        if !self.pre.is_empty() {
            s.push('-');
            s.push_str(&self.pre);
        }
        if !self.metadata.is_empty() {
            s.push('+');
            s.push_str(&self.metadata);
        }
        s
    }
}

fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let ap: Vec<&str> = a.split('.').collect();
    let bp: Vec<&str> = b.split('.').collect();
    for i in 0..ap.len().max(bp.len()) {
        let s = ap.get(i).copied().unwrap_or("");
        let o = bp.get(i).copied().unwrap_or("");
        let d = compare_pre_part(s, o);
        if d != Ordering::Equal {
            return d;
        }
    }
    Ordering::Equal
}

fn compare_pre_part(s: &str, o: &str) -> Ordering {
    if s == o {
        return Ordering::Equal;
    }
    if s.is_empty() {
        return Ordering::Less;
    }
    if o.is_empty() {
        return Ordering::Greater;
    }
    match (s.parse::<u64>(), o.parse::<u64>()) {
        (Err(_), Err(_)) => s.cmp(o),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Ok(si), Ok(oi)) => {
            if si > oi {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
    }
}

struct Constraint {
    op: String,
    con: Version,
    minor_dirty: bool,
    patch_dirty: bool,
    dirty: bool,
}

fn is_x(s: &str) -> bool {
    matches!(s, "x" | "X" | "*")
}

fn parse_constraint(c: &str) -> Result<Constraint, String> {
    let m = patterns()
        .constraint
        .captures(c)
        .ok_or_else(|| format!("improper constraint: {c:?}"))?;
    let g = |i: usize| m.get(i).map_or("", |s| s.as_str());
    let (major, minor, patch, pre) = (g(3), g(4), g(5), g(6));
    let (mut dirty, mut minor_dirty, mut patch_dirty) = (false, false, false);
    let ver = if is_x(major) || major.is_empty() {
        dirty = true;
        format!("0.0.0{pre}")
    } else if is_x(minor.trim_start_matches('.')) || minor.is_empty() {
        dirty = true;
        minor_dirty = true;
        format!("{major}.0.0{pre}")
    } else if is_x(patch.trim_start_matches('.')) || patch.is_empty() {
        dirty = true;
        patch_dirty = true;
        format!("{major}{minor}.0{pre}")
    } else {
        g(2).to_string()
    };
    let con = Version::parse(&ver).map_err(|_| "constraint parser error".to_string())?;
    Ok(Constraint {
        op: g(1).to_string(),
        con,
        minor_dirty,
        patch_dirty,
        dirty,
    })
}

impl Constraint {
    fn check(&self, v: &Version, include_pre: bool) -> bool {
        if !v.pre.is_empty() && !include_pre {
            return false;
        }
        let c = &self.con;
        match self.op.as_str() {
            "" | "=" => {
                if self.dirty {
                    return self.tilde(v);
                }
                v.cmp(c) == Ordering::Equal
            }
            "!=" => {
                if self.dirty {
                    if c.major != v.major {
                        return true;
                    }
                    if c.minor != v.minor && !self.minor_dirty {
                        return true;
                    } else if self.minor_dirty {
                        return false;
                    } else if c.patch != v.patch && !self.patch_dirty {
                        return true;
                    } else if self.patch_dirty {
                        if !v.pre.is_empty() || !c.pre.is_empty() {
                            return compare_prerelease(&v.pre, &c.pre) != Ordering::Equal;
                        }
                        return false;
                    }
                }
                v.cmp(c) != Ordering::Equal
            }
            ">" => {
                if !self.dirty {
                    return v.cmp(c) == Ordering::Greater;
                }
                if v.major != c.major {
                    return v.major > c.major;
                }
                if self.minor_dirty {
                    return false;
                }
                if self.patch_dirty {
                    return v.minor > c.minor;
                }
                v.cmp(c) == Ordering::Greater
            }
            "<" => v.cmp(c) == Ordering::Less,
            ">=" | "=>" => v.cmp(c) != Ordering::Less,
            "<=" | "=<" => {
                if !self.dirty {
                    return v.cmp(c) != Ordering::Greater;
                }
                if v.major > c.major {
                    return false;
                }
                !(v.major == c.major && v.minor > c.minor && !self.minor_dirty)
            }
            "~" | "~>" => self.tilde(v),
            "^" => {
                if v.cmp(c) == Ordering::Less {
                    return false;
                }
                if c.major > 0 || self.minor_dirty {
                    return v.major == c.major;
                }
                if v.major > 0 {
                    return false;
                }
                if c.minor > 0 || self.patch_dirty {
                    return v.minor == c.minor;
                }
                if v.minor > 0 {
                    return false;
                }
                c.patch == v.patch
            }
            _ => false,
        }
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.con;
        if v.cmp(c) == Ordering::Less {
            return false;
        }
        if c.major == 0 && c.minor == 0 && c.patch == 0 && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        if v.major != c.major {
            return false;
        }
        v.minor == c.minor || self.minor_dirty
    }
}

/// Masterminds semver v3.5 (what helm v4 builds with) refuses longer constraints.
const MAX_CONSTRAINT_LEN: usize = 512;
const MAX_CONSTRAINT_GROUPS: usize = 32;

/// Masterminds NewConstraint + Check.
pub fn check(constraint: &str, version: &str) -> Result<bool, String> {
    if constraint.len() > MAX_CONSTRAINT_LEN {
        return Err(format!(
            "constraint string is too long (max {MAX_CONSTRAINT_LEN} bytes)"
        ));
    }
    if constraint.split("||").count() > MAX_CONSTRAINT_GROUPS {
        return Err(format!(
            "too many constraint groups (max {MAX_CONSTRAINT_GROUPS})"
        ));
    }
    let p = patterns();
    let mut rewritten = constraint.to_string();
    for m in p.range.captures_iter(constraint) {
        let whole = m.get(0).map_or("", |s| s.as_str());
        let lo = m.get(1).map_or("", |s| s.as_str());
        let hi = m.get(11).map_or("", |s| s.as_str());
        rewritten = rewritten.replacen(whole, &format!(">= {lo}, <= {hi} "), 1);
    }
    let mut groups = Vec::new();
    for or in rewritten.split("||") {
        if !p.valid.is_match(or) {
            return Err(format!("improper constraint: {or:?}"));
        }
        let found: Vec<&str> = p.find.find_iter(or).map(|m| m.as_str()).collect();
        let parts = if found.is_empty() { vec![or] } else { found };
        let cs: Vec<Constraint> = parts
            .into_iter()
            .map(parse_constraint)
            .collect::<Result<_, _>>()?;
        groups.push(cs);
    }
    // Masterminds parses the constraint before the version, and reports its errors first.
    let v = Version::parse(version)?;
    Ok(groups.iter().any(|g| {
        let has_pre = g.iter().any(|c| !c.con.pre.is_empty());
        g.iter().all(|c| c.check(&v, has_pre))
    }))
}

pub fn semver_compare(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    check(string_arg(a, 0)?, string_arg(a, 1)?).map(Value::Bool)
}

impl Object for Version {
    fn field(&self, _name: &str) -> Option<Value> {
        None
    }

    fn call(&self, method: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let v = match method {
            "Major" => Value::Int(self.major as i64),
            "Minor" => Value::Int(self.minor as i64),
            "Patch" => Value::Int(self.patch as i64),
            "Prerelease" => Value::str(self.pre.as_str()),
            "Metadata" => Value::str(self.metadata.as_str()),
            "Original" => Value::str(self.original.as_str()),
            "String" => Value::str(self.canonical()),
            "Compare" | "LessThan" | "GreaterThan" | "Equal" => {
                let Some(arg) = args.first() else {
                    return Some(Err(format!("{method} needs a version")));
                };
                let other = match arg.as_str() {
                    Some(s) => Version::parse(s),
                    None => Version::parse(&arg.go_string()),
                };
                let Ok(other) = other else {
                    return Some(Err("invalid semantic version".into()));
                };
                let o = self.cmp(&other);
                match method {
                    "Compare" => Value::Int(o as i64),
                    "LessThan" => Value::Bool(o == Ordering::Less),
                    "GreaterThan" => Value::Bool(o == Ordering::Greater),
                    _ => Value::Bool(o == Ordering::Equal),
                }
            }
            _ => return None,
        };
        Some(Ok(v))
    }

    fn type_name(&self) -> String {
        "*semver.Version".into()
    }

    fn display(&self) -> String {
        self.canonical()
    }
}

pub fn semver(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let v = Version::parse(string_arg(a, 0)?)?;
    Ok(Value::Object(Arc::new(v)))
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn constraints_like_masterminds() {
        assert!(check(">=1.21-0", "1.21.3-gke.100").unwrap());
        assert!(!check(">=1.21", "1.21.3-gke.100").unwrap());
        assert!(check(">=1.19.0 <1.30.0", "v1.25.4").unwrap());
        assert!(check("^1.2.3", "1.9.0").unwrap());
        assert!(!check("^1.2.3", "2.0.0").unwrap());
        assert!(check("~1.2", "1.2.9").unwrap());
        assert!(check("1.2 - 1.4.5", "1.3.0").unwrap());
        assert!(check("<1.0 || >=2.x", "2.1.0").unwrap());
        assert!(check("1.2.x", "1.2.7").unwrap());
        assert!(check("not a constraint", "1.0.0").is_err());
    }
}
