//! Helm's additions to the function map (pkg/engine/funcs.go and engine.go): `include` and `tpl`
//! reach back into the template set; the encoders follow Go's encoding/json and sigs.k8s.io/yaml.

use super::{CallContext, arity, string_arg};
use crate::encode;
use crate::exec::MAX_DEPTH;
use crate::value::{Map, Value};

type R = Result<Value, String>;

/// Helm stops an `include` of the same name nested deeper than this.
const INCLUDE_RECURSION_LIMIT: usize = 1000;

pub fn include(ctx: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    let name = string_arg(a, 0)?;
    let active = ctx.state.includes.entry(name.to_string()).or_insert(0);
    if *active > INCLUDE_RECURSION_LIMIT {
        return Err(format!(
            "rendering template has a nested reference name: {name}: unable to execute template"
        ));
    }
    *active += 1;
    if ctx.depth + 1 >= MAX_DEPTH {
        return Err(format!(
            "rendering template has a nested reference name: {name}: exceeded maximum template depth ({MAX_DEPTH})"
        ));
    }
    let result = if ctx.set.contains(name) {
        ctx.set
            .execute_with_state(name, &a[1], ctx.state, ctx.depth + 1)
            .map_err(|e| e.to_string())
    } else {
        Err(format!(
            "template: no template {name:?} associated with template \"gotpl\""
        ))
    };
    if let Some(n) = ctx.state.includes.get_mut(name) {
        *n -= 1;
    }
    result.map(Value::str)
}

/// helm v4's `tpl`: the text is parsed into a copy of the set under the root's name (so its
/// defines are visible to its own `include`s only) and that new tree is executed with `vals`.
pub fn tpl(ctx: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    let source = string_arg(a, 0)?;
    if ctx.depth + 1 >= MAX_DEPTH {
        return Err(format!("exceeded maximum template depth ({MAX_DEPTH})"));
    }
    let mut set = ctx.set.clone();
    let tree = set
        .parse_main(crate::ROOT_NAME, source)
        .map_err(|e| format!("cannot parse template {source:?}: {e}"))?;
    let out = set
        .execute_tree(tree, &a[1], ctx.state, ctx.depth + 1)
        .map_err(|e| format!("error during tpl function execution for {source:?}: {e}"))?;
    Ok(Value::str(out.replace("<no value>", "")))
}

pub fn required(ctx: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    let warn = string_arg(a, 0)?;
    let missing = match &a[1] {
        Value::Nil => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    };
    if missing {
        if ctx.set.options().lint_mode {
            return Ok(Value::str(""));
        }
        return Err(warn.to_string());
    }
    Ok(a[1].clone())
}

pub fn fail(ctx: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let msg = string_arg(a, 0)?;
    if ctx.set.options().lint_mode {
        return Ok(Value::str(""));
    }
    Err(msg.to_string())
}

/// `helm template` has no cluster: every lookup finds nothing.
pub fn lookup(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 4)?;
    for i in 0..a.len() {
        string_arg(a, i)?;
    }
    Ok(Value::empty_map())
}

pub fn to_yaml(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let text = encode::to_yaml(&a[0]);
    Ok(Value::str(text.strip_suffix('\n').unwrap_or(&text)))
}

pub fn must_to_yaml(ctx: &mut CallContext, a: &[Value]) -> R {
    to_yaml(ctx, a)
}

pub fn to_yaml_pretty(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    let text = encode::to_yaml_pretty(&a[0]);
    Ok(Value::str(text.strip_suffix('\n').unwrap_or(&text)))
}

pub fn from_yaml(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    match encode::from_yaml(string_arg(a, 0)?) {
        Ok(Value::Map(m)) => Ok(Value::Map(m)),
        Ok(Value::Nil) => Ok(Value::empty_map()),
        Ok(other) => Ok(error_map(format!(
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            json_kind(&other)
        ))),
        Err(e) => Ok(error_map(e)),
    }
}

pub fn from_yaml_array(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    match encode::from_yaml(string_arg(a, 0)?) {
        Ok(Value::List(l)) => Ok(Value::List(l)),
        Ok(Value::Nil) => Ok(Value::list(Vec::new())),
        Ok(other) => Ok(Value::list(vec![Value::str(format!(
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type []interface {{}}",
            json_kind(&other)
        ))])),
        Err(e) => Ok(Value::list(vec![Value::str(e)])),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Map(_) => "object",
        Value::List(_) => "array",
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        _ => "number",
    }
}

fn error_map(msg: String) -> Value {
    let m = Map::new();
    m.insert("Error", Value::str(msg));
    Value::Map(m)
}

pub fn to_json(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::str(encode::to_json(&a[0], true, None)))
}

pub fn must_to_json(ctx: &mut CallContext, a: &[Value]) -> R {
    to_json(ctx, a)
}

pub fn to_pretty_json(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::str(encode::to_json(&a[0], true, Some("  "))))
}

pub fn to_raw_json(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::str(encode::to_json(&a[0], false, None)))
}

fn parse_json(s: &str) -> Result<Value, String> {
    serde_json::from_str::<serde_json::Value>(s)
        .map(Value::from)
        .map_err(|e| encode::go_json_error(s, &e))
}

pub fn from_json(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    match parse_json(string_arg(a, 0)?) {
        Ok(Value::Map(m)) => Ok(Value::Map(m)),
        Ok(Value::Nil) => Ok(Value::empty_map()),
        Ok(other) => Ok(error_map(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            json_kind(&other)
        ))),
        Err(e) => Ok(error_map(e)),
    }
}

pub fn must_from_json(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    parse_json(string_arg(a, 0)?)
}

pub fn from_json_array(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    match parse_json(string_arg(a, 0)?) {
        Ok(Value::List(l)) => Ok(Value::List(l)),
        Ok(Value::Nil) => Ok(Value::list(Vec::new())),
        Ok(other) => Ok(Value::list(vec![Value::str(format!(
            "json: cannot unmarshal {} into Go value of type []interface {{}}",
            json_kind(&other)
        ))])),
        Err(e) => Ok(Value::list(vec![Value::str(e)])),
    }
}

pub fn to_toml(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::str(encode::to_toml(&a[0])?))
}

pub fn from_toml(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    string_arg(a, 0)?;
    // Not carried: a TOML parser would grow every helm renderer instance for a function
    // charts hardly use. The result has helm's shape for a failed parse.
    Ok(error_map("fromToml is not supported by this engine".into()))
}
