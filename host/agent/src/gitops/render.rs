//! From the files of a commit to desired objects. The files are laid out in a private directory
//! through a capability to it (cap-std), so no path from the server can land outside it; then each
//! `paths[]` entry of the manifest project is rendered by its renderer plugin, which sees the
//! directory read-only. Every failure is collected, so one commit reports all its problems at
//! once. What each renderer receives is decided in one place shared with `tether render`:
//! [`tether_plugin_host::PathRender`].

use std::path::{Component, Path};

use tether_config::gitops::ManifestProject;
use tether_plugin_host::{ClusterInfo, PathRender, PluginCatalog, PluginError};

use crate::gitops::DesiredObject;

/// Why a commit could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{path}: {reason}")]
    UnsafePath { path: String, reason: &'static str },
    #[error("{path}: cannot write it: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("paths[{index}] ({glob}): {error}")]
    Plugin {
        index: usize,
        glob: String,
        error: Box<PluginError>,
    },
    #[error("{source_location}: {reason}")]
    NotAnObject {
        source_location: String,
        reason: String,
    },
}

/// A commit's files, laid out in a directory of their own that is removed when this is dropped.
#[derive(Debug)]
pub struct ProjectFiles {
    dir: tempfile::TempDir,
    /// The repository-relative paths written, to tell which path entries matched nothing.
    paths: Vec<String>,
}

impl ProjectFiles {
    /// Writes `files` (repository-relative paths and contents). Absolute paths and `..` are refused
    /// before anything is written; cap-std refuses anything else that would leave the directory.
    pub fn write<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Self, RenderError> {
        Self::write_in(&std::env::temp_dir(), files)
    }

    /// Like [`ProjectFiles::write`], in a directory of its own under `work_dir` (the agent's work
    /// dir: its root filesystem is read-only in a pod).
    pub fn write_in<'a>(
        work_dir: &Path,
        files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Self, RenderError> {
        let dir = tempfile::Builder::new()
            .prefix("tether-commit-")
            .tempdir_in(work_dir)
            .map_err(|source| RenderError::Write {
                path: work_dir.display().to_string(),
                source,
            })?;
        let root = cap_std::fs::Dir::open_ambient_dir(dir.path(), cap_std::ambient_authority())
            .map_err(|source| RenderError::Write {
                path: dir.path().display().to_string(),
                source,
            })?;
        let mut paths = Vec::new();
        for (path, data) in files {
            check_relative(path)?;
            paths.push(path.to_owned());
            let write = |p: &Path| -> std::io::Result<()> {
                if let Some(parent) = p.parent().filter(|p| !p.as_os_str().is_empty()) {
                    root.create_dir_all(parent)?;
                }
                root.write(p, data)
            };
            write(Path::new(path)).map_err(|source| RenderError::Write {
                path: path.to_owned(),
                source,
            })?;
        }
        Ok(Self { dir, paths })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn check_relative(path: &str) -> Result<(), RenderError> {
    let unsafe_path = |reason| {
        Err(RenderError::UnsafePath {
            path: path.to_owned(),
            reason,
        })
    };
    if path.is_empty() {
        return unsafe_path("an empty path");
    }
    for component in Path::new(path).components() {
        match component {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return unsafe_path("`..` would leave the repository"),
            Component::RootDir | Component::Prefix(_) => {
                return unsafe_path("an absolute path would leave the repository");
            }
        }
    }
    Ok(())
}

/// A commit's objects, and what is worth telling the user although it did not fail the render.
#[derive(Debug, Default)]
pub struct RenderedProject {
    pub objects: Vec<DesiredObject>,
    /// A path entry whose glob matches no file of the commit (almost always a typo or a moved
    /// directory), and the renderers' own warnings, each naming its path entry.
    pub warnings: Vec<String>,
}

/// Renders every path of `project` for the cluster described by `cluster`; all objects, or every
/// error.
pub fn render_project(
    catalog: &PluginCatalog,
    project: &ManifestProject,
    files: &ProjectFiles,
    cluster: &ClusterInfo,
) -> Result<RenderedProject, Vec<RenderError>> {
    let mut objects = Vec::new();
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for (index, path) in project.paths.iter().enumerate() {
        if !files.paths.iter().any(|file| path.glob.matches(file)) {
            warnings.push(format!(
                "paths[{index}] ({}): the glob matches no file of the commit",
                path.glob
            ));
        }
        let glob = path.glob.as_str().to_owned();
        let PathRender {
            plugin,
            subdir,
            request,
        } = PathRender::new(files.path(), path, &project.default_namespace, cluster);
        let rendered = catalog
            .renderer(&plugin)
            .and_then(|renderer| renderer.render(&request));
        let output = match rendered {
            Ok(output) => output,
            Err(error) => {
                errors.push(RenderError::Plugin {
                    index,
                    glob,
                    error: Box::new(error),
                });
                continue;
            }
        };
        for warning in output.warnings {
            warnings.push(match warning.location {
                Some(location) => {
                    format!("paths[{index}] ({glob}): {location}: {}", warning.message)
                }
                None => format!("paths[{index}] ({glob}): {}", warning.message),
            });
        }
        for object in output.objects {
            let location = match (&object.origin, &subdir) {
                (Some(origin), Some(dir)) => format!("{dir}/{origin}"),
                (Some(origin), None) => origin.to_string(),
                (None, _) => format!("paths[{index}] ({glob})"),
            };
            match DesiredObject::from_json(object.manifest, location.clone()) {
                Ok(o) => objects.push(o),
                Err(reason) => errors.push(RenderError::NotAnObject {
                    source_location: location,
                    reason,
                }),
            }
        }
    }
    if errors.is_empty() {
        Ok(RenderedProject { objects, warnings })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_config::agent::parse_agent_config;
    use tether_plugin_host::{EngineOptions, NoPluginFiles, PluginEngine};

    fn project(yaml: &str) -> ManifestProject {
        let config = parse_agent_config(yaml, "config.yaml").expect("a valid config");
        config
            .gitops
            .manifest_projects
            .iter()
            .next()
            .expect("one project")
            .clone()
    }

    fn catalog() -> PluginCatalog {
        let engine = PluginEngine::new(EngineOptions::default()).expect("an engine");
        PluginCatalog::load(&engine, &Default::default(), &NoPluginFiles)
    }

    #[test]
    fn paths_that_would_leave_the_directory_are_refused() {
        for bad in ["../outside.yaml", "a/../../outside.yaml", "/etc/passwd", ""] {
            let err = ProjectFiles::write([(bad, b"x".as_slice())]).unwrap_err();
            assert!(
                matches!(err, RenderError::UnsafePath { .. }),
                "{bad}: {err}"
            );
        }
        let files = ProjectFiles::write([("a/b/c.yaml", b"kind: X".as_slice())]).unwrap();
        assert_eq!(
            std::fs::read(files.path().join("a/b/c.yaml")).unwrap(),
            b"kind: X"
        );
    }

    #[test]
    fn plain_paths_render_every_document_with_its_file_and_line() {
        let files = ProjectFiles::write([
            (
                "apps/web.yaml",
                b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n"
                    .as_slice(),
            ),
            ("docs/readme.md", b"# not a manifest".as_slice()),
        ])
        .unwrap();
        let project = project(
            "gitops:\n  manifest_projects:\n    - id: group/app\n      paths:\n        - glob: 'apps/**/*.yaml'\n",
        );
        let objects = render_project(&catalog(), &project, &files, &ClusterInfo::default())
            .unwrap()
            .objects;
        let names: Vec<_> = objects
            .iter()
            .map(|o| o.name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert!(
            objects[0].source.starts_with("apps/web.yaml"),
            "{}",
            objects[0].source
        );
        assert!(
            objects[1].source.starts_with("apps/web.yaml:5"),
            "{}",
            objects[1].source
        );
    }

    #[test]
    fn every_failing_path_is_reported() {
        let files = ProjectFiles::write([(
            "broken.yaml",
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [unclosed\n".as_slice(),
        )])
        .unwrap();
        let project = project(
            "gitops:\n  manifest_projects:\n    - id: app\n      paths:\n        - glob: '*.yaml'\n        - glob: 'k/**'\n          kustomize: k\n",
        );
        let errors =
            render_project(&catalog(), &project, &files, &ClusterInfo::default()).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:#?}");
        let first = errors[0].to_string();
        assert!(first.starts_with("paths[0] (*.yaml):"), "{first}");
        assert!(first.contains("broken.yaml:3"), "{first}");
        let second = errors[1].to_string();
        assert!(second.contains("kustomize"), "{second}");
    }

    #[test]
    fn gitlabs_leading_slash_globs_render_what_they_select() {
        let files = ProjectFiles::write([
            (
                "apps/web.yaml",
                b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n".as_slice(),
            ),
            (
                "top.yml",
                b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n".as_slice(),
            ),
        ])
        .unwrap();
        let project = project(
            "gitops:\n  manifest_projects:\n    - id: app\n      paths:\n        - glob: '/**/*.{yaml,yml,json}'\n",
        );
        let rendered =
            render_project(&catalog(), &project, &files, &ClusterInfo::default()).unwrap();
        let mut names: Vec<_> = rendered
            .objects
            .iter()
            .map(|o| o.name().unwrap().to_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["a", "b"]);
        assert!(rendered.warnings.is_empty(), "{:?}", rendered.warnings);
    }

    #[test]
    fn a_path_that_matches_no_file_is_a_warning() {
        let files = ProjectFiles::write([(
            "apps/web.yaml",
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n".as_slice(),
        )])
        .unwrap();
        let project = project(
            "gitops:\n  manifest_projects:\n    - id: app\n      paths:\n        - glob: 'apps/*.yaml'\n        - glob: '/aps/*.yaml'\n",
        );
        let rendered =
            render_project(&catalog(), &project, &files, &ClusterInfo::default()).unwrap();
        assert_eq!(rendered.objects.len(), 1);
        assert_eq!(
            rendered.warnings,
            ["paths[1] (/aps/*.yaml): the glob matches no file of the commit"]
        );
    }
}
