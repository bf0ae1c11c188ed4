//! Go text/template itself: lexing and trimming, nil and missing values, scoping, control
//! structures, comparisons, printf, builtins, named templates, parse errors.

use super::*;

#[test]
fn text_trimming_and_comments() {
    let d = json!({"a": "A"});
    compare(vec![
        case("plain text", d.clone()),
        case("a  {{- .a -}}  b", d.clone()),
        case("a\n\n{{- .a }}\n\nb", d.clone()),
        case("a {{ .a -}}\n\n  b", d.clone()),
        case("{{- .a -}}", d.clone()),
        case("x {{/* comment */}} y", d.clone()),
        case("x {{- /* comment */ -}} y", d.clone()),
        case("x {{/* multi\nline */}} y", d.clone()),
        case("{{/* bad */ .a}}", d.clone()),
        case("{{-3}}", d.clone()),
        case("{{- 3}}", d.clone()),
        case("{{ 3 -}} \n x", d.clone()),
        case("{{ \"{{\" }}", d.clone()),
        case("{{`raw\\n`}}", d.clone()),
        case("{{ \"tab\\tnl\\n\\u00e9\\x41\" }}", d.clone()),
        case("{{ 'a' }} {{ '\\n' }}", d.clone()),
        case(
            "{{ 0x1F }} {{ 0o17 }} {{ 017 }} {{ 0b101 }} {{ 1_000 }}",
            d.clone(),
        ),
        case(
            "{{ 1e3 }} {{ 1.5e-3 }} {{ 2.0 }} {{ -0.5 }} {{ +7 }}",
            d.clone(),
        ),
        case("{{ 0x1p-2 }}", d.clone()),
        case("{{ 3x }}", d.clone()),
        case("{{ true }} {{ false }}", d.clone()),
        case("{{ nil }}", d.clone()),
        case("{{ . }}", json!({"k": [1, 2.5, "s", null, {"z": 1}]})),
        case("{{ }}", d.clone()),
        case("{{ .a", d.clone()),
        case("{{ end }}", d.clone()),
        case("{{ if 1 }}x", d.clone()),
        case("{{ else }}", d.clone()),
        case("a\n{{ .a | }}", d.clone()),
        case("{{ (1) }}{{ (.a) }}", d.clone()),
        case("{{ .a.b.c }}", json!({"a": {"b": {"c": "deep"}}})),
        case("{{ \"x\" | printf \"%s-%s\" \"y\" }}", d.clone()),
        case("{{ 3 | 4 }}", d.clone()),
        case("{{ .a 1 }}", d.clone()),
        case("{{ \"s\" 1 }}", d.clone()),
    ]);
}

#[test]
fn nil_and_missing_values() {
    let d = json!({"a": {"b": null, "c": {"d": 1}}, "n": null, "l": [null, {"x": 1}]});
    let mut cases = Vec::new();
    for mk in ["default", "zero", "error"] {
        for src in [
            "{{ .missing }}",
            "{{ .missing.deeper }}",
            "{{ .a.missing }}",
            "{{ .a.b }}",
            "{{ .a.b.c }}",
            "{{ .n }}",
            "{{ .n.x }}",
            "{{ .a.c.d.e }}",
            "{{ $x := .missing }}{{ $x }}",
            "{{ $x := .missing }}{{ $x.y }}",
            "{{ $x := .n }}{{ $x.y }}",
            "{{ range .l }}[{{ .x }}]{{ end }}",
            "{{ range $v := .l }}[{{ $v.x }}]{{ end }}",
            "{{ with .missing }}yes{{ else }}no{{ end }}",
            "{{ if .missing }}yes{{ else }}no{{ end }}",
            "{{ print .missing }}",
            "{{ printf \"%v|%s|%d\" .missing .missing .missing }}",
            "{{ .missing | default \"dflt\" }}",
            "{{ index . \"missing\" }}",
            "{{ index .a \"missing\" \"x\" }}",
            "{{ len .missing }}",
            "{{ (index . \"missing\").x }}",
            "{{ template \"x\" .missing }}{{ define \"x\" }}[{{ .y }}]{{ end }}",
            "{{ .a.c.d.x }}",
            "{{ eq .missing nil }}",
            "{{ eq .missing \"\" }}",
            "{{ upper .missing }}",
        ] {
            cases.push(case_mk(src, d.clone(), mk));
        }
    }
    cases.push(case("{{ .x }}", json!(null)));
    cases.push(case("{{ . }}", json!(null)));
    cases.push(case_mk("{{ .x }}", json!(null), "error"));
    compare(cases);
}

#[test]
fn variables_and_scoping() {
    let d = json!({"l": [1, 2, 3], "m": {"a": 1, "b": 2}});
    compare(vec![
        case("{{ $x := 1 }}{{ $x }}{{ $x = 2 }}{{ $x }}", d.clone()),
        case(
            "{{ $x := 1 }}{{ if true }}{{ $x := 2 }}{{ $x }}{{ end }}{{ $x }}",
            d.clone(),
        ),
        case(
            "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}",
            d.clone(),
        ),
        case(
            "{{ $x := 1 }}{{ range .l }}{{ $x = . }}{{ end }}{{ $x }}",
            d.clone(),
        ),
        case("{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}", d.clone()),
        case("{{ $ }}", json!("root")),
        case("{{ range .l }}{{ $.m.a }}{{ end }}", d.clone()),
        case("{{ with .m }}{{ .a }}{{ $.l }}{{ end }}", d.clone()),
        case("{{ $x = 1 }}", d.clone()),
        case("{{ $i, $v := .l }}", d.clone()),
        case(
            "{{ range $i, $v := .l }}{{ $i }}:{{ $v }} {{ end }}",
            d.clone(),
        ),
        case(
            "{{ range $k, $v := .m }}{{ $k }}:{{ $v }} {{ end }}",
            d.clone(),
        ),
        case("{{ range $v := .m }}{{ $v }}{{ end }}", d.clone()),
        case(
            "{{ $i := 0 }}{{ range $i, $v := .l }}{{ end }}{{ $i }}",
            d.clone(),
        ),
        case(
            "{{ $a := 0 }}{{ $b := 0 }}{{ range $a, $b = .l }}{{ end }}{{ $a }}{{ $b }}",
            d.clone(),
        ),
        case(
            "{{ if $x := .m.a }}{{ $x }}{{ else }}{{ $x }}no{{ end }}",
            d.clone(),
        ),
        case("{{ with $x := .m }}{{ $x.b }}{{ end }}", d.clone()),
        case("{{ $x := .l }}{{ $x = append $x 4 }}{{ $x }}", d.clone()),
        case(
            "{{ $v := 1 }}{{ range $v := .l }}{{ end }}{{ $v }}",
            d.clone(),
        ),
        case("{{ define \"t\" }}{{ $x }}{{ end }}", d.clone()),
    ]);
}

#[test]
fn control_structures() {
    let d = json!({"l": [1, 2, 3, 4], "m": {"z": 1, "a": 2, "B": 3, "10": 4, "9": 5}, "e": [], "f": 3.5, "s": "str", "t": true});
    compare(vec![
        case("{{ if .t }}T{{ else }}F{{ end }}", d.clone()),
        case(
            "a\n  {{- if .t }}\n  T\n  {{- else }}\n  F\n  {{- end }}\nb",
            d.clone(),
        ),
        case(
            "a\n  {{- if .e -}}\n  T\n  {{- else if .f -}}\n  F\n  {{- end -}}\nb",
            d.clone(),
        ),
        case(
            "{{- range $i, $e := .l }}\n- {{ $e }}\n{{- end }}\n",
            d.clone(),
        ),
        case(
            "{{- with .m }}\n{{- range $k, $v := . }}\n{{ $k }}: {{ $v }}\n{{- end }}\n{{- end }}",
            d.clone(),
        ),
        case(
            "{{ if .e }}T{{ else if .f }}F{{ else }}N{{ end }}",
            d.clone(),
        ),
        case(
            "{{ if .e }}1{{ else if .missing }}2{{ else if .s }}3{{ end }}",
            d.clone(),
        ),
        case("{{ with .s }}{{ . }}{{ else }}none{{ end }}", d.clone()),
        case(
            "{{ with .e }}{{ . }}{{ else with .f }}f={{ . }}{{ end }}",
            d.clone(),
        ),
        case("{{ range .l }}{{ . }}{{ end }}", d.clone()),
        case("{{ range .m }}{{ . }}{{ end }}", d.clone()),
        case("{{ range $k, $v := .m }}{{ $k }}{{ end }}", d.clone()),
        case("{{ range .e }}x{{ else }}empty{{ end }}", d.clone()),
        case("{{ range .missing }}x{{ else }}none{{ end }}", d.clone()),
        case("{{ range 3 }}{{ . }}{{ end }}", d.clone()),
        case("{{ range $i := 3 }}{{ $i }}{{ end }}", d.clone()),
        case("{{ range $i, $j := 3 }}{{ $i }}{{ end }}", d.clone()),
        case("{{ range .f }}{{ . }}{{ end }}", d.clone()),
        case("{{ range .s }}{{ . }}{{ end }}", d.clone()),
        case("{{ range .t }}{{ . }}{{ end }}", d.clone()),
        case(
            "{{ range .l }}{{ if eq . 3.0 }}{{ break }}{{ end }}{{ . }}{{ end }}",
            d.clone(),
        ),
        case(
            "{{ range .l }}{{ if eq . 2.0 }}{{ continue }}{{ end }}{{ . }}{{ end }}",
            d.clone(),
        ),
        case(
            "{{ range .l }}{{ range .l }}{{ break }}{{ end }}{{ . }}{{ end }}",
            d.clone(),
        ),
        case("{{ break }}", d.clone()),
        case("{{ if true }}{{ continue }}{{ end }}", d.clone()),
        case("{{ range .l }}{{ break 1 }}{{ end }}", d.clone()),
        case("{{ if }}x{{ end }}", d.clone()),
        case("{{ if 1 }}x{{ else }}y{{ else }}z{{ end }}", d.clone()),
        case("{{ range .l }}{{ else if 1 }}{{ end }}", d.clone()),
        case("{{ if 1 }}{{ else with 2 }}{{ end }}", d.clone()),
        case("{{ with 1 }}{{ else if 2 }}x{{ end }}", d.clone()),
        case("{{ range .l -}}\n  {{ . }}\n{{- end }}", d.clone()),
        case("{{ range until 3 }}{{ . }}{{ end }}", d.clone()),
        case(
            "{{ range $i, $e := list \"a\" \"b\" }}{{ $i }}{{ $e }}{{ end }}",
            d.clone(),
        ),
        case(
            "{{ if and .t .s }}both{{ end }}{{ if or .e .missing }}any{{ else }}neither{{ end }}",
            d.clone(),
        ),
    ]);
}

#[test]
fn comparisons_follow_go_kinds() {
    let mut cases = Vec::new();
    let d = json!({"i": 3, "f": 3.5, "s": "b", "t": true, "n": null, "l": [1], "m": {"a": 1}});
    let operands = [
        "1", "3", "3.0", "3.5", "\"b\"", "\"a\"", "true", ".i", ".f", ".s", ".t", ".n", ".missing",
        ".l", ".m", "nil", "(len .l)",
    ];
    for op in ["eq", "ne", "lt", "le", "gt", "ge"] {
        for a in operands {
            for b in ["3", ".i", "\"b\"", ".n", "1.5"] {
                cases.push(case(&format!("{{{{ {op} {a} {b} }}}}"), d.clone()));
            }
        }
    }
    cases.push(case("{{ eq 1 2 3 1 }}", d.clone()));
    cases.push(case("{{ eq \"b\" \"a\" .s }}", d.clone()));
    cases.push(case("{{ eq 1 }}", d.clone()));
    cases.push(case("{{ lt 1 }}", d.clone()));
    cases.push(case("{{ and }}", d.clone()));
    cases.push(case("{{ and 1 0 (fail \"x\") }}", d.clone()));
    cases.push(case("{{ or 0 \"\" .l }}", d.clone()));
    cases.push(case("{{ or 0 \"\" }}", d.clone()));
    cases.push(case("{{ and 1 \"x\" }}", d.clone()));
    cases.push(case(
        "{{ not 0 }} {{ not .l }} {{ not .missing }} {{ not .m }}",
        d.clone(),
    ));
    cases.push(case("{{ 1 | eq 1 }}", d.clone()));
    compare(cases);
}

#[test]
fn printf_and_printing() {
    let mut cases = Vec::new();
    for (_, v) in values() {
        for verb in [
            "%v", "%s", "%d", "%q", "%f", "%.2f", "%g", "%x", "%t", "%5v|", "%-5v|", "%05d", "%e",
            "%T", "%+v", "%#v",
        ] {
            cases.push(case(
                &format!("{{{{ printf \"{verb}\" .v }}}}"),
                json!({"v": v}),
            ));
        }
        cases.push(case("{{ .v }}", json!({"v": v})));
        cases.push(case("{{ print .v .v }}", json!({"v": v})));
        cases.push(case("{{ println .v }}", json!({"v": v})));
    }
    let d = json!({});
    for src in [
        "{{ printf \"%d %s\" 1 }}",
        "{{ printf \"%d\" 1 2 }}",
        "{{ printf \"%%\" }}",
        "{{ printf \"%z\" 1 }}",
        "{{ printf \"%6.2f|%-8.3f|%+d|% d\" 3.14159 2.5 5 7 }}",
        "{{ printf \"%x %X %o %b %c %U\" 255 255 8 5 65 65 }}",
        "{{ printf \"%q\" \"a\\\"b\\n\" }}",
        "{{ printf \"%10s|%-10s|%.3s\" \"abc\" \"abc\" \"abcdef\" }}",
        "{{ printf \"%v %v\" (list 1 2) (dict \"a\" 1) }}",
        "{{ printf \"%s\" (list \"a\" \"b\") }}",
        "{{ printf \"%d\" (list 1 2) }}",
        "{{ printf \"%*d\" 5 1 }}",
        "{{ printf \"%.0f %.1f %.10f\" 2.5 0.05 0.1 }}",
        "{{ printf \"%g %g %g %g\" 100000.0 1000000.0 0.0001 0.00001 }}",
        "{{ printf \"%e %E\" 123456.789 0.000123 }}",
        "{{ printf \"%v\" 1e21 }} {{ 1e21 }} {{ 123456789.0 }} {{ 1.0e-7 }}",
        "{{ printf }}",
        "{{ printf 1 }}",
        "{{ print 1 2 \"a\" \"b\" 3 nil }}",
        "{{ println 1 \"a\" }}",
        "{{ print }}",
        "{{ html \"<a href='x'>&\\\"</a>\" }}",
        "{{ js \"it's <b> \\\"q\\\" & = \\n\" }}",
        "{{ urlquery \"a b&c=d/é\" }}",
        "{{ html 1 2 }}",
    ] {
        cases.push(case(src, d.clone()));
    }
    compare(cases);
}

#[test]
fn builtins_len_index_slice() {
    let d = json!({"l": [10, 20, 30], "m": {"a": {"b": [5, 6]}}, "s": "héllo"});
    compare(vec![
        case(
            "{{ len .l }} {{ len .m }} {{ len .s }} {{ len \"\" }}",
            d.clone(),
        ),
        case("{{ len 3 }}", d.clone()),
        case("{{ len .missing }}", d.clone()),
        case(
            "{{ index .l 1 }} {{ index .m \"a\" \"b\" 0 }} {{ index .s 1 }}",
            d.clone(),
        ),
        case("{{ index .l 5 }}", d.clone()),
        case("{{ index .l -1 }}", d.clone()),
        case("{{ index .l 1.0 }}", d.clone()),
        case("{{ index .l \"x\" }}", d.clone()),
        case("{{ index .m 1 }}", d.clone()),
        case("{{ index .m \"zz\" }}", d.clone()),
        case("{{ index .l }}", d.clone()),
        case("{{ index nil 1 }}", d.clone()),
        case("{{ index 3 1 }}", d.clone()),
        case(
            "{{ slice .l 1 }} {{ slice .l 1 2 }} {{ slice .l }}",
            d.clone(),
        ),
        case("{{ slice .l 2 1 }}", d.clone()),
        case("{{ slice .s 1 2 }}", d.clone()),
        case("{{ call .l }}", d.clone()),
    ]);
}

#[test]
fn templates_include_and_tpl() {
    let d = json!({"Values": {"name": "app", "n": 2, "tpl": "{{ .Values.name }}-x"}, "Template": {"Name": "main", "BasePath": "c/templates"}});
    compare(vec![
        multi(
            &[(
                "main",
                "[{{ tpl \"\" . }}]{{ tpl \"{{ . }}\" 3 }}{{ tpl \"{{ .x }}\" (dict \"x\" 1) }}",
            )],
            d.clone(),
        ),
        multi(&[("main", "{{ tpl \"a\\n{{ .nope.x }}\" . }}")], d.clone()),
        multi(
            &[(
                "main",
                "{{ tpl \"{{ define \\\"d\\\" }}D{{ end }}{{ include \\\"d\\\" . }}\" . }}|{{ include \"d\" . }}",
            )],
            d.clone(),
        ),
        multi(
            &[(
                "main",
                "{{ tpl \"{{ tpl \\\"{{ .Values.name }}\\\" . }}\" . }}",
            )],
            d.clone(),
        ),
        multi(
            &[
                ("main", "{{ template \"h\" . }}"),
                ("helpers", "{{ define \"h\" }}H{{ .Values.name }}{{ end }}"),
            ],
            d.clone(),
        ),
        multi(
            &[
                (
                    "main",
                    "{{ include \"h\" . | upper }}|{{ include \"h\" .Values | quote }}",
                ),
                ("helpers", "{{ define \"h\" }}H{{ .name }}{{ end }}"),
            ],
            d.clone(),
        ),
        multi(&[("main", "{{ include \"nope\" . }}")], d.clone()),
        multi(&[("main", "{{ template \"nope\" . }}")], d.clone()),
        multi(&[("main", "{{ tpl .Values.tpl . }}")], d.clone()),
        multi(
            &[(
                "main",
                "{{ tpl \"{{ .Values.missing }}|{{ define \\\"q\\\" }}Q{{ end }}{{ include \\\"q\\\" . }}\" . }}",
            )],
            d.clone(),
        ),
        multi(&[("main", "{{ tpl \"{{ .x }}\" .Values }}")], d.clone()),
        multi(&[("main", "{{ tpl \"{{ bad\" . }}")], d.clone()),
        multi(
            &[("main", "{{ tpl \"{{ .Values.name.x }}\" . }}")],
            d.clone(),
        ),
        multi(
            &[(
                "main",
                "{{ block \"b\" . }}default {{ .Values.name }}{{ end }}",
            )],
            d.clone(),
        ),
        multi(
            &[
                ("main", "{{ block \"b\" . }}default{{ end }}"),
                ("z-override", "{{ define \"b\" }}override{{ end }}"),
            ],
            d.clone(),
        ),
        multi(
            &[(
                "main",
                "{{ define \"a\" }}1{{ end }}{{ define \"a\" }}2{{ end }}{{ template \"a\" }}",
            )],
            d.clone(),
        ),
        multi(
            &[
                ("main", "{{ template \"a\" }}"),
                ("a1", "{{ define \"a\" }}first{{ end }}"),
                ("a2", "{{ define \"a\" }}second{{ end }}"),
            ],
            d.clone(),
        ),
        multi(
            &[
                ("main", "{{ template \"a\" }}"),
                ("a1", "{{ define \"a\" }}first{{ end }}"),
                ("a2", "{{ define \"a\" }} {{ end }}"),
            ],
            d.clone(),
        ),
        multi(
            &[("main", "{{ define \"x\" }}{{ end }}main body")],
            d.clone(),
        ),
        multi(
            &[
                ("main", "{{ template \"r\" 3 }}"),
                (
                    "r",
                    "{{ define \"r\" }}{{ if gt . 0 }}{{ . }}{{ template \"r\" (sub . 1) }}{{ end }}{{ end }}",
                ),
            ],
            d.clone(),
        ),
        multi(
            &[
                ("main", "{{ include \"e\" . }}"),
                ("e", "{{ define \"e\" }}\n{{ .Values.name.bad }}{{ end }}"),
            ],
            d.clone(),
        ),
        multi(
            &[
                ("main", "{{ template \"e\" . }}"),
                ("e", "{{ define \"e\" }}\n  {{ .Values.name.bad }}{{ end }}"),
            ],
            d.clone(),
        ),
        multi(
            &[
                ("main", "{{ $x := 5 }}{{ template \"v\" }}"),
                ("v", "{{ define \"v\" }}{{ $x }}{{ end }}"),
            ],
            d.clone(),
        ),
        multi(
            &[(
                "main",
                "{{ required \"name is required\" .Values.missing }}",
            )],
            d.clone(),
        ),
        multi(
            &[(
                "main",
                "{{ required \"x\" .Values.name }}{{ required \"y\" \"\" }}",
            )],
            d.clone(),
        ),
        multi(&[("main", "line1\n{{ fail \"boom\" }}")], d.clone()),
        multi(
            &[(
                "main",
                "{{ lookup \"v1\" \"Pod\" \"ns\" \"n\" }}{{ (lookup \"v1\" \"Pod\" \"\" \"\").items }}",
            )],
            d.clone(),
        ),
        multi(
            &[("main", "{{ .Template.Name }} {{ .Template.BasePath }}")],
            d.clone(),
        ),
    ]);
}

#[test]
fn parse_errors_name_template_and_line() {
    let d = json!({});
    compare(vec![
        case("ok\n{{ nosuchfunc 1 }}", d.clone()),
        case("{{ $undefined }}", d.clone()),
        case("\n\n{{ if }}", d.clone()),
        case("{{ range }}{{ end }}", d.clone()),
        case("{{ define 3 }}{{ end }}", d.clone()),
        case("{{ template x }}", d.clone()),
        case("{{ \"unterminated }}", d.clone()),
        case("{{ ( }}", d.clone()),
        case("{{ ) }}", d.clone()),
        case("{{ .a. }}", d.clone()),
        case("{{ 1.b }}", d.clone()),
        case("{{ if 1 }}{{ define \"x\" }}{{ end }}{{ end }}", d.clone()),
        case("{{ with }}{{ end }}", d.clone()),
        case("{{ $x := }}", d.clone()),
        case("{{ .a | 3 }}", d.clone()),
        case("{{ 'ab' }}", d.clone()),
        case("{{ @ }}", d.clone()),
        case("{{ .a:b }}", d.clone()),
    ]);
}
