//! Sprig's functions: hand-picked cases and random inputs for strings, word case, lists and
//! dicts (merge above all), math, encodings, semver and paths.

use super::*;

#[test]
fn sprig_strings() {
    let d = json!({"s": "  Hello World  ", "w": "hello-world_foo bar", "n": 5, "f": 2.0});
    let mut cases = Vec::new();
    for src in [
        "{{ trim .s }}|{{ trimAll \"H \" .s }}|{{ trimPrefix \"  He\" .s }}|{{ trimSuffix \"d  \" .s }}",
        "{{ upper \"abc\" }} {{ lower \"ABC\" }} {{ title \"hello wORLD foo_bar\" }} {{ untitle \"Hello World\" }}",
        "{{ repeat 3 \"ab\" }} {{ substr 1 3 \"abcdef\" }} {{ substr -1 2 \"abcdef\" }} {{ substr 2 99 \"abcdef\" }}",
        "{{ nospace \" a b\\tc \" }} {{ trunc 3 \"abcdef\" }} {{ trunc -2 \"abcdef\" }} {{ trunc 10 \"ab\" }}",
        "{{ abbrev 5 \"hello world\" }} {{ abbrev 3 \"hello\" }} {{ abbrevboth 5 10 \"1234 5678 9123\" }}",
        "{{ initials \"First Try\" }} {{ wrap 5 \"hello world again\" }} {{ wrapWith 5 \"\\t\" \"hello world\" }}",
        "{{ contains \"ll\" \"hello\" }} {{ hasPrefix \"he\" \"hello\" }} {{ hasSuffix \"lo\" \"hello\" }}",
        "{{ quote \"a\" 1 nil \"b\\\"c\" }} {{ squote \"a\" 2 }} {{ cat \"a\" 1 nil 2.5 }}",
        "{{ indent 2 \"a\\nb\" }}|{{ nindent 4 \"x\" }}",
        "{{ replace \"a\" \"b\" \"banana\" }} {{ replace \"\" \"-\" \"ab\" }} {{ plural \"one\" \"many\" 2 }} {{ plural \"one\" \"many\" 1 }}",
        "{{ snakecase \"FirstName\" }} {{ snakecase \"HTTPServer\" }} {{ snakecase \"already_snake\" }} {{ snakecase \"some text here\" }}",
        "{{ camelcase \"http_server\" }} {{ camelcase \"foo-bar baz\" }} {{ camelcase \"FooBar\" }}",
        "{{ kebabcase \"FirstName\" }} {{ kebabcase \"foo_bar\" }} {{ swapcase \"Hello World\" }}",
        "{{ split \"$\" \"foo$bar$baz\" }} {{ (split \"$\" \"a$b\")._1 }}",
        "{{ splitList \",\" \"a,b,,c\" }} {{ splitn \",\" 2 \"a,b,c\" }} {{ splitList \"\" \"abc\" }}",
        "{{ join \"-\" (list 1 \"a\" nil 2.5) }} {{ join \",\" \"single\" }} {{ sortAlpha (list \"c\" \"a\" \"B\" 1) }}",
        "{{ toString 3 }} {{ toString 2.5 }} {{ toString nil }} {{ toStrings (list 1 nil \"a\") }}",
        "{{ upper 3 }}",
        "{{ upper .f }}",
        "{{ repeat .n \"x\" }}",
        "{{ repeat -1 \"x\" }}",
        "{{ substr 3 1 \"abc\" }}",
        "{{ \"abc\" | upper | repeat 2 }}",
        "{{ trunc 63 (printf \"%s-%s\" \"release-name-that-is-fairly-long\" \"chart-name-that-is-also-quite-long\") | trimSuffix \"-\" }}",
        "{{ regexMatch \"^[a-z]+$\" \"abc\" }} {{ regexMatch \"[\" \"x\" }} {{ regexFind \"[0-9]+\" \"ab12cd34\" }}",
        "{{ regexFindAll \"[0-9]\" \"a1b2c3\" -1 }} {{ regexFindAll \"[0-9]\" \"a1b2c3\" 2 }}",
        "{{ regexReplaceAll \"a(x*)b\" \"-ab-axxb-\" \"${1}W\" }} {{ regexReplaceAllLiteral \"a(x*)b\" \"-ab-axxb-\" \"${1}\" }}",
        "{{ regexSplit \"z+\" \"pizza\" -1 }} {{ regexSplit \"z+\" \"pizza\" 1 }} {{ regexQuoteMeta \"1.2+[x]\" }}",
        "{{ mustRegexMatch \"[\" \"x\" }}",
        "{{ regexReplaceAll \"(?i)HELLO\" \"hello Hello\" \"bye\" }} {{ regexMatch \"^\\\\w+\\\\s\\\\d$\" \"ab 1\" }}",
        "{{ atoi \"42\" }} {{ atoi \"x\" }} {{ int \"12\" }} {{ int 3.9 }} {{ int64 \"0x10\" }} {{ float64 \"1.5\" }} {{ int \"3.0\" }}",
        "{{ toDecimal \"0777\" }} {{ toDecimal 17 }}",
        "{{ seq 3 }} | {{ seq 2 5 }} | {{ seq 5 2 }} | {{ seq 0 2 10 }} | {{ seq 10 -3 1 }}",
        "{{ hello }}",
        "{{ regexMatch \"^\\\\d+$\" \"٣٤\" }} {{ regexMatch \"^\\\\w+$\" \"é\" }} {{ regexFindAll \"\\\\b\\\\w+\\\\b\" \"é-ab c_d\" -1 }} {{ regexReplaceAll \"\\\\s\" \"a\\u00a0b c\" \"_\" }}",
        "{{ regexFindAll \"[\\\\d.]+\" \"v1.2.3 ٣\" -1 }} {{ regexSplit \"\\\\W+\" \"a,b;é c\" -1 }} {{ regexMatch \"(?i)straße\" \"STRASSE\" }} {{ regexFind \"[[:alpha:]]+\" \"12abc\" }}",
    ] {
        cases.push(case(src, d.clone()));
    }
    compare(cases);
}

#[test]
fn sprig_defaults_types_lists_dicts() {
    let d = json!({"l": [3, 1, 2, 1], "m": {"a": 1, "b": {"c": 2}}, "e": "", "z": 0, "f": 1.5, "nested": {"x": {"y": {"z": "deep"}}}});
    let mut cases = Vec::new();
    for src in [
        "{{ default \"d\" .e }} {{ default \"d\" .z }} {{ default \"d\" .f }} {{ default \"d\" .missing }} {{ default \"d\" false }} {{ .missing | default 5 }}",
        "{{ default \"d\" }}",
        "{{ empty .e }} {{ empty .l }} {{ empty .missing }} {{ empty (dict) }} {{ empty 0.0 }}",
        "{{ coalesce .missing .e \"x\" }} {{ coalesce .e .z }} {{ all 1 \"a\" .l }} {{ all 1 .e }} {{ any .e .z }} {{ any .e 1 }}",
        "{{ ternary \"y\" \"n\" true }} {{ ternary \"y\" \"n\" false }} {{ true | ternary 1 2 }}",
        "{{ ternary 1 2 \"x\" }}",
        "{{ typeOf 1 }} {{ typeOf .f }} {{ typeOf \"s\" }} {{ typeOf .l }} {{ typeOf .m }} {{ typeOf nil }} {{ typeOf true }}",
        "{{ kindOf 1 }} {{ kindOf .f }} {{ kindOf .l }} {{ kindOf .m }} {{ kindOf nil }} {{ kindIs \"map\" .m }} {{ typeIs \"float64\" .f }} {{ typeIsLike \"string\" \"x\" }}",
        "{{ deepEqual .l (list 3.0 1.0 2.0 1.0) }} {{ deepEqual .l (list 3 1 2 1) }} {{ deepEqual .m .m }}",
        "{{ list 1 \"a\" nil }} {{ tuple 1 2 }} {{ first .l }} {{ last .l }} {{ rest .l }} {{ initial .l }}",
        "{{ first (list) }} {{ rest (list) }} {{ last (list) }} {{ initial (list) }}",
        "{{ first \"abc\" }}",
        "{{ append .l 9 }} {{ push .l 9 }} {{ prepend .l 0 }} {{ concat .l (list 7) (list) }} {{ reverse .l }}",
        "{{ uniq .l }} {{ without .l 1.0 }} {{ has 2.0 .l }} {{ has 2 .l }} {{ has 1 nil }} {{ compact (list 0 1 \"\" \"a\" nil false) }}",
        "{{ slice .l 1 3 }} {{ slice .l 2 }} {{ slice (list) }} {{ chunk 3 (list 1 2 3 4 5) }}",
        "{{ slice .l 3 1 }}",
        "{{ until 3 }} {{ until -2 }} {{ untilStep 0 10 3 }} {{ untilStep 5 0 -2 }} {{ untilStep 0 5 -1 }}",
        "{{ dict \"a\" 1 \"b\" }} {{ dict }} {{ dict 1 2 }}",
        "{{ get .m \"a\" }} {{ get .m \"zz\" }} {{ hasKey .m \"a\" }} {{ hasKey .m \"x\" }}",
        "{{ $d := dict \"a\" 1 }}{{ $_ := set $d \"b\" 2 }}{{ $d }} {{ unset $d \"a\" }} {{ $d }}",
        "{{ $_ := set .m \"new\" 1 }}{{ .m }}",
        "{{ pluck \"a\" .m (dict \"a\" 5) (dict \"b\" 6) }} {{ dig \"b\" \"c\" \"dflt\" .m }} {{ dig \"b\" \"x\" \"dflt\" .m }} {{ dig \"nested\" \"x\" \"y\" \"z\" \"no\" . }}",
        "{{ dig \"a\" \"x\" \"dflt\" .m }}",
        "{{ $a := dict \"a\" 1 \"b\" (dict \"c\" 1 \"e\" \"\") }}{{ $b := dict \"a\" 2 \"b\" (dict \"d\" 2 \"e\" \"filled\") \"x\" 3 }}{{ merge $a $b }} {{ $a }}",
        "{{ $a := dict \"a\" 1 \"b\" (dict \"c\" 1) \"l\" (list 1) }}{{ $b := dict \"a\" 2 \"b\" (dict \"c\" 5 \"d\" 2) \"l\" (list 2 3) \"n\" nil }}{{ mergeOverwrite $a $b }}",
        "{{ $a := dict \"a\" 0 \"s\" \"\" \"f\" false }}{{ merge $a (dict \"a\" 5 \"s\" \"x\" \"f\" true) }}",
        "{{ keys .m | sortAlpha }} {{ pick .m \"a\" \"zz\" }} {{ omit .m \"a\" }} {{ values (dict \"x\" 1) }}",
        "{{ $c := deepCopy .m }}{{ $_ := set $c \"a\" 9 }}{{ .m.a }} {{ $c.a }}",
        "{{ get \"notamap\" \"a\" }}",
        "{{ set nil \"a\" 1 }}",
    ] {
        cases.push(case(src, d.clone()));
    }
    compare(cases);
}

#[test]
fn sprig_math_encoding_semver_paths() {
    let d = json!({"f": 2.5, "i": 7, "s": "12"});
    let mut cases = Vec::new();
    for src in [
        "{{ add 1 2 }} {{ add .f .i }} {{ add .s 1 }} {{ add }} {{ add1 .f }} {{ sub 10 .i }} {{ mul 2 .f 3 }} {{ div 7 2 }} {{ mod 7 3 }}",
        "{{ div 1 0 }}",
        "{{ max 1 5 3 }} {{ min 4 .f 9 }} {{ biggest 1 2 }} {{ floor 2.7 }} {{ ceil 2.1 }} {{ round 2.555 2 }} {{ round 2.5 0 }} {{ round 2.4 0 0.4 }}",
        "{{ addf 0.1 0.2 }} {{ add1f 1.5 }} {{ subf 1 0.9 }} {{ mulf 1.1 3 }} {{ divf 10 4 }} {{ maxf 1 2.5 }} {{ minf 1 2.5 -1 }}",
        "{{ add 1 2 | typeOf }} {{ len (list 1) | typeOf }} {{ 3 | typeOf }} {{ floor 2 | typeOf }} {{ int64 3 | kindOf }}",
        "{{ repeat (add 1 1) \"x\" }}",
        "{{ rest (list) | toJson }} {{ initial (list) | toYaml }} {{ concat | toJson }} {{ concat (list) (list) | toYaml }} {{ rest (list) | toYamlPretty }} {{ rest (list) }} {{ concat | len }} {{ dict \"a\" (rest (list)) | toYaml }} {{ dict \"a\" (rest (list)) | toYamlPretty }}",
        "{{ splitList \",\" \"a,b\" | typeOf }} {{ until 2 | typeOf }} {{ keys (dict \"a\" 1) | typeOf }} {{ list 1 | typeOf }} {{ slice (splitList \",\" \"a,b\") 1 | typeOf }} {{ rest (splitList \",\" \"a,b\") | typeOf }} {{ regexFindAll \"a\" \"aa\" -1 | typeOf }}",
        "{{ deepEqual (splitList \",\" \"a\") (list \"a\") }} {{ range splitList \",\" \"a,b\" }}{{ .x }}{{ end }}",
        "{{ deepEqual (add 1 1) 2 }} {{ eq (add 1 1) 2 }} {{ has (add 1 1) (list 2) }} {{ lt (int64 1) 2 }}",
        "{{ b64enc \"hello\" }} {{ b64dec \"aGVsbG8=\" }} {{ b64dec \"!!\" }} {{ b32enc \"hello\" }} {{ b32dec \"NBSWY3DP\" }}",
        "{{ sha1sum \"abc\" }} {{ sha256sum \"abc\" }} {{ adler32sum \"abc\" }}",
        "{{ sha512sum \"abc\" }}",
        "{{ semverCompare \">=1.21-0\" \"1.21.3-gke.100\" }} {{ semverCompare \">=1.21\" \"1.21.3-gke.100\" }} {{ semverCompare \"^1.2\" \"1.5.0\" }} {{ semverCompare \"~1.2.3\" \"1.3.0\" }}",
        "{{ semverCompare \">= 1.19-0, < 1.30-0\" \"v1.25.4\" }} {{ semverCompare \"1.2 - 1.4\" \"1.4.9\" }} {{ semverCompare \"<1 || >=3\" \"3.1.0\" }} {{ semverCompare \"!=1.2.3\" \"1.2.3\" }}",
        "{{ semverCompare \"bad\" \"1.0.0\" }}",
        "{{ semverCompare \">1\" \"bad\" }}",
        "{{ (semver \"1.2.3-beta.1+build\").Major }} {{ (semver \"v1.2\").Minor }} {{ (semver \"1.2.3-beta.1+b\").Prerelease }} {{ (semver \"1.2.3+b\").Metadata }}",
        "{{ base \"a/b/c.txt\" }} {{ dir \"a/b/c.txt\" }} {{ ext \"a/b/c.tar.gz\" }} {{ clean \"a/../b//c/.\" }} {{ isAbs \"/x\" }} {{ base \"\" }} {{ dir \"x\" }}",
        "{{ urlParse \"https://user:pw@host.example:8443/p/a?q=1#frag\" }}",
        "{{ urlJoin (dict \"scheme\" \"https\" \"host\" \"h\" \"path\" \"/p\" \"query\" \"a=b\") }}",
        "{{ date \"2006-01-02 15:04:05\" 0 }} {{ htmlDate 86400 }} {{ unixEpoch (toDate \"2006-01-02\" \"2024-02-29\") }}",
        "{{ dateInZone \"Jan 2, 2006 3:04pm MST\" 1700000000 \"UTC\" }} {{ (toDate \"2006-01-02\" \"2024-02-29\").Year }}",
        "{{ duration 95 }} {{ duration (int64 95) }} {{ duration \"95\" }} {{ duration \"3600\" }} {{ durationRound \"2h10m\" }} {{ durationRound \"50s\" }}",
    ] {
        cases.push(case(src, d.clone()));
    }
    compare(cases);
}

/// Word-case conversions (xstrings) on identifiers mixing acronyms, digits and separators.
#[test]
fn case_conversions_like_xstrings() {
    const PIECES: &[&str] = &[
        "http", "HTTP", "Server", "server", "ID", "id", "X", "x", "2", "42", "_", "-", " ", ".",
        "__", "v1", "V2", "ÉtÉ", "aB", "Ab", "ABc", "json", "JSONData", "k8s", "  ",
    ];
    let mut state = 0xDEAD_BEEF_CAFE_F00Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut cases = Vec::new();
    for _ in 0..300 {
        let len = 1 + next() % 5;
        let s: String = (0..len)
            .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
            .collect();
        cases.push(case(
            "{{ snakecase .s }}|{{ camelcase .s }}|{{ kebabcase .s }}|{{ swapcase .s }}|{{ title .s }}|{{ untitle .s }}|{{ initials .s }}",
            json!({"s": s}),
        ));
    }
    compare(cases);
}

/// Sprig's string functions on random ASCII text and random counts (byte-slicing functions on
/// multi-byte text would make invalid UTF-8 in Go, which a Rust string cannot hold).
#[test]
fn string_functions_on_random_text() {
    const PIECES: &[&str] = &[
        "a", "bc", " ", "  ", "\n", "-", "x-y", "Hello", "WORLD", ".", "$1", ",", "\t", "ab ab",
    ];
    let mut state = 0x0BAD_5EED_1234_9876u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let templates = [
        "{{ trunc .n .s }}|{{ trunc .m .s }}|{{ substr .m .n .s }}|{{ abbrev .n .s }}",
        "{{ abbrevboth .m .n .s }}|{{ wrap .n .s }}|{{ wrapWith .n \"<br>\" .s }}",
        "{{ indent .n .s }}|{{ nindent .n .s }}|{{ replace \"a\" \"A\" .s }}|{{ repeat .n .s }}",
        "{{ trim .s }}|{{ trimAll \" a\" .s }}|{{ trimPrefix \"a\" .s }}|{{ trimSuffix \"b\" .s }}|{{ nospace .s }}",
        "{{ title .s }}|{{ upper .s }}|{{ lower .s }}|{{ quote .s }}|{{ squote .s }}|{{ cat .s .n .s }}",
        "{{ splitList \" \" .s }}|{{ split \"a\" .s }}|{{ splitn \" \" .n .s }}|{{ join \"+\" (splitList \" \" .s) }}",
        "{{ sortAlpha (splitList \" \" .s) }}|{{ contains \"a\" .s }}|{{ hasPrefix \"a\" .s }}|{{ plural \"one\" \"many\" .n }}",
        "{{ regexFindAll \"[a-z]+\" .s .m }}|{{ regexReplaceAll \"(b)(c)?\" .s \"<$2$1>\" }}|{{ regexSplit \"\\\\s+\" .s .m }}",
        "{{ len .s }}|{{ .s | b64enc | b64dec }}|{{ sha1sum .s }}|{{ adler32sum .s }}|{{ toJson .s }}|{{ urlquery .s }}",
    ];
    let mut cases = Vec::new();
    for i in 0..400 {
        let len = next() % 7;
        let s: String = (0..len)
            .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
            .collect();
        let n = (next() % 14) as i64 - 2;
        let m = (next() % 10) as i64 - 3;
        let src = templates[i % templates.len()];
        // Counts are ints, as a template literal or `len` gives them.
        let src = src.replace(".n", "(int .n)").replace(".m", "(int .m)");
        cases.push(case(&src, json!({"s": s, "n": n, "m": m})));
    }
    compare(cases);
}

/// Sprig's list and dict functions, merge's mergo semantics above all, on random nested data.
#[test]
fn collection_functions_on_random_data() {
    let mut state = 0x0515_17E5_70DD_5EEDu64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    fn value(next: &mut dyn FnMut() -> u64, depth: u32) -> serde_json::Value {
        match next() % if depth > 2 { 7 } else { 10 } {
            0 => json!(null),
            1 => json!(""),
            2 => json!(0),
            3 => json!(next() % 5),
            4 => json!(["a", "b"][(next() % 2) as usize]),
            5 => json!(next().is_multiple_of(2)),
            6 => json!([]),
            7 | 8 => {
                let mut m = serde_json::Map::new();
                for _ in 0..next() % 4 {
                    m.insert(
                        ["a", "b", "c", "d"][(next() % 4) as usize].into(),
                        value(next, depth + 1),
                    );
                }
                serde_json::Value::Object(m)
            }
            _ => {
                serde_json::Value::Array((0..next() % 4).map(|_| value(next, depth + 1)).collect())
            }
        }
    }
    let templates = [
        "{{ $d := deepCopy .x }}{{ $s := deepCopy .y }}{{ merge $d $s | toJson }}|{{ toJson $d }}",
        "{{ $d := deepCopy .x }}{{ $s := deepCopy .y }}{{ mergeOverwrite $d $s | toJson }}",
        "{{ $d := deepCopy .x }}{{ merge $d (deepCopy .y) (deepCopy .z) | toJson }}",
        "{{ toJson (pick .x \"a\" \"b\") }}|{{ toJson (omit .x \"a\") }}|{{ keys .x | sortAlpha }}|{{ hasKey .x \"c\" }}|{{ get .x \"d\" }}",
        "{{ dig \"a\" \"b\" \"none\" .x | toJson }}|{{ pluck \"a\" .x .y .z | toJson }}|{{ toJson (dict \"k\" .x.a) }}",
        "{{ $d := deepCopy .x }}{{ $_ := set $d \"a\" .y }}{{ $_ := unset $d \"b\" }}{{ toJson $d }}|{{ toJson .x }}",
        "{{ toJson (list .x .y) }}|{{ uniq (list .x.a .y.a .x.a .z.a) | toJson }}|{{ compact (list .x.a .x.b .x.c 0 \"\") | toJson }}",
        "{{ without (list .x.a .y.a 1 \"a\") .x.a | toJson }}|{{ has .x.a (list .y.a .z.a) }}|{{ concat (list .x) (list .y .z) | len }}",
        "{{ with .l }}{{ first . | toJson }}|{{ last . | toJson }}|{{ rest . | toJson }}|{{ initial . | toJson }}|{{ reverse . | toJson }}|{{ chunk 2 . | toJson }}|{{ slice . 0 1 | toJson }}{{ end }}",
        "{{ append .l .x | toJson }}|{{ prepend .l .y | toJson }}|{{ deepEqual .x .y }}|{{ empty .x }}|{{ coalesce .x.a .y.a .z.a | toJson }}",
    ];
    let mut cases = Vec::new();
    for i in 0..2000 {
        let mut obj = || loop {
            if let v @ serde_json::Value::Object(_) = value(&mut next, 0) {
                return v;
            }
        };
        let (x, y, z) = (obj(), obj(), obj());
        let l = serde_json::Value::Array((0..next() % 5).map(|_| value(&mut next, 2)).collect());
        cases.push(case(
            templates[i % templates.len()],
            json!({"x": x, "y": y, "z": z, "l": l}),
        ));
    }
    compare(cases);
}
