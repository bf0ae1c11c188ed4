//! The Go signature of every function, as parameter kinds, so the executor checks arity before
//! evaluating any argument and each argument's type right after evaluating it, as Go's
//! reflection-based call does: `s` string, `i` int, `f` float64, `b` bool, `m` map (nil
//! allowed), `a` anything; a trailing `*` repeats the kind before it (variadic).

pub(crate) fn signature(name: &str) -> Option<&'static str> {
    Some(match name {
        // Go's builtins.
        "not" | "len" => "a",
        "index" | "call" | "eq" => "aa*",
        "ne" | "lt" | "le" | "gt" | "ge" => "aa",
        "print" | "println" | "html" | "js" | "urlquery" => "a*",
        "printf" => "sa*",
        // Helm.
        "include" | "tpl" | "required" => "sa",
        "fail" | "fromYaml" | "fromYamlArray" | "fromJson" | "fromJsonArray" | "mustFromJson"
        | "fromToml" => "s",
        "lookup" => "ssss",
        "toYaml" | "mustToYaml" | "toYamlPretty" | "toJson" | "mustToJson" | "toPrettyJson"
        | "mustToPrettyJson" | "toRawJson" | "mustToRawJson" | "toToml" | "mustToToml" => "a",
        // Sprig: strings.
        "trim" | "upper" | "lower" | "title" | "untitle" | "nospace" | "initials" | "snakecase"
        | "camelcase" | "kebabcase" | "swapcase" | "shuffle" | "regexQuoteMeta" | "atoi" => "s",
        "trimAll" | "trimall" | "trimPrefix" | "trimSuffix" | "contains" | "hasPrefix"
        | "hasSuffix" | "split" | "splitList" | "regexMatch" | "mustRegexMatch" | "regexFind"
        | "mustRegexFind" => "ss",
        "repeat" | "trunc" | "abbrev" | "wrap" | "indent" | "nindent" => "is",
        "substr" | "abbrevboth" => "iis",
        "wrapWith" => "iss",
        "replace"
        | "regexReplaceAll"
        | "mustRegexReplaceAll"
        | "regexReplaceAllLiteral"
        | "mustRegexReplaceAllLiteral" => "sss",
        "plural" => "ssi",
        "splitn" => "sis",
        "regexFindAll" | "mustRegexFindAll" | "regexSplit" | "mustRegexSplit" => "ssi",
        "join" => "sa",
        "cat" | "quote" | "squote" => "a*",
        "sortAlpha" | "toString" | "toStrings" => "a",
        "hello" | "uuidv4" | "now" => "",
        // Sprig: conversions, defaults and types.
        "int" | "int64" | "float64" | "toDecimal" | "empty" | "typeOf" | "kindOf" | "deepCopy"
        | "mustDeepCopy" => "a",
        "default" => "aa*",
        "coalesce" | "all" | "any" => "a*",
        "ternary" => "aab",
        "typeIs" | "typeIsLike" | "kindIs" => "sa",
        "deepEqual" => "aa",
        // Sprig: lists.
        "list" | "tuple" | "concat" | "dict" | "dig" => "a*",
        "first" | "mustFirst" | "rest" | "mustRest" | "last" | "mustLast" | "initial"
        | "mustInitial" | "reverse" | "mustReverse" | "uniq" | "mustUniq" | "compact"
        | "mustCompact" => "a",
        "append" | "mustAppend" | "push" | "mustPush" | "prepend" | "mustPrepend" | "has"
        | "mustHas" => "aa",
        "without" | "mustWithout" | "slice" | "mustSlice" => "aa*",
        "chunk" | "mustChunk" => "ia",
        "until" => "i",
        "untilStep" => "iii",
        "seq" => "i*",
        // Sprig: dicts.
        "get" | "unset" | "hasKey" => "ms",
        "set" => "msa",
        "pluck" => "sm*",
        "merge" | "mustMerge" | "mergeOverwrite" | "mustMergeOverwrite" => "mm*",
        "keys" => "m*",
        "pick" | "omit" => "ms*",
        "values" | "urlJoin" => "m",
        // Sprig: math.
        "add" | "addf" => "a*",
        "add1" | "add1f" | "floor" | "ceil" => "a",
        "sub" | "div" | "mod" => "aa",
        "mul" | "max" | "min" | "biggest" | "subf" | "mulf" | "divf" | "maxf" | "minf" => "aa*",
        "round" => "aif*",
        // Sprig: encodings, semver, paths.
        "b64enc" | "b64dec" | "b32enc" | "b32dec" | "sha1sum" | "sha256sum" | "sha512sum"
        | "adler32sum" | "semver" | "base" | "dir" | "ext" | "clean" | "isAbs" | "osBase"
        | "osDir" | "osExt" | "osClean" | "osIsAbs" | "urlParse" | "getHostByName" => "s",
        "semverCompare" => "ss",
        // Sprig: dates and randomness.
        "date" | "dateModify" | "date_modify" | "must_date_modify" | "mustDateModify" => "sa",
        "dateInZone" | "date_in_zone" => "sas",
        "htmlDate" | "unixEpoch" | "ago" | "duration" | "durationRound" => "a",
        "htmlDateInZone" => "as",
        "toDate" | "mustToDate" => "ss",
        "randAlphaNum" | "randAlpha" | "randAscii" | "randNumeric" | "randBytes" => "i",
        "randInt" => "ii",
        // Sprig: crypto (refused, but their arity is still Go's).
        "genPrivateKey" | "bcrypt" => "s",
        "genCA" => "si",
        "genCAWithKey" => "sis",
        "genSelfSignedCert" => "saai",
        "genSelfSignedCertWithKey" => "saais",
        "genSignedCert" => "saaia",
        "genSignedCertWithKey" => "saaias",
        "derivePassword" => "issss",
        "encryptAES" | "decryptAES" | "buildCustomCert" | "htpasswd" => "ss",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::signature;

    #[test]
    fn every_function_has_a_signature() {
        for name in crate::funcs::names() {
            assert!(signature(name).is_some(), "{name} has no signature");
        }
    }
}
