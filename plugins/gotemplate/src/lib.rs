//! Go's text/template with Helm's and Sprig's function map, in Rust, for the `helm` renderer.
//!
//! [`Templates`] is Go's `*template.Template` set: every parsed file adds itself and its
//! `{{define}}`s; [`Templates::execute`] runs one by name. Values follow what Helm hands Go:
//! YAML numbers are `float64`, maps iterate in key order and are shared like Go maps (`set`
//! changes them for every holder), a missing key is nil. Host values with methods (`.Files`,
//! `.Capabilities`) implement [`Object`].
//!
//! Functions: Go's builtins, Sprig v3.3 as helm v4 configures it (no `env`/`expandenv`), and
//! helm's own (`include`, `tpl`, `required`, `fail`, `lookup`, `toYaml`, `fromYaml`, `toJson`,
//! `toToml`…). An unknown function is a parse error, as in Go. Errors print as Go prints them
//! (`template: x.yaml:3:5: executing "x.yaml" at <.Values.a.b>: nil pointer evaluating …`).
//!
//! The engine never touches the clock, randomness or the network on its own; functions that do
//! (`now`, `randAlpha`, `uuidv4`…) still work but are recorded ([`Templates::render`],
//! [`Templates::nondeterministic_calls`]) so the caller can say the output will not repeat.
//! Key and certificate generation (`genCA`, `genPrivateKey`…), `bcrypt`/`htpasswd`,
//! `encryptAES`/`decryptAES`, `derivePassword` and `getHostByName` are errors in the sandbox.
//!
//! ```
//! use tether_gotemplate::{MissingKey, Options, Templates, Value};
//!
//! let mut templates = Templates::new();
//! templates.set_options(Options { missing_key: MissingKey::Zero, lint_mode: false });
//! templates.parse("chart/templates/_helpers.tpl", r#"{{ define "name" }}{{ .Values.name | trunc 5 }}{{ end }}"#)?;
//! templates.parse("chart/templates/cm.yaml", "name: {{ include \"name\" . }}\nreplicas: {{ .Values.n }}")?;
//! let values = serde_json::json!({"Values": {"name": "webserver", "n": 3}});
//! let out = templates.execute("chart/templates/cm.yaml", &Value::from(values))?;
//! assert_eq!(out, "name: webse\nreplicas: 3");
//! # Ok::<(), tether_gotemplate::TemplateError>(())
//! ```
//!
//! Known differences from Go, each kept out of the differential suite on purpose:
//! - `index` of a string gives an `int` (Go: a `uint8`);
//! - `fromYaml` words YAML syntax errors its own way, as do regular-expression syntax errors;
//! - `keys`/`values` return map order sorted (Go's is random);
//! - dates are UTC only; `fromToml` is not supported;
//! - template and include nesting stops at 64 levels (Go: 100000), parser nesting at 100, so a
//!   runaway recursion is an error rather than a stack overflow in the wasm instance.

mod context;
mod encode;
mod exec;
mod funcs;
mod lex;
mod number;
mod parse;
mod printf;
mod value;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex};

pub use value::{Elem, List, Map, MapMethods, Object, Value, deep_equal};

use parse::Tree;

/// The name Helm gives the root of its template set; `tpl` parses its text under it.
pub const ROOT_NAME: &str = "gotpl";

/// What a map lookup of a missing key yields (Go's `missingkey` option).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissingKey {
    /// The invalid value: prints `<no value>`; fields of it are missing too.
    #[default]
    Default,
    /// The zero value (nil): prints `<no value>`; a field of it is a nil-pointer error.
    /// Helm renders with this and removes `<no value>` from the output.
    Zero,
    /// An error (Helm's strict mode).
    Error,
}

/// Execution options shared by every template in a set.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    pub missing_key: MissingKey,
    /// Helm's lint mode: `required` and `fail` do not stop rendering.
    pub lint_mode: bool,
}

/// A host function added with [`Templates::add_function`].
pub type HostFunction = Arc<dyn Fn(&[Value]) -> Result<Value, String> + Send + Sync>;

/// Per-execution bookkeeping, shared by nested `include`/`tpl` calls.
#[derive(Debug, Default)]
pub(crate) struct RunState {
    pub nondeterministic: BTreeSet<&'static str>,
    /// How many `include` calls of each name are active, for Helm's recursion limit.
    pub includes: BTreeMap<String, usize>,
}

/// A set of named templates sharing their definitions, like Go's `*template.Template`.
#[derive(Clone, Default)]
pub struct Templates {
    trees: BTreeMap<String, Arc<Tree>>,
    functions: BTreeMap<String, HostFunction>,
    options: Options,
    nondeterministic: Arc<Mutex<BTreeSet<String>>>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("templates", &self.trees.keys().collect::<Vec<_>>())
            .field("functions", &self.functions.keys().collect::<Vec<_>>())
            .field("options", &self.options)
            .finish()
    }
}

/// The output of one execution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub output: String,
    /// Functions whose result is not a function of the input (`now`, `randAlpha`…) that this
    /// execution called, including inside `include` and `tpl`, in name order.
    pub nondeterministic: Vec<String>,
}

/// Whether a parse or an execution failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Parse,
    Exec,
    /// The named template does not exist.
    NotFound,
}

/// A template error, displayed the way Go prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    pub kind: ErrorKind,
    /// The template being executed (or parsed).
    pub name: String,
    /// The file the failing node is in (differs from `name` inside a `define`).
    pub parse_name: String,
    pub line: usize,
    /// Byte column of the failing node, 0-based as Go counts it (exec errors only).
    pub col: usize,
    /// Source text of the failing action part (exec errors only).
    pub context: Option<String>,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, &self.context) {
            (ErrorKind::Parse, _) => write!(
                f,
                "template: {}:{}: {}",
                self.parse_name, self.line, self.message
            ),
            (ErrorKind::Exec, Some(context)) => write!(
                f,
                "template: {}:{}:{}: executing {:?} at <{}>: {}",
                self.parse_name, self.line, self.col, self.name, context, self.message
            ),
            _ => write!(f, "template: {}", self.message),
        }
    }
}

impl std::error::Error for TemplateError {}

impl Templates {
    pub fn new() -> Self {
        Self::default()
    }

    /// Options for every later execution (`missingkey`, lint mode).
    pub fn set_options(&mut self, options: Options) {
        self.options = options;
    }

    pub fn options(&self) -> Options {
        self.options
    }

    /// Make `name` callable from templates parsed afterwards; it shadows a built-in of that name.
    pub fn add_function(&mut self, name: &str, f: HostFunction) {
        self.functions.insert(name.to_string(), f);
    }

    pub(crate) fn user_function(&self, name: &str) -> Option<&HostFunction> {
        self.functions.get(name)
    }

    fn has_function(&self, name: &str) -> bool {
        self.functions.contains_key(name) || name == "and" || name == "or" || funcs::exists(name)
    }

    /// Parse `source` as template `name` and add it and its `define`s to the set, as Go's
    /// `t.New(name).Parse(source)`: a later non-empty definition replaces an earlier one.
    pub fn parse(&mut self, name: &str, source: &str) -> Result<(), TemplateError> {
        self.parse_main(name, source).map(|_| ())
    }

    /// Parse like [`Templates::parse`] and return the new main tree itself: like Go's
    /// `t.New(name).Parse(src)`, it is what runs even when an empty text did not replace an
    /// existing template of that name in the set.
    pub(crate) fn parse_main(
        &mut self,
        name: &str,
        source: &str,
    ) -> Result<Arc<Tree>, TemplateError> {
        let (tree, defines) =
            parse::parse(name, source, &|f| self.has_function(f)).map_err(|e| TemplateError {
                kind: ErrorKind::Parse,
                name: e.name.clone(),
                parse_name: e.name,
                line: e.line,
                col: 0,
                context: None,
                message: e.message,
            })?;
        let mut seen: BTreeMap<String, bool> = BTreeMap::new();
        for t in std::iter::once(&tree).chain(defines.iter()) {
            let empty = t.is_empty();
            if let Some(&was_empty) = seen.get(&t.name)
                && !was_empty
                && !empty
            {
                return Err(TemplateError {
                    kind: ErrorKind::Parse,
                    name: name.to_string(),
                    parse_name: name.to_string(),
                    line: 1,
                    col: 0,
                    context: None,
                    message: format!("template: multiple definition of template {:?}", t.name),
                });
            }
            seen.insert(t.name.clone(), empty);
        }
        let main = Arc::new(tree);
        self.add_tree(main.clone());
        for t in defines {
            self.add_tree(Arc::new(t));
        }
        Ok(main)
    }

    fn add_tree(&mut self, tree: Arc<Tree>) {
        if tree.is_empty() && self.trees.contains_key(&tree.name) {
            return;
        }
        self.trees.insert(tree.name.clone(), tree);
    }

    pub(crate) fn tree(&self, name: &str) -> Option<Arc<Tree>> {
        self.trees.get(name).cloned()
    }

    /// Whether a template of this name is defined.
    pub fn contains(&self, name: &str) -> bool {
        self.trees.contains_key(name)
    }

    /// Names of every template in the set, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.trees.keys().map(String::as_str)
    }

    /// Execute template `name` with `data` as dot.
    pub fn execute(&self, name: &str, data: &Value) -> Result<String, TemplateError> {
        self.render(name, data).map(|r| r.output)
    }

    /// Execute template `name` with `data` as dot, and say which non-deterministic functions
    /// this execution called (also added to [`Templates::nondeterministic_calls`]).
    pub fn render(&self, name: &str, data: &Value) -> Result<Rendered, TemplateError> {
        let mut state = RunState::default();
        let result = self.execute_with_state(name, data, &mut state, 0);
        if !state.nondeterministic.is_empty()
            && let Ok(mut calls) = self.nondeterministic.lock()
        {
            calls.extend(state.nondeterministic.iter().map(|s| s.to_string()));
        }
        result.map(|output| Rendered {
            output,
            nondeterministic: state
                .nondeterministic
                .iter()
                .map(|s| s.to_string())
                .collect(),
        })
    }

    pub(crate) fn execute_with_state(
        &self,
        name: &str,
        data: &Value,
        state: &mut RunState,
        depth: usize,
    ) -> Result<String, TemplateError> {
        let Some(tree) = self.tree(name) else {
            return Err(TemplateError {
                kind: ErrorKind::NotFound,
                name: name.to_string(),
                parse_name: name.to_string(),
                line: 0,
                col: 0,
                context: None,
                message: format!("no template {name:?} associated with template set"),
            });
        };
        self.execute_tree(tree, data, state, depth)
    }

    pub(crate) fn execute_tree(
        &self,
        tree: Arc<Tree>,
        data: &Value,
        state: &mut RunState,
        depth: usize,
    ) -> Result<String, TemplateError> {
        let dot = match data {
            Value::Nil => None,
            v => Some(v.clone()),
        };
        let mut exec = exec::Exec::new(self, tree, dot.clone(), depth, state);
        exec.run(&dot).map_err(|e| *e)?;
        Ok(exec.out)
    }

    /// Functions whose result is not a function of the input (`now`, `randAlpha`, `uuidv4`…)
    /// called by any execution of this set so far.
    pub fn nondeterministic_calls(&self) -> Vec<String> {
        self.nondeterministic
            .lock()
            .map(|c| c.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
