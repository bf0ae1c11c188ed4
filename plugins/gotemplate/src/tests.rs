//! Behaviour of the whole engine on small templates (the Go differential suite is in tests/).

use super::*;

fn render(src: &str, data: serde_json::Value) -> Result<String, TemplateError> {
    let mut t = Templates::new();
    t.parse("t", src)?;
    t.execute("t", &Value::from(data))
}

fn ok(src: &str, data: serde_json::Value) -> String {
    render(src, data).unwrap_or_else(|e| panic!("{src}: {e}"))
}

#[test]
fn actions_pipelines_and_variables() {
    assert_eq!(
        ok(
            "{{ .a }}-{{ $x := 3 }}{{ $x }}",
            serde_json::json!({"a": "v"})
        ),
        "v-3"
    );
    assert_eq!(
        ok("{{ .a | printf \"%s!\" }}", serde_json::json!({"a": "v"})),
        "v!"
    );
    assert_eq!(
        ok(
            "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}",
            serde_json::json!({})
        ),
        "2"
    );
}

#[test]
fn missing_values_print_no_value() {
    assert_eq!(ok("{{ .missing }}", serde_json::json!({})), "<no value>");
    assert_eq!(ok("{{ .a.b.c }}", serde_json::json!({})), "<no value>");
}

#[test]
fn field_of_nil_is_an_error_under_missingkey_zero() {
    let mut t = Templates::new();
    t.set_options(Options {
        missing_key: MissingKey::Zero,
        lint_mode: false,
    });
    t.parse("x.yaml", "a\n  {{ .Values.missing.sub }}").unwrap();
    let data = Value::from(serde_json::json!({"Values": {}}));
    let err = t.execute("x.yaml", &data).unwrap_err();
    assert_eq!(
        err.to_string(),
        "template: x.yaml:2:12: executing \"x.yaml\" at <.Values.missing.sub>: nil pointer evaluating interface {}.sub"
    );
}

#[test]
fn range_over_maps_in_key_order_with_else() {
    assert_eq!(
        ok(
            "{{ range $k, $v := . }}{{ $k }}={{ $v }};{{ end }}",
            serde_json::json!({"b": 2, "a": 1})
        ),
        "a=1;b=2;"
    );
    assert_eq!(
        ok(
            "{{ range .x }}y{{ else }}empty{{ end }}",
            serde_json::json!({"x": []})
        ),
        "empty"
    );
    assert_eq!(
        ok("{{ range 3 }}{{ . }}{{ end }}", serde_json::json!({})),
        "012"
    );
    assert_eq!(
        ok(
            "{{ range . }}{{ if eq . 2.0 }}{{ continue }}{{ end }}{{ if eq . 4.0 }}{{ break }}{{ end }}{{ . }}{{ end }}",
            serde_json::json!([1, 2, 3, 4, 5])
        ),
        "13"
    );
}

#[test]
fn define_template_include_and_tpl() {
    let mut t = Templates::new();
    t.parse("_helpers.tpl", "{{ define \"name\" }}n-{{ .x }}{{ end }}")
        .unwrap();
    t.parse(
        "main",
        "{{ template \"name\" . }}|{{ include \"name\" . | upper }}|{{ tpl \"{{ .x }}!\" . }}",
    )
    .unwrap();
    let data = Value::from(serde_json::json!({"x": "v", "Template": {"Name": "main"}}));
    assert_eq!(t.execute("main", &data).unwrap(), "n-v|N-V|v!");
}

#[test]
fn unknown_function_is_a_parse_error() {
    let err = render("line1\n{{ foo 1 }}", serde_json::json!({})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "template: t:2: function \"foo\" not defined"
    );
}

#[test]
fn set_mutates_shared_dicts() {
    assert_eq!(
        ok(
            "{{ $d := dict }}{{ $_ := set $d \"k\" 1 }}{{ $d.k }}",
            serde_json::json!({})
        ),
        "1"
    );
}

#[test]
fn required_names_the_action() {
    let err = render("{{ required \"need x\" .x }}", serde_json::json!({})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "template: t:1:3: executing \"t\" at <required \"need x\" .x>: error calling required: need x"
    );
}

#[test]
fn each_render_reports_its_own_nondeterministic_calls() {
    let mut t = Templates::new();
    t.parse(
        "a",
        "{{ define \"r\" }}{{ randAlpha 2 }}{{ end }}{{ include \"r\" . | len }}",
    )
    .unwrap();
    t.parse(
        "b",
        "{{ now | date \"2006\" | len }}{{ tpl \"{{ uuidv4 | len }}\" . }}",
    )
    .unwrap();
    t.parse("c", "{{ date \"2006\" 0 }}").unwrap();
    let a = t.render("a", &Value::Nil).unwrap();
    assert_eq!(
        (a.output.as_str(), a.nondeterministic.clone()),
        ("2", vec!["randAlpha".into()])
    );
    let b = t.render("b", &Value::Nil).unwrap();
    assert_eq!(b.output, "436");
    assert_eq!(
        b.nondeterministic,
        vec!["now".to_string(), "uuidv4".to_string()]
    );
    let c = t.render("c", &Value::Nil).unwrap();
    assert_eq!((c.output.as_str(), c.nondeterministic.len()), ("1970", 0));
    assert_eq!(
        t.nondeterministic_calls(),
        vec!["now", "randAlpha", "uuidv4"]
    );
}

#[test]
fn nondeterministic_calls_are_recorded() {
    let mut t = Templates::new();
    t.parse("t", "{{ randAlpha 3 | len }}").unwrap();
    assert_eq!(t.execute("t", &Value::Nil).unwrap(), "3");
    assert_eq!(t.nondeterministic_calls(), vec!["randAlpha".to_string()]);
}

#[test]
fn key_generation_is_refused_in_the_sandbox() {
    let err = render("{{ genCA \"x\" 3 }}", serde_json::json!({})).unwrap_err();
    assert!(
        err.message
            .starts_with("error calling genCA: not supported"),
        "{err}"
    );
}

#[test]
fn runaway_recursion_is_an_error_not_a_stack_overflow() {
    let err = render(
        "{{ define \"r\" }}{{ template \"r\" . }}{{ end }}{{ template \"r\" . }}",
        serde_json::json!({}),
    )
    .unwrap_err();
    assert!(
        err.message.contains("exceeded maximum template depth"),
        "{err}"
    );
    let err = render(
        "{{ define \"i\" }}{{ include \"i\" . }}{{ end }}{{ include \"i\" . }}",
        serde_json::json!({}),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("exceeded maximum template depth"),
        "{err}"
    );
}

/// Arbitrary text, biased towards template syntax, never panics the parser or the executor:
/// templates come from chart authors the host does not trust.
#[test]
fn arbitrary_input_never_panics() {
    const PIECES: &[&str] = &[
        "{{",
        "}}",
        "{{-",
        "-}}",
        " ",
        "\n",
        ".",
        ".a",
        ".b.c",
        "$",
        "$x",
        ":=",
        "=",
        "|",
        "(",
        ")",
        "\"",
        "`",
        "'",
        "\\",
        "/*",
        "*/",
        "if",
        "else",
        "end",
        "range",
        "with",
        "define",
        "template",
        "block",
        "break",
        "continue",
        "\"s\"",
        "1",
        "-2",
        "0x1F",
        "1e9",
        "3.5",
        "'a'",
        "nil",
        "true",
        "printf",
        "\"%v %d %s\"",
        "len",
        "index",
        "slice",
        "toYaml",
        "include",
        "tpl",
        "print",
        "é",
        "€",
        "𝄞",
        "\u{0}",
        ",",
        "and",
        "or",
        "not",
        "eq",
        "dict",
        "list",
        "default",
        "upper",
        "substr",
        "trunc",
        "indent",
        "regexReplaceAll",
        "\"[\"",
        "semverCompare",
        "b64dec",
        "split",
    ];
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let data = Value::from(serde_json::json!({"a": [1, "x"], "b": {"c": "é€"}, "s": "abc"}));
    let iterations: usize = std::env::var("GOTEMPLATE_FUZZ_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5000);
    let mut executed = 0;
    for _ in 0..iterations {
        let len = 1 + next() % 24;
        let src: String = (0..len)
            .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
            .collect();
        let mut t = Templates::new();
        if t.parse("t", &src).is_ok() {
            executed += 1;
            let _ = t.execute("t", &data);
        }
    }
    // The generator must reach the executor, not only the parser's error paths.
    assert!(
        executed > iterations / 20,
        "only {executed} of {iterations} parsed"
    );
}

/// A host map with methods, like Helm's `.Files.Glob` result.
#[derive(Debug)]
struct Glob;

impl Object for Glob {
    fn field(&self, _: &str) -> Option<Value> {
        None
    }

    fn call(&self, method: &str, args: &[Value]) -> Option<Result<Value, String>> {
        match method {
            "Get" => Some(Ok(Value::str(format!("content of {}", args[0])))),
            "Count" => Some(Ok(Value::Int(2))),
            _ => None,
        }
    }

    fn entries(&self) -> Option<Vec<(Value, Value)>> {
        Some(vec![
            (Value::str("a.txt"), Value::str("A")),
            (Value::str("b.txt"), Value::str("B")),
        ])
    }
}

#[test]
fn host_objects_have_methods_and_can_be_ranged() {
    let mut t = Templates::new();
    t.parse(
        "t",
        "{{ .g.Get \"x\" }}|{{ .g.Count }}|{{ \"y\" | .g.Get }}|{{ range $k, $v := .g }}{{ $k }}={{ $v }};{{ end }}|{{ len .g }}|{{ index .g \"b.txt\" }}|{{ .g.Nope }}",
    )
    .unwrap();
    let data = Value::map([("g".to_string(), Value::Object(std::sync::Arc::new(Glob)))].into());
    let err = t.execute("t", &data).unwrap_err();
    assert_eq!(err.message, "can't evaluate field Nope in type object");
    t.parse(
        "t",
        "{{ .g.Get \"x\" }}|{{ .g.Count }}|{{ \"y\" | .g.Get }}|{{ range $k, $v := .g }}{{ $k }}={{ $v }};{{ end }}|{{ len .g }}|{{ index .g \"b.txt\" }}",
    )
    .unwrap();
    assert_eq!(
        t.execute("t", &data).unwrap(),
        "content of x|2|content of y|a.txt=A;b.txt=B;|2|B"
    );
}

/// A host struct that marshals as its fields, like helm's `.Capabilities.KubeVersion`.
#[derive(Debug)]
struct KubeVersion;

impl Object for KubeVersion {
    fn field(&self, name: &str) -> Option<Value> {
        (name == "Minor").then(|| Value::str("29"))
    }

    fn call(&self, _: &str, _: &[Value]) -> Option<Result<Value, String>> {
        None
    }

    fn display(&self) -> String {
        "v1.29.0".into()
    }

    fn to_value(&self) -> Option<Value> {
        Some(Value::from(
            serde_json::json!({"Version": "v1.29.0", "Minor": "29"}),
        ))
    }
}

#[test]
fn host_objects_print_and_encode_as_go_structs() {
    let mut t = Templates::new();
    t.parse(
        "t",
        "{{ .k }} {{ .k.Minor }} {{ toJson .k }} {{ toYaml (dict \"v\" .k) }}",
    )
    .unwrap();
    let data = Value::map(
        [(
            "k".to_string(),
            Value::Object(std::sync::Arc::new(KubeVersion)),
        )]
        .into(),
    );
    assert_eq!(
        t.execute("t", &data).unwrap(),
        "v1.29.0 29 {\"Minor\":\"29\",\"Version\":\"v1.29.0\"} v:\n  Minor: \"29\"\n  Version: v1.29.0"
    );
}

#[test]
fn long_templates_report_the_right_line() {
    let mut src = "{{ .a }}\n".repeat(2999);
    src.push_str("{{ nosuch }}");
    let err = render(&src, serde_json::json!({})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "template: t:3000: function \"nosuch\" not defined"
    );
    let mut src = "x\n".repeat(500);
    src.push_str("{{ .a.b }}");
    let mut t = Templates::new();
    t.set_options(Options {
        missing_key: MissingKey::Zero,
        lint_mode: false,
    });
    t.parse("t", &src).unwrap();
    let err = t
        .execute("t", &Value::from(serde_json::json!({"a": null})))
        .unwrap_err();
    assert_eq!((err.line, err.col), (501, 5));
}

/// Go follows a map that holds itself until its stack runs out; here every walk stops.
#[test]
fn a_map_holding_itself_does_not_exhaust_the_stack() {
    let mut t = Templates::new();
    t.parse(
        "t",
        "{{ $m := dict \"a\" 1 }}{{ $_ := set $m \"self\" $m }}{{ len (print $m) | lt 0 }} {{ toJson $m }}|{{ toYaml $m }}|{{ deepEqual $m $m }} {{ len (printf \"%v %#v\" $m $m) | lt 0 }} {{ $c := deepCopy $m }}{{ $_ := merge $c $m }}{{ toToml $m | len | lt 0 }}",
    )
    .unwrap();
    let out = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || t.execute("t", &Value::Nil))
        .unwrap()
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(out, "true ||false true true");
}
