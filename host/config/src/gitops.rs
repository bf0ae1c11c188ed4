//! The `gitops:` section of the agent's configuration: which repositories (manifest projects) the agent
//! synchronises, at which ref, which paths, how they are rendered and how the apply behaves.
//!
//! GitLab agent configs are accepted unchanged — every key and default below is GitLab's — and Tether
//! adds one optional renderer per path:
//!
//! ```yaml
//! gitops:
//!   manifest_projects:
//!     - id: platform/apps               # a repository the server knows (and granted to this agent)
//!       ref: {branch: main}             # or {tag: v1.2.0} or {commit: <40 hex>}; default: the default branch
//!       default_namespace: apps
//!       paths:
//!         - glob: "base/**/*.yaml"
//!         - glob: "overlays/prod/**"
//!           kustomize: overlays/prod
//!         - glob: "charts/web/**"
//!           helm: {chart: charts/web, release: web, values: {replicas: 3}}
//!         - glob: "jsonnet/**"
//!           render: {plugin: jsonnet, dir: jsonnet, settings: {env: prod}}
//!       reconcile_timeout: 3600s
//!       dry_run_strategy: none
//!       prune: true
//!       prune_timeout: 3600s
//!       prune_propagation_policy: foreground
//!       inventory_policy: must_match
//!       force_conflicts: true           # Tether: take fields over from other field managers
//!       allow_empty: false              # Tether (Argo CD's allowEmpty): may a commit that renders
//!                                       # no objects prune everything?
//! ```
//!
//! Validation happens while deserializing, so errors carry the file and line of the offending value.

use crate::duration::GoDuration;
use crate::plugins::{PluginName, RelativePath, Settings};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Namespace for namespaced objects that name none (GitLab's default).
pub const DEFAULT_NAMESPACE: &str = "default";
/// The glob of a manifest project that lists no paths (GitLab's default).
pub const DEFAULT_GLOB: &str = "**/*.{yaml,yml,json}";
/// How long an apply may take to become ready (GitLab's default).
pub const DEFAULT_RECONCILE_TIMEOUT: Duration = Duration::from_secs(3600);
/// How long a prune may take to finish (GitLab's default).
pub const DEFAULT_PRUNE_TIMEOUT: Duration = Duration::from_secs(3600);
/// Objects removed from Git are deleted (GitLab's default).
pub const DEFAULT_PRUNE: bool = true;
pub const DEFAULT_DRY_RUN_STRATEGY: DryRunStrategy = DryRunStrategy::None;
pub const DEFAULT_PRUNE_PROPAGATION_POLICY: PrunePropagationPolicy =
    PrunePropagationPolicy::Foreground;
pub const DEFAULT_INVENTORY_POLICY: InventoryPolicy = InventoryPolicy::MustMatch;
/// Server-side apply takes fields over from other field managers, as GitLab's agent always does;
/// `false` makes such a conflict an error for the object instead.
pub const DEFAULT_FORCE_CONFLICTS: bool = true;
/// A commit that renders no objects never prunes a non-empty inventory unless the project opts in
/// (Argo CD's `allowEmpty`): an empty render is far more often a glob typo than a wish to delete.
pub const DEFAULT_ALLOW_EMPTY: bool = false;
/// GitLab kas refuses more paths than this per manifest project.
pub const MAX_PATHS: usize = 100;

/// The `gitops:` section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitOps {
    #[serde(default)]
    pub manifest_projects: ManifestProjects,
}

/// The manifest projects; ids unique.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(try_from = "Vec<ManifestProject>")]
pub struct ManifestProjects(Vec<ManifestProject>);

impl ManifestProjects {
    pub fn iter(&self) -> std::slice::Iter<'_, ManifestProject> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<Vec<ManifestProject>> for ManifestProjects {
    type Error = String;

    /// One entry per repository. The agent keys its workers, inventories and status reports by
    /// the repository (as GitLab's agent keys its gitops workers by project id), so the same
    /// repository at two refs would fight over one inventory: refused, naming both entries.
    fn try_from(projects: Vec<ManifestProject>) -> Result<Self, String> {
        let mut seen: BTreeMap<&str, (usize, &Option<GitRef>)> = BTreeMap::new();
        for (index, project) in projects.iter().enumerate() {
            if let Some((first, first_ref)) =
                seen.insert(project.id.as_str(), (index, &project.git_ref))
            {
                let shown = |r: &Option<GitRef>| match r {
                    Some(r) => r.to_string(),
                    None => "the default branch".to_owned(),
                };
                return Err(if *first_ref == project.git_ref {
                    format!(
                        "manifest_projects[{first}] and manifest_projects[{index}] both sync `{}` at {}; \
                         merge their paths into one entry",
                        project.id,
                        shown(&project.git_ref)
                    )
                } else {
                    format!(
                        "manifest_projects[{first}] ({}) and manifest_projects[{index}] ({}) both sync `{}`; \
                         a repository can be synced at one ref only (its objects share one inventory): \
                         keep one entry, or use a second agent for the other ref",
                        shown(first_ref),
                        shown(&project.git_ref),
                        project.id
                    )
                });
            }
        }
        Ok(ManifestProjects(projects))
    }
}

/// One repository to synchronise, with GitLab's defaults filled in.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "ManifestProjectFields")]
pub struct ManifestProject {
    pub id: ProjectId,
    /// `None`: the repository's default branch.
    pub git_ref: Option<GitRef>,
    pub default_namespace: String,
    pub paths: Vec<ManifestPath>,
    pub reconcile_timeout: Duration,
    pub dry_run_strategy: DryRunStrategy,
    pub prune: bool,
    pub prune_timeout: Duration,
    pub prune_propagation_policy: PrunePropagationPolicy,
    pub inventory_policy: InventoryPolicy,
    pub force_conflicts: bool,
    /// Whether a commit that renders no objects may prune every object of the project.
    pub allow_empty: bool,
    /// This project's `drift:` overrides of the agent's.
    pub drift: Option<crate::drift::DriftOverride>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestProjectFields {
    id: ProjectId,
    #[serde(rename = "ref")]
    git_ref: Option<GitRef>,
    default_namespace: Option<String>,
    #[serde(default)]
    paths: Vec<ManifestPath>,
    reconcile_timeout: Option<GoDuration>,
    dry_run_strategy: Option<DryRunStrategy>,
    prune: Option<bool>,
    prune_timeout: Option<GoDuration>,
    prune_propagation_policy: Option<PrunePropagationPolicy>,
    inventory_policy: Option<InventoryPolicy>,
    force_conflicts: Option<bool>,
    allow_empty: Option<bool>,
    drift: Option<crate::drift::DriftOverride>,
}

impl TryFrom<ManifestProjectFields> for ManifestProject {
    type Error = String;

    fn try_from(f: ManifestProjectFields) -> Result<Self, String> {
        if f.paths.len() > MAX_PATHS {
            return Err(format!(
                "manifest project `{}` lists {} paths; the limit is {MAX_PATHS} paths",
                f.id,
                f.paths.len()
            ));
        }
        let default_namespace = match f.default_namespace {
            Some(ns) => {
                check_dns_label(&ns).map_err(|e| format!("default_namespace: {e}"))?;
                ns
            }
            None => DEFAULT_NAMESPACE.to_owned(),
        };
        let paths = if f.paths.is_empty() {
            vec![ManifestPath {
                glob: Glob(DEFAULT_GLOB.to_owned()),
                renderer: Renderer::Plain,
            }]
        } else {
            f.paths
        };
        Ok(ManifestProject {
            id: f.id,
            git_ref: f.git_ref,
            default_namespace,
            paths,
            reconcile_timeout: f
                .reconcile_timeout
                .map_or(DEFAULT_RECONCILE_TIMEOUT, GoDuration::get),
            dry_run_strategy: f.dry_run_strategy.unwrap_or(DEFAULT_DRY_RUN_STRATEGY),
            prune: f.prune.unwrap_or(DEFAULT_PRUNE),
            prune_timeout: f
                .prune_timeout
                .map_or(DEFAULT_PRUNE_TIMEOUT, GoDuration::get),
            prune_propagation_policy: f
                .prune_propagation_policy
                .unwrap_or(DEFAULT_PRUNE_PROPAGATION_POLICY),
            inventory_policy: f.inventory_policy.unwrap_or(DEFAULT_INVENTORY_POLICY),
            force_conflicts: f.force_conflicts.unwrap_or(DEFAULT_FORCE_CONFLICTS),
            allow_empty: f.allow_empty.unwrap_or(DEFAULT_ALLOW_EMPTY),
            drift: f.drift,
        })
    }
}

/// A repository as the server names it (`group/project` in GitLab configs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct ProjectId(String);

impl ProjectId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ProjectId {
    type Error = String;

    fn try_from(id: String) -> Result<Self, String> {
        if id.is_empty() || id.len() > 255 {
            return Err("manifest project `id` must be 1 to 255 characters".to_owned());
        }
        if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "manifest project id `{id}` must not contain spaces or control characters"
            ));
        }
        Ok(ProjectId(id))
    }
}

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which commit of a repository: the tip of a branch, a tag, or a fixed commit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "GitRefFields")]
pub enum GitRef {
    Branch(String),
    Tag(String),
    /// Full hex object id (40 digits for SHA-1, 64 for SHA-256), lower-case.
    Commit(String),
}

impl fmt::Display for GitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GitRef::Branch(b) => write!(f, "branch {b}"),
            GitRef::Tag(t) => write!(f, "tag {t}"),
            GitRef::Commit(c) => write!(f, "commit {c}"),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GitRefFields {
    branch: Option<String>,
    tag: Option<String>,
    commit: Option<String>,
}

impl TryFrom<GitRefFields> for GitRef {
    type Error = String;

    fn try_from(f: GitRefFields) -> Result<Self, String> {
        match (f.branch, f.tag, f.commit) {
            (Some(branch), None, None) => check_ref_name(&branch).map(|()| GitRef::Branch(branch)),
            (None, Some(tag), None) => check_ref_name(&tag).map(|()| GitRef::Tag(tag)),
            (None, None, Some(commit)) => {
                if (commit.len() == 40 || commit.len() == 64)
                    && commit.chars().all(|c| c.is_ascii_hexdigit())
                {
                    Ok(GitRef::Commit(commit.to_ascii_lowercase()))
                } else {
                    Err(format!(
                        "ref commit `{commit}` must be a full commit id (40 hex digits)"
                    ))
                }
            }
            _ => Err("`ref` takes exactly one of `branch`, `tag` or `commit`".to_owned()),
        }
    }
}

/// Git's rules for a ref name (`git check-ref-format`), the subset that matters for safety and clarity.
fn check_ref_name(name: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name.starts_with(['/', '-', '.'])
        || name.ends_with(['/', '.'])
        || name.ends_with(".lock")
        || name.contains("..")
        || name.contains("//")
        || name.contains("@{")
        || name
            .chars()
            .any(|c| c.is_ascii_control() || " ~^:?*[\\".contains(c));
    if bad {
        Err(format!("`{name}` is not a valid Git branch or tag name"))
    } else {
        Ok(())
    }
}

/// A Kubernetes namespace name: a DNS label.
pub(crate) fn check_dns_label(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid namespace name (lower-case letters, digits and `-`, at most 63 characters)"
        ))
    }
}

/// One `paths[]` entry: the files it selects and how they become objects.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "ManifestPathFields")]
pub struct ManifestPath {
    pub glob: Glob,
    pub renderer: Renderer,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestPathFields {
    glob: Glob,
    kustomize: Option<RelativePath>,
    helm: Option<HelmRelease>,
    render: Option<PluginRender>,
}

impl TryFrom<ManifestPathFields> for ManifestPath {
    type Error = String;

    fn try_from(f: ManifestPathFields) -> Result<Self, String> {
        let renderer = match (f.kustomize, f.helm, f.render) {
            (None, None, None) => Renderer::Plain,
            (Some(dir), None, None) => Renderer::Kustomize { dir },
            (None, Some(helm), None) => Renderer::Helm(helm),
            (None, None, Some(render)) => Renderer::Plugin(render),
            _ => {
                return Err(format!(
                    "path `{}`: choose one renderer of `kustomize`, `helm` or `render`",
                    f.glob
                ));
            }
        };
        Ok(ManifestPath {
            glob: f.glob,
            renderer,
        })
    }
}

/// How the files of a path become Kubernetes objects.
#[derive(Debug, Clone, PartialEq)]
pub enum Renderer {
    /// YAML and JSON manifests as they are (GitLab's behaviour).
    Plain,
    /// `kustomize: DIR`: the kustomization in DIR.
    Kustomize { dir: RelativePath },
    /// `helm: {...}`: a chart rendered as `helm template` would.
    Helm(HelmRelease),
    /// `render: {...}`: a renderer plugin.
    Plugin(PluginRender),
}

/// `helm: {chart, release, namespace, values, values_files}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelmRelease {
    /// Directory of the chart in the repository.
    pub chart: RelativePath,
    pub release: String,
    /// Namespace of the release; the project's `default_namespace` when omitted.
    pub namespace: Option<String>,
    /// Values given inline; they override `values_files`.
    #[serde(default)]
    pub values: Option<serde_yaml::Mapping>,
    /// Values files in the repository, applied in order.
    #[serde(default)]
    pub values_files: Vec<RelativePath>,
}

/// `render: {plugin, dir, settings}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginRender {
    pub plugin: PluginName,
    /// Directory handed to the plugin (read-only); the repository root when omitted.
    pub dir: Option<RelativePath>,
    #[serde(default)]
    pub settings: Settings,
}

/// A glob selecting files in the repository (`**`, `*`, `?`, `{a,b}`, `[...]`). It never leaves the
/// repository: absolute globs and `..` are refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Glob(String);

impl Glob {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form matched against repository paths (see [`normalize_glob`]).
    pub fn normalized(&self) -> &str {
        normalize_glob(&self.0)
    }

    /// Whether `path` (repository-relative, `/`-separated) is selected by this glob.
    pub fn matches(&self, path: &str) -> bool {
        // Validated when the configuration was read, so it compiles.
        compile_glob(&self.0).is_ok_and(|m| m.is_match(path))
    }
}

impl TryFrom<String> for Glob {
    type Error = String;

    fn try_from(glob: String) -> Result<Self, String> {
        check_glob(&glob)?;
        Ok(Glob(glob))
    }
}

/// The one form every glob is matched in: GitLab documents globs with a leading `/` meaning "from
/// the repository root" (`/**/*.{yaml,yml,json}`), while paths in a repository (and in a renderer's
/// source tree) have none, so one leading `/` is dropped. The `raw` renderer applies the same rule
/// to its `glob` setting.
pub fn normalize_glob(glob: &str) -> &str {
    glob.strip_prefix('/').unwrap_or(glob)
}

/// The one glob engine: `globset` with `*` and `?` stopping at `/` (`**` crosses directories), on the
/// normalised form. The server selects files with it, the agent checks each path entry with it, and
/// the `raw` renderer matches with the same engine and options.
pub fn compile_glob(glob: &str) -> Result<globset::GlobMatcher, String> {
    build_glob(glob).map(|g| g.compile_matcher())
}

/// The checked, compiled glob, for callers that combine several into a `globset::GlobSet`.
pub fn build_glob(glob: &str) -> Result<globset::Glob, String> {
    let relative = normalize_glob(glob);
    if relative.is_empty() {
        return Err("empty glob".to_owned());
    }
    if relative.starts_with('/') || relative.contains('\\') || relative.contains('\0') {
        return Err(format!(
            "glob `{glob}` must be a path inside the repository"
        ));
    }
    if relative.split('/').any(|part| part == "..") {
        return Err(format!("glob `{glob}` must not contain `..`"));
    }
    globset::GlobBuilder::new(relative)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("glob `{glob}`: {}", e.kind()))
}

/// The rules a glob must follow to stay inside the repository. Public so the server can apply the same
/// check to globs that reach it over the wire.
pub fn check_glob(glob: &str) -> Result<(), String> {
    build_glob(glob).map(drop)
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `dry_run_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DryRunStrategy {
    None,
    Client,
    Server,
}

/// `prune_propagation_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrunePropagationPolicy {
    Orphan,
    Background,
    Foreground,
}

/// `inventory_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InventoryPolicy {
    MustMatch,
    AdoptIfNoInventory,
    AdoptAll,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::parse_agent_config;

    fn projects(yaml: &str) -> Result<Vec<ManifestProject>, String> {
        parse_agent_config(yaml, "config.yaml")
            .map(|c| c.gitops.manifest_projects.iter().cloned().collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_same_repository_at_two_refs_is_refused_naming_both_entries() {
        let e = projects(
            "gitops:\n  manifest_projects:\n  - id: group/app\n  - id: other\n  - id: group/app\n    ref: {tag: v1}\n",
        )
        .unwrap_err();
        assert!(
            e.contains("manifest_projects[0] (the default branch)")
                && e.contains("manifest_projects[2] (tag v1)")
                && e.contains("`group/app`")
                && e.contains("one ref only"),
            "{e}"
        );
        let e = projects(
            "gitops:\n  manifest_projects:\n  - id: a\n    ref: {branch: main}\n  - id: a\n    ref: {branch: main}\n",
        )
        .unwrap_err();
        assert!(
            e.contains(
                "manifest_projects[0] and manifest_projects[1] both sync `a` at branch main"
            ),
            "{e}"
        );
        // Different repositories at different refs are fine.
        assert_eq!(
            projects(
                "gitops:\n  manifest_projects:\n  - {id: a, ref: {branch: main}}\n  - {id: b, ref: {tag: v1}}\n"
            )
            .unwrap()
            .len(),
            2
        );
    }

    #[test]
    fn allow_empty_is_off_unless_the_project_opts_in() {
        let p = projects(
            "gitops:\n  manifest_projects:\n  - id: a\n  - id: b\n    allow_empty: true\n",
        )
        .unwrap();
        assert!(!p[0].allow_empty);
        assert!(p[1].allow_empty);
    }

    #[test]
    fn gitlabs_leading_slash_form_matches_like_the_relative_form() {
        for (glob, path, expected) in [
            ("/**/*.{yaml,yml,json}", "a.yaml", true),
            ("/**/*.{yaml,yml,json}", "deep/er/b.json", true),
            ("**/*.{yaml,yml,json}", "deep/er/b.json", true),
            ("/manifests/*.yaml", "manifests/a.yaml", true),
            ("/manifests/*.yaml", "manifests/sub/a.yaml", false),
            ("manifests/*.yaml", "manifests/sub/a.yaml", false),
            ("/manifests/**", "manifests/sub/a.yaml", true),
            ("/**/*.yaml", "README.md", false),
        ] {
            let glob = Glob::try_from(glob.to_owned()).unwrap();
            assert_eq!(glob.matches(path), expected, "{glob} vs {path}");
            assert_eq!(
                compile_glob(glob.as_str()).unwrap().is_match(path),
                expected
            );
        }
        assert_eq!(normalize_glob("/a/*.yaml"), "a/*.yaml");
        assert_eq!(normalize_glob("a/*.yaml"), "a/*.yaml");
        assert!(check_glob("//etc/*").is_err());
        assert!(check_glob("/../x").is_err());
    }
}
