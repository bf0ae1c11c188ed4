//! The encoders whose exact text charts depend on: toYaml, toYamlPretty, toJson, toToml, fromYaml,
//! and numbers printed every way a template can print them.

use super::*;

#[test]
fn encoders_yaml_json() {
    let mut cases = Vec::new();
    let docs = vec![
        json!({"a": 1, "b": [1, 2.5, "x"], "c": {"d": null, "e": true}, "f": "", "g": {}, "h": []}),
        json!({"strings": ["yes", "no", "on", "y", "n", "true", "null", "~", "123", "1.5", "0x1F", "1e3", "012", "2024-01-02", "12:30", "-", "- x", "a: b", "a #b", "#c", "@x", "`x", "x:", "x: ", " lead", "trail ", "it's", "\"q\"", "multi\nline", "multi\nline\n", "\nlead nl", "tab\there", "é ü", "---", "...", ".5", "+1", "-1", "0", "1_000", ".inf", "NaN", "<<", "?", "? x", "[x]", "{x}", "x,y", "*a", "&a", "!t", "%p", "|", ">"]}),
        json!({"nums": [0, 1, -1, 1000000, 1e21, 0.000001, 0.1, 123456789012.0, 1.5e300, -0.0]}),
        json!({"keys": {"b": 1, "a10": 2, "a2": 3, "A": 4, "_": 5, "1": 6, "10": 7, "2": 8, "yes": 9, "": 10, "with space": 11, "x:y": 12}}),
        json!([{"name": "a", "ports": [{"port": 80}]}, [1, [2, 3]], "s", {}]),
        json!({"script": "#!/bin/sh\necho hi\n\nexit 0\n", "trailing": "a\n\n", "spaces": "a \nb", "indented": "  x\ny"}),
        json!("just a string"),
        json!(3.5),
        json!(null),
        json!({"long": "this is a rather long string value that goes past the eighty column limit of the yaml emitter for sure"}),
    ];
    for doc in docs {
        for f in [
            "toYaml",
            "toJson",
            "toPrettyJson",
            "toRawJson",
            "toYamlPretty",
        ] {
            cases.push(case(
                &format!("{{{{ {f} .v }}}}"),
                json!({"v": doc.clone()}),
            ));
        }
    }
    for src in [
        "{{ (fromYaml \"a: 1\\nb: [x, 2]\\nc: {d: true}\").b }}",
        "{{ fromYaml \"a: 1\\nb: [x, 2]\\n\" | toJson }}",
        "{{ fromYaml \"- 1\\n- 2\" }}",
        "{{ fromYamlArray \"- 1\\n- a\" }} {{ fromYamlArray \"a: 1\" }}",
        "{{ fromYaml \"\" }} {{ fromYamlArray \"\" }}",
        "{{ fromJson \"{\\\"a\\\": [1, 2.5]}\" }} {{ (fromJson \"not json\").Error | empty }} {{ fromJsonArray \"[1, \\\"x\\\"]\" }}",
        "{{ mustFromJson \"[1,2]\" }} {{ mustFromJson \"3\" }}",
        "{{ dict \"a\" 1 \"b\" (list 1 2) | toYaml | nindent 2 }}",
        "{{ toYaml (dict \"html\" \"<b>&\") }} {{ toJson (dict \"html\" \"<b>&\") }} {{ toRawJson (dict \"html\" \"<b>&\") }}",
        "{{ toJson 1.0 }} {{ toJson 3 }} {{ toJson \"s\" }} {{ toJson nil }} {{ toJson (list) }}",
    ] {
        cases.push(case(src, json!({})));
    }
    compare(cases);
}

#[test]
fn from_yaml_reads_yaml_1_1_like_go_yaml_v2() {
    let doc = "a: yes\nb: 0755\nc: 1e3\nd: ~\ne: 2024-01-01\nf: 1_000\ng: on\nh: 0x1F\ni: .5\nj: +12\nk: 12:30\nl: 'quoted'\nm: [1, two, 3.0, no, 'no', \"Off\"]\nn: {x: null}\no: |\n  block\np: >-\n  folded\n  text\nq: 1.0\nr: -0\ns: 9007199254740993\nt: true\nu: null\nY: 1\n123456789: big\n1.5: f\n0b101: bin\nv: 0b101\nw: -0b11\nx: 0o17\nyy: 1_0.5\n";
    let d = json!({"doc": doc});
    compare(vec![
        case("{{ fromYaml .doc | toJson }}", d.clone()),
        case(
            "{{ range $k, $v := fromYaml .doc }}{{ $k }}={{ $v }}({{ typeOf $v }});{{ end }}",
            d.clone(),
        ),
        case("{{ (fromYaml \"a: [unclosed\").Error | empty }}", d.clone()),
        case("{{ fromYaml \"a: 1\\n---\\nb: 2\" | toJson }}", d.clone()),
        case(
            "{{ fromYamlArray \"- a\\n- 2\\n- {b: c}\" | toJson }}",
            d.clone(),
        ),
    ]);
}

/// Strings built at random from the characters YAML treats specially, at lengths around the
/// 80-column fold, through `toYaml`/`toYamlPretty`/`toJson` as map values, list items and keys.
#[test]
fn random_strings_encode_like_go() {
    const PIECES: &[&str] = &[
        "a",
        "word",
        "x",
        " ",
        " ",
        "  ",
        "\n",
        "\t",
        ":",
        ": ",
        "#",
        " #",
        "-",
        "- ",
        "?",
        "'",
        "\"",
        "\\",
        "{",
        "}",
        "[",
        "]",
        ",",
        "&",
        "*",
        "!",
        "|",
        ">",
        "%",
        "@",
        "`",
        "é",
        "日本",
        "0",
        "12",
        "1.5",
        "e3",
        "0x",
        "true",
        "null",
        "~",
        "yes",
        ".",
        "...",
        "---",
        "=",
        "<<",
        "averyveryveryverylongwordwithoutanyspacesatallthatkeepsgoing",
    ];
    let mut state = 0x1234_5678_9ABC_DEF1u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut cases = Vec::new();
    for i in 0..1500 {
        let len = 1 + next() % if i % 3 == 0 { 40 } else { 8 };
        let s: String = (0..len)
            .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
            .collect();
        let doc = json!({"k": s.clone(), "list": [s.clone(), {"nested": s.clone()}], s.clone(): 1});
        let f = ["toYaml", "toYamlPretty", "toJson"][i % 3];
        cases.push(case(&format!("{{{{ {f} .v }}}}"), json!({"v": doc})));
    }
    compare(cases);
}

/// Numbers at the edges of Go's formatting (shortest float text, the %e switch at 1e21 and
/// 1e-4/1e-6, integral floats, big integers) through every way a template prints them.
#[test]
fn numbers_print_like_go() {
    let numbers = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.1,
        0.5,
        2.5,
        3.0,
        10.0,
        100.0,
        1e5,
        123456.0,
        1234567.0,
        1e6,
        1e7,
        1e15,
        1e16,
        1e20,
        1e21,
        1e22,
        1.5e300,
        0.0001,
        0.00001,
        1e-6,
        1e-7,
        5e-324,
        123.456,
        9007199254740993.0,
        -123456789.0,
        0.1 + 0.2,
        1.0 / 3.0,
        2.0 / 3.0,
        42.42,
        6.02214076e23,
    ];
    let mut cases = Vec::new();
    for n in numbers {
        let d = json!({"n": n, "s": format!("{n}")});
        for src in [
            "{{ .n }} {{ print .n }} {{ toString .n }} {{ quote .n }}",
            "{{ printf \"%v %g %f %.3f %e %G %6.2f %x\" .n .n .n .n .n .n .n .n }}",
            "{{ toYaml .n }} {{ toJson .n }} {{ toYamlPretty .n }} {{ toYaml (list .n) }}",
            "{{ int .n }} {{ int64 .n }} {{ float64 .n }} {{ add .n 0 }} {{ addf .n 0 }} {{ mulf .n 2 }}",
            "{{ floor .n }} {{ ceil .n }} {{ round .n 2 }} {{ .n | toString | float64 }} {{ atoi .s }}",
            "{{ eq .n 3.0 }} {{ lt .n 1.5 }} {{ if .n }}t{{ else }}f{{ end }} {{ empty .n }} {{ max .n 1 }}",
        ] {
            cases.push(case(src, d.clone()));
        }
    }
    compare(cases);
}

#[test]
fn toml_like_burntsushi() {
    compare(vec![
        case(
            "{{ toToml .v }}",
            json!({"v": {"a": 1, "b": "s", "c": [1, 2], "d": {"e": true, "f": {"g": 1.5}}, "h": "x\"y"}}),
        ),
        case(
            "{{ toToml .v }}",
            json!({"v": {"name": "n", "list": ["a", "b"], "empty": {}, "nested": {"k": "v"}}}),
        ),
        case(
            "{{ toToml .v }}",
            json!({"v": {"weird key": 1, "k.dot": 2}}),
        ),
        case("{{ toToml 3 }}", json!({})),
    ]);
}

/// YAML scalars written plain by hand (`k: <text>`) and round-tripped through toYaml, read back
/// with fromYaml: YAML 1.1 resolution of plain scalars, quoting, keys.
#[test]
fn random_scalars_read_like_go() {
    const PIECES: &[&str] = &[
        "yes",
        "no",
        "on",
        "Off",
        "y",
        "N",
        "true",
        "null",
        "~",
        "0",
        "0755",
        "1_000",
        "0x1F",
        "0b101",
        "1e3",
        ".5",
        "+1",
        "-2",
        "1.5",
        "12:30",
        "2024-01-02",
        "a",
        "b c",
        "'q'",
        "\"d\"",
        " ",
        "-",
        ":",
        "#",
        ".inf",
        "-.Inf",
        ".NaN",
        "<<",
        "0o17",
        "+.5",
        "1_0.5",
    ];
    let mut state = 0x7E57_AB1E_5CA1_AB1Eu64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut cases = Vec::new();
    for i in 0..600 {
        let len = 1 + next() % 3;
        let s: String = (0..len)
            .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
            .collect();
        let src = if i % 2 == 0 {
            "{{ fromYaml (printf \"k: %s\\n%s: v\" .s .s) | toJson }}"
        } else {
            "{{ dict \"k\" .s .s \"v\" | toYaml | fromYaml | toJson }}"
        };
        cases.push(case(src, json!({"s": s})));
    }
    compare(cases);
}
