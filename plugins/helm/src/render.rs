//! Rendering the templates of a chart and its enabled subcharts the way helm's engine does: one
//! template set for the whole tree, parsed deepest path first so a parent's `define` overrides a
//! subchart's, each file executed with its chart's `.Values`, `.Chart`, `.Files`, `.Subcharts`,
//! `.Release`, `.Capabilities` and `.Template`; `<no value>` removed from the output.

use crate::chart::Chart;
use crate::error::ChartError;
use crate::files::Files;
use crate::functions;
use crate::objects;
use crate::values::Values;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::sync::Arc;
use tether_gotemplate::{ErrorKind, MissingKey, Options, TemplateError, Templates, Value};

/// A rendered template file: helm's name (`chart/templates/x.yaml`) and its output.
#[derive(Debug)]
pub struct RenderedFile {
    pub name: String,
    pub content: String,
}

/// Everything rendering produced besides errors.
#[derive(Debug, Default)]
pub struct Rendered {
    pub files: Vec<RenderedFile>,
    /// helm's name of each template → its path in the source tree (for origins and errors).
    pub sources: BTreeMap<String, String>,
    /// Templates whose output is not a function of the input: (source path, the functions called).
    pub nondeterministic: Vec<(String, String)>,
}

/// One template to parse (and, unless it is a partial, execute).
struct Renderable {
    name: String,
    source: String,
    data: Arc<BTreeMap<String, Value>>,
    base_path: String,
}

/// Render every template of `chart` with the coalesced `values`.
pub fn render(
    chart: &Chart,
    values: &Values,
    release: Value,
    capabilities: Value,
) -> Result<Rendered, ChartError> {
    let mut renderables = Vec::new();
    let mut rendered = Rendered::default();
    let top = to_table(values);
    collect(
        chart,
        top,
        true,
        &chart.name,
        &release,
        &capabilities,
        &mut renderables,
        &mut rendered.sources,
    );
    // helm sorts by path depth, deepest first, then by name descending, and parses in that order.
    renderables.sort_by(|a, b| {
        let depth = |n: &str| n.matches('/').count();
        depth(&b.name)
            .cmp(&depth(&a.name))
            .then_with(|| b.name.cmp(&a.name))
    });

    let mut templates = Templates::new();
    templates.set_options(Options {
        missing_key: MissingKey::Zero,
        lint_mode: false,
    });
    let random = functions::RandomCalls::default();
    templates.add_function("htpasswd", functions::htpasswd(random.clone()));
    for renderable in &renderables {
        templates
            .parse(&renderable.name, &renderable.source)
            .map_err(|e| template_error(&e, &rendered.sources))?;
    }
    let templates = &templates;
    let mut seen_nondeterministic = std::collections::BTreeSet::new();
    for renderable in &renderables {
        let base = renderable
            .name
            .rsplit('/')
            .next()
            .unwrap_or(&renderable.name);
        if base.starts_with('_') {
            continue;
        }
        let mut data = (*renderable.data).clone();
        let mut template = BTreeMap::new();
        template.insert("Name".to_owned(), Value::str(renderable.name.as_str()));
        template.insert(
            "BasePath".to_owned(),
            Value::str(renderable.base_path.as_str()),
        );
        data.insert("Template".to_owned(), Value::map(template));
        let output = templates
            .execute(&renderable.name, &Value::map(data))
            .map_err(|e| template_error(&e, &rendered.sources))?;
        // The engine keeps one set of such calls per template set; a function first seen now, or one
        // seen before that this file names itself, is this file's.
        let calls = templates.nondeterministic_calls();
        let mut own: Vec<&str> = calls
            .iter()
            .filter(|f| !seen_nondeterministic.contains(*f) || mentions(&renderable.source, f))
            .map(String::as_str)
            .collect();
        own.extend(random.take());
        if !own.is_empty() {
            let origin = rendered
                .sources
                .get(&renderable.name)
                .cloned()
                .unwrap_or_else(|| renderable.name.clone());
            rendered.nondeterministic.push((origin, own.join(", ")));
        }
        seen_nondeterministic.extend(calls);
        rendered.files.push(RenderedFile {
            name: renderable.name.clone(),
            content: output.replace("<no value>", ""),
        });
    }
    Ok(rendered)
}

/// Whether template text calls `function` (the name as a whole word).
fn mentions(source: &str, function: &str) -> bool {
    source.match_indices(function).any(|(at, _)| {
        let word = |c: char| c.is_alphanumeric() || c == '_';
        let before = source[..at].chars().next_back().is_none_or(|c| !word(c));
        let after = source[at + function.len()..]
            .chars()
            .next()
            .is_none_or(|c| !word(c));
        before && after
    })
}

fn to_table(values: &Values) -> Value {
    objects::to_template(&Json::Object(values.clone()))
}

/// helm's `recAllTpls`: the data each chart's templates see, subcharts first (for `.Subcharts`).
#[allow(clippy::too_many_arguments)] // the recursion carries the same context helm's does
fn collect(
    chart: &Chart,
    values: Value,
    is_root: bool,
    full_path: &str,
    release: &Value,
    capabilities: &Value,
    out: &mut Vec<Renderable>,
    sources: &mut BTreeMap<String, String>,
) -> Value {
    let mut subcharts = BTreeMap::new();
    for sub in &chart.subcharts {
        let sub_values = values
            .as_map()
            .and_then(|m| m.get(&sub.name))
            .filter(|v| v.as_map().is_some())
            .unwrap_or_else(Value::empty_map);
        let sub_path = format!("{full_path}/charts/{}", sub.name);
        let next = collect(
            sub,
            sub_values,
            false,
            &sub_path,
            release,
            capabilities,
            out,
            sources,
        );
        subcharts.insert(sub.name.clone(), next);
    }
    let mut data = BTreeMap::new();
    data.insert("Chart".to_owned(), objects::chart(chart, is_root));
    data.insert(
        "Files".to_owned(),
        Value::Object(Arc::new(Files::new(&chart.files))),
    );
    data.insert("Release".to_owned(), release.clone());
    data.insert("Capabilities".to_owned(), capabilities.clone());
    data.insert("Values".to_owned(), objects::values_object(values));
    data.insert("Subcharts".to_owned(), Value::map(subcharts));
    let data = Arc::new(data);
    for template in &chart.templates {
        let base = template.name.rsplit('/').next().unwrap_or(&template.name);
        if chart.library && !base.starts_with('_') {
            continue;
        }
        let name = format!("{full_path}/{}", template.name);
        sources.insert(name.clone(), source_path(&chart.origin, &template.name));
        out.push(Renderable {
            name,
            source: String::from_utf8_lossy(&template.data).into_owned(),
            data: Arc::clone(&data),
            base_path: format!("{full_path}/templates"),
        });
    }
    Value::map((*data).clone())
}

/// A chart file's path in the source tree (`charts/x.tgz!templates/a.yaml` inside an archive).
pub fn source_path(origin: &str, name: &str) -> String {
    if origin.is_empty() || origin == "." {
        name.to_owned()
    } else if origin.ends_with('!') {
        format!("{origin}{name}")
    } else {
        format!("{origin}/{name}")
    }
}

/// A template error as the user should see it: the file in the source tree and the line, with helm's
/// wording of what failed.
fn template_error(error: &TemplateError, sources: &BTreeMap<String, String>) -> ChartError {
    let file = sources
        .get(&error.parse_name)
        .or_else(|| sources.get(&error.name))
        .cloned()
        .unwrap_or_else(|| error.parse_name.clone());
    let message = match error.kind {
        ErrorKind::Parse => format!("parse error in {}: {}", error.parse_name, error.message),
        ErrorKind::Exec => match &error.context {
            Some(context) => format!(
                "execution error in {} at <{context}>: {}",
                error.name, error.message
            ),
            None => format!("execution error in {}: {}", error.name, error.message),
        },
        ErrorKind::NotFound => error.message.clone(),
    };
    if error.line > 0 {
        ChartError::at_line(file, error.line, message)
    } else {
        ChartError::at(file, message)
    }
}
