use super::*;

const SHA: &str = "3f7c0d2c1b8a0e6f4d5c3b2a19080706f5e4d3c2b1a0998877665544332211ff";

fn parse(yaml: &str) -> Result<Plugins, ConfigError> {
    parse_plugins_section(yaml, ".tether/agents/a/config.yaml")
}

fn error(yaml: &str) -> String {
    parse(yaml)
        .expect_err("config should be refused")
        .to_string()
}

#[test]
fn a_full_entry_parses_with_its_limits_and_settings() {
    let plugins = parse(&format!(
        r#"
plugins:
  - name: jsonnet
    world: renderer
    path: jsonnet.wasm
    sha256: "{}"
    settings: {{env: prod, replicas: 3, debug: false}}
    limits: {{memory: 256Mi, timeout: 1500ms, output: 1Mi, concurrency: 2}}
"#,
        SHA.to_uppercase()
    ))
    .unwrap();
    let spec = plugins.iter().next().unwrap();
    assert_eq!(spec.name.as_str(), "jsonnet");
    assert_eq!(spec.world, World::Renderer);
    assert_eq!(
        spec.source,
        PluginSource::PluginDir(RelativePath("jsonnet.wasm".into()))
    );
    assert_eq!(spec.sha256.as_hex(), SHA, "digest is stored lower-case");
    assert_eq!(
        spec.settings.pairs(),
        [
            ("env".into(), "prod".into()),
            ("replicas".into(), "3".into()),
            ("debug".into(), "false".into())
        ]
    );
    assert_eq!(
        spec.limits,
        PluginLimits {
            memory: ByteSize(256 << 20),
            timeout: Duration::from_millis(1500),
            output: ByteSize(1 << 20),
            concurrency: 2
        }
    );
}

#[test]
fn omitted_limits_get_the_safe_defaults() {
    let plugins = parse(&format!(
        "plugins:\n  - {{name: p, world: proxy, repo_file: plugins/p.wasm, sha256: {SHA}}}\n"
    ))
    .unwrap();
    let spec = plugins.iter().next().unwrap();
    assert_eq!(spec.limits, PluginLimits::default());
    assert_eq!(
        spec.source,
        PluginSource::RepoFile(RelativePath("plugins/p.wasm".into()))
    );
}

#[test]
fn an_unknown_key_is_an_error_with_its_line() {
    let e = error(&format!(
        "plugins:\n  - name: p\n    world: renderer\n    path: p.wasm\n    sha256: {SHA}\n    memory: 1Gi\n"
    ));
    assert!(e.starts_with(".tether/agents/a/config.yaml:"), "{e}");
    assert!(e.contains("unknown field `memory`"), "{e}");
}

#[test]
fn an_unknown_limit_is_an_error() {
    let e = error(&format!(
        "plugins:\n  - name: p\n    world: renderer\n    path: p.wasm\n    sha256: {SHA}\n    limits: {{cpu: 2}}\n"
    ));
    assert!(e.contains("unknown field `cpu`"), "{e}");
}

#[test]
fn a_bad_sha256_names_the_value_and_line() {
    let e =
        error("plugins:\n  - name: p\n    world: renderer\n    path: p.wasm\n    sha256: abc\n");
    assert!(
        e.contains(":5:") || e.contains(":2:"),
        "line is reported: {e}"
    );
    assert!(e.contains("invalid sha256 `abc`"), "{e}");
}

#[test]
fn bad_names_worlds_and_paths_are_refused() {
    for (field, value, expected) in [
        ("name", "Bad_Name", "invalid plugin name `Bad_Name`"),
        ("world", "mutator", "unknown variant `mutator`"),
        ("path", "../escape.wasm", "must not contain `..`"),
        ("path", "/etc/plugin.wasm", "must be relative"),
    ] {
        let mut entry = [("name", "p"), ("world", "renderer"), ("path", "p.wasm")];
        entry
            .iter_mut()
            .filter(|(k, _)| *k == field)
            .for_each(|slot| slot.1 = value);
        let body: String = entry
            .iter()
            .map(|(k, v)| format!("    {k}: \"{v}\"\n"))
            .collect();
        let e = error(&format!("plugins:\n  - sha256: {SHA}\n{body}"));
        assert!(e.contains(expected), "{field}={value}: {e}");
    }
}

#[test]
fn path_and_repo_file_are_exclusive_and_one_is_required() {
    let both = error(&format!(
        "plugins:\n  - {{name: p, world: renderer, path: a.wasm, repo_file: b.wasm, sha256: {SHA}}}\n"
    ));
    assert!(
        both.contains("plugin `p`: set either `path` or `repo_file`, not both"),
        "{both}"
    );
    let neither = error(&format!(
        "plugins:\n  - {{name: p, world: renderer, sha256: {SHA}}}\n"
    ));
    assert!(neither.contains("plugin `p`: missing `path`"), "{neither}");
}

#[test]
fn limits_out_of_bounds_name_the_limit() {
    for (limits, expected) in [
        (
            "{memory: 8Gi}",
            "limits.memory `8Gi` must be between 1Mi and 4Gi",
        ),
        ("{memory: 12Xi}", "unknown unit `Xi`"),
        (
            "{timeout: 11m}",
            "limits.timeout `11m` must be between 1ms and 600s",
        ),
        ("{timeout: 5h}", "unknown unit `h`"),
        ("{output: 0}", "limits.output `0` must be between 1 and 1Gi"),
        (
            "{concurrency: 0}",
            "limits.concurrency `0` must be between 1 and 64",
        ),
    ] {
        let e = error(&format!(
            "plugins:\n  - {{name: p, world: renderer, path: p.wasm, sha256: {SHA}, limits: {limits}}}\n"
        ));
        assert!(e.contains(expected), "{limits}: {e}");
    }
}

#[test]
fn duplicate_names_and_settings_are_refused() {
    let entry = format!("  - {{name: p, world: renderer, path: p.wasm, sha256: {SHA}}}\n");
    let e = error(&format!("plugins:\n{entry}{entry}"));
    assert!(e.contains("plugin name `p` is used twice"), "{e}");
    let nested = error(&format!(
        "plugins:\n  - {{name: p, world: renderer, path: p.wasm, sha256: {SHA}, settings: {{a: {{b: c}}}}}}\n"
    ));
    assert!(nested.contains("a string, number or boolean"), "{nested}");
}

#[test]
fn allowed_urls_belong_to_proxies_and_match_by_prefix() {
    let e = error(&format!(
        "plugins:\n  - {{name: p, world: renderer, path: p.wasm, sha256: {SHA}, allowed_urls: [\"http://x/\"]}}\n"
    ));
    assert!(
        e.contains("`allowed_urls` is only for the proxy world"),
        "{e}"
    );
    let bad = error(&format!(
        "plugins:\n  - {{name: p, world: proxy, path: p.wasm, sha256: {SHA}, allowed_urls: [\"ftp://x/\"]}}\n"
    ));
    assert!(bad.contains("must start with http:// or https://"), "{bad}");

    let prefix = AllowedUrl::try_from("http://prom:9090/api".to_owned()).unwrap();
    assert!(prefix.allows("http://prom:9090/api/v1/query?query=up"));
    assert!(prefix.allows("http://prom:9090/api"));
    assert!(!prefix.allows("http://prom:9090/api-admin"));
    assert!(!prefix.allows("http://prom:9091/api/v1"));
    assert!(!prefix.allows("http://prom:9090@evil/api"));
}

#[test]
fn settings_overlay_replaces_and_appends_in_order() {
    let base = Settings::new(vec![("a".into(), "1".into()), ("b".into(), "2".into())]).unwrap();
    let over = Settings::new(vec![("b".into(), "3".into()), ("c".into(), "4".into())]).unwrap();
    assert_eq!(
        base.overlay(&over).pairs(),
        [
            ("a".into(), "1".into()),
            ("b".into(), "3".into()),
            ("c".into(), "4".into())
        ]
    );
}

#[test]
fn sizes_and_durations_round_trip_through_their_text() {
    assert_eq!("512Ki".parse::<ByteSize>().unwrap(), ByteSize(512 << 10));
    assert_eq!("1048576".parse::<ByteSize>().unwrap().to_string(), "1Mi");
    assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    assert!(parse_duration("s").is_err());
}
