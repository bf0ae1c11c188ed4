use super::*;
use crate::gitops::*;
use proptest::prelude::*;
use std::time::Duration;

const FILE: &str = ".tether/agents/prod/config.yaml";

fn parse(yaml: &str) -> Result<AgentConfig, AgentConfigError> {
    parse_agent_config(yaml, FILE)
}

fn error(yaml: &str) -> AgentConfigError {
    parse(yaml).expect_err("config should be refused")
}

/// A config as GitLab's documentation writes it, every gitops key set.
const GITLAB_CONFIG: &str = r#"
gitops:
  manifest_projects:
  - id: gitlab-org/cluster-integration/gitlab-agent
    default_namespace: my-ns
    paths:
      # Read all YAML files from this directory.
    - glob: '/team1/app1/*.yaml'
      # Read all .yaml files from team2/apps and all subdirectories.
    - glob: '/team2/apps/**/*.yaml'
      # If 'paths' is not specified or is an empty list, the configuration below is used.
    - glob: '/**/*.{yaml,yml,json}'
    reconcile_timeout: 3600s
    dry_run_strategy: none
    prune: true
    prune_timeout: 3600s
    prune_propagation_policy: foreground
    inventory_policy: must_match
"#;

#[test]
fn a_gitlab_config_is_accepted_unchanged() {
    let config = parse(GITLAB_CONFIG).unwrap();
    let project = config.gitops.manifest_projects.iter().next().unwrap();
    assert_eq!(
        project.id.as_str(),
        "gitlab-org/cluster-integration/gitlab-agent"
    );
    assert_eq!(project.default_namespace, "my-ns");
    assert_eq!(project.paths.len(), 3);
    assert_eq!(project.paths[1].glob.as_str(), "/team2/apps/**/*.yaml");
    assert_eq!(project.paths[1].renderer, Renderer::Plain);
    assert_eq!(project.reconcile_timeout, Duration::from_secs(3600));
    assert_eq!(project.dry_run_strategy, DryRunStrategy::None);
    assert_eq!(
        project.prune_propagation_policy,
        PrunePropagationPolicy::Foreground
    );
    assert_eq!(project.inventory_policy, InventoryPolicy::MustMatch);
}

#[test]
fn omitted_keys_get_gitlabs_defaults() {
    let config = parse("gitops:\n  manifest_projects:\n  - id: apps\n").unwrap();
    let project = config.gitops.manifest_projects.iter().next().unwrap();
    assert_eq!(project.git_ref, None);
    assert_eq!(project.default_namespace, DEFAULT_NAMESPACE);
    assert_eq!(project.paths.len(), 1);
    assert_eq!(project.paths[0].glob.as_str(), DEFAULT_GLOB);
    assert_eq!(project.reconcile_timeout, DEFAULT_RECONCILE_TIMEOUT);
    assert_eq!(project.prune_timeout, DEFAULT_PRUNE_TIMEOUT);
    assert!(project.prune);
    assert_eq!(project.dry_run_strategy, DEFAULT_DRY_RUN_STRATEGY);
    assert_eq!(
        project.prune_propagation_policy,
        PrunePropagationPolicy::Foreground
    );
    assert_eq!(project.inventory_policy, InventoryPolicy::MustMatch);
    assert!(project.force_conflicts);
    assert_eq!(config.mode, None);
    assert_eq!(config.drift, Drift::default());
    assert_eq!(config.observability.logging.level, LogLevel::Info);
}

#[test]
fn force_conflicts_can_be_turned_off() {
    let config =
        parse("gitops:\n  manifest_projects:\n  - id: apps\n    force_conflicts: false\n").unwrap();
    let project = config.gitops.manifest_projects.iter().next().unwrap();
    assert!(!project.force_conflicts);
}

#[test]
fn an_empty_file_is_an_empty_config() {
    assert_eq!(parse("").unwrap(), AgentConfig::default());
    assert_eq!(parse("# nothing yet\n").unwrap(), AgentConfig::default());
}

#[test]
fn refs_are_branch_tag_or_commit() {
    let commit = "0123456789abcdef0123456789ABCDEF01234567";
    let config = parse(&format!(
        "gitops:\n  manifest_projects:\n  - {{id: a, ref: {{branch: main}}}}\n  - {{id: b, ref: {{tag: v1.0}}}}\n  - {{id: c, ref: {{commit: {commit}}}}}\n"
    ))
    .unwrap();
    let refs: Vec<_> = config
        .gitops
        .manifest_projects
        .iter()
        .map(|p| p.git_ref.clone().unwrap())
        .collect();
    assert_eq!(
        refs,
        [
            GitRef::Branch("main".into()),
            GitRef::Tag("v1.0".into()),
            GitRef::Commit(commit.to_ascii_lowercase())
        ]
    );

    let e = error("gitops:\n  manifest_projects:\n  - id: a\n    ref: {branch: main, tag: v1}\n");
    assert!(e.message.contains("exactly one of"), "{e}");
    assert_eq!(e.line, Some(4), "{e}");
    let e = error("gitops:\n  manifest_projects:\n  - id: a\n    ref: {commit: abc}\n");
    assert!(e.message.contains("full commit id"), "{e}");
    let e = error("gitops:\n  manifest_projects:\n  - id: a\n    ref: {branch: 'a..b'}\n");
    assert!(e.message.contains("not a valid Git branch"), "{e}");
}

#[test]
fn renderers_are_chosen_per_path() {
    let config = parse(
        r#"
plugins:
  - {name: jsonnet, world: renderer, path: j.wasm, sha256: 3f7c0d2c1b8a0e6f4d5c3b2a19080706f5e4d3c2b1a0998877665544332211ff}
gitops:
  manifest_projects:
  - id: apps
    paths:
    - {glob: "overlays/prod/**", kustomize: overlays/prod}
    - glob: "charts/web/**"
      helm: {chart: charts/web, release: web, namespace: web, values: {replicas: 3}, values_files: [prod.yaml]}
    - glob: "j/**"
      render: {plugin: jsonnet, dir: j, settings: {env: prod}}
"#,
    )
    .unwrap();
    let project = config.gitops.manifest_projects.iter().next().unwrap();
    assert!(
        matches!(&project.paths[0].renderer, Renderer::Kustomize { dir } if dir.as_str() == "overlays/prod")
    );
    let Renderer::Helm(helm) = &project.paths[1].renderer else {
        panic!("helm expected")
    };
    assert_eq!(helm.release, "web");
    assert_eq!(helm.values_files.len(), 1);
    assert_eq!(helm.values.as_ref().unwrap().len(), 1);
    let Renderer::Plugin(render) = &project.paths[2].renderer else {
        panic!("plugin expected")
    };
    assert_eq!(render.plugin.as_str(), "jsonnet");
    assert_eq!(
        render.settings.pairs(),
        [("env".to_owned(), "prod".to_owned())]
    );
    assert_eq!(config.plugins.len(), 1);

    let e = error(
        "gitops:\n  manifest_projects:\n  - id: a\n    paths:\n    - {glob: '**', kustomize: k, helm: {chart: c, release: r}}\n",
    );
    assert!(e.message.contains("choose one renderer"), "{e}");
}

#[test]
fn globs_stay_inside_the_repository() {
    for bad in [
        "../secrets/*.yaml",
        "a/../../b",
        "//etc/passwd",
        "a\\..\\b",
        "a/[z-a]",
    ] {
        let e = error(&format!(
            "gitops:\n  manifest_projects:\n  - id: a\n    paths:\n    - glob: '{bad}'\n"
        ));
        assert_eq!(e.line, Some(5), "{bad}: {e}");
        assert!(e.to_string().contains("glob"), "{bad}: {e}");
    }
    assert!(check_glob("/**/*.yaml").is_ok());
    assert!(check_glob("manifests/{a,b}/*.yml").is_ok());
}

#[test]
fn more_than_the_path_limit_is_refused() {
    let paths: String = (0..=MAX_PATHS)
        .map(|i| format!("    - glob: 'p{i}/*.yaml'\n"))
        .collect();
    let e = error(&format!(
        "gitops:\n  manifest_projects:\n  - id: a\n    paths:\n{paths}"
    ));
    assert!(e.message.contains("the limit is 100 paths"), "{e}");
}

#[test]
fn unknown_keys_are_errors_with_file_line_and_key() {
    let e =
        error("gitops:\n  manifest_projects:\n  - id: a\n    prune: true\n    prnue_timeout: 1s\n");
    assert_eq!(e.file, FILE);
    assert_eq!(e.line, Some(5), "{e}");
    assert_eq!(
        e.key.as_deref(),
        Some("gitops.manifest_projects[0].prnue_timeout"),
        "{e}"
    );
    assert!(e.message.contains("unknown field `prnue_timeout`"), "{e}");
    assert!(e.to_string().starts_with(&format!("{FILE}:5:")), "{e}");

    // Neither GitLab's nor Tether's: still an error (a typo of GitLab's `ci_access`).
    let e = error("gitops: {}\nci_acess: {}\n");
    assert_eq!(e.line, Some(2), "{e}");
    assert!(e.message.contains("unknown field `ci_acess`"), "{e}");
    let e = error("observability:\n  google_profile: {}\n");
    assert_eq!(
        e.key.as_deref(),
        Some("observability.google_profile"),
        "{e}"
    );
}

/// A whole GitLab agent config as GitLab's documentation writes each section: the GitOps part
/// drives Tether, the sections for features Tether does not have are accepted and named.
const GITLAB_FULL_CONFIG: &str = r#"
gitops:
  manifest_projects:
  - id: gitlab-org/cluster-integration/gitlab-agent
    default_namespace: my-ns
    paths:
    - glob: '/**/*.{yaml,yml,json}'
ci_access:
  projects:
  - id: path/to/project
    default_namespace: my-ns
    access_as:
      agent: {}
  groups:
  - id: path/to/group/subgroup
    environments:
    - production
container_scanning:
  cadence: '0 0 * * *'
  vulnerability_report:
    namespaces:
    - default
    - kube-system
  resource_requirements:
    requests:
      cpu: 200m
      memory: 200Mi
remote_development:
  enabled: true
  dns_zone: workspaces.example.dev
  network_policy:
    enabled: true
    egress:
    - allow: '0.0.0.0/0'
      except:
      - '10.0.0.0/8'
flux:
  webhook_receivers: []
observability:
  logging:
    level: debug
    grpc_level: warn
  google_profiler:
    enabled: true
    project_id: my-project
"#;

#[test]
fn gitlabs_keys_for_features_tether_lacks_are_accepted_and_named() {
    let config = parse(GITLAB_FULL_CONFIG).unwrap();
    assert_eq!(config.gitops.manifest_projects.iter().count(), 1);
    assert_eq!(config.observability.logging.level, LogLevel::Debug);
    assert_eq!(
        config.gitlab_keys_ignored(),
        [
            "ci_access",
            "container_scanning",
            "remote_development",
            "flux",
            "observability.google_profiler"
        ]
    );
    assert!(
        parse(GITLAB_CONFIG)
            .unwrap()
            .gitlab_keys_ignored()
            .is_empty()
    );
}

#[test]
fn bad_values_are_errors_with_their_line() {
    let e = error("gitops:\n  manifest_projects:\n  - id: a\n    reconcile_timeout: 10 minutes\n");
    assert_eq!(e.line, Some(4), "{e}");
    assert_eq!(
        e.key.as_deref(),
        Some("gitops.manifest_projects[0].reconcile_timeout"),
        "{e}"
    );
    assert!(e.message.contains("duration"), "{e}");
    let e = error("gitops:\n  manifest_projects:\n  - id: a\n    inventory_policy: adopt_some\n");
    assert_eq!(e.line, Some(4), "{e}");
    assert!(e.message.contains("adopt_some"), "{e}");
    let e =
        error("gitops:\n  manifest_projects:\n  - id: a\n    default_namespace: Not_A_Namespace\n");
    assert!(e.message.contains("namespace"), "{e}");
    let e = error("gitops: [not, a, mapping]\n");
    assert_eq!(e.line, Some(1), "{e}");
}

#[test]
fn text_that_is_not_yaml_is_refused_with_a_location() {
    let e = error("gitops:\n  manifest_projects: [\n   - id: a\n");
    assert!(e.line.is_some(), "{e}");
    let e = error("{{{{");
    assert!(e.line.is_some(), "{e}");
}

#[test]
fn a_file_over_the_size_limit_names_the_limit() {
    let big = format!("# {}\n", "x".repeat(MAX_CONFIG_FILE_SIZE));
    let e = error(&big);
    assert!(e.message.contains("128 KiB"), "{e}");
    assert_eq!(e.file, FILE);
}

#[test]
fn mode_is_namespaced_with_namespaces_or_cluster_wide() {
    let c = parse("mode: {scope: namespaced, namespaces: [web, apps, web]}\n").unwrap();
    assert_eq!(
        c.mode,
        Some(AgentMode::Namespaced {
            namespaces: vec!["apps".into(), "web".into()]
        })
    );
    let c = parse("mode: {scope: cluster}\n").unwrap();
    assert_eq!(c.mode, Some(AgentMode::ClusterWide));
    assert!(
        error("mode: {scope: namespaced}\n")
            .message
            .contains("at least one")
    );
    assert!(
        error("mode: {scope: cluster, namespaces: [a]}\n")
            .message
            .contains("only for")
    );
    assert!(error("mode: {scope: galaxy}\n").message.contains("galaxy"));
}

#[test]
fn resource_filters_match_groups_and_kinds_with_wildcards() {
    let c = parse(
        "resource_inclusions: [{api_groups: ['', apps], kinds: ['*']}]\nresource_exclusions: [{api_groups: ['*'], kinds: [Secret]}]\n",
    )
    .unwrap();
    assert!(c.manages("apps", "Deployment"));
    assert!(c.manages("", "ConfigMap"));
    assert!(!c.manages("", "Secret"), "excluded in every group");
    assert!(!c.manages("batch", "Job"), "not included");
    assert!(AgentConfig::default().manages("anything", "Any"));
    assert!(
        error("resource_inclusions: [{api_groups: [], kinds: [Pod]}]\n")
            .message
            .contains("at least one")
    );
}

#[test]
fn drift_prometheus_and_observability_sections() {
    let c = parse(
        "drift: {interval: 1m, detectors: [ownership], correct: false}\nprometheus: {url: 'http://prom:9090'}\nobservability: {logging: {level: debug, grpc_level: error}}\n",
    )
    .unwrap();
    assert_eq!(c.drift.interval, Duration::from_secs(60));
    assert!(!c.drift.correct);
    assert_eq!(
        c.prometheus.unwrap().url.unwrap().as_str(),
        "http://prom:9090"
    );
    assert_eq!(c.observability.logging.level, LogLevel::Debug);
    assert_eq!(c.observability.logging.grpc_level, LogLevel::Error);
    assert!(error("drift: {interval: 1s}\n").message.contains("minimum"));
    assert!(
        error("prometheus: {url: 'ftp://x'}\n")
            .message
            .contains("http://")
    );
    assert!(
        error("observability: {logging: {level: loud}}\n")
            .message
            .contains("loud")
    );
}

proptest! {
    // The parser reads untrusted text from any repository an agent is pointed at: whatever it gets, it
    // answers with a config or an error naming the file, and never panics.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        if let Err(e) = parse(&text) {
            prop_assert_eq!(e.file, FILE);
        }
    }

    #[test]
    fn mutated_valid_configs_never_panic(pos in 0usize..GITLAB_CONFIG.len(), insert in "[ -~\\n]{0,12}") {
        let mut text = GITLAB_CONFIG.to_owned();
        let pos = (0..=pos).rev().find(|&p| text.is_char_boundary(p)).unwrap_or(0);
        text.insert_str(pos, &insert);
        if let Err(e) = parse(&text) {
            prop_assert_eq!(e.file, FILE);
            prop_assert!(!e.message.is_empty());
        }
    }
}

#[test]
fn prometheus_limits_tenancy_and_plugin_settings() {
    let c = parse(
        "prometheus:\n  max_range: 24h\n  min_step: 15s\n  max_response: 1Mi\n  timeout: 5s\n  enforce: 'namespace=~\"team-a|team-b\"'\n",
    )
    .unwrap();
    let p = c.prometheus.unwrap();
    assert!(p.url.is_none(), "no url: the discovered one is used");
    assert_eq!(
        p.plugin_settings("http://127.0.0.1:9090"),
        [
            ("url", "http://127.0.0.1:9090"),
            ("max_range", "86400s"),
            ("min_step", "15s"),
            ("max_response", "1048576"),
            ("timeout", "5s"),
            ("enforce", "namespace=~\"team-a|team-b\""),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    let defaults = parse("prometheus: {}\n").unwrap().prometheus.unwrap();
    assert_eq!(defaults, crate::prometheus::Prometheus::default());
    let e = error("prometheus:\n  max_range: 0s\n");
    assert!(e.message.contains("prometheus.max_range"), "{e}");
    let e = error("prometheus:\n  timeout: 1h\n");
    assert!(e.message.contains("maximum"), "{e}");
    let e = error("prometheus:\n  enforce: team-a\n");
    assert!(e.message.contains("label matchers"), "{e}");
    let e = error("prometheus:\n  max_respons: 1Mi\n");
    assert!(e.message.contains("max_respons"), "{e}");
}
