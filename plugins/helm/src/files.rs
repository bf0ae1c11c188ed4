//! `.Files`: the files of a chart other than its templates, values and subcharts, with helm's methods
//! (`Get`, `GetBytes`, `Glob`, `Lines`, `AsConfig`, `AsSecrets`), ranged over and encoded as Go's
//! `map[string][]byte`.

use crate::chart::ChartFile;
use std::collections::BTreeMap;
use std::sync::Arc;
use tether_gotemplate::{Object, Value};

fn text(s: &str) -> Value {
    Value::str(s)
}

/// `.Files`: the chart's files other than templates, values and subcharts.
#[derive(Debug, Clone)]
pub struct Files(Arc<Vec<ChartFile>>);

impl Files {
    pub fn new(files: &[ChartFile]) -> Files {
        Files(Arc::new(files.to_vec()))
    }

    fn get(&self, name: &str) -> Option<&ChartFile> {
        self.0.iter().find(|f| f.name == name)
    }

    fn as_text(file: &ChartFile) -> String {
        String::from_utf8_lossy(&file.data).into_owned()
    }

    /// A YAML mapping of base name to content (`AsConfig`), or to base64 content (`AsSecrets`).
    fn as_mapping(&self, encode: bool) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let map: BTreeMap<String, String> = self
            .0
            .iter()
            .map(|f| {
                let base = f.name.rsplit('/').next().unwrap_or(&f.name).to_owned();
                let content = if encode {
                    base64(&f.data)
                } else {
                    Files::as_text(f)
                };
                (base, content)
            })
            .collect();
        serde_yaml::to_string(&map)
            .unwrap_or_default()
            .trim_end_matches('\n')
            .to_owned()
    }
}

fn one_string(method: &str, args: &[Value]) -> Result<String, String> {
    match args {
        [Value::String(s)] => Ok(s.to_string()),
        [other] => Err(format!(
            "{method}: expected a string argument, got {}",
            other.type_name()
        )),
        _ => Err(format!("{method} takes one argument, got {}", args.len())),
    }
}

impl Object for Files {
    fn field(&self, _name: &str) -> Option<Value> {
        None
    }

    fn call(&self, method: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let result = match method {
            "Get" => one_string(method, args)
                .map(|name| text(&self.get(&name).map(Files::as_text).unwrap_or_default())),
            "GetBytes" => one_string(method, args).map(|name| {
                Value::list(
                    self.get(&name)
                        .map(|f| f.data.iter().map(|b| Value::Int(i64::from(*b))).collect())
                        .unwrap_or_default(),
                )
            }),
            "Lines" => one_string(method, args).map(|name| {
                let Some(file) = self.get(&name) else {
                    return Value::list(Vec::new());
                };
                let content = Files::as_text(file);
                let content = content.strip_suffix('\n').unwrap_or(&content);
                Value::list(content.split('\n').map(text).collect())
            }),
            "Glob" => one_string(method, args).map(|pattern| {
                let matched: Vec<ChartFile> = self
                    .0
                    .iter()
                    .filter(|f| glob(pattern.as_bytes(), f.name.as_bytes()))
                    .cloned()
                    .collect();
                Value::Object(Arc::new(Files(Arc::new(matched))))
            }),
            "AsConfig" => Ok(text(&self.as_mapping(false))),
            "AsSecrets" => Ok(text(&self.as_mapping(true))),
            _ => return None,
        };
        Some(result)
    }

    fn type_name(&self) -> String {
        "engine.files".into()
    }

    fn display(&self) -> String {
        let entries: Vec<String> = self
            .0
            .iter()
            .map(|f| format!("{}:{:?}", f.name, f.data))
            .collect();
        format!("map[{}]", entries.join(" "))
    }

    fn truthy(&self) -> bool {
        !self.0.is_empty()
    }

    /// `range $path, $content := .Files.Glob …`: Go's `[]byte` content; the engine has no byte
    /// slices, so it is the text, which `toString` and printing with `Files.Get` treat alike.
    fn entries(&self) -> Option<Vec<(Value, Value)>> {
        // Files are kept sorted by path, the order Go ranges over a map in.
        Some(
            self.0
                .iter()
                .map(|f| (text(&f.name), text(&Files::as_text(f))))
                .collect(),
        )
    }

    /// Go marshals `map[string][]byte` with base64 values.
    fn to_value(&self) -> Option<Value> {
        Some(Value::map(
            self.0
                .iter()
                .map(|f| (f.name.clone(), text(&base64(&f.data))))
                .collect(),
        ))
    }
}

/// gobwas/glob with `/` as separator, as helm's `Files.Glob`: `*` and `?` stay within a path segment,
/// `**` crosses segments (`**.yaml` matches `a/b.yaml`), `[a-z]`/`[!a]` classes, `{a,b}` alternatives.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.first() {
        None => name.is_empty(),
        Some(b'*') if pattern.get(1) == Some(&b'*') => {
            let rest = &pattern[2..];
            (0..=name.len()).any(|i| glob(rest, &name[i..]))
        }
        Some(b'*') => {
            let rest = &pattern[1..];
            let segment = name.iter().position(|&c| c == b'/').unwrap_or(name.len());
            (0..=segment).any(|i| glob(rest, &name[i..]))
        }
        Some(b'?') => name.first().is_some_and(|&c| c != b'/') && glob(&pattern[1..], &name[1..]),
        Some(b'[') => {
            let Some(close) = pattern
                .iter()
                .skip(1)
                .position(|&c| c == b']')
                .map(|p| p + 1)
            else {
                return name.first() == Some(&b'[') && glob(&pattern[1..], &name[1..]);
            };
            let Some(&c) = name.first() else {
                return false;
            };
            let class = &pattern[1..close];
            let (negated, class) = match class.first() {
                Some(b'!') => (true, &class[1..]),
                _ => (false, class),
            };
            let mut matched = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == b'-' {
                    matched |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    matched |= class[i] == c;
                    i += 1;
                }
            }
            matched != negated && c != b'/' && glob(&pattern[close + 1..], &name[1..])
        }
        Some(b'{') => {
            let Some(close) = pattern.iter().position(|&c| c == b'}') else {
                return name.first() == Some(&b'{') && glob(&pattern[1..], &name[1..]);
            };
            let rest = &pattern[close + 1..];
            pattern[1..close].split(|&c| c == b',').any(|alternative| {
                let mut candidate = alternative.to_vec();
                candidate.extend_from_slice(rest);
                glob(&candidate, name)
            })
        }
        Some(b'\\') if pattern.len() > 1 => {
            name.first() == Some(&pattern[1]) && glob(&pattern[2..], &name[1..])
        }
        Some(&c) => name.first() == Some(&c) && glob(&pattern[1..], &name[1..]),
    }
}

/// Standard base64 with padding (Go's `base64.StdEncoding`).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Files {
        Files::new(&[
            ChartFile {
                name: "conf/a.txt".into(),
                data: b"one\ntwo\n".to_vec(),
            },
            ChartFile {
                name: "conf/b.txt".into(),
                data: b"x".to_vec(),
            },
            ChartFile {
                name: "other.txt".into(),
                data: b"y".to_vec(),
            },
        ])
    }

    fn call(files: &Files, method: &str, args: &[Value]) -> Value {
        files.call(method, args).unwrap().unwrap()
    }

    #[test]
    fn files_methods() {
        let f = files();
        assert_eq!(call(&f, "Get", &[text("other.txt")]).go_string(), "y");
        assert_eq!(call(&f, "Get", &[text("missing")]).go_string(), "");
        assert_eq!(
            call(&f, "Lines", &[text("conf/a.txt")]).go_string(),
            "[one two]"
        );
        let Value::Object(glob) = call(&f, "Glob", &[text("conf/*")]) else {
            panic!("Glob returns files")
        };
        let config = glob.call("AsConfig", &[]).unwrap().unwrap();
        let parsed: BTreeMap<String, String> =
            serde_yaml::from_str(config.as_str().unwrap()).unwrap();
        assert_eq!(parsed["a.txt"], "one\ntwo\n");
        assert_eq!(parsed["b.txt"], "x");
        let secrets = glob.call("AsSecrets", &[]).unwrap().unwrap();
        assert!(secrets.as_str().unwrap().contains("b.txt: eA=="));
    }

    #[test]
    fn glob_like_gobwas_with_slash_separator() {
        let g = |p: &str, n: &str| glob(p.as_bytes(), n.as_bytes());
        assert!(g("**.yaml", "config/logging.yaml"));
        assert!(g("config/*", "config/a.txt"));
        assert!(!g("config/*", "config/sub/a.txt"));
        assert!(!g("*.yaml", "config/logging.yaml"));
        assert!(g("scripts/**", "scripts/run.sh"));
        assert!(g("files/{a,b}.txt", "files/b.txt"));
        assert!(g("f?le[0-9].txt", "file7.txt"));
        assert!(!g("f[!i]le.txt", "file.txt"));
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }
}
