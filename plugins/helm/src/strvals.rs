//! `--set` expressions, read exactly like helm's `strvals` parser: `a.b=c,d[0]=e`, lists `{x,y}`,
//! backslash escapes (`\,` `\.`), and the value types `--set` gives (int64 for integers without a
//! leading zero, `true`/`false`, `null`; everything else a string). `--set-string` keeps every value a
//! string.

use serde_json::{Map, Value};

/// Largest list index `--set` accepts, as helm.
const MAX_INDEX: i64 = 65536;
/// Deepest `a.b.c…` nesting `--set` accepts, as helm.
const MAX_NESTING: usize = 30;

/// Why an expression was refused (helm's message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetError(pub String);

impl std::fmt::Display for SetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parse `expression` into `dest` (helm's `ParseInto` / `ParseIntoString`).
pub fn parse_into(
    expression: &str,
    dest: &mut Map<String, Value>,
    strings_only: bool,
) -> Result<(), SetError> {
    let mut parser = Parser {
        chars: expression.chars().collect(),
        pos: 0,
        strings_only,
    };
    loop {
        match parser.key(dest, 0) {
            Ok(()) => {}
            Err(Stop::Eof) => return Ok(()),
            Err(Stop::Error(message)) => return Err(SetError(message)),
        }
    }
}

/// How a step of the parser ended early: the input ran out (often normal), or a real error.
enum Stop {
    Eof,
    Error(String),
}

fn error<T>(message: String) -> Result<T, Stop> {
    Err(Stop::Error(message))
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    strings_only: bool,
}

/// What `runes_until` stopped at: one of the stop characters, or the end of input.
type Until = (String, Option<char>);

impl Parser {
    fn read(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn unread(&mut self) {
        self.pos -= 1;
    }

    /// Characters up to one of `stop` (consumed, not included); a backslash takes the next character
    /// literally. `None` as the stop means the input ended.
    fn runes_until(&mut self, stop: &[char]) -> Until {
        let mut out = String::new();
        while let Some(c) = self.read() {
            if stop.contains(&c) {
                return (out, Some(c));
            }
            if c == '\\' {
                match self.read() {
                    Some(next) => out.push(next),
                    None => return (out, None),
                }
            } else {
                out.push(c);
            }
        }
        (out, None)
    }

    fn typed(&self, text: String) -> Value {
        if self.strings_only {
            return Value::String(text);
        }
        if text.eq_ignore_ascii_case("true") {
            return Value::Bool(true);
        }
        if text.eq_ignore_ascii_case("false") {
            return Value::Bool(false);
        }
        if text.eq_ignore_ascii_case("null") {
            return Value::Null;
        }
        if text == "0" {
            return Value::from(0i64);
        }
        if !text.is_empty()
            && !text.starts_with('0')
            && let Some(number) = parse_go_int(&text)
        {
            return Value::from(number);
        }
        Value::String(text)
    }

    fn key(&mut self, data: &mut Map<String, Value>, nesting: usize) -> Result<(), Stop> {
        let (key, last) = self.runes_until(&['=', '[', ',', '.']);
        match last {
            None if key.is_empty() => Err(Stop::Eof),
            None => error(format!("key {key:?} has no value")),
            Some('[') => {
                let index = self
                    .key_index()
                    .map_err(|e| Stop::Error(format!("error parsing index: {}", message(e))))?;
                let list = match data.remove(&key) {
                    None => Vec::new(),
                    Some(Value::Array(list)) => list,
                    Some(other) => {
                        data.insert(key.clone(), other.clone());
                        return error(format!(
                            "unable to parse key: interface conversion: {key} is {}, not a list",
                            type_name(&other)
                        ));
                    }
                };
                let (list, result) = self.list_item(list, index, nesting);
                set(data, &key, Value::Array(list));
                result
            }
            Some('=') => match self.value_list() {
                Ok(list) => {
                    set(data, &key, Value::Array(list));
                    Ok(())
                }
                Err(ListError::Eof) => {
                    set(data, &key, Value::String(String::new()));
                    Err(Stop::Eof)
                }
                Err(ListError::NotList) => {
                    let (text, _) = self.runes_until(&[',']);
                    let value = self.typed(text);
                    set(data, &key, value);
                    Ok(())
                }
                Err(ListError::Error(message)) => error(message),
            },
            Some(',') => {
                set(data, &key, Value::String(String::new()));
                error(format!("key {key:?} has no value (cannot end with ,)"))
            }
            Some(_) => {
                let nesting = nesting + 1;
                if nesting > MAX_NESTING {
                    return error(format!(
                        "value name nested level is greater than maximum supported nested level of {MAX_NESTING}"
                    ));
                }
                let existed = data.contains_key(&key);
                let mut inner = match data.remove(&key) {
                    None => Map::new(),
                    Some(Value::Object(map)) => map,
                    Some(other) => {
                        data.insert(key.clone(), other.clone());
                        return error(format!(
                            "unable to parse key: interface conversion: {key} is {}, not a map",
                            type_name(&other)
                        ));
                    }
                };
                let result = self.key(&mut inner, nesting);
                let empty = inner.is_empty();
                if existed || !empty {
                    set(data, &key, Value::Object(inner));
                }
                match result {
                    Ok(()) if empty => error(format!("key map {key:?} has no value")),
                    other => other,
                }
            }
        }
    }

    fn key_index(&mut self) -> Result<i64, Stop> {
        let (text, last) = self.runes_until(&[']']);
        if last.is_none() {
            return Err(Stop::Eof);
        }
        parse_go_int(&text)
            .ok_or_else(|| Stop::Error(format!("strconv.Atoi: parsing {text:?}: invalid syntax")))
    }

    fn list_item(
        &mut self,
        mut list: Vec<Value>,
        index: i64,
        nesting: usize,
    ) -> (Vec<Value>, Result<(), Stop>) {
        if index < 0 {
            return (list, error(format!("negative {index} index not allowed")));
        }
        let (rest, last) = self.runes_until(&['[', '.', '=']);
        if !rest.is_empty() {
            return (
                list,
                error(format!("unexpected data at end of array index: {rest:?}")),
            );
        }
        match last {
            None => (list, Err(Stop::Eof)),
            Some('=') => {
                let value = match self.value_list() {
                    Ok(items) => Value::Array(items),
                    Err(ListError::Eof) => Value::String(String::new()),
                    Err(ListError::NotList) => {
                        let (text, _) = self.runes_until(&[',']);
                        self.typed(text)
                    }
                    Err(ListError::Error(message)) => return (list, error(message)),
                };
                set_index(list, index, value)
            }
            Some('[') => {
                let next = match self.key_index() {
                    Ok(next) => next,
                    Err(e) => return (list, error(format!("error parsing index: {}", message(e)))),
                };
                let current = match list.get(usize::try_from(index).unwrap_or(usize::MAX)) {
                    Some(Value::Array(items)) => items.clone(),
                    _ => Vec::new(),
                };
                let (inner, result) = self.list_item(current, next, nesting);
                if result.is_err() {
                    return (list, result);
                }
                set_index(list, index, Value::Array(inner))
            }
            Some(_) => {
                let slot = usize::try_from(index).unwrap_or(usize::MAX);
                let mut inner = match list.get_mut(slot) {
                    Some(Value::Object(map)) => std::mem::take(map),
                    _ => Map::new(),
                };
                let result = self.key(&mut inner, nesting);
                if result.is_err() {
                    // helm keeps what an existing entry got before the error (it edits it in place).
                    if let Some(entry) = list.get_mut(slot) {
                        *entry = Value::Object(inner);
                    }
                    return (list, result);
                }
                set_index(list, index, Value::Object(inner))
            }
        }
    }

    fn value_list(&mut self) -> Result<Vec<Value>, ListError> {
        match self.read() {
            None => return Err(ListError::Eof),
            Some('{') => {}
            Some(_) => {
                self.unread();
                return Err(ListError::NotList);
            }
        }
        let mut list = Vec::new();
        loop {
            let (text, last) = self.runes_until(&[',', '}']);
            match last {
                None => return Err(ListError::Error("list must terminate with '}'".into())),
                Some('}') => {
                    if let Some(next) = self.read()
                        && next != ','
                    {
                        self.unread();
                    }
                    list.push(self.typed(text));
                    return Ok(list);
                }
                Some(_) => list.push(self.typed(text)),
            }
        }
    }
}

enum ListError {
    Eof,
    NotList,
    Error(String),
}

fn message(stop: Stop) -> String {
    match stop {
        Stop::Eof => "EOF".to_owned(),
        Stop::Error(message) => message,
    }
}

fn set(data: &mut Map<String, Value>, key: &str, value: Value) {
    if !key.is_empty() {
        data.insert(key.to_owned(), value);
    }
}

fn set_index(mut list: Vec<Value>, index: i64, value: Value) -> (Vec<Value>, Result<(), Stop>) {
    if index < 0 {
        return (list, error(format!("negative {index} index not allowed")));
    }
    if index > MAX_INDEX {
        return (
            list,
            error(format!(
                "index of {index} is greater than maximum supported index of {MAX_INDEX}"
            )),
        );
    }
    let index = usize::try_from(index).unwrap_or_default();
    if list.len() <= index {
        list.resize(index + 1, Value::Null);
    }
    list[index] = value;
    (list, Ok(()))
}

/// Go's `strconv.ParseInt(s, 10, 64)`: an optional sign and decimal digits, nothing else.
fn parse_go_int(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(expression: &str) -> Result<Value, SetError> {
        let mut map = Map::new();
        parse_into(expression, &mut map, false)?;
        Ok(Value::Object(map))
    }

    #[test]
    fn types_like_helm() {
        assert_eq!(
            parse("a=1,b=true,c=null,d=01,e=x,f=0,g=-5,h=1.5,i=FALSE").unwrap(),
            json!({"a": 1, "b": true, "c": null, "d": "01", "e": "x", "f": 0, "g": -5, "h": "1.5", "i": false})
        );
        assert!(parse("a=1").unwrap()["a"].is_i64());
    }

    #[test]
    fn nesting_lists_and_escapes() {
        assert_eq!(parse("a.b.c=1").unwrap(), json!({"a": {"b": {"c": 1}}}));
        assert_eq!(parse("a={x,y,3}").unwrap(), json!({"a": ["x", "y", 3]}));
        assert_eq!(parse("a[1]=x").unwrap(), json!({"a": [null, "x"]}));
        assert_eq!(
            parse("a[0].b=1,a[0].c=2").unwrap(),
            json!({"a": [{"b": 1, "c": 2}]})
        );
        assert_eq!(parse("a[0][1]=z").unwrap(), json!({"a": [[null, "z"]]}));
        assert_eq!(parse(r"a\.b=c\,d").unwrap(), json!({"a.b": "c,d"}));
        assert_eq!(parse("a=").unwrap(), json!({"a": ""}));
        assert_eq!(parse("a={x},b=2").unwrap(), json!({"a": ["x"], "b": 2}));
    }

    #[test]
    fn strings_only() {
        let mut map = Map::new();
        parse_into("a=1,b=true", &mut map, true).unwrap();
        assert_eq!(Value::Object(map), json!({"a": "1", "b": "true"}));
    }

    #[test]
    fn errors_like_helm() {
        assert_eq!(parse("a").unwrap_err().0, "key \"a\" has no value");
        assert_eq!(
            parse("a,b=1").unwrap_err().0,
            "key \"a\" has no value (cannot end with ,)"
        );
        assert_eq!(parse("a={x").unwrap_err().0, "list must terminate with '}'");
        assert!(parse("a[-1]=x").unwrap_err().0.contains("negative"));
        assert!(parse("a=1,a.b=2").is_err());
    }

    #[test]
    fn merges_into_existing_values() {
        let mut map = json!({"a": {"keep": 1}}).as_object().unwrap().clone();
        parse_into("a.b=2", &mut map, false).unwrap();
        assert_eq!(Value::Object(map), json!({"a": {"keep": 1, "b": 2}}));
    }
}
