//! The function map: Go's text/template builtins, Sprig v3 and Helm's additions, each taking
//! already-evaluated arguments. Argument checks reproduce the errors Go's reflection-based call
//! would give for the Go signature (wrong count, nil where a string is expected…).

mod builtin;
mod conv;
mod dates;
mod dicts;
mod encoding;
mod helm;
mod lists;
mod math;
mod nondeterministic;
mod paths;
mod regex;
mod semver;
mod signatures;
mod strings;
mod wordcase;

use crate::value::Value;
use crate::{RunState, Templates};

/// What a function may reach besides its arguments: the template set (for `include`/`tpl`)
/// and the per-execution state.
pub(crate) struct CallContext<'a, 's> {
    pub set: &'a Templates,
    pub state: &'s mut RunState,
    pub depth: usize,
}

/// Note that a function whose result is not a function of its arguments ran.
pub(crate) fn record(ctx: &mut CallContext, name: &'static str) {
    ctx.state.nondeterministic.insert(name);
}

pub(crate) type NativeFn = fn(&mut CallContext, &[Value]) -> Result<Value, String>;

pub(crate) use conv::parse_int_base0;
pub(crate) use signatures::signature;

pub(crate) fn exists(name: &str) -> bool {
    lookup(name).is_some()
}

/// Marks an error Go reports while converting arguments, before the call: it names the
/// argument, not the call (`at <.x>: wrong type for value…`, not `error calling f: …`).
const ARG_ERROR: char = '\u{1}';

/// The argument index that marks a wrong argument count.
const ARITY: usize = usize::MAX;

pub(crate) fn arg_error(index: usize, message: String) -> String {
    format!("{ARG_ERROR}{index}{ARG_ERROR}{message}")
}

/// `(argument index, message)` of an argument error; the index is `None` for a wrong count.
pub(crate) fn parse_arg_error(e: &str) -> Option<(Option<usize>, &str)> {
    let rest = e.strip_prefix(ARG_ERROR)?;
    let (index, message) = rest.split_once(ARG_ERROR)?;
    let index: usize = index.parse().ok()?;
    Some(((index != ARITY).then_some(index), message))
}

/// Check the argument count against a Go signature with `n` fixed parameters.
pub(crate) fn arity(args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(arg_error(ARITY, format!("want {n} got {}", args.len())));
    }
    Ok(())
}

/// Check the count for a variadic Go signature with `n` fixed parameters.
pub(crate) fn at_least(args: &[Value], n: usize) -> Result<(), String> {
    if args.len() < n {
        return Err(arg_error(
            ARITY,
            format!("want at least {n} got {}", args.len()),
        ));
    }
    Ok(())
}

fn wrong_type(args: &[Value], i: usize, want: &str) -> String {
    match &args[i] {
        Value::Nil => arg_error(i, format!("invalid value; expected {want}")),
        other => arg_error(
            i,
            format!(
                "wrong type for value; expected {want}; got {}",
                other.type_name()
            ),
        ),
    }
}

/// A `string` parameter: Go refuses nil and other kinds.
pub(crate) fn string_arg(args: &[Value], i: usize) -> Result<&str, String> {
    match &args[i] {
        Value::String(s) => Ok(s),
        _ => Err(wrong_type(args, i, "string")),
    }
}

/// An `int` parameter: Go refuses floats, even integral ones.
pub(crate) fn int_arg(args: &[Value], i: usize) -> Result<i64, String> {
    match &args[i] {
        Value::Int(n) => Ok(*n),
        _ => Err(wrong_type(args, i, "int")),
    }
}

/// A `bool` parameter.
pub(crate) fn bool_arg(args: &[Value], i: usize) -> Result<bool, String> {
    match &args[i] {
        Value::Bool(b) => Ok(*b),
        _ => Err(wrong_type(args, i, "bool")),
    }
}

/// The kind of parameter `i` under `signature`, `None` past the end of a fixed signature.
pub(crate) fn param_kind(signature: &str, i: usize) -> Option<char> {
    let kinds: Vec<char> = signature.chars().collect();
    match kinds.last() {
        Some('*') if i + 2 >= kinds.len() => kinds.get(kinds.len() - 2).copied(),
        _ => kinds.get(i).copied(),
    }
}

/// Go's arity check for a signature, before any argument is evaluated.
/// `count` includes a piped final argument; Go's variadic message counts only the written ones.
pub(crate) fn check_arity(
    name: &str,
    signature: &str,
    count: usize,
    written: usize,
) -> Result<(), String> {
    let variadic = signature.ends_with('*');
    let fixed = signature.chars().filter(|c| *c != '*').count() - usize::from(variadic);
    if variadic && count < fixed {
        return Err(format!(
            "wrong number of args for {name}: want at least {fixed} got {written}"
        ));
    }
    if !variadic && count != fixed {
        return Err(format!(
            "wrong number of args for {name}: want {fixed} got {count}"
        ));
    }
    Ok(())
}

/// The Go type of a parameter kind.
pub(crate) fn kind_name(kind: char) -> &'static str {
    match kind {
        's' => "string",
        'i' => "int",
        'b' => "bool",
        'm' => "map[string]interface {}",
        'f' => "float64",
        _ => "interface {}",
    }
}

/// Whether `value` can be passed as a parameter of `kind` (reflect's assignability).
pub(crate) fn check_param(kind: char, value: &Value) -> Result<(), String> {
    if kind == 'a' {
        return Ok(());
    }
    let want = kind_name(kind);
    let ok = matches!(
        (kind, value),
        ('s', Value::String(_))
            | ('i', Value::Int(_))
            | ('b', Value::Bool(_))
            | ('f', Value::Float(_))
            | ('m', Value::Map(_) | Value::Nil)
    );
    match (ok, value) {
        (true, _) => Ok(()),
        (false, Value::Nil) => Err(format!("invalid value; expected {want}")),
        (false, other) => Err(format!(
            "wrong type for value; expected {want}; got {}",
            other.type_name()
        )),
    }
}

macro_rules! table {
    ($name:expr; $($key:literal => $f:expr,)*) => {
        match $name {
            // The function names, for tests that check every function.
            None => { static NAMES: &[&str] = &[$($key,)*]; return (None, NAMES); }
            $(Some($key) => Some($f as NativeFn),)*
            Some(_) => None,
        }
    };
}

/// Every built-in function name (not `and`/`or`, which the executor implements).
#[cfg(test)]
pub(crate) fn names() -> &'static [&'static str] {
    table_lookup(None).1
}

pub(crate) fn lookup(name: &str) -> Option<NativeFn> {
    table_lookup(Some(name)).0
}

fn table_lookup(name: Option<&str>) -> (Option<NativeFn>, &'static [&'static str]) {
    let f = table! { name;
        // Go text/template builtins.
        "not" => builtin::not,
        "len" => builtin::len,
        "index" => builtin::index,
        "print" => builtin::print,
        "printf" => builtin::printf,
        "println" => builtin::println,
        "html" => builtin::html,
        "js" => builtin::js,
        "urlquery" => builtin::urlquery,
        "eq" => builtin::eq,
        "ne" => builtin::ne,
        "lt" => builtin::lt,
        "le" => builtin::le,
        "gt" => builtin::gt,
        "ge" => builtin::ge,
        "call" => builtin::call,
        // Helm.
        "include" => helm::include,
        "tpl" => helm::tpl,
        "required" => helm::required,
        "fail" => helm::fail,
        "lookup" => helm::lookup,
        "toYaml" => helm::to_yaml,
        "mustToYaml" => helm::must_to_yaml,
        "toYamlPretty" => helm::to_yaml_pretty,
        "fromYaml" => helm::from_yaml,
        "fromYamlArray" => helm::from_yaml_array,
        "toJson" => helm::to_json,
        "mustToJson" => helm::must_to_json,
        "toPrettyJson" => helm::to_pretty_json,
        "mustToPrettyJson" => helm::to_pretty_json,
        "toRawJson" => helm::to_raw_json,
        "mustToRawJson" => helm::to_raw_json,
        "fromJson" => helm::from_json,
        "mustFromJson" => helm::must_from_json,
        "fromJsonArray" => helm::from_json_array,
        "toToml" => helm::to_toml,
        "mustToToml" => helm::to_toml,
        "fromToml" => helm::from_toml,
        // Sprig: strings.
        "trim" => strings::trim,
        "trimAll" => strings::trim_all,
        "trimPrefix" => strings::trim_prefix,
        "trimSuffix" => strings::trim_suffix,
        "upper" => strings::upper,
        "lower" => strings::lower,
        "title" => strings::title,
        "untitle" => wordcase::untitle,
        "repeat" => strings::repeat,
        "substr" => strings::substr,
        "nospace" => strings::nospace,
        "trunc" => strings::trunc,
        "abbrev" => strings::abbrev,
        "abbrevboth" => strings::abbrevboth,
        "initials" => wordcase::initials,
        "wrap" => strings::wrap,
        "wrapWith" => strings::wrap_with,
        "contains" => strings::contains,
        "hasPrefix" => strings::has_prefix,
        "hasSuffix" => strings::has_suffix,
        "quote" => strings::quote,
        "squote" => strings::squote,
        "cat" => strings::cat,
        "indent" => strings::indent,
        "nindent" => strings::nindent,
        "replace" => strings::replace,
        "plural" => strings::plural,
        "snakecase" => wordcase::snakecase,
        "camelcase" => wordcase::camelcase,
        "kebabcase" => wordcase::kebabcase,
        "swapcase" => wordcase::swapcase,
        "split" => strings::split,
        "splitList" => strings::split_list,
        "splitn" => strings::splitn,
        "join" => strings::join,
        "sortAlpha" => strings::sort_alpha,
        "toString" => strings::to_string,
        "toStrings" => strings::to_strings,
        "trimall" => strings::trim_all,
        "hello" => strings::hello,
        // Sprig: regular expressions.
        "regexMatch" => regex::regex_match,
        "mustRegexMatch" => regex::must_regex_match,
        "regexFindAll" => regex::regex_find_all,
        "mustRegexFindAll" => regex::regex_find_all,
        "regexFind" => regex::regex_find,
        "mustRegexFind" => regex::regex_find,
        "regexReplaceAll" => regex::regex_replace_all,
        "mustRegexReplaceAll" => regex::regex_replace_all,
        "regexReplaceAllLiteral" => regex::regex_replace_all_literal,
        "mustRegexReplaceAllLiteral" => regex::regex_replace_all_literal,
        "regexSplit" => regex::regex_split,
        "mustRegexSplit" => regex::regex_split,
        "regexQuoteMeta" => regex::regex_quote_meta,
        // Sprig: conversions, defaults and types.
        "atoi" => conv::atoi,
        "int" => conv::to_int,
        "int64" => conv::to_int64,
        "float64" => conv::to_float64,
        "toDecimal" => conv::to_decimal,
        "default" => conv::default,
        "empty" => conv::empty,
        "coalesce" => conv::coalesce,
        "all" => conv::all,
        "any" => conv::any,
        "ternary" => conv::ternary,
        "typeOf" => conv::type_of,
        "typeIs" => conv::type_is,
        "typeIsLike" => conv::type_is_like,
        "kindOf" => conv::kind_of,
        "kindIs" => conv::kind_is,
        "deepEqual" => conv::deep_equal,
        // Sprig: lists.
        "list" => lists::list,
        "tuple" => lists::list,
        "first" => lists::first,
        "mustFirst" => lists::first,
        "rest" => lists::rest,
        "mustRest" => lists::rest,
        "last" => lists::last,
        "mustLast" => lists::last,
        "initial" => lists::initial,
        "mustInitial" => lists::initial,
        "append" => lists::append,
        "mustAppend" => lists::append,
        "push" => lists::append,
        "mustPush" => lists::append,
        "prepend" => lists::prepend,
        "mustPrepend" => lists::prepend,
        "concat" => lists::concat,
        "reverse" => lists::reverse,
        "mustReverse" => lists::reverse,
        "uniq" => lists::uniq,
        "mustUniq" => lists::uniq,
        "without" => lists::without,
        "mustWithout" => lists::without,
        "has" => lists::has,
        "mustHas" => lists::has,
        "compact" => lists::compact,
        "mustCompact" => lists::compact,
        "chunk" => lists::chunk,
        "mustChunk" => lists::chunk,
        "until" => lists::until,
        "untilStep" => lists::until_step,
        "seq" => lists::seq,
        "slice" => lists::sprig_slice,
        "mustSlice" => lists::sprig_slice,
        // Sprig: dicts.
        "dict" => dicts::dict,
        "get" => dicts::get,
        "set" => dicts::set,
        "unset" => dicts::unset,
        "hasKey" => dicts::has_key,
        "pluck" => dicts::pluck,
        "dig" => dicts::dig,
        "merge" => dicts::merge,
        "mustMerge" => dicts::merge,
        "mergeOverwrite" => dicts::merge_overwrite,
        "mustMergeOverwrite" => dicts::merge_overwrite,
        "keys" => dicts::keys,
        "pick" => dicts::pick,
        "omit" => dicts::omit,
        "values" => dicts::values,
        "deepCopy" => dicts::deep_copy,
        "mustDeepCopy" => dicts::deep_copy,
        // Sprig: math.
        "add" => math::add,
        "add1" => math::add1,
        "sub" => math::sub,
        "div" => math::div,
        "mod" => math::modulo,
        "mul" => math::mul,
        "max" => math::max,
        "min" => math::min,
        "biggest" => math::max,
        "floor" => math::floor,
        "ceil" => math::ceil,
        "round" => math::round,
        "addf" => math::addf,
        "add1f" => math::add1f,
        "subf" => math::subf,
        "mulf" => math::mulf,
        "divf" => math::divf,
        "maxf" => math::maxf,
        "minf" => math::minf,
        // Sprig: encodings and hashes.
        "b64enc" => encoding::b64enc,
        "b64dec" => encoding::b64dec,
        "b32enc" => encoding::b32enc,
        "b32dec" => encoding::b32dec,
        "sha1sum" => encoding::sha1sum,
        "sha256sum" => encoding::sha256sum,
        "sha512sum" => encoding::sha512sum,
        "adler32sum" => encoding::adler32sum,
        "urlParse" => encoding::url_parse,
        "urlJoin" => encoding::url_join,
        // Sprig: semantic versions.
        "semver" => semver::semver,
        "semverCompare" => semver::semver_compare,
        // Sprig: paths.
        "base" => paths::base,
        "dir" => paths::dir,
        "ext" => paths::ext,
        "clean" => paths::clean,
        "isAbs" => paths::is_abs,
        "osBase" => paths::base,
        "osDir" => paths::dir,
        "osExt" => paths::ext,
        "osClean" => paths::clean,
        "osIsAbs" => paths::is_abs,
        // Sprig: dates, randomness, crypto and the network: recorded as non-deterministic.
        "now" => dates::now,
        "date" => dates::date,
        "dateInZone" => dates::date_in_zone,
        "date_in_zone" => dates::date_in_zone,
        "htmlDate" => dates::html_date,
        "htmlDateInZone" => dates::html_date_in_zone,
        "toDate" => dates::to_date,
        "mustToDate" => dates::to_date,
        "unixEpoch" => dates::unix_epoch,
        "dateModify" => dates::date_modify,
        "date_modify" => dates::date_modify,
        "must_date_modify" => dates::date_modify,
        "mustDateModify" => dates::date_modify,
        "ago" => dates::ago,
        "duration" => dates::duration,
        "durationRound" => dates::duration_round,
        "randAlphaNum" => nondeterministic::rand_alpha_num,
        "randAlpha" => nondeterministic::rand_alpha,
        "randAscii" => nondeterministic::rand_ascii,
        "randNumeric" => nondeterministic::rand_numeric,
        "randBytes" => nondeterministic::rand_bytes,
        "randInt" => nondeterministic::rand_int,
        "uuidv4" => nondeterministic::uuidv4,
        "shuffle" => nondeterministic::shuffle,
        "genPrivateKey" => nondeterministic::unsupported,
        "genCA" => nondeterministic::unsupported,
        "genCAWithKey" => nondeterministic::unsupported,
        "genSelfSignedCert" => nondeterministic::unsupported,
        "genSelfSignedCertWithKey" => nondeterministic::unsupported,
        "genSignedCert" => nondeterministic::unsupported,
        "genSignedCertWithKey" => nondeterministic::unsupported,
        "derivePassword" => nondeterministic::unsupported,
        "encryptAES" => nondeterministic::unsupported,
        "decryptAES" => nondeterministic::unsupported,
        "buildCustomCert" => nondeterministic::unsupported,
        "htpasswd" => nondeterministic::unsupported,
        "bcrypt" => nondeterministic::unsupported,
        "getHostByName" => nondeterministic::get_host_by_name,
    };
    (f, &[])
}
