//! Walks a parsed template against data, following Go's text/template/exec: variable scopes,
//! `missingkey` handling, the difference between a missing value and a present nil inside one
//! field chain, and error messages that name the template, position and action.

use std::sync::Arc;

mod call;
mod fields;

use fields::Receiver;

use crate::parse::{Arg, ArgKind, Branch, Command, List, Node, Pipe, Tree};
use crate::value::Value;
use crate::{ErrorKind, RunState, TemplateError, Templates};

/// Nested `template`/`include`/`tpl` calls allowed. Go allows 100000 (and Helm 1000 includes of
/// one name), but each level costs a few KiB of native stack and wasmtime gives a guest 512 KiB
/// by default: 64 levels leave room for the control structures inside them, and charts nest
/// includes a dozen deep at most.
pub const MAX_DEPTH: usize = 64;

/// How a list walk ended: normally, or by `{{break}}`/`{{continue}}` unwinding to its `range`.
enum Flow {
    Normal,
    Break,
    Continue,
}

/// A template value as Go's reflection sees it: `None` is the invalid (missing) value, which is
/// distinct from a present nil only while walking one field chain.
pub(crate) type Slot = Option<Value>;

pub(crate) struct Exec<'a, 's> {
    pub set: &'a Templates,
    pub tree: Arc<Tree>,
    /// Variables in scope: name, value, and whether Go holds the value boxed in an
    /// interface{} (a `range` element), which error messages name as `interface {}`.
    pub vars: Vec<(String, Slot, bool)>,
    /// Whether dot is such a boxed value (inside `range`).
    dot_boxed: bool,
    pub out: String,
    pub depth: usize,
    pub state: &'s mut RunState,
    /// Where Go would report an error now: (location, source span start, span end).
    at: (usize, usize, usize),
    /// Go's text for the node at `at` when it is not a source span (a `{{template}}` call).
    context: Option<String>,
}

/// Errors are boxed inside the executor: every frame of the recursive walk returns a `Result`,
/// and a large error type inline would multiply the stack each nesting level needs (the wasm
/// stack is small).
pub(crate) type Result<T> = std::result::Result<T, Box<TemplateError>>;

impl<'a, 's> Exec<'a, 's> {
    pub fn new(
        set: &'a Templates,
        tree: Arc<Tree>,
        dot: Slot,
        depth: usize,
        state: &'s mut RunState,
    ) -> Self {
        Exec {
            set,
            tree,
            vars: vec![("$".into(), dot, false)],
            dot_boxed: false,
            out: String::new(),
            depth,
            state,
            at: (0, 0, 0),
            context: None,
        }
    }

    pub fn run(&mut self, dot: &Slot) -> Result<()> {
        let tree = self.tree.clone();
        self.walk_list(dot, &tree.root).map(|_| ())
    }

    fn error(&self, message: impl Into<String>) -> Box<TemplateError> {
        let (line, col) = self.tree.position(self.at.0);
        let end = self.at.2.max(self.at.1).min(self.tree.source.len());
        let context = match &self.context {
            Some(c) => c.clone(),
            None => self.tree.node_text(self.at.1, end).unwrap_or_else(|| {
                self.tree
                    .source
                    .get(self.at.1..end)
                    .unwrap_or("")
                    .to_string()
            }),
        };
        Box::new(TemplateError {
            kind: ErrorKind::Exec,
            name: self.tree.name.clone(),
            parse_name: self.tree.parse_name.clone(),
            line,
            col,
            context: Some(context),
            message: message.into(),
        })
    }

    fn at_arg(&mut self, arg: &Arg) {
        self.at = (arg.loc, arg.pos, arg.end);
        self.context = None;
    }

    fn at_command(&mut self, cmd: &Command) {
        self.at = (cmd.pos, cmd.pos, cmd.end);
        self.context = None;
    }

    fn walk_list(&mut self, dot: &Slot, list: &List) -> Result<Flow> {
        for node in list {
            match self.walk(dot, node)? {
                Flow::Normal => {}
                flow => return Ok(flow),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &Slot, node: &Node) -> Result<Flow> {
        match node {
            Node::Text(t) => self.out.push_str(t),
            Node::Action(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    match v {
                        None | Some(Value::Nil) => self.out.push_str("<no value>"),
                        Some(v) => self.out.push_str(&v.go_string()),
                    }
                }
            }
            Node::If(b) => return self.walk_if_with(dot, b, false),
            Node::With(b) => return self.walk_if_with(dot, b, true),
            Node::Range(b) => return self.walk_range(dot, b),
            Node::Template {
                name,
                pipe,
                pos,
                context,
            } => {
                let at = (*pos, 0, 0);
                self.at = at;
                self.context = Some(context.clone());
                if !self.set.contains(name) {
                    return Err(self.error(format!("template {name:?} not defined")));
                }
                let new_dot = match pipe {
                    Some(p) => self.eval_pipeline(dot, p)?,
                    None => None,
                };
                self.at = at;
                self.context = Some(context.clone());
                let out = self.call_template(name, new_dot)?;
                self.out.push_str(&out);
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    /// Execute template `name` with `dot` in a fresh variable scope, as `{{template}}` does.
    pub fn call_template(&mut self, name: &str, dot: Slot) -> Result<String> {
        let Some(tree) = self.set.tree(name) else {
            return Err(self.error(format!("template {name:?} not defined")));
        };
        if self.depth >= MAX_DEPTH {
            return Err(self.error(format!("exceeded maximum template depth ({MAX_DEPTH})")));
        }
        let mut sub = Exec::new(self.set, tree, dot.clone(), self.depth + 1, self.state);
        sub.run(&dot)?;
        Ok(sub.out)
    }

    fn mark(&self) -> usize {
        self.vars.len()
    }

    fn walk_if_with(&mut self, dot: &Slot, b: &Branch, is_with: bool) -> Result<Flow> {
        let mark = self.mark();
        let v = self.eval_pipeline(dot, &b.pipe)?;
        let truth = v.as_ref().is_some_and(Value::truthy);
        let flow = if truth {
            if is_with {
                let saved = std::mem::replace(&mut self.dot_boxed, false);
                let flow = self.walk_list(&v, &b.list);
                self.dot_boxed = saved;
                flow?
            } else {
                self.walk_list(dot, &b.list)?
            }
        } else if let Some(else_list) = &b.else_list {
            self.walk_list(dot, else_list)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn walk_range(&mut self, dot: &Slot, b: &Branch) -> Result<Flow> {
        let outer = self.mark();
        let v = self.eval_pipeline(dot, &b.pipe)?;
        let mark = self.mark();
        let mut items: Vec<(Value, Value)> = Vec::new();
        // Elements of Go slices and maps of interface{} stay boxed; range over an int is not.
        let boxed = match &v {
            Some(Value::List(l)) => l.elem() == crate::value::Elem::Any,
            Some(Value::Map(_)) => true,
            _ => false,
        };
        match &v {
            None | Some(Value::Nil) => {}
            Some(Value::List(l)) => {
                items = l
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (Value::Int(i as i64), e.clone()))
                    .collect()
            }
            Some(Value::Map(m)) => {
                items = m
                    .entries()
                    .into_iter()
                    .map(|(k, e)| (Value::str(k), e))
                    .collect()
            }
            Some(Value::Object(o)) if o.entries().is_some() => {
                items = o.entries().unwrap_or_default();
            }
            Some(Value::Int(n) | Value::Int64(n)) => {
                if b.pipe.decl.len() > 1 {
                    return Err(self.error(format!(
                        "can't use {n} to iterate over more than one variable"
                    )));
                }
                items = (0..*n).map(|i| (Value::Int(i), Value::Int(i))).collect()
            }
            Some(other) => {
                return Err(self.error(format!("range can't iterate over {}", other.go_string())));
            }
        }
        if items.is_empty() {
            let flow = match &b.else_list {
                Some(else_list) => self.walk_list(dot, else_list)?,
                None => Flow::Normal,
            };
            self.vars.truncate(outer);
            return Ok(flow);
        }
        for (index, elem) in items {
            let decl = &b.pipe.decl;
            if b.pipe.is_assign {
                if decl.len() > 1 {
                    self.set_var(&decl[0], Some(index.clone()))?;
                    self.set_var(&decl[1], Some(elem.clone()))?;
                    if boxed {
                        self.box_var(&decl[1]);
                    }
                } else if decl.len() == 1 {
                    self.set_var(&decl[0], Some(elem.clone()))?;
                    if boxed {
                        self.box_var(&decl[0]);
                    }
                }
            } else {
                let n = self.vars.len();
                if !decl.is_empty() {
                    self.vars[n - 1].1 = Some(elem.clone());
                    self.vars[n - 1].2 = boxed;
                }
                if decl.len() > 1 {
                    self.vars[n - 2].1 = Some(index.clone());
                }
            }
            let saved = std::mem::replace(&mut self.dot_boxed, boxed);
            let flow = self.walk_list(&Some(elem), &b.list);
            self.dot_boxed = saved;
            let flow = flow?;
            self.vars.truncate(mark);
            if let Flow::Break = flow {
                break;
            }
        }
        self.vars.truncate(outer);
        Ok(Flow::Normal)
    }

    fn set_var(&mut self, name: &str, v: Slot) -> Result<()> {
        match self.vars.iter_mut().rev().find(|(n, _, _)| n == name) {
            Some(slot) => {
                slot.1 = v;
                slot.2 = false;
                Ok(())
            }
            None => Err(self.error(format!("undefined variable: {name}"))),
        }
    }

    /// Mark a variable as holding a `range` element.
    fn box_var(&mut self, name: &str) {
        if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _, _)| n == name) {
            slot.2 = true;
        }
    }

    fn var(&self, name: &str) -> Result<(Slot, bool)> {
        match self.vars.iter().rev().find(|(n, _, _)| n == name) {
            Some((_, v, boxed)) => Ok((v.clone(), *boxed)),
            None => Err(self.error(format!("undefined variable: {name}"))),
        }
    }

    pub fn eval_pipeline(&mut self, dot: &Slot, pipe: &Pipe) -> Result<Slot> {
        let mut value: Option<Slot> = None;
        for cmd in &pipe.cmds {
            let v = self.eval_command(dot, cmd, value.take())?;
            // Go unwraps interface values here, so a present nil becomes the invalid value.
            value = Some(match v {
                Some(Value::Nil) => None,
                v => v,
            });
        }
        let value = value.flatten();
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, value.clone())?;
            } else {
                self.vars.push((name.clone(), value.clone(), false));
            }
        }
        Ok(value)
    }

    /// `final_` is the previous pipeline stage's value, passed as the last argument.
    fn eval_command(&mut self, dot: &Slot, cmd: &Command, final_: Option<Slot>) -> Result<Slot> {
        let first = &cmd.args[0];
        self.at_arg(first);
        match &first.kind {
            ArgKind::Field(names) => self.eval_field_chain(
                dot,
                Receiver {
                    value: dot.clone(),
                    boxed: self.dot_boxed,
                },
                first,
                names,
                &cmd.args[1..],
                final_,
            ),
            ArgKind::Variable(names) => {
                let (v, boxed) = self.var(&names[0])?;
                if names.len() == 1 {
                    self.not_a_function(cmd, &final_)?;
                    return Ok(v);
                }
                self.eval_field_chain(
                    dot,
                    Receiver { value: v, boxed },
                    first,
                    &names[1..],
                    &cmd.args[1..],
                    final_,
                )
            }
            ArgKind::Chain(inner, names) => {
                // Arguments go to the last name, as in Go: `(.Values.Table "a").Table "b"` calls
                // a method of the pipeline's result; a field with arguments is refused there.
                // Go reports later errors of the chain wherever evaluating the receiver left off.
                let receiver = self.eval_arg(dot, inner)?;
                let receiver = match receiver {
                    Value::Nil => None,
                    v => Some(v),
                };
                self.eval_field_chain(
                    dot,
                    Receiver {
                        value: receiver,
                        boxed: false,
                    },
                    first,
                    names,
                    &cmd.args[1..],
                    final_,
                )
            }
            ArgKind::Ident(name) => {
                self.eval_function(dot, first, cmd, name, &cmd.args[1..], final_)
            }
            ArgKind::Pipe(p) => {
                self.not_a_function(cmd, &final_)?;
                self.eval_pipeline(dot, p)
            }
            ArgKind::Dot => {
                self.not_a_function(cmd, &final_)?;
                Ok(dot.clone())
            }
            ArgKind::Nil => Err(self.error("nil is not a command")),
            ArgKind::Bool(b) => {
                self.not_a_function(cmd, &final_)?;
                Ok(Some(Value::Bool(*b)))
            }
            ArgKind::Str(s) => {
                self.not_a_function(cmd, &final_)?;
                Ok(Some(Value::str(s.as_str())))
            }
            ArgKind::Number(_) => {
                self.not_a_function(cmd, &final_)?;
                Ok(Some(self.eval_arg(dot, first)?))
            }
        }
    }

    fn source(&self, arg: &Arg) -> String {
        self.tree
            .source
            .get(arg.pos..arg.end)
            .unwrap_or("")
            .to_string()
    }

    fn not_a_function(&self, cmd: &Command, final_: &Option<Slot>) -> Result<()> {
        if cmd.args.len() > 1 || final_.is_some() {
            return Err(self.error(format!(
                "can't give argument to non-function {}",
                self.source(&cmd.args[0])
            )));
        }
        Ok(())
    }
}
