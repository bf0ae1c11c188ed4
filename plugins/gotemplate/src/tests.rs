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
